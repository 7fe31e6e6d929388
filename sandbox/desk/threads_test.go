package desk_test

import (
	"strconv"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

func (e *env) newTicket(dept string) desk.Record {
	e.t.Helper()
	tk, err := e.desk.CreateTicket(desk.Fields{"subject": "Help", "departmentId": e.department(dept), "contactId": e.newContact("c" + dept + "@example.com")})
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

func TestSendReplyRules(t *testing.T) {
	e := newEnv(t)
	tk := e.newTicket("Support")
	path := "/api/v1/tickets/" + tk.ID() + "/sendReply"
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "content": "hi"}), 422, "INVALID_DATA", "/fromEmailAddress:missing")
	wantError(t, e.post(path, map[string]any{"content": "hi", "fromEmailAddress": "support@zylker.example"}), 422, "INVALID_DATA", "/channel:missing")
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "fromEmailAddress": "support@zylker.example"}), 422, "INVALID_DATA", "/content:missing")
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "sales@zylker.example"}),
		422, "INVALID_DATA", "/fromEmailAddress:invalid") // another department's address
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "support@zylker.example", "cc": "not an address"}),
		422, "INVALID_DATA", "/cc:invalid")
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "support@zylker.example", "isForward": true}),
		422, "INVALID_DATA", "/to:missing")
	wantError(t, e.post(path, map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "support@zylker.example", "ticketStatus": "Snoozed"}),
		422, "INVALID_DATA", "/ticketStatus:invalid")

	r := e.post(path, map[string]any{"channel": "EMAIL", "content": "<div>On it</div>", "contentType": "html",
		"fromEmailAddress": "Support@Zylker.example", "cc": "boss@example.com, Ops <ops@example.com>", "bcc": "audit@example.com",
		"ticketStatus": "On Hold"})
	if r.status != 200 {
		t.Fatalf("sendReply %d %s", r.status, r.raw)
	}
	th := r.obj(t)
	if th["direction"] != "out" || th["status"] != "SUCCESS" || th["contentType"] != "text/html" || th["content"] != "<div>On it</div>" ||
		th["to"] != "cSupport@example.com" || th["cc"] != "boss@example.com, Ops <ops@example.com>" || th["bcc"] != "audit@example.com" ||
		th["author"].(map[string]any)["type"] != "AGENT" {
		t.Fatalf("reply thread %v", th)
	}
	got, _ := e.desk.Ticket(tk.ID())
	if got["threadCount"] != "1" || got["status"] != "On Hold" || got["statusType"] != "On Hold" {
		t.Fatalf("ticket after reply %v", got)
	}
	fwd := e.post(path, map[string]any{"channel": "EMAIL", "content": "fyi", "fromEmailAddress": "help@zylker.example",
		"isForward": true, "to": "vendor@example.com"}).obj(t)
	if fwd["isForward"] != true || fwd["to"] != "vendor@example.com" {
		t.Fatalf("forward %v", fwd)
	}

	list := e.get("/api/v1/tickets/" + tk.ID() + "/threads").data(t)
	if len(list) != 2 || list[0]["id"] != fwd["id"] {
		t.Fatalf("threads newest first: %v", list)
	}
	if _, has := list[0]["content"]; has {
		t.Fatalf("the thread list carries summaries only")
	}
	one := e.get("/api/v1/tickets/" + tk.ID() + "/threads/" + th["id"].(string)).obj(t)
	if one["content"] != "<div>On it</div>" || one["summary"] != "On it" {
		t.Fatalf("one thread %v", one)
	}

	draft := e.post("/api/v1/tickets/"+tk.ID()+"/draftReply", map[string]any{"channel": "EMAIL", "content": "draft"}).obj(t)
	if draft["status"] != "DRAFT" {
		t.Fatalf("draft %v", draft)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["threadCount"] != "2" {
		t.Fatalf("drafts are not counted: %v", got["threadCount"])
	}

	// A customer writing back reopens the ticket.
	if _, err := e.desk.CustomerReply(tk.ID(), "<p>any news?</p>"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["status"] != "Open" {
		t.Fatalf("customer reply reopens: %v", got["status"])
	}
}

func TestLightAgentCannotCreateOrReply(t *testing.T) {
	e := newEnv(t)
	tk := e.newTicket("Support")
	light := e.issue("liam.novak@zylker.example", "us")
	r := e.call(request{method: "POST", path: "/api/v1/tickets/" + tk.ID() + "/sendReply", token: &light,
		body: map[string]any{"channel": "EMAIL", "content": "hi", "fromEmailAddress": "support@zylker.example"}})
	wantError(t, r, 403, "FORBIDDEN")
	r = e.call(request{method: "POST", path: "/api/v1/tickets", token: &light,
		body: map[string]any{"subject": "x", "departmentId": e.department("Support"), "contactId": tk.Str("contactId")}})
	wantError(t, r, 403, "FORBIDDEN")
	if r := e.call(request{method: "GET", path: "/api/v1/tickets/" + tk.ID(), token: &light}); r.status != 200 {
		t.Fatalf("light agents can read: %d", r.status)
	}
	me := e.call(request{method: "GET", path: "/api/v1/myinfo", token: &light}).obj(t)
	if me["emailId"] != "liam.novak@zylker.example" || me["rolePermissionType"] != "Light" {
		t.Fatalf("myinfo %v", me)
	}
}

func TestCommentsAndMentions(t *testing.T) {
	e := newEnv(t)
	tk := e.newTicket("Support")
	carol := e.agent("carol.marsh@zylker.example")
	path := "/api/v1/tickets/" + tk.ID() + "/comments"
	wantError(t, e.post(path, map[string]any{"isPublic": true}), 422, "INVALID_DATA", "/content:missing")
	r := e.post(path, map[string]any{"content": desk.MentionMarkup(carol.Str("zuid")) + " please check", "contentType": "html", "isPublic": "true"})
	if r.status != 200 {
		t.Fatalf("comment %d %s", r.status, r.raw)
	}
	cm := r.obj(t)
	mentions := cm["mention"].([]any)
	if cm["isPublic"] != true || len(mentions) != 1 {
		t.Fatalf("comment %v", cm)
	}
	m := mentions[0].(map[string]any)
	if m["id"] != carol.ID() || m["offSet"] != "0" || m["length"] != strconv.Itoa(len(desk.MentionMarkup(carol.Str("zuid")))) || m["type"] != "AGENT" {
		t.Fatalf("mention %v", m)
	}
	cid := cm["id"].(string)
	edited := e.patch(path+"/"+cid, map[string]any{"content": "never mind"}).obj(t)
	if edited["content"] != "never mind" || edited["modifiedTime"] == nil {
		t.Fatalf("edited %v", edited)
	}
	list := e.get(path + "?include=mentions,plainText").data(t)
	if len(list) != 1 || list[0]["plainText"] != "never mind" {
		t.Fatalf("comments %v", list)
	}
	if r := e.call(request{method: "DELETE", path: path + "/" + cid}); r.status != 204 {
		t.Fatalf("delete %d", r.status)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["commentCount"] != "0" {
		t.Fatalf("commentCount %v", got["commentCount"])
	}
}

func TestRatings(t *testing.T) {
	e := newEnv(t)
	tk := e.newTicket("Support")
	if _, err := e.desk.SetTicketStatus(tk.ID(), "Closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.desk.RateTicket(tk.ID(), "meh", ""); err == nil {
		t.Fatal("unknown rating accepted")
	}
	r, err := e.desk.RateTicket(tk.ID(), "good", "Quick and friendly")
	if err != nil {
		t.Fatal(err)
	}
	if r["rating"] != "GOOD" || r["ticketId"] != tk.ID() {
		t.Fatalf("rating %v", r)
	}
	got, _ := e.desk.Ticket(tk.ID())
	if got["status"] != "Closed" {
		t.Fatalf("a rating does not reopen: %v", got["status"])
	}
	list := e.get("/api/v1/tickets/" + tk.ID() + "/customerHappiness").data(t)
	if len(list) != 1 || list[0]["feedback"] != "Quick and friendly" {
		t.Fatalf("ratings %v", list)
	}
	threads := e.desk.Threads(tk.ID())
	if last := threads[len(threads)-1]; last["channel"] != "FEEDBACK" || last["direction"] != "in" {
		t.Fatalf("rating thread %v", last)
	}
	contact, _ := e.desk.Contact(tk.Str("contactId"))
	if contact["customerHappiness"].(map[string]any)["goodPercentage"] != "100" {
		t.Fatalf("customerHappiness %v", contact["customerHappiness"])
	}
}
