package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func upsert(ext string, origin string) store.NewQueueItem {
	return store.NewQueueItem{System: "zoho_crm", Module: "contacts", ExtID: ext, Kind: store.KindUpsert, Origin: origin}
}

// queueRow reads a queue row directly, so tests can look at what the API
// deliberately hides (and at rows nobody can claim).
func queueRow(t *testing.T, db *sqlx.DB, connID int64, ext string) (store.QueueItem, bool) {
	t.Helper()
	var rows []store.QueueItem
	if err := db.Select(&rows, `
		SELECT id, org_id, connection_id, system, module, ext_id, kind, origin, version, first_seen_at,
			available_at, attempts, last_error, leased_by, lease_until, run_id
		FROM change_queue WHERE connection_id = $1 AND ext_id = $2`, connID, ext); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return store.QueueItem{}, false
	}
	return rows[0], true
}

// dbNow is the database's clock, which the queue's times are on.
func dbNow(t *testing.T, db *sqlx.DB) time.Time {
	t.Helper()
	var now time.Time
	if err := db.Get(&now, `SELECT now()`); err != nil {
		t.Fatal(err)
	}
	return now
}

func claim(t *testing.T, db *sqlx.DB, worker string, limit int) []store.QueueItem {
	t.Helper()
	items, err := store.Claim(context.Background(), db, store.ClaimOptions{Worker: worker, Limit: limit, Lease: time.Minute})
	if err != nil {
		t.Fatalf("Claim(%s): %v", worker, err)
	}
	return items
}

func TestEnqueueCoalescesOneRowPerRecord(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")

	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	first, _ := queueRow(t, db, conn.ID, "R1")
	del := upsert("R1", store.OriginPoll)
	del.Kind = store.KindDelete
	run := int64(77)
	del.RunID = &run
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{del}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM change_queue`); err != nil || n != 1 {
		t.Fatalf("%d queue rows after two enqueues of one record, %v; want 1", n, err)
	}
	got, _ := queueRow(t, db, conn.ID, "R1")
	if got.Version != 2 || got.Kind != store.KindDelete || got.Origin != store.OriginWebhook ||
		got.RunID == nil || *got.RunID != 77 || !got.FirstSeenAt.Equal(first.FirstSeenAt) || got.Attempts != 0 {
		t.Fatalf("coalesced row = %+v; want version 2, kind DELETE, first origin and time kept, run 77", got)
	}
	// An admin's retry replaces the origin.
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginRetry)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := queueRow(t, db, conn.ID, "R1"); got.Version != 3 || got.Origin != store.OriginRetry || got.Kind != store.KindUpsert || *got.RunID != 77 {
		t.Fatalf("after a retry enqueue = %+v", got)
	}

	// A batch repeating a record makes one row, once; other systems and
	// modules with the same id are other records.
	batch := []store.NewQueueItem{upsert("R2", store.OriginPoll), upsert("R2", store.OriginPoll), upsert("R3", store.OriginPoll)}
	batch = append(batch, store.NewQueueItem{System: "zoho_desk", Module: "contacts", ExtID: "R2", Kind: store.KindUpsert, Origin: store.OriginPoll})
	batch = append(batch, store.NewQueueItem{System: "zoho_crm", Module: "accounts", ExtID: "R2", Kind: store.KindUpsert, Origin: store.OriginPoll})
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, batch); err != nil {
		t.Fatal(err)
	}
	if got, _ := queueRow(t, db, conn.ID, "R3"); got.Version != 1 {
		t.Fatalf("R3 version %d, want 1", got.Version)
	}
	if err := db.Get(&n, `SELECT count(*) FROM change_queue WHERE ext_id = 'R2'`); err != nil || n != 3 {
		t.Fatalf("R2 rows = %d, %v; want 3 (crm contacts once, desk contacts, crm accounts)", n, err)
	}
	if err := db.Get(&n, `SELECT max(version) FROM change_queue WHERE ext_id = 'R2'`); err != nil || n != 1 {
		t.Fatalf("R2 max version = %d, %v; want 1 (a repeat in one batch counts once)", n, err)
	}
}

func TestQueueIsScopedToItsOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	// Another org naming this connection writes nothing, not even a bump.
	if err := store.Enqueue(ctx, db, other.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook), upsert("R2", store.OriginWebhook)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Enqueue on another org's connection = %v, want ErrNotFound", err)
	}
	if got, _ := queueRow(t, db, conn.ID, "R1"); got.Version != 1 {
		t.Fatalf("version after another org's enqueue = %d, want 1", got.Version)
	}
	if _, ok := queueRow(t, db, conn.ID, "R2"); ok {
		t.Fatal("another org's enqueue inserted a row")
	}
	if d, err := store.QueueDepths(ctx, db, other.ID, conn.ID); err != nil || len(d) != 0 {
		t.Fatalf("QueueDepths from another org = %+v, %v", d, err)
	}
	if n, err := store.ClearQueue(ctx, db, other.ID, conn.ID); err != nil || n != 0 {
		t.Fatalf("ClearQueue from another org = %d, %v", n, err)
	}
	if err := store.Enqueue(ctx, db, other.ID, otherConn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.ClearQueue(ctx, db, org.ID, conn.ID); err != nil || n != 1 {
		t.Fatalf("ClearQueue = %d, %v; want 1", n, err)
	}
	if _, ok := queueRow(t, db, otherConn.ID, "R1"); !ok {
		t.Fatal("ClearQueue of one connection dropped another's row")
	}
}

// TestConcurrentClaimersNeverShareARow is the queue's central promise: with
// SKIP LOCKED and leases, workers racing on one queue each get distinct
// rows, and together they drain it.
func TestConcurrentClaimersNeverShareARow(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	const rows, workers = 500, 4
	var items []store.NewQueueItem
	for i := range rows {
		items = append(items, upsert(fmt.Sprint("R", i), store.OriginFirstSync))
	}
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, items); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	claimedBy := map[int64][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("worker-", w)
			for {
				batch, err := store.Claim(ctx, db, store.ClaimOptions{Worker: name, Limit: 7, Lease: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if len(batch) == 0 {
					return
				}
				mu.Lock()
				for _, it := range batch {
					claimedBy[it.ID] = append(claimedBy[it.ID], name)
				}
				mu.Unlock()
				if _, err := store.Complete(ctx, db, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimedBy) != rows {
		t.Fatalf("%d distinct rows claimed, want %d", len(claimedBy), rows)
	}
	for id, by := range claimedBy {
		if len(by) != 1 {
			t.Fatalf("row %d claimed %d times, by %v", id, len(by), by)
		}
	}
	var left int
	if err := db.Get(&left, `SELECT count(*) FROM change_queue`); err != nil || left != 0 {
		t.Fatalf("%d rows left after draining, %v", left, err)
	}
}

func TestClaimLeasesAndSkipsHeldRows(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook), upsert("R2", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	before := dbNow(t, db)
	got := claim(t, db, "a", 10)
	if len(got) != 2 || got[0].ExtID != "R1" || got[1].ExtID != "R2" {
		t.Fatalf("Claim = %+v, want R1, R2 in order", got)
	}
	if *got[0].LeasedBy != "a" || got[0].LeaseUntil.Before(before.Add(time.Minute)) || got[0].Version != 1 || got[0].OrgID != org.ID {
		t.Fatalf("claimed item = %+v", got[0])
	}
	if again := claim(t, db, "b", 10); len(again) != 0 {
		t.Fatalf("second claimer got leased rows: %+v", again)
	}
	// Enqueueing a leased record bumps it but does not make it claimable.
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	if again := claim(t, db, "b", 10); len(again) != 0 {
		t.Fatalf("claim while leased after a new capture = %+v", again)
	}
	if _, err := store.Claim(ctx, db, store.ClaimOptions{Worker: "", Limit: 1, Lease: time.Second}); err == nil {
		t.Fatal("Claim without a worker name succeeded")
	}
}

func TestCompleteKeepsARowCapturedAgainMeanwhile(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook), upsert("R2", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	got := claim(t, db, "a", 10)
	// R1 changes again while the worker applies it.
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	requeued, err := store.Complete(ctx, db, got)
	if err != nil || len(requeued) != 1 || requeued[0] != got[0].ID {
		t.Fatalf("Complete = %v, %v; want R1 (id %d) requeued", requeued, err, got[0].ID)
	}
	if _, ok := queueRow(t, db, conn.ID, "R2"); ok {
		t.Fatal("R2, unchanged since its claim, survived Complete")
	}
	r1, ok := queueRow(t, db, conn.ID, "R1")
	if !ok || r1.LeasedBy != nil || r1.LeaseUntil != nil || r1.Version != 2 || r1.AvailableAt.After(dbNow(t, db)) {
		t.Fatalf("R1 after Complete = %+v (present %v); want due, unleased, version 2", r1, ok)
	}
	// It is due at once, for any worker, with the new version.
	again := claim(t, db, "b", 10)
	if len(again) != 1 || again[0].ExtID != "R1" || again[0].Version != 2 {
		t.Fatalf("claim after requeue = %+v", again)
	}
	if requeued, err := store.Complete(ctx, db, again); err != nil || len(requeued) != 0 {
		t.Fatalf("second Complete = %v, %v", requeued, err)
	}
	if _, ok := queueRow(t, db, conn.ID, "R1"); ok {
		t.Fatal("R1 survived a Complete at its current version")
	}
	if _, err := store.Complete(ctx, db, []store.QueueItem{{ID: 1}}); err == nil {
		t.Fatal("Complete of an item that was never claimed succeeded")
	}
}

func TestExpiredLeasesAreReclaimed(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	crashed := claim(t, db, "crashed", 10)
	if len(crashed) != 1 {
		t.Fatalf("first claim = %+v", crashed)
	}
	// The worker dies; time passes its lease. (Moving the lease into the
	// past stands in for waiting.)
	if _, err := db.Exec(`UPDATE change_queue SET lease_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	taken := claim(t, db, "survivor", 10)
	if len(taken) != 1 || taken[0].ID != crashed[0].ID || *taken[0].LeasedBy != "survivor" {
		t.Fatalf("claim after expiry = %+v", taken)
	}
	// The crashed worker, back from the dead, can no longer touch the claim.
	if _, err := store.Retry(ctx, db, crashed[0], time.Hour, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Retry with an expired claim = %v, want ErrNotFound", err)
	}
	if err := store.Release(ctx, db, crashed); err != nil {
		t.Fatal(err)
	}
	if r, _ := queueRow(t, db, conn.ID, "R1"); r.LeasedBy == nil || *r.LeasedBy != "survivor" || r.Attempts != 0 {
		t.Fatalf("row after the stale worker's Retry and Release = %+v; want the survivor's lease intact", r)
	}
	// Release of the live claim hands the row straight back.
	if err := store.Release(ctx, db, taken); err != nil {
		t.Fatal(err)
	}
	if again := claim(t, db, "third", 10); len(again) != 1 || again[0].Attempts != 0 {
		t.Fatalf("claim after Release = %+v", again)
	}
}

func TestRetryBacksOffAndRestartsForANewChange(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	got := claim(t, db, "a", 1)
	before := dbNow(t, db)
	r, err := store.Retry(ctx, db, got[0], time.Hour, "503 from crm")
	if err != nil || r.Attempts != 1 || r.LeasedBy != nil || r.LeaseUntil != nil || *r.LastError != "503 from crm" ||
		r.AvailableAt.Before(before.Add(59*time.Minute)) {
		t.Fatalf("Retry = %+v, %v; want attempt 1, unleased, due in an hour", r, err)
	}
	if again := claim(t, db, "b", 1); len(again) != 0 {
		t.Fatalf("claim during backoff = %+v", again)
	}
	// The backoff ends (simulated), the next attempt fails too.
	if _, err := db.Exec(`UPDATE change_queue SET available_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	got = claim(t, db, "b", 1)
	if len(got) != 1 || got[0].Attempts != 1 {
		t.Fatalf("claim after backoff = %+v", got)
	}
	r, err = store.Retry(ctx, db, got[0], 2*time.Hour, "503 again")
	if err != nil || r.Attempts != 2 {
		t.Fatalf("second Retry = %+v, %v; want attempt 2", r, err)
	}

	// A new capture during the backoff is a new change: due now, although
	// its attempts count is only reset by the next Retry or Complete.
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	got = claim(t, db, "c", 1)
	if len(got) != 1 || got[0].Version != 2 {
		t.Fatalf("claim after a capture during backoff = %+v", got)
	}
	// And a capture while that attempt runs restarts the budget.
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
		t.Fatal(err)
	}
	before = dbNow(t, db)
	r, err = store.Retry(ctx, db, got[0], time.Minute, "429")
	if err != nil || r.Attempts != 0 || r.Version != 3 || r.AvailableAt.Before(before.Add(59*time.Second)) {
		t.Fatalf("Retry after the version moved = %+v, %v; want attempts 0, version 3, still backed off", r, err)
	}
}

func TestClaimTakesOnlyActiveAndChosenConnections(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	a, ca := orgWithConnection(t, db, "a")
	b, cb := orgWithConnection(t, db, "b")
	c, cc := orgWithConnection(t, db, "c")
	for _, oc := range []struct{ org, conn int64 }{{a.ID, ca.ID}, {b.ID, cb.ID}, {c.ID, cc.ID}} {
		if err := store.Enqueue(ctx, db, oc.org, oc.conn, []store.NewQueueItem{upsert("R1", store.OriginWebhook)}); err != nil {
			t.Fatal(err)
		}
	}
	// Pausing stops the workers, not capture.
	if _, err := store.SetConnectionStatus(ctx, db, c.ID, cc.ID, []string{store.ConnectionActive}, store.ConnectionPaused); err != nil {
		t.Fatal(err)
	}
	if err := store.Enqueue(ctx, db, c.ID, cc.ID, []store.NewQueueItem{upsert("R2", store.OriginWebhook)}); err != nil {
		t.Fatalf("capture on a paused connection: %v", err)
	}

	none, err := store.Claim(ctx, db, store.ClaimOptions{Worker: "w", ConnectionIDs: []int64{}, Limit: 10, Lease: time.Minute})
	if err != nil || len(none) != 0 {
		t.Fatalf("Claim with an empty connection list = %+v, %v; want nothing", none, err)
	}
	onlyB, err := store.Claim(ctx, db, store.ClaimOptions{Worker: "w", ConnectionIDs: []int64{cb.ID, cc.ID}, Limit: 10, Lease: time.Minute})
	if err != nil || len(onlyB) != 1 || onlyB[0].ConnectionID != cb.ID {
		t.Fatalf("Claim for b and paused c = %+v, %v; want b's row only", onlyB, err)
	}
	rest := claim(t, db, "w", 10)
	if len(rest) != 1 || rest[0].ConnectionID != ca.ID {
		t.Fatalf("Claim for all = %+v; want a's row only (c is paused)", rest)
	}
	if _, err := store.SetConnectionStatus(ctx, db, c.ID, cc.ID, []string{store.ConnectionPaused}, store.ConnectionActive); err != nil {
		t.Fatal(err)
	}
	if resumed := claim(t, db, "w", 10); len(resumed) != 2 {
		t.Fatalf("Claim after resume = %+v; want c's two rows", resumed)
	}
}

func TestQueueDepthsCountPerModule(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	items := []store.NewQueueItem{upsert("R1", store.OriginPoll), upsert("R2", store.OriginPoll), upsert("R3", store.OriginPoll)}
	items = append(items, store.NewQueueItem{System: "zoho_desk", Module: "accounts", ExtID: "A1", Kind: store.KindUpsert, Origin: store.OriginWebhook})
	if err := store.Enqueue(ctx, db, org.ID, conn.ID, items); err != nil {
		t.Fatal(err)
	}
	held, err := store.Claim(ctx, db, store.ClaimOptions{Worker: "w", ConnectionIDs: []int64{conn.ID}, Limit: 2, Lease: time.Minute})
	if err != nil || len(held) != 2 {
		t.Fatalf("Claim = %+v, %v", held, err)
	}
	if _, err := store.Retry(ctx, db, held[1], time.Hour, "boom"); err != nil {
		t.Fatal(err)
	}
	d, err := store.QueueDepths(ctx, db, org.ID, conn.ID)
	if err != nil || len(d) != 2 {
		t.Fatalf("QueueDepths = %+v, %v", d, err)
	}
	crm, desk := d[0], d[1]
	if crm.System != "zoho_crm" || crm.Total != 3 || crm.Leased+crm.Due+crm.Retrying != 3 || desk.Total != 1 || desk.OldestFirstSeen.IsZero() {
		t.Fatalf("QueueDepths = %+v", d)
	}
	var leased, due, retrying int64
	for _, x := range d {
		leased += x.Leased
		due += x.Due
		retrying += x.Retrying
	}
	if leased != 1 || retrying != 1 || due != 2 {
		t.Fatalf("leased %d, retrying %d, due %d; want 1, 1, 2", leased, retrying, due)
	}
}

func TestCursorsRoundTrip(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, _ := orgWithConnection(t, db, "other")
	if _, err := store.GetCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCursor before the first poll = %v, want ErrNotFound", err)
	}
	for _, c := range []string{"2025-01-01T00:00:00Z", "page-token-2"} {
		if err := store.PutCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll, c); err != nil {
			t.Fatal(err)
		}
		if got, err := store.GetCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); err != nil || got != c {
			t.Fatalf("GetCursor = %q, %v; want %q", got, err, c)
		}
	}
	if err := store.PutCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorDeletedFeed, "del-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.GetCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); got != "page-token-2" {
		t.Fatalf("poll cursor after writing the deleted feed's = %q", got)
	}
	if _, err := store.GetCursor(ctx, db, other.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCursor from another org = %v, want ErrNotFound", err)
	}
	if err := store.PutCursor(ctx, db, other.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll, "hijack"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutCursor over another org's cursor = %v, want ErrNotFound", err)
	}
	if got, _ := store.GetCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); got != "page-token-2" {
		t.Fatalf("cursor after another org's write = %q", got)
	}
	// The cursor commits with the page's changes, or not at all.
	boom := errors.New("boom")
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := store.Enqueue(ctx, tx, org.ID, conn.ID, []store.NewQueueItem{upsert("R1", store.OriginPoll)}); err != nil {
			return err
		}
		if err := store.PutCursor(ctx, tx, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll, "page-token-3"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, _ := store.GetCursor(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", store.CursorPoll); got != "page-token-2" {
		t.Fatalf("cursor after a rolled-back page = %q", got)
	}
}
