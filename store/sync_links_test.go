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

func TestInsertLinkReportsTheSideAlreadyLinked(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	link := func(desk, crm string) (store.Link, error) {
		return store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: desk, CRMID: crm})
	}
	first, err := link("D1", "C1")
	if err != nil || string(first.DeskValues) != "{}" || string(first.CRMValues) != "{}" {
		t.Fatalf("InsertLink = %+v, %v", first, err)
	}
	for _, tc := range []struct {
		desk, crm, side string
	}{
		{"D2", "C1", store.SideCRM},  // the CRM record is linked elsewhere (B14)
		{"D1", "C2", store.SideDesk}, // the desk record is
		{"D1", "C1", store.SideCRM},  // both: the same pair, reported on the CRM side
	} {
		_, err := link(tc.desk, tc.crm)
		var lc *store.LinkConflict
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &lc) {
			t.Fatalf("InsertLink(%s, %s) = %v, want a *LinkConflict", tc.desk, tc.crm, err)
		}
		if lc.Side != tc.side || lc.ExistingLinkID != first.ID || lc.ExistingDeskID != "D1" || lc.ExistingCRMID != "C1" {
			t.Fatalf("InsertLink(%s, %s) conflict = %+v, want side %s of link %d", tc.desk, tc.crm, lc, tc.side, first.ID)
		}
	}
	// Same ids in another module are other records.
	if _, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "accounts", DeskID: "D1", CRMID: "C1"}); err != nil {
		t.Fatalf("same ids in another module: %v", err)
	}

	// A collision does not abort the caller's transaction: the engine links
	// inside the transaction that writes the whole batch.
	err = store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := store.InsertLink(ctx, tx, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D9", CRMID: "C1"}); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("InsertLink in tx = %v, want ErrConflict", err)
		}
		_, err := store.InsertLink(ctx, tx, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D9", CRMID: "C9"})
		return err
	})
	if err != nil {
		t.Fatalf("transaction after a link collision: %v", err)
	}
	if _, err := store.LinkByCRM(ctx, db, org.ID, conn.ID, "contacts", "C9"); err != nil {
		t.Fatalf("link written after a collision in the same transaction: %v", err)
	}
}

func TestConcurrentLinksOfOneRecordHaveOneWinner(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: fmt.Sprint("D", i), CRMID: "C"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var lc *store.LinkConflict
		switch {
		case err == nil:
			won++
		case errors.As(err, &lc) && lc.Side == store.SideCRM:
		default:
			t.Fatalf("racing InsertLink: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racers linked the same CRM record, want 1", won)
	}
}

func TestLinksAreScopedToTheirOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, _ := orgWithConnection(t, db, "other")
	l, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D1", CRMID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.LinkByID(ctx, db, other.ID, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LinkByID from another org = %v", err)
	}
	if _, err := store.LinkByDesk(ctx, db, other.ID, conn.ID, "contacts", "D1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LinkByDesk from another org = %v", err)
	}
	if _, err := store.LinkByCRM(ctx, db, other.ID, conn.ID, "contacts", "C1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LinkByCRM from another org = %v", err)
	}
	if m, err := store.LinksByDeskIDs(ctx, db, other.ID, conn.ID, "contacts", []string{"D1"}); err != nil || len(m) != 0 {
		t.Fatalf("LinksByDeskIDs from another org = %v, %v", m, err)
	}
	if m, err := store.LinksByCRMIDs(ctx, db, other.ID, conn.ID, "contacts", []string{"C1"}); err != nil || len(m) != 0 {
		t.Fatalf("LinksByCRMIDs from another org = %v, %v", m, err)
	}
	if _, err := store.UpdateLinkValues(ctx, db, other.ID, l.ID, store.LinkValues{DeskValues: []byte(`{"x": 1}`)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateLinkValues from another org = %v", err)
	}
	if err := store.DeleteLink(ctx, db, other.ID, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteLink from another org = %v", err)
	}
	// Linking on another org's connection: refused whether or not it collides.
	for _, ids := range [][2]string{{"D2", "C2"}, {"D1", "C1"}} {
		if _, err := store.InsertLink(ctx, db, store.NewLink{OrgID: other.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: ids[0], CRMID: ids[1]}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("InsertLink(%v) on another org's connection = %v, want ErrNotFound", ids, err)
		}
	}
	if got, err := store.LinkByID(ctx, db, org.ID, l.ID); err != nil || string(got.DeskValues) != "{}" {
		t.Fatalf("link after another org's attempts = %+v, %v", got, err)
	}
}

func TestLinkBatchLookupsAndValues(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	for i := range 5 {
		if _, err := store.InsertLink(ctx, db, store.NewLink{
			OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts",
			DeskID: fmt.Sprint("D", i), CRMID: fmt.Sprint("C", i),
			DeskValues: []byte(fmt.Sprintf(`{"n": %d}`, i)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	byDesk, err := store.LinksByDeskIDs(ctx, db, org.ID, conn.ID, "contacts", []string{"D1", "D3", "D404"})
	if err != nil || len(byDesk) != 2 || byDesk["D1"].CRMID != "C1" || byDesk["D3"].CRMID != "C3" {
		t.Fatalf("LinksByDeskIDs = %+v, %v", byDesk, err)
	}
	byCRM, err := store.LinksByCRMIDs(ctx, db, org.ID, conn.ID, "contacts", []string{"C0", "C4"})
	if err != nil || len(byCRM) != 2 || byCRM["C4"].DeskID != "D4" || string(byCRM["C0"].DeskValues) != `{"n": 0}` {
		t.Fatalf("LinksByCRMIDs = %+v, %v", byCRM, err)
	}
	if none, err := store.LinksByCRMIDs(ctx, db, org.ID, conn.ID, "contacts", nil); err != nil || len(none) != 0 {
		t.Fatalf("LinksByCRMIDs(nil) = %v, %v", none, err)
	}

	l := byDesk["D1"]
	deskAt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := store.UpdateLinkValues(ctx, db, org.ID, l.ID, store.LinkValues{CRMValues: []byte(`{"Email": "a@b.c"}`), DeskModifiedAt: &deskAt})
	if err != nil || string(got.DeskValues) != `{"n": 1}` || string(got.CRMValues) != `{"Email": "a@b.c"}` ||
		got.DeskModifiedAt == nil || !got.DeskModifiedAt.Equal(deskAt) || got.CRMModifiedAt != nil || got.SyncedAt.Before(l.SyncedAt) {
		t.Fatalf("UpdateLinkValues = %+v, %v", got, err)
	}
	if err := store.DeleteLink(ctx, db, org.ID, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LinkByDesk(ctx, db, org.ID, conn.ID, "contacts", "D1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LinkByDesk after DeleteLink = %v", err)
	}
	if err := store.DeleteLink(ctx, db, org.ID, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteLink = %v", err)
	}
	// Unlinked, both records may link again.
	if _, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D1", CRMID: "C1"}); err != nil {
		t.Fatalf("relinking after unlink: %v", err)
	}
}
