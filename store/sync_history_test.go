package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestHistoryCountsPerHourAndPrunes(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")
	ten := time.Date(2025, 4, 1, 10, 0, 0, 0, time.UTC)
	add := func(orgID, connID int64, at time.Time, module, dir string, added, updated, deleted, failed int64) error {
		return store.AddHistory(ctx, db, store.HistoryBucket{
			OrgID: orgID, ConnectionID: connID, Bucket: at, Module: module, Direction: dir,
			Added: added, Updated: updated, Deleted: deleted, Failed: failed,
		})
	}
	// 10:05 and 10:55 share a bucket, also when given in a half-hour zone;
	// 11:10 starts another; directions and modules are separate.
	india := time.FixedZone("IST", 5*3600+1800)
	for _, h := range []struct {
		at                              time.Time
		module, dir                     string
		added, updated, deleted, failed int64
	}{
		{ten.Add(5 * time.Minute), "contacts", store.DirectionCRMToDesk, 1, 2, 0, 0},
		{ten.Add(55 * time.Minute).In(india), "contacts", store.DirectionCRMToDesk, 3, 0, 1, 1},
		{ten.Add(70 * time.Minute), "contacts", store.DirectionCRMToDesk, 5, 0, 0, 0},
		{ten.Add(10 * time.Minute), "contacts", store.DirectionDeskToCRM, 0, 7, 0, 0},
		{ten.Add(10 * time.Minute), "accounts", store.DirectionCRMToDesk, 0, 0, 0, 9},
	} {
		if err := add(org.ID, conn.ID, h.at, h.module, h.dir, h.added, h.updated, h.deleted, h.failed); err != nil {
			t.Fatal(err)
		}
	}
	// Concurrent workers add to one bucket without losing counts.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := add(org.ID, conn.ID, ten.Add(30*time.Minute), "products", store.DirectionCRMToDesk, 1, 1, 0, 0); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := add(other.ID, otherConn.ID, ten, "contacts", store.DirectionCRMToDesk, 100, 0, 0, 0); err != nil {
		t.Fatal(err)
	}

	hist, err := store.History(ctx, db, org.ID, conn.ID, ten.Add(20*time.Minute))
	if err != nil || len(hist) != 5 {
		t.Fatalf("History = %+v, %v; want 5 buckets", hist, err)
	}
	// Ordered by bucket, module, direction.
	want := []struct {
		hour                            int
		module, dir                     string
		added, updated, deleted, failed int64
	}{
		{10, "accounts", store.DirectionCRMToDesk, 0, 0, 0, 9},
		{10, "contacts", store.DirectionCRMToDesk, 4, 2, 1, 1},
		{10, "contacts", store.DirectionDeskToCRM, 0, 7, 0, 0},
		{10, "products", store.DirectionCRMToDesk, 20, 20, 0, 0},
		{11, "contacts", store.DirectionCRMToDesk, 5, 0, 0, 0},
	}
	for i, w := range want {
		h := hist[i]
		if !h.Bucket.Equal(ten.Add(time.Duration(w.hour-10)*time.Hour)) || h.Module != w.module || h.Direction != w.dir ||
			h.Added != w.added || h.Updated != w.updated || h.Deleted != w.deleted || h.Failed != w.failed {
			t.Fatalf("bucket %d = %+v, want %+v", i, h, w)
		}
	}

	if hist, err := store.History(ctx, db, other.ID, conn.ID, ten); err != nil || len(hist) != 0 {
		t.Fatalf("History from another org = %+v, %v", hist, err)
	}
	if err := add(other.ID, conn.ID, ten, "contacts", store.DirectionCRMToDesk, 1000, 0, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddHistory to another org's bucket = %v, want ErrNotFound", err)
	}
	if err := add(other.ID, conn.ID, ten.Add(24*time.Hour), "contacts", store.DirectionCRMToDesk, 1000, 0, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddHistory for another org's connection = %v, want ErrNotFound", err)
	}

	// Retention: everything before 11:00 goes, in every org.
	n, err := store.PruneHistory(ctx, db, ten.Add(time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("PruneHistory = %d, %v; want 5 (four of acme's, one of other's)", n, err)
	}
	if hist, _ := store.History(ctx, db, org.ID, conn.ID, ten.Add(-24*time.Hour)); len(hist) != 1 || hist[0].Added != 5 {
		t.Fatalf("History after pruning = %+v", hist)
	}
}
