package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestConflictsAreRecordedAndListedNewestFirst(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")
	link, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "accounts", DeskID: "D1", CRMID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	deskAt := time.Date(2025, 2, 1, 9, 0, 0, 0, time.UTC)
	crmAt := deskAt.Add(time.Minute)
	c, err := store.RecordConflict(ctx, db, store.NewConflict{
		OrgID: org.ID, ConnectionID: conn.ID, LinkID: link.ID, DeskField: "phone", CRMField: "Phone",
		DeskValue: []byte(`"+33 1"`), CRMValue: []byte(`"+33 2"`), DeskModifiedAt: &deskAt, CRMModifiedAt: &crmAt,
		Winner: store.SideCRM,
	})
	if err != nil || c.Module != "accounts" || string(c.DeskValue) != `"+33 1"` || c.Winner != store.SideCRM || !c.CRMModifiedAt.Equal(crmAt) {
		t.Fatalf("RecordConflict = %+v, %v", c, err)
	}
	ids := []int64{c.ID}
	for i := range 4 {
		c, err := store.RecordConflict(ctx, db, store.NewConflict{
			OrgID: org.ID, ConnectionID: conn.ID, LinkID: link.ID, DeskField: fmt.Sprint("f", i), CRMField: fmt.Sprint("F", i),
			Winner: store.SideDesk, // no values: an emptied field on both sides
		})
		if err != nil || string(c.DeskValue) != "null" || string(c.CRMValue) != "null" {
			t.Fatalf("RecordConflict without values = %+v, %v", c, err)
		}
		ids = append(ids, c.ID)
	}

	var got []int64
	var after int64
	for {
		page, err := store.ListConflicts(ctx, db, org.ID, conn.ID, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		after = page[len(page)-1].ID
	}
	want := []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("conflict pages = %v, want %v", got, want)
	}

	// Another org can neither list them nor attach a conflict to acme's link,
	// and a link must belong to the connection named.
	if l, err := store.ListConflicts(ctx, db, other.ID, conn.ID, 10, 0); err != nil || len(l) != 0 {
		t.Fatalf("ListConflicts from another org = %+v, %v", l, err)
	}
	for _, nc := range []store.NewConflict{
		{OrgID: other.ID, ConnectionID: conn.ID, LinkID: link.ID, DeskField: "x", CRMField: "X", Winner: store.SideCRM},
		{OrgID: other.ID, ConnectionID: otherConn.ID, LinkID: link.ID, DeskField: "x", CRMField: "X", Winner: store.SideCRM},
	} {
		if _, err := store.RecordConflict(ctx, db, nc); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RecordConflict(%+v) = %v, want ErrNotFound", nc, err)
		}
	}

	// Unlinking the records keeps the conflict history, without its link.
	if err := store.DeleteLink(ctx, db, org.ID, link.ID); err != nil {
		t.Fatal(err)
	}
	kept, err := store.ListConflicts(ctx, db, org.ID, conn.ID, 10, 0)
	if err != nil || len(kept) != 5 || kept[0].LinkID != nil {
		t.Fatalf("conflicts after unlinking = %+v, %v; want 5 without a link", kept, err)
	}
}
