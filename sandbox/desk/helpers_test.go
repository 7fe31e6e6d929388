package desk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

var worldNow = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// env is one fake Desk behind a real HTTP server, with a real accounts
// server handing out its tokens.
type env struct {
	t      *testing.T
	clk    *clock.Manual
	reg    *oauth.Registry
	desk   *desk.Server
	srv    *httptest.Server
	acct   *httptest.Server
	hooks  *hooks.Deliverer
	faults *faults.Injector
	token  string
}

type envOption func(*desk.Options)

func withWorld(people int) envOption {
	return func(o *desk.Options) {
		o.World = seed.Generate(seed.Options{Seed: 7, People: people, Accounts: people / 8, Products: 12, Now: worldNow})
	}
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, clk: clock.NewManual(worldNow)}
	e.reg = oauth.NewRegistry(e.clk)
	e.acct = httptest.NewServer(e.reg.Handler("us"))
	t.Cleanup(e.acct.Close)
	e.hooks = hooks.New(log, 1)
	e.faults = faults.New(1, e.clk)
	o := desk.Options{DC: "us", Registry: e.reg, Clock: e.clk, Faults: e.faults, Hooks: e.hooks, Seed: 7, Log: log}
	for _, opt := range opts {
		opt(&o)
	}
	e.desk = desk.New(o)
	e.srv = httptest.NewServer(e.desk.Handler())
	t.Cleanup(e.srv.Close)
	e.reg.SetDC(oauth.DC{Name: "us", APIDomain: e.srv.URL})
	e.reg.AddClient("1000.CLIENT", "secret")
	e.token = e.issue("admin@zylker.example", "us")
	return e
}

// issue gets an access token the way a connector does: a refresh-token
// grant against the accounts server.
func (e *env) issue(email, dc string) string {
	e.t.Helper()
	refresh := e.reg.AddRefreshToken(oauth.Grant{ClientID: "1000.CLIENT", UserEmail: email, DC: dc,
		Scopes: []string{"Desk.tickets.ALL", "Desk.contacts.ALL", "Desk.basic.ALL", "Desk.settings.ALL"}})
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"1000.CLIENT"}, "client_secret": {"secret"}, "refresh_token": {refresh}}
	srv := e.acct
	if dc != "us" {
		other := httptest.NewServer(e.reg.Handler(dc))
		defer other.Close()
		srv = other
	}
	resp, err := http.Post(srv.URL+"/oauth/v2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
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
		e.t.Fatalf("token response %v", out)
	}
	return tok
}

// resp is an answer from the fake.
type resp struct {
	status int
	header http.Header
	raw    []byte
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("status %d body %q: %v", r.status, r.raw, err)
	}
	return m
}

func (r resp) data(t *testing.T) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with data, got %d %s", r.status, r.raw)
	}
	var m struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// request describes one call; zero values mean the defaults (the env's
// token and org).
type request struct {
	method, path string
	body         any
	token        *string
	orgID        *string
	header       map[string]string
}

func (e *env) call(r request) resp {
	e.t.Helper()
	var rd io.Reader
	if r.body != nil {
		switch b := r.body.(type) {
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				e.t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(r.method, e.srv.URL+r.path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	tok := e.token
	if r.token != nil {
		tok = *r.token
	}
	if tok != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
	}
	org := e.desk.OrgID()
	if r.orgID != nil {
		org = *r.orgID
	}
	if org != "" {
		req.Header.Set("orgId", org)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, raw: raw}
}

func (e *env) get(path string) resp { return e.call(request{method: "GET", path: path}) }

func (e *env) post(path string, body any) resp {
	return e.call(request{method: "POST", path: path, body: body})
}

func (e *env) patch(path string, body any) resp {
	return e.call(request{method: "PATCH", path: path, body: body})
}

func ptr(s string) *string { return &s }

// wantError checks an error answer's status, errorCode and errors[].
func wantError(t *testing.T, r resp, status int, code string, fields ...string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	m := r.obj(t)
	if m["errorCode"] != code {
		t.Fatalf("errorCode %v, want %s: %s", m["errorCode"], code, r.raw)
	}
	if _, ok := m["message"].(string); !ok {
		t.Fatalf("no message: %s", r.raw)
	}
	if len(fields) > 0 {
		errs, _ := m["errors"].([]any)
		var got []string
		for _, x := range errs {
			fe := x.(map[string]any)
			got = append(got, fe["fieldName"].(string)+":"+fe["errorType"].(string))
		}
		if strings.Join(got, ",") != strings.Join(fields, ",") {
			t.Fatalf("errors %v, want %v", got, fields)
		}
	}
	return m
}

// receiver is a webhook endpoint that records what it gets.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	bodies [][]byte
	status int
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.bodies = append(rc.bodies, raw)
		var batch []map[string]any
		if err := json.Unmarshal(raw, &batch); err == nil {
			rc.events = append(rc.events, batch...)
		}
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) take() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.events
	rc.events = nil
	return out
}

// flush waits until every queued webhook delivery was attempted.
func (e *env) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hooks.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func eventTypes(events []map[string]any) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev["eventType"].(string))
	}
	return out
}

// department finds a department id by name.
func (e *env) department(name string) string {
	for _, d := range e.desk.Departments() {
		if d.Str("name") == name {
			return d.ID()
		}
	}
	e.t.Fatalf("no department %q", name)
	return ""
}

// agent finds an agent by email.
func (e *env) agent(email string) desk.Record {
	for _, a := range e.desk.Agents() {
		if a.Str("emailId") == email {
			return a
		}
	}
	e.t.Fatalf("no agent %q", email)
	return nil
}
