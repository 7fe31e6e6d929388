// Package eventbus delivers the org event stream to subscribers in this
// process. One pq.Listener per process hears the ids that store.InsertEvent
// NOTIFYs, the rows are read once per batch, and the dispatcher hands each
// event to every subscriber that wants it.
//
// Fan-out is the hot path (one event can reach thousands of subscribers), so
// a live subscriber costs no goroutine and no copy of the event: the
// dispatcher converts each event once per converter and puts the result
// straight into the buffered channel that Subscribe returned, without ever
// waiting. Nothing is lost: a subscriber whose channel is full, or every
// subscriber after the LISTEN connection dropped, falls back to a goroutine
// that re-reads the missed events from the outbox table, starting at the last
// id it delivered, and hands the subscriber back to the dispatcher once it
// has caught up. Because store.InsertEvent makes ids visible in commit order
// within an org, "id > last delivered" is an exact resume point.
//
// Identical subscriptions of WebSocket clients (same operation, same viewer)
// go further and share one execution of the GraphQL selection set per event;
// see share.go.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
)

// errGroupClosed ends a renderer that subscribes after its group ended.
var errGroupClosed = errors.New("shared subscription ended")

// streamSize is the capacity of the channel Subscribe returns: how many
// events a subscriber may have taken from the dispatcher but not yet read.
// Past it the subscriber catches up from the database instead, one query
// for up to catchUpPage events, so a burst costs a query rather than a
// loss. The channel holds converted values (usually pointers, 8 bytes a
// slot) and is allocated for every subscription, also for the shared ones
// that never use it unless they go on alone.
const streamSize = 32

// catchUpPage is how many events one catch-up query reads.
const catchUpPage = 500

// maxBatch bounds how many notifications are read from the database at once.
const maxBatch = 256

// Bus fans the event stream out to subscribers of this process.
type Bus struct {
	db  *sqlx.DB
	dsn string
	log *slog.Logger

	// mu guards the subscriber set and every subscriber's delivery state;
	// the dispatcher holds it while it fans a batch out.
	mu     sync.Mutex
	subs   map[int64]map[member]struct{} // by org: the dispatcher's
	groups map[groupKey][]*group         // shared subscriptions (see share.go)
	hooks  []func(store.Event)
	count  int // subscriptions of clients: not renderers

	ready chan struct{}
}

// New returns a bus; call Run to start listening.
func New(db *sqlx.DB, dsn string, log *slog.Logger) *Bus {
	return &Bus{db: db, dsn: dsn, log: log, subs: map[int64]map[member]struct{}{}, groups: map[groupKey][]*group{},
		ready: make(chan struct{})}
}

// OnEvent registers fn to see every event of every org as it is dispatched
// (the server uses it to drop connections of revoked tokens). fn runs on the
// dispatch goroutine and must not block.
func (b *Bus) OnEvent(fn func(store.Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hooks = append(b.hooks, fn)
}

// Subscribers returns how many subscriptions are open in this process.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// Ready is closed once the LISTEN connection is established.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Run listens until ctx is done. Lost connections are re-established by
// pq.Listener; every subscriber then catches up from the database.
func (b *Bus) Run(ctx context.Context) error {
	listener := pq.NewListener(b.dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			b.log.Warn("event listener connection", "event", ev, "err", err)
		}
	})
	defer listener.Close()
	if err := listener.Listen(store.EventsChannel); err != nil {
		return fmt.Errorf("listening on %s: %w", store.EventsChannel, err)
	}
	close(b.ready)
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			// Ping makes a dead connection visible, so pq.Listener reconnects.
			go func() { _ = listener.Ping() }()
		case n := <-listener.Notify:
			ids, gap := b.collect(n, listener.Notify)
			if gap {
				b.log.Info("event listener reconnected; subscribers catch up from the outbox")
				b.kickAll()
			}
			if len(ids) > 0 {
				b.dispatch(ctx, ids)
			}
		}
	}
}

// collect drains the notifications already waiting, up to maxBatch, so a
// burst costs one query. A nil notification means the connection was
// re-established and some may have been missed.
func (b *Bus) collect(first *pq.Notification, more <-chan *pq.Notification) (ids []int64, gap bool) {
	add := func(n *pq.Notification) {
		if n == nil {
			gap = true
			return
		}
		id, err := strconv.ParseInt(n.Extra, 10, 64)
		if err != nil {
			b.log.Warn("ignoring malformed event notification", "payload", n.Extra)
			return
		}
		ids = append(ids, id)
	}
	add(first)
	for len(ids) < maxBatch {
		select {
		case n := <-more:
			add(n)
		default:
			return ids, gap
		}
	}
	return ids, gap
}

func (b *Bus) dispatch(ctx context.Context, ids []int64) {
	b.mu.Lock()
	idle := b.count == 0 && len(b.hooks) == 0
	b.mu.Unlock()
	if idle {
		return
	}
	events, err := store.EventsByIDs(ctx, b.db, ids)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			b.log.Error("reading notified events; subscribers will catch up", "err", err)
		}
		b.kickAll()
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var shared conversions
	for i := range events {
		ev := &events[i]
		for _, hook := range b.hooks {
			hook(*ev)
		}
		shared.reset()
		for m := range b.subs[ev.OrgID] {
			s := m.state()
			if !s.wants(ev) {
				continue
			}
			switch {
			case !s.live:
				// Its catch-up reads this event from the database, but
				// only if it queries again after this point.
				s.missed = true
			case ev.ID <= s.cursor:
				// Already delivered by the catch-up that just ended.
			case m.offer(ev, &shared):
				s.cursor = ev.ID
			default:
				// Its channel is full: it re-reads from the database,
				// this event included.
				b.catchUpLocked(m)
			}
		}
	}
}

// kickAll makes every subscriber re-read from the database: after a gap in
// the notifications nobody knows which events were missed.
func (b *Bus) kickAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for m := range subs {
			if s := m.state(); s.live {
				b.catchUpLocked(m)
			} else {
				s.missed = true
			}
		}
	}
}

// catchUpLocked takes a live subscriber off the dispatcher and starts the
// goroutine that delivers from the database until it has caught up.
func (b *Bus) catchUpLocked(m member) {
	s := m.state()
	s.live, s.running = false, true
	go m.catchUp()
}

// Filter selects which events a subscriber receives.
type Filter = store.EventFilter

// Subscribe streams the filter's events with ids above after, then live
// ones, until ctx is done. after < 0 means "only events from now on". The
// returned channel is closed when the subscription ends. after 0 starts at
// the oldest event kept; resuming after a position whose next events were
// pruned (the retention) fails with a *store.ExpiredPositionError.
//
// convert turns an event into what the channel carries. It must be a pure
// function of the event, and its results must be treated as immutable:
// subscribers that share a converter (the same function value, such as a
// package-level function) receive one shared result per event, converted
// once however many subscribers want it.
//
// A subscription made by a WebSocket operation (wstransport) for an
// authenticated viewer may be shared with identical ones (see share.go):
// then the transport receives its results rendered once for all of them and
// the channel stays silent, unless the subscription has to go on alone.
func Subscribe[T any](ctx context.Context, b *Bus, f Filter, after int64, convert func(store.Event) T) (<-chan T, error) {
	s := &stream[T]{
		subscriber: subscriber{bus: b, ctx: ctx, filter: f, conv: funcIdentity(convert)},
		out:        make(chan T, streamSize),
		convert:    convert,
	}
	if g, ok := ctx.Value(renderKey{}).(*group); ok {
		if err := subscribeRenderer(ctx, b, s, g); err != nil {
			return nil, fmt.Errorf("subscribing to events: %w", err)
		}
		return s.out, nil
	}
	if after > 0 {
		// Resuming after a pruned event would skip what was pruned (0
		// means from the oldest event kept).
		if err := store.CheckEventPosition(ctx, b.db, f.OrgID, after); err != nil {
			return nil, fmt.Errorf("subscribing to events: %w", err)
		}
	}
	if share, ok := SharerFrom(ctx); ok {
		if v, err := auth.FromContext(ctx); err == nil {
			joined, err := subscribeShared(ctx, b, s, share, v, after)
			if err != nil {
				return nil, fmt.Errorf("subscribing to events: %w", err)
			}
			if joined {
				return s.out, nil
			}
		}
	}
	if after < 0 {
		// Registered first (not yet live, so the dispatcher only notes
		// what it skipped), then read the head, so nothing committed in
		// between is missed; anything at or below the head is skipped.
		b.add(s)
		latest, err := store.LatestEventID(ctx, b.db, f.OrgID)
		if err != nil {
			b.mu.Lock()
			b.removeLocked(s)
			b.mu.Unlock()
			return nil, fmt.Errorf("subscribing to events: %w", err)
		}
		b.mu.Lock()
		s.cursor = latest
		if s.missed {
			b.catchUpLocked(s)
		} else {
			s.live = true
		}
		b.mu.Unlock()
	} else {
		// Replay from the database first.
		s.cursor, s.running = after, true
		b.add(s)
		go s.catchUp()
	}
	context.AfterFunc(ctx, func() { b.remove(s) })
	return s.out, nil
}

func (b *Bus) add(m member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(m, true)
}

// addLocked hands m to the dispatcher; count tells whether it is a new
// subscription of a client.
func (b *Bus) addLocked(m member, count bool) {
	org := m.state().filter.OrgID
	if b.subs[org] == nil {
		b.subs[org] = map[member]struct{}{}
	}
	b.subs[org][m] = struct{}{}
	if count {
		b.count++
	}
}

func (b *Bus) remove(m member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(m)
}

// removeLocked unregisters m; its channel is closed now, or by its catch-up
// goroutine when that ends.
func (b *Bus) removeLocked(m member) {
	s := m.state()
	if s.removed {
		return
	}
	s.removed = true
	switch g := s.group; {
	case g != nil && !s.source:
		// A member: only its group knows it.
		delete(g.members, m)
		if len(g.members) == 0 {
			b.closeGroupLocked(g)
		}
	default:
		org := s.filter.OrgID
		delete(b.subs[org], m)
		if len(b.subs[org]) == 0 {
			delete(b.subs, org)
		}
	}
	if !s.source {
		b.count--
	}
	if !s.running {
		m.finish()
	}
}

// member is what the bus holds of a subscription: the delivery state plus
// the typed operations on its channel.
type member interface {
	state() *subscriber
	// offer puts ev into the channel if there is room, converting it at
	// most once per converter for all subscribers (shared). It never
	// blocks. Called with Bus.mu held.
	offer(ev *store.Event, shared *conversions) bool
	// catchUp delivers from the database until the subscriber has caught
	// up or ended; it runs on its own goroutine.
	catchUp()
	// finish closes the channel. Called once, with Bus.mu held.
	finish()
}

// subscriber is the untyped delivery state of one subscription. The fields
// after conv are guarded by Bus.mu. Exactly one party delivers at a time:
// the dispatcher while live, the catch-up goroutine while running, nobody
// in between (while Subscribe reads the head, or after a catch-up ended
// with the subscription).
type subscriber struct {
	bus    *Bus
	ctx    context.Context
	filter Filter
	conv   unsafe.Pointer // identity of the converter, to share conversions

	// group is the subscriber's shared subscription: the one it renders
	// for (source) or, otherwise, the one whose results it receives
	// through share instead of its channel. A member is neither live nor
	// running, and the dispatcher does not know it.
	group  *group
	source bool
	share  Sharer

	cursor  int64 // last id delivered (or the position the stream resumes after)
	live    bool  // the dispatcher delivers
	running bool  // a catch-up goroutine delivers
	// missed is set when the dispatcher passed over a wanted event because
	// the subscriber was not live: a catch-up must query (again) before it
	// may hand the subscriber back to the dispatcher.
	missed  bool
	removed bool
}

func (s *subscriber) wants(ev *store.Event) bool {
	return slices.Contains(s.filter.Permissions, ev.Permission) &&
		(len(s.filter.Types) == 0 || slices.Contains(s.filter.Types, ev.Type)) && s.filter.Matches(ev.EventRefs)
}

func (s *subscriber) state() *subscriber { return s }

// stream is a subscription delivering T.
type stream[T any] struct {
	subscriber
	out     chan T
	convert func(store.Event) T
}

func (s *stream[T]) offer(ev *store.Event, shared *conversions) bool {
	if len(s.out) == cap(s.out) {
		return false
	}
	var v T
	if c, ok := shared.get(s.conv); ok {
		v = c.(T)
	} else {
		v = s.convert(*ev)
		shared.put(s.conv, v)
	}
	select {
	case s.out <- v:
		if s.source {
			// After the send is fine: matching the renderer's result for
			// it to the id (fanOut) waits for Bus.mu, held here.
			s.group.handedLocked(ev.ID)
		}
		return true
	default:
		return false
	}
}

func (s *stream[T]) finish() {
	// Drop what the reader did not take, so nothing arrives after the end,
	// then close.
	for len(s.out) > 0 {
		select {
		case <-s.out:
		default: // the reader took it
		}
	}
	close(s.out)
}

// catchUp delivers events in id order from the database, waiting for the
// reader as long as it takes, until a query returns less than a page and the
// dispatcher skipped nothing since that query began; then the dispatcher
// takes over. Only this goroutine touches cursor while running is set.
func (s *stream[T]) catchUp() {
	b := s.bus
	retry := 100 * time.Millisecond
	b.mu.Lock()
	cursor := s.cursor
	for {
		if s.removed || s.ctx.Err() != nil {
			break
		}
		s.missed = false
		b.mu.Unlock()
		page, err := store.EventsAfter(s.ctx, b.db, s.filter, cursor, catchUpPage)
		if err != nil {
			if s.ctx.Err() == nil {
				// The database is unreachable: try again later, without
				// spinning.
				select {
				case <-time.After(retry):
					retry = min(retry*2, 5*time.Second)
				case <-s.ctx.Done():
				}
			}
			b.mu.Lock()
			continue
		}
		retry = 100 * time.Millisecond
		delivered := true
		for _, ev := range page {
			if s.source {
				// Recorded before the renderer can take it; if the send
				// is abandoned, the renderer is ending anyway.
				b.mu.Lock()
				s.group.handedLocked(ev.ID)
				b.mu.Unlock()
			}
			select {
			case s.out <- s.convert(ev):
				cursor = ev.ID
			case <-s.ctx.Done():
				delivered = false
			}
			if !delivered {
				break
			}
		}
		b.mu.Lock()
		if delivered && len(page) < catchUpPage && !s.missed && !s.removed {
			s.cursor, s.live, s.running = cursor, true, false
			b.mu.Unlock()
			return
		}
	}
	// The subscription ended while this goroutine owned delivery.
	s.cursor, s.running = cursor, false
	if s.removed {
		s.finish()
	}
	b.mu.Unlock()
}

// conversions caches, for the event being dispatched, the value each
// converter made of it. A dispatch sees few distinct converters (one per
// subscription field), so a slice beats a map.
type conversions struct {
	keys []unsafe.Pointer
	vals []any
}

func (c *conversions) reset() {
	clear(c.vals) // let the previous event's values go
	c.keys, c.vals = c.keys[:0], c.vals[:0]
}

func (c *conversions) get(key unsafe.Pointer) (any, bool) {
	if key == nil {
		return nil, false
	}
	for i, k := range c.keys {
		if k == key {
			return c.vals[i], true
		}
	}
	return nil, false
}

func (c *conversions) put(key unsafe.Pointer, v any) {
	if key != nil {
		c.keys, c.vals = append(c.keys, key), append(c.vals, v)
	}
}

// funcIdentity returns what a func value points to: its closure (code
// pointer plus captured variables). Go funcs are not comparable, but two
// values with the same closure are the same function with the same
// captures, so for a pure converter they produce equal results; a
// package-level function is one static closure however often it is
// referenced. Two closures of one literal with different captures have
// different identities and never share, which is what keeps a converter
// that closes over, say, the viewer correct.
func funcIdentity[T any](f func(store.Event) T) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&f))
}
