package syncengine

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The chat window's desk side (SPEC F5, F7): the visitor panel, the
// visitor's recent tickets and a ticket search, read from the mirror
// (customer 360's read model), plus what only the desk or SalesIQ know live
// (contract, SLA, contact owner, transcripts).

// ChatView is a conversation as the chat window shows it.
type ChatView struct {
	Link           store.ChatLink
	Conn           store.Connection
	ConversationID string
	State          string
	Question       string
	Attended       bool
	Missed         bool
	Ended          bool
	Visitor        ChatVisitor
	Mapping        store.ChatDepartmentMapping
	// TicketID is the chat's ticket ("" while it has none); AutoOutcome
	// says why the automatic rule made none.
	TicketID     string
	TicketOrigin string
	AutoOutcome  string
	// Contacts are the visitor's desk contacts (by email), oldest first.
	Contacts []store.CustomerRecord
	// CanChange says the caller may create or change tickets from this
	// chat (profile and mapping); Blocker says why not.
	CanChange bool
	Blocker   string
}

// Conversation is the chat window's view of a conversation.
func (s *ChatService) Conversation(ctx context.Context, v auth.Viewer, conversationID string) (*ChatView, error) {
	c, err := s.chat(ctx, v, conversationID)
	if err != nil {
		return nil, err
	}
	view := &ChatView{Link: c.link, Conn: c.conn, ConversationID: c.conv.id, State: c.conv.state, Question: c.conv.question,
		Attended: c.conv.attended, Missed: c.conv.missed, Ended: c.conv.ended, Mapping: c.mapping,
		Visitor: ChatVisitor{ID: c.conv.visitorID, Name: c.conv.visitorName, Email: c.conv.visitorEmail, Phone: c.conv.visitorPhone}}
	if row, err := store.ChatTicketOf(ctx, s.DB, v.OrgID, c.conv.id); err == nil && row.State == store.ChatTicketDone {
		view.TicketID, view.TicketOrigin = deref(row.TicketID), row.Origin
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if row, err := store.ChatConversationByID(ctx, s.DB, v.OrgID, c.conv.id); err == nil {
		view.AutoOutcome = deref(row.AutoOutcome)
	}
	if view.Contacts, err = s.visitorContacts(ctx, c.conn, c.conv.visitorEmail); err != nil {
		return nil, err
	}
	if err := c.mayChange(); err != nil {
		var te *TicketError
		if errors.As(err, &te) {
			view.Blocker = te.Message
		} else {
			view.Blocker = "your permission profile does not allow acting on tickets"
		}
	} else {
		view.CanChange = true
	}
	return view, nil
}

// Scopes of the chat window's ticket lists (F5).
const (
	ChatScopeAll    = "ALL_DEPARTMENTS"
	ChatScopeMapped = "MAPPED_DEPARTMENTS"
)

// scopeDepartments is the department filter of a list: nil (all) for
// ALL_DEPARTMENTS, and also for VIEW_ONLY and CHOOSE_EACH_TIME chats, which
// always see every department; the mapped desk department otherwise.
func scopeDepartments(view *ChatView, scope string) []string {
	if scope != ChatScopeMapped || view.Mapping.Mode != store.ChatModeDeskDepartment {
		return nil
	}
	return []string{deref(view.Mapping.DeskDepartmentID)}
}

func contactIDs(recs []store.CustomerRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ExtID
	}
	return out
}

// RecentTickets are the visitor's tickets, newest first.
func (s *ChatService) RecentTickets(ctx context.Context, view *ChatView, scope string, limit int) ([]store.CustomerRecord, error) {
	if len(view.Contacts) == 0 {
		return []store.CustomerRecord{}, nil
	}
	return store.SearchChatTickets(ctx, s.DB, store.ChatTicketSearch{OrgID: view.Conn.OrgID, ConnectionID: view.Conn.ID,
		DeskSystem: string(connector.Desk), ContactRefs: contactIDs(view.Contacts), Departments: scopeDepartments(view, scope), Limit: limit})
}

// SearchTickets searches the portal's tickets by visitor name, ticket
// number, email or subject, newest first.
func (s *ChatService) SearchTickets(ctx context.Context, view *ChatView, text, scope string, limit int) ([]store.CustomerRecord, error) {
	return store.SearchChatTickets(ctx, s.DB, store.ChatTicketSearch{OrgID: view.Conn.OrgID, ConnectionID: view.Conn.ID,
		DeskSystem: string(connector.Desk), Text: text, Departments: scopeDepartments(view, scope), Limit: limit})
}

// VisitorPanel is the desk's picture of the visitor (F7).
type VisitorPanel struct {
	Contact      *store.CustomerRecord
	AccountName  string
	ContractName string
	SLAName      string
	ContactOwner string
	Counts       store.TicketCounts
	ContactURL   string
}

// Panel builds the visitor panel: the account name and ticket counts from
// the mirror; the contract (the account's active one, else its latest),
// its SLA and the contact owner from the desk: at most three desk calls,
// the contact's owner, the account's contracts (whose rows carry the SLA's
// name) and, only when the chosen row has no SLA name, its SLA by id.
func (s *ChatService) Panel(ctx context.Context, view *ChatView) (VisitorPanel, error) {
	var p VisitorPanel
	if len(view.Contacts) == 0 {
		return p, nil
	}
	contact := view.Contacts[0]
	p.Contact = &contact
	f := map[string]any{}
	_ = json.Unmarshal(contact.Fields, &f)
	p.ContactURL = str(f["webUrl"])
	var err error
	if p.Counts, err = store.CountTickets(ctx, s.DB, view.Conn.OrgID, view.Conn.ID, string(connector.Desk), []string{contact.ExtID}, nil); err != nil {
		return p, err
	}
	account := deref(contact.AccountRef)
	if account != "" {
		accs, err := store.CustomerRecordsByExtIDs(ctx, s.DB, view.Conn.OrgID, view.Conn.ID, string(connector.Desk), "accounts", []string{account})
		if err != nil {
			return p, err
		}
		if a, ok := accs[account]; ok {
			p.AccountName = deref(a.Name)
		}
	}
	desk, _, err := s.Connectors.For(ctx, view.Conn)
	if err != nil {
		return p, err
	}
	if owner := deref(contact.OwnerID); owner != "" {
		if cd, ok := desk.(connector.ChatDesk); ok {
			u, err := cd.DeskUser(ctx, owner)
			if err != nil && connector.ClassOf(err) != connector.Permanent {
				return p, chatVendorError("reading the contact's owner", err)
			}
			p.ContactOwner = u.Name
		}
	}
	if rl, ok := desk.(connector.RelatedLister); ok && account != "" {
		contracts, err := rl.Related(ctx, "accounts", account, "contracts", 50)
		if err != nil {
			return p, chatVendorError("reading the account's contracts", err)
		}
		if k, ok := currentContract(contracts); ok {
			p.ContractName = str(k.Fields["contractName"])
			if p.SLAName, err = contractSLA(ctx, desk, k.Fields); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// contractSLA is the name of a contract's SLA: the name the contract row
// carries (no further call), else the SLA read by the contract's
// associatedSLAId (one call); empty when the contract names none, the desk
// cannot read SLAs, or the SLA is gone.
func contractSLA(ctx context.Context, desk connector.Connector, f map[string]any) (string, error) {
	if name := slaName(f); name != "" {
		return name, nil
	}
	id := firstNonEmptyStr(str(f["associatedSLAId"]), str(f["slaId"]))
	sd, ok := desk.(connector.SLADesk)
	if id == "" || !ok {
		return "", nil
	}
	sla, err := sd.DeskSLA(ctx, id)
	if err != nil {
		if connector.ClassOf(err) == connector.Permanent {
			return "", nil
		}
		return "", chatVendorError("reading the contract's SLA", err)
	}
	return sla.Name, nil
}

// currentContract is the account's active contract, else its latest.
func currentContract(contracts []connector.Record) (connector.Record, bool) {
	if len(contracts) == 0 {
		return connector.Record{}, false
	}
	sort.SliceStable(contracts, func(i, j int) bool {
		ai := strings.EqualFold(str(contracts[i].Fields["contractStatus"]), "ACTIVE")
		aj := strings.EqualFold(str(contracts[j].Fields["contractStatus"]), "ACTIVE")
		if ai != aj {
			return ai
		}
		return str(contracts[i].Fields["startDate"]) > str(contracts[j].Fields["startDate"])
	})
	return contracts[0], true
}

// slaName is a contract's SLA name as Desk returns it: {"sla":{"name"}}
// (GET /contracts/{id}) or "slaName" (GET /accounts/{id}/contracts); empty
// when the row carries no name.
func slaName(f map[string]any) string {
	if sla, ok := f["sla"].(map[string]any); ok {
		return str(sla["name"])
	}
	return str(f["slaName"])
}

// Transcript is the conversation's transcript, read from SalesIQ.
func (s *ChatService) Transcript(ctx context.Context, v auth.Viewer, view *ChatView) ([]ChatMessage, error) {
	if view.Link.OrgID != v.OrgID {
		return nil, store.ErrNotFound
	}
	return s.transcriptOf(ctx, view.Link, view.ConversationID)
}

// transcriptOf reads a conversation's messages from the link's SalesIQ.
func (s *ChatService) transcriptOf(ctx context.Context, link store.ChatLink, conversationID string) ([]ChatMessage, error) {
	tool, err := s.tool(ctx, link)
	if err != nil {
		return nil, err
	}
	recs, err := tool.Transcript(ctx, conversationID)
	if err != nil {
		return nil, chatVendorError("reading the chat's transcript", err)
	}
	out := make([]ChatMessage, len(recs))
	for i, r := range recs {
		out[i] = messageOf(r)
	}
	return out, nil
}

// TicketTranscript is the chat transcript of a ticket made from (or
// attached to) a chat; ok is false for a ticket no chat made. The ticket is
// one the caller already reached, so its org is checked.
func (s *ChatService) TicketTranscript(ctx context.Context, v auth.Viewer, ticket store.CustomerRecord) ([]ChatMessage, bool, error) {
	convID, err := s.ChatConversationOf(ctx, v, ticket)
	if err != nil || convID == "" {
		return nil, false, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, precondition("SalesIQ is not linked to this org's desk, so the chat's transcript cannot be read")
	}
	if err != nil {
		return nil, false, err
	}
	if link.Status == store.ChatLinkDisabled {
		return nil, false, precondition("the SalesIQ integration is disabled")
	}
	out, err := s.transcriptOf(ctx, link, convID)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ChatConversationOf is the conversation a ticket came from, "" when none.
func (s *ChatService) ChatConversationOf(ctx context.Context, v auth.Viewer, ticket store.CustomerRecord) (string, error) {
	m, err := store.ChatConversationsOfTickets(ctx, s.DB, v.OrgID, []string{ticket.ExtID})
	if err != nil {
		return "", err
	}
	if c, ok := m[ticket.ExtID]; ok {
		return c, nil
	}
	f := map[string]any{}
	_ = json.Unmarshal(ticket.Fields, &f)
	return str(f["cf_chat_id"]), nil
}

// VisitorFollow is what a chat widget following a visitor's tickets
// matches events on: the visitor's desk contacts and the chat's ticket.
type VisitorFollow struct {
	OrgID          int64
	ConnectionID   int64
	ConversationID string
	Email          string
	Contacts       map[string]bool
	Tickets        map[string]bool
}

// FollowVisitor checks a subscriber (as for reading the chat) and returns
// what its events match.
func (s *ChatService) FollowVisitor(ctx context.Context, v auth.Viewer, conversationID string) (*VisitorFollow, error) {
	c, err := s.chat(ctx, v, conversationID)
	if err != nil {
		return nil, err
	}
	f := &VisitorFollow{OrgID: v.OrgID, ConnectionID: c.conn.ID, ConversationID: c.conv.id, Email: c.conv.visitorEmail}
	return f, s.RefreshFollow(ctx, f)
}

// RefreshFollow reads again who the visitor is in the desk: its contacts
// by email (a ticket made from the chat may have just created one), and the
// chat's ticket.
func (s *ChatService) RefreshFollow(ctx context.Context, f *VisitorFollow) error {
	email := f.Email
	if row, err := store.ChatConversationByID(ctx, s.DB, f.OrgID, f.ConversationID); err == nil && deref(row.VisitorEmail) != "" {
		email = deref(row.VisitorEmail) // edited since
	}
	contacts, err := s.visitorContacts(ctx, store.Connection{OrgID: f.OrgID, ID: f.ConnectionID}, email)
	if err != nil {
		return err
	}
	f.Email, f.Contacts, f.Tickets = email, map[string]bool{}, map[string]bool{}
	for _, c := range contacts {
		f.Contacts[c.ExtID] = true
	}
	row, err := store.ChatTicketOf(ctx, s.DB, f.OrgID, f.ConversationID)
	if err == nil && row.TicketID != nil {
		f.Tickets[*row.TicketID] = true
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// Matches says whether a ticket event is about the visitor.
func (f *VisitorFollow) Matches(e store.EventRefs) bool {
	return (e.Contact != "" && f.Contacts[e.Contact]) || (e.Ticket != "" && f.Tickets[e.Ticket])
}

// Adopt says whether a newly created ticket that matched nothing yet is
// the visitor's after all (the chat's ticket, or a ticket with the
// visitor's email: a conversion may have just made the desk contact), and
// if so follows it and its contact from now on.
func (f *VisitorFollow) Adopt(e store.EventRefs, t CreatedTicket) bool {
	if t.ConversationID != f.ConversationID && (t.Email == "" || !strings.EqualFold(t.Email, f.Email)) {
		return false
	}
	f.Tickets[e.Ticket] = true
	if e.Contact != "" {
		f.Contacts[e.Contact] = true
	}
	return true
}

// CreatedTicket is what a visitor's follower asks of a new ticket: the
// chat it came from and its email.
type CreatedTicket struct {
	ConversationID string
	Email          string
}

type createdEntry struct {
	once sync.Once
	t    CreatedTicket
}

// maxCreatedCache bounds the cache of CreatedTicketOf.
const maxCreatedCache = 4096

// CreatedTicketOf reads, once per event however many chat widgets ask, the
// chat and email of the ticket a TICKET_CREATED event is about.
func (s *ChatService) CreatedTicketOf(ctx context.Context, e store.Event) CreatedTicket {
	s.mu.Lock()
	if s.created == nil || len(s.created) > maxCreatedCache {
		s.created = map[int64]*createdEntry{}
	}
	entry, ok := s.created[e.ID]
	if !ok {
		entry = &createdEntry{}
		s.created[e.ID] = entry
	}
	s.mu.Unlock()
	entry.once.Do(func() {
		rows, err := store.CustomerRecordsByExtIDs(ctx, s.DB, e.OrgID, e.Connection, string(connector.Desk), "tickets", []string{e.Ticket})
		if err != nil {
			s.log().WarnContext(ctx, "reading a new ticket for chat widgets", "ticket", e.Ticket, "err", err)
			return
		}
		row, ok := rows[e.Ticket]
		if !ok {
			return
		}
		f := map[string]any{}
		_ = json.Unmarshal(row.Fields, &f)
		entry.t = CreatedTicket{ConversationID: str(f["cf_chat_id"]), Email: strings.ToLower(firstNonEmptyStr(deref(row.Email), str(f["email"])))}
		if m, err := store.ChatConversationsOfTickets(ctx, s.DB, e.OrgID, []string{e.Ticket}); err == nil && m[e.Ticket] != "" {
			entry.t.ConversationID = m[e.Ticket]
		}
	})
	return entry.t
}
