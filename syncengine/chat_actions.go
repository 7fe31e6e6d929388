package syncengine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// What an agent does from the chat window (SPEC F3-F9). Every action starts
// from the conversation, read from SalesIQ, and obeys its department's
// mapping: NO_INTEGRATION refuses everything, VIEW_ONLY everything but
// reading; acting also needs the profile's ticketActions (C3).

// chatCall is an agent's request about one conversation, checked.
type chatCall struct {
	v       auth.Viewer
	link    store.ChatLink
	conn    store.Connection
	tool    connector.ChatTool
	conv    chatConv
	mapping store.ChatDepartmentMapping
}

// maxConversationID bounds a conversation id argument.
const maxConversationID = 40

// chat checks the caller, the org's link and the conversation, and records
// the conversation as SalesIQ shows it now.
func (s *ChatService) chat(ctx context.Context, v auth.Viewer, conversationID string) (*chatCall, error) {
	if !v.Can(auth.PermReadOrg) {
		return nil, fmt.Errorf("reading a chat: %w", auth.ErrForbidden)
	}
	conversationID = strings.TrimSpace(conversationID)
	if conversationID == "" || len(conversationID) > maxConversationID {
		return nil, &ConnectionInputError{Field: "conversationId", Reason: fmt.Sprintf("must be a SalesIQ conversation id (1 to %d characters)", maxConversationID)}
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, precondition("SalesIQ is not linked to this org's desk")
	}
	if err != nil {
		return nil, err
	}
	switch link.Status {
	case store.ChatLinkDisabled:
		return nil, precondition("the SalesIQ integration is disabled")
	case store.ChatLinkRelinkRequired:
		return nil, precondition("the SalesIQ integration needs a re-link by an admin: %s", deref(link.RelinkReason))
	}
	conn, err := store.ConnectionByID(ctx, s.DB, v.OrgID, link.ConnectionID)
	if err != nil {
		return nil, err
	}
	tool, err := s.tool(ctx, link)
	if err != nil {
		return nil, err
	}
	rec, err := tool.Conversation(ctx, conversationID)
	if err != nil {
		return nil, chatVendorError("reading the chat", err)
	}
	c := convOf(rec)
	if c.id == "" {
		c.id = conversationID
	}
	if err := store.UpsertChatConversation(ctx, s.DB, c.row(link)); err != nil {
		return nil, err
	}
	m, err := s.mappingOf(ctx, link, c.departmentID)
	if err != nil {
		return nil, err
	}
	if m.Mode == store.ChatModeNoIntegration {
		return nil, precondition("chats of the SalesIQ department %s are not integrated with the desk (NO_INTEGRATION)", m.ChatDepartmentName)
	}
	return &chatCall{v: v, link: link, conn: conn, tool: tool, conv: c, mapping: m}, nil
}

// mayChange refuses an action that creates or changes desk tickets in a
// VIEW_ONLY department, or by a profile without ticketActions.
func (c *chatCall) mayChange() error {
	if err := mayActOnTickets(c.v); err != nil {
		return err
	}
	if c.mapping.Mode == store.ChatModeViewOnly {
		return precondition("chats of the SalesIQ department %s can see desk tickets but not create or change them (VIEW_ONLY)", c.mapping.ChatDepartmentName)
	}
	return nil
}

// ConvertRequest is an agent's conversion of a chat (F4).
type ConvertRequest struct {
	ConversationID string
	DepartmentID   string // required for CHOOSE_EACH_TIME departments
	Subject        string
	Priority       string
	Status         string
	Classification string
}

// Convert turns a chat into a ticket by hand (F4, F8). The desk department
// is the mapping's, or the agent's choice for a CHOOSE_EACH_TIME one; the
// visitor needs an email (else FAILED_PRECONDITION: edit the visitor
// first). A chat that has its ticket already answers with it (Created
// false), so a retried request never makes a second one.
func (s *ChatService) Convert(ctx context.Context, v auth.Viewer, in ConvertRequest) (ChatConversion, error) {
	c, err := s.chat(ctx, v, in.ConversationID)
	if err != nil {
		return ChatConversion{}, err
	}
	if err := c.mayChange(); err != nil {
		return ChatConversion{}, err
	}
	if row, err := store.ChatTicketOf(ctx, s.DB, v.OrgID, c.conv.id); err == nil && row.State == store.ChatTicketDone {
		return ChatConversion{TicketID: deref(row.TicketID)}, nil
	}
	dept := strings.TrimSpace(in.DepartmentID)
	switch c.mapping.Mode {
	case store.ChatModeDeskDepartment:
		mapped := deref(c.mapping.DeskDepartmentID)
		if dept != "" && dept != mapped {
			return ChatConversion{}, &ConnectionInputError{Field: "departmentId",
				Reason: fmt.Sprintf("the chat department %s is mapped to the desk department %s; leave departmentId out", c.mapping.ChatDepartmentName, deref(c.mapping.DeskDepartmentName))}
		}
		dept = mapped
	default: // CHOOSE_EACH_TIME
		if dept == "" {
			return ChatConversion{}, &ConnectionInputError{Field: "departmentId",
				Reason: fmt.Sprintf("the chat department %s is set to CHOOSE_EACH_TIME: choose the desk department", c.mapping.ChatDepartmentName)}
		}
	}
	if !validEmail(c.conv.visitorEmail) {
		return ChatConversion{}, precondition("the visitor has no valid email address, so the chat cannot become a ticket; edit the visitor (updateChatVisitor) to add one, then convert")
	}
	return s.makeTicket(ctx, ticketMaking{link: c.link, conn: c.conn, tool: c.tool, conv: c.conv, origin: store.ChatOriginManual,
		actor: v.UserID, req: chatTicketRequest{DepartmentID: dept, Subject: in.Subject, Status: firstNonEmptyStr(in.Status, "Open"),
			Priority: in.Priority, Classification: in.Classification}})
}

// ChatVisitor is a chat's visitor.
type ChatVisitor struct {
	ID, Name, Email, Phone string
}

var phonePattern = regexp.MustCompile(`^[0-9+()\-. /]{3,30}$`)

// UpdateVisitor is the agent's edit of the visitor (F8): name, email and
// phone go to SalesIQ, and the chat can be converted once it has an email.
func (s *ChatService) UpdateVisitor(ctx context.Context, v auth.Viewer, conversationID string, e connector.VisitorEdit) (ChatVisitor, error) {
	e.Name, e.Email, e.Phone = strings.TrimSpace(e.Name), strings.TrimSpace(e.Email), strings.TrimSpace(e.Phone)
	switch {
	case e == connector.VisitorEdit{}:
		return ChatVisitor{}, &ConnectionInputError{Field: "name", Reason: "give a name, an email or a phone number"}
	case utf8.RuneCountInString(e.Name) > 100:
		return ChatVisitor{}, &ConnectionInputError{Field: "name", Reason: "is longer than 100 characters"}
	case e.Email != "" && (len(e.Email) > 254 || !validEmail(e.Email)):
		return ChatVisitor{}, &ConnectionInputError{Field: "email", Reason: "is not a valid email address"}
	case e.Phone != "" && !phonePattern.MatchString(e.Phone):
		return ChatVisitor{}, &ConnectionInputError{Field: "phone", Reason: "is not a phone number (3 to 30 digits, spaces and + ( ) - . /)"}
	}
	c, err := s.chat(ctx, v, conversationID)
	if err != nil {
		return ChatVisitor{}, err
	}
	if err := mayActOnTickets(v); err != nil {
		return ChatVisitor{}, err
	}
	rec, err := c.tool.EditVisitor(ctx, c.conv.id, e)
	if err != nil {
		return ChatVisitor{}, chatVendorError("updating the visitor in SalesIQ", err)
	}
	out := ChatVisitor{ID: firstNonEmptyStr(rec.ID, c.conv.visitorID), Name: str(rec.Fields["name"]),
		Email: firstNonEmptyStr(str(rec.Fields["email_id"]), str(rec.Fields["email"])), Phone: str(rec.Fields["phone"])}
	if err := store.UpdateChatVisitor(ctx, s.DB, v.OrgID, out.ID, nonEmptyConnectionString(out.Name),
		nonEmptyConnectionString(strings.ToLower(out.Email)), nonEmptyConnectionString(out.Phone)); err != nil {
		return ChatVisitor{}, err
	}
	return out, nil
}

// changeChat checks a request that changes the chat's tickets (chat and
// mayChange) and returns the chat's own ticket, "" when it has none yet.
func (s *ChatService) changeChat(ctx context.Context, v auth.Viewer, conversationID string) (*chatCall, string, error) {
	c, err := s.chat(ctx, v, conversationID)
	if err != nil {
		return nil, "", err
	}
	if err := c.mayChange(); err != nil {
		return nil, "", err
	}
	row, err := store.ChatTicketOf(ctx, s.DB, v.OrgID, c.conv.id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && row.State != store.ChatTicketDone) {
		return c, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return c, deref(row.TicketID), nil
}

// Attach attaches the chat to an existing ticket (F6): a chat that has its
// own ticket has it merged into the existing one; a chat without one has
// its transcript added to the existing ticket as a comment, which becomes
// the chat's ticket. The key makes a retry harmless.
func (s *ChatService) Attach(ctx context.Context, v auth.Viewer, conversationID, ticketID, key string) (string, error) {
	c, own, err := s.changeChat(ctx, v, conversationID)
	if err != nil {
		return "", err
	}
	if own == ticketID {
		return ticketID, nil
	}
	if _, err := mirroredTicket(ctx, s.DB, c.conn, ticketID); err != nil {
		return "", err
	}
	if own != "" {
		return s.merge(ctx, c, ticketID, own, key, "attachChatToTicket")
	}
	claimed, row, err := store.ClaimChatTicket(ctx, s.DB, store.ChatTicket{OrgID: v.OrgID, LinkID: c.link.ID,
		ConversationID: c.conv.id, Origin: store.ChatOriginAttached, CreatedBy: &v.UserID})
	if err != nil {
		return "", err
	}
	if !claimed {
		if row.State == store.ChatTicketDone {
			return deref(row.TicketID), nil
		}
		return "", &TicketError{Code: CodeInProgress, Message: "this chat is being converted right now; try again in a moment"}
	}
	release := func(cause error) error {
		return errors.Join(cause, store.ReleaseChatTicket(context.WithoutCancel(ctx), s.DB, v.OrgID, c.conv.id))
	}
	msgs, err := c.tool.Transcript(ctx, c.conv.id)
	if err != nil {
		return "", release(chatVendorError("reading the chat's transcript", err))
	}
	desk, _, err := s.chatDesk(ctx, c.conn)
	if err != nil {
		return "", release(err)
	}
	_, err = runKeyed(ctx, s.DB, v.OrgID, key, "attachChatToTicket", []string{c.conv.id, ticketID},
		func() (connector.Record, error) {
			return desk.AddComment(ctx, ticketID, transcriptHTML(c.conv, msgs, "Chat attached to this ticket"), false)
		},
		func(tx *sqlx.Tx, comment connector.Record) error {
			if err := store.FinishChatTicket(ctx, tx, v.OrgID, c.conv.id, ticketID, store.ChatOriginAttached, c.conv.ended); err != nil {
				return err
			}
			return recordTicketEvent(ctx, tx, c.conn, nil, TicketComment,
				TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, TicketID: ticketID, Comment: comment.Fields})
		})
	if err != nil {
		var te *TicketError
		if errors.As(err, &te) && te.Code == CodeOutcomeUnknown {
			return "", err // the comment may be there; the claim stays so nothing is posted twice
		}
		return "", release(err)
	}
	return ticketID, nil
}

// MergeIntoChatTicket merges an existing ticket into the ticket made from
// the chat (F6); the chat's ticket stays.
func (s *ChatService) MergeIntoChatTicket(ctx context.Context, v auth.Viewer, conversationID, ticketID, key string) (string, error) {
	c, own, err := s.changeChat(ctx, v, conversationID)
	if err != nil {
		return "", err
	}
	if own == "" {
		return "", precondition("the chat has no ticket yet; convert it first, or attach it to the existing ticket")
	}
	if own == ticketID {
		return "", &ConnectionInputError{Field: "ticketDeskId", Reason: "this is the chat's own ticket"}
	}
	return s.merge(ctx, c, own, ticketID, key, "mergeTicketIntoChatTicket")
}

// merge merges one ticket into master through the desk and records it like
// mergeTickets: MERGED for the master, DELETED for the other, whose mirror
// row is marked deleted; chats whose ticket it was now point at the master.
func (s *ChatService) merge(ctx context.Context, c *chatCall, master, merged, key, operation string) (string, error) {
	desk, _, err := s.chatDesk(ctx, c.conn)
	if err != nil {
		return "", err
	}
	rec, err := mergeKeyed(ctx, s.DB, desk, c.conn, c.v, master, []string{merged}, key, operation,
		[]string{c.conv.id, master, merged}, func(tx *sqlx.Tx) error {
			return store.RepointChatTickets(ctx, tx, c.v.OrgID, []string{merged}, master)
		})
	if err != nil {
		return "", err
	}
	return firstNonEmptyStr(rec.ID, master), nil
}

// SetTicketStatus reopens or closes a ticket linked to the chat (F9): the
// chat's own ticket (the default) or one of the visitor's tickets.
func (s *ChatService) SetTicketStatus(ctx context.Context, v auth.Viewer, conversationID, ticketID, status string) (string, error) {
	c, own, err := s.changeChat(ctx, v, conversationID)
	if err != nil {
		return "", err
	}
	if ticketID == "" {
		if own == "" {
			return "", precondition("the chat has no ticket; name one of the visitor's tickets")
		}
		ticketID = own
	}
	row, err := mirroredTicket(ctx, s.DB, c.conn, ticketID)
	if err != nil {
		return "", err
	}
	if ticketID != own {
		contacts, err := s.visitorContacts(ctx, c.conn, c.conv.visitorEmail)
		if err != nil {
			return "", err
		}
		if !slices.ContainsFunc(contacts, func(r store.CustomerRecord) bool { return r.ExtID == deref(row.ContactRef) }) {
			return "", precondition("ticket %s is neither the chat's ticket nor one of the visitor's tickets", ticketID)
		}
	}
	desk, _, err := s.chatDesk(ctx, c.conn)
	if err != nil {
		return "", err
	}
	previous := deref(row.Status)
	rec, err := runKeyed(ctx, s.DB, v.OrgID, "", "setChatTicketStatus", nil,
		func() (connector.Record, error) {
			return desk.UpdateTicket(ctx, ticketID, map[string]any{"status": status})
		},
		func(tx *sqlx.Tx, rec connector.Record) error {
			if strings.EqualFold(previous, str(rec.Fields["status"])) {
				return nil
			}
			return recordTicketEvent(ctx, tx, c.conn, &rec, TicketStatusChanged,
				TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, PreviousStatus: previous})
		})
	if err != nil {
		return "", err
	}
	return firstNonEmptyStr(rec.ID, ticketID), nil
}

// visitorContacts are the desk contacts with the visitor's email.
func (s *ChatService) visitorContacts(ctx context.Context, conn store.Connection, email string) ([]store.CustomerRecord, error) {
	if !validEmail(email) {
		return nil, nil
	}
	return store.CustomerRecordsByEmail(ctx, s.DB, conn.OrgID, conn.ID, string(connector.Desk), "contacts", email, 10)
}
