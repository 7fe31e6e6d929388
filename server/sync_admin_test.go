package server

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

const syncSettingsFields = `moduleGroup syncType matchEmail crmViewId deskDepartmentId crmDeletePolicy deskDeletePolicy firstSyncWindowDays effectiveFrom`

// The sync administration surface over real HTTP against a connected
// sandbox: settings, mappings, fields, pause/resume, failures and retry,
// history, and who may see any of it.
func TestSyncAdministrationOverGraphQL(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms"})
	ctx := context.Background()
	db := w.ts.srv.db.DB
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)
	otherAdmin := w.ts.token("globex", auth.RoleAdmin)
	q := w.ts.query
	ok := func(what string, r gqlResponse) gqlResponse {
		t.Helper()
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", what, r.Errors)
		}
		return r
	}

	crmOrgID := w.crmOrgID(t, admin)
	r := ok("connectCrm", q(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}))
	connID := dig(r.Data, "connectCrm", "id").(string)
	raw, _ := base64.RawURLEncoding.DecodeString(connID)
	rowID, _ := strconv.ParseInt(strings.TrimPrefix(string(raw), "Connection:"), 10, 64)
	var orgID int64
	if err := db.Get(&orgID, `SELECT org_id FROM connections WHERE id = $1`, rowID); err != nil {
		t.Fatal(err)
	}
	onConn := func(token, fields string, vars map[string]any) gqlResponse {
		if vars == nil {
			vars = map[string]any{}
		}
		vars["id"] = connID
		return q(token, `query($id: ID!`+varDecls(vars)+`) { node(id: $id) { ... on Connection { `+fields+` } } }`, vars)
	}

	// Default settings, then a new version.
	r = ok("settings", onConn(admin, `settings { `+syncSettingsFields+` }`, nil))
	settings := dig(r.Data, "node", "settings").([]any)
	if len(settings) != 2 {
		t.Fatalf("settings = %+v", settings)
	}
	first := settings[0].(map[string]any)
	if first["moduleGroup"] != "CONTACTS_ACCOUNTS" || first["syncType"] != "TWO_WAY" || first["matchEmail"] != "PRIMARY" ||
		first["crmDeletePolicy"] != "NEVER" || first["firstSyncWindowDays"] != float64(365) {
		t.Fatalf("default settings = %+v", first)
	}
	const update = `mutation($id: ID!, $in: UpdateSyncSettingsInput!) { updateSyncSettings(connectionId: $id, input: $in) {
		settings { ` + syncSettingsFields + ` } effectiveFrom note } }`
	r = ok("updateSyncSettings", q(admin, update, map[string]any{"id": connID, "in": map[string]any{
		"moduleGroup": "CONTACTS_ACCOUNTS", "matchEmail": "SECONDARY", "crmDeletePolicy": "ONLY_IF_NO_RELATED", "crmViewId": "view-42"}}))
	payload := dig(r.Data, "updateSyncSettings").(map[string]any)
	newSettings := payload["settings"].(map[string]any)
	if newSettings["matchEmail"] != "SECONDARY" || newSettings["crmDeletePolicy"] != "ONLY_IF_NO_RELATED" ||
		newSettings["crmViewId"] != "view-42" || newSettings["syncType"] != "TWO_WAY" {
		t.Fatalf("updated settings = %+v", newSettings)
	}
	if !strings.Contains(payload["note"].(string), payload["effectiveFrom"].(string)) || payload["effectiveFrom"] != newSettings["effectiveFrom"] {
		t.Fatalf("payload = %+v", payload)
	}
	r = ok("settings again", onConn(admin, `settings { `+syncSettingsFields+` }`, nil))
	if got := dig(r.Data, "node", "settings").([]any)[0].(map[string]any); got["matchEmail"] != "SECONDARY" || got["effectiveFrom"] != payload["effectiveFrom"] {
		t.Fatalf("current settings = %+v", got)
	}
	r = q(admin, update, map[string]any{"id": connID, "in": map[string]any{"moduleGroup": "PRODUCTS", "syncType": "NONE"}})
	wantCode(t, "NONE on Zoho CRM", r, codeBadUserInput)
	if r.Errors[0].Extensions["argument"] != "input.syncType" {
		t.Fatalf("NONE refusal: %+v", r.Errors)
	}

	// Fields and mappings.
	r = ok("availableFields", onConn(admin, `availableFields(module: CONTACTS) { desk { name label type mandatory custom readOnly } crm { name type custom } }`, nil))
	hasField := func(side, name, typ string) bool {
		for _, f := range dig(r.Data, "node", "availableFields", side).([]any) {
			if m := f.(map[string]any); m["name"] == name && m["type"] == typ {
				return true
			}
		}
		return false
	}
	if !hasField("desk", "twitter", "text") || !hasField("desk", "cf_loyalty_points", "integer") || !hasField("crm", "Loyalty_Points__c", "integer") {
		t.Fatalf("availableFields = %+v", r.Data)
	}
	r = ok("standard mappings", onConn(admin, `fieldMappings(module: CONTACTS) { deskField crmField valueMap standard }`, nil))
	std := dig(r.Data, "node", "fieldMappings").([]any)
	if len(std) == 0 || std[0].(map[string]any)["standard"] != true {
		t.Fatalf("standard mappings = %+v", std)
	}
	inputs := []any{}
	for _, m := range std {
		mm := m.(map[string]any)
		inputs = append(inputs, map[string]any{"deskField": mm["deskField"], "crmField": mm["crmField"]})
	}
	const save = `mutation($id: ID!, $m: [FieldMappingInput!]!) { saveFieldMappings(connectionId: $id, module: CONTACTS, mappings: $m) { deskField crmField standard } }`
	custom := append(append([]any{}, inputs...), map[string]any{"deskField": "cf_loyalty_points", "crmField": "Loyalty_Points__c"})
	r = ok("saveFieldMappings", q(admin, save, map[string]any{"id": connID, "m": custom}))
	if saved := dig(r.Data, "saveFieldMappings").([]any); len(saved) != len(std)+1 || saved[len(saved)-1].(map[string]any)["standard"] != false {
		t.Fatalf("saved = %+v", saved)
	}
	r = ok("saved mappings", onConn(admin, `fieldMappings(module: CONTACTS) { deskField crmField standard }`, nil))
	got := dig(r.Data, "node", "fieldMappings").([]any)
	if len(got) != len(std)+1 || got[len(got)-1].(map[string]any)["crmField"] != "Loyalty_Points__c" {
		t.Fatalf("fieldMappings after save = %+v", got)
	}
	bad := append(append([]any{}, inputs...), map[string]any{"deskField": "twitter", "crmField": "Loyalty_Points__c"})
	r = q(admin, save, map[string]any{"id": connID, "m": bad})
	wantCode(t, "text into integer", r, codeBadUserInput)
	if msg := r.Errors[0].Message; !strings.Contains(msg, `"twitter"`) || !strings.Contains(msg, `"Loyalty_Points__c"`) {
		t.Fatalf("refusal does not name both fields: %s", msg)
	}
	if problems, _ := r.Errors[0].Extensions["problems"].([]any); len(problems) == 0 ||
		problems[0].(map[string]any)["deskField"] != "twitter" || problems[0].(map[string]any)["crmField"] != "Loyalty_Points__c" {
		t.Fatalf("extensions.problems = %+v", r.Errors[0].Extensions)
	}

	// Pause: captured changes wait; resume drains them.
	const pause = `mutation($id: ID!) { pauseSync(connectionId: $id) { id status } }`
	const resume = `mutation($id: ID!) { resumeSync(connectionId: $id) { id status } }`
	r = ok("pauseSync", q(admin, pause, map[string]any{"id": connID}))
	if dig(r.Data, "pauseSync", "status") != "PAUSED" {
		t.Fatalf("pauseSync = %+v", r.Data)
	}
	wantCode(t, "pausing twice", q(admin, pause, map[string]any{"id": connID}), codeConflict)
	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	queuedID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Queued", "Email": "queued.admin@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	failedID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Failed", "Email": "failed.admin@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Enqueue(ctx, db, orgID, rowID, []store.NewQueueItem{
		{System: string(connector.CRM), Module: "contacts", ExtID: queuedID, Kind: store.KindUpsert, Origin: store.OriginWebhook}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordFailure(ctx, db, store.NewFailure{OrgID: orgID, ConnectionID: rowID, Module: "contacts",
		Direction: store.DirectionCRMToDesk, SourceSystem: string(connector.CRM), SourceID: failedID, Reason: "mandatory_missing",
		Fields: []string{"lastName"}, Message: "lastName is mandatory", RawError: []byte(`{"code":"MANDATORY_NOT_FOUND"}`)}); err != nil {
		t.Fatal(err)
	}
	r = ok("syncFailures", onConn(admin, `syncFailures(module: CONTACTS) { edges { cursor node { id module direction source sourceId reason fields message rawError attempts } } pageInfo { hasNextPage } }`, nil))
	edges := dig(r.Data, "node", "syncFailures", "edges").([]any)
	if len(edges) != 1 {
		t.Fatalf("syncFailures = %+v", r.Data)
	}
	failure := edges[0].(map[string]any)["node"].(map[string]any)
	if failure["sourceId"] != failedID || failure["reason"] != "mandatory_missing" || failure["direction"] != "CRM_TO_DESK" ||
		failure["source"] != "CRM" || !strings.Contains(failure["rawError"].(string), "MANDATORY_NOT_FOUND") {
		t.Fatalf("failure = %+v", failure)
	}
	r = ok("retrySyncFailures", q(admin, `mutation($id: ID!, $ids: [ID!]) { retrySyncFailures(connectionId: $id, ids: $ids) }`,
		map[string]any{"id": connID, "ids": []any{failure["id"]}}))
	if dig(r.Data, "retrySyncFailures") != float64(1) {
		t.Fatalf("retrySyncFailures = %+v", r.Data)
	}
	queued := func(extID string) (origin string, found bool) {
		err := db.Get(&origin, `SELECT origin FROM change_queue WHERE connection_id = $1 AND ext_id = $2`, rowID, extID)
		return origin, err == nil
	}
	if origin, found := queued(failedID); !found || origin != store.OriginRetry {
		t.Fatalf("retried record queued = %v, origin %q", found, origin)
	}
	r = ok("queueDepth", onConn(admin, `queueDepth { module system pending }`, nil))
	if depths := dig(r.Data, "node", "queueDepth").([]any); len(depths) == 0 {
		t.Fatalf("queueDepth = %+v", r.Data)
	}
	// The engine is running; while paused it must leave the queue alone.
	// This is the one wait without a condition: it checks that nothing happens.
	time.Sleep(time.Second)
	for _, id := range []string{queuedID, failedID} {
		if _, found := queued(id); !found {
			t.Fatalf("record %s left the queue of a paused connection", id)
		}
	}
	r = ok("resumeSync", q(admin, resume, map[string]any{"id": connID}))
	if dig(r.Data, "resumeSync", "status") != "ACTIVE" {
		t.Fatalf("resumeSync = %+v", r.Data)
	}
	wantCode(t, "resuming twice", q(admin, resume, map[string]any{"id": connID}), codeConflict)
	waitFor(t, "the queue to drain", func() bool {
		_, a := queued(queuedID)
		_, b := queued(failedID)
		return !a && !b
	})
	waitFor(t, "both contacts in the desk", func() bool {
		_, a := deskSide.ContactByEmail("queued.admin@new.example")
		_, b := deskSide.ContactByEmail("failed.admin@new.example")
		return a && b
	})
	var events int
	if err := db.Get(&events, `SELECT count(*) FROM events WHERE type = 'CONNECTION_STATUS_CHANGED' AND org_id = $1`, orgID); err != nil || events != 2 {
		t.Fatalf("status events = %d (%v)", events, err)
	}

	// History shows the work; the retried failure has resolved.
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	waitFor(t, "history buckets", func() bool {
		r := ok("syncHistory", onConn(admin, `syncHistory(since: $since) { bucket module direction added updated deleted failed }`,
			map[string]any{"since": since}))
		var added float64
		for _, h := range dig(r.Data, "node", "syncHistory").([]any) {
			if m := h.(map[string]any); m["module"] == "CONTACTS" && m["direction"] == "CRM_TO_DESK" {
				added += m["added"].(float64)
			}
		}
		return added >= 2
	})
	r = ok("syncHistory default", onConn(admin, `syncHistory { bucket }`, nil))
	if len(dig(r.Data, "node", "syncHistory").([]any)) == 0 {
		t.Fatalf("default syncHistory = %+v", r.Data)
	}
	// Only the retried failure is watched: the first sync may record
	// failures of its own meanwhile (accounts sharing a name, B14).
	waitFor(t, "the failure to resolve", func() bool {
		r := ok("syncFailures", onConn(admin, `syncFailures(module: CONTACTS, first: 100) { edges { node { id } } }`, nil))
		for _, e := range dig(r.Data, "node", "syncFailures", "edges").([]any) {
			if dig(e.(map[string]any), "node", "id") == failure["id"] {
				return false
			}
		}
		return true
	})
	ok("syncConflicts", onConn(admin, `syncConflicts(first: 10) { edges { node { id winner } } pageInfo { hasNextPage } }`, nil))

	// An agent is refused everything; another org sees nothing.
	fields := map[string]string{
		"settings":        `settings { syncType }`,
		"fieldMappings":   `fieldMappings(module: CONTACTS) { deskField }`,
		"availableFields": `availableFields(module: CONTACTS) { desk { name } }`,
		"syncHistory":     `syncHistory { bucket }`,
		"syncFailures":    `syncFailures { edges { cursor } }`,
		"syncConflicts":   `syncConflicts { edges { cursor } }`,
		"queueDepth":      `queueDepth { pending }`,
	}
	for name, sel := range fields {
		wantCode(t, "agent "+name, onConn(agent, sel, nil), codeForbidden)
		wantCode(t, "other org "+name, onConn(otherAdmin, sel, nil), codeNotFound)
	}
	mutations := map[string]struct {
		query string
		vars  map[string]any
	}{
		"updateSyncSettings": {update, map[string]any{"in": map[string]any{"moduleGroup": "PRODUCTS", "syncType": "ONE_WAY"}}},
		"saveFieldMappings":  {save, map[string]any{"m": inputs}},
		"retrySyncFailures":  {`mutation($id: ID!) { retrySyncFailures(connectionId: $id) }`, map[string]any{}},
		"pauseSync":          {pause, map[string]any{}},
		"resumeSync":         {resume, map[string]any{}},
	}
	for name, m := range mutations {
		m.vars["id"] = connID
		wantCode(t, "agent "+name, q(agent, m.query, m.vars), codeForbidden)
		wantCode(t, "other org "+name, q(otherAdmin, m.query, m.vars), codeNotFound)
	}
	// Nothing the refused callers asked for happened.
	r = ok("status", onConn(admin, `status settings { moduleGroup syncType }`, nil))
	if dig(r.Data, "node", "status") != "ACTIVE" || dig(r.Data, "node", "settings").([]any)[1].(map[string]any)["syncType"] != "TWO_WAY" {
		t.Fatalf("after refused calls: %+v", r.Data)
	}
}

// varDecls declares the extra variables of a node query (every one a
// DateTime here, the only kind the tests pass).
func varDecls(vars map[string]any) string {
	var b strings.Builder
	for k := range vars {
		if k != "id" {
			b.WriteString(", $" + k + ": DateTime")
		}
	}
	return b.String()
}
