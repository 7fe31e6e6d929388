package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/faults"
)

func start(t *testing.T, cfg sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	if cfg.People == 0 {
		cfg.People, cfg.Accounts, cfg.Products = 24, 5, 4
	}
	if cfg.DCs == nil {
		cfg.DCs = []string{"us", "eu"}
	}
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return sb
}

// accessToken refreshes at an accounts URL with plain net/http, as any
// client would.
func accessToken(t *testing.T, accountsURL string, c sandbox.Credentials, refresh string) (token, apiDomain string, errCode string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "refresh_token": {refresh}}
	resp, err := http.PostForm(accountsURL+"/oauth/v2/token", form)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		APIDomain   string `json:"api_domain"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return out.AccessToken, out.APIDomain, out.Error
}

func get(t *testing.T, rawURL, token string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// dataLen decodes {"data":[...]} and returns the number of items.
func dataLen(t *testing.T, what string, body []byte) int {
	t.Helper()
	var out struct {
		Data  []json.RawMessage `json:"data"`
		Error json.RawMessage   `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Error != nil {
		t.Fatalf("%s: %s (%v)", what, body, err)
	}
	return len(out.Data)
}

func TestStartServesEveryVendorOnItsDC(t *testing.T) {
	sb := start(t, sandbox.Config{Seed: 5})
	eps, creds := sb.Endpoints(), sb.Credentials()
	us := eps["us"]
	if !strings.HasPrefix(creds.ClientID, "1000.") || creds.ClientSecret == "" || creds.DeskOrgID == "" || creds.SalesIQScreenName != "zylker" {
		t.Fatalf("credentials %+v", creds)
	}
	for _, ep := range []string{us.AccountsURL, us.APIDomain, us.DeskURL, us.SalesIQURL} {
		if !strings.HasPrefix(ep, "http://127.0.0.1:") {
			t.Errorf("endpoint %q is not a real local listener", ep)
		}
	}

	crmToken, apiDomain, _ := accessToken(t, us.AccountsURL, creds, creds.RefreshTokens["us"]["crm"])
	if apiDomain != us.APIDomain {
		t.Errorf("api_domain %q, want the us api listener %q", apiDomain, us.APIDomain)
	}
	status, body := get(t, apiDomain+"/crm/v8/Contacts?fields=Last_Name,Email&per_page=5", crmToken, nil)
	if status != http.StatusOK || dataLen(t, "crm contacts", body) == 0 {
		t.Errorf("CRM contacts: %d %s", status, body)
	}
	biginToken, _, _ := accessToken(t, us.AccountsURL, creds, creds.RefreshTokens["us"]["bigin"])
	status, body = get(t, apiDomain+"/bigin/v2/Contacts?fields=Last_Name,Email", biginToken, nil)
	if status != http.StatusOK || dataLen(t, "bigin contacts", body) == 0 {
		t.Errorf("Bigin contacts: %d %s", status, body)
	}
	deskToken, _, _ := accessToken(t, us.AccountsURL, creds, creds.RefreshTokens["us"]["desk"])
	status, body = get(t, us.DeskURL+"/api/v1/tickets?limit=5", deskToken, map[string]string{"orgId": creds.DeskOrgID})
	if status != http.StatusOK || dataLen(t, "desk tickets", body) == 0 {
		t.Errorf("Desk tickets: %d %s", status, body)
	}
	// The demo user is the desk's owner and owns the SalesIQ portal (A5).
	status, body = get(t, us.DeskURL+"/api/v1/myinfo", deskToken, map[string]string{"orgId": creds.DeskOrgID})
	var me struct {
		EmailID string `json:"emailId"`
	}
	if err := json.Unmarshal(body, &me); err != nil || status != 200 || me.EmailID != creds.UserEmail {
		t.Errorf("desk myinfo: %d %s, want %s", status, body, creds.UserEmail)
	}
	siqToken, _, _ := accessToken(t, us.AccountsURL, creds, creds.RefreshTokens["us"]["salesiq"])
	status, body = get(t, us.SalesIQURL+"/api/v2/portals", siqToken, nil)
	var portals struct {
		Data []struct {
			ScreenName string `json:"screenname"`
			Owner      struct {
				EmailID string `json:"email_id"`
			} `json:"owner"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &portals); err != nil || status != 200 || len(portals.Data) != 1 ||
		portals.Data[0].ScreenName != creds.SalesIQScreenName || portals.Data[0].Owner.EmailID != creds.UserEmail {
		t.Errorf("SalesIQ portals: %d %s", status, body)
	}
	status, body = get(t, us.SalesIQURL+"/api/v2/zylker/conversations", siqToken, nil)
	if status != 200 || dataLen(t, "salesiq conversations", body) == 0 {
		t.Errorf("SalesIQ conversations: %d %s", status, body)
	}
	// One token with every product's scopes works everywhere.
	all, _, _ := accessToken(t, us.AccountsURL, creds, creds.RefreshTokens["us"]["all"])
	if status, _ := get(t, us.SalesIQURL+"/api/v2/zylker/departments", all, nil); status != 200 {
		t.Errorf("all-scopes token on SalesIQ: %d", status)
	}

	// The other data center is an empty org.
	eu := eps["eu"]
	euCRM, euDomain, _ := accessToken(t, eu.AccountsURL, creds, creds.RefreshTokens["eu"]["crm"])
	if euDomain != eu.APIDomain || euDomain == us.APIDomain {
		t.Errorf("eu api_domain %q", euDomain)
	}
	if status, body := get(t, euDomain+"/crm/v8/Contacts?fields=Last_Name", euCRM, nil); status != http.StatusNoContent {
		t.Errorf("eu CRM contacts: %d %s, want 204 (empty org)", status, body)
	}
	euSIQ, _, _ := accessToken(t, eu.AccountsURL, creds, creds.RefreshTokens["eu"]["salesiq"])
	status, body = get(t, eu.SalesIQURL+"/api/v2/zylker/conversations", euSIQ, nil)
	if status != 200 || dataLen(t, "eu conversations", body) != 0 {
		t.Errorf("eu SalesIQ conversations: %d %s", status, body)
	}
	if sb.SalesIQ("us") == nil || sb.CRM("eu") == nil || sb.Bigin("us") == nil || sb.Desk("eu") == nil || sb.Registry() == nil || sb.Hooks() == nil {
		t.Error("an accessor returned nil")
	}
}

func TestTokensWorkOnlyOnTheirDC(t *testing.T) {
	sb := start(t, sandbox.Config{Seed: 6})
	eps, creds := sb.Endpoints(), sb.Credentials()
	usAll, _, _ := accessToken(t, eps["us"].AccountsURL, creds, creds.RefreshTokens["us"]["all"])
	eu := eps["eu"]

	status, body := get(t, eu.APIDomain+"/crm/v8/Contacts?fields=Last_Name", usAll, nil)
	if status != http.StatusUnauthorized || !bytes.Contains(body, []byte("INVALID_TOKEN")) {
		t.Errorf("us token on eu CRM: %d %s", status, body)
	}
	status, _ = get(t, eu.DeskURL+"/api/v1/tickets", usAll, map[string]string{"orgId": eu.DeskOrgID})
	if status != http.StatusUnauthorized {
		t.Errorf("us token on eu Desk: %d", status)
	}
	status, body = get(t, eu.SalesIQURL+"/api/v2/portals", usAll, nil)
	if status != 200 || !bytes.Contains(body, []byte(`"code":1003`)) {
		t.Errorf("us token on eu SalesIQ: %d %s", status, body)
	}
	// A refresh token, too, is redeemed only where it was issued.
	if tok, _, code := accessToken(t, eu.AccountsURL, creds, creds.RefreshTokens["us"]["crm"]); tok != "" || code != "invalid_code" {
		t.Errorf("us refresh token at eu accounts: token %q error %q", tok, code)
	}
}

func TestFaultsApplyPerVendor(t *testing.T) {
	sb := start(t, sandbox.Config{Seed: 7, DCs: []string{"jp"},
		Faults: map[string][]faults.Rule{
			"desk":    {{Kind: faults.RateLimit, Rate: 1}},
			"salesiq": {{Kind: faults.ServerError, Rate: 1, Path: "/api/v2/portals"}},
		},
		Limits: map[string]faults.Limits{"bigin": {DailyCredits: 1}},
	})
	jp, creds := sb.Endpoints()["jp"], sb.Credentials()
	tok, _, _ := accessToken(t, jp.AccountsURL, creds, creds.RefreshTokens["jp"]["all"])

	status, body := get(t, jp.DeskURL+"/api/v1/tickets", tok, map[string]string{"orgId": jp.DeskOrgID})
	if status != http.StatusTooManyRequests {
		t.Errorf("desk with a rate-limit fault: %d %s", status, body)
	}
	if status, body := get(t, jp.APIDomain+"/crm/v8/Contacts?fields=Last_Name", tok, nil); status != http.StatusOK {
		t.Errorf("CRM without faults: %d %s", status, body)
	}
	status, body = get(t, jp.SalesIQURL+"/api/v2/portals", tok, nil)
	if status != 200 || !bytes.Contains(body, []byte(`"code":1001`)) {
		t.Errorf("salesiq server error: %d %s", status, body)
	}
	if status, _ := get(t, jp.SalesIQURL+"/api/v2/zylker/departments", tok, nil); status != 200 {
		t.Errorf("salesiq outside the fault's path: %d", status)
	}
	if status, _ := get(t, jp.APIDomain+"/bigin/v2/Contacts?fields=Last_Name", tok, nil); status != http.StatusOK {
		t.Errorf("first Bigin call: %d", status)
	}
	if status, _ := get(t, jp.APIDomain+"/bigin/v2/Contacts?fields=Last_Name", tok, nil); status != http.StatusTooManyRequests {
		t.Errorf("Bigin over its daily credits: %d", status)
	}
	if n := sb.Injector("desk").Stats()[faults.RateLimit]; n != 1 {
		t.Errorf("desk injector counted %d rate limits", n)
	}
	if n := sb.Injector("crm").Stats()[faults.RateLimit]; n != 0 {
		t.Errorf("crm injector counted %d rate limits", n)
	}

	// Faults can change while running: the accounts server throttles now.
	sb.Injector("accounts").SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 1})
	if tok, _, code := accessToken(t, jp.AccountsURL, creds, creds.RefreshTokens["jp"]["crm"]); tok != "" || code != "Access Denied" {
		t.Errorf("throttled token endpoint: token %q error %q", tok, code)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	busy := start(t, sandbox.Config{DCs: []string{"us"}})
	u, err := url.Parse(busy.Endpoints()["us"].APIDomain)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]sandbox.Config{
		"duplicate dc":  {DCs: []string{"us", "us"}},
		"unknown fault": {Faults: map[string][]faults.Rule{"crm2": nil}},
		"unknown limit": {Limits: map[string]faults.Limits{"zoho": {}}},
		"busy port":     {DCs: []string{"eu"}, Ports: map[string]int{"eu/desk": port}},
	} {
		if sb, err := sandbox.Start(context.Background(), cfg); err == nil {
			sb.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestRunPrintsEndpointsAndStopsOnCancel(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "sandbox.json")
	out := newSignalWriter("sandbox running")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- sandbox.Run(ctx, []string{"-dcs", "us,eu", "-seed", "9", "-people", "12", "-accounts", "3", "-products", "2",
			"-faults", "crm=slow:0.5:1ms;salesiq=rate_limit:0.01", "-limits", "desk=concurrent:5,daily:1000", "-json", jsonPath},
			out, io.Discard)
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("Run returned early: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("Run printed no ready line:\n%s", out.String())
	}

	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(jsonPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("json file mode: %v %v", fi.Mode(), err)
	}
	var sum sandbox.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	us := sum.Endpoints["us"]
	text := out.String()
	for _, want := range []string{us.AccountsURL, us.APIDomain, us.DeskURL, us.SalesIQURL, sum.Credentials.ClientID,
		sum.Credentials.ClientSecret, sum.Credentials.RefreshTokens["eu"]["desk"], sum.Credentials.DeskOrgID, "zylker"} {
		if want == "" || !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	tok, _, _ := accessToken(t, us.AccountsURL, sum.Credentials, sum.Credentials.RefreshTokens["us"]["desk"])
	if status, body := get(t, us.DeskURL+"/api/v1/tickets?limit=1", tok, map[string]string{"orgId": sum.Credentials.DeskOrgID}); status != 200 {
		t.Errorf("desk through Run's credentials: %d %s", status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	if !strings.Contains(out.String(), "sandbox stopped") {
		t.Errorf("no stop line:\n%s", out.String())
	}
	if _, err := http.Get(us.AccountsURL + "/oauth/v2/token"); err == nil {
		t.Error("accounts listener still answers after Run returned")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-faults", "nosuch=rate_limit:1"},
		{"-faults", "crm=rate_limit:2"},
		{"-limits", "crm=weekly:3"},
		{"-limits", "desk"},
		{"extra"},
	} {
		err := sandbox.Run(context.Background(), args, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
	rules, err := sandbox.ParseFaults("crm=rate_limit:0.1@/crm/v8/Contacts,slow:0.2:50ms; desk=drop:0.01")
	if err != nil || len(rules["crm"]) != 2 || rules["crm"][0].Path != "/crm/v8/Contacts" || len(rules["desk"]) != 1 {
		t.Errorf("ParseFaults = %+v, %v", rules, err)
	}
	limits, err := sandbox.ParseLimits("salesiq=concurrent:3,daily:100")
	if err != nil || limits["salesiq"] != (faults.Limits{MaxConcurrent: 3, DailyCredits: 100}) {
		t.Errorf("ParseLimits = %+v, %v", limits, err)
	}
}

// signalWriter collects output and closes seen once it contains a marker.
type signalWriter struct {
	marker string
	seen   chan struct{}
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func newSignalWriter(marker string) *signalWriter {
	return &signalWriter{marker: marker, seen: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.closed && strings.Contains(w.buf.String(), w.marker) {
		w.closed = true
		close(w.seen)
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
