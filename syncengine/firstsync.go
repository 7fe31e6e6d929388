package syncengine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// The first sync (SPEC B7, docs/SYNC.md "First sync"): a run per module and
// direction walks the source side from StartAt(since), keeps the records
// created since then and enqueues them (origin FIRST_SYNC, with the run's
// id); the queue's workers apply them like any change and count them into
// the run. The walk's cursor is the run's checkpoint, committed with each
// page's queue rows, so a restarted leader resumes where the last commit
// left it.

// Event types of the first sync, matching the GraphQL EventType enum.
const (
	SyncEventProgress    = "SYNC_PROGRESS"
	SyncEventRunFinished = "SYNC_RUN_FINISHED"
	SyncEventFailure     = "SYNC_FAILURE"
)

// FirstSyncModules is the order runs start and walk in: accounts before
// contacts, so a contact's account lookup finds its link.
var FirstSyncModules = []mapping.Module{mapping.Accounts, mapping.Contacts, mapping.Products}

// firstSyncDirections are the run directions a sync type allows.
func firstSyncDirections(syncType string) []string {
	var out []string
	for _, d := range Directions(syncType) {
		if d == mapping.DeskToCRM {
			out = append(out, store.DirectionDeskToCRM)
		} else {
			out = append(out, store.DirectionCRMToDesk)
		}
	}
	return out
}

// startFirstSyncRuns starts the runs of a connection in q (the caller's
// transaction): per module and per direction its sync type allows, each
// from now minus the group's first-sync window. started is false when any
// of them was already RUNNING (StartRun returned the existing one).
func startFirstSyncRuns(ctx context.Context, q store.Queryer, v auth.Viewer, c store.Connection) (runs []store.Run, allNew bool, err error) {
	now := time.Now()
	allNew = true
	for _, m := range FirstSyncModules {
		settings, err := store.CurrentSettings(ctx, q, c.OrgID, c.ID, GroupOf(m), now)
		if errors.Is(err, store.ErrNotFound) {
			settings, err = defaultConnectionSettings(v, c.ID, GroupOf(m)), nil
		}
		if err != nil {
			return nil, false, err
		}
		since := now.AddDate(0, 0, -settings.FirstSyncWindowDays)
		for _, dir := range firstSyncDirections(settings.SyncType) {
			run, started, err := store.StartRun(ctx, q, store.NewRun{OrgID: c.OrgID, ConnectionID: c.ID,
				Module: string(m), Direction: dir, Since: since})
			if err != nil {
				return nil, false, err
			}
			allNew = allNew && started
			runs = append(runs, run)
		}
	}
	return runs, allNew, nil
}

// StartFirstSync starts a first sync of an ACTIVE connection on an admin's
// request. It is a ConnectionConflictError while a run of the connection is
// still RUNNING, or when the connection is not ACTIVE.
func (s *ConnectionService) StartFirstSync(ctx context.Context, v auth.Viewer, id int64) ([]store.Run, error) {
	var out []store.Run
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := s.adminConnection(ctx, tx, v, id, "starting a first sync")
		if err != nil {
			return err
		}
		if c.Status != store.ConnectionActive {
			return &ConnectionConflictError{Reason: "cannot start a first sync: the connection is " + c.Status,
				Err: fmt.Errorf("starting a first sync: %w", store.ErrConflict)}
		}
		runs, allNew, err := startFirstSyncRuns(ctx, tx, v, c)
		if err != nil {
			return err
		}
		if !allNew {
			return &ConnectionConflictError{Reason: "a first sync of the connection is still running",
				Err: fmt.Errorf("starting a first sync: %w", store.ErrConflict)}
		}
		out = runs
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "first sync started", "org_id", v.OrgID, "connection_id", id, "runs", len(out))
	return out, nil
}

// SyncRuns returns the connection's first-sync runs, newest first.
func (s *ConnectionService) SyncRuns(ctx context.Context, v auth.Viewer, id int64) ([]store.Run, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "listing sync runs"); err != nil {
		return nil, err
	}
	return store.Runs(ctx, s.db, v.OrgID, id)
}

// FirstSync is the first-sync driver. The leader calls Tick often
// (Engine.FirstSyncEvery, and between its ticks while runs are RUNNING);
// each tick advances every RUNNING run until the run has MaxBacklog records
// waiting in the queue, reports its progress, and finishes the runs whose
// walk is done and whose records were all applied. It keeps nothing that a
// restart needs: the checkpoint, counters and status are the run's row.
type FirstSync struct {
	DB         *sqlx.DB
	Connectors Connectors
	Log        *slog.Logger
	PageSize   int // records per page; default 200
	// MaxPages caps the pages per run per tick; 0 = as many as MaxBacklog
	// and the tick's time allow.
	MaxPages int
	// MaxBacklog is how many of a run's records may wait in the queue
	// before its walk pauses; default 4000. The walk keeps ahead of the
	// workers without filling the queue with a whole org: changes captured
	// meanwhile are not stuck behind it, and what was enqueued is applied
	// soon after it was read.
	MaxBacklog int
	// ProgressEvery spaces a run's SYNC_PROGRESS events; default 1s.
	ProgressEvery time.Duration

	mu       sync.Mutex
	reported map[int64]store.Run // the counters last sent as SYNC_PROGRESS, per run
	sentAt   map[int64]time.Time // when they were sent
}

// Pacing defaults of the walk.
const (
	defaultMaxBacklog = 4000
	// walkBudget bounds one run's walk in one tick, so every run advances
	// and reports within a tick however far a walk could go.
	walkBudget = time.Second
)

// Tick advances every RUNNING run once; it returns how many records it
// enqueued, so the caller can wake its workers.
func (f *FirstSync) Tick(ctx context.Context) (enqueued int, err error) {
	runs, err := store.RunningRuns(ctx, f.DB)
	if err != nil {
		return 0, err
	}
	// A contacts walk waits for the accounts run of its connection and
	// direction to finish: its account lookups resolve through their links.
	accountsRunning := map[string]bool{}
	for _, r := range runs {
		if r.Module == string(mapping.Accounts) {
			accountsRunning[runKey(r.ConnectionID, r.Direction)] = true
		}
	}
	conns := map[int64]store.Connection{}
	var errs []error
	for _, r := range runs {
		c, ok := conns[r.ConnectionID]
		if !ok {
			if c, err = store.ConnectionByID(ctx, f.DB, r.OrgID, r.ConnectionID); err != nil {
				errs = append(errs, err)
				continue
			}
			conns[r.ConnectionID] = c
		}
		n, err := f.advance(ctx, c, r, r.Module == string(mapping.Contacts) && accountsRunning[runKey(r.ConnectionID, r.Direction)])
		enqueued += n
		if err != nil {
			errs = append(errs, fmt.Errorf("first sync run %d: %w", r.ID, err))
		}
	}
	return enqueued, errors.Join(errs...)
}

func runKey(connID int64, direction string) string {
	return strconv.FormatInt(connID, 10) + "/" + direction
}

// advance walks one run a few pages (unless held), then reports or
// finishes it.
func (f *FirstSync) advance(ctx context.Context, c store.Connection, r store.Run, hold bool) (int, error) {
	switch c.Status {
	case store.ConnectionRemoved:
		return 0, f.finish(ctx, r, store.RunCancelled)
	case store.ConnectionActive:
	default:
		return 0, nil // paused or inactive: the walk waits with the workers
	}
	n := 0
	if !r.WalkDone {
		// The walk enqueues once the target's match index caught up
		// (matchindex.go); a held walk reads it meanwhile.
		ready, err := f.indexTarget(ctx, c, r)
		if err != nil {
			return 0, err
		}
		if ready && !hold {
			if r, n, err = f.walk(ctx, c, r); err != nil {
				return n, err
			}
		}
	}
	return n, f.report(ctx, r)
}

// walk reads up to MaxPages pages of the run's source from its checkpoint
// and enqueues the records created since the run's Since, committing each
// page's rows with the new checkpoint.
func (f *FirstSync) walk(ctx context.Context, c store.Connection, r store.Run) (store.Run, int, error) {
	size, backlog := f.PageSize, f.MaxBacklog
	if size <= 0 {
		size = 200
	}
	if backlog <= 0 {
		backlog = defaultMaxBacklog
	}
	deadline := time.Now().Add(walkBudget)
	desk, crm, err := f.Connectors.For(ctx, c)
	if err != nil {
		return r, 0, err
	}
	m := mapping.Module(r.Module)
	src, vm := crm, m.CRMModule()
	if r.Direction == store.DirectionDeskToCRM {
		src, vm = desk, m.DeskModule()
	}
	system := string(src.System())
	cursor := connector.Cursor(r.Checkpoint)
	if cursor == "" {
		cursor = src.StartAt(vm, r.Since)
	}
	total := 0
	for pages := 0; f.MaxPages <= 0 || pages < f.MaxPages; pages++ {
		if pages > 0 && time.Now().After(deadline) {
			break
		}
		if full, err := f.backlogFull(ctx, r, backlog); err != nil || full {
			return r, total, err
		}
		page, err := src.ListChanged(ctx, vm, cursor, size)
		if err != nil {
			return r, total, fmt.Errorf("walking %s %s: %w", system, vm, err)
		}
		runID := r.ID
		var items []store.NewQueueItem
		for _, rec := range page.Records {
			created := rec.CreatedAt
			if created.IsZero() {
				created = rec.ModifiedAt // a source that does not say: modified since counts
			}
			if created.Before(r.Since) {
				continue // B7: only records created within the window
			}
			if created.After(r.StartedAt) {
				// Not the first sync's: created since it began (most by the
				// run of the other direction), so change capture carries it,
				// the poller starting no later than the run (pollModule).
				// Walking it as well would apply it twice.
				continue
			}
			items = append(items, store.NewQueueItem{System: system, Module: r.Module, ExtID: rec.ID,
				Kind: store.KindUpsert, Origin: store.OriginFirstSync, RunID: &runID})
		}
		// The rows and the checkpoint that covers them commit together: a
		// crash re-reads at most the page in flight, never skips one, and
		// never walks again from the start.
		err = store.InTx(ctx, f.DB, func(tx *sqlx.Tx) error {
			if err := store.Enqueue(ctx, tx, r.OrgID, r.ConnectionID, items); err != nil {
				return err
			}
			next, err := store.UpdateRunCheckpoint(ctx, tx, r.OrgID, r.ID, string(page.Next), int64(len(items)), page.Done)
			if err != nil {
				return err
			}
			if page.Done {
				// The total is known once the walk ends: what it enqueued
				// (the vendors' counts cannot apply the created-since filter).
				if next, err = store.SetRunTotal(ctx, tx, r.OrgID, r.ID, next.Enqueued); err != nil {
					return err
				}
			}
			r = next
			return nil
		})
		if errors.Is(err, store.ErrConflict) {
			return r, total, nil // cancelled or finished meanwhile
		}
		if err != nil {
			return r, total, err
		}
		total += len(items)
		cursor = page.Next
		if page.Done {
			break
		}
	}
	return r, total, nil
}

// backlogFull says whether the run has backlog records waiting in the
// queue. The counters tell without a query while they are below it; at it,
// the queue is counted, since rows coalesced or taken over by another run
// never reach done and would hold the walk forever.
func (f *FirstSync) backlogFull(ctx context.Context, r store.Run, backlog int) (bool, error) {
	if r.Enqueued-r.Done < int64(backlog) {
		return false, nil
	}
	n, err := store.QueuedForRun(ctx, f.DB, r.ID)
	return n >= int64(backlog), err
}

// report finishes a run whose walk is done and whose records were all
// applied, with SYNC_RUN_FINISHED; otherwise it sends SYNC_PROGRESS when
// the counters moved since the last report. Either happens in one
// transaction with the event.
func (f *FirstSync) report(ctx context.Context, r store.Run) error {
	var sent *store.Run
	err := store.InTx(ctx, f.DB, func(tx *sqlx.Tx) error {
		cur, err := store.RunByID(ctx, tx, r.OrgID, r.ID)
		if err != nil {
			return err
		}
		if cur.Status != store.RunRunning {
			return nil
		}
		if cur.WalkDone {
			finished := cur.Done >= cur.Enqueued
			if !finished {
				// Records counted by another run, or coalesced into one row
				// when the walk met them twice, never reach Done: the run is
				// over once none of its rows wait.
				var waiting bool
				if err := tx.GetContext(ctx, &waiting, `SELECT EXISTS (SELECT 1 FROM change_queue WHERE run_id = $1)`, cur.ID); err != nil {
					return fmt.Errorf("checking the queue of sync run %d: %w", cur.ID, err)
				}
				finished = !waiting
			}
			if finished {
				done, err := store.FinishRun(ctx, tx, cur.OrgID, cur.ID, store.RunDone)
				if err != nil {
					return err
				}
				if _, err := store.InsertEvent(ctx, tx, runEvent(SyncEventRunFinished, done)); err != nil {
					return err
				}
				sent = &done
				return nil
			}
		}
		every := f.ProgressEvery
		if every <= 0 {
			every = time.Second
		}
		f.mu.Lock()
		last, ok := f.reported[cur.ID]
		at := f.sentAt[cur.ID]
		f.mu.Unlock()
		if ok && (sameCounters(last, cur) || time.Since(at) < every) {
			return nil
		}
		if _, err := store.InsertEvent(ctx, tx, runEvent(SyncEventProgress, cur)); err != nil {
			return err
		}
		sent = &cur
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return nil // another driver finished it first
	}
	if err != nil {
		return err
	}
	if sent != nil {
		f.mu.Lock()
		if f.reported == nil {
			f.reported, f.sentAt = map[int64]store.Run{}, map[int64]time.Time{}
		}
		if sent.Status == store.RunRunning {
			f.reported[sent.ID], f.sentAt[sent.ID] = *sent, time.Now()
		} else {
			delete(f.reported, sent.ID)
			delete(f.sentAt, sent.ID)
			if f.Log != nil {
				f.Log.Info("first sync run finished", "org_id", sent.OrgID, "connection_id", sent.ConnectionID,
					"run_id", sent.ID, "module", sent.Module, "direction", sent.Direction, "enqueued", sent.Enqueued,
					"added", sent.Added, "updated", sent.Updated, "failed", sent.Failed)
			}
		}
		f.mu.Unlock()
	}
	return nil
}

// finish ends a run (a removed connection's) with its event.
func (f *FirstSync) finish(ctx context.Context, r store.Run, status string) error {
	err := store.InTx(ctx, f.DB, func(tx *sqlx.Tx) error {
		done, err := store.FinishRun(ctx, tx, r.OrgID, r.ID, status)
		if err != nil {
			return err
		}
		_, err = store.InsertEvent(ctx, tx, runEvent(SyncEventRunFinished, done))
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

func sameCounters(a, b store.Run) bool {
	return a.Enqueued == b.Enqueued && a.Done == b.Done && a.Added == b.Added && a.Updated == b.Updated &&
		a.Failed == b.Failed && a.Total == b.Total && a.WalkDone == b.WalkDone
}

// runEventPayload is the JSON of SYNC_PROGRESS and SYNC_RUN_FINISHED.
type runEventPayload struct {
	ConnectionID string `json:"connectionId"` // the connection's global id
	RunID        string `json:"runId"`        // the run's global id
	Module       string `json:"module"`       // the SyncModule enum value
	Direction    string `json:"direction"`
	Status       string `json:"status"`
	WalkDone     bool   `json:"walkDone"`
	Total        int64  `json:"total"`
	Enqueued     int64  `json:"enqueued"`
	Done         int64  `json:"done"`
	Added        int64  `json:"added"`
	Updated      int64  `json:"updated"`
	Failed       int64  `json:"failed"`
}

func runEvent(typ string, r store.Run) store.NewEvent {
	return store.NewEvent{OrgID: r.OrgID, Type: typ, Permission: string(auth.PermManageConnections),
		SubjectID: connectionSubject(r.ConnectionID), Refs: store.EventRefs{Connection: r.ConnectionID}, Payload: runEventPayload{
			ConnectionID: GlobalID("Connection", r.ConnectionID), RunID: GlobalID("SyncRun", r.ID),
			Module: moduleEnum(r.Module), Direction: r.Direction, Status: r.Status, WalkDone: r.WalkDone,
			Total: r.Total, Enqueued: r.Enqueued, Done: r.Done, Added: r.Added, Updated: r.Updated, Failed: r.Failed,
		}}
}

// GlobalID is the API's id of a row ("Type:rowid", base64url), as the
// resolvers spell it, for event payloads.
func GlobalID(typeName string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(typeName + ":" + strconv.FormatInt(id, 10)))
}

func moduleEnum(m string) string {
	switch mapping.Module(m) {
	case mapping.Accounts:
		return "ACCOUNTS"
	case mapping.Products:
		return "PRODUCTS"
	}
	return "CONTACTS"
}
