package server

import (
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

// A connected gateway keeps both sides in step by itself: the leader polls,
// the workers apply, with no test code between a change and its effect.
func TestConnectedGatewaySyncsChanges(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	crmOrgID := w.crmOrgID(t, admin)
	if r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}); len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	// Wait for the first poll to place its cursors, then let a second pass
	// (modified times have second precision) before changing anything.
	waitFor(t, "the first poll", func() bool {
		var n int
		_ = w.ts.srv.db.DB.Get(&n, `SELECT count(*) FROM sync_cursors`)
		return n >= 6
	})
	time.Sleep(1100 * time.Millisecond)

	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	crmID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Live", "Email": "live.sync@new.example", "Phone": "03-0000-0001"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CRM contact in the desk", func() bool {
		_, ok := deskSide.ContactByEmail("live.sync@new.example")
		return ok
	})
	rec, _ := deskSide.ContactByEmail("live.sync@new.example")
	time.Sleep(1100 * time.Millisecond)
	if _, err := deskSide.UpdateContact(rec.ID(), map[string]any{"phone": "090-0000-0002"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the desk edit in the CRM", func() bool {
		got, _ := crmSide.Record("Contacts", crmID)
		return got["Phone"] == "090-0000-0002"
	})
	// History shows the work. The worker writes the vendor before it
	// commits the history, so wait for the commit too.
	waitFor(t, "the history of both changes", func() bool {
		var added, updated int64
		if err := w.ts.srv.db.DB.QueryRow(`SELECT COALESCE(sum(added), 0), COALESCE(sum(updated), 0) FROM sync_history`).Scan(&added, &updated); err != nil {
			t.Fatal(err)
		}
		return added >= 1 && updated >= 1
	})
}

// waitFor polls cond until it holds, failing after a generous deadline (a
// hang, not a speed check).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
