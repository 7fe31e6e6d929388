package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// kbFixture is an org, its connection and its KB settings, due at due.
func kbFixture(t *testing.T, db *sqlx.DB, slug string, due time.Time) (store.Org, store.Connection, store.KBSettings) {
	t.Helper()
	org, conn := orgWithConnection(t, db, slug)
	k, err := store.PutKBSettings(context.Background(), db, store.KBSettings{OrgID: org.ID, ConnectionID: conn.ID,
		SalesIQDC: "us", SalesIQScreen: "zylker", Permission: store.KBPermissionAll, ArticleStatus: store.KBStatusPublished,
		Interval: store.KBDaily, TimeZone: "Asia/Tokyo", Enabled: true, NextRunAt: &due})
	if err != nil {
		t.Fatalf("PutKBSettings: %v", err)
	}
	return org, conn, k
}

func TestKBSettingsAreGuardedByOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	due := time.Date(2026, 1, 31, 3, 0, 0, 0, time.UTC)
	org, conn, k := kbFixture(t, db, "acme", due)
	other := newOrg(t, db, "globex")

	if _, err := store.GetKBSettings(ctx, db, other.ID, conn.ID, false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org reads: %v", err)
	}
	stolen := k
	stolen.OrgID, stolen.SalesIQScreen = other.ID, "evil"
	if _, err := store.PutKBSettings(ctx, db, stolen); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org overwrites: %v", err)
	}
	got, err := store.GetKBSettings(ctx, db, org.ID, conn.ID, false)
	if err != nil || got.SalesIQScreen != "zylker" || !got.NextRunAt.Equal(due) {
		t.Fatalf("settings = %+v, %v", got, err)
	}
	// A disabled sync has no next run.
	bad := k
	bad.Enabled = false
	if _, err := store.PutKBSettings(ctx, db, bad); err == nil {
		t.Fatal("disabled with a next run was accepted")
	}
	// A category belongs to one department at most.
	err = store.ReplaceKBCategories(ctx, db, org.ID, conn.ID, []store.KBCategory{{DeskCategoryID: "c1", ChatDepartmentID: "d1"}, {DeskCategoryID: "c2", ChatDepartmentID: "d1"}, {DeskCategoryID: "c1", ChatDepartmentID: "d2"}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a category in two departments: %v", err)
	}
	if err := store.ReplaceKBCategories(ctx, db, org.ID, conn.ID, []store.KBCategory{{DeskCategoryID: "c2", ChatDepartmentID: "d2"}, {DeskCategoryID: "c1", ChatDepartmentID: "d1"}}); err != nil {
		t.Fatal(err)
	}
	cats, err := store.GetKBCategories(ctx, db, org.ID, conn.ID)
	if err != nil || len(cats) != 2 || cats[0].DeskCategoryID != "c2" {
		t.Fatalf("categories (in the admin's order) = %+v, %v", cats, err)
	}
	if cats, _ := store.GetKBCategories(ctx, db, other.ID, conn.ID); len(cats) != 0 {
		t.Fatalf("another org sees %+v", cats)
	}
}

// Due schedules are claimed once even by two transactions at once: the
// second skips the row the first holds, and sees it moved once committed.
func TestDueKBSchedulesAreClaimedOnce(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 31, 3, 0, 30, 0, time.UTC)
	_, _, a := kbFixture(t, db, "acme", now.Add(-time.Minute))
	_, _, b := kbFixture(t, db, "globex", now.Add(-time.Hour))
	kbFixture(t, db, "later", now.Add(time.Hour))

	tx1, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	due1, err := store.DueKBSchedules(ctx, tx1, now, 1)
	if err != nil || len(due1) != 1 || due1[0].ConnectionID != b.ConnectionID {
		t.Fatalf("first claim = %+v, %v (the oldest first)", due1, err)
	}
	tx2, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	due2, err := store.DueKBSchedules(ctx, tx2, now, 10)
	if err != nil || len(due2) != 1 || due2[0].ConnectionID != a.ConnectionID {
		t.Fatalf("second claim while the first holds its row = %+v, %v", due2, err)
	}
	next := now.Add(24 * time.Hour)
	if _, err := store.SetKBSchedule(ctx, tx1, b.OrgID, b.ConnectionID, &next, &now); err != nil {
		t.Fatal(err)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx2.Rollback(); err != nil {
		t.Fatal(err)
	}
	due3, err := store.DueKBSchedules(ctx, db, now, 10)
	if err != nil || len(due3) != 1 || due3[0].ConnectionID != a.ConnectionID {
		t.Fatalf("after the first committed = %+v, %v", due3, err)
	}
	k, _ := store.GetKBSettings(ctx, db, b.OrgID, b.ConnectionID, false)
	if !k.NextRunAt.Equal(next) || !k.FirstSyncAt.Equal(now) {
		t.Fatalf("moved schedule = %+v", k)
	}
	// The first sync is recorded once.
	later := now.Add(time.Hour)
	if k, _ = store.SetKBSchedule(ctx, db, b.OrgID, b.ConnectionID, &next, &later); !k.FirstSyncAt.Equal(now) {
		t.Fatalf("first sync moved to %s", k.FirstSyncAt)
	}
	// Connections that are not ACTIVE are not due.
	if _, err := db.Exec(`UPDATE connections SET status = 'INACTIVE' WHERE id = $1`, a.ConnectionID); err != nil {
		t.Fatal(err)
	}
	if due, _ := store.DueKBSchedules(ctx, db, now, 10); len(due) != 0 {
		t.Fatalf("an inactive connection is due: %+v", due)
	}
}

// One queued or running run per connection, one run per slot, and each
// queued run starts once however many replicas claim it.
func TestKBRunsStartOnce(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 31, 3, 0, 30, 0, time.UTC)
	org, conn, _ := kbFixture(t, db, "acme", now)
	slot := now.Add(-30 * time.Second)
	run, err := store.InsertKBRun(ctx, db, store.NewKBRun{OrgID: org.ID, ConnectionID: conn.ID, Trigger: store.KBTriggerScheduled,
		ScheduledFor: &slot, CreatedAt: now})
	if err != nil || run.Status != store.KBRunQueued {
		t.Fatalf("queueing = %+v, %v", run, err)
	}
	if _, err := store.InsertKBRun(ctx, db, store.NewKBRun{OrgID: org.ID, ConnectionID: conn.ID, Trigger: store.KBTriggerManual,
		CreatedAt: now}); !errors.Is(err, store.ErrKBRunActive) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second active run: %v", err)
	}
	var wg sync.WaitGroup
	claimed := make([]int64, 8)
	for i := range claimed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := store.ClaimKBRun(ctx, db, 0, "replica", now)
			if err == nil {
				claimed[i] = r.ID
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, id := range claimed {
		if id == run.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the run was started %d times: %v", n, claimed)
	}
	if err := store.AddKBRunCounts(ctx, db, run.ID, 2, store.KBCounts{Listed: 5}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("counting under another claim's attempt: %v", err)
	}
	if err := store.AddKBRunCounts(ctx, db, run.ID, 1, store.KBCounts{Listed: 5, Added: 3, Unchanged: 2}); err != nil {
		t.Fatal(err)
	}
	if err := store.BeatKBRun(ctx, db, run.ID, 1); err != nil {
		t.Fatal(err)
	}
	fin, err := store.FinishKBRun(ctx, db, run.ID, 1, store.KBRunDone, nil, now.Add(time.Minute))
	if err != nil || fin.Status != store.KBRunDone || fin.Added != 3 || fin.Listed != 5 || fin.Attempts != 1 {
		t.Fatalf("finished = %+v, %v", fin, err)
	}
	if err := store.AddKBRunCounts(ctx, db, run.ID, 1, store.KBCounts{Added: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("counting a finished run: %v", err)
	}
	// The slot has its run for good, even once finished.
	if _, err := store.InsertKBRun(ctx, db, store.NewKBRun{OrgID: org.ID, ConnectionID: conn.ID, Trigger: store.KBTriggerScheduled,
		ScheduledFor: &slot, CreatedAt: now}); !errors.Is(err, store.ErrKBSlotTaken) {
		t.Fatalf("a second run for the slot: %v", err)
	}

	// A run whose replica died is queued again, then failed for good.
	manual, err := store.InsertKBRun(ctx, db, store.NewKBRun{OrgID: org.ID, ConnectionID: conn.ID, Trigger: store.KBTriggerManual, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		if _, err := store.ClaimKBRun(ctx, db, manual.ID, "dies", now); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if requeued, failed, err := store.RequeueStaleKBRuns(ctx, db, time.Hour, 3, now); err != nil || requeued+failed != 0 {
			t.Fatalf("a fresh heartbeat is not stale: %d %d %v", requeued, failed, err)
		}
		if _, err := db.Exec(`UPDATE kb_sync_runs SET heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, manual.ID); err != nil {
			t.Fatal(err)
		}
		requeued, failed, err := store.RequeueStaleKBRuns(ctx, db, 2*time.Minute, 3, now)
		if err != nil || (attempt < 3 && requeued != 1) || (attempt == 3 && failed != 1) {
			t.Fatalf("attempt %d: requeued %d failed %d %v", attempt, requeued, failed, err)
		}
		// The runner taken for dead cannot count or finish any more.
		if err := store.BeatKBRun(ctx, db, manual.ID, attempt); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attempt %d: a dead runner's heartbeat: %v", attempt, err)
		}
		if _, err := store.FinishKBRun(ctx, db, manual.ID, attempt, store.KBRunDone, nil, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attempt %d: a dead runner finished the run: %v", attempt, err)
		}
	}
	if r, _ := store.GetKBRun(ctx, db, org.ID, manual.ID); r.Status != store.KBRunFailed || r.Error == nil {
		t.Fatalf("after three deaths = %+v", r)
	}
	if runs, _ := store.ListKBRuns(ctx, db, org.ID, conn.ID, 1, 0); len(runs) != 1 || runs[0].ID != manual.ID {
		t.Fatalf("newest first = %+v", runs)
	}
	if runs, _ := store.ListKBRuns(ctx, db, org.ID, conn.ID, 10, manual.ID); len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("the page before the newest = %+v", runs)
	}
	if n, err := store.PruneKBRuns(ctx, db, now.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("pruned %d: %v", n, err)
	}
}

// Links: a pending create is kept by later writes, saved with its id and
// hash, seen by a run, and the unseen ones page in order.
func TestKBArticleLinks(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 31, 3, 0, 30, 0, time.UTC)
	org, conn, _ := kbFixture(t, db, "acme", now)
	mk := func(id string) store.KBArticleLink {
		return store.KBArticleLink{DeskArticleID: id, DeskCategoryID: "c1", ChatDepartmentID: "d1", SalesIQCategoryID: "s1", Status: "published"}
	}
	if err := store.PendKBLinks(ctx, db, org.ID, conn.ID, []store.KBArticleLink{mk("a1"), mk("a2"), mk("a3")}); err != nil {
		t.Fatal(err)
	}
	if total, pending, _ := store.CountKBLinks(ctx, db, org.ID, conn.ID); total != 3 || pending != 3 {
		t.Fatalf("pending: %d of %d", pending, total)
	}
	done := mk("a1")
	id, mod := "900", now.Add(-time.Hour)
	done.SalesIQArticleID, done.ContentHash, done.DeskModifiedAt = &id, []byte{1, 2, 3}, &mod
	if err := store.SaveKBLinks(ctx, db, org.ID, conn.ID, 7, now, []store.KBArticleLink{done}); err != nil {
		t.Fatal(err)
	}
	// Pending again (a later run) keeps the saved link.
	if err := store.PendKBLinks(ctx, db, org.ID, conn.ID, []store.KBArticleLink{mk("a1")}); err != nil {
		t.Fatal(err)
	}
	got, err := store.GetKBLinks(ctx, db, org.ID, conn.ID, []string{"a1", "zz"})
	if err != nil || len(got) != 1 || got[0].SalesIQArticleID == nil || *got[0].SalesIQArticleID != "900" ||
		!bytes.Equal(got[0].ContentHash, []byte{1, 2, 3}) || !got[0].DeskModifiedAt.Equal(mod) || *got[0].SeenRun != 7 {
		t.Fatalf("link = %+v, %v", got, err)
	}
	// Another desk article may not take the same SalesIQ id.
	dup := mk("a2")
	dup.SalesIQArticleID = &id
	if err := store.SaveKBLinks(ctx, db, org.ID, conn.ID, 7, now, []store.KBArticleLink{dup}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("one SalesIQ article for two desk articles: %v", err)
	}
	if err := store.MarkKBLinksSeen(ctx, db, org.ID, conn.ID, 8, []string{"a2"}); err != nil {
		t.Fatal(err)
	}
	unseen, err := store.UnseenKBLinks(ctx, db, org.ID, conn.ID, 8, "", 1)
	if err != nil || len(unseen) != 1 || unseen[0].DeskArticleID != "a1" {
		t.Fatalf("unseen page 1 = %+v, %v", unseen, err)
	}
	unseen, _ = store.UnseenKBLinks(ctx, db, org.ID, conn.ID, 8, "a1", 10)
	if len(unseen) != 1 || unseen[0].DeskArticleID != "a3" {
		t.Fatalf("unseen page 2 = %+v", unseen)
	}
	other := newOrg(t, db, "globex")
	if err := store.DeleteKBLinks(ctx, db, other.ID, conn.ID, []string{"a1", "a2", "a3"}); err != nil {
		t.Fatal(err)
	}
	if total, _, _ := store.CountKBLinks(ctx, db, org.ID, conn.ID); total != 3 {
		t.Fatalf("another org deleted links: %d left", total)
	}
	if err := store.DeleteKBLinks(ctx, db, org.ID, conn.ID, []string{"a1", "a3"}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutKBCategoryLink(ctx, db, org.ID, conn.ID, "c1", "s1", "Root › C1"); err != nil {
		t.Fatal(err)
	}
	if cl, _ := store.GetKBCategoryLinks(ctx, db, org.ID, conn.ID); cl["c1"] != "s1" {
		t.Fatalf("category links = %+v", cl)
	}
	if err := store.ForgetKBLinks(ctx, db, org.ID, conn.ID); err != nil {
		t.Fatal(err)
	}
	total, _, _ := store.CountKBLinks(ctx, db, org.ID, conn.ID)
	cl, _ := store.GetKBCategoryLinks(ctx, db, org.ID, conn.ID)
	if total != 0 || len(cl) != 0 {
		t.Fatalf("after forgetting: %d links, %+v", total, cl)
	}
}

// Failures: one open line per article, counted attempts, resolution, and
// retry marking only the org's open ones.
func TestKBFailures(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 31, 3, 0, 30, 0, time.UTC)
	org, conn, _ := kbFixture(t, db, "acme", now)
	fail := func(article string, at time.Time) store.KBFailure {
		f, err := store.RecordKBFailure(ctx, db, store.NewKBFailure{OrgID: org.ID, ConnectionID: conn.ID, DeskArticleID: article,
			Operation: store.KBOpCreate, Reason: "param_invalid", Message: "no", RunID: 1, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := fail("a1", now)
	fail("a2", now.Add(time.Second))
	again := fail("a1", now.Add(2*time.Second))
	if again.ID != a.ID || again.Attempts != 2 {
		t.Fatalf("repeat = %+v", again)
	}
	list, _ := store.ListKBFailures(ctx, db, org.ID, conn.ID, false, 10, 0)
	if len(list) != 2 || list[0].DeskArticleID != "a2" {
		t.Fatalf("in time order = %+v", list)
	}
	other := newOrg(t, db, "globex")
	if fs, _ := store.KBFailuresForRetry(ctx, db, other.ID, conn.ID, nil, now); len(fs) != 0 {
		t.Fatalf("another org retried %+v", fs)
	}
	fs, err := store.KBFailuresForRetry(ctx, db, org.ID, conn.ID, []int64{a.ID}, now)
	if err != nil || len(fs) != 1 || fs[0].RetriedAt == nil {
		t.Fatalf("retry = %+v, %v", fs, err)
	}
	if n, err := store.ResolveKBFailures(ctx, db, org.ID, conn.ID, []string{"a1"}, now); err != nil || n != 1 {
		t.Fatalf("resolved %d: %v", n, err)
	}
	if open, _ := store.ListKBFailures(ctx, db, org.ID, conn.ID, false, 10, 0); len(open) != 1 {
		t.Fatalf("open = %+v", open)
	}
	if all, _ := store.ListKBFailures(ctx, db, org.ID, conn.ID, true, 1, 0); len(all) != 1 {
		t.Fatalf("page of one = %+v", all)
	}
	// A new failure of a resolved article opens a new line.
	if f := fail("a1", now.Add(time.Minute)); f.ID == a.ID || f.Attempts != 1 {
		t.Fatalf("after resolution = %+v", f)
	}
}
