package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/auth"
)

const ticketEventsSubscription = `subscription($f: TicketEventFilter, $after: ID) { ticketEvents(filter: $f, after: $after) {
	id type source ticketDeskId contactDeskId status previousStatus mergedDeskIds thread { deskId cc } comment { deskId content }
	ticket { deskId status customer { deals(first: 5) { edges { node { amount } } } } } } }`

const createTicketMutation = `mutation($in: CreateTicketFromCrmInput!) { createTicketFromCrm(input: $in) { id deskId subject status contact { deskId } } }`

// Ticket work from a CRM record (E1-E3) end to end: the ticket lands in the
// desk and on the record at once; replies, comments and status changes go
// through the desk's rules; every action is idempotent under its key;
// counts follow; a subscriber filtered by the contact sees each change once,
// in order, from deskbridge and from the desk's webhook alike, under its
// permission profile.
func TestTicketsFromCRMRecords(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	restricted := w.ts.token("acme", auth.RoleRestrictedAgent)
	light := w.ts.token("acme", auth.RoleLightAgent)
	desk := w.sb.Desk("us")
	var dept string
	if err := w.ts.srv.db.DB.Get(&dept, `SELECT department_id FROM mirror_records WHERE module = 'tickets' AND ext_id = $1`, pick.TicketID); err != nil {
		t.Fatal(err)
	}

	// A restricted agent follows the contact's tickets: it sees them, but
	// never a deal amount.
	// A client reads the stream's position first, to follow from there.
	position := w.ts.streamPosition(admin)
	sub := w.ts.dial(restricted)
	sub.expect("connection_ack")
	sub.subscribe("t", ticketEventsSubscription, map[string]any{"f": map[string]any{"contactDeskId": pick.DeskID}, "after": position})

	in := map[string]any{"module": "CONTACTS", "crmId": pick.CRMID, "departmentId": dept, "subject": "Invoice question",
		"description": "Raised from the CRM", "idempotencyKey": "create-1"}
	before := desk.Counts().Tickets
	r := w.ts.query(admin, createTicketMutation, map[string]any{"in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("createTicketFromCrm: %+v\n%s", r.Errors, grepLog(w.log.String(), "internal error"))
	}
	created := r.Data["createTicketFromCrm"].(map[string]any)
	ticketID := created["deskId"].(string)
	if dig(created, "contact", "deskId") != pick.DeskID {
		t.Fatalf("the ticket's contact is %v, want the linked desk contact %s", created["contact"], pick.DeskID)
	}
	// The same key again: the same ticket, no second one in the desk.
	if r := w.ts.query(admin, createTicketMutation, map[string]any{"in": in}); len(r.Errors) > 0 || dig(r.Data, "createTicketFromCrm", "deskId") != ticketID {
		t.Fatalf("retried create: %+v %+v", r.Errors, r.Data)
	}
	if got := desk.Counts().Tickets; got != before+1 {
		t.Fatalf("the desk has %d tickets, want %d: a retry made a second ticket", got, before+1)
	}
	in["subject"] = "Another subject"
	if r := w.ts.query(admin, createTicketMutation, map[string]any{"in": in}); r.code(0) != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("a reused key: %+v", r.Errors)
	}
	nextEvent(t, sub, "CREATED", "DESKBRIDGE", ticketID, pick.DeskID, nil)
	// On the record at once (D4, E3).
	counts := `query($id: String!) { crmRecord(module: CONTACTS, crmId: $id) { ticketCounts { total resolved unresolved } } }`
	r = w.ts.query(admin, counts, map[string]any{"id": pick.CRMID})
	if got := int(dig(r.Data, "crmRecord", "ticketCounts", "total").(float64)); got != pick.Tickets+1 {
		t.Fatalf("the record counts %d tickets right after the create, want %d", got, pick.Tickets+1)
	}
	resolvedBefore := int(dig(r.Data, "crmRecord", "ticketCounts", "resolved").(float64))

	// A reply to all, sent once under its key.
	threadsBefore := len(desk.Threads(ticketID))
	reply := map[string]any{"ticketDeskId": ticketID, "mode": "REPLY_ALL", "cc": []string{"boss@customer.example"},
		"content": "<p>We are on it.</p>", "idempotencyKey": "reply-1"}
	const replyMutation = `mutation($in: TicketReplyInput!) { replyToTicket(input: $in) { deskId cc fromEmailAddress } }`
	r = w.ts.query(admin, replyMutation, map[string]any{"in": reply})
	if len(r.Errors) > 0 || dig(r.Data, "replyToTicket", "fromEmailAddress") == nil {
		t.Fatalf("replyToTicket: %+v %+v", r.Errors, r.Data)
	}
	threadID := dig(r.Data, "replyToTicket", "deskId")
	if r := w.ts.query(admin, replyMutation, map[string]any{"in": reply}); dig(r.Data, "replyToTicket", "deskId") != threadID {
		t.Fatalf("retried reply: %+v", r)
	}
	if got := len(desk.Threads(ticketID)); got != threadsBefore+1 {
		t.Fatalf("the ticket has %d threads, want %d: a retried reply sent a second email", got, threadsBefore+1)
	}
	nextEvent(t, sub, "REPLY", "DESKBRIDGE", ticketID, pick.DeskID, threadID)
	// A forward needs somewhere to go; a bad address is refused before
	// anything is sent.
	if r := w.ts.query(admin, replyMutation, map[string]any{"in": map[string]any{"ticketDeskId": ticketID, "mode": "FORWARD",
		"content": "fyi", "idempotencyKey": "fwd-1"}}); r.code(0) != "FAILED_PRECONDITION" {
		t.Fatalf("a forward without to: %+v", r.Errors)
	}

	// C3: a light agent reads the conversation but cannot act.
	r = w.ts.query(light, `query($id: String!) { ticket(deskId: $id) { threads { deskId } comments { deskId } } }`, map[string]any{"id": ticketID})
	if len(r.Errors) > 0 || len(dig(r.Data, "ticket", "threads").([]any)) != threadsBefore+1 {
		t.Fatalf("a light agent reading the conversation: %+v %+v", r.Errors, r.Data)
	}
	if r := w.ts.query(light, `mutation($id: String!) { addTicketComment(input: {ticketDeskId: $id, content: "x", idempotencyKey: "c-light"}) { deskId } }`,
		map[string]any{"id": ticketID}); r.code(0) != codeForbidden {
		t.Fatalf("a light agent commenting: %+v", r.Errors)
	}

	r = w.ts.query(admin, `mutation($id: String!) { addTicketComment(input: {ticketDeskId: $id, content: "Checked the invoice", idempotencyKey: "c-1"}) { deskId isPublic } }`,
		map[string]any{"id": ticketID})
	if len(r.Errors) > 0 || dig(r.Data, "addTicketComment", "isPublic") != false || len(desk.Comments(ticketID)) != 1 {
		t.Fatalf("addTicketComment: %+v %+v", r.Errors, r.Data)
	}
	nextEvent(t, sub, "COMMENT", "DESKBRIDGE", ticketID, pick.DeskID, nil)
	r = w.ts.query(admin, `mutation($id: String!) { setTicketStatus(input: {ticketDeskId: $id, status: "Closed"}) { status statusType } }`,
		map[string]any{"id": ticketID})
	if len(r.Errors) > 0 || dig(r.Data, "setTicketStatus", "statusType") != "CLOSED" {
		t.Fatalf("setTicketStatus: %+v %+v", r.Errors, r.Data)
	}
	nextEvent(t, sub, "STATUS_CHANGED", "DESKBRIDGE", ticketID, pick.DeskID, nil)
	r = w.ts.query(admin, counts, map[string]any{"id": pick.CRMID})
	if got := int(dig(r.Data, "crmRecord", "ticketCounts", "resolved").(float64)); got != resolvedBefore+1 {
		t.Fatalf("resolved tickets %d after closing one, want %d", got, resolvedBefore+1)
	}

	// A change made in the desk arrives by its webhook.
	if _, err := desk.SetTicketStatus(ticketID, "Open"); err != nil {
		t.Fatal(err)
	}

	nextEvent(t, sub, "STATUS_CHANGED", "DESK", ticketID, pick.DeskID, threadID)

	// A second ticket merged into the first: MERGED for the one that
	// stays, DELETED for the other, which leaves the record's count.
	in["subject"], in["idempotencyKey"] = "Duplicate question", "create-2"
	r = w.ts.query(admin, createTicketMutation, map[string]any{"in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("second ticket: %+v", r.Errors)
	}
	second := dig(r.Data, "createTicketFromCrm", "deskId").(string)
	nextEvent(t, sub, "CREATED", "DESKBRIDGE", second, pick.DeskID, nil)
	r = w.ts.query(admin, `mutation($in: MergeTicketsInput!) { mergeTickets(input: $in) { deskId } }`,
		map[string]any{"in": map[string]any{"ticketDeskId": ticketID, "mergeDeskIds": []string{second}, "idempotencyKey": "merge-1"}})
	if len(r.Errors) > 0 || dig(r.Data, "mergeTickets", "deskId") != ticketID {
		t.Fatalf("mergeTickets: %+v %+v", r.Errors, r.Data)
	}
	// The same key again answers the same, though the merged ticket is gone.
	if r := w.ts.query(admin, `mutation($in: MergeTicketsInput!) { mergeTickets(input: $in) { deskId } }`,
		map[string]any{"in": map[string]any{"ticketDeskId": ticketID, "mergeDeskIds": []string{second}, "idempotencyKey": "merge-1"}}); len(r.Errors) > 0 || dig(r.Data, "mergeTickets", "deskId") != ticketID {
		t.Fatalf("retried merge: %+v %+v", r.Errors, r.Data)
	}
	if merged := nextEvent(t, sub, "MERGED", "DESKBRIDGE", ticketID, pick.DeskID, nil); fmt.Sprint(merged["mergedDeskIds"]) != "["+second+"]" {
		t.Fatalf("merged event: %+v", merged)
	}
	nextEvent(t, sub, "DELETED", "DESKBRIDGE", second, pick.DeskID, nil)
	r = w.ts.query(admin, counts, map[string]any{"id": pick.CRMID})
	if got := int(dig(r.Data, "crmRecord", "ticketCounts", "total").(float64)); got != pick.Tickets+1 {
		t.Fatalf("the record counts %d tickets after the merge, want %d", got, pick.Tickets+1)
	}

	// Subscribing late from the position read at the start misses
	// nothing: the ticket's creation comes first.
	late := w.ts.dial(admin)
	late.expect("connection_ack")
	late.subscribe("l", `subscription($f: TicketEventFilter, $after: ID) { ticketEvents(filter: $f, after: $after) { type ticketDeskId } }`,
		map[string]any{"f": map[string]any{"ticketDeskId": ticketID}, "after": position})
	if ev := dig(late.expect("next"), "payload", "data", "ticketEvents").(map[string]any); ev["type"] != "CREATED" {
		t.Fatalf("replay from the position read before the create: %+v", ev)
	}

	// E1: a contact without a valid email cannot raise a ticket.
	var noEmail string
	if err := w.ts.srv.db.DB.Get(&noEmail, `SELECT ext_id FROM mirror_records WHERE system = 'zoho_crm' AND module = 'contacts'
		AND (email IS NULL OR email NOT LIKE '%@%.%') AND deleted_at IS NULL LIMIT 1`); err == nil {
		r = w.ts.query(admin, createTicketMutation, map[string]any{"in": map[string]any{"module": "CONTACTS", "crmId": noEmail,
			"departmentId": dept, "subject": "x", "idempotencyKey": "no-email"}})
		if r.code(0) != "FAILED_PRECONDITION" {
			t.Fatalf("a ticket for a contact without email: %+v", r.Errors)
		}
	} else {
		t.Logf("no CRM contact without an email in this world (%v); that refusal is covered by the unit test", err)
	}
}

// grepLog returns the log lines containing s, for failure messages.
func grepLog(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// nextEvent reads a restricted agent's next ticket event and checks it: its
// type, source, ticket and contact, the exact FORBIDDEN error for the deals
// it may not see (and no amount), and what the type carries.
func nextEvent(t *testing.T, sub *wsClient, typ, source, ticketID, contactID string, threadID any) map[string]any {
	t.Helper()
	msg := sub.expect("next")
	errs, _ := dig(msg, "payload").(map[string]any)["errors"].([]any)
	ev := dig(msg, "payload", "data", "ticketEvents").(map[string]any)
	switch {
	case typ == "DELETED" && (len(errs) != 0 || ev["ticket"] != nil):
		t.Fatalf("a deleted ticket's event has no ticket and no error: %+v", msg)
	case typ != "DELETED" && (len(errs) != 1 || fmt.Sprint(dig(errs[0].(map[string]any), "extensions", "code")) != codeForbidden):
		t.Fatalf("%s event: a restricted agent's event must carry exactly the FORBIDDEN deals error: %+v", typ, msg)
	}
	// A change made here can be recorded first by polling, which runs
	// every 200 ms in this world: it is then one event from the desk.
	sourceOK := ev["source"] == source || source == "DESKBRIDGE" && (typ == "CREATED" || typ == "STATUS_CHANGED")
	if ev["type"] != typ || !sourceOK || ev["ticketDeskId"] != ticketID || ev["contactDeskId"] != contactID {
		t.Fatalf("event %+v, want %s from %s", ev, typ, source)
	}
	if amounts := dig(ev, "ticket", "customer", "deals", "edges"); amounts != nil && len(amounts.([]any)) > 0 {
		t.Fatalf("a deal amount reached a restricted agent: %+v", ev)
	}
	switch {
	case typ == "REPLY" && (dig(ev, "thread", "deskId") != threadID || dig(ev, "thread", "cc") != "boss@customer.example"):
		t.Fatalf("reply event: %+v", ev)
	case typ == "STATUS_CHANGED" && source == "DESK" && (ev["previousStatus"] != "Closed" || ev["status"] != "Open" || dig(ev, "ticket", "status") != "Open"):
		t.Fatalf("the desk's status change: %+v", ev)
	}
	return ev
}

// E1 from an account and from a deal: the ticket is raised for the named
// related contact, or the deal's contact; a contact not related is
// refused. E2: a sender that is not one of the department's reply
// addresses is the desk's refusal, with its reason. G2: a connection's sync
// events (progress, run finished, failures) reach its admins from the
// stream, resumable, and nobody else's.
func TestTicketsFromAccountsAndDealsAndSyncEvents(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	db := w.ts.srv.db.DB
	var dept, account, deal, stranger string
	if err := db.Get(&dept, `SELECT department_id FROM mirror_records WHERE module = 'tickets' AND ext_id = $1`, pick.TicketID); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&account, `SELECT account_ref FROM mirror_records WHERE system = 'zoho_crm' AND module = 'contacts' AND ext_id = $1`, pick.CRMID); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&deal, `SELECT ext_id FROM mirror_records WHERE system = 'zoho_crm' AND module = 'deals' AND contact_ref = $1 LIMIT 1`, pick.CRMID); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&stranger, `SELECT ext_id FROM mirror_records WHERE system = 'zoho_crm' AND module = 'contacts'
		AND account_ref IS DISTINCT FROM $1 AND email LIKE '%@%.%' LIMIT 1`, account); err != nil {
		t.Fatal(err)
	}
	create := func(in map[string]any) gqlResponse {
		in["departmentId"], in["subject"] = dept, "From the CRM"
		return w.ts.query(admin, createTicketMutation, map[string]any{"in": in})
	}
	for _, in := range []map[string]any{
		{"module": "ACCOUNTS", "crmId": account, "contactCrmId": pick.CRMID, "idempotencyKey": "acct-1"},
		{"module": "DEALS", "crmId": deal, "idempotencyKey": "deal-1"},
	} {
		r := create(in)
		if len(r.Errors) > 0 || dig(r.Data, "createTicketFromCrm", "contact", "deskId") != pick.DeskID {
			t.Fatalf("createTicketFromCrm(%s): %+v %+v, want the contact %s", in["module"], r.Errors, r.Data, pick.DeskID)
		}
	}
	if r := create(map[string]any{"module": "ACCOUNTS", "crmId": account, "contactCrmId": stranger, "idempotencyKey": "acct-2"}); r.code(0) != "FAILED_PRECONDITION" {
		t.Fatalf("a contact of another account: %+v", r.Errors)
	}
	r := w.ts.query(admin, `mutation($id: String!) { replyToTicket(input: {ticketDeskId: $id, content: "x", fromEmailAddress: "someone@elsewhere.example", idempotencyKey: "bad-from"}) { deskId } }`,
		map[string]any{"id": pick.TicketID})
	if r.code(0) != "UPSTREAM_REJECTED" || !strings.Contains(r.Errors[0].Message, "fromEmailAddress") {
		t.Fatalf("a reply from an address that is not the department's: %+v", r.Errors)
	}
	// The refusal freed the key: the same key with a good request goes through.
	r = w.ts.query(admin, `mutation($id: String!) { replyToTicket(input: {ticketDeskId: $id, content: "x", idempotencyKey: "bad-from"}) { deskId } }`,
		map[string]any{"id": pick.TicketID})
	if len(r.Errors) > 0 || dig(r.Data, "replyToTicket", "deskId") == nil {
		t.Fatalf("the key a refusal freed, used again: %+v", r.Errors)
	}

	// Sync events, replayed from the start of the stream: the first sync's
	// progress, finished runs and any failures, of this connection only.
	connID := dig(w.ts.query(admin, `{ connections { id } }`, nil).Data, "connections").([]any)[0].(map[string]any)["id"].(string)
	var failed int
	if err := db.Get(&failed, `SELECT count(*) FROM sync_failures`); err != nil {
		t.Fatal(err)
	}
	sub := w.ts.dial(admin)
	sub.expect("connection_ack")
	sub.subscribe("s", `subscription($c: ID, $after: ID) { syncEvents(connectionId: $c, after: $after) { id type payload } }`,
		map[string]any{"c": connID, "after": "0"})
	seen := map[string]int{}
	for seen["SYNC_RUN_FINISHED"] < 6 {
		ev := dig(sub.expect("next"), "payload", "data", "syncEvents").(map[string]any)
		seen[ev["type"].(string)]++
		if p := ev["payload"].(map[string]any); p["connectionId"] != connID {
			t.Fatalf("a sync event of another connection: %+v", ev)
		}
	}
	t.Logf("sync events %v, %d failures recorded", seen, failed)
	if seen["SYNC_PROGRESS"] == 0 || (failed > 0 && seen["SYNC_FAILURE"] == 0) || seen["TICKET_CREATED"] > 0 {
		t.Fatalf("sync events %v (%d failures recorded)", seen, failed)
	}
	agent := w.ts.dial(w.ts.token("acme", auth.RoleAgent))
	agent.expect("connection_ack")
	agent.subscribe("s", `subscription { syncEvents { id } }`, nil)
	if msg := agent.expect("next"); !strings.Contains(fmt.Sprint(dig(msg, "payload", "errors")), codeForbidden) {
		t.Fatalf("an agent's sync events: %+v", msg)
	}
	other := w.ts.dial(w.ts.token("globex", auth.RoleAdmin))
	other.expect("connection_ack")
	other.subscribe("s", `subscription($c: ID) { syncEvents(connectionId: $c) { id } }`, map[string]any{"c": connID})
	if msg := other.expect("next"); !strings.Contains(fmt.Sprint(dig(msg, "payload", "errors")), "NOT_FOUND") {
		t.Fatalf("another org's sync events: %+v", msg)
	}
}
