package wstransport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/server/wstransport"
)

// ioTimeout is a safety net so a broken test fails instead of hanging; no
// assertion depends on it elapsing.
const ioTimeout = 10 * time.Second

type userKey struct{}

// testSchema is a hand-written executable schema (gqlgen's own testserver
// style) with the resolvers the transport tests need: a subscription fed by
// the test, one that floods, one that closes its connection, and a query
// that reads what InitFunc put in the context.
type testSchema struct {
	schema *ast.Schema
	// events feeds Subscription.events; closing it ends every stream.
	events chan string
	// cancelled receives the field name of every subscription whose context
	// was cancelled, i.e. the transport stopped it.
	cancelled chan string
	// closeResults receives CloseConn's results from Subscription.closeMe.
	closeResults chan []bool
	// floodBytes counts the payload bytes every flood stream has produced,
	// i.e. what the server tried to push.
	floodBytes atomic.Int64
}

const testSDL = `
type Query {
	name: String!
	whoami: String!
	boom: String!
}
type Mutation {
	name: String!
}
type Subscription {
	events: String!
	flood(size: Int!): String!
	counter(size: Int!): String!
	closeMe(code: Int!): String!
}
`

func newTestSchema() *testSchema {
	return &testSchema{
		schema:       gqlparser.MustLoadSchema(&ast.Source{Input: testSDL}),
		events:       make(chan string, 64),
		cancelled:    make(chan string, 64),
		closeResults: make(chan []bool, 1),
	}
}

func (s *testSchema) executable() graphql.ExecutableSchema {
	return &graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return s.schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) {
			return 1, true
		},
		ExecFunc: s.exec,
	}
}

func dataResponse(field string, value any) *graphql.Response {
	b, err := json.Marshal(map[string]any{field: value})
	if err != nil {
		panic(err)
	}
	return &graphql.Response{Data: b}
}

func (s *testSchema) exec(ctx context.Context) graphql.ResponseHandler {
	opCtx := graphql.GetOperationContext(ctx)
	field := opCtx.Operation.SelectionSet[0].(*ast.Field)
	args := field.ArgumentMap(opCtx.Variables)

	if opCtx.Operation.Operation == ast.Subscription {
		name := field.Name
		context.AfterFunc(ctx, func() {
			select {
			case s.cancelled <- name:
			default:
			}
		})
	}

	switch field.Name {
	case "name":
		return graphql.OneShot(dataResponse("name", "test"))
	case "whoami":
		user, _ := ctx.Value(userKey{}).(string)
		return graphql.OneShot(dataResponse("whoami", user))
	case "boom":
		return func(context.Context) *graphql.Response { panic("boom") }
	case "events":
		return func(ctx context.Context) *graphql.Response {
			select {
			case <-ctx.Done():
				return nil
			case v, ok := <-s.events:
				if !ok {
					return nil
				}
				return dataResponse("events", v)
			}
		}
	case "flood":
		size, _ := args["size"].(int64)
		resp := dataResponse("flood", strings.Repeat("x", int(size)))
		return func(ctx context.Context) *graphql.Response {
			if ctx.Err() != nil {
				return nil
			}
			s.floodBytes.Add(size)
			return resp
		}
	case "counter":
		// An endless stream as fast as the transport takes it, like the
		// event bus replaying a backlog: "1 xxx", "2 xxx", ... so that a
		// reader can tell whether anything was skipped.
		size, _ := args["size"].(int64)
		pad := strings.Repeat("x", int(size))
		n := 0
		return func(ctx context.Context) *graphql.Response {
			if ctx.Err() != nil {
				return nil
			}
			n++
			return dataResponse("counter", strconv.Itoa(n)+" "+pad)
		}
	case "closeMe":
		code, _ := args["code"].(int64)
		return func(ctx context.Context) *graphql.Response {
			results := []bool{
				wstransport.CloseConn(ctx, 1006, "not sendable"),
				wstransport.CloseConn(ctx, int(code), "consumer fell behind"),
				wstransport.CloseConn(ctx, int(code), "already closing"),
			}
			s.closeResults <- results
			<-ctx.Done()
			return nil
		}
	default:
		return graphql.OneShot(graphql.ErrorResponse(ctx, "unknown field %s", field.Name))
	}
}

// waitCancelled waits until the transport cancelled a subscription on field.
func (s *testSchema) waitCancelled(t *testing.T, field string) {
	t.Helper()
	deadline := time.After(ioTimeout)
	for {
		select {
		case got := <-s.cancelled:
			if got == field {
				return
			}
		case <-deadline:
			t.Fatalf("subscription %q was never cancelled", field)
		}
	}
}

// hookRecorder counts Hooks calls.
type hookRecorder struct {
	mu          sync.Mutex
	connects    []string
	closes      []int
	subscribes  int
	unsubscribe int
	closed      chan int
}

func newHookRecorder() *hookRecorder {
	return &hookRecorder{closed: make(chan int, 64)}
}

func (h *hookRecorder) hooks() wstransport.Hooks {
	return wstransport.Hooks{
		OnConnect: func(p string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.connects = append(h.connects, p)
		},
		OnClose: func(code int) {
			h.mu.Lock()
			h.closes = append(h.closes, code)
			h.mu.Unlock()
			h.closed <- code
		},
		OnSubscribe: func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.subscribes++
		},
		OnUnsubscribe: func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.unsubscribe++
		},
	}
}

func (h *hookRecorder) waitClose(t *testing.T) int {
	t.Helper()
	select {
	case code := <-h.closed:
		return code
	case <-time.After(ioTimeout):
		t.Fatal("OnClose was never called")
		return 0
	}
}

type testEnv struct {
	srv    *httptest.Server
	tr     *wstransport.Transport
	schema *testSchema
	hooks  *hookRecorder
	wsURL  string
}

// newEnv serves the test schema through handler.New with only the
// wstransport Transport, over a real HTTP server.
func newEnv(t *testing.T, cfg wstransport.Config) *testEnv {
	t.Helper()
	return newEnvWithListener(t, cfg, nil)
}

func newEnvWithListener(t *testing.T, cfg wstransport.Config, wrap func(net.Listener) net.Listener) *testEnv {
	t.Helper()
	env := &testEnv{schema: newTestSchema(), hooks: newHookRecorder()}
	cfg.Hooks = env.hooks.hooks()
	env.tr = wstransport.New(cfg)
	h := handler.New(env.schema.executable())
	h.SetRecoverFunc(func(ctx context.Context, err any) error {
		return gqlerror.Errorf("internal system error")
	})
	h.AddTransport(env.tr)

	env.srv = httptest.NewUnstartedServer(h)
	if wrap != nil {
		env.srv.Listener = wrap(env.srv.Listener)
	}
	env.srv.Start()
	env.wsURL = "ws" + strings.TrimPrefix(env.srv.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := env.tr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown transport: %v", err)
		}
		env.srv.Close()
	})
	return env
}

// serveHandler serves any handler (e.g. gqlgen's testserver) whose
// WebSocket transport is tr.
func serveHandler(t *testing.T, h http.Handler, tr *wstransport.Transport) *testEnv {
	t.Helper()
	env := &testEnv{tr: tr, hooks: newHookRecorder()}
	env.srv = httptest.NewServer(h)
	env.wsURL = "ws" + strings.TrimPrefix(env.srv.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown transport: %v", err)
		}
		env.srv.Close()
	})
	return env
}

// wireMsg is a decoded protocol message as the client sees it.
type wireMsg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialURL(t *testing.T, url string, header http.Header, subprotocols ...string) (*client, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: ioTimeout, Subprotocols: subprotocols}
	conn, resp, err := d.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.Close() })
	return c, resp, nil
}

func (e *testEnv) dial(t *testing.T, subprotocols ...string) *client {
	t.Helper()
	if len(subprotocols) == 0 {
		subprotocols = []string{wstransport.SubprotocolGraphQLTransportWS}
	}
	c, _, err := dialURL(t, e.wsURL, nil, subprotocols...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *client) send(typ, id string, payload any) {
	c.t.Helper()
	m := map[string]any{"type": typ}
	if id != "" {
		m["id"] = id
	}
	if payload != nil {
		m["payload"] = payload
	}
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("write %s: %v", typ, err)
	}
}

func (c *client) subscribe(id, query string) {
	c.t.Helper()
	c.send("subscribe", id, map[string]any{"query": query})
}

// read returns the next message and fails on close or timeout.
func (c *client) read() wireMsg {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m wireMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("decode %q: %v", data, err)
	}
	return m
}

func (c *client) expect(typ, id string) wireMsg {
	c.t.Helper()
	m := c.read()
	if m.Type != typ || m.ID != id {
		c.t.Fatalf("got %s id=%q payload=%s, want %s id=%q", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

// readUntilClose returns the messages before the close frame and the close
// code and reason, then closes the client socket.
func (c *client) readUntilClose() ([]wireMsg, int, string) {
	c.t.Helper()
	var msgs []wireMsg
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("expected a close frame, got %v after %d messages", err, len(msgs))
			}
			// gorilla has answered the close frame; like a browser, drop
			// the TCP connection now that the handshake is done.
			_ = c.conn.Close()
			return msgs, ce.Code, ce.Text
		}
		var m wireMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("decode %q: %v", data, err)
		}
		msgs = append(msgs, m)
	}
}

// expectClose asserts the very next frame is a close with code and reason.
func (c *client) expectClose(code int, reason string) {
	c.t.Helper()
	msgs, gotCode, gotReason := c.readUntilClose()
	if len(msgs) != 0 {
		c.t.Fatalf("got %d messages before the close frame, first %+v", len(msgs), msgs[0])
	}
	if gotCode != code || gotReason != reason {
		c.t.Fatalf("close = %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
}

// init performs connection_init and checks the ack carries no payload.
func (c *client) init(payload any) {
	c.t.Helper()
	c.send("connection_init", "", payload)
	ack := c.expect("connection_ack", "")
	if len(ack.Payload) != 0 {
		c.t.Fatalf("connection_ack has a payload: %s", ack.Payload)
	}
}

func assertJSONEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode got %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("decode want %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("payload = %s, want %s", gb, wb)
	}
}

// authInit is an InitFunc that accepts "Bearer good" and rejects anything
// else with an error that quotes the token, to prove the error never
// reaches the client.
func authInit(ctx context.Context, p transport.InitPayload) (context.Context, error) {
	if tok := p.Authorization(); tok != "Bearer good" {
		return nil, fmt.Errorf("invalid token %q", tok)
	}
	return context.WithValue(ctx, userKey{}, "alice"), nil
}

func deadline() time.Time { return time.Now().Add(ioTimeout) }

func after() <-chan time.Time { return time.After(ioTimeout) }
