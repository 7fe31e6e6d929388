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
	crmOrgID := w.crmOrgID(t, admin)
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

// Two replicas on one database each deliver every ticket event to their
// own subscribers once, whichever replica the change went through.
func TestTwoReplicasDeliverEveryTicketEventOnce(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	second := startServerLog(t, w.dsn, maps.Clone(w.env), io.Discard)
	position := w.ts.streamPosition(admin)
	subs := []*wsClient{w.ts.dial(admin), second.dial(admin)}
	for _, s := range subs {
		s.expect("connection_ack")
		s.subscribe("t", `subscription($f: TicketEventFilter, $after: ID) { ticketEvents(filter: $f, after: $after) { id type status } }`,
			map[string]any{"f": map[string]any{"ticketDeskId": pick.TicketID}, "after": position})
	}
	// Status changes alternately through each replica, each to a status
	// the ticket does not have (setting the same status is no event).
	current := dig(w.ts.query(admin, `query($id: String!) { ticket(deskId: $id) { status } }`, map[string]any{"id": pick.TicketID}).Data, "ticket", "status")
	var statuses []string
	for _, st := range []string{"On Hold", "Open", "Closed", "Open", "On Hold"} {
		if len(statuses) < 4 && (len(statuses) > 0 || st != current) {
			statuses = append(statuses, st)
		}
	}
	for i, st := range statuses {
		via := []*testServer{w.ts, second}[i%2]
		if r := via.query(admin, `mutation($id: String!, $s: String!) { setTicketStatus(input: {ticketDeskId: $id, status: $s}) { status } }`,
			map[string]any{"id": pick.TicketID, "s": st}); len(r.Errors) > 0 {
			t.Fatalf("setTicketStatus %s: %+v", st, r.Errors)
		}
	}
	for n, s := range subs {
		var ids []string
		for _, st := range statuses {
			ev := dig(s.expect("next"), "payload", "data", "ticketEvents").(map[string]any)
			if ev["status"] != st {
				t.Fatalf("replica %d: event %+v, want status %s", n, ev, st)
			}
			ids = append(ids, ev["id"].(string))
		}
		// Nothing more: no event twice.
		_ = s.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var extra map[string]any
		if err := s.conn.ReadJSON(&extra); err == nil && extra["type"] == "next" {
			t.Fatalf("replica %d delivered an extra event %+v after %v", n, extra, ids)
		}
	}
}
