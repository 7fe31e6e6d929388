package salesiq_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

const (
	gatewayClient = "1000.GATEWAY"
	otherClient   = "1000.OTHERAPP"
	secret        = "s3cret"
)

// env is one SalesIQ data center ("us") behind real HTTP, with the accounts
// server that issues its tokens.
type env struct {
	t        *testing.T
	clk      *clock.Manual
	reg      *oauth.Registry
	hooks    *hooks.Deliverer
	faults   *faults.Injector
	siq      *salesiq.Server
	api      *httptest.Server
	accounts map[string]*httptest.Server
	token    string // the gateway's token: admin user, every scope
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEnv(t *testing.T, world *seed.World) *env {
	t.Helper()
	e := &env{t: t, clk: clock.NewManual(time.Now().Truncate(time.Millisecond)), accounts: map[string]*httptest.Server{}}
	e.reg = oauth.NewRegistry(e.clk)
	e.reg.AddClient(gatewayClient, secret)
	e.reg.AddClient(otherClient, secret)
	for _, dc := range []string{"us", "eu"} {
		e.reg.SetDC(oauth.DC{Name: dc, APIDomain: "https://www.zohoapis.example/" + dc})
		srv := httptest.NewServer(e.reg.Handler(dc))
		t.Cleanup(srv.Close)
		e.accounts[dc] = srv
	}
	e.hooks = hooks.New(quietLog(), 3)
	e.faults = faults.New(7, e.clk)
	e.siq = salesiq.New(salesiq.Options{DC: "us", Registry: e.reg, Clock: e.clk, Faults: e.faults, Hooks: e.hooks,
		World: world, Seed: 42, Log: quietLog()})
	e.api = httptest.NewServer(e.siq.Handler())
	t.Cleanup(e.api.Close)
	e.token = e.accessToken("us", gatewayClient, e.siq.AdminEmail(), salesiq.AllScopes)
	return e
}

func smallWorld() *seed.World {
	return seed.Generate(seed.Options{Seed: 3, People: 60, Accounts: 8, Products: 4})
}

// accessToken runs the refresh-token grant against the accounts server of
// dc, as the gateway does.
func (e *env) accessToken(dc, client, email string, scopes []string) string {
	e.t.Helper()
	refresh := e.reg.AddRefreshToken(oauth.Grant{ClientID: client, UserEmail: email, Scopes: scopes, DC: dc})
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "client_secret": {secret}, "refresh_token": {refresh}}
	resp, err := http.PostForm(e.accounts[dc].URL+"/oauth/v2/token", form)
	if err != nil {
		e.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		e.t.Fatalf("token response: %+v, %v", out, err)
	}
	return out.AccessToken
}

// response is a decoded SalesIQ answer.
type response struct {
	Status int
	Header http.Header
	URL    string          `json:"url"`
	Object string          `json:"object"`
	Data   json.RawMessage `json:"data"`
	Sync   *int64          `json:"sync_time"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param"`
		JSONKey string `json:"json_key"`
	} `json:"error"`
}

// call sends a request with the given token ("" = no Authorization header).
func (e *env) call(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
	}
	return out
}

// ok sends a request with the gateway's token and fails unless it succeeds;
// it decodes data into v.
func (e *env) ok(method, path string, body, v any) response {
	e.t.Helper()
	r := e.call(method, path, e.token, body)
	if r.Status != http.StatusOK || r.Error != nil {
		e.t.Fatalf("%s %s = HTTP %d error %+v", method, path, r.Status, r.Error)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			e.t.Fatalf("%s %s: data %s: %v", method, path, r.Data, err)
		}
	}
	return r
}

// fails sends a request and checks it is refused with HTTP 200 and code.
func (e *env) fails(method, path, token string, body any, code int) response {
	e.t.Helper()
	r := e.call(method, path, token, body)
	if r.Status != http.StatusOK {
		e.t.Errorf("%s %s: HTTP %d; SalesIQ answers errors with 200", method, path, r.Status)
	}
	if r.Error == nil || r.Error.Code != code {
		e.t.Errorf("%s %s: error %+v, want code %d", method, path, r.Error, code)
	}
	if r.Data != nil {
		e.t.Errorf("%s %s: error answer carries data %s", method, path, r.Data)
	}
	return r
}

func (e *env) path(rest string) string { return "/api/v2/" + e.siq.ScreenName() + rest }

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// numericIDs reports whether every id is a numeric string of n1 to n2 digits.
func numericIDs(ids []string, n1, n2 int) bool {
	for _, id := range ids {
		if len(id) < n1 || len(id) > n2 || strings.Trim(id, "0123456789") != "" {
			return false
		}
	}
	return true
}
