package syncengine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

// A desk webhook delivered twice records its ticket change once, and a
// new message arrives as a REPLY event carrying the thread.
func TestDeskTicketWebhookRecordsEachChangeOnce(t *testing.T) {
	f := newEngineFixture(t)
	desk := f.sb.Desk("us")
	id := desk.IDs("tickets")[0]
	updated, err := desk.UpdateTicket(id, map[string]any{"priority": "High"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal([]map[string]any{{"eventType": "Ticket_Update", "orgId": desk.OrgID(), "eventTime": "1767225600000",
		"payload": map[string]any(updated), "prevState": map[string]any{"priority": "Low"}}})
	for range 2 {
		if _, err := syncengine.ReceiveWebhook(f.ctx, f.db, f.w.Connectors, f.conn.ID, "desk", "t", http.Header{}, body); err != nil {
			t.Fatal(err)
		}
	}
	thread := map[string]any{"id": "77", "ticketId": id, "direction": "in", "channel": "EMAIL", "summary": "Any news?"}
	body, _ = json.Marshal([]map[string]any{{"eventType": "Ticket_Thread_Add", "orgId": desk.OrgID(), "eventTime": "1767225600000", "payload": thread}})
	if _, err := syncengine.ReceiveWebhook(f.ctx, f.db, f.w.Connectors, f.conn.ID, "desk", "t", http.Header{}, body); err != nil {
		t.Fatal(err)
	}
	events, err := store.EventsAfter(f.ctx, f.db, store.EventFilter{OrgID: f.conn.OrgID, Permissions: []string{string(auth.PermReadOrg)},
		Refs: store.EventRefs{Ticket: id}}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Type != syncengine.TicketUpdated || events[1].Type != syncengine.TicketReply {
		t.Fatalf("events %+v, want one TICKET_UPDATED then one TICKET_REPLY", events)
	}
	var p syncengine.TicketEventPayload
	if err := json.Unmarshal(events[1].Payload, &p); err != nil || p.Thread["summary"] != "Any news?" || p.Source != syncengine.SourceDesk {
		t.Fatalf("reply payload %s (%v)", events[1].Payload, err)
	}
	// The update event carries the ticket's refs for filtered subscribers.
	if events[0].Department == "" || events[0].Connection != f.conn.ID {
		t.Fatalf("update event refs %+v", events[0].EventRefs)
	}

	// A deletion, delivered twice, is one DELETED event that still names
	// the ticket's contact and department (taken before the row is marked).
	body, _ = json.Marshal([]map[string]any{{"eventType": "Ticket_Delete", "orgId": desk.OrgID(), "eventTime": "1767225700000",
		"payload": map[string]any(updated)}})
	for range 2 {
		if _, err := syncengine.ReceiveWebhook(f.ctx, f.db, f.w.Connectors, f.conn.ID, "desk", "t", http.Header{}, body); err != nil {
			t.Fatal(err)
		}
	}
	events, err = store.EventsAfter(f.ctx, f.db, store.EventFilter{OrgID: f.conn.OrgID, Permissions: []string{string(auth.PermReadOrg)},
		Refs: store.EventRefs{Ticket: id}, Types: []string{syncengine.TicketDeleted}}, 0, 10)
	if err != nil || len(events) != 1 || events[0].Department == "" || (events[0].Contact == "" && updated["contactId"] != nil) {
		t.Fatalf("deleted events %+v (%v)", events, err)
	}
}

// E1: a CRM contact without a valid email cannot raise a ticket, and the
// desk is not called.
func TestTicketFromCRMNeedsAValidEmail(t *testing.T) {
	f := newEngineFixture(t)
	svc := &syncengine.TicketService{DB: f.db, Connectors: f.w.Connectors, Log: f.w.Log}
	admin := auth.Viewer{OrgID: f.conn.OrgID, Role: auth.RoleAdmin}
	before := f.sb.Desk("us").Counts().Tickets
	for i, email := range []string{"", "not-an-address", "two@a.example, three@b.example", "nodot@localhost"} {
		id := fmt.Sprintf("90000000%d", i)
		raw, _ := json.Marshal(map[string]any{"id": id, "Last_Name": "Nomail", "Email": email})
		rec := store.MirrorRecord{System: "zoho_crm", Module: "contacts", ExtID: id, Fields: raw}
		if email != "" {
			rec.Email = &email
		}
		if _, err := store.UpsertMirror(f.ctx, f.db, f.conn.OrgID, f.conn.ID, []store.MirrorRecord{rec}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.CreateFromCRM(f.ctx, admin, f.conn, syncengine.NewTicket{Module: "contacts", CRMID: id, DepartmentID: "1",
			Subject: "x", Key: "k" + id})
		var te *syncengine.TicketError
		if !errors.As(err, &te) || te.Code != syncengine.CodeFailedPrecondition {
			t.Fatalf("email %q: %v, want FAILED_PRECONDITION", email, err)
		}
	}
	if got := f.sb.Desk("us").Counts().Tickets; got != before {
		t.Fatalf("the desk got %d tickets for contacts without a valid email", got-before)
	}
	// A role without ticket actions (C3) is refused before anything else.
	light := auth.Viewer{OrgID: f.conn.OrgID, Role: auth.RoleLightAgent}
	if _, err := svc.CreateFromCRM(f.ctx, light, f.conn, syncengine.NewTicket{Module: "contacts", CRMID: "900000000"}); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("a light agent: %v", err)
	}
}
