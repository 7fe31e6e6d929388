package wstransport_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/server/wstransport"
)

// shareSchema has one subscription, s(v), whose client operations hand
// their wstransport.Shared to the test and then stay silent, as a shared
// subscription's members do, while its detached execution (Render, marked
// by rendererKey) streams what the test feeds it.
type shareSchema struct {
	schema  *ast.Schema
	handles chan *wstransport.Shared
	feed    chan string
	// own feeds the operations that hold (s(v: 3)): their own results.
	own chan string
	// closeConn receives what CloseConn reported inside the renderer.
	closeConn chan bool
}

type rendererKey struct{}

func newShareEnv(t *testing.T, cfg wstransport.Config, wrap func(net.Listener) net.Listener) (*shareSchema, *wstransport.Transport, string) {
	t.Helper()
	s := &shareSchema{
		schema:    gqlparser.MustLoadSchema(&ast.Source{Input: `type Query { name: String! } type Subscription { s(v: Int): String! }`}),
		handles:   make(chan *wstransport.Shared, 16),
		feed:      make(chan string),
		own:       make(chan string),
		closeConn: make(chan bool, 1),
	}
	tr := wstransport.New(cfg)
	h := handler.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return s.schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) {
			return 1, true
		},
		ExecFunc: s.exec,
	})
	h.AddTransport(tr)
	srv := httptest.NewUnstartedServer(h)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown transport: %v", err)
		}
		srv.Close()
	})
	return s, tr, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func (s *shareSchema) exec(ctx context.Context) graphql.ResponseHandler {
	if ctx.Value(rendererKey{}) != nil {
		s.closeConn <- wstransport.CloseConn(ctx, 4000, "not from a shared execution")
		return func(ctx context.Context) *graphql.Response {
			select {
			case v := <-s.feed:
				return dataResponse("s", v)
			case <-ctx.Done():
				return nil
			}
		}
	}
	sh, ok := wstransport.SharedFrom(ctx)
	if !ok {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "no sharing handle"))
	}
	s.handles <- sh
	opCtx := graphql.GetOperationContext(ctx)
	if v, _ := opCtx.Operation.SelectionSet[0].(*ast.Field).ArgumentMap(opCtx.Variables)["v"].(int64); v == 3 {
		sh.Hold()
		return func(ctx context.Context) *graphql.Response {
			select {
			case v := <-s.own:
				return dataResponse("s", v)
			case <-ctx.Done():
				return nil
			}
		}
	}
	return func(ctx context.Context) *graphql.Response {
		<-ctx.Done()
		return nil
	}
}

func (s *shareSchema) handle(t *testing.T) *wstransport.Shared {
	t.Helper()
	select {
	case h := <-s.handles:
		return h
	case <-after():
		t.Fatal("the operation never ran")
		return nil
	}
}

func markRenderer(ctx context.Context) context.Context {
	return context.WithValue(ctx, rendererKey{}, true)
}

func dialShare(t *testing.T, url, subprotocol string) *client {
	t.Helper()
	c, _, err := dialURL(t, url, nil, subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	c.send("connection_init", "", nil)
	c.expect("connection_ack", "")
	if subprotocol == wstransport.SubprotocolGraphQLWS {
		c.expect("ka", "")
	}
	return c
}

const shareQuery = `subscription($v: Int) { s(v: $v) }`

// One execution's results, offered to operations on two connections (one
// per protocol), reach each under its own id and message type, in order;
// keys tell identical operations apart from others; the execution cannot
// close the connection it was started from; stop ends it and done follows.
func TestSharedRenderAndOffer(t *testing.T) {
	s, _, url := newShareEnv(t, wstransport.Config{}, nil)
	a := dialShare(t, url, wstransport.SubprotocolGraphQLTransportWS)
	b := dialShare(t, url, wstransport.SubprotocolGraphQLWS)
	c := dialShare(t, url, wstransport.SubprotocolGraphQLTransportWS)
	a.send("subscribe", "a1", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 1}})
	ha := s.handle(t)
	b.send("start", "b1", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 1}})
	hb := s.handle(t)
	c.send("subscribe", "c1", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 2}})
	hc := s.handle(t)
	if ha.Key() != hb.Key() || ha.Key() == hc.Key() {
		t.Fatalf("keys: same operation %q and %q, other variables %q", ha.Key(), hb.Key(), hc.Key())
	}

	frames := make(chan *wstransport.Frame)
	done := make(chan struct{})
	stop, ok := ha.Render(markRenderer, func(f eventbus.Frame) { frames <- f.(*wstransport.Frame) }, func() { close(done) })
	if !ok {
		t.Fatal("Render refused")
	}
	if <-s.closeConn {
		t.Fatal("CloseConn closed a connection from a shared execution")
	}
	for _, v := range []string{"x", "y"} {
		s.feed <- v
		var f *wstransport.Frame
		select {
		case f = <-frames:
		case <-after():
			t.Fatal("no frame")
		}
		for _, h := range []*wstransport.Shared{ha, hb} {
			if ok, gone := h.Offer(f); !ok || gone {
				t.Fatalf("Offer = %v, %v", ok, gone)
			}
		}
		assertJSONEq(t, a.expect("next", "a1").Payload, `{"data":{"s":"`+v+`"}}`)
		assertJSONEq(t, b.expect("data", "b1").Payload, `{"data":{"s":"`+v+`"}}`)
	}

	// Completed by the client: gone, and nothing more reaches it.
	a.send("complete", "a1", nil)
	deadline := time.Now().Add(ioTimeout)
	var f *wstransport.Frame
	for {
		s.feed <- "z"
		f = <-frames
		if _, gone := ha.Offer(f); gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Offer never reported the completed operation gone")
		}
	}
	if ok, gone := hb.Offer(f); !ok || gone {
		t.Fatalf("Offer to the other operation = %v, %v", ok, gone)
	}
	assertJSONEq(t, b.expect("data", "b1").Payload, `{"data":{"s":"z"}}`)
	a.send("ping", "", nil)
	for m := a.read(); m.Type != "pong"; m = a.read() {
		// Offers made before the complete was processed still arrive.
		if m.Type != "next" || m.ID != "a1" || !strings.Contains(string(m.Payload), `"z"`) {
			t.Fatalf("after complete: %s %s %s", m.Type, m.ID, m.Payload)
		}
	}

	stop()
	select {
	case <-done:
	case <-after():
		t.Fatal("done was not called after stop")
	}
}

// Offer never waits: once a connection that does not read has its queue
// full it reports no room, and what it did queue arrives complete and in
// order when the client reads again.
func TestSharedOfferWithoutRoom(t *testing.T) {
	s, _, url := newShareEnv(t, wstransport.Config{SendQueue: 4}, func(l net.Listener) net.Listener { return smallBufListener{l} })
	stuck := dialSmallBuffers(t, url)
	stuck.init(nil)
	stuck.send("subscribe", "1", map[string]any{"query": shareQuery})
	h := s.handle(t)
	frames := make(chan *wstransport.Frame)
	stop, ok := h.Render(markRenderer, func(f eventbus.Frame) { frames <- f.(*wstransport.Frame) }, func() {})
	if !ok {
		t.Fatal("Render refused")
	}
	defer stop()
	<-s.closeConn
	big := strings.Repeat("x", 64<<10)
	offered := 0
	for {
		s.feed <- big + "-" + string(rune('a'+offered%26))
		ok, gone := h.Offer(<-frames)
		if gone {
			t.Fatal("the operation is gone")
		}
		if !ok {
			break
		}
		if offered++; offered > 1000 {
			t.Fatal("a client that does not read still had room after 64 MiB")
		}
	}
	for i := range offered {
		m := stuck.expect("next", "1")
		var p struct{ Data struct{ S string } }
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if want := big + "-" + string(rune('a'+i%26)); p.Data.S != want {
			t.Fatalf("message %d is %.10q…, want …%q", i, p.Data.S[len(p.Data.S)-2:], want[len(want)-2:])
		}
	}
}

// After Shutdown began, nothing new is started.
func TestSharedRenderRefusedWhileShuttingDown(t *testing.T) {
	s, tr, url := newShareEnv(t, wstransport.Config{}, nil)
	c := dialShare(t, url, wstransport.SubprotocolGraphQLTransportWS)
	c.send("subscribe", "1", map[string]any{"query": shareQuery})
	h := s.handle(t)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Render(markRenderer, func(eventbus.Frame) {}, func() { t.Error("done called for a refused Render") }); ok {
		t.Fatal("Render started after Shutdown")
	}
}

// A held operation pulls nothing from its own execution until released,
// then does; one that ends while held is still completed and accounted for.
func TestSharedHoldAndRelease(t *testing.T) {
	unsubscribed := make(chan struct{}, 4)
	s, _, url := newShareEnv(t, wstransport.Config{Hooks: wstransport.Hooks{
		OnUnsubscribe: func() { unsubscribed <- struct{}{} },
	}}, nil)
	c := dialShare(t, url, wstransport.SubprotocolGraphQLTransportWS)
	c.send("subscribe", "1", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 3}})
	h := s.handle(t)
	select {
	case s.own <- "early":
		t.Fatal("a held operation pulled a result from its own execution")
	case <-time.After(200 * time.Millisecond):
	}
	h.Release()
	select {
	case s.own <- "mine":
	case <-after():
		t.Fatal("a released operation does not pull its results")
	}
	assertJSONEq(t, c.expect("next", "1").Payload, `{"data":{"s":"mine"}}`)

	// Held again by a second operation, which the client then completes.
	c.send("subscribe", "2", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 3}})
	s.handle(t)
	c.send("complete", "2", nil)
	select {
	case <-unsubscribed:
	case <-after():
		t.Fatal("a held operation completed by the client never ended")
	}
	c.send("ping", "", nil)
	c.expect("pong", "")

	// And one held when its connection goes: Shutdown (at cleanup) must
	// not wait for it.
	c.send("subscribe", "3", map[string]any{"query": shareQuery, "variables": map[string]any{"v": 3}})
	s.handle(t)
}
