package zoho

import (
	"net/http"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The calls of the chat integration against the sandbox: SalesIQ through
// one account (portals, a portal's tool, the visitor edit), and the desk's
// user, departments and chat tickets; a chat ticket whose create answer is
// lost is found by its values, not made twice, and found again by its chat
// id.
func TestChatCalls(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	ep := sb.Endpoints()["us"]
	ctx := ctxT(t)

	s := settingsFor(sb, connector.SalesIQ, newSleeps())
	s.SalesIQScreen = ""
	acct, err := Factory(connector.SalesIQ)(s)
	if err != nil {
		t.Fatal(err)
	}
	ca := acct.(connector.ChatAccount)
	portals, err := ca.ChatPortals(ctx)
	if err != nil || len(portals) != 1 || portals[0].ScreenName != ep.SalesIQScreenName || portals[0].Name == "" {
		t.Fatalf("ChatPortals: %+v %v", portals, err)
	}
	tool := ca.ChatTool(ep.SalesIQScreenName)
	depts, err := tool.Departments(ctx)
	if err != nil || len(depts) != len(salesiq.MatchingDepartments)+len(salesiq.UnmatchedDepartments) {
		t.Fatalf("Departments: %d %v", len(depts), err)
	}
	siq := sb.SalesIQ("us")
	conv, err := siq.StartChat(salesiq.ChatStart{Name: "No Mail", Question: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := tool.EditVisitor(ctx, conv.ID, connector.VisitorEdit{Name: "Now Known", Email: "now.known@example.com", Phone: "+1 555 0199"})
	if err != nil || str(v.Fields["email_id"]) != "now.known@example.com" {
		t.Fatalf("EditVisitor: %+v %v", v, err)
	}
	if got, _ := siq.Visitor(conv.Visitor.ID); got.EmailID != "now.known@example.com" || got.Name != "Now Known" {
		t.Fatalf("SalesIQ's visitor: %+v", got)
	}
	rec, err := tool.Conversation(ctx, conv.ID)
	if err != nil || str(rec.Fields["visitor"].(map[string]any)["email_id"]) != "now.known@example.com" {
		t.Fatalf("Conversation: %+v %v", rec, err)
	}
	if _, err := tool.Conversation(ctx, "12345678901234567"); asError(err) == nil || asError(err).Reason != connector.ReasonNotFound {
		t.Fatalf("an unknown conversation: %v", err)
	}

	// The desk: who the credentials are, any agent by id (a deleted one
	// too), departments.
	d := settingsFor(sb, connector.Desk, newSleeps())
	proxy, lost := lossyProxy(t, ep.DeskURL, func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/api/v1/tickets")
	})
	d.DeskURL = proxy
	dc, err := Factory(connector.Desk)(d)
	if err != nil {
		t.Fatal(err)
	}
	cd := dc.(connector.ChatDesk)
	me, err := cd.CurrentDeskUser(ctx)
	if err != nil || me.Email != sb.Credentials().UserEmail || me.Status != "ACTIVE" || !me.Admin || me.ID == "" || me.Name == "" {
		t.Fatalf("CurrentDeskUser: %+v %v", me, err)
	}
	deskSide := sb.Desk("us")
	agent, err := deskSide.AddAgent(desk.AgentSpec{FirstName: "Leo", LastName: "Left", Email: "leo.left@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := cd.DeskUser(ctx, agent.ID()); err != nil || u.Status != "ACTIVE" || u.Admin || u.Email != "leo.left@example.com" {
		t.Fatalf("DeskUser: %+v %v", u, err)
	}
	if err := deskSide.DeleteAgent(agent.ID()); err != nil {
		t.Fatal(err)
	}
	if u, err := cd.DeskUser(ctx, agent.ID()); err != nil || u.Status != "DELETED" {
		t.Fatalf("a deleted agent: %+v %v", u, err)
	}
	departments, err := cd.ListDepartments(ctx)
	if err != nil || len(departments) < 3 {
		t.Fatalf("ListDepartments: %d %v", len(departments), err)
	}

	// A chat ticket whose answer is lost: one ticket, found by chat id.
	fields := map[string]any{"subject": "Chat: hello", "departmentId": departments[0].ID, "channel": "Chat", "status": "Open",
		"contact":    map[string]any{"email": "now.known@example.com", "lastName": "Known", "firstName": "Now"},
		"cf_chat_id": conv.ID, "description": "<div><b>Chat transcript</b></div><div>hello</div>"}
	td := dc.(connector.TicketDesk)
	ticket, err := td.CreateTicket(ctx, fields)
	if err != nil || ticket.ID == "" || str(ticket.Fields["cf_chat_id"]) != conv.ID {
		t.Fatalf("CreateTicket: %+v %v", ticket, err)
	}
	if lost.Load() != 1 {
		t.Fatalf("the proxy lost %d answers", lost.Load())
	}
	found, err := cd.ChatTickets(ctx, conv.ID)
	if err != nil || len(found) != 1 || found[0].ID != ticket.ID {
		t.Fatalf("ChatTickets: %+v %v (want %s)", found, err, ticket.ID)
	}
	if other, err := cd.ChatTickets(ctx, "1"+conv.ID); err != nil || len(other) != 0 {
		t.Fatalf("ChatTickets of another chat: %+v %v", other, err)
	}
}
