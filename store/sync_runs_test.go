package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestRunsResumeCheckpointAndFinish(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other := newOrg(t, db, "other")
	since := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	nr := store.NewRun{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", Direction: store.DirectionCRMToDesk, Since: since, Total: 120}

	run, started, err := store.StartRun(ctx, db, nr)
	if err != nil || !started || run.Status != store.RunRunning || !run.Since.Equal(since) || run.Total != 120 {
		t.Fatalf("StartRun = %+v, started %v, %v", run, started, err)
	}
	// A restarted leader resumes the same run.
	again, started, err := store.StartRun(ctx, db, nr)
	if err != nil || started || again.ID != run.ID {
		t.Fatalf("second StartRun = %+v, started %v, %v; want the running one", again, started, err)
	}
	// The other direction is another run.
	back := nr
	back.Direction = store.DirectionDeskToCRM
	if r, started, err := store.StartRun(ctx, db, back); err != nil || !started || r.ID == run.ID {
		t.Fatalf("StartRun for the other direction = %+v, %v, %v", r, started, err)
	}

	run, err = store.UpdateRunCheckpoint(ctx, db, org.ID, run.ID, "page-2", 100, false)
	if err != nil || run.Checkpoint != "page-2" || run.Enqueued != 100 || run.WalkDone {
		t.Fatalf("UpdateRunCheckpoint = %+v, %v", run, err)
	}
	run, err = store.UpdateRunCheckpoint(ctx, db, org.ID, run.ID, "page-3", 20, true)
	if err != nil || run.Enqueued != 120 || !run.WalkDone {
		t.Fatalf("last UpdateRunCheckpoint = %+v, %v", run, err)
	}
	if run, err = store.SetRunTotal(ctx, db, org.ID, run.ID, 121); err != nil || run.Total != 121 {
		t.Fatalf("SetRunTotal = %+v, %v", run, err)
	}
	for range 2 {
		run, err = store.AddRunProgress(ctx, db, org.ID, run.ID, store.RunProgress{Done: 60, Added: 40, Updated: 15, Failed: 5})
		if err != nil {
			t.Fatal(err)
		}
	}
	if run.Done != 120 || run.Added != 80 || run.Updated != 30 || run.Failed != 10 {
		t.Fatalf("progress = %+v", run)
	}
	run, err = store.FinishRun(ctx, db, org.ID, run.ID, store.RunDone)
	if err != nil || run.Status != store.RunDone || run.FinishedAt == nil {
		t.Fatalf("FinishRun = %+v, %v", run, err)
	}
	if _, err := store.FinishRun(ctx, db, org.ID, run.ID, store.RunCancelled); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("finishing twice = %v, want ErrConflict", err)
	}
	if _, err := store.UpdateRunCheckpoint(ctx, db, org.ID, run.ID, "page-4", 1, false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("checkpoint of a finished run = %v, want ErrConflict", err)
	}
	if _, err := store.FinishRun(ctx, db, org.ID, run.ID, store.RunRunning); err == nil {
		t.Fatal("FinishRun accepted RUNNING as a final status")
	}
	// Late items of a finished run still count.
	if run, err = store.AddRunProgress(ctx, db, org.ID, run.ID, store.RunProgress{Done: 1, Failed: 1}); err != nil || run.Done != 121 {
		t.Fatalf("AddRunProgress after finishing = %+v, %v", run, err)
	}

	// A finished run does not block a new one (a new list view, say).
	next, started, err := store.StartRun(ctx, db, nr)
	if err != nil || !started || next.ID == run.ID {
		t.Fatalf("StartRun after DONE = %+v, %v, %v; want a new run", next, started, err)
	}
	runs, err := store.Runs(ctx, db, org.ID, conn.ID)
	if err != nil || len(runs) != 3 || runs[0].ID != next.ID {
		t.Fatalf("Runs = %+v, %v; want 3, newest first", runs, err)
	}
	running, err := store.RunningRuns(ctx, db)
	if err != nil || len(running) != 2 {
		t.Fatalf("RunningRuns = %+v, %v; want 2", running, err)
	}

	// Another org sees and moves none of it.
	if _, err := store.RunByID(ctx, db, other.ID, next.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RunByID from another org = %v", err)
	}
	if rs, err := store.Runs(ctx, db, other.ID, conn.ID); err != nil || len(rs) != 0 {
		t.Fatalf("Runs from another org = %+v, %v", rs, err)
	}
	if _, err := store.UpdateRunCheckpoint(ctx, db, other.ID, next.ID, "x", 1, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateRunCheckpoint from another org = %v", err)
	}
	if _, err := store.AddRunProgress(ctx, db, other.ID, next.ID, store.RunProgress{Done: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddRunProgress from another org = %v", err)
	}
	if _, err := store.SetRunTotal(ctx, db, other.ID, next.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetRunTotal from another org = %v", err)
	}
	if _, err := store.FinishRun(ctx, db, other.ID, next.ID, store.RunCancelled); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FinishRun from another org = %v", err)
	}
	hijack := nr
	hijack.OrgID = other.ID
	if _, _, err := store.StartRun(ctx, db, hijack); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StartRun on another org's connection (with a run going) = %v, want ErrNotFound", err)
	}
	hijack.Module = "accounts"
	if _, _, err := store.StartRun(ctx, db, hijack); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StartRun on another org's connection = %v, want ErrNotFound", err)
	}
}

func TestConcurrentStartRunStartsOne(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	nr := store.NewRun{OrgID: org.ID, ConnectionID: conn.ID, Module: "accounts", Direction: store.DirectionCRMToDesk, Since: time.Now().AddDate(-1, 0, 0)}
	const racers = 8
	var wg sync.WaitGroup
	ids := make([]int64, racers)
	starts := make([]bool, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r store.Run
			r, starts[i], errs[i] = store.StartRun(ctx, db, nr)
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	started := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("StartRun: %v", errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("racers got runs %v, want one", ids)
		}
		if starts[i] {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d racers started the run, want 1", started)
	}
}

// Cancelling drops only what the cancelled runs queued and nobody touched
// since: a row a worker holds, a row captured again, and another run's row
// stay.
func TestCancelRunsDropsOnlyUntouchedRows(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	run, _, err := store.StartRun(ctx, db, store.NewRun{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts",
		Direction: store.DirectionCRMToDesk, Since: time.Now().AddDate(-1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	item := func(id, origin string, runID *int64) store.NewQueueItem {
		return store.NewQueueItem{System: "zoho_crm", Module: "Contacts", ExtID: id, Kind: store.KindUpsert, Origin: origin, RunID: runID}
	}
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{
		item("untouched", store.OriginFirstSync, &run.ID), item("held", store.OriginFirstSync, &run.ID),
		item("recaptured", store.OriginFirstSync, &run.ID), item("webhook", store.OriginWebhook, nil),
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{item("recaptured", store.OriginPoll, nil)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE change_queue SET leased_by = 'w1', lease_until = now() + interval '1 minute' WHERE ext_id = 'held'`); err != nil {
		t.Fatal(err)
	}

	runs, dropped, err := store.CancelRuns(ctx, db, org.ID, conn.ID)
	if err != nil || len(runs) != 1 || runs[0].Status != store.RunCancelled || runs[0].FinishedAt == nil || dropped != 1 {
		t.Fatalf("CancelRuns = %+v, dropped %d, %v", runs, dropped, err)
	}
	var left []string
	if err := db.Select(&left, `SELECT ext_id FROM change_queue ORDER BY ext_id`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, ",") != "held,recaptured,webhook" {
		t.Fatalf("rows left: %v", left)
	}
	if runs, dropped, err := store.CancelRuns(ctx, db, org.ID, conn.ID); err != nil || len(runs) != 0 || dropped != 0 {
		t.Fatalf("second CancelRuns = %+v, %d, %v", runs, dropped, err)
	}
	// Another org cannot cancel this connection's runs.
	other := newOrg(t, db, "other")
	if _, _, err := store.StartRun(ctx, db, store.NewRun{OrgID: org.ID, ConnectionID: conn.ID, Module: "accounts",
		Direction: store.DirectionCRMToDesk, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if runs, _, err := store.CancelRuns(ctx, db, other.ID, conn.ID); err != nil || len(runs) != 0 {
		t.Fatalf("CancelRuns from another org = %+v, %v", runs, err)
	}
}
