package wstransport_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/deskbridge/deskbridge/server/wstransport"
)

func TestOriginAllowList(t *testing.T) {
	env := newEnv(t, wstransport.Config{AllowedOrigins: []string{
		"https://app.example.com",
		"http://localhost:*",
		"https://*.example.com",
	}})
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{env.srv.URL, http.StatusSwitchingProtocols}, // same origin
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"http://localhost:5173", http.StatusSwitchingProtocols},
		{"http://localhost", http.StatusSwitchingProtocols},
		{"https://agents.example.com", http.StatusSwitchingProtocols},
		{"https://evil.com", http.StatusForbidden},
		{"http://app.example.com", http.StatusForbidden},         // wrong scheme
		{"https://example.com", http.StatusForbidden},            // apex is not a subdomain
		{"https://example.com.evil.com", http.StatusForbidden},   // suffix trick
		{"https://app.example.com:8443", http.StatusForbidden},   // port not allowed
		{"http://localhost.evil.com:3000", http.StatusForbidden}, // prefix trick
		{"null", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, err := dialURL(t, env.wsURL, h, wstransport.SubprotocolGraphQLTransportWS)
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d (%v), want %d", resp.StatusCode, err, tt.want)
			}
			if c != nil {
				c.init(nil)
			}
		})
	}
}

func TestNewPanicsOnMalformedOrigin(t *testing.T) {
	for _, o := range []string{"*", "app.example.com", "https://*", "https://a.*.com", "https://x.com/path"} {
		t.Run(o, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("New accepted AllowedOrigins %q", o)
				}
			}()
			wstransport.New(wstransport.Config{AllowedOrigins: []string{o}})
		})
	}
	if _, err := wstransport.NewGorilla(wstransport.GorillaConfig{AllowedOrigins: []string{"*"}}); err == nil {
		t.Fatal("NewGorilla accepted a bare wildcard")
	}
}

func TestSupports(t *testing.T) {
	tr := wstransport.New(wstransport.Config{})
	for _, tt := range []struct {
		upgrade string
		want    bool
	}{
		{"websocket", true},
		{"WebSocket", true},
		{"h2c, websocket", true},
		{"h2c", false},
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/query", nil)
		if tt.upgrade != "" {
			r.Header.Set("Upgrade", tt.upgrade)
		}
		if got := tr.Supports(r); got != tt.want {
			t.Errorf("Supports(Upgrade: %q) = %v, want %v", tt.upgrade, got, tt.want)
		}
	}
}

// TestGorillaWithStockGqlgenTransport proves the adapter is a conformant
// transport.WebsocketImplementation by running gqlgen's own
// transport.Websocket on it.
func TestGorillaWithStockGqlgenTransport(t *testing.T) {
	g, err := wstransport.NewGorilla(wstransport.GorillaConfig{AllowedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	schema := newTestSchema()
	closed := make(chan int, 1)
	h := handler.New(schema.executable())
	h.AddTransport(transport.Websocket{
		Implementation: g,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			ctx, err := authInit(ctx, p)
			return ctx, nil, err
		},
		CloseFunc: func(_ context.Context, code int) { closed <- code },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	hdr := http.Header{"Origin": []string{"https://app.example.com"}}
	c, _, err := dialURL(t, url, hdr, wstransport.SubprotocolGraphQLTransportWS)
	if err != nil {
		t.Fatal(err)
	}
	c.init(map[string]any{"Authorization": "Bearer good"})
	c.subscribe("1", "query { whoami }")
	assertJSONEq(t, c.expect("next", "1").Payload, `{"data":{"whoami":"alice"}}`)
	c.expect("complete", "1")

	c.subscribe("2", "subscription { events }")
	schema.events <- "a"
	assertJSONEq(t, c.expect("next", "2").Payload, `{"data":{"events":"a"}}`)

	// A normal close reaches gqlgen as ErrWebsocketClosed and it tears the
	// connection down, cancelling the subscription.
	if err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), deadline()); err != nil {
		t.Fatal(err)
	}
	schema.waitCancelled(t, "events")
	select {
	case <-closed:
	case <-after():
		t.Fatal("CloseFunc not called")
	}

	// The origin check applies under the stock transport too.
	_, resp, err := dialURL(t, url, http.Header{"Origin": []string{"https://evil.com"}}, wstransport.SubprotocolGraphQLTransportWS)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("evil origin: err=%v status=%v, want 403", err, resp)
	}
}
