package syncengine_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/leader"
	"github.com/deskbridge/deskbridge/syncengine"
)

// kbReplica is one gateway replica's share of the KB sync: its own KB
// service and leader elector on the shared database, and a gocron
// scheduler on the world's fake clock, as syncengine.Engine sets it up.
type kbReplica struct {
	name    string
	kb      *syncengine.KBService
	elector *leader.Elector
	sched   gocron.Scheduler
	stop    context.CancelFunc
}

const kbTestLeaderKey = 0x6b62_7465_7374 // "kbtest"

func (w *kbWorld) startReplica(name string) *kbReplica {
	w.t.Helper()
	// The replica's log (KB service, elector, gocron) is shown when the
	// test fails.
	var buf kbLogBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	w.t.Cleanup(func() {
		if w.t.Failed() {
			w.t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := &kbReplica{name: name, stop: cancel, elector: leader.New(w.db.DB, kbTestLeaderKey, log),
		kb: syncengine.NewKBService(syncengine.KBConfig{DB: w.db, Conns: w.conns, Chat: w.chat, Clock: w.clock, Name: name, Log: log})}
	sched, err := gocron.NewScheduler(gocron.WithDistributedElector(r.elector), gocron.WithClock(w.clock), gocron.WithLocation(time.UTC),
		gocron.WithLogger(log))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := r.kb.Schedule(ctx, sched); err != nil {
		w.t.Fatal(err)
	}
	r.sched = sched
	sched.Start()
	w.t.Cleanup(r.shutdown)
	return r
}

// kbLogBuf is a log buffer safe for concurrent writers.
type kbLogBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *kbLogBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *kbLogBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (r *kbReplica) shutdown() {
	r.stop()
	_ = r.sched.Shutdown()
	r.kb.Close()
	_ = r.elector.Resign(context.Background())
}

// advanceUntilRuns moves the fake clock to at, then waits (in real time)
// until the connection has n finished runs, returning them newest first.
// gocron re-arms a job's timer when the job starts, and a singleton job
// still running when its timer fires skips that tick (LimitModeReschedule):
// as in production, the next minute's tick catches up, so when the runs do
// not show up the clock moves on a minute at a time. waiters is how many
// replicas' timers are armed.
func (w *kbWorld) advanceUntilRuns(at time.Time, n, waiters int) []store.KBRun {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.advanceTo(at)
	for minute := 0; ; minute++ {
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			rs, err := store.ListKBRuns(ctx, w.db, w.admin.OrgID, w.conn.ID, 100, 0)
			if err != nil {
				w.t.Fatal(err)
			}
			done := 0
			for _, r := range rs {
				if r.FinishedAt != nil {
					done++
				}
			}
			if done >= n {
				return rs
			}
			time.Sleep(10 * time.Millisecond)
		}
		if minute == 10 {
			w.t.Fatalf("no %d finished runs ten ticks after %s", n, at)
		}
		if err := w.clock.BlockUntilContext(ctx, waiters); err != nil {
			w.t.Fatal(err)
		}
		w.clock.Advance(time.Minute)
	}
}

// Two replicas share one database, each with its gocron scheduler ticking
// every minute on the same (fake) clock and a PostgreSQL elector: each
// daily slot runs exactly once, on the leader; when the leader stops, the
// other replica takes over and the next slot still runs once.
func TestKBScheduledRunsOncePerClusterWithTwoReplicas(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sel := func() []syncengine.KBDepartment {
		w.update(syncengine.KBChange{SalesIQ: w.portal()})
		return w.choose().deps
	}()
	w.update(syncengine.KBChange{Departments: &sel})
	slot := *w.settings().NextRunAt

	a, b := w.startReplica("replica-a"), w.startReplica("replica-b")
	// Each scheduler has run its start-up tick and armed its minute timer.
	if err := w.clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatalf("the schedulers never armed their timers: %v", err)
	}
	var runners []string
	for day := range 3 {
		due := slot.AddDate(0, 0, day)
		rs := w.advanceUntilRuns(due.Add(30*time.Second), day+1, 2)
		if len(rs) != day+1 {
			t.Fatalf("day %d: %d runs, want %d", day, len(rs), day+1)
		}
		r := rs[0]
		if r.Trigger != store.KBTriggerScheduled || !r.ScheduledFor.Equal(due) || r.Status != store.KBRunDone || r.Runner == nil {
			t.Fatalf("day %d: run %+v", day, r)
		}
		runners = append(runners, *r.Runner)
		// Both schedulers re-armed their timers before the clock moves on.
		if err := w.clock.BlockUntilContext(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	if runners[0] != runners[1] || runners[1] != runners[2] {
		t.Fatalf("runs were carried out by %v; one leader should run them all", runners)
	}
	leaderName := runners[0]
	follower := b
	if leaderName == b.name {
		a, follower = b, a
	}
	if !a.elector.Leading() || follower.elector.Leading() {
		t.Fatalf("leading: %s %v, %s %v", a.name, a.elector.Leading(), follower.name, follower.elector.Leading())
	}

	// The leader stops; the follower takes over at its next tick.
	a.shutdown()
	if err := w.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	due := slot.AddDate(0, 0, 3)
	rs := w.advanceUntilRuns(due.Add(30*time.Second), 4, 1)
	if len(rs) != 4 || rs[0].Runner == nil || *rs[0].Runner != follower.name || !rs[0].ScheduledFor.Equal(due) {
		t.Fatalf("after the leader stopped: %+v", rs[0])
	}
}

// Even two leaders at once (or an elector that lost its lock mid-tick)
// cannot run a slot twice: the schedule's row is claimed with FOR UPDATE
// SKIP LOCKED and moved past now in the same transaction, and each queued
// run is started by one claim.
func TestKBTwoLeadersTickingTogetherRunEachSlotOnce(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	w.update(syncengine.KBChange{SalesIQ: w.portal()})
	sel := w.choose().deps
	w.update(syncengine.KBChange{Departments: &sel})
	slot := *w.settings().NextRunAt
	services := []*syncengine.KBService{w.kb, w.newService(), w.newService()}
	for day := range 3 {
		w.advanceTo(slot.AddDate(0, 0, day).Add(time.Minute))
		var wg sync.WaitGroup
		ticks := make([]syncengine.KBTick, len(services)*4)
		for i := range ticks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick, err := services[i%len(services)].Tick(context.Background())
				if err != nil {
					t.Errorf("tick: %v", err)
				}
				ticks[i] = tick
			}()
		}
		wg.Wait()
		scheduled, ran := 0, 0
		for _, tk := range ticks {
			scheduled += tk.Scheduled
			ran += tk.Ran
		}
		if scheduled != 1 || ran != 1 {
			t.Fatalf("day %d: %d ticks together scheduled %d and ran %d runs, want 1 and 1", day, len(ticks), scheduled, ran)
		}
		w.wantScheduledRun(slot.AddDate(0, 0, day))
	}
	// Every article was created once, in the first run, by one of them.
	want := w.expected(w.choose(), "ALL")
	w.checkCopies(want, "published")
}
