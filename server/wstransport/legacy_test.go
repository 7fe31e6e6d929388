package wstransport_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/server/wstransport"
)

func TestLegacy_HappyPath(t *testing.T) {
	env := newEnv(t, wstransport.Config{InitFunc: authInit})
	c := env.dial(t, wstransport.SubprotocolGraphQLWS)

	c.send("connection_init", "", map[string]any{"authorization": "Bearer good"})
	ack := c.expect("connection_ack", "")
	if len(ack.Payload) != 0 {
		t.Fatalf("connection_ack payload = %s, want none", ack.Payload)
	}
	// subscriptions-transport-ws starts its 30s timer on the first ka.
	c.expect("ka", "")

	c.send("start", "1", map[string]any{"query": "subscription { events }"})
	env.schema.events <- "a"
	assertJSONEq(t, c.expect("data", "1").Payload, `{"data":{"events":"a"}}`)
	c.send("stop", "1", nil)
	c.expect("complete", "1") // legacy clients wait for it; graphql-transport-ws sends none
	env.schema.waitCancelled(t, "events")

	c.send("start", "2", map[string]any{"query": "query { whoami }"})
	assertJSONEq(t, c.expect("data", "2").Payload, `{"data":{"whoami":"alice"}}`)
	c.expect("complete", "2")

	c.send("start", "3", map[string]any{"query": "query { nope }"})
	e := c.expect("error", "3")
	if !strings.Contains(string(e.Payload), "GRAPHQL_VALIDATION_FAILED") {
		t.Fatalf("error payload = %s", e.Payload)
	}

	c.send("connection_terminate", "", nil)
	c.expectClose(1000, "")
	if code := env.hooks.waitClose(t); code != 1000 {
		t.Fatalf("OnClose(%d), want 1000", code)
	}
}

func TestLegacy_KeepAlive(t *testing.T) {
	env := newEnv(t, wstransport.Config{LegacyKeepAlive: 20 * time.Millisecond})
	c := env.dial(t, wstransport.SubprotocolGraphQLWS)
	c.init(nil)
	for range 4 {
		c.expect("ka", "")
	}
}

func TestLegacy_AuthFailure(t *testing.T) {
	env := newEnv(t, wstransport.Config{InitFunc: authInit})
	c := env.dial(t, wstransport.SubprotocolGraphQLWS)
	const token = "Bearer s3cr3t-t0ken"
	c.send("connection_init", "", map[string]any{"Authorization": token})

	msgs, code, reason := c.readUntilClose()
	if len(msgs) != 1 || msgs[0].Type != "connection_error" {
		t.Fatalf("messages before close = %+v, want exactly one connection_error", msgs)
	}
	assertJSONEq(t, msgs[0].Payload, `{"message":"Forbidden"}`)
	if code != wstransport.CloseForbidden || reason != "Forbidden" {
		t.Fatalf("close = %d %q, want 4403 Forbidden", code, reason)
	}
	if strings.Contains(string(msgs[0].Payload), "s3cr3t") {
		t.Fatal("connection_error echoes the token")
	}
}

func TestLegacy_ProtocolErrors(t *testing.T) {
	tests := []struct {
		name   string
		script func(c *client)
		code   int
		reason string
	}{
		{"invalid json", func(c *client) { c.sendRaw("nope") }, 4400, "invalid JSON"},
		{"unknown type", func(c *client) { c.sendRaw(`{"type":"subscribe","id":"1"}`) }, 4400, `Invalid message type "subscribe"`},
		{"start before init", func(c *client) {
			c.send("start", "1", map[string]any{"query": "{ name }"})
		}, 4401, "Unauthorized"},
		{"second init", func(c *client) {
			c.init(nil)
			c.expect("ka", "")
			c.send("connection_init", "", nil)
		}, 4429, "Too many initialisation requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, wstransport.Config{})
			c := env.dial(t, wstransport.SubprotocolGraphQLWS)
			tt.script(c)
			msgs, code, reason := c.readUntilClose()
			if len(msgs) != 1 || msgs[0].Type != "connection_error" {
				t.Fatalf("messages before close = %+v, want one connection_error", msgs)
			}
			assertJSONEq(t, msgs[0].Payload, `{"message":`+quote(tt.reason)+`}`)
			if code != tt.code || reason != tt.reason {
				t.Fatalf("close = %d %q, want %d %q", code, reason, tt.code, tt.reason)
			}
		})
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// subscriptions-transport-ws flushes queued start messages right after
// connection_init without waiting for connection_ack; that must work.
func TestLegacy_StartPipelinedAfterInit(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t, wstransport.SubprotocolGraphQLWS)
	c.send("connection_init", "", nil)
	c.send("start", "1", map[string]any{"query": "{ name }"})
	c.expect("connection_ack", "")
	c.expect("ka", "")
	assertJSONEq(t, c.expect("data", "1").Payload, `{"data":{"name":"test"}}`)
	c.expect("complete", "1")
}
