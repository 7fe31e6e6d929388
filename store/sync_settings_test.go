package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func settingsFor(orgID, connID int64, syncType string, from time.Time) store.Settings {
	return store.Settings{
		OrgID: orgID, ConnectionID: connID, ModuleGroup: store.GroupContactsAccounts,
		SyncType: syncType, MatchEmail: "PRIMARY", CRMDeletePolicy: "NEVER", DeskDeletePolicy: "NEVER",
		FirstSyncWindowDays: 365, EffectiveFrom: from,
	}
}

func TestSettingsApplyByCaptureTime(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other := newOrg(t, db, "other")
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

	v1, err := store.InsertSettings(ctx, db, settingsFor(org.ID, conn.ID, "TWO_WAY", t0))
	if err != nil {
		t.Fatal(err)
	}
	v2s := settingsFor(org.ID, conn.ID, "ONE_WAY", t0.Add(time.Hour))
	v2s.CRMViewID = ptr("view-7")
	v2, err := store.InsertSettings(ctx, db, v2s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.InsertSettings(ctx, db, store.Settings{
		OrgID: org.ID, ConnectionID: conn.ID, ModuleGroup: store.GroupProducts, SyncType: "NONE",
		MatchEmail: "PRIMARY", CRMDeletePolicy: "ALWAYS", DeskDeletePolicy: "ALWAYS", FirstSyncWindowDays: 30,
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{t0, v1.ID},
		{t0.Add(30 * time.Minute), v1.ID},
		{t0.Add(time.Hour), v2.ID},
		{t0.Add(48 * time.Hour), v2.ID},
	} {
		got, err := store.CurrentSettings(ctx, db, org.ID, conn.ID, store.GroupContactsAccounts, tc.at)
		if err != nil || got.ID != tc.want {
			t.Fatalf("CurrentSettings at %v = %d (%v), want %d", tc.at, got.ID, err, tc.want)
		}
	}
	if _, err := store.CurrentSettings(ctx, db, org.ID, conn.ID, store.GroupContactsAccounts, t0.Add(-time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CurrentSettings before the first version = %v, want ErrNotFound", err)
	}
	got, err := store.CurrentSettings(ctx, db, org.ID, conn.ID, store.GroupProducts, time.Now().Add(time.Minute))
	if err != nil || got.SyncType != "NONE" || got.EffectiveFrom.IsZero() || time.Since(got.EffectiveFrom) > time.Hour {
		t.Fatalf("settings with a zero EffectiveFrom = %+v, %v; want effective now", got, err)
	}
	if got, _ := store.CurrentSettings(ctx, db, org.ID, conn.ID, store.GroupContactsAccounts, t0.Add(2*time.Hour)); got.CRMViewID == nil || *got.CRMViewID != "view-7" {
		t.Fatalf("CRMViewID = %v", got.CRMViewID)
	}

	hist, err := store.SettingsHistory(ctx, db, org.ID, conn.ID, store.GroupContactsAccounts)
	if err != nil || len(hist) != 2 || hist[0].ID != v2.ID || hist[1].ID != v1.ID {
		t.Fatalf("SettingsHistory = %+v, %v; want v2, v1", hist, err)
	}

	if _, err := store.CurrentSettings(ctx, db, other.ID, conn.ID, store.GroupContactsAccounts, t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CurrentSettings from another org = %v, want ErrNotFound", err)
	}
	if hist, err := store.SettingsHistory(ctx, db, other.ID, conn.ID, store.GroupContactsAccounts); err != nil || len(hist) != 0 {
		t.Fatalf("SettingsHistory from another org = %d rows, %v", len(hist), err)
	}
	if _, err := store.InsertSettings(ctx, db, settingsFor(other.ID, conn.ID, "TWO_WAY", t0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("InsertSettings for another org's connection = %v, want ErrNotFound", err)
	}
}

func replaceMappings(ctx context.Context, db *sqlx.DB, orgID, connID int64, module string, ms []store.Mapping) ([]store.Mapping, error) {
	var out []store.Mapping
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		out, err = store.ReplaceMappings(ctx, tx, orgID, connID, module, ms)
		return err
	})
	return out, err
}

func TestReplaceMappingsAllowsOneTargetPerField(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other := newOrg(t, db, "other")

	first := []store.Mapping{
		{DeskField: "email", CRMField: "Email", Standard: true, Position: 1},
		{DeskField: "lastName", CRMField: "Last_Name", Standard: true, Position: 0},
		{DeskField: "cf_tier", CRMField: "Tier", ValueMap: []byte(`{"Gold": "GOLD"}`), Position: 2},
	}
	got, err := replaceMappings(ctx, db, org.ID, conn.ID, "contacts", first)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].DeskField != "lastName" || got[2].DeskField != "cf_tier" || string(got[0].ValueMap) != "{}" || string(got[2].ValueMap) != `{"Gold": "GOLD"}` {
		t.Fatalf("ReplaceMappings = %+v", got)
	}
	if _, err := replaceMappings(ctx, db, org.ID, conn.ID, "accounts", []store.Mapping{{DeskField: "accountName", CRMField: "Account_Name"}}); err != nil {
		t.Fatal(err)
	}

	// One target per field, on both sides; a refused set leaves the old one.
	for _, bad := range [][]store.Mapping{
		{{DeskField: "email", CRMField: "Email"}, {DeskField: "secondaryEmail", CRMField: "Email"}},
		{{DeskField: "email", CRMField: "Email"}, {DeskField: "email", CRMField: "Secondary_Email"}},
	} {
		_, err := replaceMappings(ctx, db, org.ID, conn.ID, "contacts", bad)
		if err == nil {
			t.Fatalf("ReplaceMappings(%+v) succeeded, want ErrConflict", bad)
		}
		named := strings.Contains(err.Error(), `field "email"`) || strings.Contains(err.Error(), `field "Email"`)
		if !errors.Is(err, store.ErrConflict) || !named {
			t.Fatalf("ReplaceMappings(%+v) = %v, want ErrConflict naming the field", bad, err)
		}
	}
	now, err := store.Mappings(ctx, db, org.ID, conn.ID, "contacts")
	if err != nil || len(now) != 3 {
		t.Fatalf("mappings after refused replacements = %d, %v; want the 3 saved", len(now), err)
	}

	// Replacing replaces, and other modules are untouched.
	if _, err := replaceMappings(ctx, db, org.ID, conn.ID, "contacts", []store.Mapping{{DeskField: "email", CRMField: "Secondary_Email"}}); err != nil {
		t.Fatal(err)
	}
	now, _ = store.Mappings(ctx, db, org.ID, conn.ID, "contacts")
	if len(now) != 1 || now[0].CRMField != "Secondary_Email" {
		t.Fatalf("contacts after replacement = %+v", now)
	}
	if acc, _ := store.Mappings(ctx, db, org.ID, conn.ID, "accounts"); len(acc) != 1 {
		t.Fatalf("accounts after replacing contacts = %+v", acc)
	}
	if _, err := replaceMappings(ctx, db, org.ID, conn.ID, "contacts", nil); err != nil {
		t.Fatalf("clearing mappings: %v", err)
	}
	if now, _ := store.Mappings(ctx, db, org.ID, conn.ID, "contacts"); len(now) != 0 {
		t.Fatalf("contacts after clearing = %+v", now)
	}

	// Another org sees nothing and writes nothing, even an empty set.
	if ms, err := store.Mappings(ctx, db, other.ID, conn.ID, "accounts"); err != nil || len(ms) != 0 {
		t.Fatalf("Mappings from another org = %+v, %v", ms, err)
	}
	if _, err := replaceMappings(ctx, db, other.ID, conn.ID, "accounts", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceMappings from another org = %v, want ErrNotFound", err)
	}
	if acc, _ := store.Mappings(ctx, db, org.ID, conn.ID, "accounts"); len(acc) != 1 {
		t.Fatalf("accounts after another org's replacement = %+v", acc)
	}
}
