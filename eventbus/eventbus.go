// Package eventbus delivers the org event stream to subscribers in this
// process. One pq.Listener per process hears the ids that store.InsertEvent
// NOTIFYs, the rows are read once per batch, and each subscriber gets its
// own bounded inbox, so a slow subscriber never blocks the others.
//
// Nothing is lost: a subscriber whose inbox overflows, or every subscriber
// after the LISTEN connection dropped, re-reads the missed events from the
// outbox table starting at the last id it delivered. Because store.InsertEvent
// makes ids visible in commit order within an org, "id > last delivered" is
// an exact resume point.
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

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/deskbridge/deskbridge/store"
)

// inboxSize bounds the events buffered per subscriber between the dispatcher
// and the subscriber's goroutine. Past it the subscriber catches up from the
// database instead.
const inboxSize = 64

// catchUpPage is how many events one catch-up query reads.
const catchUpPage = 500

// maxBatch bounds how many notifications are read from the database at once.
const maxBatch = 256

// Bus fans the event stream out to subscribers of this process.
type Bus struct {
	db  *sqlx.DB
	dsn string
	log *slog.Logger

	mu    sync.Mutex
	subs  map[int64]map[*subscriber]struct{} // by org
	hooks []func(store.Event)
	count int

	ready chan struct{}
}

// New returns a bus; call Run to start listening.
func New(db *sqlx.DB, dsn string, log *slog.Logger) *Bus {
	return &Bus{db: db, dsn: dsn, log: log, subs: map[int64]map[*subscriber]struct{}{}, ready: make(chan struct{})}
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
	for _, ev := range events {
		for _, hook := range b.hooks {
			hook(ev)
		}
		for s := range b.subs[ev.OrgID] {
			if !s.wants(ev) {
				continue
			}
			select {
			case s.inbox <- ev:
			default:
				s.kick() // inbox full: it re-reads from the database
			}
		}
	}
}

func (b *Bus) kickAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for s := range subs {
			s.kick()
		}
	}
}

// Filter selects which events a subscriber receives.
type Filter = store.EventFilter

// Subscribe streams the filter's events with ids above after, then live
// ones, until ctx is done. after < 0 means "only events from now on". The
// returned channel is closed when the subscription ends.
func Subscribe[T any](ctx context.Context, b *Bus, f Filter, after int64, convert func(store.Event) T) (<-chan T, error) {
	s := &subscriber{filter: f, inbox: make(chan store.Event, inboxSize), kicked: make(chan struct{}, 1)}
	b.add(s)
	if after < 0 {
		// Registered first, then read the head, so nothing committed in
		// between is missed; anything at or below the head is skipped.
		latest, err := store.LatestEventID(ctx, b.db, f.OrgID)
		if err != nil {
			b.remove(s)
			return nil, fmt.Errorf("subscribing to events: %w", err)
		}
		after = latest
	} else {
		s.kick() // replay from the database first
	}
	out := make(chan T)
	go func() {
		defer close(out)
		defer b.remove(s)
		err := s.run(ctx, b.db, after, func(ev store.Event) bool {
			select {
			case out <- convert(ev):
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil && ctx.Err() == nil {
			b.log.Error("event subscription ended", "org", f.OrgID, "err", err)
		}
	}()
	return out, nil
}

func (b *Bus) add(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[s.filter.OrgID] == nil {
		b.subs[s.filter.OrgID] = map[*subscriber]struct{}{}
	}
	b.subs[s.filter.OrgID][s] = struct{}{}
	b.count++
}

func (b *Bus) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs[s.filter.OrgID], s)
	if len(b.subs[s.filter.OrgID]) == 0 {
		delete(b.subs, s.filter.OrgID)
	}
	b.count--
}

type subscriber struct {
	filter Filter
	inbox  chan store.Event
	kicked chan struct{} // set when the inbox overflowed or the listener had a gap
}

func (s *subscriber) wants(ev store.Event) bool {
	return slices.Contains(s.filter.Permissions, ev.Permission) &&
		(len(s.filter.Types) == 0 || slices.Contains(s.filter.Types, ev.Type)) && s.filter.Matches(ev.EventRefs)
}

func (s *subscriber) kick() {
	select {
	case s.kicked <- struct{}{}:
	default:
	}
}

// run delivers events in id order. The dispatcher sets kicked before it
// enqueues anything after a dropped event, so checking kicked after taking an
// event from the inbox tells whether that event may follow a gap; if so the
// database, not the inbox, supplies the next events.
func (s *subscriber) run(ctx context.Context, db store.Queryer, cursor int64, deliver func(store.Event) bool) error {
	retry := 100 * time.Millisecond
	for {
		select {
		case <-s.kicked:
			next, err := s.catchUp(ctx, db, cursor, deliver)
			cursor = next
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// The database is unreachable: try again later, without spinning.
				s.kick()
				select {
				case <-time.After(retry):
					retry = min(retry*2, 5*time.Second)
				case <-ctx.Done():
					return nil
				}
				continue
			}
			retry = 100 * time.Millisecond
		case ev := <-s.inbox:
			select {
			case <-s.kicked:
				s.kick() // handled at the top of the loop
				continue
			default:
			}
			if ev.ID <= cursor {
				continue
			}
			if !deliver(ev) {
				return nil
			}
			cursor = ev.ID
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *subscriber) catchUp(ctx context.Context, db store.Queryer, cursor int64, deliver func(store.Event) bool) (int64, error) {
	for {
		page, err := store.EventsAfter(ctx, db, s.filter, cursor, catchUpPage)
		if err != nil {
			return cursor, err
		}
		for _, ev := range page {
			if !deliver(ev) {
				return cursor, ctx.Err()
			}
			cursor = ev.ID
		}
		if len(page) < catchUpPage {
			return cursor, nil
		}
	}
}
