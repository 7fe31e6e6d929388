package wstransport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// Subprotocol names. The legacy name clashes with the npm package graphql-ws,
// which speaks graphql-transport-ws; the string "graphql-ws" on the wire always
// means the old Apollo subscriptions-transport-ws protocol.
const (
	// SubprotocolGraphQLTransportWS is the current protocol (npm graphql-ws,
	// Apollo Client's GraphQLWsLink, urql); preferred when a client offers
	// both.
	SubprotocolGraphQLTransportWS = "graphql-transport-ws"
	// SubprotocolGraphQLWS is the legacy subscriptions-transport-ws
	// protocol, still spoken by older Apollo clients and GraphiQL builds.
	SubprotocolGraphQLWS = "graphql-ws"
)

const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultBufferSize       = 4096
	defaultReadBufferSize   = 512
	defaultWriteTimeout     = 10 * time.Second
)

// GorillaConfig configures a Gorilla upgrader. The zero value is usable: it
// allows only same-origin and Origin-less clients and prefers
// graphql-transport-ws over the legacy graphql-ws.
type GorillaConfig struct {
	// AllowedOrigins lists the browser origins, besides the server's own,
	// that may open a connection: exact origins ("https://app.example.com")
	// or patterns with a wildcard first label or port
	// ("https://*.example.com", "http://localhost:*"). Any other Origin gets
	// HTTP 403 before the upgrade.
	AllowedOrigins []string
	// Subprotocols are the subprotocols to negotiate, most preferred first.
	// Empty means graphql-transport-ws, then graphql-ws. Subprotocols that
	// gqlgen passes to Accept are appended after these.
	Subprotocols []string
	// HandshakeTimeout bounds the HTTP upgrade; zero means 10s.
	HandshakeTimeout time.Duration
	// ReadBufferSize sizes gorilla's read buffer; zero means 512 bytes.
	// Clients send little (connection_init, subscribe, pongs), and a
	// message larger than the buffer is still read whole, in pieces, so a
	// small buffer only saves memory on every open connection. Negative
	// reuses the 4 KiB buffer net/http read the upgrade request with;
	// that keeps net/http's whole connection state alive, write buffer
	// included, so it only pays off when the HTTP handler stays running
	// for the connection's lifetime (gqlgen's stock transport does).
	ReadBufferSize int
	// WriteBufferSize sizes gorilla's write buffers; zero means 4 KiB.
	// Write buffers come from a shared pool so that idle connections do
	// not each pin one.
	WriteBufferSize int
	// WriteTimeout bounds each WriteJSON and ping so a peer that stopped
	// reading cannot block a writer forever; zero means 10s. A write that
	// times out drops the TCP connection: it may have left half a frame on
	// the wire, and gorilla refuses every later write, so nothing could
	// be sent on it anyway. Dropping it ends gqlgen's reader too, and with
	// it the connection's operations. Close frames get at most 1s.
	WriteTimeout time.Duration
}

// Gorilla implements gqlgen's transport.WebsocketImplementation on
// gorilla/websocket. gqlgen dropped its own gorilla upgrader in v0.17.92, and
// deskbridge keeps gorilla (v1.5.3) for its predictable single-writer model
// and control-frame handling.
type Gorilla struct {
	upgrader     websocket.Upgrader
	origins      originChecker
	subprotocols []string
	writeTimeout time.Duration
}

var _ transport.WebsocketImplementation = (*Gorilla)(nil)

// NewGorilla validates cfg and returns an upgrader. It fails on a malformed
// AllowedOrigins entry, because silently ignoring one would lock out (or let
// in) a whole frontend.
func NewGorilla(cfg GorillaConfig) (*Gorilla, error) {
	origins, err := newOriginChecker(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("configure websocket upgrader: %w", err)
	}
	g := &Gorilla{
		origins:      origins,
		subprotocols: slices.Clone(cfg.Subprotocols),
		writeTimeout: cfg.WriteTimeout,
	}
	if len(g.subprotocols) == 0 {
		g.subprotocols = []string{SubprotocolGraphQLTransportWS, SubprotocolGraphQLWS}
	}
	if g.writeTimeout <= 0 {
		g.writeTimeout = defaultWriteTimeout
	}
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      g.origins.allowed,
		// Compression costs CPU and memory per connection (flate state) for
		// small JSON frames, and gorilla only supports no-context-takeover,
		// which compresses those frames poorly anyway.
		EnableCompression: false,
	}
	if g.upgrader.HandshakeTimeout <= 0 {
		g.upgrader.HandshakeTimeout = defaultHandshakeTimeout
	}
	switch {
	case g.upgrader.ReadBufferSize < 0:
		g.upgrader.ReadBufferSize = 0 // gorilla: reuse the hijacked reader
	case g.upgrader.ReadBufferSize == 0:
		g.upgrader.ReadBufferSize = defaultReadBufferSize
	}
	if g.upgrader.WriteBufferSize <= 0 {
		g.upgrader.WriteBufferSize = defaultBufferSize
	}
	return g, nil
}

// Accept upgrades the request. On failure (bad handshake, disallowed origin)
// gorilla has already written the HTTP error response, e.g. 403 for a
// disallowed origin, so callers must not write another one.
func (g *Gorilla) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	u := g.upgrader
	u.Subprotocols = slices.Clone(g.subprotocols)
	for _, p := range opts.Subprotocols {
		if !slices.Contains(u.Subprotocols, p) {
			u.Subprotocols = append(u.Subprotocols, p)
		}
	}
	conn, err := u.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, fmt.Errorf("upgrade to websocket: %w", err)
	}
	return &gorillaConn{conn: conn, writeTimeout: g.writeTimeout, closeTimeout: min(closeFrameTimeout, g.writeTimeout)}, nil
}

// gorillaConn is the transport.WebsocketConn that Accept returns. Besides
// gqlgen's interface it exposes what Transport needs for pings, messages
// (bounded by Transport, see WriteText), dropping and a clean close. Gorilla
// allows one concurrent reader and one concurrent writer; Close, WriteClose
// (WriteControl) and WritePing are safe from any goroutine.
type gorillaConn struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	closeTimeout time.Duration
}

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
	_ engineConn                       = (*gorillaConn)(nil)
)

func (c *gorillaConn) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close websocket: %w", err)
	}
	return nil
}

// NextReader returns the next data message. A close frame with 1000 or no
// status is reported as transport.ErrWebsocketClosed (what gqlgen expects
// for a normal peer close); the *websocket.CloseError stays wrapped so that
// callers can still read the exact code.
func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	mt, r, err := c.conn.NextReader()
	if err != nil {
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) {
			return mt, nil, fmt.Errorf("%w: %w", transport.ErrWebsocketClosed, err)
		}
		return mt, nil, fmt.Errorf("read websocket message: %w", err)
	}
	return mt, r, nil
}

// WriteJSON exists for the stock gqlgen transport, which writes from several
// goroutines under its own mutex; the deadline keeps a stuck peer from
// holding that mutex forever, and dropping the connection on timeout makes
// gqlgen tear it down instead of writing into a dead socket.
func (c *gorillaConn) WriteJSON(v any) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return fmt.Errorf("set websocket write deadline: %w", err)
	}
	if err := c.conn.WriteJSON(v); err != nil {
		return c.writeError("write websocket json", err)
	}
	return nil
}

// WriteClose sends a close frame with a short deadline: the connection is
// ending, so a peer that cannot take it is dropped rather than waited for.
// The reason is cut to fit a control frame (123 bytes), because gorilla
// refuses longer ones outright.
func (c *gorillaConn) WriteClose(code int, reason string) error {
	msg := websocket.FormatCloseMessage(code, truncateReason(reason))
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.closeTimeout)); err != nil {
		return c.writeError("write websocket close frame", err)
	}
	return nil
}

// writeError wraps a failed write and drops the connection if it timed out:
// see GorillaConfig.WriteTimeout.
func (c *gorillaConn) writeError(action string, err error) error {
	if isTimeout(err) {
		c.drop()
		return fmt.Errorf("%s: peer not reading, connection dropped: %w", action, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// drop closes the TCP connection with a reset. A graceful close would leave
// the kernel holding the unsent send buffer (up to megabytes) for a peer
// that is not reading, possibly for minutes; the reset frees it at once and
// tells a live client immediately, which then reconnects (1006).
func (c *gorillaConn) drop() {
	if tc, ok := c.conn.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.conn.Close()
}

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error {
	if err := c.conn.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set websocket read deadline: %w", err)
	}
	return nil
}

// WriteText writes one pre-marshalled text message; Transport marshals
// before a message is queued, so the writer only does I/O. It sets no
// deadline (Transport's stall watch bounds the write and drops the
// connection): a deadline per message would cost a runtime timer update per
// message.
func (c *gorillaConn) WriteText(data []byte) error {
	if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return c.writeError("write websocket message", err)
	}
	return nil
}

// Drop resets the TCP connection; see drop.
func (c *gorillaConn) Drop() { c.drop() }

func (c *gorillaConn) WritePing() error {
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.writeTimeout)); err != nil {
		return c.writeError("write websocket ping", err)
	}
	return nil
}

// SetPongHandler must be called before the read loop starts; gorilla runs
// the handler on the reading goroutine.
func (c *gorillaConn) SetPongHandler(h func()) {
	c.conn.SetPongHandler(func(string) error {
		h()
		return nil
	})
}

// CloseLingering closes after the peer has had a chance to read our close
// frame. When the server stops reading early (read limit, deadline) the
// peer's unread bytes are still in our receive buffer, and closing such a
// socket makes the kernel send a RST that can destroy the close frame in
// flight. Half-closing and draining until the peer closes (or timeout) avoids
// that.
func (c *gorillaConn) CloseLingering(timeout time.Duration) error {
	nc := c.conn.NetConn()
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	if err := nc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
		_, _ = io.Copy(io.Discard, nc)
	}
	return c.Close()
}

// closeCodeFromError tells which close code describes a terminal read error,
// and whether the peer already sent a close frame (so there is nothing left
// to drain).
func closeCodeFromError(err error) (code int, peerClosed bool) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		if ce.Code == websocket.CloseNoStatusReceived {
			return websocket.CloseNormalClosure, true
		}
		return ce.Code, true
	case errors.Is(err, websocket.ErrReadLimit):
		return websocket.CloseMessageTooBig, false
	case isTimeout(err):
		return websocket.CloseGoingAway, false
	default:
		return websocket.CloseAbnormalClosure, false
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// maxCloseReason is the control-frame payload limit (125) minus the 2-byte
// code.
const maxCloseReason = 123

// truncateReason cuts a close reason to fit a control frame without splitting
// a UTF-8 sequence (gorilla clients reject invalid UTF-8 in close frames).
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	cut := maxCloseReason
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
