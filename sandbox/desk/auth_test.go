package desk_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/faults"
)

func TestAuthErrors(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.call(request{method: "GET", path: "/api/v1/departments", token: ptr("")}), 401, "UNAUTHORIZED")
	wantError(t, e.call(request{method: "GET", path: "/api/v1/departments", token: ptr("1000.bogus.bogus")}), 401, "INVALID_OAUTH")

	bearer := e.call(request{method: "GET", path: "/api/v1/departments", token: ptr(""), header: map[string]string{"Authorization": "Bearer " + e.token}})
	wantError(t, bearer, 401, "UNAUTHORIZED")

	eu := e.issue("admin@zylker.example", "eu")
	wantError(t, e.call(request{method: "GET", path: "/api/v1/departments", token: &eu}), 401, "INVALID_OAUTH")

	if r := e.get("/api/v1/departments"); r.status != 200 {
		t.Fatalf("valid token: %d %s", r.status, r.raw)
	}
	e.clk.Advance(time.Hour)
	wantError(t, e.get("/api/v1/departments"), 401, "INVALID_OAUTH")
	wantError(t, e.get("/api/v1/organizations"), 401, "INVALID_OAUTH")
}

func TestOrgIDRules(t *testing.T) {
	e := newEnv(t)
	orgs := e.call(request{method: "GET", path: "/api/v1/organizations", orgID: ptr("")}).data(t)
	if len(orgs) != 1 {
		t.Fatalf("orgs %v", orgs)
	}
	org := orgs[0]
	if org["id"] != e.desk.OrgID() || org["portalName"] != "zylker" || org["edition"] != "ENTERPRISE" ||
		org["companyName"] == nil || org["timeZone"] == nil || org["isAdminInOrg"] != true {
		t.Fatalf("org %v", org)
	}
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(org["id"].(string)) {
		t.Fatalf("org id %v is not a numeric string", org["id"])
	}

	wantError(t, e.call(request{method: "GET", path: "/api/v1/contacts", orgID: ptr("")}), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.call(request{method: "GET", path: "/api/v1/contacts", orgID: ptr("12345")}), 401, "OAUTH_ORG_MISMATCH")
	wantError(t, e.call(request{method: "GET", path: "/api/v1/contacts", orgID: ptr("not-a-number")}), 401, "OAUTH_ORG_MISMATCH")
	if r := e.call(request{method: "GET", path: "/api/v1/departments?orgId=" + e.desk.OrgID(), orgID: ptr("")}); r.status != 200 {
		t.Fatalf("orgId as a query parameter: %d %s", r.status, r.raw)
	}

	// A closed org is only for its own agents.
	other := e.desk.AddOrg(desk.OrgSpec{PortalName: "globex", CompanyName: "Globex", Admin: "hank@globex.example"})
	wantError(t, e.call(request{method: "GET", path: "/api/v1/departments", orgID: ptr(other.OrgID())}), 401, "OAUTH_ORG_MISMATCH")
	hank := e.issue("hank@globex.example", "us")
	if r := e.call(request{method: "GET", path: "/api/v1/departments", token: &hank, orgID: ptr(other.OrgID())}); r.status != 200 {
		t.Fatalf("globex admin: %d %s", r.status, r.raw)
	}
	seen := e.call(request{method: "GET", path: "/api/v1/organizations", token: &hank, orgID: ptr("")}).data(t)
	if len(seen) != 2 {
		t.Fatalf("hank sees %d orgs, want the open seeded one and globex", len(seen))
	}
	if mine := e.call(request{method: "GET", path: "/api/v1/organizations", orgID: ptr("")}).data(t); len(mine) != 1 {
		t.Fatalf("a stranger to globex sees %d orgs", len(mine))
	}
}

func TestUnknownURLAndIDs(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.get("/api/v1/nothingHere"), 404, "URL_NOT_FOUND")
	wantError(t, e.get("/api/v1/tickets/123456789012345"), 404, "URL_NOT_FOUND")
	wantError(t, e.get("/api/v1/tickets/abc"), 404, "URL_NOT_FOUND")
	wantError(t, e.call(request{method: "DELETE", path: "/api/v1/contacts"}), 404, "URL_NOT_FOUND")
}

func TestFaultResponder(t *testing.T) {
	e := newEnv(t)
	e.faults.SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 1, Path: "/api/v1/tickets"})
	r := e.get("/api/v1/tickets")
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	if r.header.Get("Retry-After") != "1" || r.header.Get("X-Rate-Limit-Remaining-v3") != "0" {
		t.Fatalf("429 headers %v", r.header)
	}
	if r := e.get("/api/v1/departments"); r.status != 200 {
		t.Fatalf("other paths unaffected: %d", r.status)
	}
	e.faults.SetRules(faults.Rule{Kind: faults.ServerError, Rate: 1})
	wantError(t, e.get("/api/v1/departments"), 500, "INTERNAL_SERVER_ERROR")
	e.faults.SetRules(faults.Rule{Kind: faults.ExpiredToken, Rate: 1})
	wantError(t, e.get("/api/v1/departments"), 401, "INVALID_OAUTH")

	e.faults.SetRules()
	e.faults.SetLimits(faults.Limits{DailyCredits: 2})
	e.get("/api/v1/departments")
	e.get("/api/v1/departments")
	r = e.get("/api/v1/departments")
	wantError(t, r, 429, "TOO_MANY_REQUESTS")
	if r.header.Get("Retry-After") == "" || r.header.Get("Retry-After") == "0" {
		t.Fatalf("daily budget 429 Retry-After %q", r.header.Get("Retry-After"))
	}
}
