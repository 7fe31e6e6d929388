package desk_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

// newContact makes a contact through the UI and returns its id.
func (e *env) newContact(email string) string {
	e.t.Helper()
	c, err := e.desk.CreateContact(desk.Fields{"lastName": "Doe", "firstName": "Jane", "email": email})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID()
}

func TestTicketCreateValidation(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.post("/api/v1/tickets", map[string]any{"description": "no subject"}), 422, "INVALID_DATA",
		"/contactId:missing", "/departmentId:missing", "/subject:missing")
	support := e.department("Support")
	wantError(t, e.post("/api/v1/tickets", map[string]any{"subject": "Hi", "departmentId": support, "contactId": "1234567890123456"}),
		422, "INVALID_DATA", "/contactId:invalid")
	legacy := e.department("Legacy")
	contact := e.newContact("jane@example.com")
	wantError(t, e.post("/api/v1/tickets", map[string]any{"subject": "Hi", "departmentId": legacy, "contactId": contact}),
		422, "INVALID_DATA", "/departmentId:invalid")
	wantError(t, e.post("/api/v1/tickets", map[string]any{"subject": "Hi", "departmentId": support, "contactId": contact, "priority": "Whenever"}),
		422, "INVALID_DATA", "/priority:invalid")
	wantError(t, e.post("/api/v1/tickets", map[string]any{"subject": "Hi", "departmentId": support, "contact": map[string]any{"email": "bad"}}),
		422, "INVALID_DATA", "/contact/email:invalid")

	r := e.post("/api/v1/tickets", map[string]any{"subject": "Printer on fire", "departmentId": support, "contactId": contact,
		"priority": "High", "channel": "Email", "dueDate": "2026-11-02T09:00:00.000Z",
		"cf": map[string]any{"cf_customer_type": "Enterprise"}})
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	first := r.obj(t)
	if first["status"] != "Open" || first["statusType"] != "Open" || first["threadCount"] != "0" ||
		first["commentCount"] != "0" || first["email"] != "jane@example.com" || first["isOverDue"] != false ||
		first["cf"].(map[string]any)["cf_customer_type"] != "Enterprise" || !idPattern.MatchString(first["id"].(string)) {
		t.Fatalf("created ticket %v", first)
	}
	// A contact given by details is matched by email, or created.
	second := e.post("/api/v1/tickets", map[string]any{"subject": "Again", "departmentId": support,
		"contact": map[string]any{"email": "jane@example.com"}}).obj(t)
	if second["contactId"] != contact {
		t.Fatalf("contact matched by email: %v", second["contactId"])
	}
	third := e.post("/api/v1/tickets", map[string]any{"subject": "New person", "departmentId": support,
		"contact": map[string]any{"email": "newbie@example.com", "lastName": "Newbie"}}).obj(t)
	if third["contactId"] == contact || third["contactId"] == nil {
		t.Fatalf("new contact for new email: %v", third)
	}
	n1, _ := strconv.Atoi(first["ticketNumber"].(string))
	n3, _ := strconv.Atoi(third["ticketNumber"].(string))
	if n3 != n1+2 {
		t.Fatalf("ticket numbers %d, %d are not sequential", n1, n3)
	}

	// Overdue is computed against the clock.
	e.clk.Advance(25 * time.Hour)
	e.token = e.issue("admin@zylker.example", "us") // the old token lived an hour
	if got := e.get("/api/v1/tickets/" + first["id"].(string)).obj(t); got["isOverDue"] != true {
		t.Fatalf("due date passed: %v", got["isOverDue"])
	}
}

func TestStatusTypeDerivation(t *testing.T) {
	e := newEnv(t)
	tk, err := e.desk.CreateTicket(desk.Fields{"subject": "Status", "departmentId": e.department("Support"), "contactId": e.newContact("s@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/tickets/" + tk.ID()
	for _, tc := range []struct{ status, typ string }{
		{"In Progress", "Open"}, {"Waiting on Customer", "On Hold"}, {"on hold", "On Hold"}, {"Resolved", "Closed"}, {"Open", "Open"}, {"Closed", "Closed"},
	} {
		got := e.patch(path, map[string]any{"status": tc.status}).obj(t)
		if got["statusType"] != tc.typ {
			t.Fatalf("status %s: statusType %v, want %s", tc.status, got["statusType"], tc.typ)
		}
		closed := got["closedTime"] != nil
		if closed != (tc.typ == "Closed") {
			t.Fatalf("status %s: closedTime %v", tc.status, got["closedTime"])
		}
	}
	wantError(t, e.patch(path, map[string]any{"status": "Sleeping"}), 422, "INVALID_DATA", "/status:invalid")
	if err := e.desk.AddTicketStatus("Awaiting Parts", "On Hold"); err != nil {
		t.Fatal(err)
	}
	if got := e.patch(path, map[string]any{"status": "Awaiting Parts"}).obj(t); got["statusType"] != "On Hold" || got["onholdTime"] == nil {
		t.Fatalf("custom status %v", got)
	}
	if r := e.post("/api/v1/closeTickets", map[string]any{"ids": []string{tk.ID()}}); r.status != 204 {
		t.Fatalf("closeTickets %d %s", r.status, r.raw)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["status"] != "Closed" {
		t.Fatalf("after closeTickets: %v", got["status"])
	}
}

func TestTicketListFiltersAndSearch(t *testing.T) {
	e := newEnv(t, withWorld(400))
	wantError(t, e.get("/api/v1/tickets?limit=101"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/tickets?from=0"), 422, "UNPROCESSABLE_ENTITY")
	sales := e.department("Sales")
	for _, tk := range e.get("/api/v1/tickets?limit=100&departmentId=" + sales + "&status=" + url.QueryEscape("Open,On Hold")).data(t) {
		if tk["departmentId"] != sales || (tk["status"] != "Open" && tk["status"] != "On Hold") {
			t.Fatalf("filter leaked %v", tk)
		}
	}
	page := e.get("/api/v1/tickets?limit=100&sortBy=-createdTime&include=contacts,assignee,departments").data(t)
	for i := 1; i < len(page); i++ {
		if page[i-1]["createdTime"].(string) < page[i]["createdTime"].(string) {
			t.Fatalf("not sorted by -createdTime at %d", i)
		}
	}
	if _, ok := page[0]["contact"]; !ok {
		t.Fatalf("include=contacts: %v", page[0])
	}
	var chat, overdue int
	for _, tk := range page {
		if tk["channel"] == "Chat" {
			chat++
		}
		if tk["isOverDue"] == true {
			overdue++
		}
		if _, err := strconv.Atoi(tk["threadCount"].(string)); err != nil {
			t.Fatalf("threadCount %v is not a numeric string", tk["threadCount"])
		}
	}
	if chat == 0 || overdue == 0 {
		t.Fatalf("seeded tickets: %d chat, %d overdue of %d", chat, overdue, len(page))
	}

	// Incremental sync: modifiedTimeRange, sortBy=modifiedTime, 0-based.
	win := url.QueryEscape(worldNow.Add(-30*24*time.Hour).Format("2006-01-02T15:04:05.000Z") + "," + worldNow.Format("2006-01-02T15:04:05.000Z"))
	res := e.get("/api/v1/tickets/search?sortBy=modifiedTime&from=0&limit=100&modifiedTimeRange=" + win).obj(t)
	total := int(res["count"].(float64))
	data := res["data"].([]any)
	if total == 0 || len(data) == 0 {
		t.Fatalf("search %v", res)
	}
	prev := ""
	for _, x := range data {
		m := x.(map[string]any)["modifiedTime"].(string)
		if m < prev {
			t.Fatalf("not ascending by modifiedTime")
		}
		prev = m
	}
	num := data[0].(map[string]any)["ticketNumber"].(string)
	if hit := e.get("/api/v1/tickets/search?ticketNumber=" + num).obj(t); hit["count"].(float64) != 1 {
		t.Fatalf("ticketNumber search %v", hit["count"])
	}
	if r := e.get("/api/v1/tickets/search?status=" + url.QueryEscape("${Closed}") + "&limit=100"); r.status == 200 {
		for _, x := range r.obj(t)["data"].([]any) {
			if x.(map[string]any)["statusType"] != "Closed" {
				t.Fatalf("${Closed} matched %v", x.(map[string]any)["status"])
			}
		}
	}
	due := url.QueryEscape("2020-01-01T00:00:00.000Z," + worldNow.Format("2006-01-02T15:04:05.000Z"))
	if r := e.get("/api/v1/tickets/search?dueDateRange=" + due); r.status != 200 {
		t.Fatalf("dueDateRange: %d", r.status)
	}
	wantError(t, e.get("/api/v1/tickets/search?modifiedTime=2020"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/tickets/search?from=-1"), 422, "UNPROCESSABLE_ENTITY")
	subj := data[0].(map[string]any)["subject"].(string)
	if r := e.get("/api/v1/tickets/search?subject=" + url.QueryEscape(string([]rune(subj)[:3])+"*")); r.status != 200 {
		t.Fatalf("subject wildcard: %d", r.status)
	}
	ct := data[0].(map[string]any)["contactId"].(string)
	for _, x := range e.get("/api/v1/tickets/search?limit=100&contactId=" + ct).obj(t)["data"].([]any) {
		if x.(map[string]any)["contactId"] != ct {
			t.Fatalf("contactId filter")
		}
	}
}

func TestMergeTickets(t *testing.T) {
	e := newEnv(t)
	support := e.department("Support")
	contact := e.newContact("m@example.com")
	mk := func(subject string) desk.Record {
		tk, err := e.desk.CreateTicket(desk.Fields{"subject": subject, "departmentId": support, "contactId": contact})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	master, other := mk("Master"), mk("Duplicate")
	if _, err := e.desk.CustomerReply(other.ID(), "<p>more details</p>"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.desk.AddComment(other.ID(), "", "internal note", false); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.post("/api/v1/tickets/"+master.ID()+"/merge", map[string]any{"ids": []string{master.ID()}}), 422, "INVALID_DATA", "/ids:invalid")
	r := e.post("/api/v1/tickets/"+master.ID()+"/merge", map[string]any{"ids": []string{other.ID()},
		"source": map[string]any{"subject": other.ID()}})
	if r.status != 200 {
		t.Fatalf("merge %d %s", r.status, r.raw)
	}
	merged := r.obj(t)
	if merged["id"] != master.ID() || merged["subject"] != "Duplicate" || merged["threadCount"] != "1" || merged["commentCount"] != "1" {
		t.Fatalf("merged %v", merged)
	}
	gone := e.get("/api/v1/tickets/" + other.ID()).obj(t)
	if gone["isTrashed"] != true {
		t.Fatalf("merged-away ticket %v", gone["isTrashed"])
	}
	threads := e.get("/api/v1/tickets/" + master.ID() + "/threads").data(t)
	if len(threads) != 1 || threads[0]["direction"] != "in" {
		t.Fatalf("threads moved: %v", threads)
	}
	for _, x := range e.get("/api/v1/tickets?limit=100").data(t) {
		if x["id"] == other.ID() {
			t.Fatalf("trashed ticket listed")
		}
	}
}

func TestContactMergeMovesTickets(t *testing.T) {
	e := newEnv(t)
	a, b := e.newContact("a@example.com"), e.newContact("b@example.com")
	tk, err := e.desk.CreateTicket(desk.Fields{"subject": "x", "departmentId": e.department("Support"), "contactId": b})
	if err != nil {
		t.Fatal(err)
	}
	r := e.post("/api/v1/contacts/"+a+"/merge", map[string]any{"ids": []string{b}, "source": map[string]any{"email": b}})
	if r.status != 200 || r.obj(t)["email"] != "b@example.com" {
		t.Fatalf("merge %d %s", r.status, r.raw)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["contactId"] != a {
		t.Fatalf("ticket follows the master: %v", got["contactId"])
	}
	if got, _ := e.desk.Contact(b); got["isTrashed"] != true {
		t.Fatalf("merged contact trashed: %v", got["isTrashed"])
	}
}

func TestTrashAndRecycleBin(t *testing.T) {
	e := newEnv(t)
	contact := e.newContact("t@example.com")
	tk, err := e.desk.CreateTicket(desk.Fields{"subject": "goes with the contact", "departmentId": e.department("Support"), "contactId": contact})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.post("/api/v1/contacts/moveToTrash", map[string]any{"contactIds": []string{"1234567890123456"}}), 422, "INVALID_DATA", "/contactIds:invalid")
	if r := e.post("/api/v1/contacts/moveToTrash", map[string]any{"contactIds": []string{contact}}); r.status != 204 {
		t.Fatalf("moveToTrash %d %s", r.status, r.raw)
	}
	if c := e.get("/api/v1/contacts/" + contact).obj(t); c["isTrashed"] != true {
		t.Fatalf("trashed contact %v", c)
	}
	if r := e.get("/api/v1/contacts"); r.status != 204 {
		t.Fatalf("trashed contacts are not listed: %d", r.status)
	}
	bin := e.get("/api/v1/recycleBin?include=deletedBy").data(t)
	if len(bin) != 2 || bin[0]["type"] != "Tickets" && bin[1]["type"] != "Tickets" {
		t.Fatalf("recycle bin %v", bin)
	}
	if only := e.get("/api/v1/recycleBin?module=contacts").data(t); len(only) != 1 || only[0]["id"] != contact {
		t.Fatalf("module filter %v", only)
	}
	res := e.post("/api/v1/recycleBin/restore", map[string]any{"ids": []string{contact}}).obj(t)
	if res["results"].([]any)[0].(map[string]any)["success"] != true {
		t.Fatalf("restore %v", res)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["isTrashed"] != false {
		t.Fatalf("the ticket comes back with its contact")
	}
	if err := e.desk.DeleteTicket(tk.ID()); err != nil {
		t.Fatal(err)
	}
	e.post("/api/v1/recycleBin/delete", map[string]any{"ids": []string{tk.ID()}})
	wantError(t, e.get("/api/v1/tickets/"+tk.ID()), 404, "URL_NOT_FOUND")
	if r := e.post("/api/v1/tickets/moveToTrash", map[string]any{"ticketIds": []string{tk.ID()}}); r.status != 422 {
		t.Fatalf("trashing a purged ticket: %d", r.status)
	}
}

func TestRelatedLists(t *testing.T) {
	e := newEnv(t, withWorld(600))
	var with, without int
	for _, id := range e.desk.IDs("contacts") {
		if e.desk.RelatedOf(id).Any() {
			with++
		} else {
			without++
		}
	}
	if with == 0 || without == 0 {
		t.Fatalf("contacts with related records %d, without %d", with, without)
	}
	var checked bool
	for _, id := range e.desk.IDs("contacts") {
		rel := e.desk.RelatedOf(id)
		if rel.TimeEntries == 0 || rel.Activities == 0 {
			continue
		}
		checked = true
		if n := len(e.get("/api/v1/contacts/" + id + "/timeEntry?limit=100").data(t)); n != rel.TimeEntries {
			t.Fatalf("timeEntry %d vs %d", n, rel.TimeEntries)
		}
		if n := len(e.get("/api/v1/contacts/" + id + "/activities?limit=100").data(t)); n != rel.Activities {
			t.Fatalf("activities %d vs %d", n, rel.Activities)
		}
		if n := len(e.get("/api/v1/contacts/" + id + "/tickets?limit=100").data(t)); n != rel.Tickets {
			t.Fatalf("tickets %d vs %d", n, rel.Tickets)
		}
		stats := e.get("/api/v1/contacts/" + id + "/statistics").obj(t)
		if stats["totalTickets"] != strconv.Itoa(rel.Tickets) {
			t.Fatalf("statistics %v", stats)
		}
		break
	}
	if !checked {
		t.Fatal("no contact with both time entries and activities in the seed")
	}
	var accWith bool
	for _, id := range e.desk.IDs("accounts") {
		rel := e.desk.RelatedOf(id)
		if rel.Contracts > 0 && rel.Contacts > 0 {
			accWith = true
			if n := len(e.get("/api/v1/accounts/" + id + "/contracts").data(t)); n != rel.Contracts {
				t.Fatalf("contracts %d vs %d", n, rel.Contracts)
			}
			if n := len(e.get("/api/v1/accounts/" + id + "/contacts?limit=99").data(t)); n != rel.Contacts {
				t.Fatalf("account contacts %d vs %d", n, rel.Contacts)
			}
			break
		}
	}
	if !accWith {
		t.Fatal("no account with contracts and contacts")
	}
	prod := e.desk.IDs("products")[0]
	att, err := e.desk.AddAttachment("products", prod, "spec.txt", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	list := e.get("/api/v1/products/" + prod + "/attachments").data(t)
	if list[len(list)-1]["id"] != att.ID() || list[len(list)-1]["size"] != "5" {
		t.Fatalf("attachments %v", list)
	}
	if r := e.get("/api/v1/products/" + prod + "/attachments/" + att.ID() + "/content"); string(r.raw) != "hello" {
		t.Fatalf("content %q", r.raw)
	}
}
