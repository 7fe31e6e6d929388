package wstransport_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/deskbridge/deskbridge/server/wstransport"
)

func TestReadLimit(t *testing.T) {
	env := newEnv(t, wstransport.Config{ReadLimit: 1024})
	c := env.dial(t)
	c.init(nil)

	big := `{"type":"ping","payload":{"pad":"` + strings.Repeat("x", 64<<10) + `"}}`
	c.sendRaw(big)
	_, code, _ := c.readUntilClose()
	if code != websocket.CloseMessageTooBig {
		t.Fatalf("close code = %d, want 1009", code)
	}
	if got := env.hooks.waitClose(t); got != websocket.CloseMessageTooBig {
		t.Fatalf("OnClose(%d), want 1009", got)
	}
}

func TestDeadPeerDetection(t *testing.T) {
	env := newEnv(t, wstransport.Config{PingInterval: 200 * time.Millisecond})
	c := env.dial(t)
	// Swallow pings without answering: from the server's side the peer is
	// gone.
	c.conn.SetPingHandler(func(string) error { return nil })
	c.init(nil)
	c.subscribe("1", "subscription { events }")
	env.schema.events <- "a"
	c.expect("next", "1")

	c.expectClose(websocket.CloseGoingAway, "keep-alive timeout")
	env.schema.waitCancelled(t, "events")
	if got := env.hooks.waitClose(t); got != websocket.CloseGoingAway {
		t.Fatalf("OnClose(%d), want 1001", got)
	}
}

func TestPongsKeepConnectionAlive(t *testing.T) {
	const interval = 150 * time.Millisecond
	env := newEnv(t, wstransport.Config{PingInterval: interval})
	c := env.dial(t)
	c.init(nil)

	pings := make(chan struct{}, 100)
	c.conn.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	// Control frames are only processed while reading, so read on a
	// goroutine and forward data messages.
	msgs := make(chan []byte, 10)
	go func() {
		defer close(msgs)
		for {
			_, data, err := c.conn.ReadMessage()
			if err != nil {
				return
			}
			msgs <- data
		}
	}()

	// Five pings span more than two read deadlines (2×interval each);
	// only pongs kept the connection open that long.
	for i := range 5 {
		select {
		case <-pings:
		case <-time.After(ioTimeout):
			t.Fatalf("only %d pings arrived", i)
		}
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":"1","payload":{"query":"{ name }"}}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case data, ok := <-msgs:
		if !ok || !bytes.Contains(data, []byte(`"next"`)) {
			t.Fatalf("got %q (open=%v), want next", data, ok)
		}
	case <-time.After(ioTimeout):
		t.Fatal("no response after pings")
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c1 := env.dial(t)
	c1.init(nil)
	c1.subscribe("1", "subscription { events }")
	// Make sure the subscription is running before shutting down.
	env.schema.events <- "a"
	c1.expect("next", "1")
	c2 := env.dial(t, wstransport.SubprotocolGraphQLWS)
	c2.init(nil)
	c2.expect("ka", "")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- env.tr.Shutdown(ctx)
	}()

	c1.expectClose(websocket.CloseGoingAway, "server shutting down")
	c2.expectClose(websocket.CloseGoingAway, "server shutting down")
	env.schema.waitCancelled(t, "events")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	_, resp, err := dialURL(t, env.wsURL, nil, wstransport.SubprotocolGraphQLTransportWS)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: err=%v resp=%v, want 503", err, resp)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	env := newEnv(t, wstransport.Config{})
	c := env.dial(t)
	c.init(nil)
	// This client never reads, so it never answers the close frame; with
	// an already-expired context Shutdown must not wait the grace period.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := env.tr.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	env.hooks.waitClose(t)
}

func TestNoGoroutineLeak(t *testing.T) {
	env := newEnv(t, wstransport.Config{PingInterval: time.Second, LegacyKeepAlive: time.Second})

	// Warm up the HTTP server and runtime so lazily started goroutines are
	// part of the baseline.
	w := env.dial(t)
	w.init(nil)
	_ = w.conn.Close()
	env.hooks.waitClose(t)

	base := runtime.NumGoroutine()

	// Ended by a normal client close with active subscriptions.
	a := env.dial(t)
	a.init(nil)
	a.subscribe("1", "subscription { events }")
	a.subscribe("2", "subscription { events }")
	a.subscribe("3", "query { name }")
	a.expect("next", "3")
	a.expect("complete", "3")
	_ = a.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))

	// Dropped without a close frame (TCP close), legacy protocol.
	b := env.dial(t, wstransport.SubprotocolGraphQLWS)
	b.init(nil)
	b.send("start", "1", map[string]any{"query": "subscription { events }"})
	_ = b.conn.NetConn().Close()

	// Closed by the server for a protocol error.
	c := env.dial(t)
	c.init(nil)
	c.subscribe("1", "subscription { events }")
	c.sendRaw("garbage")
	c.expectClose(4400, "invalid JSON")

	for range 3 {
		env.hooks.waitClose(t)
	}
	_ = a.conn.Close()
	_ = c.conn.Close()

	deadline := time.Now().Add(ioTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}

	env.hooks.mu.Lock()
	defer env.hooks.mu.Unlock()
	if len(env.hooks.connects) != len(env.hooks.closes) {
		t.Fatalf("OnConnect %d times, OnClose %d times", len(env.hooks.connects), len(env.hooks.closes))
	}
	if env.hooks.subscribes != env.hooks.unsubscribe {
		t.Fatalf("OnSubscribe %d times, OnUnsubscribe %d times", env.hooks.subscribes, env.hooks.unsubscribe)
	}
}
