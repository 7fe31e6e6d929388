package syncengine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// linkedContact creates a CRM contact and syncs it to the desk.
func (f *engineFixture) linkedContact(t *testing.T, email string) (crmID, deskID string) {
	t.Helper()
	crmID, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Del", "Email": email})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	l, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", crmID)
	if err != nil {
		t.Fatalf("contact %s not linked: %v", email, err)
	}
	return crmID, l.DeskID
}

func (f *engineFixture) policies(t *testing.T, crmPolicy, deskPolicy string) {
	t.Helper()
	if _, err := store.InsertSettings(f.ctx, f.db, store.Settings{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID,
		ModuleGroup: store.GroupContactsAccounts, SyncType: "TWO_WAY", MatchEmail: "PRIMARY",
		CRMDeletePolicy: crmPolicy, DeskDeletePolicy: deskPolicy, FirstSyncWindowDays: 365}); err != nil {
		t.Fatal(err)
	}
}

func (f *engineFixture) enqueueDelete(t *testing.T, system connector.System, id string) {
	t.Helper()
	if err := store.Enqueue(f.ctx, f.db, f.conn.OrgID, f.conn.ID, []store.NewQueueItem{{
		System: string(system), Module: "contacts", ExtID: id, Kind: store.KindDelete, Origin: store.OriginWebhook,
	}}); err != nil {
		t.Fatal(err)
	}
}

func (f *engineFixture) unlinked(t *testing.T, crmID string) bool {
	t.Helper()
	_, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", crmID)
	return errors.Is(err, store.ErrNotFound)
}

func deskTrashed(f *engineFixture, deskID string) bool {
	rec, ok := f.sb.Desk("us").Contact(deskID)
	return !ok || rec["isTrashed"] == true
}

func TestDeletePolicies(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")

	// ALWAYS: a CRM deletion trashes the desk record.
	f.policies(t, "ALWAYS", "NEVER")
	crmID, deskID := f.linkedContact(t, "always@del.example")
	if err := crmSide.Delete("Contacts", crmID); err != nil {
		t.Fatal(err)
	}
	f.enqueueDelete(t, connector.CRM, crmID)
	f.drain(t)
	if !deskTrashed(f, deskID) || !f.unlinked(t, crmID) {
		t.Fatalf("ALWAYS: desk trashed %v, unlinked %v", deskTrashed(f, deskID), f.unlinked(t, crmID))
	}

	// ONLY_IF_NO_RELATED: a desk contact with a ticket is kept, and unlinked;
	// one without related records is trashed.
	f.policies(t, "ONLY_IF_NO_RELATED", "NEVER")
	busyCRM, busyDesk := f.linkedContact(t, "busy@del.example")
	depts := deskSide.Departments()
	if _, err := deskSide.CreateTicket(map[string]any{"subject": "help", "contactId": busyDesk, "departmentId": depts[0].ID()}); err != nil {
		t.Fatal(err)
	}
	idleCRM, idleDesk := f.linkedContact(t, "idle@del.example")
	for _, id := range []string{busyCRM, idleCRM} {
		if err := crmSide.Delete("Contacts", id); err != nil {
			t.Fatal(err)
		}
		f.enqueueDelete(t, connector.CRM, id)
	}
	f.drain(t)
	if deskTrashed(f, busyDesk) || !f.unlinked(t, busyCRM) {
		t.Fatalf("ONLY_IF_NO_RELATED with a ticket: trashed %v, unlinked %v", deskTrashed(f, busyDesk), f.unlinked(t, busyCRM))
	}
	if !deskTrashed(f, idleDesk) {
		t.Fatal("ONLY_IF_NO_RELATED without related records: desk contact kept")
	}

	// NEVER (desk side): a desk deletion leaves the CRM record and unlinks.
	keepCRM, keepDesk := f.linkedContact(t, "never@del.example")
	if err := deskSide.DeleteContact(keepDesk); err != nil {
		t.Fatal(err)
	}
	f.enqueueDelete(t, connector.Desk, keepDesk)
	f.drain(t)
	if _, ok := crmSide.Record("Contacts", keepCRM); !ok || !f.unlinked(t, keepCRM) {
		t.Fatalf("desk NEVER: CRM kept %v, unlinked %v", ok, f.unlinked(t, keepCRM))
	}

	// A stale deletion of a record that exists is ignored.
	liveCRM, _ := f.linkedContact(t, "alive@del.example")
	f.enqueueDelete(t, connector.CRM, liveCRM)
	f.drain(t)
	if f.unlinked(t, liveCRM) {
		t.Fatal("a deletion notice for a live record removed its link")
	}

	history, _ := store.History(f.ctx, f.db, f.conn.OrgID, f.conn.ID, time.Now().Add(-time.Hour))
	var deleted int64
	for _, h := range history {
		deleted += h.Deleted
	}
	if deleted != 2 {
		t.Fatalf("history counts %d deletions, want 2 (ALWAYS and the idle contact)", deleted)
	}
}
