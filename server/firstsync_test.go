package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

const syncRunsQuery = `{ connections { id syncRuns { id module direction status since total enqueued done added updated failed startedAt finishedAt } } }`

// Connecting starts the first sync (B7): the CRM's contacts created within
// the last year reach the desk (matched by email with the desk's own people,
// never duplicated), older ones do not; the runs report their progress on
// the admin's event stream and end DONE with every queued record applied.
func TestFirstSyncOverGraphQL(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)

	snap := snapshotWorld(t, w)
	crmOrgID := w.crmOrgID(t, admin)
	r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	connID := dig(r.Data, "connectCrm", "id").(string)

	// The runs are there at once; a second start is refused while they run.
	runs := func() []map[string]any {
		t.Helper()
		r := w.ts.query(admin, syncRunsQuery, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("syncRuns: %+v", r.Errors)
		}
		var out []map[string]any
		for _, c := range r.Data["connections"].([]any) {
			for _, run := range c.(map[string]any)["syncRuns"].([]any) {
				out = append(out, run.(map[string]any))
			}
		}
		return out
	}
	if got := runs(); len(got) != 6 {
		t.Fatalf("runs after connecting: %+v", got)
	}
	start := `mutation($id: ID!) { startFirstSync(connectionId: $id) { id status } }`
	wantCode(t, "startFirstSync while running", w.ts.query(admin, start, map[string]any{"id": connID}), "CONFLICT")
	wantCode(t, "startFirstSync as an agent", w.ts.query(agent, start, map[string]any{"id": connID}), "FORBIDDEN")
	if r := w.ts.query(agent, syncRunsQuery, nil); len(r.Errors) == 0 {
		t.Fatalf("an agent read syncRuns: %+v", r.Data)
	}

	waitFor(t, "every run to finish", func() bool {
		for _, run := range runs() {
			if run["status"] != "DONE" {
				return false
			}
		}
		return true
	})
	var since time.Time
	seen := map[string]bool{}
	for _, run := range runs() {
		key := run["module"].(string) + "/" + run["direction"].(string)
		seen[key] = true
		if run["done"] != run["enqueued"] || run["total"] != run["enqueued"] || run["finishedAt"] == nil {
			t.Fatalf("run %s: %+v", key, run)
		}
		if key == "CONTACTS/CRM_TO_DESK" {
			var err error
			if since, err = time.Parse(time.RFC3339Nano, run["since"].(string)); err != nil {
				t.Fatal(err)
			}
			if run["enqueued"].(float64) == 0 || run["added"].(float64) == 0 {
				t.Fatalf("contacts to the desk: %+v", run)
			}
		}
	}
	if len(seen) != 6 || since.IsZero() {
		t.Fatalf("runs: %v", seen)
	}
	if d := time.Since(since) - 365*24*time.Hour; d < 0 || d > time.Minute {
		t.Fatalf("since = %v, not a year ago", since)
	}

	snap.assertFirstSyncLanded(t, w, since)

	// The progress was on the admin's stream.
	ev := w.ts.query(admin, `{ events(first: 500, types: [SYNC_PROGRESS, SYNC_RUN_FINISHED]) { edges { node { type subjectId payload } } } }`, nil)
	if len(ev.Errors) > 0 {
		t.Fatalf("events: %+v", ev.Errors)
	}
	progress, finished := 0, 0
	for _, e := range ev.Data["events"].(map[string]any)["edges"].([]any) {
		node := e.(map[string]any)["node"].(map[string]any)
		payload := node["payload"].(map[string]any)
		if payload["connectionId"] != connID || payload["runId"] == "" || node["subjectId"] != connID {
			t.Fatalf("event %+v", node)
		}
		switch node["type"] {
		case "SYNC_PROGRESS":
			progress++
		case "SYNC_RUN_FINISHED":
			finished++
			if payload["status"] != "DONE" || payload["done"] != payload["enqueued"] {
				t.Fatalf("finished event %+v", payload)
			}
		}
	}
	if progress == 0 || finished != 6 {
		t.Fatalf("%d SYNC_PROGRESS and %d SYNC_RUN_FINISHED events", progress, finished)
	}

	// Once done, the admin may start again: six new runs.
	r = w.ts.query(admin, start, map[string]any{"id": connID})
	if len(r.Errors) > 0 || len(r.Data["startFirstSync"].([]any)) != 6 {
		t.Fatalf("startFirstSync after the first: %+v %+v", r.Errors, r.Data)
	}
}

// worldSnapshot is the sandbox as it stood before connecting: what the
// first sync's outcome is checked against.
type worldSnapshot struct {
	crmContacts []snapshotContact
	deskEmails  map[string]bool
	deskBefore  int
}

type snapshotContact struct {
	email   string
	created time.Time
}

func snapshotWorld(t *testing.T, w *connectionWorld) worldSnapshot {
	t.Helper()
	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	snap := worldSnapshot{deskEmails: map[string]bool{}, deskBefore: deskSide.Counts().Contacts}
	for _, id := range crmSide.IDs("Contacts") {
		r, _ := crmSide.Record("Contacts", id)
		created, err := time.Parse(time.RFC3339, r["Created_Time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		email, _ := r["Email"].(string)
		snap.crmContacts = append(snap.crmContacts, snapshotContact{strings.ToLower(email), created})
	}
	for _, id := range deskSide.IDs("contacts") {
		c, _ := deskSide.Contact(id)
		if e := c.Str("email"); e != "" {
			snap.deskEmails[strings.ToLower(e)] = true
		}
	}
	return snap
}

// assertFirstSyncLanded checks that the desk holds the CRM's contacts of the
// window: those whose email the desk knew were matched (updated), the others
// created; a contact without an email is always created; older ones stayed
// out; nothing was created twice.
func (snap worldSnapshot) assertFirstSyncLanded(t *testing.T, w *connectionWorld, since time.Time) {
	t.Helper()
	deskSide := w.sb.Desk("us")
	created, older := 0, 0
	for _, c := range snap.crmContacts {
		inWindow := !c.created.Before(since)
		switch {
		case inWindow && (c.email == "" || !snap.deskEmails[c.email]):
			created++
		case !inWindow && c.email != "" && !snap.deskEmails[c.email]:
			older++
			if _, ok := deskSide.ContactByEmail(c.email); ok {
				t.Fatalf("%s, created %v before the window, reached the desk", c.email, c.created)
			}
		}
		if inWindow && c.email != "" {
			if _, ok := deskSide.ContactByEmail(c.email); !ok {
				t.Fatalf("%s, created %v in the window, is not in the desk", c.email, c.created)
			}
		}
	}
	if created == 0 || older == 0 {
		t.Fatalf("the world has %d CRM-only contacts in the window and %d older: the test proves nothing", created, older)
	}
	if got := deskSide.Counts().Contacts; got != snap.deskBefore+created {
		t.Fatalf("desk contacts: %d, want %d before + %d created from the CRM", got, snap.deskBefore, created)
	}
}

// An admin cancels a running first sync: every run ends CANCELLED with its
// SYNC_RUN_FINISHED event, a second cancel has nothing to cancel, and a new
// first sync can start afterwards.
func TestCancelFirstSyncOverGraphQL(t *testing.T) {
	t.Parallel()
	// The driver waits an hour between passes, so the runs are still
	// running when the cancel arrives.
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_FIRST_SYNC_INTERVAL": "1h"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)
	r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(w.crmOrgID(t, admin))})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	connID := dig(r.Data, "connectCrm", "id").(string)
	cancel := `mutation($id: ID!) { cancelFirstSync(connectionId: $id) { id status finishedAt } }`
	wantCode(t, "an agent cancels", w.ts.query(agent, cancel, map[string]any{"id": connID}), codeForbidden)
	r = w.ts.query(admin, cancel, map[string]any{"id": connID})
	if len(r.Errors) > 0 {
		t.Fatalf("cancelFirstSync: %+v", r.Errors)
	}
	cancelled := r.Data["cancelFirstSync"].([]any)
	if len(cancelled) != 6 {
		t.Fatalf("cancelled runs: %+v", cancelled)
	}
	for _, run := range cancelled {
		if run.(map[string]any)["status"] != "CANCELLED" || run.(map[string]any)["finishedAt"] == nil {
			t.Fatalf("cancelled run: %+v", run)
		}
	}
	var finished int
	if err := w.ts.srv.db.DB.Get(&finished, `SELECT count(*) FROM events WHERE type = 'SYNC_RUN_FINISHED' AND payload->>'status' = 'CANCELLED'`); err != nil || finished != 6 {
		t.Fatalf("SYNC_RUN_FINISHED events for the cancel: %d, %v", finished, err)
	}
	wantCode(t, "a second cancel", w.ts.query(admin, cancel, map[string]any{"id": connID}), "CONFLICT")
	r = w.ts.query(admin, `mutation($id: ID!) { startFirstSync(connectionId: $id) { status } }`, map[string]any{"id": connID})
	if len(r.Errors) > 0 || len(r.Data["startFirstSync"].([]any)) != 6 {
		t.Fatalf("startFirstSync after a cancel: %+v", r)
	}
}

// Settings given when connecting are in force before the first sync starts
// (the vendor's setup chooses them before "start sync"): a ONE_WAY
// connection's first sync never writes to the CRM. A refused setting names
// its place in the input, and nothing is created.
func TestConnectWithInitialSettings(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	crmOrgID := w.crmOrgID(t, admin)
	connect := func(settings []any) gqlResponse {
		in := w.connectInput(crmOrgID)
		in["settings"] = settings
		return w.ts.query(admin, connectMutation, map[string]any{"in": in})
	}
	for _, c := range []struct {
		name     string
		settings []any
		argument string
	}{
		{"NONE on a Zoho CRM connection", []any{map[string]any{"moduleGroup": "CONTACTS_ACCOUNTS", "syncType": "NONE"}}, "input.settings[0].syncType"},
		{"a group given twice", []any{map[string]any{"moduleGroup": "PRODUCTS"}, map[string]any{"moduleGroup": "PRODUCTS", "syncType": "ONE_WAY"}}, "input.settings[1].moduleGroup"},
		{"a window out of range", []any{map[string]any{"moduleGroup": "PRODUCTS", "firstSyncWindowDays": 0}}, "input.settings[0].firstSyncWindowDays"},
		{"a list view on products", []any{map[string]any{"moduleGroup": "PRODUCTS", "crmViewId": "5"}}, "input.settings[0].crmViewId"},
	} {
		r := connect(c.settings)
		if r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != c.argument {
			t.Fatalf("%s: %+v, want BAD_USER_INPUT on %s", c.name, r.Errors, c.argument)
		}
	}
	if r := w.ts.query(admin, `{ connections { id } }`, nil); len(r.Data["connections"].([]any)) != 0 {
		t.Fatalf("a refused connect created a connection: %+v", r.Data)
	}

	crmContactsBefore := len(w.sb.CRM("us").IDs("Contacts"))
	r := connect([]any{
		map[string]any{"moduleGroup": "CONTACTS_ACCOUNTS", "syncType": "ONE_WAY"},
		map[string]any{"moduleGroup": "PRODUCTS", "firstSyncWindowDays": 30},
	})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm with settings: %+v", r.Errors)
	}
	connID := dig(r.Data, "connectCrm", "id").(string)
	settings := w.ts.query(admin, `query($id: ID!) { node(id: $id) { ... on Connection { settings { moduleGroup syncType firstSyncWindowDays } } } }`,
		map[string]any{"id": connID})
	got := map[string]map[string]any{}
	for _, s := range dig(settings.Data, "node", "settings").([]any) {
		got[s.(map[string]any)["moduleGroup"].(string)] = s.(map[string]any)
	}
	if got["CONTACTS_ACCOUNTS"]["syncType"] != "ONE_WAY" || got["PRODUCTS"]["syncType"] != "TWO_WAY" ||
		got["PRODUCTS"]["firstSyncWindowDays"] != float64(30) || got["CONTACTS_ACCOUNTS"]["firstSyncWindowDays"] != float64(365) {
		t.Fatalf("settings after connecting: %+v", got)
	}

	// The first sync has no desk-to-CRM runs for contacts and accounts, and
	// writes no contact into the CRM.
	var runs []string
	waitFor(t, "every run to finish", func() bool {
		runs = runs[:0]
		done := true
		for _, c := range w.ts.query(admin, syncRunsQuery, nil).Data["connections"].([]any) {
			for _, run := range c.(map[string]any)["syncRuns"].([]any) {
				run := run.(map[string]any)
				runs = append(runs, run["module"].(string)+"/"+run["direction"].(string))
				done = done && run["status"] == "DONE"
			}
		}
		return done
	})
	slices.Sort(runs)
	if want := []string{"ACCOUNTS/CRM_TO_DESK", "CONTACTS/CRM_TO_DESK", "PRODUCTS/CRM_TO_DESK", "PRODUCTS/DESK_TO_CRM"}; !slices.Equal(runs, want) {
		t.Fatalf("runs = %v, want %v", runs, want)
	}
	if n := len(w.sb.CRM("us").IDs("Contacts")); n != crmContactsBefore {
		t.Fatalf("a ONE_WAY first sync changed the CRM's contacts: %d, had %d", n, crmContactsBefore)
	}
}
