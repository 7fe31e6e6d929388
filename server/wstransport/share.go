package wstransport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"

	"github.com/deskbridge/deskbridge/eventbus"
)

// Result sharing lets a resolver's event source execute one subscription
// once for many identical ones, across connections, instead of once per
// subscriber: gqlgen re-executes the selection set for every result of
// every operation, which costs more than writing the result to the socket.
// The transport only provides the mechanism; the source decides what is
// identical (it knows the viewer and the stream position) and which result
// goes to whom:
//
//   - Shared.Key tells operations that compute the same result from the same
//     resolver value (same transport, document, operation name, variables
//     and extensions) for viewers that see the same.
//   - Shared.Render executes the operation once more, detached from its
//     connection, and hands each result, rendered once, to the source.
//   - Shared.Offer queues such a result on another operation as its next
//     one, without executing anything for it.
//
// While an operation's results come through Offer its own execution stays
// idle (its resolver's channel yields nothing); the source decides when it
// produces results itself again, e.g. when Offer finds no room.

// transportIDs numbers Transports, so that keys of different ones (each with
// its own executor) never match.
var transportIDs atomic.Uint64

// Shared is one WebSocket operation's side of result sharing. Its methods
// may be called from any goroutine; Key and Render only while the
// operation's resolver runs (they read the operation's parameters).
type Shared struct {
	c      *connection
	op     *operation
	params *graphql.RawParams
	key    string
}

// Shared implements the event bus's Sharer; every WebSocket operation's
// context carries one (eventbus.WithSharer).
var _ eventbus.Sharer = (*Shared)(nil)

// SharedFrom returns the result sharing handle of the WebSocket operation
// that ctx belongs to (any context derived from a resolver's).
func SharedFrom(ctx context.Context) (*Shared, bool) {
	s, ok := eventbus.SharerFrom(ctx)
	if !ok {
		return nil, false
	}
	sh, ok := s.(*Shared)
	return sh, ok
}

// Key identifies what the operation computes from a resolver value: the
// transport (and so the executor), the document, the operation name, the
// variables and the extensions. Operations with equal keys produce equal
// results from equal values when their viewers see the same. It is a hash
// (SHA-256) of those, so that a subscription does not hold a second copy of
// its query.
func (s *Shared) Key() string {
	if s.key != "" {
		return s.key
	}
	p := s.params
	vars, err := json.Marshal(p.Variables) // map keys come out sorted
	if err != nil {
		vars = []byte(strconv.Quote(err.Error())) // unique enough: no match is only a missed saving
	}
	ext, err := json.Marshal(p.Extensions)
	if err != nil {
		ext = []byte(strconv.Quote(err.Error()))
	}
	h := sha256.New()
	h.Write(strconv.AppendUint(nil, s.c.t.id, 10))
	for _, part := range [][]byte{[]byte(p.OperationName), []byte(p.Query), vars, ext} {
		// Length-prefixed, so that no two lists of parts hash alike.
		h.Write(strconv.AppendInt([]byte{0}, int64(len(part)), 10))
		h.Write([]byte{':'})
		h.Write(part)
	}
	s.key = string(h.Sum(nil))
	return s.key
}

// Frame is one result rendered by Render, ready to be offered to any number
// of operations with the same key.
type Frame struct {
	payload []byte // the message's payload: {"data":...}
	// env and msg are the last message built from the frame, reused while
	// the envelope is the same (clients mostly number their first
	// subscription alike). Offers of one frame come from one goroutine.
	env, msg []byte
}

func (f *Frame) message(env []byte) []byte {
	if f.msg == nil || !bytes.Equal(f.env, env) {
		f.env, f.msg = env, appendMessage(env, f.payload)
	}
	return f.msg
}

// Offer queues f as the operation's next result, without waiting. ok is
// false when its connection's send queue has no room (as in sendForOp), and
// then nothing is queued; gone reports that the operation has ended
// (completed by the client, or its connection is closing). Sharing never
// cuts off a client: the source falls back to executing the operation
// itself, which waits for room.
func (s *Shared) Offer(frame eventbus.Frame) (ok, gone bool) {
	f, isFrame := frame.(*Frame)
	if !isFrame {
		return false, false // not one of ours: the source executes it itself
	}
	c, op := s.c, s.op
	b := f.message(op.envelope)
	c.qmu.Lock()
	if op.stopped || c.isClosing() {
		c.qmu.Unlock()
		return false, true
	}
	write := false
	if c.roomLocked() {
		ok, write = true, c.pushLocked(b)
	}
	c.qmu.Unlock()
	if ok {
		c.countSubscriptionResult()
	}
	if write {
		// The caller serves many connections; a write to one that is not
		// reading must not hold up the others.
		go c.drain()
	}
	return ok, false
}

// Hold tells the operation that its results come through Offer for now, so
// its own execution has none to give: the operation stops pulling results
// from it and gives up its goroutine (an idle one costs its stack, 8 KiB, on
// every member of a shared subscription) until Release, or until the
// operation ends. Call it from the operation's resolver.
func (s *Shared) Hold() {
	op := s.op
	op.pmu.Lock()
	defer op.pmu.Unlock()
	op.hold = true
	if !op.watchingCtxEnd {
		op.watchingCtxEnd = true
		// The operation's context (cancelled by a client complete or the
		// connection's end) is an ancestor of the resolver's.
		context.AfterFunc(op.ctx, s.Release)
	}
}

// Release ends Hold: the operation pulls results from its own execution
// again.
func (s *Shared) Release() {
	if s.op.unhold() {
		go s.c.resume(s.op)
	}
}

// Render executes the operation once more, on a goroutine of its own and
// detached from its connection: with the values of the connection's context
// (the viewer InitFunc put there), passed through decorate, but not its
// cancellation; no hooks run for it and nothing is written for it. Each
// result goes to deliver as a Frame, on that goroutine; a result that
// cannot be encoded, or an incremental one (@defer), ends the execution:
// each result must stand for one resolver value. done is called when the
// execution has ended, for any reason. stop cancels it. Render reports
// false, and calls nothing, when the transport is shutting down.
//
// The execution's context cannot close the connection it came from
// (CloseConn reports false): it serves other connections as well.
func (s *Shared) Render(decorate func(context.Context) context.Context, deliver func(eventbus.Frame), done func()) (stop func(), ok bool) {
	c, t := s.c, s.c.t
	t.mu.Lock()
	if t.shutdown {
		t.mu.Unlock()
		return nil, false
	}
	t.active.Add(1)
	t.mu.Unlock()
	ctx := context.WithValue(context.WithoutCancel(c.opParent), connCtxKey{}, (*connection)(nil))
	ctx, cancel := context.WithCancel(decorate(ctx))
	params := *s.params // gqlgen's extensions may rewrite the copy (APQ does)
	go func() {
		defer t.active.Done()
		defer done()
		defer cancel()
		c.render(ctx, &params, func(f *Frame) { deliver(f) })
	}()
	return cancel, true
}

// render runs one detached execution (see Shared.Render).
func (c *connection) render(ctx context.Context, params *graphql.RawParams, deliver func(*Frame)) {
	defer func() {
		if r := recover(); r != nil {
			// As in runOperation: only this execution ends. Its operations
			// then execute themselves and meet the panic each on its own.
			c.logAt(slog.LevelError, "shared graphql operation panicked", slog.Any("panic", r))
		}
	}()
	ctx = graphql.StartOperationTrace(ctx)
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			return
		}
		if resp.HasNext != nil || resp.Path != nil || resp.Label != "" {
			// An incremental result (@defer): a value would yield several
			// results, and the source matches results to values one to
			// one. The operations execute themselves instead.
			return
		}
		payload, err := appendPayload(nil, resp)
		if err != nil {
			c.logAt(slog.LevelError, "marshal shared graphql response", slog.Any("error", err))
			return
		}
		deliver(&Frame{payload: payload})
	}
}
