package wstransport_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/deskbridge/deskbridge/server/wstransport"
)

func TestTransportWS_HappyPathWithTestserver(t *testing.T) {
	ts := testserver.New()
	tr := wstransport.New(wstransport.Config{})
	ts.AddTransport(tr)
	env := serveHandler(t, ts, tr)

	c := env.dial(t)
	c.init(nil)

	c.subscribe("sub", "subscription { name }")
	for range 3 {
		ts.SendNextSubscriptionMessage()
		m := c.expect("next", "sub")
		assertJSONEq(t, m.Payload, `{"data":{"name":"test"}}`)
	}
	ts.SendCompleteSubscriptionMessage()
	c.expect("complete", "sub")

	// A query over subscribe: one next, then complete.
	c.subscribe("q", "query { name }")
	assertJSONEq(t, c.expect("next", "q").Payload, `{"data":{"name":"test"}}`)
	c.expect("complete", "q")

	// A resolver error is a result: next with errors, then complete.
	c.subscribe("m", "mutation { name }")
	m := c.expect("next", "m")
	if !strings.Contains(string(m.Payload), "mutations are not supported") {
		t.Fatalf("mutation payload = %s", m.Payload)
	}
	c.expect("complete", "m")

	// Validation error: error with GraphQLError[] and no complete. The pong
	// right after proves nothing else was queued for "v".
	c.subscribe("v", "query { nope }")
	e := c.expect("error", "v")
	var errs []map[string]any
	if err := json.Unmarshal(e.Payload, &errs); err != nil || len(errs) == 0 {
		t.Fatalf("error payload = %s (%v), want a non-empty array", e.Payload, err)
	}
	if !strings.Contains(string(e.Payload), "GRAPHQL_VALIDATION_FAILED") {
		t.Fatalf("error payload = %s, want code GRAPHQL_VALIDATION_FAILED", e.Payload)
	}
	c.send("ping", "", map[string]any{"n": 1})
	assertJSONEq(t, c.expect("pong", "").Payload, `{"n":1}`)

	c.sendRaw(`{"type":"pong"}`)
	c.send("ping", "", nil)
	if p := c.expect("pong", "").Payload; len(p) != 0 {
		t.Fatalf("pong payload = %s, want none", p)
	}
}

func TestTransportWS_QuerySeesInitContext(t *testing.T) {
	env := newEnv(t, wstransport.Config{InitFunc: authInit})
	c := env.dial(t)
	c.init(map[string]any{"Authorization": "Bearer good"})

	c.subscribe("1", "query { whoami }")
	assertJSONEq(t, c.expect("next", "1").Payload, `{"data":{"whoami":"alice"}}`)
	c.expect("complete", "1")
}

func TestTransportWS_SubscriptionStreamEnds(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t)
	c.init(nil)

	c.send("subscribe", "s", map[string]any{
		"query":         "subscription Ev { events }",
		"operationName": "Ev",
		"variables":     nil,
		"extensions":    map[string]any{},
	})
	for _, v := range []string{"a", "b", "c"} {
		env.schema.events <- v
		assertJSONEq(t, c.expect("next", "s").Payload, `{"data":{"events":"`+v+`"}}`)
	}
	close(env.schema.events)
	c.expect("complete", "s")
}

func TestTransportWS_ClientCompleteStopsDelivery(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t)
	c.init(nil)

	c.subscribe("1", "subscription { events }")
	env.schema.events <- "a"
	c.expect("next", "1")

	c.send("complete", "1", nil)
	env.schema.waitCancelled(t, "events")

	// Nothing more for id 1: neither the next event nor a server complete.
	env.schema.events <- "late"
	c.send("ping", "", nil)
	c.expect("pong", "")

	// The id is free again at once.
	c.subscribe("1", "query { name }")
	c.expect("next", "1")
	c.expect("complete", "1")

	// complete for an unknown id is ignored.
	c.send("complete", "unknown", nil)
	c.send("ping", "", nil)
	c.expect("pong", "")
}

func TestTransportWS_MaxSubscriptions(t *testing.T) {
	env := newEnv(t, wstransport.Config{MaxSubscriptions: 2})
	c := env.dial(t)
	c.init(nil)

	c.subscribe("1", "subscription { events }")
	c.subscribe("2", "subscription { events }")
	c.subscribe("3", "subscription { events }")
	e := c.expect("error", "3")
	if !strings.Contains(string(e.Payload), "TOO_MANY_SUBSCRIPTIONS") {
		t.Fatalf("error payload = %s", e.Payload)
	}
	// Not a close: the connection keeps working, and a slot frees up when
	// one completes.
	c.send("complete", "1", nil)
	env.schema.waitCancelled(t, "events")
	c.subscribe("3", "subscription { events }")
	c.send("ping", "", nil)
	c.expect("pong", "")
}

func TestTransportWS_ResolverPanicEndsOnlyThatOperation(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t)
	c.init(nil)

	c.subscribe("p", "query { boom }")
	e := c.expect("error", "p")
	if !strings.Contains(string(e.Payload), "internal system error") {
		t.Fatalf("error payload = %s", e.Payload)
	}
	c.subscribe("q", "query { name }")
	c.expect("next", "q")
	c.expect("complete", "q")
}

func TestTransportWS_CloseCodes(t *testing.T) {
	tests := []struct {
		name   string
		cfg    wstransport.Config
		script func(c *client)
		code   int
		reason string
	}{
		{
			name:   "4400 invalid json",
			script: func(c *client) { c.sendRaw("{") },
			code:   4400, reason: "invalid JSON",
		},
		{
			name:   "4400 not an object",
			script: func(c *client) { c.sendRaw("[1]") },
			code:   4400, reason: "message must be a JSON object",
		},
		{
			name:   "4400 null",
			script: func(c *client) { c.sendRaw("null") },
			code:   4400, reason: "message must be a JSON object",
		},
		{
			name:   "4400 missing type",
			script: func(c *client) { c.sendRaw(`{"id":"1"}`) },
			code:   4400, reason: "missing 'type' property",
		},
		{
			name:   "4400 type not a string",
			script: func(c *client) { c.sendRaw(`{"type":1}`) },
			code:   4400, reason: "'type' property must be a string",
		},
		{
			name:   "4400 unknown type",
			script: func(c *client) { c.sendRaw(`{"type":"subscribe_all"}`) },
			code:   4400, reason: `Invalid message type "subscribe_all"`,
		},
		{
			name:   "4400 server-only type",
			script: func(c *client) { c.sendRaw(`{"type":"next","id":"1","payload":{}}`) },
			code:   4400, reason: "Unexpected message of type next received",
		},
		{
			name:   "4400 init payload not an object",
			script: func(c *client) { c.sendRaw(`{"type":"connection_init","payload":"token"}`) },
			code:   4400, reason: "'connection_init' payload must be an object",
		},
		{
			name: "4400 subscribe without id",
			script: func(c *client) {
				c.init(nil)
				c.sendRaw(`{"type":"subscribe","payload":{"query":"{ name }"}}`)
			},
			code: 4400, reason: "'subscribe' message requires a non-empty string 'id'",
		},
		{
			name: "4400 subscribe with numeric id",
			script: func(c *client) {
				c.init(nil)
				c.sendRaw(`{"type":"subscribe","id":1,"payload":{"query":"{ name }"}}`)
			},
			code: 4400, reason: "'id' property must be a string",
		},
		{
			name: "4400 subscribe without query",
			script: func(c *client) {
				c.init(nil)
				c.sendRaw(`{"type":"subscribe","id":"1","payload":{"variables":{}}}`)
			},
			code: 4400, reason: "'query' must be a string",
		},
		{
			name: "4400 subscribe with array variables",
			script: func(c *client) {
				c.init(nil)
				c.sendRaw(`{"type":"subscribe","id":"1","payload":{"query":"{ name }","variables":[]}}`)
			},
			code: 4400, reason: "'variables' must be an object or null",
		},
		{
			name:   "4401 subscribe before ack",
			script: func(c *client) { c.subscribe("1", "{ name }") },
			code:   4401, reason: "Unauthorized",
		},
		{
			name:   "4408 init timeout",
			cfg:    wstransport.Config{InitTimeout: 50 * time.Millisecond},
			script: func(c *client) {},
			code:   4408, reason: "Connection initialisation timeout",
		},
		{
			name: "4409 duplicate subscription id",
			script: func(c *client) {
				c.init(nil)
				c.subscribe("dup", "subscription { events }")
				c.subscribe("dup", "subscription { events }")
			},
			code: 4409, reason: "Subscriber for dup already exists",
		},
		{
			name: "4429 second connection_init",
			script: func(c *client) {
				c.init(nil)
				c.send("connection_init", "", nil)
			},
			code: 4429, reason: "Too many initialisation requests",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, tt.cfg)
			c := env.dial(t)
			tt.script(c)
			c.expectClose(tt.code, tt.reason)
			if got := env.hooks.waitClose(t); got != tt.code {
				t.Fatalf("OnClose(%d), want %d", got, tt.code)
			}
		})
	}
}

func TestTransportWS_AuthFailureClosesForbidden(t *testing.T) {
	env := newEnv(t, wstransport.Config{InitFunc: authInit})
	c := env.dial(t)
	const token = "Bearer s3cr3t-t0ken"
	c.send("connection_init", "", map[string]any{"Authorization": token})

	msgs, code, reason := c.readUntilClose()
	if len(msgs) != 0 {
		t.Fatalf("got %+v before the close frame; connection_ack must never be sent", msgs)
	}
	if code != wstransport.CloseForbidden || reason != "Forbidden" {
		t.Fatalf("close = %d %q, want 4403 Forbidden", code, reason)
	}
	if strings.Contains(reason, "s3cr3t") {
		t.Fatal("close reason echoes the token")
	}
}

func TestTransportWS_InitFuncPanicCloses4500(t *testing.T) {
	env := newEnv(t, wstransport.Config{InitFunc: func(context.Context, transport.InitPayload) (context.Context, error) {
		panic("auth backend bug")
	}})
	c := env.dial(t)
	c.send("connection_init", "", nil)
	c.expectClose(wstransport.CloseInternalServerError, "Internal server error")
	if got := env.hooks.waitClose(t); got != wstransport.CloseInternalServerError {
		t.Fatalf("OnClose(%d), want 4500", got)
	}
}

func TestTransportWS_SubprotocolNotAcceptable(t *testing.T) {
	for _, offered := range [][]string{nil, {"graphql-sse"}} {
		env := newEnv(t, wstransport.Config{})
		c, resp, err := dialURL(t, env.wsURL, nil, offered...)
		if err != nil {
			t.Fatalf("offered %v: handshake must succeed, got %v", offered, err)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
			t.Fatalf("negotiated %q for offer %v", p, offered)
		}
		c.expectClose(wstransport.CloseSubprotocolNotAcceptable, "Subprotocol not acceptable")
	}
}

func TestTransportWS_PrefersTransportWS(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	_, resp, err := dialURL(t, env.wsURL, nil, "graphql-ws", "graphql-transport-ws")
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "graphql-transport-ws" {
		t.Fatalf("negotiated %q, want graphql-transport-ws", p)
	}
}

func TestCloseConnFromResolver(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t)
	c.init(nil)
	c.subscribe("1", "subscription { closeMe(code: 4000) }")
	c.expectClose(4000, "consumer fell behind")

	results := <-env.schema.closeResults
	want := []bool{false, true, false}
	for i := range want {
		if results[i] != want[i] {
			t.Fatalf("CloseConn results = %v, want %v (unsendable code, first close, second close)", results, want)
		}
	}
	if env.hooks.waitClose(t) != 4000 {
		t.Fatal("OnClose did not report 4000")
	}
}

func TestCloseConnOutsideConnection(t *testing.T) {
	if wstransport.CloseConn(t.Context(), 4000, "x") {
		t.Fatal("CloseConn on a context without a connection reported true")
	}
}
