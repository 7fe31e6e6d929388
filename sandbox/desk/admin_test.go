package desk_test

import (
	"bytes"
	"mime/multipart"
	"sync"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

func TestDepartmentsAgentsProfiles(t *testing.T) {
	e := newEnv(t)
	depts := e.get("/api/v1/departments").data(t)
	names := map[string]bool{}
	for _, d := range depts {
		names[d["name"].(string)] = d["isEnabled"].(bool)
	}
	if !names["Support"] || !names["Sales"] || !names["サポート"] || names["Legacy"] {
		t.Fatalf("departments %v", names)
	}
	if enabled := e.get("/api/v1/departments?isEnabled=true").data(t); len(enabled) != 3 {
		t.Fatalf("enabled departments %d", len(enabled))
	}
	wantError(t, e.get("/api/v1/departments?limit=201"), 422, "UNPROCESSABLE_ENTITY")
	addrs := e.get("/api/v1/mailReplyAddress?departmentId=" + e.department("Support")).data(t)
	if len(addrs) != 2 || addrs[0]["address"] != "support@zylker.example" {
		t.Fatalf("from-addresses %v", addrs)
	}

	profiles := e.get("/api/v1/profiles").data(t)
	types := map[string]bool{}
	for _, p := range profiles {
		types[p["type"].(string)] = true
	}
	if !types["Administrator"] || !types["Standard"] || !types["Light"] {
		t.Fatalf("profile types %v", types)
	}
	light := e.get("/api/v1/profiles?visible=true").data(t)
	for _, p := range light {
		perms := p["permissions"].(map[string]any)
		if p["type"] == "Light" && perms["tickets"].(map[string]any)["create"] != false {
			t.Fatalf("light agents cannot create tickets: %v", perms["tickets"])
		}
	}

	all := e.get("/api/v1/agents?limit=50&include=profile,role").data(t)
	var disabled, lightAgents int
	for _, a := range all {
		if a["status"] == "DISABLED" {
			disabled++
		}
		if a["rolePermissionType"] == "Light" {
			lightAgents++
		}
		if a["profile"] == nil || a["role"] == nil {
			t.Fatalf("include=profile,role: %v", a)
		}
	}
	if disabled != 1 || lightAgents != 1 || len(all) != 6 {
		t.Fatalf("%d agents, %d disabled, %d light", len(all), disabled, lightAgents)
	}
	if active := e.get("/api/v1/agents?status=ACTIVE&limit=50").data(t); len(active) != 5 {
		t.Fatalf("active agents %d", len(active))
	}
	added, err := e.desk.AddAgent(desk.AgentSpec{FirstName: "Ava", LastName: "Lee", Email: "ava@zylker.example", Profile: "Light Agent"})
	if err != nil {
		t.Fatal(err)
	}
	if added["rolePermissionType"] != "Light" {
		t.Fatalf("added %v", added)
	}
	if err := e.desk.DeleteAgent(added.ID()); err != nil {
		t.Fatal(err)
	}
	if left := e.get("/api/v1/agents?limit=50").data(t); len(left) != 6 {
		t.Fatalf("deleted agents are not listed: %d", len(left))
	}
	if gone := e.get("/api/v1/agents?status=DELETED").data(t); len(gone) != 1 || gone[0]["id"] != added.ID() {
		t.Fatalf("status=DELETED %v", gone)
	}
	me := e.get("/api/v1/myinfo").obj(t)
	if me["emailId"] != "admin@zylker.example" || me["rolePermissionType"] != "Admin" {
		t.Fatalf("myinfo %v", me)
	}
}

func TestTimeEntriesContractsActivities(t *testing.T) {
	e := newEnv(t)
	tk := e.newTicket("Support")
	wantError(t, e.post("/api/v1/tickets/"+tk.ID()+"/timeEntry", map[string]any{"hoursSpent": "1"}), 422, "INVALID_DATA", "/executedTime:missing")
	te := e.post("/api/v1/tickets/"+tk.ID()+"/timeEntry", map[string]any{"executedTime": "2026-11-01T08:00:00.000Z", "hoursSpent": "1", "minutesSpent": 30, "isBillable": true})
	if te.status != 200 || te.obj(t)["minutesSpent"] != "30" {
		t.Fatalf("time entry %d %s", te.status, te.raw)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["timeEntryCount"] != "1" {
		t.Fatalf("timeEntryCount %v", got["timeEntryCount"])
	}
	contact := tk.Str("contactId")
	if n := len(e.get("/api/v1/contacts/" + contact + "/timeEntry").data(t)); n != 1 {
		t.Fatalf("contact time entries %d", n)
	}
	task := e.post("/api/v1/tasks", map[string]any{"subject": "Call back", "ticketId": tk.ID(), "dueDate": "2026-11-03T09:00:00.000Z"})
	if task.status != 200 || task.obj(t)["contactId"] != contact {
		t.Fatalf("task %d %s", task.status, task.raw)
	}
	if n := len(e.get("/api/v1/contacts/" + contact + "/activities").data(t)); n != 1 {
		t.Fatalf("contact activities %d", n)
	}
	if got, _ := e.desk.Ticket(tk.ID()); got["taskCount"] != "1" {
		t.Fatalf("taskCount %v", got["taskCount"])
	}
	acc, err := e.desk.CreateAccount(desk.Fields{"accountName": "Hooli"})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.post("/api/v1/contracts", map[string]any{"contractName": "x"}), 422, "INVALID_DATA",
		"/accountId:missing", "/departmentId:missing", "/startDate:missing")
	k := e.post("/api/v1/contracts", map[string]any{"contractName": "Gold support", "accountId": acc.ID(),
		"departmentId": e.department("Support"), "startDate": "2026-01-01", "endDate": "2026-06-30"})
	if k.status != 200 || k.obj(t)["contractStatus"] != "EXPIRED" {
		t.Fatalf("contract %d %s", k.status, k.raw)
	}
	if rel := e.desk.RelatedOf(acc.ID()); rel.Contracts != 1 {
		t.Fatalf("related %+v", rel)
	}
	if err := e.desk.DeleteAccount(acc.ID()); err != nil {
		t.Fatal(err)
	}
	if rel := e.desk.RelatedOf(acc.ID()); rel.Contracts != 0 {
		t.Fatalf("contracts go to the bin with the account: %+v", rel)
	}
}

func TestAttachmentUpload(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, 200)
	e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{"Ticket_Attachment_Add": nil}})
	tk := e.newTicket("Support")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "log.txt")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte("line 1\nline 2\n"))
	mw.Close()
	path := "/api/v1/tickets/" + tk.ID() + "/attachments"
	r := e.call(request{method: "POST", path: path + "?isPublic=true", body: buf.Bytes(), header: map[string]string{"Content-Type": mw.FormDataContentType()}})
	if r.status != 200 {
		t.Fatalf("upload %d %s", r.status, r.raw)
	}
	a := r.obj(t)
	if a["name"] != "log.txt" || a["size"] != "14" || a["isPublic"] != true {
		t.Fatalf("attachment %v", a)
	}
	wantError(t, e.post(path, map[string]any{"file": "nope"}), 415, "UNSUPPORTED_MEDIA_TYPE")
	if got, _ := e.desk.Ticket(tk.ID()); got["attachmentCount"] != "1" {
		t.Fatalf("attachmentCount %v", got["attachmentCount"])
	}
	if r := e.call(request{method: "DELETE", path: path + "/" + a["id"].(string)}); r.status != 204 {
		t.Fatalf("delete %d", r.status)
	}
	e.flush()
	if got := eventTypes(rc.take()); len(got) != 1 || got[0] != "Ticket_Attachment_Add" {
		t.Fatalf("events %v", got)
	}
}

// TestConcurrentUse drives the fake from many goroutines at once so the
// race detector sees reads, writes and webhook deliveries interleave.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, withWorld(200))
	rc := newReceiver(t, 200)
	e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{"Ticket_Update": nil, "Ticket_Thread_Add": nil}})
	ids := e.desk.IDs("tickets")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				id := ids[(g*15+i)%len(ids)]
				switch i % 4 {
				case 0:
					e.patch("/api/v1/tickets/"+id, map[string]any{"priority": []string{"Low", "High"}[i%2]})
				case 1:
					e.get("/api/v1/tickets/" + id + "/threads")
				case 2:
					if _, err := e.desk.CustomerReply(id, "ping"); err != nil {
						t.Error(err)
					}
				default:
					e.get("/api/v1/tickets/search?limit=5&sortBy=modifiedTime")
				}
			}
		}()
	}
	wg.Wait()
	e.flush()
	if len(rc.take()) == 0 {
		t.Fatal("no deliveries")
	}
}
