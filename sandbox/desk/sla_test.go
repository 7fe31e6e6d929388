package desk_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

// slaNamed finds an SLA of a department by name.
func (e *env) slaNamed(deptID, name string) desk.Record {
	e.t.Helper()
	for _, s := range e.desk.SLAs() {
		if s.Str("departmentId") == deptID && s.Str("name") == name {
			return s
		}
	}
	e.t.Fatalf("no SLA %q in department %s", name, deptID)
	return nil
}

func TestSLAList(t *testing.T) {
	e := newEnv(t, withWorld(200))
	support, sales, legacy := e.department("Support"), e.department("Sales"), e.department("Legacy")

	all := e.get("/api/v1/slas?limit=100").data(t)
	if len(all) != 6 {
		t.Fatalf("%d SLAs, want 6 (Support 3, Sales 1, サポート 1, Legacy 1): %v", len(all), all)
	}
	defaults := map[string]int{}
	for i, s := range all {
		if !reflect.DeepEqual(map[string]any(e.desk.SLAs()[i]), s) {
			t.Fatalf("SLA %d: %v vs %v", i, s, e.desk.SLAs()[i])
		}
		dept, _ := s["department"].(map[string]any)
		if s["id"] == nil || s["name"] == "" || dept == nil || dept["id"] != s["departmentId"] || dept["name"] == "" {
			t.Fatalf("SLA shape: %v", s)
		}
		if _, ok := s["isActive"].(bool); !ok {
			t.Fatalf("isActive: %v", s)
		}
		if s["isDefault"] == true {
			defaults[s["departmentId"].(string)]++
		}
	}
	if len(defaults) != 4 || defaults[support] != 1 || defaults[legacy] != 1 {
		t.Fatalf("one default SLA per department: %v", defaults)
	}

	var names []string
	for _, s := range e.get("/api/v1/slas?departmentId=" + support).data(t) {
		names = append(names, s["name"].(string))
	}
	if !reflect.DeepEqual(names, []string{"Standard 24h", "Gold 4h", "Silver 8h"}) {
		t.Fatalf("Support's SLAs %v", names)
	}
	inactive := e.get("/api/v1/slas?status=INACTIVE").data(t)
	if len(inactive) != 1 || inactive[0]["name"] != "Legacy 72h" || inactive[0]["departmentId"] != legacy || inactive[0]["isActive"] != false {
		t.Fatalf("inactive SLAs %v", inactive)
	}
	if n := len(e.get("/api/v1/slas?status=active&limit=100").data(t)); n != 5 {
		t.Fatalf("%d active SLAs", n)
	}
	if r := e.get("/api/v1/slas?status=INACTIVE&departmentId=" + sales); r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("nothing found: %d %s", r.status, r.raw)
	}
	page := e.get("/api/v1/slas?from=2&limit=2").data(t)
	if len(page) != 2 || page[0]["id"] != all[1]["id"] || page[1]["id"] != all[2]["id"] {
		t.Fatalf("paging %v", page)
	}
	if first := e.get("/api/v1/slas?from=0&limit=1").data(t); first[0]["id"] != all[0]["id"] {
		t.Fatalf("from=0 %v", first)
	}
	for _, q := range []string{"status=BROKEN", "departmentId=abc", "limit=0", "limit=101", "from=-1"} {
		wantError(t, e.get("/api/v1/slas?"+q), 422, "UNPROCESSABLE_ENTITY")
	}

	gold := e.slaNamed(support, "Gold 4h")
	if got := e.get("/api/v1/slas/" + gold.ID()).obj(t); !reflect.DeepEqual(got, map[string]any(gold)) {
		t.Fatalf("GET /slas/{id} %v, want %v", got, gold)
	}
	wantError(t, e.get("/api/v1/slas/1234567890123456"), 404, "URL_NOT_FOUND")
	wantError(t, e.get("/api/v1/slas/abc"), 404, "URL_NOT_FOUND")
	wantError(t, e.call(request{method: "GET", path: "/api/v1/slas", token: ptr("")}), 401, "UNAUTHORIZED")

	// A new department gets a default SLA; another org has SLAs of its own.
	dept, err := e.desk.AddDepartment("Field Service")
	if err != nil {
		t.Fatal(err)
	}
	own := e.get("/api/v1/slas?departmentId=" + dept.ID()).data(t)
	if len(own) != 1 || own[0]["name"] != "Standard 24h" || own[0]["isDefault"] != true || own[0]["isActive"] != true {
		t.Fatalf("a new department's SLAs %v", own)
	}
	other := e.desk.AddOrg(desk.OrgSpec{PortalName: "globex", Open: true})
	theirs := other.SLAs()
	if len(theirs) != 6 {
		t.Fatalf("%d SLAs in another org", len(theirs))
	}
	for _, s := range theirs {
		if r := e.get("/api/v1/slas/" + s.ID()); r.status != 404 {
			t.Fatalf("another org's SLA %s answered %d", s.ID(), r.status)
		}
	}
}

func TestContractSLA(t *testing.T) {
	e := newEnv(t, withWorld(400))
	support, sales, legacy := e.department("Support"), e.department("Sales"), e.department("Legacy")
	names := map[string]string{}
	for _, s := range e.desk.SLAs() {
		names[s.ID()] = s.Str("name")
	}

	// Seeded contracts each carry an active SLA of their department, shown
	// three ways: sla{id,name} by id, associatedSLAId in lists (sla with
	// include=slas), slaName in the account's list.
	seeded := e.get("/api/v1/contracts?limit=100").data(t)
	if len(seeded) == 0 {
		t.Fatal("no seeded contracts")
	}
	used := map[string]bool{}
	for _, k := range seeded {
		id, _ := k["associatedSLAId"].(string)
		if id == "" {
			t.Fatalf("contract without an SLA: %v", k)
		}
		if sla := e.get("/api/v1/slas/" + id).obj(t); sla["departmentId"] != k["departmentId"] || sla["isActive"] != true {
			t.Fatalf("contract %v has SLA %v", k, sla)
		}
		if _, has := k["sla"]; has {
			t.Fatalf("a list row without include=slas has sla: %v", k)
		}
		used[names[id]] = true
		one := e.get("/api/v1/contracts/" + k["id"].(string)).obj(t)
		if ref, _ := one["sla"].(map[string]any); ref["id"] != id || ref["name"] != names[id] || one["associatedSLAId"] != id {
			t.Fatalf("GET /contracts/{id} %v", one)
		}
		if rec, _ := e.desk.Contract(k["id"].(string)); !reflect.DeepEqual(map[string]any(rec), one) {
			t.Fatalf("Server.Contract %v vs %v", rec, one)
		}
		rows := e.get("/api/v1/accounts/" + k["accountId"].(string) + "/contracts").data(t)
		var found bool
		for _, r := range rows {
			if r["id"] == k["id"] {
				found = true
				if r["slaName"] != names[id] || r["associatedSLAId"] != id {
					t.Fatalf("the account's contract %v", r)
				}
				if _, has := r["sla"]; has {
					t.Fatalf("the account's contract has sla: %v", r)
				}
			}
		}
		if !found {
			t.Fatalf("contract %v not in its account's list", k["id"])
		}
	}
	if len(used) < 2 {
		t.Fatalf("seeded contracts use only %v", used)
	}
	with := e.get("/api/v1/contracts?include=slas&limit=100").data(t)
	for _, k := range with {
		if ref, _ := k["sla"].(map[string]any); ref["id"] != k["associatedSLAId"] || ref["name"] != names[k["associatedSLAId"].(string)] {
			t.Fatalf("include=slas row %v", k)
		}
	}

	// Writes: the department's default unless one is named; the named one
	// must be an active SLA of the contract's department.
	acc, err := e.desk.CreateAccount(desk.Fields{"accountName": "Initech"})
	if err != nil {
		t.Fatal(err)
	}
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"contractName": "Initech support", "accountId": acc.ID(), "departmentId": support, "startDate": "2026-10-01"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	std, gold, silver := e.slaNamed(support, "Standard 24h"), e.slaNamed(support, "Gold 4h"), e.slaNamed(support, "Silver 8h")
	plain := e.post("/api/v1/contracts", base(nil)).obj(t)
	if plain["associatedSLAId"] != std.ID() || plain["sla"].(map[string]any)["name"] != "Standard 24h" {
		t.Fatalf("a contract without an SLA: %v", plain)
	}
	k := e.post("/api/v1/contracts", base(map[string]any{"associatedSLAId": gold.ID()})).obj(t)
	if k["associatedSLAId"] != gold.ID() || k["sla"].(map[string]any)["name"] != "Gold 4h" {
		t.Fatalf("a Gold contract: %v", k)
	}
	for what, v := range map[string]any{"another department's": e.slaNamed(sales, "Standard 24h").ID(),
		"an inactive": e.slaNamed(legacy, "Legacy 72h").ID(), "an unknown": "1234567890123456", "a malformed": "gold", "a non-id": true} {
		if r := e.post("/api/v1/contracts", base(map[string]any{"associatedSLAId": v})); r.status != 422 {
			t.Fatalf("%s SLA: %d %s", what, r.status, r.raw)
		}
		wantError(t, e.post("/api/v1/contracts", base(map[string]any{"associatedSLAId": v})), 422, "INVALID_DATA", "/associatedSLAId:invalid")
	}
	id := k["id"].(string)
	if got := e.patch("/api/v1/contracts/"+id, map[string]any{"associatedSLAId": silver.ID()}).obj(t); got["associatedSLAId"] != silver.ID() {
		t.Fatalf("PATCH to Silver: %v", got)
	}
	if got := e.patch("/api/v1/contracts/"+id, map[string]any{"description": "renewed"}).obj(t); got["associatedSLAId"] != silver.ID() {
		t.Fatalf("an unrelated PATCH changed the SLA: %v", got)
	}
	wantError(t, e.patch("/api/v1/contracts/"+id, map[string]any{"associatedSLAId": e.slaNamed(sales, "Standard 24h").ID()}), 422, "INVALID_DATA", "/associatedSLAId:invalid")
	if got, _ := e.desk.Contract(id); got.Str("associatedSLAId") != silver.ID() {
		t.Fatalf("a refused PATCH changed the SLA: %v", got)
	}
	moved := e.patch("/api/v1/contracts/"+id, map[string]any{"departmentId": sales}).obj(t)
	if moved["associatedSLAId"] != e.slaNamed(sales, "Standard 24h").ID() {
		t.Fatalf("moving to Sales keeps Support's SLA: %v", moved)
	}
	back := e.patch("/api/v1/contracts/"+id, map[string]any{"departmentId": support, "associatedSLAId": gold.ID()}).obj(t)
	if back["associatedSLAId"] != gold.ID() {
		t.Fatalf("moving back with Gold: %v", back)
	}
	if got := e.patch("/api/v1/contracts/"+id, map[string]any{"associatedSLAId": nil}).obj(t); got["associatedSLAId"] != std.ID() {
		t.Fatalf("null takes the default: %v", got)
	}
	ui, err := e.desk.AddContract(desk.Fields{"contractName": "UI", "accountId": acc.ID(), "departmentId": support, "startDate": "2026-10-01",
		"associatedSLAId": silver.ID()})
	if err != nil || ui.Str("associatedSLAId") != silver.ID() {
		t.Fatalf("AddContract with Silver: %v %v", ui, err)
	}
	rows := e.get("/api/v1/accounts/" + acc.ID() + "/contracts").data(t)
	if len(rows) != 3 || rows[0]["slaName"] != "Standard 24h" || rows[1]["slaName"] != "Standard 24h" || rows[2]["slaName"] != "Silver 8h" {
		t.Fatalf("the account's contracts %v", rows)
	}
}

func TestContractSLAsAreDeterministic(t *testing.T) {
	a, b := newEnv(t, withWorld(400)), newEnv(t, withWorld(400))
	ka, kb := a.get("/api/v1/contracts?limit=100").data(t), b.get("/api/v1/contracts?limit=100").data(t)
	if !reflect.DeepEqual(ka, kb) || !reflect.DeepEqual(a.desk.SLAs(), b.desk.SLAs()) {
		t.Fatal("the same world and seed give different SLAs")
	}
}
