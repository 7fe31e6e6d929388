package eventbus_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

type fixture struct {
	db  *sqlx.DB
	bus *eventbus.Bus
	org int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dsn := storetest.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org, _, err := store.EnsureOrg(context.Background(), db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New(db, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = bus.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-bus.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("bus never connected")
	}
	return &fixture{db: db, bus: bus, org: org.ID}
}

func (f *fixture) emit(t *testing.T, typ, perm string) int64 {
	t.Helper()
	var id int64
	err := store.InTx(context.Background(), f.db, func(tx *sqlx.Tx) error {
		ev, err := store.InsertEvent(context.Background(), tx, store.NewEvent{OrgID: f.org, Type: typ, Permission: perm})
		id = ev.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) subscribe(t *testing.T, ctx context.Context, perms []string, after int64) <-chan int64 {
	t.Helper()
	ch, err := eventbus.Subscribe(ctx, f.bus, eventbus.Filter{OrgID: f.org, Permissions: perms}, after,
		func(e store.Event) int64 { return e.ID })
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// receive reads n ids or fails after a generous deadline (a hang, not a speed check).
func receive(t *testing.T, ch <-chan int64, n int) []int64 {
	t.Helper()
	var got []int64
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case id, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed after %d of %d events", len(got), n)
			}
			got = append(got, id)
		case <-deadline:
			t.Fatalf("received %d of %d events", len(got), n)
		}
	}
	return got
}

func assertExactly(t *testing.T, got, want []int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestLiveSubscriptionGetsNewEventsInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.emit(t, "OLD", "p")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.subscribe(t, ctx, []string{"p"}, -1)
	want := []int64{f.emit(t, "A", "p"), f.emit(t, "B", "p"), f.emit(t, "C", "p")}
	got := receive(t, ch, 3)
	assertExactly(t, got, want)
	if got[0] == before {
		t.Fatal("a live subscription replayed an old event")
	}
}

func TestResumeReplaysThenContinuesLive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []int64
	for range 5 {
		ids = append(ids, f.emit(t, "E", "p"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.subscribe(t, ctx, []string{"p"}, ids[1])
	assertExactly(t, receive(t, ch, 3), ids[2:])
	next := f.emit(t, "E", "p")
	assertExactly(t, receive(t, ch, 1), []int64{next})
}

func TestPermissionFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.subscribe(t, ctx, []string{"everyone"}, -1)
	f.emit(t, "SECRET", "admins")
	visible := f.emit(t, "PUBLIC", "everyone")
	assertExactly(t, receive(t, ch, 1), []int64{visible})
}

// A subscriber that does not read must neither block the others nor lose
// anything: it is caught up from the outbox when it reads again.
func TestSlowSubscriberNeitherBlocksNorLoses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := f.subscribe(t, ctx, []string{"p"}, -1)
	fast := f.subscribe(t, ctx, []string{"p"}, -1)
	const n = 400 // many times a subscriber's channel (streamSize)
	var want []int64
	for range n {
		want = append(want, f.emit(t, "E", "p"))
	}
	assertExactly(t, receive(t, fast, n), want)
	assertExactly(t, receive(t, slow, n), want)
	select {
	case id := <-slow:
		t.Fatalf("slow subscriber got an extra event %d", id)
	case <-time.After(200 * time.Millisecond):
	}
}

// When the LISTEN connection drops, notifications sent meanwhile are lost;
// subscribers must still get those events from the outbox.
func TestListenerReconnectCatchesUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.subscribe(t, ctx, []string{"p"}, -1)
	first := f.emit(t, "E", "p")
	assertExactly(t, receive(t, ch, 1), []int64{first})

	var killed int
	err := f.db.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query ILIKE 'listen%'`)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listener backends (%v), want 1", killed, err)
	}
	var want []int64
	for range 3 {
		want = append(want, f.emit(t, "E", "p"))
	}
	assertExactly(t, receive(t, ch, 3), want)
}

func TestHooksSeeEveryEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seen := make(chan int64, 10)
	f.bus.OnEvent(func(e store.Event) { seen <- e.ID })
	id := f.emit(t, "E", "nobody-subscribed")
	assertExactly(t, receive(t, seen, 1), []int64{id})
}

func TestSubscriptionEndsWithContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := f.subscribe(t, ctx, []string{"p"}, -1)
	if f.bus.Subscribers() != 1 {
		t.Fatalf("Subscribers = %d, want 1", f.bus.Subscribers())
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream not closed after cancel")
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.bus.Subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.bus.Subscribers() != 0 {
		t.Fatalf("Subscribers = %d after cancel", f.bus.Subscribers())
	}
}
