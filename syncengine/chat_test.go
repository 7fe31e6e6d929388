package syncengine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The chat conversion's guarantees, against vendors that misbehave on cue:
// one chat makes one ticket whatever fails, is redelivered or arrives at
// once. The end-to-end tests against the sandbox are in server/chat_test.go.

// chatFakeDesk is a desk whose ticket creation fails as told.
type chatFakeDesk struct {
	connector.Connector
	connector.TicketDesk

	mu      sync.Mutex
	tickets map[string]connector.Record // by id
	creates int
	// fail, when set, answers the next create: lost (the ticket is made
	// but the answer is not), down (nothing made) or refused.
	fail  string
	delay time.Duration
}

func (d *chatFakeDesk) CreateTicket(ctx context.Context, fields map[string]any) (connector.Record, error) {
	time.Sleep(d.delay)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.creates++
	fail := d.fail
	d.fail = ""
	switch fail {
	case "down":
		return connector.Record{}, &connector.Error{Class: connector.Transient, Status: 503, Message: "unavailable"}
	case "refused":
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid, Field: "departmentId", Code: "INVALID_DATA"}
	}
	id := strconv.Itoa(9000 + len(d.tickets))
	f := map[string]any{"ticketNumber": id, "status": fields["status"], "statusType": "Open", "subject": fields["subject"],
		"departmentId": fields["departmentId"], "contactId": "7001", "channel": "Chat", "cf_chat_id": fields["cf_chat_id"],
		"description": fields["description"]}
	now := time.Now()
	rec := connector.Record{ID: id, Fields: f, CreatedAt: now, ModifiedAt: now}
	d.tickets[id] = rec
	if fail == "lost" {
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Code: "OUTCOME_UNKNOWN", Message: "the answer was lost"}
	}
	return rec, nil
}

func (d *chatFakeDesk) ChatTickets(ctx context.Context, chatID string) ([]connector.Record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []connector.Record
	for _, t := range d.tickets {
		if t.Fields["cf_chat_id"] == chatID {
			out = append(out, t)
		}
	}
	return out, nil
}

func (d *chatFakeDesk) CurrentDeskUser(context.Context) (connector.DeskUser, error) {
	return connector.DeskUser{ID: "5001", Name: "Jade Tywin", Email: "admin@zylker.example", Status: "ACTIVE", Admin: true}, nil
}

func (d *chatFakeDesk) DeskUser(_ context.Context, id string) (connector.DeskUser, error) {
	return connector.DeskUser{ID: id, Name: "Jade Tywin", Email: "admin@zylker.example", Status: "ACTIVE", Admin: true}, nil
}

func (d *chatFakeDesk) ListDepartments(context.Context) ([]connector.Record, error) {
	return []connector.Record{{ID: "601", Fields: map[string]any{"name": "Support", "isEnabled": true}}}, nil
}

func (d *chatFakeDesk) count() (tickets, creates int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tickets), d.creates
}

// chatFakeSIQ is SalesIQ with one portal; a delivery's body is the
// conversation itself, and its token travels in a header.
type chatFakeSIQ struct {
	connector.ChatTool

	mu    sync.Mutex
	convs map[string]map[string]any
}

// chatFakeAccount is the account's view of SalesIQ: one portal.
type chatFakeAccount struct {
	connector.Connector
	tool *chatFakeSIQ
}

func (a chatFakeAccount) ChatPortals(context.Context) ([]connector.ChatPortal, error) {
	return []connector.ChatPortal{{ScreenName: "zylker", Name: "Zylker", ID: "1"}}, nil
}

func (a chatFakeAccount) ChatTool(string) connector.ChatTool { return a.tool }

func (s *chatFakeSIQ) Departments(context.Context) ([]connector.Record, error) {
	return []connector.Record{{ID: "701", Fields: map[string]any{"name": "Support"}}}, nil
}

func (s *chatFakeSIQ) Operators(context.Context, string) ([]connector.Record, error) {
	return []connector.Record{{ID: "801", Fields: map[string]any{"email_id": "admin@zylker.example", "role": "Administrator", "status": "active"}}}, nil
}

func (s *chatFakeSIQ) Conversation(_ context.Context, id string) (connector.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok {
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound}
	}
	return connector.Record{ID: id, Fields: c}, nil
}

func (s *chatFakeSIQ) Transcript(context.Context, string) ([]connector.Record, error) {
	return []connector.Record{
		{ID: "1", Fields: map[string]any{"sender": map[string]any{"name": "Grace <b>", "type": "visitor"}, "message": map[string]any{"text": "Hi & hello"}, "time": "1767225600000"}},
		{ID: "2", Fields: map[string]any{"sender": map[string]any{"name": "Op", "type": "operator"}, "message": map[string]any{"text": "Hello!"}, "time": "1767225601000"}},
	}, nil
}

func (s *chatFakeSIQ) ParseNotification(h http.Header, body []byte) ([]connector.Change, error) {
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	id, _ := c["id"].(string)
	return []connector.Change{{Module: "conversations", IDs: []string{id}, Records: []connector.Record{{ID: id, Fields: c}}, Token: h.Get("X-Token")}}, nil
}

type chatFakeVendor struct {
	desk *chatFakeDesk
	siq  *chatFakeSIQ
}

func (v chatFakeVendor) KnownDC(string) bool { return true }
func (v chatFakeVendor) ExchangeCode(context.Context, connector.System, string, string, string) (string, error) {
	return "", errors.New("no codes here")
}
func (v chatFakeVendor) ConsentURL(connector.System, string, string, string) (string, error) {
	return "", errors.New("no consent page here")
}
func (v chatFakeVendor) Open(a connector.Account) (connector.Connector, error) {
	if a.System == connector.SalesIQ {
		return chatFakeAccount{tool: v.siq}, nil
	}
	return v.desk, nil
}

type chatFakeConns struct{ desk *chatFakeDesk }

func (c chatFakeConns) For(context.Context, store.Connection) (connector.Connector, connector.Connector, error) {
	return c.desk, nil, nil
}

type chatFixture struct {
	ctx  context.Context
	db   any
	svc  *syncengine.ChatService
	desk *chatFakeDesk
	siq  *chatFakeSIQ
	link store.ChatLink
	org  int64
}

func newChatFixture(t *testing.T) *chatFixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	org, _, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.InsertConnection(ctx, db, store.NewConnection{OrgID: org.ID, CRMSystem: "zoho_crm", Status: "ACTIVE",
		AuthMethod: "OAUTH", CRMDC: "us", DeskDC: "us", DeskOrgID: "42", WebhookToken: "t"}); err != nil {
		t.Fatal(err)
	}
	box, err := crypt.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	d := &chatFakeDesk{tickets: map[string]connector.Record{}}
	s := &chatFakeSIQ{convs: map[string]map[string]any{}}
	svc := &syncengine.ChatService{DB: db, Box: box, Vendor: chatFakeVendor{d, s}, Connectors: chatFakeConns{d}}
	admin := auth.Viewer{OrgID: org.ID, Role: auth.RoleAdmin}
	if _, err := svc.Link(ctx, admin, syncengine.LinkRequest{Credentials: syncengine.ConnectionCredentials{RefreshToken: "1000.secret"}, ScreenName: "zylker"}); err != nil {
		t.Fatal(err)
	}
	link, err := svc.UpdateRules(ctx, admin, syncengine.ConversionRules{Chats: syncengine.ChatConvertAll, At: syncengine.ChatConvertAtEnd})
	if err != nil {
		t.Fatal(err)
	}
	return &chatFixture{ctx: ctx, db: db, svc: svc, desk: d, siq: s, link: link, org: org.ID}
}

// endedChat is a chat of department 701 (mapped to the desk's Support
// automatically) that ended.
func (f *chatFixture) endedChat(id string) []byte {
	c := map[string]any{"id": id, "department_id": "701", "status": "end", "attended_time": "1767225600000",
		"end_time": "1767225700000", "question": "Where is my parcel?",
		"visitor": map[string]any{"id": "v" + id, "name": "Grace Lewis", "email_id": "grace@example.com"}}
	f.siq.mu.Lock()
	f.siq.convs[id] = c
	f.siq.mu.Unlock()
	body, _ := json.Marshal(c)
	return body
}

func (f *chatFixture) deliver(t *testing.T, body []byte) {
	t.Helper()
	h := http.Header{"X-Token": {f.link.WebhookToken}}
	if _, err := f.svc.ReceiveChatWebhook(f.ctx, f.link.ID, f.link.WebhookToken, h, body); err != nil {
		t.Fatal(err)
	}
}

func (f *chatFixture) row(t *testing.T, conv string) store.ChatTicket {
	t.Helper()
	row, err := store.ChatTicketOf(f.ctx, f.svc.DB, f.org, conv)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// due makes a deferred attempt due now, as the leader would find it later.
func (f *chatFixture) due(t *testing.T, conv string) {
	t.Helper()
	if _, err := f.svc.DB.Exec(`UPDATE chat_tickets SET next_attempt_at = now() - interval '1 second' WHERE conversation_id = $1`, conv); err != nil {
		t.Fatal(err)
	}
}

func (f *chatFixture) createdEvents(t *testing.T, ticket string) int {
	t.Helper()
	evs, err := store.EventsAfter(f.ctx, f.svc.DB, store.EventFilter{OrgID: f.org, Permissions: []string{string(auth.PermReadOrg)},
		Types: []string{syncengine.TicketCreated}, Refs: store.EventRefs{Ticket: ticket}}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestChatConversionMakesOneTicket(t *testing.T) {
	f := newChatFixture(t)

	// The desk made the ticket but its answer was lost: the claim waits
	// UNKNOWN, and the next attempt finds the ticket by its chat id
	// instead of making a second one.
	f.desk.fail = "lost"
	f.deliver(t, f.endedChat("100"))
	if row := f.row(t, "100"); row.State != store.ChatTicketUnknown || row.NextAttemptAt == nil {
		t.Fatalf("after a lost answer: %+v", row)
	}
	f.due(t, "100")
	if n, err := f.svc.RetryConversions(f.ctx); err != nil || n != 1 {
		t.Fatalf("RetryConversions: %d, %v", n, err)
	}
	row := f.row(t, "100")
	if tickets, creates := f.desk.count(); row.State != store.ChatTicketDone || tickets != 1 || creates != 1 {
		t.Fatalf("after the retry: %+v, %d tickets from %d creates", row, tickets, creates)
	}
	if n := f.createdEvents(t, *row.TicketID); n != 1 {
		t.Fatalf("%d CREATED events for the found ticket", n)
	}

	// The desk was down: RETRY, then made on the next attempt, once.
	f.desk.fail = "down"
	f.deliver(t, f.endedChat("200"))
	if row := f.row(t, "200"); row.State != store.ChatTicketRetry || !strings.Contains(textOf(row.LastError), "unavailable") {
		t.Fatalf("after an outage: %+v", row)
	}
	f.due(t, "200")
	if _, err := f.svc.RetryConversions(f.ctx); err != nil {
		t.Fatal(err)
	}
	if row := f.row(t, "200"); row.State != store.ChatTicketDone {
		t.Fatalf("after the retry: %+v", row)
	}
	if tickets, _ := f.desk.count(); tickets != 2 {
		t.Fatalf("%d tickets", tickets)
	}
	// A redelivery of a converted chat does nothing.
	f.deliver(t, f.endedChat("200"))
	if tickets, _ := f.desk.count(); tickets != 2 {
		t.Fatalf("a redelivery made a ticket: %d", tickets)
	}

	// Twenty deliveries of one chat at once: one create.
	f.desk.delay = 30 * time.Millisecond
	body := f.endedChat("300")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { f.deliver(t, body) })
	}
	wg.Wait()
	f.desk.delay = 0
	if tickets, creates := f.desk.count(); tickets != 3 || creates != 4 {
		t.Fatalf("after concurrent deliveries: %d tickets from %d creates", tickets, creates)
	}
	row = f.row(t, "300")
	if row.State != store.ChatTicketDone || f.createdEvents(t, *row.TicketID) != 1 {
		t.Fatalf("the concurrent chat: %+v", row)
	}
	// Its ticket carries the chat id and the transcript, escaped.
	f.desk.mu.Lock()
	tk := f.desk.tickets[*row.TicketID]
	f.desk.mu.Unlock()
	desc, _ := tk.Fields["description"].(string)
	if tk.Fields["cf_chat_id"] != "300" || !strings.Contains(desc, "Grace &lt;b&gt; (visitor)</b>: Hi &amp; hello") ||
		!strings.Contains(desc, "2026-01-01 00:00:01 UTC") || tk.Fields["subject"] != "Chat: Where is my parcel?" {
		t.Fatalf("the ticket: %+v", tk.Fields)
	}

	// The desk refused: nothing made, the chat free for the agent, and the
	// reason kept.
	f.desk.fail = "refused"
	f.deliver(t, f.endedChat("400"))
	if _, err := store.ChatTicketOf(f.ctx, f.svc.DB, f.org, "400"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused conversion keeps its claim: %v", err)
	}
	conv, err := store.ChatConversationByID(f.ctx, f.svc.DB, f.org, "400")
	if err != nil || !strings.HasPrefix(textOf(conv.AutoOutcome), "DESK_REFUSED") {
		t.Fatalf("the refused chat: %+v %v", conv, err)
	}
	agent := auth.Viewer{OrgID: f.org, Role: auth.RoleAgent}
	got, err := f.svc.Convert(f.ctx, agent, syncengine.ConvertRequest{ConversationID: "400"})
	if err != nil || !got.Created {
		t.Fatalf("converting the refused chat by hand: %+v %v", got, err)
	}
	if again, err := f.svc.Convert(f.ctx, agent, syncengine.ConvertRequest{ConversationID: "400"}); err != nil || again.Created || again.TicketID != got.TicketID {
		t.Fatalf("converting it again: %+v %v", again, err)
	}
	if tickets, _ := f.desk.count(); tickets != 4 {
		t.Fatalf("%d tickets at the end, want 4", tickets)
	}

	// A delivery with another link's token, or for an unknown link.
	if _, err := f.svc.ReceiveChatWebhook(f.ctx, f.link.ID, "wrong", http.Header{}, body); !errors.Is(err, syncengine.ErrUnknownWebhook) {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, err := f.svc.ReceiveChatWebhook(f.ctx, f.link.ID+99, f.link.WebhookToken, http.Header{}, body); !errors.Is(err, syncengine.ErrUnknownWebhook) {
		t.Fatalf("an unknown link: %v", err)
	}
}

func textOf(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
