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
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// engineConn is what the protocol engine needs from a socket: gqlgen's
// transport.WebsocketConn plus bounded raw writes, WebSocket-level pings and
// a lingering close. gorillaConn implements it.
type engineConn interface {
	transport.WebsocketConn
	transport.WebsocketReadLimiter
	transport.WebsocketReadDeadliner
	// WriteText writes one text message with the configured write timeout.
	WriteText(data []byte) error
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
// runs serve and is the only reader; writeLoop is the only writer; each
// operation has one goroutine pulling gqlgen's ResponseHandler. Everything
// is torn down through closeWith, which cancels ctx and wakes the writer.
type connection struct {
	t       *Transport
	cfg     Config
	ws      engineConn
	exec    graphql.GraphExecutor
	proto   protocol
	headers http.Header
	logger  *slog.Logger

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

	// send carries pre-marshalled messages to writeLoop. It is never
	// closed; writers give up when closing is closed. Its capacity is
	// SendQueue plus room for one final message per operation and a few
	// replies, so that messages which must not wait (see enqueue) still fit
	// while results fill the queue.
	send chan []byte
	// qmu guards the backlog: messages in send plus the one being written.
	// Every send on the channel happens under qmu so the counts match it.
	qmu         sync.Mutex
	queuedMsgs  int
	queuedBytes int
	// drained is closed when the writer finishes a message, if an
	// operation is waiting for room; nil when nobody waits.
	drained chan struct{}
	// ackedCh is closed after a legacy connection_ack so that writeLoop
	// starts the "ka" ticker.
	ackedCh chan struct{}

	closeOnce   sync.Once
	closing     chan struct{}
	closeCode   int    // set once, before closing is closed
	closeReason string // ditto

	readerDone chan struct{}
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
}

func newConnection(t *Transport, ws engineConn, r *http.Request, exec graphql.GraphExecutor) *connection {
	c := &connection{
		t:          t,
		cfg:        t.cfg,
		ws:         ws,
		exec:       exec,
		proto:      protocolFor(ws.Subprotocol()),
		headers:    r.Header,
		send:       make(chan []byte, t.cfg.SendQueue+t.cfg.MaxSubscriptions+controlSlack),
		ackedCh:    make(chan struct{}),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		ops:        make(map[string]*operation),
	}
	c.logger = t.cfg.Logger.With(
		slog.String("remote", r.RemoteAddr),
		slog.String("subprotocol", ws.Subprotocol()),
	)
	ctx, cancel := context.WithCancel(r.Context())
	c.ctx = context.WithValue(ctx, connCtxKey{}, c)
	c.cancel = cancel
	c.opParent = c.ctx
	return c
}

// serve runs the connection to completion on the caller's goroutine.
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

	go c.writeLoop()
	readErr := c.readLoop()
	close(c.readerDone)
	initTimer.Stop()

	code, peerClosed := closeCodeFromError(readErr)
	reason := ""
	if code == closeGoingAway {
		reason = "keep-alive timeout"
	}
	if c.closeWith(code, reason) {
		c.logger.Debug("websocket read ended", slog.Int("code", code), slog.Any("error", readErr))
	}

	c.opsWG.Wait()
	<-c.writerDone
	if peerClosed || errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) {
		_ = c.ws.Close()
	} else {
		_ = c.ws.CloseLingering(closeHandshakeGrace)
	}
	c.logger.Debug("websocket closed", slog.Int("code", c.closeCode), slog.String("reason", c.closeReason))
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
			c.logger.Error("websocket message handler panicked", slog.Any("panic", r))
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

func (c *connection) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// closeWith starts closing the connection with code and reason unless it is
// already closing, and reports whether this call started it. It never blocks
// and takes no locks other than its own, so it is safe from resolvers, hooks,
// timers and while holding c.mu.
func (c *connection) closeWith(code int, reason string) bool {
	started := false
	c.closeOnce.Do(func() {
		started = true
		c.closeCode = code
		c.closeReason = truncateReason(reason)
		close(c.closing)
		c.cancel()
	})
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

// enqueue hands a message that must not wait to the writer: replies sent by
// the reader, which has to keep reading, and final messages sent under c.mu.
// They are small and bounded by what the client itself sends, so a full
// queue means a client that keeps talking without reading; it is cut off.
func (c *connection) enqueue(b []byte) bool {
	if c.isClosing() {
		return false
	}
	c.qmu.Lock()
	queued := false
	select {
	case c.send <- b:
		c.queuedMsgs++
		c.queuedBytes += len(b)
		queued = true
	default:
	}
	c.qmu.Unlock()
	if !queued {
		c.cutOff("send queue full")
	}
	return queued
}

// reserve queues a result if the backlog is below its bounds. Otherwise it
// returns a channel that is closed when the writer has finished a message.
// The last result admitted may overshoot SendQueueBytes: requiring it to fit
// would starve a large result behind a busy subscription on the same
// connection, and one message past the bound is still a bound.
func (c *connection) reserve(b []byte) (bool, <-chan struct{}) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.queuedMsgs < c.cfg.SendQueue && c.queuedBytes < c.cfg.SendQueueBytes {
		// Cannot block: data never occupies more than SendQueue of the
		// channel's capacity, and every send happens under qmu.
		c.send <- b
		c.queuedMsgs++
		c.queuedBytes += len(b)
		return true, nil
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	return false, c.drained
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
	c.logger.Warn("websocket client too slow, cut off with 1013",
		slog.String("cause", cause),
		slog.Duration("write_timeout", c.cfg.WriteTimeout),
		slog.Int("backlog_messages", backlogMsgs),
		slog.Int("backlog_bytes", backlogBytes))
}

// writeLoop is the connection's only writer.
func (c *connection) writeLoop() {
	defer close(c.writerDone)

	var pingC <-chan time.Time
	if c.cfg.PingInterval > 0 {
		ping := time.NewTicker(c.cfg.PingInterval)
		defer ping.Stop()
		pingC = ping.C
	}
	var ackedCh <-chan struct{}
	if c.proto == protocolLegacy && c.cfg.LegacyKeepAlive > 0 {
		ackedCh = c.ackedCh
	}
	var kaC <-chan time.Time
	var ka *time.Ticker
	defer func() {
		if ka != nil {
			ka.Stop()
		}
	}()
	keepAlive := mustEncode(msgKeepAlive, "", nil)

	// A write blocks only when the client stopped reading and the TCP
	// buffers are full. stall decides the cut-off after WriteTimeout while
	// the write itself may go on for cutOffGrace (the socket's deadline),
	// so that a client that starts reading again in that time still gets
	// the close frame with the reason.
	stall := time.AfterFunc(c.cfg.WriteTimeout, func() { c.cutOff("write blocked for write_timeout") })
	stall.Stop()
	defer stall.Stop()
	watched := func(write func() error) error {
		stall.Reset(c.cfg.WriteTimeout)
		defer stall.Stop()
		return write()
	}

	for {
		// Closing wins over pending messages: a slow consumer's queue must
		// not be written before its close frame.
		if c.isClosing() {
			c.finishWrites()
			return
		}
		var err error
		select {
		case <-c.closing:
			continue
		case b := <-c.send:
			err = watched(func() error { return c.ws.WriteText(b) })
			c.written(b)
		case <-pingC:
			err = watched(c.ws.WritePing)
		case <-ackedCh:
			ackedCh = nil
			ka = time.NewTicker(c.cfg.LegacyKeepAlive)
			kaC = ka.C
		case <-kaC:
			err = watched(func() error { return c.ws.WriteText(keepAlive) })
		}
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
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
	flush:
		for {
			select {
			case b := <-c.send:
				err := c.ws.WriteText(b)
				c.written(b)
				if err != nil {
					c.writeFailed(err)
					return
				}
			default:
				break flush
			}
		}
	}
	if sendableCloseCode(c.closeCode) {
		if err := c.ws.WriteClose(c.closeCode, c.closeReason); err != nil {
			// Usually ErrCloseSent: the peer closed first and gorilla
			// already answered, or gorilla sent 1009 itself. A timeout
			// means the peer is not reading; gorillaConn has dropped the
			// connection, and waiting for an answer would be pointless.
			c.logger.Debug("websocket close frame not sent", slog.Any("error", err))
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
		c.logger.Debug("websocket write failed", slog.Any("error", err))
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
		c.logger.Info("websocket connection_init rejected", slog.Any("error", err))
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
		c.enqueue(mustEncode(msgConnectionAck, "", nil))
	case msgPing:
		if err := m.requireObjectPayload(); err != nil {
			c.closeWith(CloseBadRequest, err.Error())
			return
		}
		c.enqueue(mustEncode(msgPong, "", m.Payload))
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
		c.enqueue(mustEncode(msgConnectionAck, "", nil))
		// The client's 30s keep-alive timer starts with the first ka.
		if c.cfg.LegacyKeepAlive > 0 {
			c.enqueue(mustEncode(msgKeepAlive, "", nil))
		}
		close(c.ackedCh)
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
			c.enqueue(mustEncode(msgComplete, m.ID, nil))
		}
	case msgConnectionTerminate:
		c.closeWith(closeNormal, "")
	default:
		c.legacyFail(CloseBadRequest, fmt.Sprintf("Invalid message type %q", m.Type))
	}
}

func (c *connection) legacyFail(code int, reason string) {
	c.enqueue(mustEncode(msgConnectionError, "", errorPayload(reason)))
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
		c.enqueue(mustEncode(msgError, id, encodeErrors(errs)))
		return
	}
	ctx, cancel := context.WithCancel(c.opParent)
	op := &operation{id: id, cancel: cancel}
	c.ops[id] = op
	c.opsWG.Add(1)
	c.mu.Unlock()

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
	}
	c.mu.Unlock()
	if ok {
		op.cancel()
	}
	return ok
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
		ok, drained := c.reserve(b)
		c.mu.Unlock()
		if ok {
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
// message lets the client reuse the id immediately without a 4409.
func (c *connection) finishOp(op *operation, last []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops[op.id] != op {
		return
	}
	delete(c.ops, op.id)
	if last != nil {
		c.enqueue(last)
	}
}

// runOperation executes one operation through gqlgen's executor the way
// gqlgen's own transports do: StartOperationTrace, CreateOperationContext,
// DispatchOperation, then pull responses until nil.
func (c *connection) runOperation(ctx context.Context, op *operation, params *graphql.RawParams) {
	defer c.opsWG.Done()
	defer func() {
		if c.cfg.Hooks.OnUnsubscribe != nil {
			c.cfg.Hooks.OnUnsubscribe()
		}
	}()
	defer op.cancel()
	// Safety net for early returns: never leave a dead entry that would
	// make the id unusable (4409) or count against MaxSubscriptions.
	defer c.finishOp(op, nil)

	var rc *graphql.OperationContext
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		// A panicking resolver or extension runs on this goroutine, where
		// nothing else would catch it and the whole process would die.
		// gqlgen's RecoverFunc logs it and builds the client-facing error;
		// only this operation ends.
		var err error
		if rc != nil && rc.RecoverFunc != nil {
			err = rc.Recover(ctx, r)
		} else {
			c.logger.Error("graphql operation panicked", slog.String("id", op.id), slog.Any("panic", r))
		}
		c.finishOp(op, mustEncode(msgError, op.id, encodeErrors(gqlerror.List{asGQLError(err)})))
	}()

	ctx = graphql.StartOperationTrace(ctx)
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			// Parse/validation failure: the operation never started, so
			// graphql-transport-ws wants "error" and no "complete".
			c.finishOp(op, mustEncode(msgError, op.id, encodeErrors(resp.Errors)))
			return
		}
		// Anything else (e.g. complexity limit) is a GraphQL response with
		// errors, delivered like a result.
		if b, ok := c.encodeResponse(op, resp); ok && c.sendForOp(ctx, op, b) {
			c.finishOp(op, mustEncode(msgComplete, op.id, nil))
		}
		return
	}

	ctx = graphql.WithOperationContext(ctx, rc)
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		b, ok := c.encodeResponse(op, resp)
		if !ok {
			return
		}
		if !c.sendForOp(ctx, op, b) {
			// Client completed it, or the connection is closing; the
			// cancelled ctx stops the resolver.
			return
		}
	}
	c.finishOp(op, mustEncode(msgComplete, op.id, nil))
}

// encodeResponse marshals one result. A result that cannot be marshalled
// (a resolver produced invalid raw JSON) ends the operation with an error
// instead of killing the connection.
func (c *connection) encodeResponse(op *operation, resp *graphql.Response) ([]byte, bool) {
	payload, err := json.Marshal(resp)
	if err == nil {
		var b []byte
		b, err = encodeMessage(c.dataType(), op.id, payload)
		if err == nil {
			return b, true
		}
	}
	c.logger.Error("marshal graphql response", slog.String("id", op.id), slog.Any("error", err))
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
