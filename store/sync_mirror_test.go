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

func TestUpsertMirrorWritesABatchAndKeepsTheNewest(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	t0 := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

	batch := make([]store.MirrorRecord, 200)
	ids := make([]string, 200)
	for i := range batch {
		ids[i] = fmt.Sprint("R", i)
		batch[i] = store.MirrorRecord{
			System: "zoho_crm", Module: "contacts", ExtID: ids[i],
			Fields:     []byte(fmt.Sprintf(`{"Last_Name": "n%d"}`, i)),
			Email:      ptr(fmt.Sprintf("Person%d@Example.COM", i)),
			Name:       ptr(fmt.Sprint("Person ", i)),
			CreatedAt:  &t0,
			ModifiedAt: &t0,
		}
	}
	n, err := store.UpsertMirror(ctx, db, org.ID, conn.ID, batch)
	if err != nil || n != 200 {
		t.Fatalf("UpsertMirror(200) = %d, %v", n, err)
	}
	got, err := store.MirrorByIDs(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", ids)
	if err != nil || len(got) != 200 {
		t.Fatalf("MirrorByIDs = %d records, %v", len(got), err)
	}
	r7 := got["R7"]
	if *r7.Email != "person7@example.com" || string(r7.Fields) != `{"Last_Name": "n7"}` || !r7.ModifiedAt.Equal(t0) || r7.OrgID != org.ID {
		t.Fatalf("mirrored R7 = %+v", r7)
	}

	// Re-upsert: newer reads replace, an older read does not, a repeated
	// record counts once with its last copy.
	later := t0.Add(time.Minute)
	earlier := t0.Add(-time.Minute)
	n, err = store.UpsertMirror(ctx, db, org.ID, conn.ID, []store.MirrorRecord{
		{System: "zoho_crm", Module: "contacts", ExtID: "R1", Fields: []byte(`{"v": "old"}`), ModifiedAt: &earlier},
		{System: "zoho_crm", Module: "contacts", ExtID: "R2", Fields: []byte(`{"v": "first"}`), ModifiedAt: &later},
		{System: "zoho_crm", Module: "contacts", ExtID: "R2", Fields: []byte(`{"v": "second"}`), ModifiedAt: &later},
		{System: "zoho_crm", Module: "contacts", ExtID: "R3", Fields: []byte(`{"v": "same time"}`), ModifiedAt: &t0, Email: ptr("  ")},
		{System: "zoho_crm", Module: "contacts", ExtID: "R900", Fields: []byte(`{"v": "new"}`)},
	})
	if err != nil || n != 3 {
		t.Fatalf("re-upsert wrote %d, %v; want 3 (R2, R3, R900)", n, err)
	}
	got, _ = store.MirrorByIDs(ctx, db, org.ID, conn.ID, "zoho_crm", "contacts", []string{"R1", "R2", "R3", "R900"})
	if string(got["R1"].Fields) != `{"Last_Name": "n1"}` {
		t.Fatalf("an older read replaced R1: %s", got["R1"].Fields)
	}
	if string(got["R2"].Fields) != `{"v": "second"}` || !got["R2"].ModifiedAt.Equal(later) {
		t.Fatalf("R2 = %s at %v, want the batch's last copy", got["R2"].Fields, got["R2"].ModifiedAt)
	}
	if got["R3"].Email != nil || !got["R3"].CreatedAt.Equal(t0) {
		t.Fatalf("R3 = email %v, created %v; want no email and the created time kept", got["R3"].Email, got["R3"].CreatedAt)
	}
	if string(got["R900"].Fields) != `{"v": "new"}` {
		t.Fatalf("R900 = %+v", got["R900"])
	}
	var rows int
	if err := db.GetContext(ctx, &rows, `SELECT count(*) FROM mirror_records`); err != nil || rows != 201 {
		t.Fatalf("%d mirror rows, %v; want 201", rows, err)
	}
}

func TestMirrorLookupsAreCaseInsensitiveAndSkipDeleted(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	t0 := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	if _, err := store.UpsertMirror(ctx, db, org.ID, conn.ID, []store.MirrorRecord{
		{System: "zoho_desk", Module: "contacts", ExtID: "d2", Email: ptr("Ann@Example.com"), CreatedAt: &t1},
		{System: "zoho_desk", Module: "contacts", ExtID: "d1", Email: ptr(" ANN@example.COM"), CreatedAt: &t0},
		{System: "zoho_desk", Module: "contacts", ExtID: "d3", Email: ptr("bob@example.com")},
		{System: "zoho_crm", Module: "contacts", ExtID: "c1", Email: ptr("ann@example.com")},
		{System: "zoho_desk", Module: "accounts", ExtID: "a1", Name: ptr("Acme GmbH")},
		{System: "zoho_desk", Module: "accounts", ExtID: "a2", Name: ptr("Other")},
	}); err != nil {
		t.Fatal(err)
	}
	found, err := store.MirrorFindByEmail(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "aNN@EXAMPLE.com", 10)
	if err != nil || len(found) != 2 || found[0].ExtID != "d1" || found[1].ExtID != "d2" {
		t.Fatalf("MirrorFindByEmail = %+v, %v; want d1 then d2 (oldest first)", found, err)
	}
	if found, _ := store.MirrorFindByEmail(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "ann@example.com", 1); len(found) != 1 {
		t.Fatalf("MirrorFindByEmail with limit 1 = %d records", len(found))
	}
	if found, _ := store.MirrorFindByEmail(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "", 10); len(found) != 0 {
		t.Fatalf("MirrorFindByEmail(\"\") = %+v, want nothing", found)
	}
	accounts, err := store.MirrorFindByName(ctx, db, org.ID, conn.ID, "zoho_desk", "accounts", "ACME gmbh", 10)
	if err != nil || len(accounts) != 1 || accounts[0].ExtID != "a1" {
		t.Fatalf("MirrorFindByName = %+v, %v", accounts, err)
	}

	deletedAt := t1.Add(time.Hour)
	n, err := store.MarkMirrorDeleted(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", []string{"d1", "missing"}, deletedAt)
	if err != nil || n != 1 {
		t.Fatalf("MarkMirrorDeleted = %d, %v; want 1", n, err)
	}
	if found, _ := store.MirrorFindByEmail(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", "ann@example.com", 10); len(found) != 1 || found[0].ExtID != "d2" {
		t.Fatalf("MirrorFindByEmail after deleting d1 = %+v", found)
	}
	got, _ := store.MirrorByIDs(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", []string{"d1"})
	if got["d1"].DeletedAt == nil || !got["d1"].DeletedAt.Equal(deletedAt) {
		t.Fatalf("deleted d1 = %+v; MirrorByIDs keeps deleted records", got["d1"])
	}
}

func TestMirrorIsScopedToItsOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, _ := orgWithConnection(t, db, "other")
	rec := store.MirrorRecord{System: "zoho_desk", Module: "contacts", ExtID: "d1", Email: ptr("a@b.c"), Name: ptr("A"), Fields: []byte(`{"v": 1}`)}
	if _, err := store.UpsertMirror(ctx, db, org.ID, conn.ID, []store.MirrorRecord{rec}); err != nil {
		t.Fatal(err)
	}
	rec.Fields = []byte(`{"v": 2}`)
	if _, err := store.UpsertMirror(ctx, db, other.ID, conn.ID, []store.MirrorRecord{rec}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpsertMirror on another org's connection = %v, want ErrNotFound", err)
	}
	if m, err := store.MirrorByIDs(ctx, db, other.ID, conn.ID, "zoho_desk", "contacts", []string{"d1"}); err != nil || len(m) != 0 {
		t.Fatalf("MirrorByIDs from another org = %v, %v", m, err)
	}
	if f, err := store.MirrorFindByEmail(ctx, db, other.ID, conn.ID, "zoho_desk", "contacts", "a@b.c", 5); err != nil || len(f) != 0 {
		t.Fatalf("MirrorFindByEmail from another org = %v, %v", f, err)
	}
	if f, err := store.MirrorFindByName(ctx, db, other.ID, conn.ID, "zoho_desk", "contacts", "a", 5); err != nil || len(f) != 0 {
		t.Fatalf("MirrorFindByName from another org = %v, %v", f, err)
	}
	if n, err := store.MarkMirrorDeleted(ctx, db, other.ID, conn.ID, "zoho_desk", "contacts", []string{"d1"}, time.Now()); err != nil || n != 0 {
		t.Fatalf("MarkMirrorDeleted from another org = %d, %v", n, err)
	}
	got, _ := store.MirrorByIDs(ctx, db, org.ID, conn.ID, "zoho_desk", "contacts", []string{"d1"})
	if string(got["d1"].Fields) != `{"v": 1}` || got["d1"].DeletedAt != nil {
		t.Fatalf("record after another org's attempts = %+v", got["d1"])
	}
}
