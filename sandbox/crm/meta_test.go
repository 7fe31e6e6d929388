package crm_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

func fieldsOf(t *testing.T, e *env, module string) map[string]map[string]any {
	t.Helper()
	r := e.req("GET", "settings/fields?module="+module, nil).want(t, 200, "")
	out := map[string]map[string]any{}
	for _, f := range r.body["fields"].([]any) {
		m := obj(f)
		out[str(m["api_name"])] = m
	}
	return out
}

func TestFieldMetadata(t *testing.T) {
	e := newEnv(t)
	fs := fieldsOf(t, e, "Contacts")
	for _, f := range fs {
		for _, k := range []string{"api_name", "field_label", "data_type", "system_mandatory", "custom_field", "read_only",
			"length", "unique", "pick_list_values", "lookup"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("field %v lacks %s", f["api_name"], k)
			}
		}
	}
	check := func(api string, want map[string]any) {
		t.Helper()
		f := fs[api]
		if f == nil {
			t.Fatalf("no field %s", api)
		}
		for k, v := range want {
			if str(f[k]) != str(v) {
				t.Errorf("%s.%s = %v, want %v", api, k, f[k], v)
			}
		}
	}
	check("Last_Name", map[string]any{"data_type": "text", "system_mandatory": true, "length": 80, "custom_field": false})
	check("Email", map[string]any{"data_type": "email", "unique": map[string]any{"casesensitive": "false"}})
	check("Phone", map[string]any{"data_type": "phone"})
	check("Account_Name", map[string]any{"data_type": "lookup", "lookup": map[string]any{"module": map[string]any{"api_name": "Accounts"}}})
	check("Owner", map[string]any{"data_type": "ownerlookup"})
	check("Customer_Type", map[string]any{"data_type": "picklist", "custom_field": true})
	check("Loyalty_Points__c", map[string]any{"data_type": "integer", "custom_field": true, "length": 9})
	check("Renewal_Date__c", map[string]any{"data_type": "date", "custom_field": true})
	check("Modified_Time", map[string]any{"data_type": "datetime", "read_only": true})
	check("Email_Opt_Out", map[string]any{"data_type": "boolean"})
	check("Description", map[string]any{"data_type": "textarea"})
	var picks []string
	for _, p := range fs["Customer_Type"]["pick_list_values"].([]any) {
		sameKeys(t, "pick list value", obj(p), "display_value", "actual_value")
		picks = append(picks, str(obj(p)["actual_value"]))
	}
	if strings.Join(picks, ",") != "Enterprise,Mid-Market,SMB,Trial" {
		t.Fatalf("Customer_Type values %v", picks)
	}
	if _, hidden := fs["$se_module"]; hidden {
		t.Fatal("$se_module is not a field")
	}
	prod := fieldsOf(t, e, "Products")
	if prod["Unit_Price"]["data_type"] != "currency" || prod["Product_Active"]["data_type"] != "boolean" ||
		prod["Product_Name"]["system_mandatory"] != true {
		t.Fatalf("Products fields %v %v", prod["Unit_Price"], prod["Product_Active"])
	}
	acc := fieldsOf(t, e, "Accounts")
	if fmt.Sprint(acc["Account_Name"]["unique"]) != "map[casesensitive:false]" || acc["Website"]["data_type"] != "website" {
		t.Fatalf("Accounts fields %v", acc["Account_Name"])
	}
	for _, m := range []string{"Deals", "Notes", "Calls", "Events", "Tasks", "Leads"} {
		fieldsOf(t, e, m)
	}
	e.req("GET", "settings/fields", nil).want(t, 400, "REQUIRED_PARAM_MISSING")
	e.req("GET", "settings/fields?module=Tickets", nil).want(t, 400, "INVALID_MODULE")

	r := e.req("GET", "settings/modules", nil).want(t, 200, "")
	var names []string
	for _, m := range r.body["modules"].([]any) {
		names = append(names, str(obj(m)["api_name"]))
		if !idRE.MatchString(str(obj(m)["id"])) {
			t.Fatalf("module id %v", obj(m)["id"])
		}
	}
	if strings.Join(names, ",") != "Leads,Contacts,Accounts,Deals,Products,Notes,Calls,Events,Tasks" {
		t.Fatalf("modules %v", names)
	}
}

func TestOrgAndUsers(t *testing.T) {
	e := newEnv(t, func(o *crm.Options) { o.OrgName = "Zylker Corp" })
	r := e.req("GET", "org", nil).want(t, 200, "")
	orgs := r.body["org"].([]any)
	org := obj(orgs[0])
	if len(orgs) != 1 || org["company_name"] != "Zylker Corp" || org["time_zone"] != "America/Phoenix" ||
		org["currency"] != "US Dollar" || !idRE.MatchString(str(org["id"])) {
		t.Fatalf("org %s", r.raw)
	}
	r = e.req("GET", "users?type=CurrentUser", nil).want(t, 200, "")
	users := r.body["users"].([]any)
	if len(users) != 1 || obj(users[0])["email"] != e.email || obj(obj(users[0])["profile"])["name"] != "Administrator" {
		t.Fatalf("current user %s", r.raw)
	}
	r = e.req("GET", "users?type=AllUsers", nil).want(t, 200, "")
	if len(r.body["users"].([]any)) != 5 {
		t.Fatalf("all users %s", r.raw)
	}
	e.req("GET", "users?type=Robots", nil).want(t, 400, "INVALID_DATA")
}

func TestMultipleOrgs(t *testing.T) {
	small := seed.Generate(seed.Options{Seed: 9, People: 10, Accounts: 2, Products: 1, Now: worldNow})
	e := newEnv(t, withWorld(40, 5, 3), func(o *crm.Options) {
		o.OrgName = "Zylker Corp"
		o.MoreOrgs = []crm.OrgOptions{
			{Name: "Zillum Inc.", World: small, Seed: 9},
			{Name: "Private KK", Members: []string{"other@private.example"}},
		}
	})
	orgs := e.srv.Orgs()
	if len(orgs) != 3 {
		t.Fatalf("%d orgs", len(orgs))
	}
	// Without X-CRM-ORG the org array lists every org the user reaches.
	r := e.req("GET", "org", nil).want(t, 200, "")
	var listed []string
	for _, o := range r.body["org"].([]any) {
		listed = append(listed, str(obj(o)["company_name"]))
	}
	if strings.Join(listed, ",") != "Zylker Corp,Zillum Inc." {
		t.Fatalf("reachable orgs %v", listed)
	}
	zillum := orgs[1]
	r = e.req("GET", "org", nil, "X-CRM-ORG", zillum.ID()).want(t, 200, "")
	if len(r.body["org"].([]any)) != 1 || obj(r.body["org"].([]any)[0])["company_name"] != "Zillum Inc." {
		t.Fatalf("org with X-CRM-ORG %s", r.raw)
	}
	// Records are per org; the zgid works as well as the id.
	for _, h := range []string{"X-CRM-ORG", "X-CRMORG"} {
		c := e.req("GET", "Contacts/actions/count", nil, h, zillum.ZGID()).want(t, 200, "")
		if str(c.body["count"]) != str(zillum.Count("Contacts")) || zillum.Count("Contacts") == e.srv.Count("Contacts") {
			t.Fatalf("count in zillum %v (default org has %d)", c.body, e.srv.Count("Contacts"))
		}
	}
	before := zillum.Count("Accounts")
	e.req("POST", "Accounts", map[string]any{"data": []any{map[string]any{"Account_Name": "Only In Zillum"}}}, "X-CRM-ORG", zillum.ID()).want(t, 201, "")
	if zillum.Count("Accounts") != before+1 {
		t.Fatalf("zillum accounts %d, want %d", zillum.Count("Accounts"), before+1)
	}
	e.req("GET", "Accounts/search?word=Only+In+Zillum", nil, "X-CRM-ORG", zillum.ID()).want(t, 200, "")
	if r := e.req("GET", "Accounts/search?word=Only+In+Zillum", nil); r.status != 204 {
		t.Fatalf("default org sees another org's record: %s", r.raw)
	}
	// An org the user does not belong to is refused; its own member lands
	// there by default.
	e.req("GET", "org", nil, "X-CRM-ORG", orgs[2].ID()).want(t, 403, "NO_PERMISSION")
	e.req("GET", "org", nil, "X-CRM-ORG", "123").want(t, 403, "NO_PERMISSION")
	other := e.tokenFor("other@private.example", allScopes...)
	r = e.reqAs(other, "GET", "org", nil).want(t, 200, "")
	if obj(r.body["org"].([]any)[0])["company_name"] != "Zylker Corp" {
		t.Fatalf("open orgs admit anyone: %s", r.raw)
	}
	if len(r.body["org"].([]any)) != 3 {
		t.Fatalf("the private member reaches all three orgs: %s", r.raw)
	}
	e.reqAs(other, "GET", "org", nil, "X-CRM-ORG", orgs[2].ID()).want(t, 200, "")
}
