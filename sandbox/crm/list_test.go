package crm_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/crm"
)

func TestListEnvelopeAndFields(t *testing.T) {
	e := newEnv(t, withWorld(60, 12, 10))
	r := e.req("GET", "Contacts?fields=Last_Name,Email,Account_Name,Owner,Created_Time&per_page=5", nil).want(t, 200, "")
	sameKeys(t, "list", r.body, "data", "info")
	info := r.info()
	sameKeys(t, "info", info, "call", "email", "per_page", "count", "page", "sort_by", "sort_order",
		"more_records", "next_page_token", "previous_page_token", "page_token_expiry")
	if str(info["per_page"]) != "5" || str(info["count"]) != "5" || str(info["page"]) != "1" ||
		info["more_records"] != true || info["sort_by"] != "id" || info["sort_order"] != "desc" ||
		info["previous_page_token"] != nil || info["call"] != false || info["email"] != false {
		t.Fatalf("info %v", info)
	}
	if tok, _ := info["next_page_token"].(string); tok == "" {
		t.Fatalf("no next_page_token: %v", info)
	}
	wantExpiry := e.clk.Now().Add(24 * time.Hour).In(time.FixedZone("", -7*3600)).Format("2006-01-02T15:04:05-07:00")
	if info["page_token_expiry"] != wantExpiry {
		t.Fatalf("page_token_expiry %v, want %s", info["page_token_expiry"], wantExpiry)
	}
	data := r.data()
	var prev string
	for _, rec := range data {
		sameKeys(t, "record", rec, "id", "Last_Name", "Email", "Account_Name", "Owner", "Created_Time")
		id := str(rec["id"])
		if !idRE.MatchString(id) || !strings.HasPrefix(id, "5725767") {
			t.Fatalf("id %q is not a 19-digit CRM id", id)
		}
		if prev != "" && id >= prev {
			t.Fatalf("ids not descending: %s after %s", id, prev)
		}
		prev = id
		if ct := str(rec["Created_Time"]); !timeRE.MatchString(ct) || !strings.HasSuffix(ct, "-07:00") {
			t.Fatalf("Created_Time %q", ct)
		}
		owner := obj(rec["Owner"])
		sameKeys(t, "Owner", owner, "name", "id", "email")
		if acc := rec["Account_Name"]; acc != nil {
			sameKeys(t, "Account_Name", obj(acc), "name", "id")
		}
		if _, isString := rec["id"].(string); !isString {
			t.Fatalf("id is not a JSON string: %#v", rec["id"])
		}
	}
	// A record by id is a one-element data array without info.
	one := e.req("GET", "Contacts/"+str(data[0]["id"]), nil).want(t, 200, "")
	sameKeys(t, "get", one.body, "data")
	if len(one.data()) != 1 || one.data()[0]["id"] != data[0]["id"] {
		t.Fatalf("get by id %s", one.raw)
	}
	if _, ok := one.data()[0]["Customer_Type"]; !ok {
		t.Fatalf("get without fields should render every field: %v", keys(one.data()[0]))
	}
	if got := e.req("GET", "Contacts/"+str(data[0]["id"])+"?fields=Email", nil).data()[0]; len(got) != 2 {
		t.Fatalf("get with fields %v", got)
	}
}

func TestPageTokensWalkEverythingOnce(t *testing.T) {
	e := newEnv(t, withWorld(600, 40, 5))
	total := e.srv.Count("Contacts")
	seen := map[string]bool{}
	q := "Contacts?fields=Email&per_page=50&sort_by=Modified_Time&sort_order=asc"
	r := e.req("GET", q, nil).want(t, 200, "")
	var lastMod time.Time
	pages := 0
	for {
		pages++
		for _, rec := range r.data() {
			id := str(rec["id"])
			if seen[id] {
				t.Fatalf("record %s seen twice", id)
			}
			seen[id] = true
			full, _ := e.srv.Record("Contacts", id)
			mt, err := time.Parse(time.RFC3339, str(full["Modified_Time"]))
			if err != nil || mt.Before(lastMod) {
				t.Fatalf("Modified_Time %v not ascending after %v", full["Modified_Time"], lastMod)
			}
			lastMod = mt
		}
		if str(r.info()["page"]) != strconv.Itoa(pages) {
			t.Fatalf("page %v, want %d", r.info()["page"], pages)
		}
		if pages > 1 && r.info()["previous_page_token"] == nil {
			t.Fatalf("page %d has no previous_page_token", pages)
		}
		tok, _ := r.info()["next_page_token"].(string)
		if r.info()["more_records"] != true {
			if tok != "" {
				t.Fatal("next_page_token on the last page")
			}
			break
		}
		r = e.req("GET", q+"&page_token="+url.QueryEscape(tok), nil).want(t, 200, "")
	}
	if len(seen) != total {
		t.Fatalf("walked %d of %d contacts", len(seen), total)
	}

	// previous_page_token leads back.
	first := e.req("GET", q, nil).want(t, 200, "")
	tok := first.info()["next_page_token"].(string)
	second := e.req("GET", q+"&page_token="+tok, nil).want(t, 200, "")
	back := e.req("GET", q+"&page_token="+second.info()["previous_page_token"].(string), nil).want(t, 200, "")
	if str(back.data()) != str(first.data()) || str(back.info()["page"]) != "1" {
		t.Fatalf("previous page %s, want %s", back.raw, first.raw)
	}

	// The token is bound to the query, the user and 24 hours.
	e.req("GET", q+"&page=2&page_token="+tok, nil).want(t, 400, "AMBIGUITY_DURING_PROCESSING")
	e.req("GET", strings.Replace(q, "fields=Email", "fields=Email,Phone", 1)+"&page_token="+tok, nil).
		want(t, 400, "TOKEN_BOUND_DATA_MISMATCH")
	other := e.tokenFor("someone.else@zylkercorp.example", allScopes...)
	e.reqAs(other, "GET", q+"&page_token="+tok, nil).want(t, 400, "TOKEN_BOUND_DATA_MISMATCH")
	e.req("GET", q+"&page_token=bogus", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", q+"&page_token="+tok, nil).want(t, 200, "")
	e.advance(24 * time.Hour)
	r = e.req("GET", q+"&page_token="+tok, nil).want(t, 400, "EXPIRED_VALUE")
	sameKeys(t, "error", r.body, "code", "details", "message", "status")
}

func TestDiscreteAndTokenLimits(t *testing.T) {
	e := newEnv(t, withWorld(3000, 100, 5))
	if n := e.srv.Count("Contacts"); n <= 2000 {
		t.Fatalf("need more than 2000 contacts, have %d", n)
	}
	e.req("GET", "Contacts?fields=Email&per_page=200&page=10", nil).want(t, 200, "")
	r := e.req("GET", "Contacts?fields=Email&per_page=200&page=11", nil).want(t, 400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED")
	if str(errDetails(r.body)["limit"]) != "2000" {
		t.Fatalf("details %v", r.body["details"])
	}
	e.req("GET", "Contacts?fields=Email&per_page=201", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "Contacts?fields=Email&per_page=0", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "Contacts?fields=Email&page=0", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "Contacts?fields=Email&sort_by=Email", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "Contacts?fields=Email&sort_order=up", nil).want(t, 400, "INVALID_DATA")

	// Past page 10 the client continues with the token page 10 handed out.
	r = e.req("GET", "Contacts?fields=Email&per_page=200&page=10", nil)
	tok := r.info()["next_page_token"].(string)
	r = e.req("GET", "Contacts?fields=Email&per_page=200&page_token="+tok, nil).want(t, 200, "")
	if str(r.info()["page"]) != "11" {
		t.Fatalf("page after the token %v", r.info()["page"])
	}

	crm.SetTokenLimit(e.srv, 450)
	r = e.req("GET", "Contacts?fields=Email&per_page=200", nil)
	n := len(r.data())
	for r.info()["more_records"] == true {
		r = e.req("GET", "Contacts?fields=Email&per_page=200&page_token="+r.info()["next_page_token"].(string), nil)
		if r.status != 200 {
			break
		}
		n += len(r.data())
	}
	r.want(t, 400, "PAGINATION_LIMIT_EXCEEDED")
	if n != 450 {
		t.Fatalf("tokens reached %d records, want 450", n)
	}
}

func TestEmptyListsAnd204(t *testing.T) {
	e := newEnv(t)
	e.req("GET", "Contacts?fields=Email", nil).empty(t, 204)
	e.req("GET", "Contacts/search?email=nobody@example.com", nil).empty(t, 204)
	e.req("GET", "Contacts/deleted", nil).empty(t, 204)
	id, err := e.srv.Create("Accounts", map[string]any{"Account_Name": "Lonely Ltd."})
	if err != nil {
		t.Fatal(err)
	}
	e.req("GET", "Accounts/"+id+"/Contacts?fields=Email", nil).empty(t, 204)
	e.req("GET", "Accounts?fields=Account_Name&page=2", nil).empty(t, 204)
}

func TestSortAndIfModifiedSince(t *testing.T) {
	e := newEnv(t, withWorld(200, 20, 5))
	r := e.req("GET", "Contacts?fields=Email&sort_by=Created_Time&sort_order=asc&per_page=200", nil).want(t, 200, "")
	var prevC time.Time
	for _, rec := range r.data() {
		full, _ := e.srv.Record("Contacts", str(rec["id"]))
		ct, _ := time.Parse(time.RFC3339, str(full["Created_Time"]))
		if ct.Before(prevC) {
			t.Fatalf("Created_Time not ascending")
		}
		prevC = ct
		mt, _ := time.Parse(time.RFC3339, str(full["Modified_Time"]))
		if mt.Before(ct) {
			t.Fatalf("Modified_Time %v before Created_Time %v", mt, ct)
		}
	}

	// If-Modified-Since is an instant: any offset works.
	since := e.clk.Now().Add(-30 * 24 * time.Hour)
	h := since.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339)
	r = e.req("GET", "Contacts?fields=Email&per_page=200", nil, "If-Modified-Since", h).want(t, 200, "")
	for _, rec := range r.data() {
		full, _ := e.srv.Record("Contacts", str(rec["id"]))
		mt, _ := time.Parse(time.RFC3339, str(full["Modified_Time"]))
		if !mt.After(since) {
			t.Fatalf("record modified %v returned for If-Modified-Since %s", mt, h)
		}
	}
	future := e.clk.Now().Format(time.RFC3339)
	e.req("GET", "Contacts?fields=Email", nil, "If-Modified-Since", future).empty(t, 304)
	id := e.srv.IDs("Contacts")[0]
	e.req("GET", "Contacts/"+id, nil, "If-Modified-Since", future).empty(t, 304)
	e.req("GET", "Contacts?fields=Email", nil, "If-Modified-Since", "yesterday").want(t, 400, "INVALID_DATA")

	e.clk.Advance(time.Minute)
	if err := e.srv.Edit("Contacts", id, map[string]any{"Title": "Head of Support"}); err != nil {
		t.Fatal(err)
	}
	r = e.req("GET", "Contacts?fields=Title&sort_by=Modified_Time&sort_order=asc", nil, "If-Modified-Since", future).want(t, 200, "")
	if len(r.data()) != 1 || r.data()[0]["id"] != id || r.data()[0]["Title"] != "Head of Support" {
		t.Fatalf("after an edit: %s", r.raw)
	}
	e.req("GET", "Contacts/"+id+"?fields=Title", nil, "If-Modified-Since", future).want(t, 200, "")
}

func TestIDsFilter(t *testing.T) {
	e := newEnv(t, withWorld(60, 12, 10))
	ids := e.srv.IDs("Contacts")
	r := e.req("GET", "Contacts?fields=Email&ids="+ids[3]+","+ids[1]+",5725767000000000001", nil).want(t, 200, "")
	var got []string
	for _, rec := range r.data() {
		got = append(got, str(rec["id"]))
	}
	if strings.Join(got, ",") != ids[3]+","+ids[1] {
		t.Fatalf("ids filter gave %v", got)
	}
	e.req("GET", "Contacts?fields=Email&ids=abc", nil).want(t, 400, "INVALID_DATA")
}

func TestCustomViews(t *testing.T) {
	e := newEnv(t, withWorld(400, 40, 5))
	r := e.req("GET", "settings/custom_views?module=Contacts", nil).want(t, 200, "")
	views := map[string]map[string]any{}
	for _, v := range r.body["custom_views"].([]any) {
		m := obj(v)
		for _, k := range []string{"id", "name", "display_value", "system_defined", "criteria"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("view lacks %s: %v", k, m)
			}
		}
		views[str(m["name"])] = m
	}
	all, ent, tokyo := views["All Contacts"], views["Enterprise Contacts"], views["Tokyo Contacts"]
	if all == nil || ent == nil || tokyo == nil || all["system_defined"] != true || all["criteria"] != nil {
		t.Fatalf("views %v", keys(obj(map[string]any{"v": views})))
	}
	crit := obj(ent["criteria"])
	if crit["comparator"] != "equal" || obj(crit["field"])["api_name"] != "Customer_Type" || crit["value"] != "Enterprise" {
		t.Fatalf("criteria %v", crit)
	}
	if g := obj(views["Key Customers"]["criteria"]); g["group_operator"] != "AND" || len(g["group"].([]any)) != 2 {
		t.Fatalf("group criteria %v", g)
	}

	want := 0
	for _, id := range e.srv.IDs("Contacts") {
		if rec, _ := e.srv.Record("Contacts", id); rec["Customer_Type"] == "Enterprise" {
			want++
		}
	}
	got := 0
	q := "Contacts?fields=Customer_Type&per_page=200&cvid=" + str(ent["id"])
	r = e.req("GET", q, nil).want(t, 200, "")
	for {
		for _, rec := range r.data() {
			if rec["Customer_Type"] != "Enterprise" {
				t.Fatalf("view returned %v", rec)
			}
			got++
		}
		if r.info()["more_records"] != true {
			break
		}
		r = e.req("GET", q+"&page_token="+r.info()["next_page_token"].(string), nil).want(t, 200, "")
	}
	if got != want || want == 0 {
		t.Fatalf("view gave %d contacts, want %d", got, want)
	}
	c := e.req("GET", "Contacts/actions/count?cvid="+str(ent["id"]), nil).want(t, 200, "")
	if str(c.body["count"]) != strconv.Itoa(want) {
		t.Fatalf("count with cvid %v, want %d", c.body, want)
	}
	r = e.req("GET", "Contacts?fields=Mailing_City&cvid="+str(tokyo["id"]), nil).want(t, 200, "")
	for _, rec := range r.data() {
		if rec["Mailing_City"] != "東京" {
			t.Fatalf("Tokyo view returned %v", rec)
		}
	}
	e.req("GET", q+"&sort_by=Modified_Time", nil).want(t, 400, "AMBIGUITY_DURING_PROCESSING")
	e.req("GET", "Contacts?fields=Email&cvid=42", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "settings/custom_views/"+str(ent["id"])+"?module=Contacts", nil).want(t, 200, "")

	// A record edited out of the view's criteria leaves it.
	id := str(e.req("GET", q, nil).data()[0]["id"])
	if err := e.srv.Edit("Contacts", id, map[string]any{"Customer_Type": "SMB"}); err != nil {
		t.Fatal(err)
	}
	c = e.req("GET", "Contacts/actions/count?cvid="+str(ent["id"]), nil)
	if str(c.body["count"]) != strconv.Itoa(want-1) {
		t.Fatalf("count after edit %v", c.body)
	}
}

func TestRelatedLists(t *testing.T) {
	e := newEnv(t, withWorld(120, 10, 5))
	// A contact with an account, notes, deals and activities.
	var contact string
	for _, id := range e.srv.IDs("Contacts") {
		rec, _ := e.srv.Record("Contacts", id)
		if rec["Account_Name"] == nil {
			continue
		}
		ok := true
		for _, rel := range []string{"Notes", "Deals", "Calls", "Events", "Tasks"} {
			if e.req("GET", "Contacts/"+id+"/"+rel+"?fields=Owner", nil).status != 200 {
				ok = false
			}
		}
		if ok {
			contact = id
			break
		}
	}
	if contact == "" {
		t.Fatal("no contact with every related list")
	}
	rec, _ := e.srv.Record("Contacts", contact)
	account := str(obj(rec["Account_Name"])["id"])

	notes := e.req("GET", "Contacts/"+contact+"/Notes?fields=Note_Title,Note_Content,Parent_Id", nil).want(t, 200, "")
	for _, n := range notes.data() {
		p := obj(n["Parent_Id"])
		if str(p["id"]) != contact || obj(p["module"])["api_name"] != "Contacts" || n["$se_module"] != "Contacts" {
			t.Fatalf("note %v", n)
		}
	}
	sameKeys(t, "related info", notes.info(), "call", "email", "per_page", "count", "page", "sort_by", "sort_order",
		"more_records", "next_page_token", "previous_page_token", "page_token_expiry")
	for _, d := range e.req("GET", "Contacts/"+contact+"/Deals?fields=Deal_Name,Contact_Name", nil).data() {
		if str(obj(d["Contact_Name"])["id"]) != contact {
			t.Fatalf("deal %v", d)
		}
	}
	for _, rel := range []string{"Calls", "Events", "Tasks"} {
		for _, a := range e.req("GET", "Contacts/"+contact+"/"+rel+"?fields=Who_Id,What_Id", nil).data() {
			if str(obj(a["Who_Id"])["id"]) != contact || str(obj(a["What_Id"])["id"]) != account || a["$se_module"] != "Accounts" {
				t.Fatalf("%s %v", rel, a)
			}
		}
	}
	found := false
	for _, c := range e.req("GET", "Accounts/"+account+"/Contacts?fields=Last_Name&per_page=200", nil).data() {
		found = found || str(c["id"]) == contact
	}
	if !found {
		t.Fatal("the contact is not in its account's Contacts")
	}
	e.req("GET", "Accounts/"+account+"/Deals?fields=Deal_Name", nil).want(t, 200, "")
	e.req("GET", "Accounts/"+account+"/Calls?fields=Subject", nil).want(t, 200, "")
	e.req("GET", "Contacts/"+contact+"/Notes", nil).want(t, 400, "REQUIRED_PARAM_MISSING")
	e.req("GET", "Contacts/"+contact+"/Tickets?fields=Subject", nil).want(t, 400, "INVALID_DATA")
	e.req("GET", "Contacts/5725767000000000001/Notes?fields=Note_Title", nil).want(t, 400, "INVALID_DATA")

	// Related lists page like lists.
	r := e.req("GET", "Accounts/"+account+"/Contacts?fields=Last_Name&per_page=1", nil).want(t, 200, "")
	if r.info()["more_records"] == true {
		tok := r.info()["next_page_token"].(string)
		r2 := e.req("GET", "Accounts/"+account+"/Contacts?fields=Last_Name&per_page=1&page_token="+tok, nil).want(t, 200, "")
		if r2.data()[0]["id"] == r.data()[0]["id"] {
			t.Fatal("second related page repeats the first")
		}
	}
}
