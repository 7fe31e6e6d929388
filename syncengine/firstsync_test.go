package syncengine_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// recordingConnector notes the cursors its walks start from.
type recordingConnector struct {
	connector.Connector
	mu      sync.Mutex
	cursors []connector.Cursor
}

func (r *recordingConnector) ListChanged(ctx context.Context, m connector.Module, after connector.Cursor, limit int) (connector.ChangePage, error) {
	r.mu.Lock()
	r.cursors = append(r.cursors, after)
	r.mu.Unlock()
	return r.Connector.ListChanged(ctx, m, after, limit)
}

func (r *recordingConnector) calls() []connector.Cursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]connector.Cursor(nil), r.cursors...)
}

// queued returns the run's queue rows: count, and how many were captured
// more than once (version moved).
func queued(t *testing.T, f *engineFixture, runID int64) (rows, repeated int) {
	t.Helper()
	if err := f.db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE version > 1) FROM change_queue WHERE run_id = $1`, runID).
		Scan(&rows, &repeated); err != nil {
		t.Fatal(err)
	}
	return rows, repeated
}

// A first sync's walk survives its driver: a new driver (a restarted or
// newly elected leader) resumes from the committed checkpoint, re-reading
// nothing and enqueueing nothing twice; the run then finishes once the
// workers applied everything it queued.
func TestFirstSyncResumesFromItsCheckpoint(t *testing.T) {
	f := newEngineFixture(t)
	sc := f.w.Connectors.(sandboxConnectors)
	rec := &recordingConnector{Connector: sc.crm}
	conns := sandboxConnectors{desk: sc.desk, crm: rec}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	since := time.Now().AddDate(-1, 0, 0)
	run, started, err := store.StartRun(f.ctx, f.db, store.NewRun{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID,
		Module: "contacts", Direction: store.DirectionCRMToDesk, Since: since})
	if err != nil || !started {
		t.Fatalf("StartRun = %v, %v", started, err)
	}

	// One page, then the driver is gone.
	first := &syncengine.FirstSync{DB: f.db, Connectors: conns, Log: log, PageSize: 5, MaxPages: 1}
	n, err := first.Tick(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	afterOne, err := store.RunByID(f.ctx, f.db, f.conn.OrgID, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if afterOne.Checkpoint == "" || afterOne.WalkDone || afterOne.Enqueued != int64(n) {
		t.Fatalf("after one page: checkpoint %q, walk done %v, enqueued %d (tick said %d)", afterOne.Checkpoint, afterOne.WalkDone, afterOne.Enqueued, n)
	}
	if rows, _ := queued(t, f, run.ID); int64(rows) != afterOne.Enqueued {
		t.Fatalf("%d rows queued for the run, it counts %d", rows, afterOne.Enqueued)
	}
	if calls := rec.calls(); len(calls) != 1 || calls[0] != sc.crm.StartAt("Contacts", run.Since) {
		t.Fatalf("first driver's reads: %q", calls)
	}

	// A new driver picks the run up at its checkpoint and walks to the end.
	second := &syncengine.FirstSync{DB: f.db, Connectors: conns, Log: log, PageSize: 5, MaxPages: 3}
	var cur store.Run
	for range 50 {
		if _, err := second.Tick(f.ctx); err != nil {
			t.Fatal(err)
		}
		if cur, err = store.RunByID(f.ctx, f.db, f.conn.OrgID, run.ID); err != nil {
			t.Fatal(err)
		}
		if cur.WalkDone {
			break
		}
	}
	if !cur.WalkDone {
		t.Fatal("the walk never ended")
	}
	calls := rec.calls()
	if calls[1] != connector.Cursor(afterOne.Checkpoint) {
		t.Fatalf("the new driver started at %q, not the checkpoint %q", calls[1], afterOne.Checkpoint)
	}
	for i, c := range calls[1:] {
		if c == calls[0] {
			t.Fatalf("read %d re-walked the first page", i+1)
		}
	}
	rows, repeated := queued(t, f, run.ID)
	if int64(rows) != cur.Enqueued || repeated != 0 {
		t.Fatalf("%d rows (%d captured twice) for %d enqueued", rows, repeated, cur.Enqueued)
	}
	// Exactly the CRM's contacts created within the window were queued.
	crm := f.sb.CRM("us")
	want := 0
	for _, id := range crm.IDs("Contacts") {
		r, _ := crm.Record("Contacts", id)
		created, err := time.Parse(time.RFC3339, r["Created_Time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if !created.Before(run.Since) {
			want++
		}
	}
	if want == 0 || want == len(crm.IDs("Contacts")) || cur.Enqueued != int64(want) || cur.Total != cur.Enqueued {
		t.Fatalf("enqueued %d (total %d) of %d contacts; %d were created in the window", cur.Enqueued, cur.Total, len(crm.IDs("Contacts")), want)
	}

	// The workers apply the records and count them into the run; the
	// driver then finishes it.
	f.drain(t)
	if _, err := second.Tick(f.ctx); err != nil {
		t.Fatal(err)
	}
	if cur, err = store.RunByID(f.ctx, f.db, f.conn.OrgID, run.ID); err != nil {
		t.Fatal(err)
	}
	if cur.Status != store.RunDone || cur.Done != cur.Enqueued || cur.Added+cur.Updated+cur.Failed == 0 || cur.FinishedAt == nil {
		t.Fatalf("run after applying: %+v", cur)
	}
	var progress, finished int
	if err := f.db.QueryRow(`SELECT count(*) FILTER (WHERE type = 'SYNC_PROGRESS'), count(*) FILTER (WHERE type = 'SYNC_RUN_FINISHED')
		FROM events WHERE org_id = $1`, f.conn.OrgID).Scan(&progress, &finished); err != nil {
		t.Fatal(err)
	}
	if progress == 0 || finished != 1 {
		t.Fatalf("events: %d SYNC_PROGRESS, %d SYNC_RUN_FINISHED", progress, finished)
	}
}

// A record created after a first sync began is not the walk's (the other
// direction's creations would otherwise be applied twice): the poller
// carries it, since a module polled for the first time starts no later
// than its first sync did.
func TestFirstSyncLeavesRecordsCreatedMeanwhileToCapture(t *testing.T) {
	f := newEngineFixture(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, started, err := store.StartRun(f.ctx, f.db, store.NewRun{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID,
		Module: "contacts", Direction: store.DirectionCRMToDesk, Since: time.Now().AddDate(-1, 0, 0)})
	if err != nil || !started {
		t.Fatalf("StartRun = %v, %v", started, err)
	}
	time.Sleep(1100 * time.Millisecond) // CRM times have second precision
	crmID, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Meanwhile", "Email": "meanwhile@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	walker := &syncengine.FirstSync{DB: f.db, Connectors: f.w.Connectors, Log: log, PageSize: 50}
	for range 50 {
		if _, err := walker.Tick(f.ctx); err != nil {
			t.Fatal(err)
		}
		if cur, err := store.RunByID(f.ctx, f.db, f.conn.OrgID, run.ID); err != nil {
			t.Fatal(err)
		} else if cur.WalkDone {
			break
		}
	}
	var walked []string
	if err := f.db.Select(&walked, `SELECT ext_id FROM change_queue WHERE run_id = $1`, run.ID); err != nil {
		t.Fatal(err)
	}
	if len(walked) == 0 || slices.Contains(walked, crmID) {
		t.Fatalf("the walk queued %d records, the one created meanwhile among them: %v", len(walked), slices.Contains(walked, crmID))
	}
	f.drain(t)
	if _, ok := f.sb.Desk("us").ContactByEmail("meanwhile@new.example"); ok {
		t.Fatal("the contact created meanwhile reached the desk before anything captured it")
	}
	// The poller's first pass places its cursors; the next reads from the
	// run's start and finds the contact.
	p := &syncengine.Poller{DB: f.db, Connectors: f.w.Connectors, Log: log, PageSize: 50}
	for range 2 {
		if _, err := p.PollConnection(f.ctx, f.conn); err != nil {
			t.Fatal(err)
		}
	}
	f.drain(t)
	if _, ok := f.sb.Desk("us").ContactByEmail("meanwhile@new.example"); !ok {
		t.Fatal("the contact created during the first sync never reached the desk")
	}
}
