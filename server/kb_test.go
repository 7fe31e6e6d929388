package server

import (
	"encoding/json"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
)

const kbSettingsFields = `connectionId enabled salesIq { dataCenter screenName hasCredential } departments { chatDepartmentId deskCategoryIds }
	permission articleStatus interval timeZone runHour firstSyncAt nextRunAt updatedAt lastRun { id status }`

const kbRunFields = `id trigger status scheduledFor createdAt startedAt finishedAt listed added updated deleted unchanged failed error`

const kbUpdate = `mutation($id: ID!, $in: UpdateKbSyncInput!) { updateKbSync(connectionId: $id, input: $in) { ` + kbSettingsFields + ` } }`

// kbConnect connects the world's desk and CRM through GraphQL and returns
// the connection's global id.
func kbConnect(t *testing.T, w *connectionWorld, admin string) string {
	t.Helper()
	crmOrgID := w.crmOrgID(t, admin)
	r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	return dig(r.Data, "connectCrm", "id").(string)
}

func (w *connectionWorld) salesIQPortal() map[string]any {
	return map[string]any{"dataCenter": "US", "screenName": w.sb.Endpoints()["us"].SalesIQScreenName,
		"credentials": map[string]any{"refreshToken": w.sb.Credentials().RefreshTokens["us"]["salesiq"]}}
}

// kbDepartments gives each root category the desk shows visitors to a
// chat department, in turn.
func kbDepartments(t *testing.T, ts *testServer, admin, connID string) []any {
	t.Helper()
	r := ts.query(admin, `query($id: ID!) { kbDeskCategories(connectionId: $id) { id name parentId visibility }
		kbChatDepartments(connectionId: $id) { id name } }`, map[string]any{"id": connID})
	if len(r.Errors) > 0 {
		t.Fatalf("kb options: %+v", r.Errors)
	}
	deps := r.Data["kbChatDepartments"].([]any)
	byDep := map[string][]any{}
	var order []string
	i := 0
	for _, c := range r.Data["kbDeskCategories"].([]any) {
		m := c.(map[string]any)
		if m["parentId"] != nil || m["visibility"] == "AGENTS" {
			continue
		}
		d := deps[i%len(deps)].(map[string]any)["id"].(string)
		if len(byDep[d]) == 0 {
			order = append(order, d)
		}
		byDep[d] = append(byDep[d], m["id"])
		i++
	}
	var out []any
	for _, d := range order {
		out = append(out, map[string]any{"chatDepartmentId": d, "deskCategoryIds": byDep[d]})
	}
	return out
}

func kbRuns(t *testing.T, ts *testServer, token, connID string) []map[string]any {
	t.Helper()
	r := ts.query(token, `query($id: ID!) { kbSyncRuns(connectionId: $id, first: 100) { edges { node { `+kbRunFields+` } } } }`,
		map[string]any{"id": connID})
	if len(r.Errors) > 0 {
		t.Fatalf("kbSyncRuns: %+v", r.Errors)
	}
	var out []map[string]any
	for _, e := range dig(r.Data, "kbSyncRuns", "edges").([]any) {
		out = append(out, e.(map[string]any)["node"].(map[string]any))
	}
	return out
}

// waitRunDone waits until the run with id is finished and returns it.
func kbWaitRunDone(t *testing.T, ts *testServer, token, connID, id string) map[string]any {
	t.Helper()
	var run map[string]any
	waitFor(t, "the KB run "+id, func() bool {
		for _, r := range kbRuns(t, ts, token, connID) {
			if r["id"] == id && r["finishedAt"] != nil {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

func kbCopies(sb interface{ SalesIQ(string) *salesiq.Server }) map[string]int {
	out := map[string]int{}
	for _, a := range sb.SalesIQ("us").Articles() {
		if a.Source == salesiq.SourceZohoDesk {
			out[a.SourceID]++
		}
	}
	return out
}

// The KB sync over GraphQL: who may do what, the refusals with the
// argument at fault, setting it up, "sync now" running in the background,
// the runs' history with paging, failures and retry, and disabling.
func TestKBSyncOverGraphQL(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t)
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)
	otherAdmin := w.ts.token("globex", auth.RoleAdmin)
	connID := kbConnect(t, w, admin)
	q := w.ts.query
	ok := func(what string, r gqlResponse) gqlResponse {
		t.Helper()
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", what, r.Errors)
		}
		return r
	}
	id := map[string]any{"id": connID}
	const settings = `query($id: ID!) { kbSyncSettings(connectionId: $id) { ` + kbSettingsFields + ` } }`

	// Not set up yet: null for the admin, FORBIDDEN for an agent,
	// NOT_FOUND for another org's admin.
	if r := ok("settings before", q(admin, settings, id)); r.Data["kbSyncSettings"] != nil {
		t.Fatalf("settings before setup = %+v", r.Data)
	}
	wantCode(t, "agent reads settings", q(agent, settings, id), codeForbidden)
	wantCode(t, "another org reads settings", q(otherAdmin, settings, id), codeNotFound)
	wantCode(t, "agent updates", q(agent, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"enabled": true}}), codeForbidden)
	wantCode(t, "another org updates", q(otherAdmin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"salesIq": w.salesIQPortal()}}), codeNotFound)

	r := q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"interval": "WEEKLY"}})
	wantCode(t, "first update without a portal", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.salesIq" {
		t.Fatalf("refusal = %+v", r.Errors)
	}
	bad := w.salesIQPortal()
	bad["credentials"] = map[string]any{"refreshToken": "1000.wrong"}
	r = q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"salesIq": bad}})
	wantCode(t, "refused token", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.salesIq.credentials" {
		t.Fatalf("refusal = %+v", r.Errors)
	}

	r = ok("set up", q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"salesIq": w.salesIQPortal(), "timeZone": "Asia/Tokyo"}}))
	got := dig(r.Data, "updateKbSync").(map[string]any)
	if got["enabled"] != true || got["interval"] != "DAILY" || got["permission"] != "ALL" || got["articleStatus"] != "PUBLISHED" ||
		got["timeZone"] != "Asia/Tokyo" || got["runHour"] != float64(3) || got["nextRunAt"] == nil || got["firstSyncAt"] != nil ||
		dig(got, "salesIq", "hasCredential") != true || got["connectionId"] != connID {
		t.Fatalf("settings after setup = %+v", got)
	}
	if next, _ := time.Parse(time.RFC3339Nano, got["nextRunAt"].(string)); next.In(kbMustZone(t, "Asia/Tokyo")).Hour() != 3 {
		t.Fatalf("next run %s is not at 03:00 in Tokyo", next)
	}
	raw, _ := json.Marshal(r)
	if strings.Contains(string(raw), w.sb.Credentials().RefreshTokens["us"]["salesiq"]) {
		t.Fatal("the SalesIQ token came back")
	}

	deps := kbDepartments(t, w.ts, admin, connID)
	first := deps[0].(map[string]any)
	second := deps[1].(map[string]any)
	twice := []any{first, map[string]any{"chatDepartmentId": second["chatDepartmentId"], "deskCategoryIds": []any{first["deskCategoryIds"].([]any)[0]}}}
	r = q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"departments": twice}})
	wantCode(t, "a category in two departments", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.departments[1].deskCategoryIds[0]" || !strings.Contains(r.Errors[0].Message, "at most one department") {
		t.Fatalf("refusal = %+v", r.Errors)
	}
	r = q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"departments": []any{
		map[string]any{"chatDepartmentId": "999", "deskCategoryIds": first["deskCategoryIds"]}}}})
	wantCode(t, "unknown department", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.departments[0].chatDepartmentId" {
		t.Fatalf("refusal = %+v", r.Errors)
	}
	r = q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"departments": []any{
		map[string]any{"chatDepartmentId": first["chatDepartmentId"], "deskCategoryIds": []any{"777"}}}}})
	wantCode(t, "unknown category", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.departments[0].deskCategoryIds[0]" {
		t.Fatalf("refusal = %+v", r.Errors)
	}
	r = q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"timeZone": "Nowhere/Land"}})
	wantCode(t, "unknown zone", r, codeBadUserInput)
	r = ok("departments", q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"departments": deps, "permission": "BOTH"}}))
	if got := dig(r.Data, "updateKbSync", "departments").([]any); len(got) != len(deps) {
		t.Fatalf("departments = %+v", got)
	}

	// Sync now runs in the background; a run's counters match SalesIQ.
	const syncNow = `mutation($id: ID!) { syncKbNow(connectionId: $id) { ` + kbRunFields + ` } }`
	wantCode(t, "agent syncs", q(agent, syncNow, id), codeForbidden)
	wantCode(t, "another org syncs", q(otherAdmin, syncNow, id), codeNotFound)
	r = ok("syncKbNow", q(admin, syncNow, id))
	runID := dig(r.Data, "syncKbNow", "id").(string)
	if tr := dig(r.Data, "syncKbNow", "trigger"); tr != "MANUAL" {
		t.Fatalf("trigger = %v", tr)
	}
	run := kbWaitRunDone(t, w.ts, admin, connID, runID)
	copies := kbCopies(w.sb)
	if run["status"] != "DONE" || run["added"] != float64(len(copies)) || len(copies) == 0 || run["failed"] != float64(0) {
		t.Fatalf("run = %+v, %d copies in SalesIQ", run, len(copies))
	}
	for id, n := range copies {
		if n != 1 {
			t.Fatalf("desk article %s has %d copies", id, n)
		}
	}
	// The run's end is an event for admins, with the run's counters; agents
	// do not see it.
	const kbEvents = `{ events(first: 500, types: [KB_SYNC_FINISHED]) { edges { node { subjectId payload } } } }`
	events := dig(ok("events", q(admin, kbEvents, nil)).Data, "events", "edges").([]any)
	if len(events) != 1 {
		t.Fatalf("KB_SYNC_FINISHED events = %+v, want one", events)
	}
	if ev := events[0].(map[string]any)["node"].(map[string]any); ev["subjectId"] != connID ||
		dig(ev, "payload", "runId") != runID || dig(ev, "payload", "status") != "DONE" || dig(ev, "payload", "added") != run["added"] {
		t.Fatalf("KB_SYNC_FINISHED = %+v, want run %s DONE with %v added", ev, runID, run["added"])
	}
	if got := dig(ok("agent events", q(agent, kbEvents, nil)).Data, "events", "edges").([]any); len(got) != 0 {
		t.Fatalf("an agent sees %d KB_SYNC_FINISHED events", len(got))
	}
	r = ok("second sync", q(admin, syncNow, id))
	run = kbWaitRunDone(t, w.ts, admin, connID, dig(r.Data, "syncKbNow", "id").(string))
	if run["unchanged"] != float64(len(copies)) || run["added"] != float64(0) || run["updated"] != float64(0) {
		t.Fatalf("second run = %+v", run)
	}

	// History: newest first, paged.
	page := ok("runs page", q(admin, `query($id: ID!, $after: String) { kbSyncRuns(connectionId: $id, first: 1, after: $after) {
		edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, id))
	if dig(page.Data, "kbSyncRuns", "pageInfo", "hasNextPage") != true {
		t.Fatalf("first page = %+v", page.Data)
	}
	newest := dig(page.Data, "kbSyncRuns", "edges").([]any)[0].(map[string]any)["node"].(map[string]any)["id"]
	page = ok("runs page 2", q(admin, `query($id: ID!, $after: String) { kbSyncRuns(connectionId: $id, first: 1, after: $after) {
		edges { node { id } } pageInfo { hasNextPage } } }`, map[string]any{"id": connID, "after": dig(page.Data, "kbSyncRuns", "pageInfo", "endCursor")}))
	older := dig(page.Data, "kbSyncRuns", "edges").([]any)[0].(map[string]any)["node"].(map[string]any)["id"]
	if older != runID || newest == runID || dig(page.Data, "kbSyncRuns", "pageInfo", "hasNextPage") != false {
		t.Fatalf("paging: newest %v, then %v (first run %s)", newest, older, runID)
	}
	wantCode(t, "another org's runs", q(otherAdmin, `query($id: ID!) { kbSyncRuns(connectionId: $id) { edges { cursor } } }`, id), codeNotFound)
	r = ok("lastRun", q(admin, settings, id))
	if dig(r.Data, "kbSyncSettings", "lastRun", "id") != newest || dig(r.Data, "kbSyncSettings", "firstSyncAt") == nil {
		t.Fatalf("settings after runs = %+v", r.Data)
	}

	// Failures: none; a retry of nothing queues nothing.
	r = ok("failures", q(admin, `query($id: ID!) { kbSyncFailures(connectionId: $id) { edges { node { id reason } } pageInfo { hasNextPage } } }`, id))
	if edges := dig(r.Data, "kbSyncFailures", "edges").([]any); len(edges) != 0 {
		t.Fatalf("failures = %+v", edges)
	}
	r = ok("retry", q(admin, `mutation($id: ID!) { retryKbFailures(connectionId: $id) { id } }`, id))
	if r.Data["retryKbFailures"] != nil {
		t.Fatalf("retry with no failures = %+v", r.Data)
	}
	r = q(admin, `mutation($id: ID!) { retryKbFailures(connectionId: $id, ids: ["nonsense"]) { id } }`, id)
	wantCode(t, "a bad failure id", r, codeBadUserInput)

	// Disabled: unscheduled, sync now refused, copies left alone.
	r = ok("disable", q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"enabled": false}}))
	if got := dig(r.Data, "updateKbSync").(map[string]any); got["enabled"] != false || got["nextRunAt"] != nil {
		t.Fatalf("disabled = %+v", got)
	}
	wantCode(t, "sync now while disabled", q(admin, syncNow, id), codeConflict)
	if after := kbCopies(w.sb); len(after) != len(copies) {
		t.Fatalf("disabling changed SalesIQ: %d copies, had %d", len(after), len(copies))
	}
	r = ok("enable", q(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"enabled": true, "interval": "MONTHLY"}}))
	if got := dig(r.Data, "updateKbSync").(map[string]any); got["nextRunAt"] == nil || got["interval"] != "MONTHLY" {
		t.Fatalf("enabled again = %+v", got)
	}
}

func kbMustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A scheduled run missed while every replica was down happens once, as
// soon as the replicas start again, even when two start together: the
// leader's start-up tick claims it, and the other replica's claim finds it
// taken.
func TestKBMissedRunHappensOnceWhenTwoReplicasStart(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t)
	admin := w.ts.token("acme", auth.RoleAdmin)
	connID := kbConnect(t, w, admin)
	if r := w.ts.query(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"salesIq": w.salesIQPortal()}}); len(r.Errors) > 0 {
		t.Fatalf("set up: %+v", r.Errors)
	}
	deps := kbDepartments(t, w.ts, admin, connID)
	if r := w.ts.query(admin, kbUpdate, map[string]any{"id": connID, "in": map[string]any{"departments": deps}}); len(r.Errors) > 0 {
		t.Fatalf("departments: %+v", r.Errors)
	}
	// Every replica goes down; the slot passes meanwhile.
	w.ts.stop()
	db, err := sqlx.Open("postgres", w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	slot := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	if _, err := db.Exec(`UPDATE kb_sync_settings SET next_run_at = $1`, slot); err != nil {
		t.Fatal(err)
	}
	var replicas [2]*testServer
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas[i] = startServerLog(t, w.dsn, maps.Clone(w.env), io.Discard)
		}()
	}
	wg.Wait()
	var runs []map[string]any
	waitFor(t, "the missed run", func() bool {
		runs = kbRuns(t, replicas[0], admin, connID)
		return len(runs) > 0 && runs[0]["finishedAt"] != nil
	})
	// Give the other replica every chance to run it again.
	time.Sleep(2 * time.Second)
	runs = kbRuns(t, replicas[1], admin, connID)
	if len(runs) != 1 || runs[0]["trigger"] != "SCHEDULED" || runs[0]["status"] != "DONE" {
		t.Fatalf("runs after the restart = %+v", runs)
	}
	if when, _ := time.Parse(time.RFC3339Nano, runs[0]["scheduledFor"].(string)); !when.Equal(slot) {
		t.Fatalf("the run serves %v, want the missed slot %s", runs[0]["scheduledFor"], slot)
	}
	copies := kbCopies(w.sb)
	if runs[0]["added"] != float64(len(copies)) || len(copies) == 0 {
		t.Fatalf("run %+v, %d copies", runs[0], len(copies))
	}
	for id, n := range copies {
		if n != 1 {
			t.Fatalf("desk article %s copied %d times", id, n)
		}
	}
	var next time.Time
	if err := db.Get(&next, `SELECT next_run_at FROM kb_sync_settings`); err != nil || !next.After(time.Now()) {
		t.Fatalf("next run %s (%v) is not in the future", next, err)
	}
	leaders := 0
	for _, s := range replicas {
		if s.srv.elector.Leading() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
}
