package syncengine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
)

// Engine runs the sync inside a gateway process: queue workers on every
// replica (the queue's SKIP LOCKED claims share the work), and the scheduled
// polling of every active connection on the cluster leader only (gocron with
// a PostgreSQL elector), so each poll happens once per cluster.
type Engine struct {
	DB         *sqlx.DB
	Connectors Connectors
	Elector    gocron.Elector
	Log        *slog.Logger
	Workers    int           // concurrent workers in this process; default 2
	PollEvery  time.Duration // default 30s
	Idle       time.Duration // a worker's pause when the queue is empty; default 500ms
	// PublicURL is the gateway's address as the vendors reach it, for
	// their change notifications; "" leaves capture to polling. It is a
	// function because the listen address may be known only after start.
	PublicURL  func() string
	WatchEvery time.Duration // how often the leader checks subscriptions; default 10m
	// HistoryRetention is how long sync history is kept (B13: at least 7
	// days); the leader prunes older hours hourly. Default 7 days.
	HistoryRetention time.Duration
	// EventRetention is how long the event outbox keeps events for
	// subscriptions and pollers to resume from; the leader prunes older
	// ones hourly. Default 7 days.
	EventRetention time.Duration
	// FirstSyncEvery is how often the leader's first-sync job is started,
	// default 5s. Once started it advances the runs every firstSyncPause
	// while this replica leads, so a walk keeps pace with the workers and
	// a run is picked up and finished at once; this interval only matters
	// after an error or a change of leader.
	FirstSyncEvery time.Duration
	// OverdueEvery is how often the leader looks for tickets that became
	// overdue (E4); default 1m.
	OverdueEvery time.Duration
	// KB is the knowledge-base sync (SPEC F2); nil leaves it out. Its
	// minute tick runs on this scheduler, so on the leader only.
	KB *KBService
	// Chat is the SalesIQ link (SPEC A5, F1, F3); nil leaves it out. The
	// leader checks the links, keeps them subscribed, maps new chat
	// departments and retries deferred conversions every PollEvery.
	Chat *ChatService

	wakeOnce sync.Once
	wake     chan struct{}
}

// Wake tells this process's idle workers that changes were just queued
// (by a webhook received here), so they start at once instead of at their
// next idle check. Workers of other replicas find the rows on their own.
func (e *Engine) Wake() {
	e.wakeCh()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) wakeCh() chan struct{} {
	e.wakeOnce.Do(func() { e.wake = make(chan struct{}, 1) })
	return e.wake
}

// Run works until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	workers, every, idle := e.Workers, e.PollEvery, e.Idle
	if workers <= 0 {
		workers = 2
	}
	if every <= 0 {
		every = 30 * time.Second
	}
	if idle <= 0 {
		idle = 500 * time.Millisecond
	}
	host, _ := os.Hostname()
	var wg sync.WaitGroup
	for i := range workers {
		w := &Worker{DB: e.DB, Connectors: e.Connectors, Log: e.Log, Name: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(ctx, w, idle)
		}()
	}
	sched, err := gocron.NewScheduler(gocron.WithDistributedElector(e.Elector), gocron.WithLocation(time.UTC))
	if err != nil {
		return fmt.Errorf("starting the sync scheduler: %w", err)
	}
	poller := &Poller{DB: e.DB, Connectors: e.Connectors, Log: e.Log}
	if _, err := sched.NewJob(gocron.DurationJob(every), gocron.NewTask(func() { e.pollAll(ctx, poller) }),
		gocron.WithName("sync-poll"), gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
		return fmt.Errorf("scheduling polling: %w", err)
	}
	mirror := &Mirror{DB: e.DB, Connectors: e.Connectors, Log: e.Log}
	if _, err := sched.NewJob(gocron.DurationJob(every), gocron.NewTask(func() { e.mirrorAll(ctx, mirror) }),
		gocron.WithName("customer-mirror"), gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
		return fmt.Errorf("scheduling the customer mirror: %w", err)
	}
	watchEvery := e.WatchEvery
	if watchEvery <= 0 {
		watchEvery = 10 * time.Minute
	}
	if _, err := sched.NewJob(gocron.DurationJob(watchEvery), gocron.NewTask(func() { e.watchAll(ctx) }),
		gocron.WithName("sync-watch"), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately())); err != nil {
		return fmt.Errorf("scheduling subscriptions: %w", err)
	}
	firstEvery := e.FirstSyncEvery
	if firstEvery <= 0 {
		firstEvery = 5 * time.Second
	}
	first := &FirstSync{DB: e.DB, Connectors: e.Connectors, Log: e.Log}
	if _, err := sched.NewJob(gocron.DurationJob(firstEvery), gocron.NewTask(func() { e.firstSync(ctx, first) }),
		gocron.WithName("sync-first-sync"), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately())); err != nil {
		return fmt.Errorf("scheduling the first sync: %w", err)
	}
	overdueEvery := e.OverdueEvery
	if overdueEvery <= 0 {
		overdueEvery = time.Minute
	}
	if _, err := sched.NewJob(gocron.DurationJob(overdueEvery), gocron.NewTask(func() { e.signalOverdue(ctx) }),
		gocron.WithName("ticket-overdue"), gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
		return fmt.Errorf("scheduling overdue detection: %w", err)
	}
	if _, err := sched.NewJob(gocron.DurationJob(time.Hour), gocron.NewTask(func() { e.pruneExpired(ctx) }),
		gocron.WithName("retention"), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately())); err != nil {
		return fmt.Errorf("scheduling retention: %w", err)
	}
	if e.Chat != nil {
		if _, err := sched.NewJob(gocron.DurationJob(every), gocron.NewTask(func() { e.maintainChat(ctx) }),
			gocron.WithName("chat-links"), gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
			return fmt.Errorf("scheduling the chat links' upkeep: %w", err)
		}
	}
	if e.KB != nil {
		if err := e.KB.Schedule(ctx, sched); err != nil {
			return err
		}
	}
	sched.Start()
	<-ctx.Done()
	if err := sched.Shutdown(); err != nil {
		e.Log.Warn("stopping the sync scheduler", "err", err)
	}
	wg.Wait()
	return nil
}

func (e *Engine) work(ctx context.Context, w *Worker, idle time.Duration) {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.Log.Error("sync worker", "worker", w.Name, "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-e.wakeCh():
			case <-time.After(idle):
			}
		}
	}
}

func (e *Engine) pollAll(ctx context.Context, p *Poller) {
	conns, err := store.ActiveConnections(ctx, e.DB)
	if err != nil {
		e.Log.Error("listing connections to poll", "err", err)
		return
	}
	for _, c := range conns {
		if n, err := p.PollConnection(ctx, c); err != nil {
			e.Log.Warn("polling a connection; the next run tries again", "connection", c.ID, "err", err)
		} else if n > 0 {
			e.Log.Debug("polled changes", "connection", c.ID, "enqueued", n)
		}
	}
}

// firstSyncPause is the pause between two passes of the first-sync driver:
// about what the workers need to drain a few batches. analyzeEvery is how
// often the driver looks for sync tables whose statistics a first sync has
// outgrown (store.AnalyzeGrowing).
const (
	firstSyncPause = 200 * time.Millisecond
	analyzeEvery   = 5 * time.Second
)

// firstSync advances the running first syncs (B7), waking this process's
// workers when it queued records. It passes again every firstSyncPause for
// as long as this replica leads: a walk paced by the job's interval would
// leave the workers idle most of the time, and a run just started
// (connectCrm) or just drained is seen at once. A pass without runs is one
// query. An error ends the job run; the next start tries again.
func (e *Engine) firstSync(ctx context.Context, f *FirstSync) {
	var nextAnalyze time.Time
	for {
		if time.Now().After(nextAnalyze) {
			nextAnalyze = time.Now().Add(analyzeEvery)
			if tables, err := store.AnalyzeGrowing(ctx, e.DB); err != nil && ctx.Err() == nil {
				// Most likely a role that does not own the tables: autovacuum
				// still does it, later; ask again in an hour, not every pass.
				e.Log.Warn("refreshing the sync tables' statistics; trying again in an hour", "err", err)
				nextAnalyze = time.Now().Add(time.Hour)
			} else if len(tables) > 0 {
				e.Log.Debug("refreshed the sync tables' statistics", "tables", tables)
			}
		}
		n, err := f.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			e.Log.Warn("advancing first syncs; the next run tries again", "err", err)
		}
		if n > 0 {
			e.Log.Debug("first sync enqueued records", "enqueued", n)
			e.Wake()
		}
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(firstSyncPause):
		}
		// The scheduler asks the elector before each start only; a job that
		// keeps going asks it itself, so a replica that lost the lead stops.
		if e.Elector != nil && e.Elector.IsLeader(ctx) != nil {
			return
		}
	}
}

// watchAll keeps every active connection subscribed to its systems' change
// notifications.
func (e *Engine) watchAll(ctx context.Context) {
	if e.PublicURL == nil || e.PublicURL() == "" {
		return
	}
	conns, err := store.ActiveConnections(ctx, e.DB)
	if err != nil {
		e.Log.Error("listing connections to subscribe", "err", err)
		return
	}
	for _, c := range conns {
		if err := EnsureWatches(ctx, e.DB, e.Connectors, e.PublicURL(), c); err != nil {
			e.Log.Warn("subscribing a connection to notifications; polling still captures", "connection", c.ID, "err", err)
		}
	}
}

// signalOverdue signals the tickets that became overdue (E4).
func (e *Engine) signalOverdue(ctx context.Context) {
	n, err := NoteOverdueTickets(ctx, e.DB, time.Now())
	if err != nil {
		e.Log.Error("detecting overdue tickets", "err", err)
		return
	}
	if n > 0 {
		e.Log.Info("overdue tickets signalled", "tickets", n)
	}
}

// pruneExpired drops sync history older than its retention (B13), events
// older than theirs, and idempotency keys older than a day.
func (e *Engine) pruneExpired(ctx context.Context) {
	keep := e.HistoryRetention
	if keep <= 0 {
		keep = 7 * 24 * time.Hour
	}
	// Each step stands alone: one failing leaves the others to run.
	if n, err := store.PruneHistory(ctx, e.DB, time.Now().Add(-keep)); err != nil {
		e.Log.Error("pruning sync history", "err", err)
	} else if n > 0 {
		e.Log.Info("pruned sync history", "buckets", n, "older_than", keep)
	}
	e.pruneEvents(ctx)
	// Idempotency keys answer a client's retries, which come within
	// minutes; a day is generous.
	if n, err := store.PruneIdempotencyKeys(ctx, e.DB, time.Now().Add(-24*time.Hour)); err != nil {
		e.Log.Error("pruning idempotency keys", "err", err)
	} else if n > 0 {
		e.Log.Info("pruned idempotency keys", "keys", n)
	}
}

// eventPruneBatch bounds one delete of the event outbox, so pruning a
// backlog never holds a long transaction.
const eventPruneBatch = 10_000

// pruneEvents drops events older than the retention, a batch at a time.
// Readers resuming from a pruned position get EVENTS_EXPIRED
// (store.CheckEventPosition).
func (e *Engine) pruneEvents(ctx context.Context) {
	keep := e.EventRetention
	if keep <= 0 {
		keep = 7 * 24 * time.Hour
	}
	before, total := time.Now().Add(-keep), int64(0)
	for ctx.Err() == nil {
		n, err := store.PruneEvents(ctx, e.DB, before, eventPruneBatch)
		if err != nil {
			e.Log.Error("pruning events", "err", err)
			break
		}
		total += n
		if n < eventPruneBatch {
			break
		}
	}
	if total > 0 {
		e.Log.Info("pruned events", "events", total, "older_than", keep)
	}
}

// maintainChat is the leader's pass over the SalesIQ links.
func (e *Engine) maintainChat(ctx context.Context) {
	if err := e.Chat.Maintain(ctx); err != nil && ctx.Err() == nil {
		e.Log.Warn("keeping the SalesIQ links up; the next run tries again", "err", err)
	}
}
