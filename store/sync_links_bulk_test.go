package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestInsertLinksSkipsRecordsAlreadyLinked(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "globex")
	if _, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D1", CRMID: "C1"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got, err := store.InsertLinks(ctx, db, org.ID, conn.ID, "contacts", []store.NewLink{
		{DeskID: "D2", CRMID: "C2", DeskValues: json.RawMessage(`{"email":"a@x"}`), CRMModifiedAt: &at},
		{DeskID: "D3", CRMID: "C1"}, // the CRM record is linked already
		{DeskID: "D1", CRMID: "C3"}, // the desk record is
		{DeskID: "D4", CRMID: "C4"},
		{DeskID: "D5", CRMID: "C4"}, // collides with the batch's own D4-C4
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("inserted %v, want D2-C2 and D4-C4", got)
	}
	l := got[store.LinkPair{DeskID: "D2", CRMID: "C2"}]
	if l.ID == 0 || l.OrgID != org.ID || l.ConnectionID != conn.ID || l.Module != "contacts" ||
		string(l.DeskValues) != `{"email": "a@x"}` || string(l.CRMValues) != "{}" || l.CRMModifiedAt == nil || !l.CRMModifiedAt.Equal(at) || l.DeskModifiedAt != nil {
		t.Fatalf("D2-C2 = %+v", l)
	}
	if _, ok := got[store.LinkPair{DeskID: "D4", CRMID: "C4"}]; !ok {
		t.Fatalf("D4-C4 missing: %v", got)
	}
	// The skipped pairs are InsertLink's conflicts, as one by one.
	var lc *store.LinkConflict
	if _, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D5", CRMID: "C4"}); !errors.As(err, &lc) || lc.ExistingDeskID != "D4" {
		t.Fatalf("D5-C4 after the batch: %v", err)
	}
	// Another org's connection links nothing.
	if got, err := store.InsertLinks(ctx, db, other.ID, conn.ID, "contacts", []store.NewLink{{DeskID: "D8", CRMID: "C8"}}); err != nil || len(got) != 0 {
		t.Fatalf("InsertLinks through another org = %v, %v", got, err)
	}
	if got, err := store.InsertLinks(ctx, db, other.ID, otherConn.ID, "contacts", nil); err != nil || len(got) != 0 {
		t.Fatalf("empty InsertLinks = %v, %v", got, err)
	}
}

func TestUpdateLinksValues(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other := newOrg(t, db, "globex")
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D1", CRMID: "C1",
		DeskValues: json.RawMessage(`{"x":1}`), CRMValues: json.RawMessage(`{"X":1}`), DeskModifiedAt: &at})
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D2", CRMID: "C2"})
	if err != nil {
		t.Fatal(err)
	}
	later := at.Add(time.Hour)
	err = store.UpdateLinksValues(ctx, db, org.ID, []store.LinkUpdate{
		{LinkID: a.ID, LinkValues: store.LinkValues{CRMValues: json.RawMessage(`{"X":2}`), CRMModifiedAt: &later}},
		{LinkID: b.ID, LinkValues: store.LinkValues{DeskValues: json.RawMessage(`{"y":1}`)}},
		{LinkID: b.ID, LinkValues: store.LinkValues{DeskValues: json.RawMessage(`{"y":2}`)}}, // the last wins
	})
	if err != nil {
		t.Fatal(err)
	}
	gotA, _ := store.LinkByID(ctx, db, org.ID, a.ID)
	gotB, _ := store.LinkByID(ctx, db, org.ID, b.ID)
	if string(gotA.DeskValues) != `{"x": 1}` || string(gotA.CRMValues) != `{"X": 2}` || !gotA.DeskModifiedAt.Equal(at) ||
		!gotA.CRMModifiedAt.Equal(later) || !gotA.SyncedAt.After(a.SyncedAt) {
		t.Fatalf("link a = %+v", gotA)
	}
	if string(gotB.DeskValues) != `{"y": 2}` || string(gotB.CRMValues) != "{}" {
		t.Fatalf("link b = %+v", gotB)
	}
	// A link gone, or another org's, is ErrNotFound.
	if err := store.UpdateLinksValues(ctx, db, other.ID, []store.LinkUpdate{{LinkID: a.ID}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org's link: %v", err)
	}
	if err := store.UpdateLinksValues(ctx, db, org.ID, []store.LinkUpdate{{LinkID: a.ID}, {LinkID: a.ID + b.ID + 100}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing link: %v", err)
	}
}

func TestRecordConflictsKeepsOrderAndChecksLinks(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "globex")
	l, err := store.InsertLink(ctx, db, store.NewLink{OrgID: org.ID, ConnectionID: conn.ID, Module: "contacts", DeskID: "D1", CRMID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := store.RecordConflicts(ctx, db, org.ID, conn.ID, []store.NewConflict{
		{LinkID: l.ID, DeskField: "phone", CRMField: "Phone", DeskValue: json.RawMessage(`"1"`), CRMValue: json.RawMessage(`"2"`),
			DeskModifiedAt: &at, Winner: store.SideDesk},
		{LinkID: l.ID, DeskField: "title", CRMField: "Title", DeskValue: json.RawMessage(`null`), Winner: store.SideCRM},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := store.ListConflicts(ctx, db, org.ID, conn.ID, 10, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListConflicts = %+v, %v", got, err)
	}
	// Newest first: the batch's last conflict has the highest id.
	title, phone := got[0], got[1]
	if title.DeskField != "title" || string(title.DeskValue) != "null" || string(title.CRMValue) != "null" || title.Winner != store.SideCRM ||
		phone.DeskField != "phone" || string(phone.CRMValue) != `"2"` || !phone.DeskModifiedAt.Equal(at) || phone.CRMModifiedAt != nil ||
		*phone.LinkID != l.ID || phone.Module != "contacts" {
		t.Fatalf("conflicts = %+v", got)
	}
	// A link of another org or connection is not found, as RecordConflict.
	for _, c := range []struct{ org, conn int64 }{{other.ID, conn.ID}, {other.ID, otherConn.ID}, {org.ID, otherConn.ID}} {
		err := store.RecordConflicts(ctx, db, c.org, c.conn, []store.NewConflict{{LinkID: l.ID, DeskField: "x", CRMField: "X", Winner: store.SideCRM}})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RecordConflicts through org %d connection %d = %v", c.org, c.conn, err)
		}
	}
}

func TestMirrorMatchesAndTheMatchIndex(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "globex")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if _, err := store.UpsertMirror(ctx, db, org.ID, conn.ID, []store.MirrorRecord{
		{System: "zoho_desk", Module: "contacts", ExtID: "d3", Email: ptr("ann@example.com"), CreatedAt: &t2},
		{System: "zoho_desk", Module: "contacts", ExtID: "d2", Email: ptr("Ann@Example.com"), CreatedAt: &t1},
		{System: "zoho_desk", Module: "contacts", ExtID: "d1", Email: ptr("ann@example.com"), CreatedAt: &t0},
		{System: "zoho_desk", Module: "contacts", ExtID: "d4", Email: ptr("bob@example.com")},
		{System: "zoho_desk", Module: "contacts", ExtID: "d5", Email: ptr("gone@example.com"), DeletedAt: &t0},
		{System: "zoho_crm", Module: "contacts", ExtID: "c1", Email: ptr("carl@example.com")},
		{System: "zoho_desk", Module: "accounts", ExtID: "a1", Name: ptr("Acme Inc.")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertMirror(ctx, db, other.ID, otherConn.ID, []store.MirrorRecord{
		{System: "zoho_desk", Module: "contacts", ExtID: "x1", Email: ptr("bob@example.com")},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := store.MirrorMatches(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", store.MatchByEmail,
		[]string{" ANN@example.com", "bob@example.com", "gone@example.com", "carl@example.com", "nobody@example.com", "bob@example.com"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[" ANN@example.com"]) != 2 || got[" ANN@example.com"][0] != "d1" || got[" ANN@example.com"][1] != "d2" ||
		len(got["bob@example.com"]) != 1 || got["bob@example.com"][0] != "d4" {
		t.Fatalf("MirrorMatches by email = %v; want the two oldest anns and bob, not the deleted, another system's or another org's", got)
	}
	if got, err := store.MirrorMatches(ctx, db, org.ID, conn.ID, "zoho_desk", "accounts", store.MatchByName, []string{"ACME INC."}, 2); err != nil || len(got["ACME INC."]) != 1 {
		t.Fatalf("MirrorMatches by name = %v, %v", got, err)
	}

	if _, err := store.GetMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetMatchIndex before any read = %v", err)
	}
	if err := store.PutMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "c1", false); err != nil {
		t.Fatal(err)
	}
	idx, err := store.GetMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts")
	if err != nil || idx.Cursor != "c1" || idx.Complete || idx.CaughtUpAt != nil {
		t.Fatalf("after a page: %+v, %v", idx, err)
	}
	if err := store.PutMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "c2", true); err != nil {
		t.Fatal(err)
	}
	if err := store.PutMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "c3", false); err != nil {
		t.Fatal(err)
	}
	idx, err = store.GetMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts")
	if err != nil || idx.Cursor != "c3" || !idx.Complete || idx.CaughtUpAt == nil {
		t.Fatalf("complete once read to the end, and stays so: %+v, %v", idx, err)
	}
	if err := store.PutMatchIndex(ctx, db, other.ID, conn.ID, "zoho_desk", "contacts", "x", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutMatchIndex through another org = %v", err)
	}
	if _, err := store.AnalyzeGrowing(ctx, db); err != nil {
		t.Fatalf("AnalyzeGrowing: %v", err)
	}
	if err := store.AnalyzeMirror(ctx, db); err != nil {
		t.Fatalf("AnalyzeMirror: %v", err)
	}
}

// Forgetting the desk side of a connection (a portal switch) forgets the
// match index over its mirror rows, which go with it: a new first sync
// must read the new portal whole.
func TestForgetDeskSideForgetsItsMatchIndex(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	for _, sys := range []string{"zoho_desk", "zoho_crm"} {
		if err := store.PutMatchIndex(ctx, db, org.ID, conn.ID, sys, "contacts", "c", true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.ForgetDeskSide(ctx, db, org.ID, conn.ID, "zoho_desk"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetMatchIndex(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("desk index after ForgetDeskSide: %v", err)
	}
	if idx, err := store.GetMatchIndex(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts"); err != nil || !idx.Complete {
		t.Fatalf("CRM index after ForgetDeskSide: %+v, %v", idx, err)
	}
}
