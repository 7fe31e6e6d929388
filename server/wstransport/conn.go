package wstransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/eventbus"
)

// engineConn is what the protocol engine needs from a socket: gqlgen's
// transport.WebsocketConn plus bounded raw writes, WebSocket-level pings and
// a lingering close. gorillaConn implements it.
type engineConn interface {
	transport.WebsocketConn
	transport.WebsocketReadLimiter
	transport.WebsocketReadDeadliner
	// WriteText writes one text message. It sets no deadline: the
	// connection's stall watch bounds it (see watchedWrite), which costs
	// nothing per write, where a socket deadline costs a timer update.
	WriteText(data []byte) error
	// Drop closes the TCP connection with a reset, ending a write that is
	// stuck.
	Drop()
	// WritePing sends a ping control frame.
	WritePing() error
	// SetPongHandler registers a callback run on the reading goroutine for
	// each pong.
	SetPongHandler(h func())
	// CloseLingering half-closes, drains until the peer closes or timeout,
	// then closes.
	CloseLingering(timeout time.Duration) error
}

// connection is one upgraded socket. Goroutines: the HTTP handler goroutine
// runs serve and is the only reader; each operation has one goroutine pulling
// gqlgen's ResponseHandler. There is no writer goroutine: an idle connection
// would park one (and its stack) for nothing, and handing every message to it
// costs a wake-up. Instead whoever queues a message while nobody writes takes
// the writer role and drains the queue: an operation's goroutine inline, the
// reader (which must keep reading) and the ping timer through a short-lived
// goroutine. The role is exclusive, so messages go out in queue order, one
// write at a time. Everything is torn down through closeWith, which cancels
// ctx and starts finish, the close sequence, once the writer role is free.
type connection struct {
	t       *Transport
	cfg     *Config // the transport's
	ws      engineConn
	exec    graphql.GraphExecutor
	proto   protocol
	headers http.Header
	remote  string

	// ctx is the parent of every operation; cancelled by closeWith.
	ctx    context.Context
	cancel context.CancelFunc
	// opParent is ctx as returned by InitFunc. Written only by the reader
	// before acked is set, read only by the reader.
	opParent context.Context
	// acked is reader-local: connection_ack has been queued.
	acked bool

	// initReceived is read by the init timeout timer.
	initReceived atomic.Bool

	// qmu guards the send queue, its backlog counts and the writer role.
	qmu sync.Mutex
	// queue holds pre-marshalled messages not yet written. It grows on
	// demand, so an idle connection holds no slots; it is bounded by
	// SendQueue results plus room for one final message per operation and
	// a few replies, so that messages which must not wait (see enqueue)
	// still fit while results fill it.
	queue msgQueue
	// queuedMsgs and queuedBytes are the backlog: the queue plus the
	// message being written.
	queuedMsgs  int
	queuedBytes int
	// writing is set while a goroutine holds the writer role (see
	// connection). While the queue is not empty someone holds it, unless
	// the connection is closing, when finish takes over the queue.
	writing bool
	// writerFree is signalled when the writer role is released; finish
	// waits on it.
	writerFree sync.Cond
	// pingDue and kaDue ask the writer for a ping control frame and a
	// legacy "ka" message. They jump the queue, so that a backlog does not
	// delay them past the peer's patience (a legacy client reconnects after
	// 30s without a ka).
	pingDue, kaDue bool
	// broken is set when a write failed: the stream may hold half a frame,
	// so finish writes nothing more.
	broken bool
	// drained is closed when the writer finishes a message, if an
	// operation is waiting for room; nil when nobody waits.
	drained chan struct{}
	// pingTimer and kaTimer fire the periodic pings and legacy keep-alives
	// without a goroutine per connection. kaTimer is set by the reader
	// after a legacy ack and read by finish, so it is guarded by qmu.
	pingTimer *time.Timer
	kaTimer   *time.Timer
	// The stall watch (see watchedWrite): writeStart is when the write in
	// progress began (nanoseconds since born, plus one; 0 when none), and
	// stall, armed while stallArmed is set, checks it.
	born       time.Time
	writeStart atomic.Int64
	stallArmed atomic.Bool
	stall      *time.Timer

	// started is set once serve has set the socket up; from then on
	// closeWith starts finish itself (before, serve does).
	started    atomic.Bool
	finishOnce sync.Once

	closeOnce   sync.Once
	closing     chan struct{}
	closed      atomic.Bool // set just before closing is closed; see isClosing
	closeCode   int         // set once, before closing is closed
	closeReason string      // ditto

	readerDone chan struct{}
	// writerDone is closed when finish has written (or given up writing)
	// everything the connection will ever write.
	writerDone chan struct{}

	mu  sync.Mutex
	ops map[string]*operation // active operations by client id

	opsWG sync.WaitGroup
}

// operation is one active subscribe/start. Identity (not id) decides whether
// a goroutine may still write for it: after a client complete the same id
// may be reused by a new operation.
type operation struct {
	id     string
	cancel context.CancelFunc
	// envelope is the start of this operation's result messages, through
	// `"payload":`, built once: every result appends to it.
	envelope []byte
	// stopped is set, under the connection's mu and qmu, when the operation
	// is unregistered; Shared.Offer checks it under qmu alone.
	stopped bool

	// The running execution, set before pump first runs: its context and
	// operation context, and where its results come from.
	ctx       context.Context
	rc        *graphql.OperationContext
	responses graphql.ResponseHandler

	// pmu guards holding (see Shared.Hold): while hold is set, pump stops
	// before pulling the next result and the operation's goroutine ends
	// (parked); Release or the end of ctx starts a new one.
	pmu            sync.Mutex
	hold, parked   bool
	watchingCtxEnd bool
}

func newConnection(t *Transport, ws engineConn, r *http.Request, exec graphql.GraphExecutor) *connection {
	c := &connection{
		t:          t,
		cfg:        &t.cfg,
		ws:         ws,
		exec:       exec,
		proto:      protocolFor(ws.Subprotocol()),
		headers:    r.Header,
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		ops:        make(map[string]*operation),
	}
	c.writerFree.L = &c.qmu
	c.born = time.Now()
	c.stall = time.AfterFunc(time.Hour, c.checkStall)
	c.stall.Stop()
	c.remote = r.RemoteAddr
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c.ctx = context.WithValue(ctx, connCtxKey{}, c)
	c.cancel = cancel
	c.opParent = c.ctx
	return c
}

// logAt logs msg with the connection's remote address and subprotocol. A
// connection keeps no logger of its own (slog's With costs every open
// connection a few hundred bytes); the attributes are built only when the
// level is enabled.
func (c *connection) logAt(level slog.Level, msg string, attrs ...slog.Attr) {
	ctx := context.Background()
	if !c.cfg.Logger.Enabled(ctx, level) {
		return
	}
	all := make([]slog.Attr, 0, 2+len(attrs))
	all = append(all, slog.String("remote", c.remote), slog.String("subprotocol", c.ws.Subprotocol()))
	c.cfg.Logger.LogAttrs(ctx, level, msg, append(all, attrs...)...)
}

// serve runs the connection to completion on the caller's goroutine, which
// becomes its reader.
func (c *connection) serve() {
	defer c.cancel()
	if c.cfg.Hooks.OnConnect != nil {
		c.cfg.Hooks.OnConnect(c.ws.Subprotocol())
	}
	if !c.t.register(c) {
		c.closeWith(closeGoingAway, "server shutting down")
	}
	defer c.t.unregister(c)

	if c.proto == protocolNone {
		c.closeWith(CloseSubprotocolNotAcceptable, "Subprotocol not acceptable")
	}

	c.ws.SetReadLimit(c.cfg.ReadLimit)
	if c.cfg.PingInterval > 0 {
		// Every pong and every message proves the peer alive.
		c.extendReadDeadline()
		c.ws.SetPongHandler(c.extendReadDeadline)
	}
	initTimer := time.AfterFunc(c.cfg.InitTimeout, func() {
		if !c.initReceived.Load() {
			c.closeWith(CloseConnectionInitTimeout, "Connection initialisation timeout")
		}
	})

	if c.cfg.PingInterval > 0 {
		// Armed only once assigned: pingTick re-arms it through the field.
		c.pingTimer = time.AfterFunc(time.Hour, c.pingTick)
		c.pingTimer.Reset(c.cfg.PingInterval)
	}
	// From here closeWith starts the close sequence itself; if it ran
	// before (shutdown, no subprotocol), start it now.
	c.started.Store(true)
	if c.isClosing() {
		c.startFinish()
	}
	readErr := c.readLoop()
	close(c.readerDone)
	initTimer.Stop()

	code, peerClosed := closeCodeFromError(readErr)
	reason := ""
	if code == closeGoingAway {
		reason = "keep-alive timeout"
	}
	if c.closeWith(code, reason) {
		c.logAt(slog.LevelDebug, "websocket read ended", slog.Int("code", code), slog.Any("error", readErr))
	}

	c.opsWG.Wait()
	<-c.writerDone
	if peerClosed || errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) {
		_ = c.ws.Close()
	} else {
		_ = c.ws.CloseLingering(closeHandshakeGrace)
	}
	c.logAt(slog.LevelDebug, "websocket closed", slog.Int("code", c.closeCode), slog.String("reason", c.closeReason))
	if c.cfg.Hooks.OnClose != nil {
		c.cfg.Hooks.OnClose(c.closeCode)
	}
}

func (c *connection) extendReadDeadline() {
	_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.cfg.PingInterval))
}

// readLoop reads until the socket fails or the peer closes. After the server
// decided to close it keeps reading and discarding, so the peer's close frame
// (the end of the close handshake) is consumed and the TCP connection can be
// closed without a reset.
func (c *connection) readLoop() error {
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		start := graphql.Now()
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read websocket message body: %w", err)
		}
		if c.isClosing() {
			continue
		}
		c.handle(data, start)
		// Extended after handling so that time spent in InitFunc does not
		// count against the peer.
		if c.cfg.PingInterval > 0 {
			c.extendReadDeadline()
		}
	}
}

// handle dispatches one message. A panic (from InitFunc, say) is a server
// bug: it closes this connection with 4500, as the graphql-ws reference
// server does, instead of leaving a half-torn-down connection behind.
func (c *connection) handle(data []byte, start time.Time) {
	defer func() {
		if r := recover(); r != nil {
			c.logAt(slog.LevelError, "websocket message handler panicked", slog.Any("panic", r))
			c.closeWith(CloseInternalServerError, "Internal server error")
		}
	}()
	switch c.proto {
	case protocolTransportWS:
		c.handleTransportWS(data, start)
	case protocolLegacy:
		c.handleLegacy(data, start)
	}
}

// isClosing reports whether closing is closed. It reads a flag set just
// before: it runs several times per message, and a receive from a channel
// locks it.
func (c *connection) isClosing() bool { return c.closed.Load() }

// closeWith starts closing the connection with code and reason unless it is
// already closing, and reports whether this call started it. It never blocks
// and takes no locks other than its own, so it is safe from resolvers, hooks,
// timers and while holding c.mu or qmu.
func (c *connection) closeWith(code int, reason string) bool {
	started := false
	c.closeOnce.Do(func() {
		started = true
		c.closeCode = code
		c.closeReason = truncateReason(reason)
		c.closed.Store(true)
		close(c.closing)
		c.cancel()
	})
	if started && c.started.Load() {
		c.startFinish()
	}
	return started
}

// abort drops the socket without a close handshake; used when Shutdown's
// context runs out.
func (c *connection) abort() {
	c.closeWith(closeGoingAway, "server shutting down")
	_ = c.ws.Close()
}

// controlSlack is the queue room, beyond SendQueue and one final message per
// operation, for replies to the client's own messages (ack, pong, errors).
const controlSlack = 16

// keepAliveMessage is the legacy protocol's "ka".
var keepAliveMessage = mustEncode(msgKeepAlive, "", nil)

// enqueue queues a message that must not wait: replies sent by the reader,
// which has to keep reading, and final messages sent under c.mu. They are
// small and bounded by what the client itself sends, so a full queue means a
// client that keeps talking without reading; it is cut off. It reports
// whether b was queued, and whether the caller took the writer role and must
// call drain (outside any lock).
func (c *connection) enqueue(b []byte) (queued, write bool) {
	if c.isClosing() {
		return false, false
	}
	c.qmu.Lock()
	if c.queue.len() < c.cfg.SendQueue+c.cfg.MaxSubscriptions+controlSlack {
		queued, write = true, c.pushLocked(b)
	}
	c.qmu.Unlock()
	if !queued {
		c.cutOff("send queue full")
	}
	return queued, write
}

// reply queues a message from the reader and, if nobody is writing, drains
// the queue on a new goroutine: the reader must never block on a write.
func (c *connection) reply(b []byte) {
	if _, write := c.enqueue(b); write {
		go c.drain()
	}
}

// reserve queues a result if the backlog is below its bounds, reporting
// whether the caller took the writer role. Otherwise it returns a channel
// that is closed when the writer has finished a message. The last result
// admitted may overshoot SendQueueBytes: requiring it to fit would starve a
// large result behind a busy subscription on the same connection, and one
// message past the bound is still a bound.
func (c *connection) reserve(b []byte) (ok, write bool, drained <-chan struct{}) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.roomLocked() {
		return true, c.pushLocked(b), nil
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	return false, false, c.drained
}

// roomLocked reports whether the backlog admits another result: the bound
// that reserve waits on and Shared.Offer gives up at.
func (c *connection) roomLocked() bool {
	return c.queuedMsgs < c.cfg.SendQueue && c.queuedBytes < c.cfg.SendQueueBytes
}

// pushLocked appends b to the queue and reports whether the caller took the
// writer role.
func (c *connection) pushLocked(b []byte) bool {
	c.queue.push(b)
	c.queuedMsgs++
	c.queuedBytes += len(b)
	return c.claimLocked()
}

// claimLocked takes the writer role if it is free and the connection is not
// closing (then finish owns the queue).
func (c *connection) claimLocked() bool {
	if c.writing || c.isClosing() {
		return false
	}
	c.writing = true
	return true
}

func (c *connection) releaseLocked() {
	c.writing = false
	c.writerFree.Broadcast()
}

// written releases the backlog taken by a message the writer is done with.
func (c *connection) written(b []byte) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.queuedMsgs--
	c.queuedBytes -= len(b)
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

// cutOff closes the connection of a client that does not read fast enough
// with 1013, which graphql-ws retries, and a reason that says how to resume
// without a gap. Callers must not hold qmu.
func (c *connection) cutOff(cause string) {
	if !c.closeWith(closeTryAgainLater, SlowConsumerReason) {
		return
	}
	c.qmu.Lock()
	backlogMsgs, backlogBytes := c.queuedMsgs, c.queuedBytes
	c.qmu.Unlock()
	c.logAt(slog.LevelWarn, "websocket client too slow, cut off with 1013",
		slog.String("cause", cause),
		slog.Duration("write_timeout", c.cfg.WriteTimeout),
		slog.Int("backlog_messages", backlogMsgs),
		slog.Int("backlog_bytes", backlogBytes))
}

// drain writes due pings and keep-alives and queued messages until there are
// none left or the connection is closing, then releases the writer role,
// which the caller must hold. Closing wins over pending messages: a slow
// consumer's queue must not be written before its close frame, and finish
// decides what else goes out.
func (c *connection) drain() {
	for {
		c.qmu.Lock()
		if c.isClosing() {
			c.releaseLocked()
			c.qmu.Unlock()
			return
		}
		var b []byte // nil: a ping
		backlog := false
		switch {
		case c.pingDue:
			c.pingDue = false
		case c.kaDue:
			c.kaDue = false
			b = keepAliveMessage
		default:
			var ok bool
			if b, ok = c.queue.pop(); !ok {
				c.releaseLocked()
				c.qmu.Unlock()
				return
			}
			backlog = true
		}
		c.qmu.Unlock()
		err := c.watchedWrite(b)
		if backlog {
			c.written(b)
		}
		if err != nil {
			c.qmu.Lock()
			c.broken = true
			c.releaseLocked()
			c.qmu.Unlock()
			c.writeFailed(err)
			return
		}
	}
}

// watchedWrite writes b, or a ping when b is nil, under the stall watch. A
// write blocks only when the client stopped reading and the TCP buffers are
// full. Once one has blocked for WriteTimeout the client is cut off
// (checkStall), while the write itself may go on for cutOffGrace, so that a
// client that starts reading again in that time still gets the close frame
// with the reason; then the connection is dropped.
//
// The watch costs a clock read per write: the timer is armed when a write
// finds it idle and, when it fires, looks at the write in progress, if any,
// and re-arms for what is left of its WriteTimeout. A connection that writes
// continuously thus touches its timer once per WriteTimeout, not twice per
// write, and its data writes carry no socket deadline (which would update a
// runtime timer per write too).
func (c *connection) watchedWrite(b []byte) error {
	c.writeStart.Store(int64(time.Since(c.born)) + 1)
	if !c.stallArmed.Load() && c.stallArmed.CompareAndSwap(false, true) {
		c.stall.Reset(c.cfg.WriteTimeout)
	}
	var err error
	if b == nil {
		err = c.ws.WritePing()
	} else {
		err = c.ws.WriteText(b)
	}
	c.writeStart.Store(0)
	return err
}

// checkStall runs when the stall timer fires. Disarming before reading
// writeStart, as watchedWrite stores writeStart before reading stallArmed,
// means a write that starts meanwhile is seen by one of the two.
func (c *connection) checkStall() {
	c.stallArmed.Store(false)
	start := c.writeStart.Load()
	if start == 0 {
		return // idle: the next write arms the timer again
	}
	if blocked := time.Duration(int64(time.Since(c.born)) + 1 - start); blocked < c.cfg.WriteTimeout {
		if c.stallArmed.CompareAndSwap(false, true) {
			c.stall.Reset(c.cfg.WriteTimeout - blocked)
		}
		return
	}
	c.cutOff("write blocked for write_timeout")
	time.AfterFunc(cutOffGrace, func() {
		if c.writeStart.Load() == start {
			// Still the same write: drop the connection, which ends it
			// (a write cut short may have left half a frame, so nothing
			// could follow it anyway).
			c.ws.Drop()
		}
	})
}

// pingTick runs on the ping timer's goroutine: it asks for a ping and drains
// the queue if nobody is writing, then re-arms itself.
func (c *connection) pingTick() {
	c.qmu.Lock()
	if c.isClosing() {
		c.qmu.Unlock()
		return
	}
	c.pingDue = true
	write := c.claimLocked()
	c.qmu.Unlock()
	c.pingTimer.Reset(c.cfg.PingInterval)
	if write {
		c.drain()
	}
}

// startKeepAlive starts the legacy "ka" timer after connection_ack.
func (c *connection) startKeepAlive() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.kaTimer == nil && !c.isClosing() {
		c.kaTimer = time.AfterFunc(c.cfg.LegacyKeepAlive, c.kaTick)
	}
}

func (c *connection) kaTick() {
	c.qmu.Lock()
	if c.isClosing() {
		c.qmu.Unlock()
		return
	}
	c.kaDue = true
	write := c.claimLocked()
	c.kaTimer.Reset(c.cfg.LegacyKeepAlive)
	c.qmu.Unlock()
	if write {
		c.drain()
	}
}

func (c *connection) startFinish() {
	c.finishOnce.Do(func() { go c.finish() })
}

// finish is the close sequence, on its own goroutine once the connection is
// closing: it stops the timers, waits for the writer role (a write in
// progress ends within WriteTimeout plus cutOffGrace, when the stall watch
// drops the connection), keeps it for good and writes the end of the
// connection.
func (c *connection) finish() {
	defer close(c.writerDone)
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.qmu.Lock()
	if c.kaTimer != nil {
		c.kaTimer.Stop()
	}
	for c.writing {
		c.writerFree.Wait()
	}
	c.writing = true
	broken := c.broken
	c.qmu.Unlock()
	if !broken {
		c.finishWrites()
	}
	c.stall.Stop()
}

// finishWrites flushes what was queued before the close decision (e.g. the
// legacy connection_error that explains a 4403), sends the close frame and
// gives the peer closeHandshakeGrace to answer it.
func (c *connection) finishWrites() {
	// Skip the flush for a slow consumer (its backlog is the problem) and
	// when the reader has already ended: the peer closed or stopped
	// answering, so it would never read those messages and each write
	// could block for WriteTimeout.
	readerDone := false
	select {
	case <-c.readerDone:
		readerDone = true
	default:
	}
	if c.closeCode != closeTryAgainLater && !readerDone {
		for {
			c.qmu.Lock()
			b, ok := c.queue.pop()
			c.qmu.Unlock()
			if !ok {
				break
			}
			err := c.watchedWrite(b)
			c.written(b)
			if err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
	if sendableCloseCode(c.closeCode) {
		if err := c.ws.WriteClose(c.closeCode, c.closeReason); err != nil {
			// Usually ErrCloseSent: the peer closed first and gorilla
			// already answered, or gorilla sent 1009 itself. A timeout
			// means the peer is not reading; gorillaConn has dropped the
			// connection, and waiting for an answer would be pointless.
			c.logAt(slog.LevelDebug, "websocket close frame not sent", slog.Any("error", err))
			if isTimeout(err) {
				return
			}
		}
	}
	timer := time.NewTimer(closeHandshakeGrace)
	defer timer.Stop()
	select {
	case <-c.readerDone:
	case <-timer.C:
		// The peer did not answer; closing the socket unblocks the reader.
		_ = c.ws.Close()
	}
}

// writeFailed handles a failed or timed-out write: the stream may hold half
// a frame, so the connection is unusable and is dropped without a close
// frame. A timeout is a slow consumer; usually stall has already cut it off,
// so this adds no second log line.
func (c *connection) writeFailed(err error) {
	if isTimeout(err) {
		c.cutOff("write timed out")
	} else if c.closeWith(closeAbnormal, "write failed") {
		c.logAt(slog.LevelDebug, "websocket write failed", slog.Any("error", err))
	}
	_ = c.ws.Close()
}

// runInit runs InitFunc for a connection_init payload and reports whether
// the connection is accepted.
func (c *connection) runInit(payload json.RawMessage) bool {
	if c.cfg.InitFunc == nil {
		return true
	}
	var initPayload transport.InitPayload
	if payload != nil {
		// Validated as a JSON object by the caller, so this cannot fail.
		_ = json.Unmarshal(payload, &initPayload)
	}
	ctx, err := c.cfg.InitFunc(c.ctx, initPayload)
	if err != nil {
		// The error may quote the token; it goes to the log, not the wire.
		c.logAt(slog.LevelInfo, "websocket connection_init rejected", slog.Any("error", err))
		return false
	}
	if ctx != nil {
		c.opParent = ctx
	}
	return true
}

// handleTransportWS implements the graphql-transport-ws server side.
func (c *connection) handleTransportWS(data []byte, readStart time.Time) {
	m, err := parseClientMessage(data)
	if err != nil {
		c.closeWith(CloseBadRequest, err.Error())
		return
	}
	switch m.Type {
	case msgConnectionInit:
		if err := m.requireObjectPayload(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		if c.initReceived.Swap(true) {
			c.closeWith(CloseTooManyInitRequests, "Too many initialisation requests")
			return
		}
		if !c.runInit(m.Payload) {
			c.closeWith(CloseForbidden, "Forbidden")
			return
		}
		c.acked = true
		c.reply(mustEncode(msgConnectionAck, "", nil))
	case msgPing:
		if err := m.requireObjectPayload(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		c.reply(mustEncode(msgPong, "", m.Payload))
	case msgPong:
		if err := m.requireObjectPayload(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
		}
	case msgSubscribe:
		if err := m.requireID(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		// Message validation comes before the ack check, as in the
		// graphql-ws reference server.
		params, err := parseOperationPayload(m)
		if err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		if !c.acked {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		c.startOperation(m.ID, params, readStart)
	case msgComplete:
		if err := m.requireID(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		c.stopOperation(m.ID)
	case msgConnectionAck, msgNext, msgError:
		c.closeWith(CloseBadRequest, fmt.Sprintf("Unexpected message of type %s received", m.Type))
	default:
		c.closeWith(CloseBadRequest, fmt.Sprintf("Invalid message type %q", m.Type))
	}
}

// handleLegacy implements the subscriptions-transport-ws server side. That
// client only surfaces connection_error (it ignores close codes), so every
// close for a client mistake is preceded by one.
func (c *connection) handleLegacy(data []byte, readStart time.Time) {
	m, err := parseClientMessage(data)
	if err != nil {
		c.legacyFail(CloseBadRequest, err.Error())
		return
	}
	switch m.Type {
	case msgConnectionInit:
		if err := m.requireObjectPayload(); err != nil {
			c.legacyFail(CloseBadRequest, err.Error())
			return
		}
		if c.initReceived.Swap(true) {
			c.legacyFail(CloseTooManyInitRequests, "Too many initialisation requests")
			return
		}
		if !c.runInit(m.Payload) {
			c.legacyFail(CloseForbidden, "Forbidden")
			return
		}
		c.acked = true
		c.reply(mustEncode(msgConnectionAck, "", nil))
		// The client's 30s keep-alive timer starts with the first ka.
		if c.cfg.LegacyKeepAlive > 0 {
			c.reply(keepAliveMessage)
			c.startKeepAlive()
		}
	case msgStart:
		if err := m.requireID(); err != nil {
			c.legacyFail(CloseBadRequest, err.Error())
			return
		}
		// The legacy client sends start right after connection_init
		// without waiting for the ack; that is fine because messages are
		// handled in order and init finished before this one was read.
		params, err := parseOperationPayload(m)
		if err != nil {
			c.legacyFail(CloseBadRequest, err.Error())
			return
		}
		if !c.acked {
			c.legacyFail(CloseUnauthorized, "Unauthorized")
			return
		}
		c.startOperation(m.ID, params, readStart)
	case msgStop:
		if err := m.requireID(); err != nil {
			c.legacyFail(CloseBadRequest, err.Error())
			return
		}
		// Unlike graphql-transport-ws, the legacy protocol answers a stop
		// with complete (PROTOCOL.md: "When client unsubscribe, the
		// server ... sends GQL_COMPLETE"), and old clients wait for it.
		if c.stopOperation(m.ID) {
			c.reply(mustEncode(msgComplete, m.ID, nil))
		}
	case msgConnectionTerminate:
		c.closeWith(closeNormal, "")
	default:
		c.legacyFail(CloseBadRequest, fmt.Sprintf("Invalid message type %q", m.Type))
	}
}

func (c *connection) legacyFail(code int, reason string) {
	c.reply(mustEncode(msgConnectionError, "", errorPayload(reason)))
	c.closeWith(code, reason)
}

func (c *connection) dataType() string {
	if c.proto == protocolLegacy {
		return msgData
	}
	return msgNext
}

// startOperation registers id and runs it on its own goroutine. Checks that
// depend on the set of active ids happen here, on the reader, so they cannot
// race with later messages from the same client.
func (c *connection) startOperation(id string, params *graphql.RawParams, readStart time.Time) {
	c.mu.Lock()
	if _, exists := c.ops[id]; exists {
		c.mu.Unlock()
		reason := "Subscriber for " + id + " already exists"
		if c.proto == protocolLegacy {
			c.legacyFail(CloseSubscriberAlreadyExists, reason)
		} else {
			c.closeWith(CloseSubscriberAlreadyExists, reason)
		}
		return
	}
	if len(c.ops) >= c.cfg.MaxSubscriptions {
		c.mu.Unlock()
		msg := fmt.Sprintf("too many active operations on this connection (limit %d)", c.cfg.MaxSubscriptions)
		errs := gqlerror.List{{
			Message:    msg,
			Extensions: map[string]any{"code": "TOO_MANY_SUBSCRIPTIONS"},
		}}
		c.reply(mustEncode(msgError, id, encodeErrors(errs)))
		return
	}
	ctx, cancel := context.WithCancel(c.opParent)
	op := &operation{id: id, cancel: cancel, envelope: envelope(c.dataType(), id)}
	c.ops[id] = op
	c.opsWG.Add(1)
	c.mu.Unlock()
	ctx = eventbus.WithSharer(ctx, &Shared{c: c, op: op, params: params})

	params.Headers = c.headers
	params.ReadTime = graphql.TraceTiming{Start: readStart, End: graphql.Now()}
	if c.cfg.Hooks.OnSubscribe != nil {
		c.cfg.Hooks.OnSubscribe()
	}
	go c.runOperation(ctx, op, params)
}

// stopOperation handles a client complete/stop and reports whether the id
// was active. Removing the entry first is what guarantees no further
// next/complete for this id from runOperation: it only sends while its entry
// is still the registered one.
func (c *connection) stopOperation(id string) bool {
	c.mu.Lock()
	op, ok := c.ops[id]
	if ok {
		delete(c.ops, id)
		c.markStopped(op)
	}
	c.mu.Unlock()
	if ok {
		op.cancel()
	}
	return ok
}

// markStopped records that op was unregistered, so that nothing is offered
// for it any more. Called with c.mu held.
func (c *connection) markStopped(op *operation) {
	c.qmu.Lock()
	op.stopped = true
	c.qmu.Unlock()
}

// sendForOp queues b if op is still registered, waiting while the backlog is
// full; this is the backpressure that keeps a connection's memory bounded
// without cutting off a client that reads, only slower than results come.
// The wait ends when the client completes op, the connection closes (which
// WriteTimeout guarantees for a client that stopped reading) or the writer
// makes room. The registration check and the queueing share the lock with
// stopOperation, so nothing is queued for an operation after its client
// complete was processed.
func (c *connection) sendForOp(ctx context.Context, op *operation, b []byte) bool {
	for {
		c.mu.Lock()
		if c.ops[op.id] != op || c.isClosing() {
			c.mu.Unlock()
			return false
		}
		ok, write, drained := c.reserve(b)
		c.mu.Unlock()
		if ok {
			if write {
				c.drain()
			}
			return true
		}
		select {
		case <-drained:
		case <-ctx.Done():
			return false
		case <-c.closing:
			return false
		}
	}
}

// finishOp unregisters op and, if it was still registered, enqueues its last
// message (complete or error). Unregistering before the client can see that
// message lets the client reuse the id immediately without a 4409. It runs
// on the operation's goroutine, which writes the message itself if nobody
// else is writing.
func (c *connection) finishOp(op *operation, last []byte) {
	c.mu.Lock()
	if c.ops[op.id] != op {
		c.mu.Unlock()
		return
	}
	delete(c.ops, op.id)
	c.markStopped(op)
	write := false
	if last != nil {
		_, write = c.enqueue(last)
	}
	c.mu.Unlock()
	if write {
		c.drain()
	}
}

// runOperation executes one operation through gqlgen's executor the way
// gqlgen's own transports do: StartOperationTrace, CreateOperationContext,
// DispatchOperation, then pull responses until nil (pump).
func (c *connection) runOperation(ctx context.Context, op *operation, params *graphql.RawParams) {
	ended := true // false once pump parked the operation: its resumption ends it
	defer func() {
		if ended {
			c.endOperation(op)
		}
	}()
	defer c.recoverOperation(op)

	op.ctx = graphql.StartOperationTrace(ctx)
	rc, errs := c.exec.CreateOperationContext(op.ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(op.ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			// Parse/validation failure: the operation never started, so
			// graphql-transport-ws wants "error" and no "complete".
			c.finishOp(op, mustEncode(msgError, op.id, encodeErrors(resp.Errors)))
			return
		}
		// Anything else (e.g. complexity limit) is a GraphQL response with
		// errors, delivered like a result.
		if b, ok := c.encodeResponse(op, resp); ok && c.sendForOp(op.ctx, op, b) {
			c.finishOp(op, mustEncode(msgComplete, op.id, nil))
		}
		return
	}
	op.rc = rc
	op.responses, op.ctx = c.exec.DispatchOperation(graphql.WithOperationContext(op.ctx, rc), rc)
	ended = c.pump(op)
}

// pump pulls the operation's results and sends them until the execution
// ends, and then completes the operation. It returns false, leaving the
// operation running, when the operation is held (Shared.Hold): its goroutine
// ends, and resume continues on a new one.
func (c *connection) pump(op *operation) (ended bool) {
	for {
		if op.park() {
			return false
		}
		resp := op.responses(op.ctx)
		if resp == nil {
			break
		}
		b, ok := c.encodeResponse(op, resp)
		if !ok {
			return true
		}
		if !c.sendForOp(op.ctx, op, b) {
			// Client completed it, or the connection is closing; the
			// cancelled ctx stops the resolver.
			return true
		}
		if op.isSubscription() {
			c.countSubscriptionResult()
		}
	}
	c.finishOp(op, mustEncode(msgComplete, op.id, nil))
	return true
}

func (op *operation) isSubscription() bool {
	return op.rc != nil && op.rc.Operation != nil && op.rc.Operation.Operation == ast.Subscription
}

func (c *connection) countSubscriptionResult() {
	if c.cfg.Hooks.OnSubscriptionResult != nil {
		c.cfg.Hooks.OnSubscriptionResult()
	}
}

// resume continues a parked operation on a new goroutine.
func (c *connection) resume(op *operation) {
	ended := true
	defer func() {
		if ended {
			c.endOperation(op)
		}
	}()
	defer c.recoverOperation(op)
	ended = c.pump(op)
}

// park reports whether the operation is held; if so it is marked parked, so
// that whoever releases it resumes it.
func (op *operation) park() bool {
	op.pmu.Lock()
	defer op.pmu.Unlock()
	if !op.hold || op.ctx.Err() != nil {
		return false
	}
	op.parked = true
	return true
}

// unhold clears hold and reports whether the operation was parked, in which
// case the caller must resume it.
func (op *operation) unhold() bool {
	op.pmu.Lock()
	defer op.pmu.Unlock()
	parked := op.parked
	op.hold, op.parked = false, false
	return parked
}

// recoverOperation is deferred by the goroutines that run an operation. A
// panicking resolver or extension runs on them, where nothing else would
// catch it and the whole process would die. gqlgen's RecoverFunc logs it and
// builds the client-facing error; only this operation ends.
func (c *connection) recoverOperation(op *operation) {
	r := recover()
	if r == nil {
		return
	}
	var err error
	if op.rc != nil && op.rc.RecoverFunc != nil {
		err = op.rc.Recover(op.ctx, r)
	} else {
		c.logAt(slog.LevelError, "graphql operation panicked", slog.String("id", op.id), slog.Any("panic", r))
	}
	c.finishOp(op, mustEncode(msgError, op.id, encodeErrors(gqlerror.List{asGQLError(err)})))
}

// endOperation releases what an operation holds once it has ended.
func (c *connection) endOperation(op *operation) {
	// Safety net for early returns: never leave a dead entry that would
	// make the id unusable (4409) or count against MaxSubscriptions.
	c.finishOp(op, nil)
	op.cancel()
	if c.cfg.Hooks.OnUnsubscribe != nil {
		c.cfg.Hooks.OnUnsubscribe()
	}
	c.opsWG.Done()
}

// encodeResponse marshals one result. A result that cannot be marshalled
// (a resolver produced invalid raw JSON) ends the operation with an error
// instead of killing the connection.
func (c *connection) encodeResponse(op *operation, resp *graphql.Response) ([]byte, bool) {
	b, err := appendResult(op.envelope, resp)
	if err == nil {
		return b, true
	}
	c.logAt(slog.LevelError, "marshal graphql response", slog.String("id", op.id), slog.Any("error", err))
	errs := gqlerror.List{{Message: "internal system error"}}
	c.finishOp(op, mustEncode(msgError, op.id, encodeErrors(errs)))
	return nil, false
}

func asGQLError(err error) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) {
		return gqlErr
	}
	if err == nil {
		return &gqlerror.Error{Message: "internal system error"}
	}
	return &gqlerror.Error{Message: err.Error()}
}
