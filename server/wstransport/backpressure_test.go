package wstransport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/deskbridge/deskbridge/server/wstransport"
)

// cutOffLog is the start of the one line logged per slow-consumer cut-off.
const cutOffLog = "websocket client too slow"

// logRecorder is the transport's injected log output.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// count returns how many lines contain substr.
func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

// smallBufListener shrinks the kernel send buffer of accepted connections so
// that a client that does not read fills it after a few messages instead of
// several megabytes.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, nil
}

// dialSmallBuffers dials url with a small kernel receive buffer, the client
// half of smallBufListener.
func dialSmallBuffers(t *testing.T, url string) *client {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: ioTimeout,
		Subprotocols:     []string{wstransport.SubprotocolGraphQLTransportWS},
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			conn, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			_ = conn.(*net.TCPConn).SetReadBuffer(4096)
			return conn, nil
		},
	}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{t: t, conn: conn}
}

// counterValue is the sequence number of a counter result.
func counterValue(t *testing.T, m wireMsg) int {
	t.Helper()
	var p struct {
		Data struct{ Counter string }
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("decode counter payload: %v", err)
	}
	num, _, _ := strings.Cut(p.Data.Counter, " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		t.Fatalf("counter payload %.40q: %v", p.Data.Counter, err)
	}
	return n
}

// readCounter reads the next counter result for id and checks it is want.
func (c *client) readCounter(id string, want int) {
	c.t.Helper()
	m := c.expect("next", id)
	if n := counterValue(c.t, m); n != want {
		c.t.Fatalf("got counter %d, want %d: a message was skipped or repeated", n, want)
	}
}

// readUntilEnd reads until the connection ends and returns the messages and
// the error that ended it, a *websocket.CloseError if a close frame came.
func (c *client) readUntilEnd() ([]wireMsg, error) {
	c.t.Helper()
	var msgs []wireMsg
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return msgs, err
		}
		var m wireMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("decode %.80q: %v", data, err)
		}
		msgs = append(msgs, m)
	}
}

// TestStuckClientIsCutOffWhileOthersKeepReceiving: a client that subscribes
// and never reads, while the server pushes 256 KiB results at it as fast as
// it can, is cut off with 1013 soon after WriteTimeout, and another client
// on the same server reads an endless stream before, during and after that
// without losing or repeating a message. Fails when nothing bounds a write
// (WriteTimeout of an hour): the stuck client is never cut off.
func TestStuckClientIsCutOffWhileOthersKeepReceiving(t *testing.T) {
	logs := &logRecorder{}
	env := newEnv(t, wstransport.Config{WriteTimeout: time.Second, Logger: logs.logger()})

	stuck := env.dial(t)
	stuck.init(nil)
	stuck.subscribe("s", "subscription { flood(size: 262144) }")
	start := time.Now()

	good := env.dial(t)
	good.init(nil)
	good.subscribe("g", "subscription { counter(size: 1024) }")

	// Keep reading well past the cut-off, so the good stream demonstrably
	// spans it.
	next, cutAt := 1, 0
	for cutAt == 0 || next < cutAt+200 {
		good.readCounter("g", next)
		next++
		if cutAt != 0 {
			continue
		}
		select {
		case code := <-env.hooks.closed:
			if code != 1013 {
				t.Fatalf("a connection closed with %d, want the stuck one with 1013", code)
			}
			cutAt = next
			t.Logf("stuck client cut off after %v; the good client had read %d messages", time.Since(start).Round(time.Millisecond), next-1)
		default:
			if time.Since(start) > ioTimeout {
				t.Fatalf("stuck client still connected after %v (WriteTimeout 1s)", ioTimeout)
			}
		}
	}
	env.schema.waitCancelled(t, "flood")
	if n := logs.count(cutOffLog); n != 1 {
		t.Fatalf("%d cut-off log lines, want 1:\n%s", n, logs.buf.String())
	}

	// The good connection is still open: a ping is answered, after
	// whatever results were already on their way.
	good.send("ping", "", nil)
	for {
		m := good.read()
		if m.Type == "pong" {
			break
		}
		if m.Type != "next" || counterValue(t, m) != next {
			t.Fatalf("got %s %s, want counter %d or pong", m.Type, m.ID, next)
		}
		next++
	}
	select {
	case code := <-env.hooks.closed:
		t.Fatalf("a second connection closed (%d)", code)
	default:
	}

	// When the stuck client reads at last it finds results, then either the
	// 1013 close frame or, since it did not start reading within the
	// grace, a dropped connection (1006 for a browser); graphql-ws retries
	// both.
	msgs, err := stuck.readUntilEnd()
	for _, m := range msgs {
		if m.Type != "next" || m.ID != "s" {
			t.Fatalf("stuck client got %s %s", m.Type, m.ID)
		}
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code != 1013 || ce.Text != wstransport.SlowConsumerReason) {
		t.Fatalf("stuck client got close %d %q, want 1013 or a dropped connection", ce.Code, ce.Text)
	}
	t.Logf("stuck client read %d results, then: %v", len(msgs), err)
}

// TestSlowClientGetsResumeReason: a client that stops reading long enough to
// be cut off, but reads again before the connection is dropped, gets the
// results that were already on their way, in order, and then the close
// frame 1013 with SlowConsumerReason, which tells it how to resume.
func TestSlowClientGetsResumeReason(t *testing.T) {
	logs := &logRecorder{}
	env := newEnvWithListener(t, wstransport.Config{WriteTimeout: 300 * time.Millisecond, Logger: logs.logger()},
		func(l net.Listener) net.Listener { return smallBufListener{l} })
	c := dialSmallBuffers(t, env.wsURL)
	c.init(nil)

	c.subscribe("f", "subscription { flood(size: 65536) }")
	// Cancelling the stream is the cut-off; read right away, well within
	// the 2s the stalled write still has.
	env.schema.waitCancelled(t, "flood")

	msgs, code, reason := c.readUntilClose()
	if code != 1013 || reason != wstransport.SlowConsumerReason {
		t.Fatalf("close = %d %q after %d messages, want 1013 %q", code, reason, len(msgs), wstransport.SlowConsumerReason)
	}
	for _, m := range msgs {
		if m.Type != "next" || m.ID != "f" {
			t.Fatalf("unexpected %s %s before the close", m.Type, m.ID)
		}
	}
	if got := env.hooks.waitClose(t); got != 1013 {
		t.Fatalf("OnClose(%d), want 1013", got)
	}
	if n := logs.count(cutOffLog); n != 1 {
		t.Fatalf("%d cut-off log lines, want 1:\n%s", n, logs.buf.String())
	}
}

// TestSendQueueBoundsMemory: an endless producer pushing 256 KiB results at a
// client that does not read grows the heap by about the send queue's 1 MiB,
// not by what it produced. WriteTimeout is long so that the connection is
// measured while still stuck. Fails if the queue is bounded only by its
// message count (256 × 256 KiB = 64 MiB) or not at all (the producer never
// stops).
func TestSendQueueBoundsMemory(t *testing.T) {
	env := newEnv(t, wstransport.Config{WriteTimeout: time.Minute})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	stuck := env.dial(t)
	stuck.init(nil)
	stuck.subscribe("s", "subscription { flood(size: 262144) }")
	waitStable(t, &env.schema.floodBytes)

	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	produced := env.schema.floodBytes.Load()
	t.Logf("the server produced %d MiB for the stuck client (the rest is in kernel socket buffers); heap in use grew by %d KiB",
		produced>>20, grown>>10)
	const limit = 16 << 20
	if grown > limit {
		t.Fatalf("heap in use grew by %d MiB while a client was stuck, want < %d MiB", grown>>20, limit>>20)
	}
}

// waitStable waits until counter has stopped growing, i.e. the producer is
// held back.
func waitStable(t *testing.T, counter *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	last, same := int64(-1), 0
	for same < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the producer never stopped (%d MiB so far): nothing holds it back", counter.Load()>>20)
		}
		time.Sleep(50 * time.Millisecond)
		if v := counter.Load(); v > 0 && v == last {
			same++
		} else {
			last, same = v, 0
		}
	}
}

// TestBurstReachesReadingClient: results produced much faster than the
// socket takes them (a replay of a long backlog, say) fill a tiny send queue
// over and over; a client that keeps reading gets all of them in order and
// is not cut off. Fails if a full queue cut the client off instead of
// holding the producer back.
func TestBurstReachesReadingClient(t *testing.T) {
	env := newEnv(t, wstransport.Config{SendQueue: 2, SendQueueBytes: 8 << 10})
	c := env.dial(t)
	c.init(nil)

	c.subscribe("c", "subscription { counter(size: 4096) }")
	for want := 1; want <= 1000; want++ {
		c.readCounter("c", want)
	}
	select {
	case code := <-env.hooks.closed:
		t.Fatalf("connection closed with %d", code)
	default:
	}
}

// TestGorillaWithStockTransportDropsStuckClient: under gqlgen's own
// transport.Websocket a write that times out drops the connection, which
// makes gqlgen tear it down. Fails if the adapter only returned the error:
// gqlgen would then keep the connection and the subscription forever.
func TestGorillaWithStockTransportDropsStuckClient(t *testing.T) {
	g, err := wstransport.NewGorilla(wstransport.GorillaConfig{WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	schema := newTestSchema()
	closed := make(chan int, 1)
	h := handler.New(schema.executable())
	h.AddTransport(transport.Websocket{
		Implementation: g,
		CloseFunc:      func(_ context.Context, code int) { closed <- code },
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)

	c := dialSmallBuffers(t, "ws"+strings.TrimPrefix(srv.URL, "http"))
	c.init(nil)
	c.subscribe("f", "subscription { flood(size: 65536) }")

	schema.waitCancelled(t, "flood")
	select {
	case <-closed:
	case <-after():
		t.Fatal("CloseFunc not called")
	}
}
