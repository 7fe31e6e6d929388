package desk_test

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

const sourceID = "49ad222a-f812-11e7-8c3f-9a214cf093ae"

func TestWebhookSubscribeValidation(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, 200)
	wantError(t, e.post("/api/v1/webhooks", map[string]any{"name": "x"}), 422, "INVALID_DATA", "/subscriptions:missing", "/url:missing")
	wantError(t, e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{"Ticket_Teleport": nil}}),
		422, "INVALID_DATA", "/subscriptions/Ticket_Teleport:invalid")
	wantError(t, e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{"Contact_Add": map[string]any{"departmentIds": []string{}}}}),
		422, "INVALID_DATA", "/subscriptions/Contact_Add/departmentIds:invalid")
	wantError(t, e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "ignoreSourceId": "not-a-uuid", "subscriptions": map[string]any{"Contact_Add": nil}}),
		422, "INVALID_DATA", "/ignoreSourceId:invalid")
	r := e.post("/api/v1/webhooks", map[string]any{"name": "sync", "url": rc.srv.URL, "ignoreSourceId": sourceID,
		"includeEventsFrom": []string{"AUTOMATION"}, "subscriptions": map[string]any{
			"Ticket_Update": map[string]any{"departmentIds": []string{e.department("Sales")}, "includePrevState": true, "fields": []string{"status"}},
			"Contact_Add":   nil,
		}})
	if r.status != 200 {
		t.Fatalf("create %d %s", r.status, r.raw)
	}
	w := r.obj(t)
	if w["type"] != "CUSTOMER_WEBHOOK" || w["isEnabled"] != true || w["ignoreSourceId"] != sourceID || !idPattern.MatchString(w["id"].(string)) {
		t.Fatalf("webhook %v", w)
	}
	id := w["id"].(string)
	upd := e.patch("/api/v1/webhooks/"+id, map[string]any{"isEnabled": false}).obj(t)
	if upd["isEnabled"] != false || upd["name"] != "sync" {
		t.Fatalf("patch %v", upd)
	}
	if got := e.get("/api/v1/webhooks/" + id).obj(t); !reflect.DeepEqual(got["subscriptions"], upd["subscriptions"]) {
		t.Fatalf("get %v", got)
	}
	if r := e.call(request{method: "DELETE", path: "/api/v1/webhooks/" + id}); r.status != 204 {
		t.Fatalf("delete %d", r.status)
	}
	wantError(t, e.get("/api/v1/webhooks/"+id), 404, "URL_NOT_FOUND")
	for i := range 10 {
		if r := e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL + "/" + strconv.Itoa(i), "subscriptions": map[string]any{"Contact_Add": nil}}); r.status != 200 {
			t.Fatalf("webhook %d: %d", i, r.status)
		}
	}
	wantError(t, e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{"Contact_Add": nil}}), 422, "THRESHOLD_EXCEEDED")
}

func TestWebhookDeliveries(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, 200)
	sales, support := e.department("Sales"), e.department("Support")
	r := e.post("/api/v1/webhooks", map[string]any{"name": "sync", "url": rc.srv.URL, "ignoreSourceId": sourceID,
		"subscriptions": map[string]any{
			"Ticket_Add":         map[string]any{"departmentIds": []string{sales}},
			"Ticket_Update":      map[string]any{"includePrevState": true},
			"Ticket_Thread_Add":  map[string]any{"direction": "in"},
			"Ticket_Comment_Add": nil,
			"Contact_Add":        nil,
			"Contact_Update":     map[string]any{"includePrevState": true},
			"Ticket_Delete":      nil,
		}})
	if r.status != 200 {
		t.Fatalf("subscribe %d %s", r.status, r.raw)
	}
	contact := e.newContact("hook@example.com")
	e.flush()
	if got := eventTypes(rc.take()); !reflect.DeepEqual(got, []string{"Contact_Add"}) {
		t.Fatalf("UI contact create: %v", got)
	}

	// departmentIds: a Support ticket is filtered out, a Sales one is not.
	e.post("/api/v1/tickets", map[string]any{"subject": "support", "departmentId": support, "contactId": contact})
	tk := e.post("/api/v1/tickets", map[string]any{"subject": "sales", "departmentId": sales, "contactId": contact}).obj(t)
	e.flush()
	got := rc.take()
	if len(got) != 1 || got[0]["eventType"] != "Ticket_Add" {
		t.Fatalf("ticket adds: %v", eventTypes(got))
	}
	ev := got[0]
	if ev["orgId"] != e.desk.OrgID() || ev["payload"].(map[string]any)["id"] != tk["id"] || ev["payload"].(map[string]any)["departmentId"] != sales {
		t.Fatalf("event %v", ev)
	}
	if _, err := strconv.ParseInt(ev["eventTime"].(string), 10, 64); err != nil {
		t.Fatalf("eventTime %v is not epoch ms as a string", ev["eventTime"])
	}
	if _, has := ev["prevState"]; has {
		t.Fatalf("prevState without includePrevState")
	}
	rc.mu.Lock()
	body := string(rc.bodies[len(rc.bodies)-1])
	rc.mu.Unlock()
	if body[0] != '[' {
		t.Fatalf("delivery is not a JSON array: %s", body)
	}

	// ignoreSourceId: the connector's own write is not echoed back.
	tid := tk["id"].(string)
	own := e.call(request{method: "PATCH", path: "/api/v1/tickets/" + tid, body: map[string]any{"priority": "High"},
		header: map[string]string{desk.SourceIDHeader: sourceID}})
	if own.status != 200 {
		t.Fatalf("patch %d %s", own.status, own.raw)
	}
	e.flush()
	if got := rc.take(); len(got) != 0 {
		t.Fatalf("own write echoed: %v", eventTypes(got))
	}
	e.patch("/api/v1/tickets/"+tid, map[string]any{"status": "On Hold"})
	e.flush()
	got = rc.take()
	if len(got) != 1 || got[0]["eventType"] != "Ticket_Update" {
		t.Fatalf("update: %v", eventTypes(got))
	}
	prev := got[0]["prevState"].(map[string]any)
	if !reflect.DeepEqual(prev, map[string]any{"status": "Open", "statusType": "Open", "onholdTime": nil}) {
		t.Fatalf("prevState %v", prev)
	}
	if got[0]["payload"].(map[string]any)["status"] != "On Hold" {
		t.Fatalf("payload is the full new ticket: %v", got[0]["payload"])
	}

	// Thread direction filter: the agent's reply is not sent, the customer's is.
	e.post("/api/v1/tickets/"+tid+"/sendReply", map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "sales@zylker.example"})
	if _, err := e.desk.CustomerReply(tid, "<p>thanks</p>"); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got = rc.take()
	if types := eventTypes(got); !reflect.DeepEqual(types, []string{"Ticket_Thread_Add", "Ticket_Update"}) {
		t.Fatalf("thread events: %v", types)
	}
	if got[0]["payload"].(map[string]any)["direction"] != "in" || got[0]["payload"].(map[string]any)["ticketId"] != tid {
		t.Fatalf("thread payload %v", got[0]["payload"])
	}
	if got[1]["prevState"].(map[string]any)["status"] != "On Hold" {
		t.Fatalf("reopen prevState %v", got[1]["prevState"])
	}

	// UI comments, contact edits with custom fields, deletes.
	if _, err := e.desk.AddComment(tid, "", "note", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.desk.UpdateContact(contact, desk.Fields{"title": "CTO", "cf": map[string]any{"cf_customer_type": "SMB"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.desk.DeleteTicket(tid); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got = rc.take()
	if types := eventTypes(got); !reflect.DeepEqual(types, []string{"Ticket_Comment_Add", "Contact_Update", "Ticket_Delete"}) {
		t.Fatalf("events %v", types)
	}
	cprev := got[1]["prevState"].(map[string]any)
	if !reflect.DeepEqual(cprev, map[string]any{"title": nil, "cf": map[string]any{"cf_customer_type": nil}}) {
		t.Fatalf("contact prevState %v", cprev)
	}
}

func TestWebhookFieldsFilterAndUIEvents(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, 200)
	e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{
		"Ticket_Update":     map[string]any{"fields": []string{"isEscalated", "cf_customer_type"}},
		"Agent_Update":      map[string]any{"includePrevState": true},
		"Agent_Delete":      nil,
		"Department_Add":    nil,
		"Department_Update": map[string]any{"includePrevState": true},
		"Article_Add":       nil, "Article_Update": map[string]any{"includePrevState": true}, "Article_Delete": nil,
		"Account_Add": nil, "Account_Update": nil, "Account_Delete": nil,
	}})
	tk := e.newTicket("Support")
	if _, err := e.desk.UpdateTicket(tk.ID(), desk.Fields{"priority": "Low"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.desk.Escalate(tk.ID()); err != nil {
		t.Fatal(err)
	}
	mia := e.agent("mia.park@zylker.example")
	noah := e.agent("noah.reyes@zylker.example")
	if err := e.desk.ActivateAgent(mia.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.desk.DeactivateAgent(mia.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.desk.DeleteAgent(noah.ID()); err != nil {
		t.Fatal(err)
	}
	dept, err := e.desk.AddDepartment("Billing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.desk.UpdateDepartment(dept.ID(), desk.Fields{"description": "Invoices"}); err != nil {
		t.Fatal(err)
	}
	acc, err := e.desk.CreateAccount(desk.Fields{"accountName": "Initech"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.desk.DeleteAccount(acc.ID()); err != nil {
		t.Fatal(err)
	}
	e.flush()
	want := []string{"Ticket_Update", "Agent_Update", "Agent_Update", "Agent_Delete", "Department_Add", "Department_Update", "Account_Add", "Account_Delete"}
	got := rc.take()
	if types := eventTypes(got); !reflect.DeepEqual(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if got[0]["payload"].(map[string]any)["isEscalated"] != true {
		t.Fatalf("escalation %v", got[0]["payload"])
	}
	if got[2]["prevState"].(map[string]any)["status"] != "ACTIVE" || got[2]["payload"].(map[string]any)["status"] != "DISABLED" {
		t.Fatalf("deactivation %v", got[2])
	}
	if r := e.get("/api/v1/agents/" + noah.ID()).obj(t); r["status"] != "DELETED" {
		t.Fatalf("deleted agent %v", r["status"])
	}
}

func TestWebhookGoneRemovesSubscription(t *testing.T) {
	e := newEnv(t)
	gone := newReceiver(t, 410)
	ok := newReceiver(t, 200)
	for _, u := range []string{gone.srv.URL, ok.srv.URL} {
		if r := e.post("/api/v1/webhooks", map[string]any{"url": u, "subscriptions": map[string]any{"Contact_Add": nil}}); r.status != 200 {
			t.Fatalf("subscribe %d", r.status)
		}
	}
	e.newContact("first@example.com")
	e.flush()
	hooks := e.get("/api/v1/webhooks").data(t)
	if len(hooks) != 1 || hooks[0]["url"] != ok.srv.URL {
		t.Fatalf("after 410: %v", hooks)
	}
	e.newContact("second@example.com")
	e.flush()
	if n := len(gone.take()); n != 1 {
		t.Fatalf("the 410 receiver got %d events, want only the first", n)
	}
	if n := len(ok.take()); n != 2 {
		t.Fatalf("the healthy receiver got %d events", n)
	}
}
