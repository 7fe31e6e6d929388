package crm_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
)

func TestAuthErrorsAreCRMShaped(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	const invalid = `{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}`

	e.reqAs("", "GET", "Contacts?fields=Email", nil).want(t, 401, "AUTHENTICATION_FAILURE")
	if r := e.reqAs("nonsense", "GET", "Contacts?fields=Email", nil).want(t, 401, "INVALID_TOKEN"); strings.TrimSpace(string(r.raw)) != invalid {
		t.Fatalf("body %s, want %s", r.raw, invalid)
	}
	bearer := e.req("GET", "Contacts?fields=Email", nil, "Authorization", "Bearer "+e.token)
	bearer.want(t, 401, "INVALID_TOKEN")

	// A token of another data center is not valid here.
	e.reg.SetDC(oauth.DC{Name: "eu", APIDomain: "https://www.zohoapis.eu"})
	eu := httptest.NewServer(e.reg.Handler("eu"))
	defer eu.Close()
	saved := e.accounts
	e.accounts = eu
	euToken := e.accessToken(e.reg.AddRefreshToken(oauth.Grant{ClientID: "1000.GATEWAY", UserEmail: e.email, Scopes: allScopes, DC: "eu"}))
	e.accounts = saved
	e.reqAs(euToken, "GET", "Contacts?fields=Email", nil).want(t, 401, "INVALID_TOKEN")

	e.req("GET", "Contacts?fields=Email", nil).want(t, 200, "")
	e.clk.Advance(time.Hour)
	if r := e.req("GET", "Contacts?fields=Email", nil).want(t, 401, "INVALID_TOKEN"); strings.TrimSpace(string(r.raw)) != invalid {
		t.Fatalf("expired token body %s", r.raw)
	}
	e.advance(0)
	e.req("GET", "Contacts?fields=Email", nil).want(t, 200, "")
}

func TestRequestLevelErrors(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	r := e.req("GET", "Widgets?fields=Name", nil).want(t, 400, "INVALID_MODULE")
	sameKeys(t, "error", r.body, "code", "details", "message", "status")
	if r.body["status"] != "error" {
		t.Fatalf("status key %v", r.body["status"])
	}
	e.req("GET", "/crm/v7/Contacts?fields=Email", nil).want(t, 404, "INVALID_URL_PATTERN")
	e.req("GET", "Contacts/1/Notes/extra", nil).want(t, 404, "INVALID_URL_PATTERN")
	e.req("GET", "settings/layouts", nil).want(t, 404, "INVALID_URL_PATTERN")
	r = e.req("GET", "Contacts", nil).want(t, 400, "REQUIRED_PARAM_MISSING")
	if errDetails(r.body)["param"] != "fields" {
		t.Fatalf("details %v", r.body["details"])
	}
	var many []string
	for i := range 51 {
		many = append(many, "Email"+strconv.Itoa(i))
	}
	r = e.req("GET", "Contacts?fields="+strings.Join(many, ","), nil).want(t, 400, "LIMIT_EXCEEDED")
	if str(errDetails(r.body)["limit"]) != "50" {
		t.Fatalf("details %v", r.body["details"])
	}
	e.req("GET", "Contacts?fields=Nope", nil).want(t, 400, "INVALID_DATA")
	e.req("PATCH", "Contacts", map[string]any{"data": []any{}}).want(t, 400, "INVALID_REQUEST_METHOD")
	r = e.req("GET", "Contacts/123", nil).want(t, 400, "INVALID_DATA")
	if r.body["message"] != "the id given seems to be invalid" {
		t.Fatalf("message %v", r.body["message"])
	}
	e.req("POST", "Contacts", "{not json").want(t, 400, "INVALID_DATA")
	e.req("POST", "Contacts", map[string]any{"nodata": 1}).want(t, 400, "REQUIRED_PARAM_MISSING")

	// Scopes are checked per module and operation.
	readOnly := e.tokenFor("reader@zylkercorp.example", "ZohoCRM.modules.contacts.READ")
	e.reqAs(readOnly, "GET", "Contacts?fields=Email", nil).want(t, 200, "")
	e.reqAs(readOnly, "GET", "Accounts?fields=Account_Name", nil).want(t, 401, "OAUTH_SCOPE_MISMATCH")
	e.reqAs(readOnly, "POST", "Contacts", map[string]any{"data": []any{map[string]any{"Last_Name": "x"}}}).
		want(t, 401, "OAUTH_SCOPE_MISMATCH")
	e.reqAs(readOnly, "GET", "Contacts/search?email=a@b.c", nil).want(t, 401, "OAUTH_SCOPE_MISMATCH")
	e.reqAs(readOnly, "GET", "settings/fields?module=Contacts", nil).want(t, 401, "OAUTH_SCOPE_MISMATCH")
}

func TestOnlyConfiguredHostsAreAnswered(t *testing.T) {
	e := newEnv(t, func(o *crm.Options) { o.Hosts = []string{"www.zohoapis.com"} })
	e.req("GET", "org", nil).want(t, 400, "INVALID_HOST")
	e.req("GET", "org", nil, "Host", "www.zohoapis.com").want(t, 200, "")
}

func TestFaultInjectionSpeaksCRM(t *testing.T) {
	var in *faults.Injector
	e := newEnv(t, withWorld(20, 5, 3), func(o *crm.Options) {
		in = faults.New(7, o.Clock)
		o.Faults = in
		o.RateLimit = 5000
	})
	in.SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 1, Path: "/crm/v8/Contacts"})
	r := e.req("GET", "Contacts?fields=Email", nil).want(t, 429, "TOO_MANY_REQUESTS")
	sameKeys(t, "429 body", r.body, "code", "details", "message", "status")
	for _, h := range []string{"X-RATELIMIT-LIMIT", "X-RATELIMIT-REMAINING", "X-RATELIMIT-RESET", "Retry-After"} {
		if r.header.Get(h) == "" {
			t.Fatalf("429 lacks %s: %v", h, r.header)
		}
	}
	if r.header.Get("X-RATELIMIT-LIMIT") != "5000" || r.header.Get("Retry-After") != "1" {
		t.Fatalf("headers %v", r.header)
	}
	reset, err := strconv.ParseInt(r.header.Get("X-RATELIMIT-RESET"), 10, 64)
	if err != nil || reset != e.clk.Now().Add(time.Second).UnixMilli() {
		t.Fatalf("X-RATELIMIT-RESET %q, want epoch ms a second from now", r.header.Get("X-RATELIMIT-RESET"))
	}
	e.req("GET", "Accounts?fields=Account_Name", nil).want(t, 200, "")

	in.SetRules(faults.Rule{Kind: faults.ServerError, Rate: 1})
	r = e.req("GET", "Accounts?fields=Account_Name", nil).want(t, 500, "INTERNAL_ERROR")
	if r.body["message"] != "Internal Server Error" {
		t.Fatalf("500 body %s", r.raw)
	}
	in.SetRules(faults.Rule{Kind: faults.ExpiredToken, Rate: 1})
	e.req("GET", "Accounts?fields=Account_Name", nil).want(t, 401, "INVALID_TOKEN")

	// The daily credit budget: the injector's quota, answered as CRM does.
	in.SetRules()
	in.SetLimits(faults.Limits{DailyCredits: 2})
	e.req("GET", "org", nil).want(t, 200, "")
	e.req("GET", "org", nil).want(t, 200, "")
	r = e.req("GET", "org", nil).want(t, 429, "TOO_MANY_REQUESTS")
	if r.header.Get("X-RATELIMIT-REMAINING") != "0" {
		t.Fatalf("remaining %q", r.header.Get("X-RATELIMIT-REMAINING"))
	}
	if s := in.Stats(); s[faults.RateLimit] != 2 || s[faults.ServerError] != 1 || s[faults.ExpiredToken] != 1 {
		t.Fatalf("stats %v", s)
	}
}
