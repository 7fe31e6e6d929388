package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func failureOf(orgID, connID int64, source, reason string) store.NewFailure {
	return store.NewFailure{
		OrgID: orgID, ConnectionID: connID, Module: "contacts", Direction: store.DirectionCRMToDesk,
		SourceSystem: "zoho_crm", SourceID: source, Reason: reason, Message: reason + " on " + source,
	}
}

func failureIDs(fs []store.Failure) []int64 {
	out := []int64{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestRecordFailureKeepsOneOpenLinePerRecord(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")

	first, err := store.RecordFailure(ctx, db, failureOf(org.ID, conn.ID, "C1", "rate_limited"))
	if err != nil || first.Attempts != 1 || first.RawError != nil || len(first.Fields) != 0 {
		t.Fatalf("RecordFailure = %+v, %v", first, err)
	}
	nf := failureOf(org.ID, conn.ID, "C1", "mandatory_missing")
	nf.Fields = []string{"Last_Name"}
	nf.RawError = []byte(`{"code":"MANDATORY_NOT_FOUND"}`)
	nf.VendorCode = ptr("MANDATORY_NOT_FOUND")
	nf.TargetID = ptr("D1")
	second, err := store.RecordFailure(ctx, db, nf)
	if err != nil || second.ID != first.ID || second.Attempts != 2 || second.Reason != "mandatory_missing" ||
		len(second.Fields) != 1 || second.Fields[0] != "Last_Name" || string(second.RawError) != `{"code":"MANDATORY_NOT_FOUND"}` ||
		*second.TargetID != "D1" || second.OccurredAt.Before(first.OccurredAt) {
		t.Fatalf("repeated RecordFailure = %+v, %v; want the same line, updated", second, err)
	}

	// The record syncs: the failure closes, and a later one opens a new line.
	if n, err := store.ResolveFailures(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", []string{"C1", "C404"}); err != nil || n != 1 {
		t.Fatalf("ResolveFailures = %d, %v; want 1", n, err)
	}
	third, err := store.RecordFailure(ctx, db, failureOf(org.ID, conn.ID, "C1", "duplicate"))
	if err != nil || third.ID == first.ID || third.Attempts != 1 {
		t.Fatalf("failure after resolution = %+v, %v; want a new line", third, err)
	}
	if resolved, err := store.FailureByID(ctx, db, org.ID, first.ID); err != nil || resolved.ResolvedAt == nil {
		t.Fatalf("resolved failure = %+v, %v", resolved, err)
	}
	open, err := store.ListFailures(ctx, db, store.FailureFilter{OrgID: org.ID, ConnectionID: conn.ID}, 10, 0)
	if err != nil || len(open) != 1 || open[0].ID != third.ID {
		t.Fatalf("open failures = %v, %v; want [%d]", failureIDs(open), err, third.ID)
	}
	all, err := store.ListFailures(ctx, db, store.FailureFilter{OrgID: org.ID, ConnectionID: conn.ID, IncludeResolved: true}, 10, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("all failures = %v, %v; want 2", failureIDs(all), err)
	}
}

func TestListFailuresPagesInTimeOrder(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	var ids []int64
	for i := range 5 {
		f, err := store.RecordFailure(ctx, db, failureOf(org.ID, conn.ID, fmt.Sprint("C", i), "other"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	acc := failureOf(org.ID, conn.ID, "A1", "other")
	acc.Module = "accounts"
	if _, err := store.RecordFailure(ctx, db, acc); err != nil {
		t.Fatal(err)
	}
	// C0 fails again: it moves to the end.
	if _, err := store.RecordFailure(ctx, db, failureOf(org.ID, conn.ID, "C0", "other")); err != nil {
		t.Fatal(err)
	}
	filter := store.FailureFilter{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts"}
	var got []int64
	var after int64
	for {
		page, err := store.ListFailures(ctx, db, filter, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, failureIDs(page)...)
		after = page[len(page)-1].ID
	}
	want := []int64{ids[1], ids[2], ids[3], ids[4], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	if all, _ := store.ListFailures(ctx, db, store.FailureFilter{OrgID: org.ID, ConnectionID: conn.ID}, 10, 0); len(all) != 6 {
		t.Fatalf("all modules = %d failures, want 6", len(all))
	}
}

func TestFailuresForRetryMarksAndStaysInItsOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")
	var fs []store.Failure
	for i := range 3 {
		f, err := store.RecordFailure(ctx, db, failureOf(org.ID, conn.ID, fmt.Sprint("C", i), "outcome_unknown"))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	theirs, err := store.RecordFailure(ctx, db, failureOf(other.ID, otherConn.ID, "C0", "other"))
	if err != nil {
		t.Fatal(err)
	}

	// Another org reads and retries nothing of acme's.
	if _, err := store.FailureByID(ctx, db, other.ID, fs[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FailureByID from another org = %v", err)
	}
	if l, err := store.ListFailures(ctx, db, store.FailureFilter{OrgID: other.ID, ConnectionID: conn.ID}, 10, 0); err != nil || len(l) != 0 {
		t.Fatalf("ListFailures from another org = %v, %v", failureIDs(l), err)
	}
	if r, err := store.FailuresForRetry(ctx, db, other.ID, conn.ID, nil); err != nil || len(r) != 0 {
		t.Fatalf("FailuresForRetry from another org = %v, %v", failureIDs(r), err)
	}
	if n, err := store.ResolveFailures(ctx, db, other.ID, conn.ID, "zoho_crm", "contacts", []string{"C0"}); err != nil || n != 0 {
		t.Fatalf("ResolveFailures from another org = %d, %v", n, err)
	}
	if _, err := store.RecordFailure(ctx, db, failureOf(other.ID, conn.ID, "C0", "other")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RecordFailure over another org's open failure = %v, want ErrNotFound", err)
	}
	if _, err := store.RecordFailure(ctx, db, failureOf(other.ID, conn.ID, "C9", "other")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RecordFailure on another org's connection = %v, want ErrNotFound", err)
	}

	// Retry by ids (another org's id is ignored), then all; in the caller's
	// transaction with the enqueue.
	var picked []store.Failure
	err = store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		picked, err = store.FailuresForRetry(ctx, tx, org.ID, conn.ID, []int64{fs[2].ID, fs[0].ID, theirs.ID})
		if err != nil {
			return err
		}
		var items []store.NewQueueItem
		for _, f := range picked {
			items = append(items, store.NewQueueItem{System: f.SourceSystem, Module: f.Module, ExtID: f.SourceID, Kind: store.KindUpsert, Origin: store.OriginRetry})
		}
		return store.Enqueue(ctx, tx, org.ID, conn.ID, items)
	})
	if err != nil || fmt.Sprint(failureIDs(picked)) != fmt.Sprint([]int64{fs[0].ID, fs[2].ID}) || picked[0].RetriedAt == nil {
		t.Fatalf("FailuresForRetry(ids) = %v, %v", failureIDs(picked), err)
	}
	if r, _ := store.FailureByID(ctx, db, org.ID, fs[1].ID); r.RetriedAt != nil {
		t.Fatal("a failure not asked for was marked retried")
	}
	if r, _ := store.FailureByID(ctx, db, other.ID, theirs.ID); r.RetriedAt != nil {
		t.Fatal("another org's failure was marked retried")
	}
	var queued int
	if err := db.Get(&queued, `SELECT count(*) FROM change_queue WHERE origin = 'RETRY'`); err != nil || queued != 2 {
		t.Fatalf("%d retry rows queued, %v; want 2", queued, err)
	}
	if _, err := store.ResolveFailures(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", []string{"C2"}); err != nil {
		t.Fatal(err)
	}
	everything, err := store.FailuresForRetry(ctx, db, org.ID, conn.ID, nil)
	if err != nil || fmt.Sprint(failureIDs(everything)) != fmt.Sprint([]int64{fs[0].ID, fs[1].ID}) {
		t.Fatalf("FailuresForRetry(all) = %v, %v; want the two still open", failureIDs(everything), err)
	}
}
