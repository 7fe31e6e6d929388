package server

import (
	"context"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox/desk"
)

const signalEventsSubscription = `subscription($after: ID) { signalEvents(after: $after) { id signal { id kind title ticketDeskId read ticket { deskId } } } }`

// Signals (E4) end to end: each kind reaches the users it concerns (the
// CRM owner of the ticket's customer, users with scope ALL, the mentioned
// agent's user), live and listed afterwards; switches and channels are
// honoured; the actor, bystanders and other users never see them; an
// overdue ticket is signalled once.
func TestSignalsReachTheirUsers(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t, map[string]string{"DESKBRIDGE_WATCH_INTERVAL": "200ms", "DESKBRIDGE_OVERDUE_INTERVAL": "200ms"})
	db := w.ts.srv.db.DB
	deskSide := w.sb.Desk("us")
	var ownerEmail string
	if err := db.Get(&ownerEmail, `SELECT lower(fields->'Owner'->>'email') FROM mirror_records
		WHERE system = 'zoho_crm' AND module = 'contacts' AND ext_id = $1`, pick.CRMID); err != nil || ownerEmail == "" {
		t.Fatalf("the CRM owner of contact %s: %q %v", pick.CRMID, ownerEmail, err)
	}
	userToken := func(name, email string) string {
		t.Helper()
		issued, err := createToken(context.Background(), w.ts.srv.db, "acme", auth.IssueRequest{UserName: name, UserEmail: &email, Name: name, Role: auth.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		return issued.Secret
	}
	owner := userToken("owner", ownerEmail)
	bystander := userToken("bystander", "bystander@acme.example")
	watcher := userToken("watcher", "watcher@acme.example")
	mentioned := userToken("mentioned", "mentioned@acme.example")
	if r := w.ts.query(watcher, `mutation { updateSignalSettings(scope: ALL) { scope } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("scope ALL: %+v", r.Errors)
	}
	waitFor(t, "the desk webhook", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM connection_watches WHERE system = 'zoho_desk' AND target_url LIKE '%v=2%'`)
		return n == 1
	})

	sub := w.ts.dial(owner)
	sub.expect("connection_ack")
	sub.subscribe("s", signalEventsSubscription, map[string]any{"after": w.ts.streamPosition(owner)})
	expectSignal := func(kind string) map[string]any {
		t.Helper()
		sig := dig(sub.expect("next"), "payload", "data", "signalEvents", "signal").(map[string]any)
		if sig["kind"] != kind || sig["read"] != false {
			t.Fatalf("signal %+v, want %s", sig, kind)
		}
		return sig
	}
	kinds := func(token string) map[string]int {
		t.Helper()
		r := w.ts.query(token, `{ signals(first: 100) { edges { node { kind ticketDeskId } } unreadCount } }`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("signals: %+v", r.Errors)
		}
		out := map[string]int{}
		for _, e := range dig(r.Data, "signals", "edges").([]any) {
			out[dig(e.(map[string]any), "node", "kind").(string)]++
		}
		return out
	}

	// A new ticket for the owner's customer, raised by an admin.
	var dept string
	if err := db.Get(&dept, `SELECT department_id FROM mirror_records WHERE module = 'tickets' AND ext_id = $1`, pick.TicketID); err != nil {
		t.Fatal(err)
	}
	r := w.ts.query(admin, createTicketMutation, map[string]any{"in": map[string]any{"module": "CONTACTS", "crmId": pick.CRMID,
		"departmentId": dept, "subject": "Signals please", "idempotencyKey": "sig-1"}})
	if len(r.Errors) > 0 {
		t.Fatalf("createTicketFromCrm: %+v", r.Errors)
	}
	ticketID := dig(r.Data, "createTicketFromCrm", "deskId").(string)
	sig := expectSignal("NEW_TICKET")
	if sig["ticketDeskId"] != ticketID || dig(sig, "ticket", "deskId") != ticketID {
		t.Fatalf("new ticket signal: %+v", sig)
	}

	// The customer replies in the desk: a webhook brings it.
	if _, err := deskSide.CustomerReply(ticketID, "Any news?"); err != nil {
		t.Fatal(err)
	}
	expectSignal("NEW_REPLY")

	// The owner switches comments off; a comment then signals the watcher
	// only, and its mention reaches the mentioned agent's user.
	if r := w.ts.query(owner, `mutation { updateSignalSettings(kinds: [{kind: NEW_COMMENT, enabled: false}]) { kinds { kind enabled } } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("switching comments off: %+v", r.Errors)
	}
	agent, err := deskSide.AddAgent(desk.AgentSpec{FirstName: "Men", LastName: "Tioned", Email: "mentioned@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deskSide.AddComment(ticketID, agent.ID(), "Please look, "+desk.MentionMarkup(agent.ID()), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mention", func() bool { return kinds(mentioned)["MENTION"] == 1 })

	// An escalation in the desk.
	if _, err := deskSide.Escalate(ticketID); err != nil {
		t.Fatal(err)
	}
	expectSignal("ESCALATED_TICKET")

	// Overdue: the due date passes; the job signals it once.
	if _, err := deskSide.UpdateTicket(ticketID, map[string]any{"dueDate": time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")}); err != nil {
		t.Fatal(err)
	}
	expectSignal("OVERDUE_TICKET")
	time.Sleep(time.Second) // several more runs of the overdue job

	got := kinds(owner)
	if got["NEW_TICKET"] != 1 || got["NEW_REPLY"] != 1 || got["NEW_COMMENT"] != 0 || got["ESCALATED_TICKET"] != 1 || got["OVERDUE_TICKET"] != 1 || got["MENTION"] != 0 {
		t.Fatalf("the owner's signals: %v", got)
	}
	if got := kinds(watcher); got["NEW_TICKET"] != 1 || got["NEW_COMMENT"] != 1 {
		t.Fatalf("the watcher's signals: %v", got)
	}
	if got := kinds(bystander); len(got) != 0 {
		t.Fatalf("a bystander got signals: %v", got)
	}
	if got := kinds(mentioned); got["MENTION"] != 1 || got["NEW_COMMENT"] != 0 {
		t.Fatalf("the mentioned user's signals: %v", got)
	}
	if got := kinds(admin); len(got) != 0 {
		t.Fatalf("the admin who raised the ticket got signals: %v", got)
	}

	// Read / unread, and nobody else's.
	sigID := sig["id"].(string)
	if r := w.ts.query(bystander, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": sigID}); r.code(0) != "NOT_FOUND" {
		t.Fatalf("another user's signal by id: %+v", r)
	}
	if r := w.ts.query(bystander, `mutation($id: ID!) { markSignalsRead(ids: [$id]) }`, map[string]any{"id": sigID}); len(r.Errors) > 0 || r.Data["markSignalsRead"].(float64) != 0 {
		t.Fatalf("marking another user's signal: %+v", r)
	}
	if r := w.ts.query(owner, `mutation($id: ID!) { markSignalsRead(ids: [$id]) }`, map[string]any{"id": sigID}); r.Data["markSignalsRead"].(float64) != 1 {
		t.Fatalf("markSignalsRead: %+v", r)
	}
	r = w.ts.query(owner, `{ signals(unreadOnly: true) { edges { node { id } } unreadCount } }`, nil)
	if n := int(dig(r.Data, "signals", "unreadCount").(float64)); n != 3 || len(dig(r.Data, "signals", "edges").([]any)) != 3 {
		t.Fatalf("unread after reading one of four: %+v", r.Data)
	}
	if r := w.ts.query(owner, `mutation { markSignalsRead(all: true) }`, nil); r.Data["markSignalsRead"].(float64) != 3 {
		t.Fatalf("markSignalsRead(all): %+v", r)
	}
	// A user's signals never show in another's generic event stream.
	r = w.ts.query(bystander, `{ events(types: [SIGNAL]) { edges { node { id } } } }`, nil)
	if len(r.Errors) > 0 || len(dig(r.Data, "events", "edges").([]any)) != 0 {
		t.Fatalf("a bystander read signal events: %+v", r)
	}
}
