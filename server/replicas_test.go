package server

import (
	"io"
	"maps"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

// Two gateway replicas on one database share the sync: one leads the
// scheduled work, both run workers, and no change is applied twice (the
// desk ends with exactly the records the first sync should create, and the
// edits that follow land once).
func TestTwoReplicasShareTheSync(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "300ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	env := maps.Clone(w.env)
	second := startServerLog(t, w.dsn, env, io.Discard)
	admin := w.ts.token("acme", auth.RoleAdmin)
	snap := snapshotWorld(t, w)
	orgs := w.ts.query(admin, `query($c: ZohoCredentialsInput!) { reachableCrmOrgs(crmSystem: ZOHO_CRM, dataCenter: US, credentials: $c) { id } }`,
		map[string]any{"c": map[string]any{"refreshToken": w.crmRT}})
	crmOrgID := orgs.Data["reachableCrmOrgs"].([]any)[0].(map[string]any)["id"].(string)
	// Connect through the second replica: either may serve any request.
	if r := second.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}); len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	var since time.Time
	waitLong(t, "the first sync on two replicas", func() bool {
		r := w.ts.query(admin, syncRunsQuery, nil)
		conns, _ := r.Data["connections"].([]any)
		if len(conns) == 0 {
			return false
		}
		runs, _ := conns[0].(map[string]any)["syncRuns"].([]any)
		for _, run := range runs {
			m := run.(map[string]any)
			if m["status"] != "DONE" {
				return false
			}
			if m["module"] == "CONTACTS" && m["direction"] == "CRM_TO_DESK" {
				since, _ = time.Parse(time.RFC3339Nano, m["since"].(string))
			}
		}
		return len(runs) > 0
	})
	snap.assertFirstSyncLanded(t, w, since)
	leaders := 0
	for _, s := range []*testServer{w.ts, second} {
		if s.srv.elector.Leading() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas lead, want exactly one", leaders)
	}
	// The contacts run counted each creation once: as many as the desk gained.
	var added int
	if err := w.ts.srv.db.DB.Get(&added, `SELECT added FROM sync_runs WHERE module = 'contacts' AND direction = 'CRM_TO_DESK'`); err != nil {
		t.Fatal(err)
	}
	if want := countCreated(snap, since); added != want {
		t.Fatalf("the contacts run added %d, want %d", added, want)
	}
}
