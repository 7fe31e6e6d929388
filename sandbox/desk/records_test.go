package desk_test

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

var (
	idPattern   = regexp.MustCompile(`^[0-9]{16,19}$`)
	timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func TestContactListPagingIsOneBased(t *testing.T) {
	e := newEnv(t, withWorld(300))
	wantError(t, e.get("/api/v1/contacts?from=0&limit=10"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/contacts?from=1&limit=100"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/contacts?sortBy=shoeSize"), 422, "UNPROCESSABLE_ENTITY")

	total := e.desk.Counts().Contacts
	seen := map[string]bool{}
	for from := 1; ; from += 99 {
		r := e.get(fmt.Sprintf("/api/v1/contacts?from=%d&limit=99&sortBy=modifiedTime", from))
		if r.status == 204 {
			if len(r.raw) != 0 {
				t.Fatalf("204 with a body: %q", r.raw)
			}
			break
		}
		page := r.data(t)
		for _, c := range page {
			id := c["id"].(string)
			if seen[id] {
				t.Fatalf("contact %s on two pages", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != total {
		t.Fatalf("paged through %d contacts, org has %d", len(seen), total)
	}

	first := e.get("/api/v1/contacts?from=1&limit=2&sortBy=createdTime").data(t)
	second := e.get("/api/v1/contacts?from=2&limit=1&sortBy=createdTime").data(t)
	if first[1]["id"] != second[0]["id"] {
		t.Fatalf("from=2 should start at the second contact")
	}
	c := first[0]
	for _, k := range []string{"id", "accountId", "ownerId"} {
		if v, _ := c[k].(string); v != "" && !idPattern.MatchString(v) {
			t.Fatalf("%s = %v is not a 16-19 digit string", k, c[k])
		}
	}
	for _, k := range []string{"createdTime", "modifiedTime"} {
		if !timePattern.MatchString(c[k].(string)) {
			t.Fatalf("%s = %v", k, c[k])
		}
	}
	for _, k := range []string{"secondaryEmail", "zohoCRMContact", "isDeleted", "isTrashed", "webUrl", "cf", "type"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("contact lacks %q: %v", k, c)
		}
	}
	if !strings.HasPrefix(c["webUrl"].(string), "https://desk.zoho.com/support/zylker/ShowHomePage.do#Contacts/dv/") {
		t.Fatalf("webUrl %v", c["webUrl"])
	}
}

func TestSearchIsZeroBasedWithCount(t *testing.T) {
	e := newEnv(t, withWorld(300))
	all := e.get("/api/v1/contacts/search?_all=a&limit=100").obj(t)
	n := int(all["count"].(float64))
	if n < 5 {
		t.Fatalf("count %d", n)
	}
	page0 := e.get("/api/v1/contacts/search?_all=a&from=0&limit=2&sortBy=createdTime").obj(t)
	page1 := e.get("/api/v1/contacts/search?_all=a&from=1&limit=2&sortBy=createdTime").obj(t)
	d0, d1 := page0["data"].([]any), page1["data"].([]any)
	if d0[1].(map[string]any)["id"] != d1[0].(map[string]any)["id"] {
		t.Fatalf("search from=1 must start at the second hit")
	}
	if page0["count"].(float64) != float64(n) {
		t.Fatalf("count is the total, not the page size: %v", page0["count"])
	}
	if r := e.get(fmt.Sprintf("/api/v1/contacts/search?_all=a&from=%d", n)); r.status != 204 || len(r.raw) != 0 {
		t.Fatalf("past the end: %d %q", r.status, r.raw)
	}
	wantError(t, e.get("/api/v1/contacts/search?emial=x@y.example"), 422, "UNPROCESSABLE_ENTITY")

	created, err := e.desk.CreateContact(desk.Fields{"lastName": "Searchable", "email": "Find.Me@Example.com", "secondaryEmail": "alt@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	hit := e.get("/api/v1/contacts/search?email=" + url.QueryEscape("find.me@example.com")).obj(t)
	if hit["count"].(float64) != 1 || hit["data"].([]any)[0].(map[string]any)["id"] != created.ID() {
		t.Fatalf("email search %v", hit)
	}
	if r := e.get("/api/v1/contacts/search?email=nobody@example.com"); r.status != 204 {
		t.Fatalf("no hit: %d", r.status)
	}
	if r := e.get("/api/v1/contacts/search?secondaryEmail=alt@example.com"); r.status != 200 {
		t.Fatalf("secondary email search: %d", r.status)
	}
	if r := e.get("/api/v1/contacts/search?lastName=Search*"); r.status != 200 {
		t.Fatalf("wildcard: %d", r.status)
	}
	rng := url.QueryEscape(worldNow.Format("2006-01-02T15:04:05.000Z") + "," + worldNow.Add(1e9).Format("2006-01-02T15:04:05.000Z"))
	recent := e.get("/api/v1/contacts/search?sortBy=-modifiedTime&modifiedTimeRange=" + rng).obj(t)
	if recent["count"].(float64) != 1 {
		t.Fatalf("modifiedTimeRange should find only the new contact: %v", recent["count"])
	}
	wantError(t, e.get("/api/v1/contacts/search?modifiedTimeRange=yesterday"), 422, "UNPROCESSABLE_ENTITY")

	acc := e.get("/api/v1/accounts?from=1&limit=1").data(t)[0]
	hits := e.get("/api/v1/accounts/search?accountName=" + url.QueryEscape(acc["accountName"].(string))).obj(t)
	if hits["count"].(float64) < 1 {
		t.Fatalf("account search %v", hits)
	}
	prod := e.get("/api/v1/products?from=1&limit=1").data(t)[0]
	if r := e.get("/api/v1/products/search?productName=" + url.QueryEscape(prod["productName"].(string))); r.status != 200 {
		t.Fatalf("product search %d", r.status)
	}
}

func TestEmptyResultsAre204(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/v1/contacts", "/api/v1/accounts", "/api/v1/products", "/api/v1/tickets",
		"/api/v1/tickets/search?subject=nothing", "/api/v1/articles", "/api/v1/webhooks", "/api/v1/recycleBin"} {
		r := e.get(path)
		if r.status != 204 || len(r.raw) != 0 {
			t.Errorf("%s: %d %q, want 204 without a body", path, r.status, r.raw)
		}
	}
	ct, err := e.desk.CreateContact(desk.Fields{"lastName": "Lonely"})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get("/api/v1/contacts/" + ct.ID() + "/tickets"); r.status != 204 {
		t.Errorf("tickets of a new contact: %d", r.status)
	}
}

func TestFieldMetadataAndValidation(t *testing.T) {
	e := newEnv(t, withWorld(50))
	fields := e.get("/api/v1/organizationFields?module=contacts").data(t)
	byName := map[string]map[string]any{}
	for _, f := range fields {
		byName[f["apiName"].(string)] = f
	}
	if f := byName["lastName"]; f["isMandatory"] != true || f["type"] != "Text" || f["isCustomField"] != false {
		t.Fatalf("lastName %v", f)
	}
	if f := byName["phone"]; f["type"] != "Phone" {
		t.Fatalf("phone %v", f)
	}
	ctype := byName["cf_customer_type"]
	if ctype["isCustomField"] != true || ctype["type"] != "Picklist" || len(ctype["allowedValues"].([]any)) != 4 {
		t.Fatalf("cf_customer_type %v", ctype)
	}
	tf := e.get("/api/v1/organizationFields?module=tickets").data(t)
	var status map[string]any
	for _, f := range tf {
		if f["apiName"] == "status" {
			status = f
		}
	}
	if types := status["statusTypes"].(map[string]any); types["Waiting on Customer"] != "On Hold" {
		t.Fatalf("status field %v", status)
	}
	wantError(t, e.get("/api/v1/organizationFields?module=leads"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/organizationFields"), 422, "UNPROCESSABLE_ENTITY")

	id := e.get("/api/v1/contacts?limit=1").data(t)[0]["id"].(string)
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"phone": 5551234}), 422, "INVALID_DATA", "/phone:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"email": "not-an-email"}), 422, "INVALID_DATA", "/email:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"cf": map[string]any{"cf_loyalty_points": "lots"}}), 422, "INVALID_DATA", "/cf/cf_loyalty_points:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"cf": map[string]any{"cf_customer_type": "Whale"}}), 422, "INVALID_DATA", "/cf/cf_customer_type:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"lastName": ""}), 422, "INVALID_DATA", "/lastName:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"accountId": "1234567890123456"}), 422, "INVALID_DATA", "/accountId:invalid")
	wantError(t, e.patch("/api/v1/contacts/"+id, map[string]any{"shoeSize": 44}), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.patch("/api/v1/contacts/"+id, "{not json"), 400, "BAD_REQUEST")
	wantError(t, e.post("/api/v1/contacts", map[string]any{"firstName": "No"}), 422, "INVALID_DATA", "/lastName:missing")

	r := e.patch("/api/v1/contacts/"+id, map[string]any{"phone": "+1 555 010 0000", "cf": map[string]any{"cf_loyalty_points": "42", "cf_newsletter": true}, "id": id, "webUrl": "ignored"})
	if r.status != 200 {
		t.Fatalf("valid patch: %d %s", r.status, r.raw)
	}
	c := r.obj(t)
	cf := c["cf"].(map[string]any)
	if c["phone"] != "+1 555 010 0000" || cf["cf_loyalty_points"] != "42" || cf["cf_newsletter"] != true {
		t.Fatalf("patched %v", c)
	}

	// A field added later is validated too.
	if _, err := e.desk.AddCustomField("accounts", desk.FieldSpec{APIName: "cf_founded", Label: "Founded", Type: "Date"}); err != nil {
		t.Fatal(err)
	}
	acc := e.get("/api/v1/accounts?limit=1").data(t)[0]["id"].(string)
	wantError(t, e.patch("/api/v1/accounts/"+acc, map[string]any{"cf": map[string]any{"cf_founded": "last year"}}), 422, "INVALID_DATA", "/cf/cf_founded:invalid")
	if r := e.patch("/api/v1/accounts/"+acc, map[string]any{"cf": map[string]any{"cf_founded": "1999-04-01"}}); r.status != 200 {
		t.Fatalf("date field: %d %s", r.status, r.raw)
	}
	wantError(t, e.post("/api/v1/products", map[string]any{"productName": "Widget"}), 422, "INVALID_DATA", "/departmentIds:missing")
	p := e.post("/api/v1/products", map[string]any{"productName": "Widget", "unitPrice": 12.5, "departmentIds": []string{e.department("Sales")}})
	if p.status != 200 || p.obj(t)["unitPrice"] != "12.5" {
		t.Fatalf("product %d %s", p.status, p.raw)
	}
}

func TestContactsByIDsAndIncludes(t *testing.T) {
	e := newEnv(t, withWorld(100))
	list := e.get("/api/v1/contacts?limit=3&include=accounts").data(t)
	ids := []string{list[0]["id"].(string), list[2]["id"].(string)}
	got := e.get("/api/v1/contacts/contactsByIds?ids=" + strings.Join(ids, ",")).data(t)
	if len(got) != 2 || got[0]["id"] != ids[0] || got[1]["id"] != ids[1] {
		t.Fatalf("contactsByIds %v", got)
	}
	if _, ok := list[0]["account"]; !ok {
		t.Fatalf("include=accounts adds account: %v", list[0])
	}
}
