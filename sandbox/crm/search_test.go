package crm_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func search(e *env, q string) reply {
	e.t.Helper()
	return e.req("GET", "Contacts/search?"+q, nil)
}

func crit(c string) string { return "criteria=" + url.QueryEscape(c) }

func TestSearchCriteria(t *testing.T) {
	e := newEnv(t)
	acc := e.create("Accounts", map[string]any{"Account_Name": "Acme (Japan), KK"})
	for _, c := range []map[string]any{
		{"First_Name": "Olivia", "Last_Name": "Smith", "Email": "olivia.smith@acme.example", "Customer_Type": "Enterprise",
			"Loyalty_Points__c": 100, "Phone": "+1 555 123 4567", "Account_Name": map[string]any{"id": acc}},
		{"First_Name": "Oliver", "Last_Name": "Smithson", "Email": "oliver@globex.example", "Customer_Type": "SMB", "Loyalty_Points__c": 900},
		{"First_Name": "Emma", "Last_Name": "Jones", "Email": "emma@acme.example", "Customer_Type": "Trial", "Mobile": "03-1234-5678"},
	} {
		if _, err := e.srv.Create("Contacts", c); err != nil {
			t.Fatal(err)
		}
	}
	names := func(r reply) string {
		t.Helper()
		var out []string
		for _, rec := range r.data() {
			full, _ := e.srv.Record("Contacts", str(rec["id"]))
			out = append(out, str(full["Last_Name"]))
		}
		return strings.Join(out, ",")
	}
	cases := map[string]string{
		"(Last_Name:equals:Smith)":                                    "Smithson,Smith", // equals behaves like contains on text
		"(Last_Name:starts_with:Smiths)":                              "Smithson",
		"(Customer_Type:equals:Enterprise)":                           "Smith",
		"(Customer_Type:in:Enterprise,Trial)":                         "Jones,Smith",
		"(Loyalty_Points__c:greater_than:100)":                        "Smithson",
		"(Loyalty_Points__c:between:50,150)":                          "Smith",
		"((Email:equals:acme.example)and(First_Name:starts_with:Ol))": "Smith",
		"((Customer_Type:equals:SMB)or(Customer_Type:equals:Trial))":  "Jones,Smithson",
		"(Account_Name:equals:Acme \\(Japan\\)\\, KK)":                "Smith",
		"(Email:not_equal:emma@acme.example)":                         "Smithson,Smith",
		"(Created_Time:greater_equal:2020-01-01T00:00:00+00:00)":      "Jones,Smithson,Smith",
	}
	for c, want := range cases {
		r := search(e, crit(c))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", c, r.status, r.raw)
		}
		if got := names(r); got != want {
			t.Errorf("%s found %s, want %s", c, got, want)
		}
	}
	r := search(e, "email=EMMA@acme.example").want(t, 200, "")
	if names(r) != "Jones" {
		t.Fatalf("email search %s", names(r))
	}
	sameKeys(t, "search info", r.info(), "per_page", "count", "page", "more_records")
	if names(search(e, "email=acme.example")) != "" {
		t.Fatal("email= should match whole addresses")
	}
	if got := names(search(e, "phone=1234")); got != "Jones,Smith" {
		t.Fatalf("phone search %s", got)
	}
	if got := names(search(e, "word=globex")); got != "Smithson" {
		t.Fatalf("word search %s", got)
	}
	if r := search(e, "word=Olivia&fields=Email"); len(r.data()) != 1 || len(r.data()[0]) != 2 {
		t.Fatalf("search with fields %s", r.raw)
	}
	search(e, crit("(Last_Name:equals:Nobody)")).empty(t, 204)

	search(e, "").want(t, 400, "REQUIRED_PARAM_MISSING")
	search(e, crit("Last_Name:equals:Smith")).want(t, 400, "INVALID_QUERY")
	search(e, crit("(Last_Name:equals:Smith")).want(t, 400, "INVALID_QUERY")
	search(e, crit("(Nope:equals:Smith)")).want(t, 400, "INVALID_QUERY")
	search(e, crit("(Loyalty_Points__c:starts_with:1)")).want(t, 400, "INVALID_QUERY")
	search(e, crit("(Loyalty_Points__c:greater_than:many)")).want(t, 400, "INVALID_QUERY")
	var eleven []string
	for range 11 {
		eleven = append(eleven, "(Last_Name:equals:a)")
	}
	r = search(e, crit("("+strings.Join(eleven, "or")+")")).want(t, 400, "LIMIT_EXCEEDED")
	if str(errDetails(r.body)["limit"]) != "10" {
		t.Fatalf("details %v", r.body["details"])
	}
	search(e, crit("("+strings.Join(eleven[:10], "or")+")")).empty(t, 204)
	search(e, "word=a&page=11&per_page=200").want(t, 400, "LIMIT_REACHED")
	search(e, "word=a&page=10&per_page=200").empty(t, 204)
}

func TestSearchIndexLag(t *testing.T) {
	e := newEnv(t, withWorld(30, 5, 3))
	e.srv.SetIndexLag(30 * time.Second)
	if _, err := e.srv.Create("Contacts", map[string]any{"Last_Name": "Lagged", "Email": "lagged@index.example"}); err != nil {
		t.Fatal(err)
	}
	r := e.req("POST", "Contacts", map[string]any{"data": []any{contact("Written", "written@index.example")}}).want(t, 201, "")
	apiID := str(obj(r.data()[0]["details"])["id"])
	search(e, "email=lagged@index.example").empty(t, 204)
	search(e, "word=index.example").empty(t, 204)
	// The record itself is readable at once; only search trails.
	e.req("GET", "Contacts/"+apiID, nil).want(t, 200, "")
	e.clk.Advance(29 * time.Second)
	search(e, "word=index.example").empty(t, 204)
	e.clk.Advance(time.Second)
	if r := search(e, "word=index.example").want(t, 200, ""); len(r.data()) != 2 {
		t.Fatalf("after the lag: %s", r.raw)
	}
	// An edit makes the record disappear from search until it is re-indexed.
	if err := e.srv.Edit("Contacts", apiID, map[string]any{"Title": "Reindexed"}); err != nil {
		t.Fatal(err)
	}
	if r := search(e, "word=index.example").want(t, 200, ""); len(r.data()) != 1 {
		t.Fatalf("during re-indexing: %s", r.raw)
	}
	e.clk.Advance(30 * time.Second)
	e.srv.SetIndexLag(0)
	if r := search(e, "word=index.example").want(t, 200, ""); len(r.data()) != 2 {
		t.Fatalf("after re-indexing: %s", r.raw)
	}
}

func TestCount(t *testing.T) {
	e := newEnv(t, withWorld(80, 8, 4))
	r := e.req("GET", "Contacts/actions/count", nil).want(t, 200, "")
	sameKeys(t, "count", r.body, "count")
	if str(r.body["count"]) != str(e.srv.Count("Contacts")) {
		t.Fatalf("count %v, want %d", r.body["count"], e.srv.Count("Contacts"))
	}
	r = e.req("GET", "Contacts/actions/count?"+crit("(Customer_Type:equals:Trial)"), nil).want(t, 200, "")
	want := 0
	for _, id := range e.srv.IDs("Contacts") {
		if rec, _ := e.srv.Record("Contacts", id); rec["Customer_Type"] == "Trial" {
			want++
		}
	}
	if str(r.body["count"]) != str(want) {
		t.Fatalf("count with criteria %v, want %d", r.body["count"], want)
	}
}

func TestSearchTypedFields(t *testing.T) {
	e := newEnv(t)
	org := e.srv.Org("")
	if org.Name() == "" || len(org.Users()) != 4 {
		t.Fatalf("default org %q with users %v", org.Name(), org.Users())
	}
	kenji := org.Users()[1]
	var kenjiID string
	for _, u := range e.req("GET", "users?type=AllUsers", nil).body["users"].([]any) {
		if obj(u)["email"] == kenji {
			kenjiID = str(obj(u)["id"])
		}
	}
	cid := e.create("Contacts", map[string]any{"Last_Name": "Dated", "Renewal_Date__c": "2027-01-15",
		"Email_Opt_Out": true, "Owner": map[string]any{"id": kenjiID}})
	e.create("Contacts", map[string]any{"Last_Name": "Undated"})
	e.create("Calls", map[string]any{"Subject": "Early", "Call_Type": "Inbound", "Call_Start_Time": "2026-10-01T09:00:00+09:00", "Who_Id": cid})
	e.create("Calls", map[string]any{"Subject": "Late", "Call_Type": "Outbound", "Call_Start_Time": "2026-10-20T09:00:00-07:00"})
	one := func(path, want string) {
		t.Helper()
		r := e.req("GET", path, nil)
		var got []string
		for _, rec := range r.data() {
			got = append(got, str(rec["id"]))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s found %v (%d %s), want %s", path, got, r.status, r.raw, want)
		}
	}
	one("Contacts/search?"+crit("(Renewal_Date__c:between:2027-01-01,2027-01-31)"), cid)
	one("Contacts/search?"+crit("(Renewal_Date__c:less_than:2027-01-01)"), "")
	one("Contacts/search?"+crit("(Email_Opt_Out:equals:true)"), cid)
	one("Contacts/search?"+crit("(Owner:equals:"+kenjiID+")"), cid)
	one("Contacts/search?"+crit("(Full_Name:starts_with:Dat)"), cid)
	early, _ := e.find("Calls", func(m map[string]any) bool { return m["Subject"] == "Early" })
	one("Calls/search?"+crit("(Call_Start_Time:less_than:2026-10-10T00:00:00Z)"), early)
	one("Calls/search?"+crit("(Who_Id:equals:"+cid+")"), early)
	rec, _ := e.srv.Record("Calls", early)
	if rec["Call_Start_Time"] != "2026-09-30T17:00:00-07:00" {
		t.Fatalf("datetime renders in the org offset: %v", rec["Call_Start_Time"])
	}
	e.req("GET", "Contacts/search?"+crit("(Renewal_Date__c:equals:15/01/2027)"), nil).want(t, 400, "INVALID_QUERY")
	e.req("GET", "Contacts/search?"+crit("(Email_Opt_Out:equals:maybe)"), nil).want(t, 400, "INVALID_QUERY")
}
