package wstransport

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// Close codes this package sends besides the RFC 6455 ones. They are the
// codes graphql-transport-ws defines; the legacy protocol reuses them.
const (
	// CloseBadRequest (4400): malformed JSON, missing or wrongly typed
	// fields, or a message type the server does not accept. Fatal for
	// graphql-ws clients: retrying would send the same bytes.
	CloseBadRequest = 4400
	// CloseUnauthorized (4401): subscribe/start before connection_ack.
	CloseUnauthorized = 4401
	// CloseForbidden (4403): InitFunc rejected the connection.
	CloseForbidden = 4403
	// CloseSubprotocolNotAcceptable (4406): the client offered neither
	// graphql-transport-ws nor graphql-ws.
	CloseSubprotocolNotAcceptable = 4406
	// CloseConnectionInitTimeout (4408): no connection_init within
	// Config.InitTimeout.
	CloseConnectionInitTimeout = 4408
	// CloseSubscriberAlreadyExists (4409): subscribe with the id of an
	// operation that is still active.
	CloseSubscriberAlreadyExists = 4409
	// CloseTooManyInitRequests (4429): a second connection_init.
	CloseTooManyInitRequests = 4429
	// CloseInternalServerError (4500): a server bug (a panic while
	// handling a message, e.g. in InitFunc).
	CloseInternalServerError = 4500
)

// RFC 6455 codes used internally.
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeInternalError = 1011
	closeTryAgainLater = 1013
	closeAbnormal      = 1006
)

// closeHandshakeGrace is how long the writer waits, after sending a close
// frame, for the peer's answer before dropping the TCP connection.
const closeHandshakeGrace = 2 * time.Second

// SlowConsumerReason is the close reason sent with 1013 to a client cut off
// for not reading fast enough. Nothing was lost that it cannot get back: the
// event stream replays everything after a given id, so the reason says how
// to resume rather than merely that it failed.
const SlowConsumerReason = "too slow: reconnect and resubscribe with after set to the id of the last event received"

// cutOffGrace is how much longer the write that stalled may run after a slow
// consumer was cut off. A client that was only briefly stuck (a paused tab, a
// GC pause) then still gets the rest of that frame and the 1013 close frame
// with its reason; one that stays stuck is dropped without a close frame
// (1006 for the client), because a write that timed out leaves the stream
// mid-frame and nothing can follow it.
const cutOffGrace = 2 * time.Second

// closeFrameTimeout bounds the write of a close frame. It is short because
// by then the connection is over: a peer that cannot take 125 bytes within a
// second is dropped instead of keeping its goroutines for another
// WriteTimeout.
const closeFrameTimeout = time.Second

// Defaults for zero Config fields; Config documents why each is what it is.
const (
	defaultInitTimeout      = 3 * time.Second
	defaultPingInterval     = 15 * time.Second
	defaultLegacyKeepAlive  = 10 * time.Second
	defaultReadLimit        = 1 << 20
	defaultSendQueue        = 256
	defaultSendQueueBytes   = 1 << 20
	defaultMaxSubscriptions = 100
)

// InitFunc authenticates a connection from its connection_init payload. The
// returned context becomes the parent of every operation on the connection,
// so values put there (the user, tenant, scopes) are what resolvers see. It
// must be derived from ctx so that closing the connection cancels the
// operations, and InitFunc must return when ctx is cancelled: it runs on the
// connection's reader. An error rejects the connection with 4403
// "Forbidden"; the error is logged at Info level (keep secrets out of it) but
// never sent, so a client cannot learn why, nor see its token reflected.
type InitFunc func(ctx context.Context, payload transport.InitPayload) (context.Context, error)

// Hooks are optional callbacks for metrics (open connections, active
// subscriptions, close codes). Every field may be nil. They run on the
// connection's goroutines, so they must be fast and safe for concurrent use.
// OnConnect and OnClose are called exactly once per upgraded connection, and
// OnSubscribe and OnUnsubscribe once per operation, so gauges built from them
// always return to zero.
type Hooks struct {
	// OnConnect receives the negotiated subprotocol ("" when the client
	// offered none we speak; such a connection is closed with 4406).
	OnConnect func(subprotocol string)
	// OnClose receives the code the server sent (1001 "keep-alive timeout"
	// for a peer that stopped answering pings, 1013 for a slow consumer
	// even when its close frame could not be delivered), or the peer's
	// code when the peer closed first, or 1006 when the connection just
	// dropped.
	OnClose func(code int)
	// OnSubscribe is called when an operation (subscription, query or
	// mutation) is accepted.
	OnSubscribe func()
	// OnUnsubscribe is called when an accepted operation ends for any
	// reason: completion, client complete/stop, error or connection close.
	OnUnsubscribe func()
	// OnSubscriptionResult is called for each subscription result queued
	// to a client, whether executed for it or shared with it (a result
	// rendered once for many identical subscriptions counts once per
	// client).
	OnSubscriptionResult func()
}

// Config configures a Transport. Zero values mean the documented default.
type Config struct {
	// AllowedOrigins is passed to GorillaConfig.AllowedOrigins: besides
	// same-origin and Origin-less requests, which are always allowed, the
	// browser origins (or "https://*.example.com", "http://localhost:*"
	// patterns) that may connect. Others get HTTP 403.
	AllowedOrigins []string
	// InitTimeout is how long a client has to send connection_init before
	// the server closes with 4408; default 3s, the graphql-ws server
	// default. It stops sockets that never authenticate from pinning
	// goroutines.
	InitTimeout time.Duration
	// PingInterval is how often the server sends WebSocket ping control
	// frames, which browsers and the ws package answer without application
	// code; default 15s, negative disables. The read deadline is twice the
	// interval and is extended by every pong or message, so a peer that
	// vanished without a FIN is closed (1001 "keep-alive timeout", which
	// graphql-ws clients retry) instead of leaking its subscriptions.
	PingInterval time.Duration
	// LegacyKeepAlive is the interval of "ka" messages on the legacy
	// protocol; default 10s, negative disables. subscriptions-transport-ws
	// reconnects after 30s without one, so the first goes out right after
	// connection_ack.
	LegacyKeepAlive time.Duration
	// ReadLimit is the largest client message in bytes; default 1 MiB.
	// Bigger messages close the connection with 1009.
	ReadLimit int64
	// WriteTimeout is how long one write to the socket (a message or a
	// ping) may block; default 10s. A write blocks only once the client
	// has stopped reading and the TCP buffers are full, so one that does
	// not finish in time cuts the client off with 1013 and
	// SlowConsumerReason, which graphql-ws clients retry; the TCP
	// connection is dropped if the write still has not finished
	// cutOffGrace (2s) later. See the package documentation.
	WriteTimeout time.Duration
	// SendQueue and SendQueueBytes bound the messages queued per
	// connection and not yet written; defaults 256 and 1 MiB (the last
	// message admitted may overshoot the bytes, so any size fits). There is
	// no writer goroutine: whoever queues a message while nobody writes
	// drains the queue. An operation whose next result finds the queue full
	// waits for room, so a burst (a replay of events(after:), say) reaches
	// a client at the pace it reads instead of cutting it off; the event
	// bus never waits for it, it lets that subscriber catch up from the
	// database. Memory per connection stays bounded, and a client that does
	// not read at all is cut off by WriteTimeout.
	SendQueue      int
	SendQueueBytes int
	// MaxSubscriptions caps concurrently active operations per connection;
	// default 100. One more gets an "error" message for its id, not a
	// close, so the client's other operations keep running.
	MaxSubscriptions int
	// InitFunc authenticates connection_init; nil accepts every connection
	// with the upgrade request's context.
	InitFunc InitFunc
	// Hooks are optional metrics callbacks.
	Hooks Hooks
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.InitTimeout <= 0 {
		c.InitTimeout = defaultInitTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.LegacyKeepAlive == 0 {
		c.LegacyKeepAlive = defaultLegacyKeepAlive
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = defaultSendQueueBytes
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = defaultMaxSubscriptions
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Transport is a graphql.Transport for GraphQL over WebSocket that sends the
// close codes clients act on (see the package documentation). Add it with
// handler.Server.AddTransport before any transport that also matches upgrade
// requests, because gqlgen uses the first transport whose Supports is true.
type Transport struct {
	cfg      Config
	upgrader *Gorilla
	id       uint64 // see transportIDs

	mu       sync.Mutex
	conns    map[*connection]struct{}
	shutdown bool
	// active counts Do calls that passed the shutdown check, so Shutdown can
	// wait for connection goroutines that are still upgrading.
	active sync.WaitGroup
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a Transport. It panics if an AllowedOrigins entry is malformed:
// that is a deployment typo that would otherwise surface as every browser
// being refused (or, worse, allowed), and New runs at startup.
func New(cfg Config) *Transport {
	cfg = cfg.withDefaults()
	g, err := NewGorilla(GorillaConfig{
		AllowedOrigins: cfg.AllowedOrigins,
		// This deadline bounds pings only: the connection's stall watch
		// bounds its messages, cutting the client off after WriteTimeout
		// and dropping the connection cutOffGrace later, so that the close
		// frame can still follow a write that finishes within the grace.
		WriteTimeout: cfg.WriteTimeout + cutOffGrace,
	})
	if err != nil {
		panic(fmt.Sprintf("wstransport.New: %v", err))
	}
	return &Transport{
		cfg:      cfg,
		upgrader: g,
		id:       transportIDs.Add(1),
		conns:    make(map[*connection]struct{}),
	}
}

// Supports claims WebSocket upgrade requests. It checks the token rather than
// mere presence of the Upgrade header so that an "Upgrade: h2c" request still
// reaches the HTTP transports.
func (t *Transport) Supports(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

// Do upgrades the request and returns; the connection is served on a
// goroutine of its own, which is also its only reader, until it closes.
// Returning lets net/http drop what it keeps for the request while its
// handler runs (its read and write buffers, 8 KiB, and a deep handler
// stack), which would otherwise be pinned by every open connection. The
// request's context values, but not its cancellation (net/http cancels it
// when Do returns), are the parent of the connection context.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.mu.Lock()
	if t.shutdown {
		t.mu.Unlock()
		// 503 tells load balancers and clients to go to another replica.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	t.active.Add(1)
	t.mu.Unlock()
	served := false
	defer func() {
		if !served {
			t.active.Done()
		}
	}()

	wsc, err := t.upgrader.Accept(w, r, transport.WebsocketAcceptOptions{ResponseHeader: http.Header{}})
	if err != nil {
		// Gorilla has already answered with 400/403/405; nothing to write.
		t.cfg.Logger.DebugContext(r.Context(), "websocket upgrade failed",
			slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		return
	}
	ec, ok := wsc.(engineConn)
	if !ok {
		// Unreachable with Gorilla; guards against a future adapter swap.
		t.cfg.Logger.ErrorContext(r.Context(), "websocket adapter lacks required methods",
			slog.String("type", fmt.Sprintf("%T", wsc)))
		_ = wsc.WriteClose(closeInternalError, "internal error")
		_ = wsc.Close()
		return
	}

	c := newConnection(t, ec, r, exec)
	served = true
	go func() {
		defer t.active.Done()
		c.serve()
	}()
}

// Shutdown stops accepting upgrades (new requests get 503), closes every open
// connection with 1001 "server shutting down" so graphql-ws clients reconnect
// (to another replica), cancels their operations, and waits until all
// connection goroutines have exited or ctx is done. When ctx ends first,
// remaining sockets are closed without waiting for the close handshake and
// ctx's error is returned. http.Server.Shutdown does not do any of this:
// upgraded connections are hijacked and invisible to it. Operations stop
// through context cancellation, so a resolver that ignores ctx keeps its
// connection goroutine alive until ctx ends.
func (t *Transport) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.shutdown = true
	conns := t.snapshotLocked()
	t.mu.Unlock()

	for _, c := range conns {
		c.closeWith(closeGoingAway, "server shutting down")
	}

	done := make(chan struct{})
	go func() {
		t.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		conns = t.snapshotLocked()
		t.mu.Unlock()
		for _, c := range conns {
			c.abort()
		}
		return fmt.Errorf("wait for websocket connections to close: %w", ctx.Err())
	}
}

func (t *Transport) snapshotLocked() []*connection {
	conns := make([]*connection, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	return conns
}

// register adds c to the set Shutdown closes. It reports false when shutdown
// began while c was upgrading, in which case c must close itself.
func (t *Transport) register(c *connection) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns[c] = struct{}{}
	return !t.shutdown
}

func (t *Transport) unregister(c *connection) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

type connCtxKey struct{}

// CloseConn closes the WebSocket connection that ctx belongs to with code and
// reason, cancelling all of its operations. It lets a resolver end the whole
// connection rather than one stream, e.g. when an event-stream subscriber
// fell too far behind to resume and the client must reconnect and re-query
// (1013 or a 4xxx code the client understands). ctx is any context derived
// from the connection, such as a resolver's. It reports false when ctx does
// not belong to a connection, the connection is already closing, or code may
// not be sent in a close frame (valid: 1000–1003, 1007–1014, 3000–4999).
func CloseConn(ctx context.Context, code int, reason string) bool {
	c, ok := ctx.Value(connCtxKey{}).(*connection)
	if !ok || c == nil || !sendableCloseCode(code) { // nil: a shared execution (Shared.Render)
		return false
	}
	return c.closeWith(code, reason)
}

// sendableCloseCode reports whether RFC 6455 allows code on the wire.
func sendableCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	default:
		return false
	}
}
