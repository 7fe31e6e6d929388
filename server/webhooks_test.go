package server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/auth"
)

// With polling effectively off, changes reach the other side through the
// vendors' own notifications: the CRM's watch callbacks and the desk's
// webhooks, which the gateway subscribes to by itself.
func TestWebhooksCarryChangesWithoutPolling(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "1h", "DESKBRIDGE_WATCH_INTERVAL": "200ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	crmOrgID := w.crmOrgID(t, admin)
	r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}
	connID := dig(r.Data, "connectCrm", "id").(string)
	waitFor(t, "the vendor subscriptions", func() bool {
		var n int
		_ = w.ts.srv.db.DB.Get(&n, `SELECT count(*) FROM connection_watches`)
		return n == 2
	})

	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	crmID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Hook", "Email": "hook@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CRM contact in the desk, by webhook", func() bool {
		_, ok := deskSide.ContactByEmail("hook@new.example")
		return ok
	})
	rec, _ := deskSide.ContactByEmail("hook@new.example")
	if _, err := deskSide.UpdateContact(rec.ID(), map[string]any{"title": "CTO"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the desk edit in the CRM, by webhook", func() bool {
		got, _ := crmSide.Record("Contacts", crmID)
		return got["Title"] == "CTO"
	})
	var polled int
	if err := w.ts.srv.db.DB.Get(&polled, `SELECT count(*) FROM sync_cursors`); err != nil || polled != 0 {
		t.Fatalf("polling ran (%d cursors, %v); the test must prove webhooks alone", polled, err)
	}

	// A ticket changed in the desk reaches a ticket subscriber by the
	// desk's webhook (polling is off), once however often it is delivered.
	sub := w.ts.dial(admin)
	sub.expect("connection_ack")
	ticketID := deskSide.IDs("tickets")[0]
	sub.subscribe("t", `subscription($f: TicketEventFilter, $after: ID) { ticketEvents(filter: $f, after: $after) { type source ticketDeskId status } }`,
		map[string]any{"f": map[string]any{"ticketDeskId": ticketID}, "after": w.ts.streamPosition(admin)})
	if _, err := deskSide.UpdateTicket(ticketID, map[string]any{"priority": "High", "subject": "Changed in the desk"}); err != nil {
		t.Fatal(err)
	}
	ev := dig(sub.expect("next"), "payload", "data", "ticketEvents").(map[string]any)
	if ev["source"] != "DESK" || ev["ticketDeskId"] != ticketID || (ev["type"] != "UPDATED" && ev["type"] != "CREATED") {
		t.Fatalf("the desk's ticket change: %+v", ev)
	}
	var events int
	if err := w.ts.srv.db.DB.Get(&events, `SELECT count(*) FROM events WHERE ticket_ref = $1`, ticketID); err != nil || events != 1 {
		t.Fatalf("%d events for one desk change (%v)", events, err)
	}

	// The receiver refuses strangers alike, and tells a removed connection's
	// vendors to stop.
	var row struct {
		ID    int64  `db:"id"`
		Token string `db:"webhook_token"`
	}
	if err := w.ts.srv.db.DB.Get(&row, `SELECT id, webhook_token FROM connections`); err != nil {
		t.Fatal(err)
	}
	post := func(path string) int {
		resp, err := http.Post(w.ts.url+path, "application/json", strings.NewReader(`{"module":"Contacts","ids":["1"],"operation":"update"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	base := "/webhooks/" + strconv.FormatInt(row.ID, 10) + "/crm"
	for path, want := range map[string]int{
		base + "?token=wrong":                     http.StatusNotFound,
		"/webhooks/999999/crm?token=" + row.Token: http.StatusNotFound,
		base + "?token=" + row.Token:              http.StatusOK,
	} {
		if got := post(path); got != want {
			t.Errorf("POST %s = %d, want %d", strings.Replace(path, row.Token, "TOKEN", 1), got, want)
		}
	}
	if r := w.ts.query(admin, `mutation($id: ID!) { removeConnection(id: $id) { status } }`, map[string]any{"id": connID}); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if got := post(base + "?token=" + row.Token); got != http.StatusGone {
		t.Fatalf("webhook of a removed connection = %d, want 410", got)
	}
}
