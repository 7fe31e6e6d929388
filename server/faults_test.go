package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox/faults"
)

// With both vendors misbehaving on about one request in ten (429, 5xx,
// dropped connections, requests that hang and fail), a first sync and a
// stream of edits on both sides still end with both sides as the mapping
// says: nothing missing, nothing duplicated, and only permanent errors in the
// failure history (transient ones are retried until they pass).
func TestSyncSurvivesVendorFaults(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "300ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	snap := snapshotWorld(t, w)
	crmOrgID := w.crmOrgID(t, admin)
	if r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}); len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	rules := []faults.Rule{
		{Kind: faults.RateLimit, Rate: 0.03},
		{Kind: faults.ServerError, Rate: 0.03},
		{Kind: faults.Drop, Rate: 0.03},
		{Kind: faults.Timeout, Rate: 0.01, Delay: 300 * time.Millisecond},
	}
	for _, vendor := range []string{"crm", "desk"} {
		w.sb.Injector(vendor).SetRules(rules...)
	}

	runsDone := func() bool {
		r := w.ts.query(admin, syncRunsQuery, nil)
		conns, _ := r.Data["connections"].([]any)
		if len(conns) == 0 {
			return false
		}
		runs, _ := conns[0].(map[string]any)["syncRuns"].([]any)
		if len(runs) == 0 {
			return false
		}
		for _, run := range runs {
			if run.(map[string]any)["status"] != "DONE" {
				return false
			}
		}
		return true
	}
	waitLong(t, "the first sync under faults", runsDone)
	r := w.ts.query(admin, syncRunsQuery, nil)
	var since time.Time
	for _, run := range r.Data["connections"].([]any)[0].(map[string]any)["syncRuns"].([]any) {
		m := run.(map[string]any)
		if m["module"] == "CONTACTS" && m["direction"] == "CRM_TO_DESK" {
			since, _ = time.Parse(time.RFC3339Nano, m["since"].(string))
		}
	}
	snap.assertFirstSyncLanded(t, w, since)

	// A stream of edits on both sides, still under faults.
	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	time.Sleep(1100 * time.Millisecond) // modified times have second precision
	type edit struct{ crmID, deskID, value string }
	var edits []edit
	rows, err := w.ts.srv.db.DB.Queryx(`SELECT crm_id, desk_id FROM links WHERE module = 'contacts' ORDER BY id LIMIT 12`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e edit
		if err := rows.Scan(&e.crmID, &e.deskID); err != nil {
			t.Fatal(err)
		}
		edits = append(edits, e)
	}
	rows.Close()
	if len(edits) < 6 {
		t.Fatalf("only %d linked contacts to edit", len(edits))
	}
	for i := range edits {
		edits[i].value = fmt.Sprintf("faulty %d", i)
		if i%2 == 0 {
			if err := crmSide.Edit("Contacts", edits[i].crmID, map[string]any{"Title": edits[i].value}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := deskSide.UpdateContact(edits[i].deskID, map[string]any{"title": edits[i].value}); err != nil {
			t.Fatal(err)
		}
	}
	waitLong(t, "every edit on the other side", func() bool {
		for i, e := range edits {
			if i%2 == 0 {
				got, _ := deskSide.Contact(e.deskID)
				if got["title"] != e.value {
					return false
				}
			} else if got, _ := crmSide.Record("Contacts", e.crmID); got["Title"] != e.value {
				return false
			}
		}
		return true
	})
	var stats []string
	for _, vendor := range []string{"crm", "desk"} {
		st := w.sb.Injector(vendor).Stats()
		stats = append(stats, fmt.Sprintf("%s %v", vendor, st))
		if st[faults.RateLimit]+st[faults.ServerError]+st[faults.Drop] == 0 {
			t.Fatalf("no faults were injected into %s: the test proves nothing", vendor)
		}
	}
	t.Logf("injected: %v", stats)
	var transient int
	if err := w.ts.srv.db.DB.Get(&transient, `SELECT count(*) FROM sync_failures
		WHERE resolved_at IS NULL AND reason IN ('rate_limited', 'upstream_unavailable', 'auth')`); err != nil || transient != 0 {
		t.Fatalf("%d transient failures reached the failure history (%v)", transient, err)
	}
	if got := deskSide.Counts().Contacts; got != snap.deskBefore+countCreated(snap, since) {
		t.Fatalf("desk contacts after the edits: %d (duplicates?)", got)
	}
}

// countCreated is how many desk contacts the first sync creates from the
// CRM (see assertFirstSyncLanded).
func countCreated(snap worldSnapshot, since time.Time) int {
	n := 0
	for _, c := range snap.crmContacts {
		if !c.created.Before(since) && (c.email == "" || !snap.deskEmails[c.email]) {
			n++
		}
	}
	return n
}

// waitLong is waitFor with room for retries and backoff under faults.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
