package crm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// worldNow is the reference time of the test worlds; the manual clock
// starts an hour later.
var worldNow = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// allScopes is what the gateway asks for when connecting a CRM.
var allScopes = []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.notifications.ALL",
	"ZohoCRM.users.READ", "ZohoCRM.org.READ", "ZohoSearch.securesearch.READ"}

var biginScopes = []string{"ZohoBigin.modules.ALL", "ZohoBigin.settings.ALL", "ZohoBigin.notifications.ALL",
	"ZohoBigin.users.ALL", "ZohoBigin.org.read", "ZohoSearch.securesearch.READ"}

var (
	timeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[-+]\d{2}:\d{2}$`)
	idRE   = regexp.MustCompile(`^\d{19}$`)
)

// env is one sandbox CRM reached over real HTTP with a real OAuth token.
type env struct {
	t        *testing.T
	clk      *clock.Manual
	reg      *oauth.Registry
	srv      *crm.Server
	api      *httptest.Server
	accounts *httptest.Server
	hooks    *hooks.Deliverer
	prefix   string
	token    string
	refresh  string
	email    string
}

type envOpt func(*crm.Options)

func withWorld(people, accounts, products int) envOpt {
	return func(o *crm.Options) {
		o.World = seed.Generate(seed.Options{Seed: 3, People: people, Accounts: accounts, Products: products, Now: worldNow})
		o.Seed = 3
	}
}

func bigin() envOpt { return func(o *crm.Options) { o.Flavor = crm.Bigin } }

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	clk := clock.NewManual(worldNow.Add(time.Hour))
	reg := oauth.NewRegistry(clk)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, clk: clk, reg: reg, hooks: hooks.New(log, 2), email: "admin@zylkercorp.example"}
	o := crm.Options{DC: "us", Registry: reg, Clock: clk, Hooks: e.hooks, Log: log}
	for _, opt := range opts {
		opt(&o)
	}
	e.srv = crm.New(o)
	e.api = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.api.Close)
	e.accounts = httptest.NewServer(reg.Handler("us"))
	t.Cleanup(e.accounts.Close)
	reg.SetDC(oauth.DC{Name: "us", APIDomain: e.api.URL})
	reg.AddClient("1000.GATEWAY", "secret")
	scopes := allScopes
	e.prefix = "/crm/v8"
	if o.Flavor == crm.Bigin {
		scopes, e.prefix = biginScopes, "/bigin/v2"
	}
	e.refresh = reg.AddRefreshToken(oauth.Grant{ClientID: "1000.GATEWAY", UserEmail: e.email, Scopes: scopes, DC: "us"})
	e.token = e.accessToken(e.refresh)
	return e
}

// accessToken runs the refresh grant against the accounts server.
func (e *env) accessToken(refresh string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"1000.GATEWAY"},
		"client_secret": {"secret"}, "refresh_token": {refresh}}
	resp, err := http.Post(e.accounts.URL+"/oauth/v2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	tok, _ := out["access_token"].(string)
	if tok == "" {
		e.t.Fatalf("token endpoint answered %v", out)
	}
	return tok
}

// tokenFor issues an access token for another user or scope set.
func (e *env) tokenFor(email string, scopes ...string) string {
	e.t.Helper()
	return e.accessToken(e.reg.AddRefreshToken(oauth.Grant{ClientID: "1000.GATEWAY", UserEmail: email, Scopes: scopes, DC: "us"}))
}

// advance moves the clock and, past an hour, renews the access token as a
// client would.
func (e *env) advance(d time.Duration) {
	e.clk.Advance(d)
	e.token = e.accessToken(e.refresh)
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// req sends a request with the env's token; hdr is name, value pairs.
func (e *env) req(method, path string, body any, hdr ...string) reply {
	e.t.Helper()
	return e.reqAs(e.token, method, path, body, hdr...)
}

func (e *env) reqAs(token, method, path string, body any, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				e.t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = e.prefix + "/" + path
	}
	r, err := http.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		r.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.body); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return out
}

// want fails unless the reply has the status (and, for errors, the code).
func (r reply) want(t *testing.T, status int, code string) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	if code != "" && r.body["code"] != code {
		t.Fatalf("code %v, want %s; body %s", r.body["code"], code, r.raw)
	}
	return r
}

// empty fails unless the reply has the status and no body (204, 304).
func (r reply) empty(t *testing.T, status int) {
	t.Helper()
	if r.status != status || len(r.raw) != 0 {
		t.Fatalf("got %d with %q, want %d with an empty body", r.status, r.raw, status)
	}
}

func (r reply) data() []map[string]any {
	list, _ := r.body["data"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

func (r reply) info() map[string]any {
	m, _ := r.body["info"].(map[string]any)
	return m
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s keys %v, want %v", what, got, want)
	}
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func errDetails(v any) map[string]any { return obj(obj(v)["details"]) }

// receiver is a notify_url endpoint that records what it is sent.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	raws [][]byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		_ = dec.Decode(&m)
		rc.mu.Lock()
		rc.got = append(rc.got, m)
		rc.raws = append(rc.raws, raw)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got...)
}

// waitFor polls until n callbacks arrived, or fails after a deadline.
func (rc *receiver) waitFor(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := rc.all()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d callbacks, want %d: %v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle waits until the deliverer has attempted everything queued.
func (e *env) settle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hooks.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// find returns some live record of a module that satisfies ok.
func (e *env) find(module string, ok func(map[string]any) bool) (string, map[string]any) {
	e.t.Helper()
	for _, id := range e.srv.IDs(module) {
		if r, found := e.srv.Record(module, id); found && ok(r) {
			return id, r
		}
	}
	e.t.Fatalf("no %s record matches", module)
	return "", nil
}

func any2(map[string]any) bool { return true }

// create adds a record through the UI methods, failing the test on error.
func (e *env) create(module string, fields map[string]any) string {
	e.t.Helper()
	id, err := e.srv.Create(module, fields)
	if err != nil {
		e.t.Fatalf("creating %s: %v", module, err)
	}
	return id
}
