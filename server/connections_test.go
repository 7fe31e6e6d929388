package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// connectionWorld is a gateway configured, by environment alone, to talk to
// a running sandbox.
type connectionWorld struct {
	ts     *testServer
	sb     *sandbox.Sandbox
	log    *lockedBuffer
	key    []byte
	crmRT  string
	bigRT  string
	deskRT string
	deskID string
	dsn    string            // the gateway's database, for a second replica
	env    map[string]string // the gateway's configuration, likewise
}

func startConnectionWorld(t testing.TB, extraEnv ...map[string]string) *connectionWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 7, DCs: []string{"us"}})
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	eps := map[string]map[string]string{}
	for dc, ep := range sb.Endpoints() {
		eps[dc] = map[string]string{"accounts": ep.AccountsURL, "api": ep.APIDomain, "desk": ep.DeskURL, "salesiq": ep.SalesIQURL}
	}
	raw, _ := json.Marshal(eps)
	path := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0x5a}, 32)
	cr := sb.Credentials()
	w := &connectionWorld{sb: sb, log: &lockedBuffer{}, key: key,
		crmRT: cr.RefreshTokens["us"]["crm"], bigRT: cr.RefreshTokens["us"]["bigin"], deskRT: cr.RefreshTokens["us"]["desk"],
		deskID: sb.Endpoints()["us"].DeskOrgID}
	env := map[string]string{
		"DESKBRIDGE_ZOHO_CLIENT_ID":     cr.ClientID,
		"DESKBRIDGE_ZOHO_CLIENT_SECRET": cr.ClientSecret,
		"DESKBRIDGE_ZOHO_ENDPOINTS":     path,
		"DESKBRIDGE_SECRET_KEY":         hex.EncodeToString(key),
		"DESKBRIDGE_LOG_LEVEL":          "debug",
	}
	for _, extra := range extraEnv {
		for k, v := range extra {
			env[k] = v
		}
	}
	w.dsn, w.env = storetest.URL(t), env
	w.ts = startServerLog(t, w.dsn, env, w.log)
	return w
}

const connectionFields = `id crmSystem status authMethod crmDataCenter crmOrg { id name } deskDataCenter deskOrgId createdAt updatedAt`

const connectMutation = `mutation($in: ConnectCrmInput!) { connectCrm(input: $in) { ` + connectionFields + ` } }`

// crmOrgID is the CRM org the world's CRM refresh token reaches, as
// reachableCrmOrgs lists it for connectCrm.
func (w *connectionWorld) crmOrgID(tb testing.TB, token string) string {
	tb.Helper()
	r := w.ts.query(token, `query($c: ZohoCredentialsInput!) { reachableCrmOrgs(crmSystem: ZOHO_CRM, dataCenter: US, credentials: $c) { id } }`,
		map[string]any{"c": map[string]any{"refreshToken": w.crmRT}})
	orgs, _ := r.Data["reachableCrmOrgs"].([]any)
	if len(r.Errors) > 0 || len(orgs) == 0 {
		tb.Fatalf("reachableCrmOrgs = %+v", r)
	}
	return orgs[0].(map[string]any)["id"].(string)
}

func (w *connectionWorld) connectInput(crmOrgID string) map[string]any {
	return map[string]any{
		"crmSystem": "ZOHO_CRM", "crmDataCenter": "US", "crmOrgId": crmOrgID,
		"crmCredentials": map[string]any{"refreshToken": w.crmRT},
		"deskDataCenter": "US", "deskOrgId": w.deskID,
		"deskCredentials": map[string]any{"refreshToken": w.deskRT},
	}
}

func wantCode(t *testing.T, what string, r gqlResponse, code string) {
	t.Helper()
	if r.code(0) != code {
		t.Fatalf("%s: got %+v, want %s", what, r.Errors, code)
	}
}

func TestConnectionsOverGraphQL(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t)
	ts := w.ts
	admin := ts.token("acme", auth.RoleAdmin)
	agent := ts.token("acme", auth.RoleAgent)
	otherAdmin := ts.token("globex", auth.RoleAdmin)
	var answers []string // every GraphQL answer, checked for secrets at the end
	q := func(token, query string, vars map[string]any) gqlResponse {
		t.Helper()
		r := ts.query(token, query, vars)
		raw, _ := json.Marshal(r)
		answers = append(answers, string(raw))
		return r
	}

	// A1: the orgs the CRM account reaches.
	reach := `query($sys: CrmSystem!, $creds: ZohoCredentialsInput!) { reachableCrmOrgs(crmSystem: $sys, dataCenter: US, credentials: $creds) { id name } }`
	r := q(admin, reach, map[string]any{"sys": "ZOHO_CRM", "creds": map[string]any{"refreshToken": w.crmRT}})
	if len(r.Errors) > 0 {
		t.Fatalf("reachableCrmOrgs: %+v", r.Errors)
	}
	orgs, _ := r.Data["reachableCrmOrgs"].([]any)
	if len(orgs) == 0 {
		t.Fatalf("reachableCrmOrgs listed nothing: %+v", r.Data)
	}
	org := orgs[0].(map[string]any)
	crmOrgID, crmOrgName := org["id"].(string), org["name"].(string)
	if crmOrgID == "" || crmOrgName == "" {
		t.Fatalf("org %+v", org)
	}
	// A4: Bigin lists its orgs the same way.
	if r := q(admin, reach, map[string]any{"sys": "BIGIN", "creds": map[string]any{"refreshToken": w.bigRT}}); len(r.Errors) > 0 || len(r.Data["reachableCrmOrgs"].([]any)) == 0 {
		t.Fatalf("bigin reachableCrmOrgs: %+v", r)
	}
	// Refused credentials name the argument.
	r = q(admin, reach, map[string]any{"sys": "ZOHO_CRM", "creds": map[string]any{"refreshToken": "1000.not-a-token"}})
	wantCode(t, "bad refresh token", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "credentials" {
		t.Fatalf("bad refresh token: argument %v", r.Errors[0].Extensions)
	}
	r = q(admin, reach, map[string]any{"sys": "ZOHO_CRM", "creds": map[string]any{"refreshToken": w.crmRT, "authorizationCode": "1000.code"}})
	wantCode(t, "two credentials", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "credentials" {
		t.Fatalf("two credentials: argument %v", r.Errors[0].Extensions)
	}
	// Only admins.
	wantCode(t, "agent reachableCrmOrgs", q(agent, reach, map[string]any{"sys": "ZOHO_CRM", "creds": map[string]any{"refreshToken": w.crmRT}}), codeForbidden)
	wantCode(t, "agent connectCrm", q(agent, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}), codeForbidden)
	if r := q(agent, `{ connections { id } }`, nil); r.code(0) != codeForbidden || r.Data["connections"] != nil {
		t.Fatalf("agent connections: %+v", r)
	}

	// Input errors point at the failing part of the input.
	bad := w.connectInput(crmOrgID)
	bad["deskCredentials"] = map[string]any{"refreshToken": "1000.not-a-token"}
	r = q(admin, connectMutation, map[string]any{"in": bad})
	wantCode(t, "bad desk token", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.deskCredentials" {
		t.Fatalf("bad desk token: argument %v", r.Errors[0].Extensions)
	}
	bad = w.connectInput(crmOrgID)
	bad["crmCredentials"] = map[string]any{"refreshToken": "1000.not-a-token"}
	r = q(admin, connectMutation, map[string]any{"in": bad})
	if r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.crmCredentials" {
		t.Fatalf("bad crm token: %+v", r.Errors)
	}
	r = q(admin, connectMutation, map[string]any{"in": w.connectInput("999999")})
	if r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.crmOrgId" {
		t.Fatalf("unreachable crm org: %+v", r.Errors)
	}
	bad = w.connectInput(crmOrgID)
	bad["deskOrgId"] = "424242"
	r = q(admin, connectMutation, map[string]any{"in": bad})
	if r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.deskOrgId" {
		t.Fatalf("foreign desk org: %+v", r.Errors)
	}

	// Connect.
	r = q(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	c := r.Data["connectCrm"].(map[string]any)
	id := c["id"].(string)
	if c["status"] != "ACTIVE" || c["authMethod"] != "OAUTH" || c["crmSystem"] != "ZOHO_CRM" || c["crmDataCenter"] != "US" ||
		c["deskDataCenter"] != "US" || c["deskOrgId"] != w.deskID || dig(c, "crmOrg", "id") != crmOrgID || dig(c, "crmOrg", "name") != crmOrgName {
		t.Fatalf("connection %+v", c)
	}
	r = q(admin, `{ connections { id status } }`, nil)
	if list := r.Data["connections"].([]any); len(list) != 1 || dig(list[0].(map[string]any), "id") != id {
		t.Fatalf("connections %+v", r)
	}
	nodeQuery := `query($id: ID!) { node(id: $id) { id ... on Connection { status crmOrg { id } } } }`
	r = q(admin, nodeQuery, map[string]any{"id": id})
	if dig(r.Data, "node", "id") != id || dig(r.Data, "node", "crmOrg", "id") != crmOrgID {
		t.Fatalf("node %+v", r)
	}
	wantCode(t, "agent node", q(agent, nodeQuery, map[string]any{"id": id}), codeForbidden)

	// A7: both refresh tokens are sealed, bound to their row.
	var secrets []struct {
		ConnID int64  `db:"connection_id"`
		Name   string `db:"name"`
		Sealed []byte `db:"sealed"`
	}
	if err := ts.srv.db.DB.Select(&secrets, `SELECT connection_id, name, sealed FROM connection_secrets ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 2 {
		t.Fatalf("secrets %d, want 2", len(secrets))
	}
	box, _ := crypt.New(w.key)
	for _, s := range secrets {
		if bytes.Contains(s.Sealed, []byte(w.crmRT)) || bytes.Contains(s.Sealed, []byte(w.deskRT)) {
			t.Fatalf("secret %s stored in clear", s.Name)
		}
		plain, err := box.Open(s.Sealed, syncengine.ConnectionSecretAD(s.ConnID, s.Name))
		want := map[string]string{"crm_refresh_token": w.crmRT, "desk_refresh_token": w.deskRT}[s.Name]
		if err != nil || string(plain) != want {
			t.Fatalf("secret %s does not open to its token: %v", s.Name, err)
		}
	}
	var settings []string
	if err := ts.srv.db.DB.Select(&settings, `SELECT module_group || ':' || sync_type FROM sync_settings ORDER BY module_group`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(settings, ",") != "CONTACTS_ACCOUNTS:TWO_WAY,PRODUCTS:TWO_WAY" {
		t.Fatalf("default settings %v", settings)
	}

	// The event is for admins only.
	events := `{ events(types: [CONNECTION_CREATED, CONNECTION_STATUS_CHANGED]) { edges { node { type subjectId payload } } } }`
	r = q(admin, events, nil)
	edges := dig(r.Data, "events", "edges").([]any)
	if len(edges) != 1 || dig(edges[0].(map[string]any), "node", "type") != "CONNECTION_CREATED" || dig(edges[0].(map[string]any), "node", "subjectId") != id {
		t.Fatalf("admin events %+v", r)
	}
	if r := q(agent, events, nil); len(dig(r.Data, "events", "edges").([]any)) != 0 {
		t.Fatalf("agent sees connection events: %+v", r)
	}

	// Another org: the CRM org is taken, and org A's connection does not exist there.
	r = q(otherAdmin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)})
	wantCode(t, "second portal for the crm org", r, codeConflict)
	if !strings.Contains(r.Errors[0].Message, "already joined") {
		t.Fatalf("conflict message %q", r.Errors[0].Message)
	}
	wantCode(t, "other org node", q(otherAdmin, nodeQuery, map[string]any{"id": id}), codeNotFound)
	wantCode(t, "other org remove", q(otherAdmin, `mutation($id: ID!) { removeConnection(id: $id) { id } }`, map[string]any{"id": id}), codeNotFound)
	if r := q(otherAdmin, `{ connections { id } }`, nil); len(r.Data["connections"].([]any)) != 0 {
		t.Fatalf("other org lists %+v", r)
	}

	// Transitions.
	change := func(op, id string) gqlResponse {
		return q(admin, `mutation($id: ID!) { `+op+`(id: $id) { id status } }`, map[string]any{"id": id})
	}
	r = change("reactivateConnection", id)
	wantCode(t, "reactivate active", r, codeConflict)
	if !strings.Contains(r.Errors[0].Message, "ACTIVE") {
		t.Fatalf("conflict message %q does not name the status", r.Errors[0].Message)
	}
	for _, step := range []struct{ op, want string }{
		{"deactivateConnection", "INACTIVE"}, {"reactivateConnection", "ACTIVE"}, {"deactivateConnection", "INACTIVE"}, {"removeConnection", "REMOVED"},
	} {
		r := change(step.op, id)
		if len(r.Errors) > 0 || dig(r.Data, step.op, "status") != step.want {
			t.Fatalf("%s: %+v", step.op, r)
		}
	}
	wantCode(t, "deactivate removed", change("deactivateConnection", id), codeConflict)
	wantCode(t, "bad id", change("removeConnection", "bm90LWFuLWlk"), codeBadUserInput)
	var left int
	if err := ts.srv.db.DB.Get(&left, `SELECT count(*) FROM connection_secrets`); err != nil || left != 0 {
		t.Fatalf("secrets after remove: %d, %v", left, err)
	}
	if r := q(admin, `{ connections { id } }`, nil); len(r.Data["connections"].([]any)) != 0 {
		t.Fatalf("removed connection listed: %+v", r)
	}
	if r := q(admin, `{ connections(includeRemoved: true) { id status } }`, nil); len(r.Data["connections"].([]any)) != 1 {
		t.Fatalf("history %+v", r)
	}
	r = q(admin, events, nil)
	if n := len(dig(r.Data, "events", "edges").([]any)); n != 5 {
		t.Fatalf("admin events after transitions: %d, want 5", n)
	}
	// A6: once removed, the CRM org is free for another portal.
	if r := q(otherAdmin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}); len(r.Errors) > 0 {
		t.Fatalf("connecting the freed crm org: %+v", r.Errors)
	}

	// A7: no secret in any answer or in the log.
	logText := w.log.String()
	if !strings.Contains(logText, "connection created") {
		t.Fatalf("log capture is not working:\n%s", logText)
	}
	for _, secret := range []string{w.crmRT, w.deskRT} {
		for _, a := range answers {
			if strings.Contains(a, secret) {
				t.Fatalf("a GraphQL answer holds a refresh token: %s", a)
			}
		}
		if strings.Contains(logText, secret) {
			t.Fatal("the log holds a refresh token")
		}
	}
}

func TestZohoConfiguration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "eps.json")
	if err := os.WriteFile(path, []byte(`{"US":{"accounts":"http://127.0.0.1:1/","api":"http://127.0.0.1:2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, map[string]string{"DESKBRIDGE_ZOHO_CLIENT_ID": "1000.ID", "DESKBRIDGE_ZOHO_CLIENT_SECRET": "s3cr3t-value",
		"DESKBRIDGE_ZOHO_ENDPOINTS": path})
	if cfg.ZohoEndpoints["us"].Accounts != "http://127.0.0.1:1" || cfg.ZohoEndpoints["us"].API != "http://127.0.0.1:2" {
		t.Fatalf("endpoints %+v", cfg.ZohoEndpoints)
	}
	var buf bytes.Buffer
	newLogger(cfg, &buf).Info("config", "config", cfg)
	if strings.Contains(buf.String(), "s3cr3t-value") || strings.Contains(buf.String(), "1000.ID") {
		t.Fatalf("config log leaks the zoho client: %s", buf.String())
	}
	for name, body := range map[string]string{
		"unknown dc":  `{"mars":{"api":"http://x"}}`,
		"unknown key": `{"us":{"crm":"http://x"}}`,
		"bad url":     `{"us":{"api":"ftp://x"}}`,
	} {
		p := filepath.Join(t.TempDir(), "eps.json")
		_ = os.WriteFile(p, []byte(body), 0o600)
		fs := newTestFlagSet()
		complete := configFlags(fs, func(k string) string {
			return map[string]string{"DESKBRIDGE_ZOHO_ENDPOINTS": p}[k]
		})
		_ = fs.Parse(nil)
		if _, err := complete(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	fs := newTestFlagSet()
	complete := configFlags(fs, func(k string) string {
		return map[string]string{"DESKBRIDGE_ZOHO_CLIENT_ID": "1000.ID"}[k]
	})
	_ = fs.Parse(nil)
	if _, err := complete(); err == nil {
		t.Error("client id without secret accepted")
	}
}

func newTestFlagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }
