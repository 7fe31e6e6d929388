package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// testServer is a real gateway on a real port over a fresh database.
type testServer struct {
	t      testing.TB
	srv    *Server
	url    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func testConfig(t testing.TB, env map[string]string) Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	complete := configFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := complete()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startServer(t testing.TB, dsn string, env map[string]string) *testServer {
	t.Helper()
	return startServerLog(t, dsn, env, io.Discard)
}

// startServerLog is startServer with the gateway's log written to logOut
// (text, at the configured level), for tests that inspect it.
func startServerLog(t testing.TB, dsn string, env map[string]string, logOut io.Writer) *testServer {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["DATABASE_URL"] = dsn
	env["DESKBRIDGE_SHUTDOWN_TIMEOUT"] = "5s"
	cfg := testConfig(t, env)
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	srv, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: srv, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	select {
	case <-srv.bus.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("event bus never connected")
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.cancel()
		if err := <-ts.done; err != nil {
			ts.t.Errorf("Serve returned %v", err)
		}
		ts.srv.Close()
	})
}

func (ts *testServer) token(org string, role auth.Role) string {
	ts.t.Helper()
	issued, err := createToken(context.Background(), ts.srv.db, org, auth.IssueRequest{UserName: string(role) + "-user", Name: "test", Role: role})
	if err != nil {
		ts.t.Fatal(err)
	}
	return issued.Secret
}

type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
}

func (r gqlResponse) code(i int) string {
	if i >= len(r.Errors) {
		return ""
	}
	c, _ := r.Errors[i].Extensions["code"].(string)
	return c
}

func (ts *testServer) query(token, query string, vars map[string]any) gqlResponse {
	ts.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", ts.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		ts.t.Fatalf("decoding %q: %v", raw, err)
	}
	out.status = resp.StatusCode
	return out
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func TestViewerAndErrorCodes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	agent := ts.token("acme", auth.RoleAgent)
	other := ts.token("globex", auth.RoleAdmin)

	r := ts.query(admin, `{ viewer { org { id slug } role user { name } token { prefix } } }`, nil)
	if len(r.Errors) > 0 || dig(r.Data, "viewer", "org", "slug") != "acme" || dig(r.Data, "viewer", "role") != "ADMIN" {
		t.Fatalf("viewer = %+v", r)
	}
	if !strings.HasPrefix(admin, dig(r.Data, "viewer", "token", "prefix").(string)) {
		t.Fatalf("token prefix %v is not the start of the secret", dig(r.Data, "viewer", "token", "prefix"))
	}
	acmeOrgID := dig(r.Data, "viewer", "org", "id").(string)

	cases := []struct {
		name, token, query, code string
	}{
		{"no token", "", `{ viewer { role } }`, codeUnauthenticated},
		{"bad token", "dbk_nope", `{ viewer { role } }`, codeUnauthenticated},
		{"agent lists tokens", agent, `{ apiTokens { edges { node { id } } } }`, codeForbidden},
		{"agent creates a token", agent, `mutation { createApiToken(input: {name: "x", role: ADMIN, userName: "x"}) { secret } }`, codeForbidden},
		{"empty name", admin, `mutation { createApiToken(input: {name: "  ", role: AGENT, userName: "x"}) { secret } }`, codeBadUserInput},
		{"past expiry", admin, `mutation { createApiToken(input: {name: "x", role: AGENT, userName: "x", expiresAt: "2001-01-01T00:00:00Z"}) { secret } }`, codeBadUserInput},
		{"malformed DateTime", admin, `mutation { createApiToken(input: {name: "x", role: AGENT, userName: "x", expiresAt: "tomorrow"}) { secret } }`, codeBadUserInput},
		{"page too large", admin, `{ apiTokens(first: 1000) { edges { cursor } } }`, codeBadUserInput},
		{"another org's object", other, `{ node(id: "` + acmeOrgID + `") { id } }`, codeNotFound},
		{"garbage id", admin, `{ node(id: "!!!") { id } }`, codeNotFound},
		{"bad revoke id", admin, `mutation { revokeApiToken(id: "` + acmeOrgID + `") { id } }`, codeBadUserInput},
		{"validation", admin, `{ viewer { nope } }`, "GRAPHQL_VALIDATION_FAILED"},
		{"parse", admin, `{ viewer { `, "GRAPHQL_PARSE_FAILED"},
	}
	for _, c := range cases {
		r := ts.query(c.token, c.query, nil)
		if r.code(0) != c.code {
			t.Errorf("%s: got %+v, want code %s", c.name, r.Errors, c.code)
		}
		if c.code == codeBadUserInput && r.Errors[0].Extensions["argument"] == nil && c.name != "malformed DateTime" {
			t.Errorf("%s: BAD_USER_INPUT without extensions.argument: %+v", c.name, r.Errors[0])
		}
	}
	// A forbidden field is null with its error; the rest still comes back.
	r = ts.query(agent, `{ viewer { role } apiTokens { edges { cursor } } }`, nil)
	if dig(r.Data, "viewer", "role") != "AGENT" || r.code(0) != codeForbidden || r.Errors[0].Path[0] != "apiTokens" {
		t.Fatalf("partial answer = %+v", r)
	}
}

func TestInternalErrorsLeakNothing(t *testing.T) {
	t.Parallel()
	dsn := storetest.URL(t)
	ts := startServer(t, dsn, nil)
	admin := ts.token("acme", auth.RoleAdmin)
	if _, err := ts.srv.db.DB.Exec(`ALTER TABLE orgs RENAME COLUMN slug TO slug_gone`); err != nil {
		t.Fatal(err)
	}
	r := ts.query(admin, `{ viewer { org { slug } } }`, nil)
	if r.code(0) != codeInternal {
		t.Fatalf("got %+v, want INTERNAL_SERVER_ERROR", r.Errors)
	}
	msg := r.Errors[0].Message
	if !strings.HasPrefix(msg, "internal error (request id ") || strings.Contains(msg, "slug") || strings.Contains(msg, "column") {
		t.Fatalf("internal error message leaks details: %q", msg)
	}
}

func TestTokenLifecycleOverGraphQL(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	r := ts.query(admin, `mutation($in: CreateApiTokenInput!) { createApiToken(input: $in) { secret token { id name role user { name email } revokedAt } } }`,
		map[string]any{"in": map[string]any{"name": "BI export", "role": "LIGHT_AGENT", "userName": "metabase", "userEmail": "bi@example.com"}})
	if len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	secret := dig(r.Data, "createApiToken", "secret").(string)
	id := dig(r.Data, "createApiToken", "token", "id").(string)
	if dig(r.Data, "createApiToken", "token", "role") != "LIGHT_AGENT" || dig(r.Data, "createApiToken", "token", "user", "email") != "bi@example.com" {
		t.Fatalf("created %+v", r.Data)
	}
	if got := ts.query(secret, `{ viewer { role } }`, nil); dig(got.Data, "viewer", "role") != "LIGHT_AGENT" {
		t.Fatalf("new token viewer = %+v", got)
	}
	// The secret is never readable again.
	list := ts.query(admin, `{ apiTokens { edges { node { id name prefix } } } }`, nil)
	raw, _ := json.Marshal(list.Data)
	if strings.Contains(string(raw), secret) || !strings.Contains(string(raw), id) {
		t.Fatalf("token list %s", raw)
	}
	rev := ts.query(admin, `mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }`, map[string]any{"id": id})
	if len(rev.Errors) > 0 || dig(rev.Data, "revokeApiToken", "revokedAt") == nil {
		t.Fatalf("revoke = %+v", rev)
	}
	after := ts.query(secret, `{ viewer { role } }`, nil)
	if after.code(0) != codeUnauthenticated || !strings.Contains(after.Errors[0].Message, "revoked") {
		t.Fatalf("revoked token still works: %+v", after)
	}
	// Paging: two pages of one cover both tokens, in order, without overlap.
	p1 := ts.query(admin, `{ apiTokens(first: 1, includeRevoked: true) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, nil)
	cursor := dig(p1.Data, "apiTokens", "pageInfo", "endCursor")
	p2 := ts.query(admin, `query($c: String) { apiTokens(first: 1, after: $c, includeRevoked: true) { edges { node { id } } pageInfo { hasNextPage } } }`, map[string]any{"c": cursor})
	if dig(p1.Data, "apiTokens", "pageInfo", "hasNextPage") != true || dig(p2.Data, "apiTokens", "pageInfo", "hasNextPage") != false {
		t.Fatalf("paging: %+v / %+v", p1.Data, p2.Data)
	}
}

func TestRequestLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), map[string]string{"DESKBRIDGE_MAX_DEPTH": "4", "DESKBRIDGE_MAX_COMPLEXITY": "200", "DESKBRIDGE_MAX_BODY_BYTES": "4096"})
	admin := ts.token("acme", auth.RoleAdmin)

	deep := ts.query(admin, `{ viewer { token { user { name } } } apiTokens { edges { node { user { name } } } } }`, nil)
	if deep.code(0) != codeDepthLimit {
		t.Fatalf("deep query: %+v", deep.Errors)
	}
	viaFragment := ts.query(admin, `{ apiTokens { ...E } } fragment E on ApiTokenConnection { edges { node { user { name } } } }`, nil)
	if viaFragment.code(0) != codeDepthLimit {
		t.Fatalf("deep query through a fragment: %+v", viaFragment.Errors)
	}
	// 100 tokens × (node + id + name) blows a budget of 200; 10 do not.
	costly := ts.query(admin, `{ apiTokens(first: 100) { edges { node { id name } } } }`, nil)
	if costly.code(0) != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("costly query: %+v", costly.Errors)
	}
	if cheap := ts.query(admin, `{ apiTokens(first: 10) { edges { node { id name } } } }`, nil); len(cheap.Errors) > 0 {
		t.Fatalf("cheap query refused: %+v", cheap.Errors)
	}
	big := `{"query":"{ viewer { role } }","variables":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	resp, err := http.Post(ts.url+"/graphql", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d, want 413", resp.StatusCode)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	ts.query(admin, `{ viewer { role } }`, nil)
	ts.query("", `{ viewer { role } }`, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`deskbridge_http_requests_total{code="200",route="graphql"}`,
		`deskbridge_graphql_operations_total{outcome="ok",type="query"} 1`,
		`deskbridge_graphql_errors_total{code="UNAUTHENTICATED"} 1`,
		`deskbridge_graphql_operation_duration_seconds_bucket`,
		`deskbridge_websocket_connections 0`,
		`deskbridge_subscriptions_active 0`,
		`go_sql_max_open_connections{db_name="deskbridge"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Readiness fails while a migration is missing.
	if _, err := ts.srv.db.DB.Exec(`DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(ts.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a pending migration = %d, want 503", resp.StatusCode)
	}
}

// wsClient is a minimal graphql-transport-ws client for Go tests.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

func (ts *testServer) dial(token string) *wsClient {
	ts.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(strings.Replace(ts.url, "http://", "ws://", 1)+"/graphql", nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	c := &wsClient{t: ts.t, conn: conn}
	ts.t.Cleanup(func() { conn.Close() })
	c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	return c
}

func (c *wsClient) send(msg any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(msg); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message that is not a ping, or the close error.
func (c *wsClient) next() (map[string]any, error) {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		var msg map[string]any
		if err := c.conn.ReadJSON(&msg); err != nil {
			return nil, err
		}
		if msg["type"] == "ping" {
			c.send(map[string]any{"type": "pong"})
			continue
		}
		return msg, nil
	}
}

func (c *wsClient) expect(typ string) map[string]any {
	c.t.Helper()
	msg, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if msg["type"] != typ {
		c.t.Fatalf("got %v, want %s", msg, typ)
	}
	return msg
}

func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for {
		_, err := c.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !asCloseError(err, &ce) || ce.Code != code {
			c.t.Fatalf("connection ended with %v, want close %d", err, code)
		}
		return
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

// streamPosition is the org's event stream position now: a subscription
// started with it as `after` sees every event that follows, however long
// the subscription takes to register (a live-only one misses what commits
// while it starts).
func (ts *testServer) streamPosition(token string) string {
	ts.t.Helper()
	r := ts.query(token, `{ eventStreamPosition }`, nil)
	pos, ok := r.Data["eventStreamPosition"].(string)
	if !ok {
		ts.t.Fatalf("eventStreamPosition: %+v", r)
	}
	return pos
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.send(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
}

func eventOf(msg map[string]any) map[string]any {
	ev, _ := dig(msg, "payload", "data", "events").(map[string]any)
	return ev
}

func TestEventsSubscriptionResumesAcrossRestart(t *testing.T) {
	t.Parallel()
	dsn := storetest.URL(t)
	ts := startServer(t, dsn, nil)
	admin := ts.token("acme", auth.RoleAdmin)
	agent := ts.token("acme", auth.RoleAgent)

	// Subscriptions start after the stream's current head: a live-only
	// subscription would race the first mutation (the protocol has no
	// "subscribed" answer to wait for).
	var head int64
	if err := ts.srv.db.DB.Get(&head, `SELECT COALESCE(max(id), 0) FROM events`); err != nil {
		t.Fatal(err)
	}
	from := map[string]any{"after": strconv.FormatInt(head, 10)}
	adminWS := ts.dial(admin)
	adminWS.expect("connection_ack")
	adminWS.subscribe("1", `subscription($after: ID) { events(after: $after) { id type subjectId payload } }`, from)
	agentWS := ts.dial(agent)
	agentWS.expect("connection_ack")
	agentWS.subscribe("1", `subscription($after: ID) { events(after: $after) { id type } }`, from)

	create := func(name string) string {
		r := ts.query(admin, `mutation($n: String!) { createApiToken(input: {name: $n, role: AGENT, userName: "u"}) { token { id } } }`, map[string]any{"n": name})
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		return dig(r.Data, "createApiToken", "token", "id").(string)
	}
	tokenID := create("first")
	ev := eventOf(adminWS.expect("next"))
	if ev["type"] != "TOKEN_CREATED" || ev["subjectId"] != tokenID || dig(ev, "payload", "name") != "first" {
		t.Fatalf("event = %v (token %s)", ev, tokenID)
	}
	lastSeen := ev["id"].(string)

	// The agent may not see token events; its stream stays quiet. A marker
	// event it may not see either proves nothing, so check the queue is empty
	// after the admin got the next event too.
	create("second")
	second := eventOf(adminWS.expect("next"))
	_ = agentWS.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var leaked map[string]any
	if err := agentWS.conn.ReadJSON(&leaked); err == nil && leaked["type"] == "next" {
		t.Fatalf("agent received a token event: %v", leaked)
	}

	// Restart the gateway: a new client resuming after the first event gets
	// the second, then the ones created after the restart, in order.
	ts.stop()
	ts2 := startServer(t, dsn, nil)
	create2 := func(name string) {
		r := ts2.query(admin, `mutation($n: String!) { createApiToken(input: {name: $n, role: AGENT, userName: "u"}) { token { id } } }`, map[string]any{"n": name})
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
	}
	create2("third")
	resumed := ts2.dial(admin)
	resumed.expect("connection_ack")
	resumed.subscribe("r", `subscription($after: ID) { events(after: $after) { id type payload } }`, map[string]any{"after": lastSeen})
	var names []string
	var ids []string
	for range 2 {
		e := eventOf(resumed.expect("next"))
		names = append(names, dig(e, "payload", "name").(string))
		ids = append(ids, e["id"].(string))
	}
	create2("fourth")
	e := eventOf(resumed.expect("next"))
	names = append(names, dig(e, "payload", "name").(string))
	if strings.Join(names, ",") != "second,third,fourth" || ids[0] != second["id"] {
		t.Fatalf("resumed stream = %v (ids %v), want second,third,fourth", names, ids)
	}
}

// Events older than DESKBRIDGE_EVENT_RETENTION are pruned by the leader's
// retention job. A reader resuming after a pruned event, by query or by
// subscription, gets EVENTS_EXPIRED instead of a stream with a silent gap;
// resuming from eventStreamPosition works.
func TestResumingAfterPrunedEventsIsExpired(t *testing.T) {
	t.Parallel()
	dsn := storetest.URL(t)
	ts := startServer(t, dsn, nil)
	admin := ts.token("acme", auth.RoleAdmin)
	create := func(ts *testServer, name string) {
		t.Helper()
		r := ts.query(admin, `mutation($n: String!) { createApiToken(input: {name: $n, role: AGENT, userName: "u"}) { token { id } } }`, map[string]any{"n": name})
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
	}
	before := ts.streamPosition(admin)
	create(ts, "old-1")
	create(ts, "old-2")
	// Ten days pass; the next gateway keeps events for a day and prunes at
	// start.
	if _, err := ts.srv.db.DB.Exec(`UPDATE events SET occurred_at = occurred_at - interval '10 days'`); err != nil {
		t.Fatal(err)
	}
	ts.stop()
	ts = startServer(t, dsn, map[string]string{"DESKBRIDGE_EVENT_RETENTION": "24h"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		if err := ts.srv.db.DB.Get(&left, `SELECT count(*) FROM events WHERE occurred_at < now() - interval '1 day'`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired events still there", left)
		}
		time.Sleep(50 * time.Millisecond)
	}

	r := ts.query(admin, `query($after: String) { events(after: $after) { edges { node { id } } } }`, map[string]any{"after": before})
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "EVENTS_EXPIRED" {
		t.Fatalf("events(after: %s) = %+v, want EVENTS_EXPIRED", before, r)
	}
	ws := ts.dial(admin)
	ws.expect("connection_ack")
	ws.subscribe("1", `subscription($after: ID) { events(after: $after) { id } }`, map[string]any{"after": before})
	msg := ws.expect("next")
	if errs, _ := json.Marshal(dig(msg, "payload", "errors")); !strings.Contains(string(errs), `"code":"EVENTS_EXPIRED"`) {
		t.Fatalf("subscription after a pruned event: %v, want EVENTS_EXPIRED", msg)
	}

	// From the position now, nothing is missing.
	now := ts.streamPosition(admin)
	ws.subscribe("2", `subscription($after: ID) { events(after: $after) { type payload } }`, map[string]any{"after": now})
	create(ts, "new")
	for {
		m, err := ws.next()
		if err != nil {
			t.Fatal(err)
		}
		if m["id"] != "2" {
			continue // the first subscription's complete
		}
		if dig(m, "payload", "data", "events", "payload", "name") != "new" {
			t.Fatalf("resumed from the current position: %v", m)
		}
		break
	}
}

func TestRevokingATokenClosesItsWebSockets(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	r := ts.query(admin, `mutation { createApiToken(input: {name: "widget", role: AGENT, userName: "w"}) { secret token { id } } }`, nil)
	secret := dig(r.Data, "createApiToken", "secret").(string)
	id := dig(r.Data, "createApiToken", "token", "id").(string)

	ws := ts.dial(secret)
	ack := ws.expect("connection_ack")
	if _, has := ack["payload"]; has {
		t.Fatalf("connection_ack carries a payload: %v", ack)
	}
	ws.subscribe("1", `subscription { events { id } }`, nil)
	bystander := ts.dial(admin)
	bystander.expect("connection_ack")

	ts.query(admin, `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`, map[string]any{"id": id})
	ws.expectClose(4403)
	// Other connections stay up.
	bystander.send(map[string]any{"type": "ping"})
	bystander.expect("pong")
}

func TestWebSocketBadTokenCloses4403(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	ws := ts.dial("dbk_not-a-real-token")
	ws.expectClose(4403)
}

func TestShutdownClosesWebSocketsWith1001(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	ws := ts.dial(admin)
	ws.expect("connection_ack")
	ws.subscribe("1", `subscription { events { id } }`, nil)
	// Wait until the subscription is registered, so shutdown has one to close.
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.bus.Subscribers() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The live socket and subscription show in /metrics.
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"deskbridge_websocket_connections 1", "deskbridge_subscriptions_active 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q while one subscription is open", want)
		}
	}
	go ts.stop()
	ws.expectClose(websocket.CloseGoingAway)
}

// The GraphQL-over-HTTP answers the graphql-http audit checks, pinned here
// so a regression shows up without Node.
func TestGraphQLOverHTTPConformance(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), map[string]string{"DESKBRIDGE_MAX_BODY_BYTES": "4096"})
	post := func(accept, body string, chunked bool) (int, map[string]json.RawMessage) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // unknown length: sent chunked
		}
		req, _ := http.NewRequest("POST", ts.url+"/graphql", rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &out)
		if strings.Contains(string(raw), "qeury") || strings.Contains(string(raw), "SECRETPAD") {
			t.Errorf("response echoes the request body: %s", raw)
		}
		return resp.StatusCode, out
	}
	const gqlResp = "application/graphql-response+json"
	cases := []struct {
		name, accept, body string
		status             int
		hasData            bool
	}{
		{"validation error, application/json", "application/json", `{"query":"{ nope }"}`, 200, true},
		{"parse error, application/json", "application/json", `{"query":"{"}`, 200, true},
		{"validation error, graphql-response", gqlResp, `{"query":"{ nope }"}`, 400, false},
		{"missing query", "application/json", `{"qeury":"{ __typename }"}`, 400, false},
		{"variables not an object", gqlResp, `{"query":"{ __typename }","variables":"x"}`, 400, false},
		{"not json", "application/json", `SECRETPAD not json`, 400, false},
		{"ok", gqlResp, `{"query":"{ __typename }"}`, 200, true},
	}
	for _, c := range cases {
		status, body := post(c.accept, c.body, false)
		_, hasData := body["data"]
		if status != c.status || hasData != c.hasData {
			t.Errorf("%s: status %d data %v, want %d data %v (%v)", c.name, status, hasData, c.status, c.hasData, body)
		}
	}
	if status, _ := post("application/json", `{"query":"{ __typename }","variables":{"pad":"`+strings.Repeat("x", 5000)+`"}}`, true); status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d, want 413", status)
	}
}
