package syncengine

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Chats become tickets (SPEC F1, F4, F8): automatically, driven by
// SalesIQ's webhooks and the link's rules, or by an agent. Either way one
// chat makes at most one ticket: a chat_tickets row (unique per org and
// conversation) is claimed before the desk is asked, and finished in the
// transaction that records the ticket. The ticket carries the chat's id
// (cf_chat_id) and its transcript (the description), so a create whose
// answer was lost is found in the desk instead of being sent again.

// chatConv is a SalesIQ conversation, read from its record.
type chatConv struct {
	id, departmentID, state, question, reference string
	visitorID, visitorName, visitorEmail         string
	visitorPhone                                 string
	attended, missed, ended                      bool
}

func convOf(r connector.Record) chatConv {
	f := r.Fields
	c := chatConv{id: r.ID, departmentID: str(f["department_id"]), state: strings.ToLower(str(f["status"])),
		question: str(f["question"]), reference: str(f["reference_id"])}
	if v, ok := f["visitor"].(map[string]any); ok {
		c.visitorID, c.visitorName = str(v["id"]), strings.TrimSpace(str(v["name"]))
		c.visitorEmail, c.visitorPhone = strings.TrimSpace(firstNonEmptyStr(str(v["email_id"]), str(v["email"]))), str(v["phone"])
	}
	c.missed = str(f["missed_time"]) != "" || c.state == "missed"
	c.attended = !c.missed && (str(f["attended_time"]) != "" || c.state == "connected" || c.state == "live")
	c.ended = c.missed || str(f["end_time"]) != "" || c.state == "end" || c.state == "ended" || c.state == "closed"
	return c
}

func (c chatConv) row(link store.ChatLink) store.ChatConversation {
	return store.ChatConversation{OrgID: link.OrgID, LinkID: link.ID, ConversationID: c.id, DepartmentID: nonEmptyConnectionString(c.departmentID),
		VisitorID: nonEmptyConnectionString(c.visitorID), VisitorName: nonEmptyConnectionString(c.visitorName),
		VisitorEmail: nonEmptyConnectionString(strings.ToLower(c.visitorEmail)), VisitorPhone: nonEmptyConnectionString(c.visitorPhone),
		State: nonEmptyConnectionString(c.state), Question: nonEmptyConnectionString(c.question)}
}

// chatTicketRequest is the ticket to make of a chat, kept with the claim so
// the leader can make it later.
type chatTicketRequest struct {
	DepartmentID   string `json:"departmentId"`
	Subject        string `json:"subject,omitempty"`
	Status         string `json:"status"`
	Priority       string `json:"priority,omitempty"`
	Classification string `json:"classification,omitempty"`
}

// ChatConversion is what a conversion gave: the chat's ticket, and whether
// this call made it (false: the chat had one already).
type ChatConversion struct {
	TicketID string
	Created  bool
}

// Outcomes of the automatic rule, when it made no ticket (kept on the
// conversation, shown as ChatConversation.autoConversion).
const (
	autoNoEmail        = "NO_EMAIL"
	autoNoIntegration  = "NO_INTEGRATION"
	autoViewOnly       = "VIEW_ONLY"
	autoChooseEachTime = "CHOOSE_EACH_TIME"
	autoDeskRefused    = "DESK_REFUSED"
)

// automaticBudget bounds the automatic conversion of one delivery; what
// does not fit is deferred to the leader (RETRY).
const automaticBudget = 45 * time.Second

// retryDelay is how long a deferred conversion waits: 5s, doubling, at
// most 30 minutes.
func retryDelay(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// ReceiveChatWebhook handles one SalesIQ delivery for a link: it checks the
// link and its token in constant time, verifies the signature (the
// connector's ParseNotification), records the conversation or visitor, and
// applies the automatic rule. Like ReceiveWebhook, ErrUnknownWebhook is a
// 404, ErrWebhookGone a 410 (disabled or removed link), ErrBadNotification a
// 400. A conversion the desk could not take now is left for the leader
// (RETRY), so the vendor still gets its 200.
func (s *ChatService) ReceiveChatWebhook(ctx context.Context, linkID int64, token string, header http.Header, body []byte) (int, error) {
	link, err := store.ChatLinkForWebhook(ctx, s.DB, linkID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, ErrUnknownWebhook
	}
	if err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(link.WebhookToken)) != 1 {
		return 0, ErrUnknownWebhook
	}
	if link.Status == store.ChatLinkRemoved || link.Status == store.ChatLinkDisabled {
		return 0, ErrWebhookGone
	}
	tool, err := s.tool(ctx, link)
	if err != nil {
		return 0, err
	}
	changes, err := tool.ParseNotification(header, body)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadNotification, err)
	}
	for _, ch := range changes {
		if subtle.ConstantTimeCompare([]byte(ch.Token), []byte(link.WebhookToken)) != 1 {
			return 0, ErrUnknownWebhook
		}
	}
	n := 0
	for _, ch := range changes {
		for i, id := range ch.IDs {
			var rec *connector.Record
			if i < len(ch.Records) {
				rec = &ch.Records[i]
			}
			switch ch.Module {
			case "conversations":
				if rec == nil {
					r, err := tool.Conversation(ctx, id)
					if err != nil {
						return n, err
					}
					rec = &r
				}
				if err := s.noteConversation(ctx, link, tool, *rec); err != nil {
					return n, err
				}
				n++
			case "visitors":
				if rec == nil {
					continue
				}
				f := rec.Fields
				name := strings.TrimSpace(firstNonEmptyStr(str(f["name"]), strings.TrimSpace(str(f["first_name"])+" "+str(f["last_name"]))))
				email := strings.ToLower(strings.TrimSpace(firstNonEmptyStr(str(f["email_id"]), str(f["email"]))))
				if err := store.UpdateChatVisitor(ctx, s.DB, link.OrgID, id, nonEmptyConnectionString(name),
					nonEmptyConnectionString(email), nonEmptyConnectionString(str(f["phone"]))); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}

// noteConversation records a conversation the chat tool told us about and
// applies the automatic rule to it; a chat that ended after its ticket was
// made gets its whole transcript added.
func (s *ChatService) noteConversation(ctx context.Context, link store.ChatLink, tool connector.ChatTool, rec connector.Record) error {
	c := convOf(rec)
	if c.id == "" {
		return nil
	}
	if err := store.UpsertChatConversation(ctx, s.DB, c.row(link)); err != nil {
		return err
	}
	triggered := autoTriggered(link, c)
	if link.Status != store.ChatLinkActive || (!c.ended && !triggered) {
		// A link that needs a re-link records, but makes nothing; most
		// deliveries (a chat started, a message) need nothing more.
		return nil
	}
	// The vendor's request may end (it gave up waiting) while the desk is
	// asked: what was started is finished, within a bound of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), automaticBudget)
	defer cancel()
	conn, err := store.ConnectionByID(ctx, s.DB, link.OrgID, link.ConnectionID)
	if err != nil {
		return err
	}
	if c.ended {
		if err := s.completeTranscript(ctx, link, conn, tool, c.id); err != nil {
			s.log().WarnContext(ctx, "adding the chat's whole transcript to its ticket", "chat_link", link.ID, "conversation", c.id, "err", err)
		}
	}
	if !triggered {
		return nil
	}
	// Only now: a department not seen yet costs two vendor calls to map.
	mapping, err := s.mappingOf(ctx, link, c.departmentID)
	if err != nil {
		return err
	}
	dept, outcome := "", ""
	switch mapping.Mode {
	case store.ChatModeDeskDepartment:
		dept = deref(mapping.DeskDepartmentID)
	case store.ChatModeChooseEachTime:
		if dept = deref(link.FallbackDepartmentID); dept == "" {
			outcome = autoChooseEachTime
		}
	case store.ChatModeViewOnly:
		outcome = autoViewOnly
	default:
		outcome = autoNoIntegration
	}
	if outcome == "" && !validEmail(c.visitorEmail) {
		outcome = autoNoEmail
	}
	if outcome != "" {
		if t, err := store.ChatTicketOf(ctx, s.DB, link.OrgID, c.id); err == nil && t.State == store.ChatTicketDone {
			return nil // made by hand already
		}
		return store.SetChatAutoOutcome(ctx, s.DB, link.OrgID, c.id, outcome)
	}
	status := "Open"
	if link.TicketStatus == ChatTicketClosed {
		status = "Closed"
	}
	_, err = s.makeTicket(ctx, ticketMaking{link: link, conn: conn, tool: tool, conv: c, origin: store.ChatOriginAutomatic,
		req: chatTicketRequest{DepartmentID: dept, Status: status}, background: true})
	return err
}

// autoTriggered says whether the link's rule converts the chat now: missed
// chats when missed (their end), attended ones at pickup or at their end.
func autoTriggered(link store.ChatLink, c chatConv) bool {
	switch {
	case link.ConvertChats == ChatConvertNone:
		return false
	case c.missed:
		return link.ConvertChats == ChatConvertAll || link.ConvertChats == ChatConvertMissed
	case c.attended:
		if link.ConvertChats != ChatConvertAll && link.ConvertChats != ChatConvertAttended {
			return false
		}
		return link.ConvertAt == ChatConvertAtPickup || c.ended
	}
	return false
}

// ticketMaking is one attempt at a chat's ticket.
type ticketMaking struct {
	link   store.ChatLink
	conn   store.Connection
	tool   connector.ChatTool
	conv   chatConv
	req    chatTicketRequest
	origin string
	actor  int64
	// background: the automatic rule or the leader's retry. Failures are
	// deferred to the leader, never returned to a person.
	background bool
}

// chatDesk is the connection's desk with its ticket and chat calls.
func (s *ChatService) chatDesk(ctx context.Context, conn store.Connection) (connector.TicketDesk, connector.ChatDesk, error) {
	d, _, err := s.Connectors.For(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	td, ok := d.(connector.TicketDesk)
	cd, ok2 := d.(connector.ChatDesk)
	if !ok || !ok2 {
		return nil, nil, fmt.Errorf("the desk connector of connection %d takes no chat tickets", conn.ID)
	}
	return td, cd, nil
}

// makeTicket makes a chat's one ticket: claim, find one a lost answer made,
// or create it with the transcript, then record it (mirror, TICKET_CREATED,
// signals) and finish the claim in one transaction.
func (s *ChatService) makeTicket(ctx context.Context, mk ticketMaking) (ChatConversion, error) {
	raw, err := json.Marshal(mk.req)
	if err != nil {
		return ChatConversion{}, err
	}
	var by *int64
	if mk.actor != 0 {
		by = &mk.actor
	}
	claimed, row, err := store.ClaimChatTicket(ctx, s.DB, store.ChatTicket{OrgID: mk.link.OrgID, LinkID: mk.link.ID,
		ConversationID: mk.conv.id, Origin: mk.origin, Request: raw, CreatedBy: by})
	if err != nil {
		return ChatConversion{}, err
	}
	lookFirst := false
	if !claimed {
		if row.State == store.ChatTicketDone {
			return ChatConversion{TicketID: deref(row.TicketID)}, nil
		}
		took, _, err := store.TakeOverChatTicket(ctx, s.DB, mk.link.OrgID, mk.conv.id, time.Now().Add(-keyStale))
		if err != nil {
			return ChatConversion{}, err
		}
		if !took {
			if mk.background {
				return ChatConversion{}, nil // another attempt is under way
			}
			return ChatConversion{}, &TicketError{Code: CodeInProgress, Message: "this chat is being converted right now; try again in a moment"}
		}
		// A row left behind may have made its ticket before it lost the
		// answer, its process or its caller: look in the desk first.
		lookFirst = true
	}
	desk, cdesk, err := s.chatDesk(ctx, mk.conn)
	if err != nil {
		return ChatConversion{}, s.failMaking(ctx, mk, err)
	}
	if lookFirst {
		found, err := cdesk.ChatTickets(ctx, mk.conv.id)
		if err != nil {
			return ChatConversion{}, s.failMaking(ctx, mk, err)
		}
		if len(found) > 0 {
			rec := found[0]
			err := store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
				if err := store.FinishChatTicket(ctx, tx, mk.link.OrgID, mk.conv.id, rec.ID, mk.origin, mk.conv.ended); err != nil {
					return err
				}
				_, err := noteTicketChange(ctx, tx, mk.conn, rec, true, "")
				return err
			})
			if err != nil {
				return ChatConversion{}, err
			}
			s.log().InfoContext(ctx, "a chat's ticket whose answer was lost was found in the desk", "conversation", mk.conv.id, "ticket", rec.ID)
			return ChatConversion{TicketID: rec.ID, Created: true}, nil
		}
	}
	msgs, err := mk.tool.Transcript(ctx, mk.conv.id)
	if err != nil {
		return ChatConversion{}, s.failMaking(ctx, mk, err)
	}
	fields := chatTicketFields(mk.conv, mk.req, msgs)
	rec, err := desk.CreateTicket(ctx, fields)
	if err != nil {
		return ChatConversion{}, s.failMaking(ctx, mk, err)
	}
	// The event last: it takes the org's stream lock until commit.
	err = store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := store.FinishChatTicket(ctx, tx, mk.link.OrgID, mk.conv.id, rec.ID, mk.origin, mk.conv.ended); err != nil {
			return err
		}
		if err := store.SetChatAutoOutcome(ctx, tx, mk.link.OrgID, mk.conv.id, ""); err != nil {
			return err
		}
		return recordTicketEvent(ctx, tx, mk.conn, &rec, TicketCreated,
			TicketEventPayload{Source: SourceDeskbridge, ActorUserID: mk.actor})
	})
	if err != nil {
		// The desk made it; only the recording failed. The claim keeps the
		// chat from making a second one, and polling mirrors the ticket.
		bg := context.WithoutCancel(ctx)
		if ferr := store.FinishChatTicket(bg, s.DB, mk.link.OrgID, mk.conv.id, rec.ID, mk.origin, mk.conv.ended); ferr != nil {
			s.log().ErrorContext(ctx, "a chat's ticket was made but not recorded", "conversation", mk.conv.id, "ticket", rec.ID, "err", ferr)
		}
		return ChatConversion{}, fmt.Errorf("recording the ticket of chat %s: %w", mk.conv.id, err)
	}
	s.log().InfoContext(ctx, "chat converted to a ticket", "org_id", mk.link.OrgID, "conversation", mk.conv.id, "ticket", rec.ID, "origin", mk.origin)
	return ChatConversion{TicketID: rec.ID, Created: true}, nil
}

// failMaking settles a claim whose attempt failed: a lost answer leaves it
// UNKNOWN (the desk is searched before anything is sent again), a vendor
// out of reach RETRY for the leader (background) or free for the agent to
// try again, a refusal frees it. The error is what a person sees.
func (s *ChatService) failMaking(ctx context.Context, mk ticketMaking, cause error) error {
	bg := context.WithoutCancel(ctx)
	org, conv := mk.link.OrgID, mk.conv.id
	row, _ := store.ChatTicketOf(bg, s.DB, org, conv)
	next := time.Now().Add(retryDelay(row.Attempts))
	var err error
	switch {
	case isOutcomeUnknown(cause):
		err = store.DeferChatTicket(bg, s.DB, org, conv, store.ChatTicketUnknown, cause.Error(), next)
	case connector.Retryable(cause) && mk.background:
		err = store.DeferChatTicket(bg, s.DB, org, conv, store.ChatTicketRetry, cause.Error(), next)
	default:
		err = store.ReleaseChatTicket(bg, s.DB, org, conv)
		if mk.background && connector.ClassOf(cause) == connector.Permanent {
			reason := autoDeskRefused + ": " + cause.Error()
			err = errors.Join(err, store.SetChatAutoOutcome(bg, s.DB, org, conv, truncateRunes(reason, 300)))
		}
	}
	if err != nil {
		s.log().ErrorContext(ctx, "settling a failed chat conversion", "conversation", conv, "err", err)
	}
	if mk.background {
		s.log().WarnContext(ctx, "converting a chat failed; the leader tries again if it can", "conversation", conv, "err", cause)
		return nil
	}
	if isOutcomeUnknown(cause) {
		return &TicketError{Code: CodeOutcomeUnknown, Message: "the desk may or may not have made the ticket (its answer was lost); deskbridge looks for it and finishes the conversion, check the chat's ticket shortly", Err: cause}
	}
	return deskActionError(cause)
}

// chatTicketFields is the desk ticket of a chat: the visitor as its contact
// (matched by email or created), the chat's id in cf_chat_id, the
// transcript as its description, channel Chat.
func chatTicketFields(c chatConv, req chatTicketRequest, msgs []connector.Record) map[string]any {
	subject := strings.TrimSpace(req.Subject)
	if subject == "" {
		topic := strings.Join(strings.Fields(c.question), " ")
		if topic == "" {
			topic = firstNonEmptyStr(c.visitorName, c.visitorEmail)
		}
		subject = "Chat: " + topic
		if c.missed {
			subject = "Missed chat: " + topic
		}
	}
	first, last := splitVisitorName(c.visitorName)
	contact := map[string]any{"email": c.visitorEmail, "lastName": firstNonEmptyStr(last, c.visitorEmail)}
	if first != "" {
		contact["firstName"] = first
	}
	if c.visitorPhone != "" {
		contact["phone"] = c.visitorPhone
	}
	fields := map[string]any{"subject": truncateRunes(subject, 254), "departmentId": req.DepartmentID, "channel": "Chat",
		"status": firstNonEmptyStr(req.Status, "Open"), "contact": contact, "cf_chat_id": c.id,
		"description": transcriptHTML(c, msgs, "Chat transcript")}
	if req.Priority != "" {
		fields["priority"] = req.Priority
	}
	if req.Classification != "" {
		fields["classification"] = req.Classification
	}
	return fields
}

func splitVisitorName(name string) (first, last string) {
	parts := strings.Fields(name)
	switch len(parts) {
	case 0:
		return "", ""
	case 1:
		return "", parts[0]
	}
	return strings.Join(parts[:len(parts)-1], " "), parts[len(parts)-1]
}

// maxTranscriptRunes keeps a transcript inside a ticket description.
const maxTranscriptRunes = 30_000

// transcriptHTML renders a chat's messages, oldest first, as HTML: one line
// per message with its time (UTC), sender and text, everything escaped.
func transcriptHTML(c chatConv, msgs []connector.Record, title string) string {
	var b strings.Builder
	head := fmt.Sprintf("%s (SalesIQ conversation %s", title, c.id)
	if c.reference != "" {
		head += ", reference #" + c.reference
	}
	head += ")"
	b.WriteString("<div><b>" + html.EscapeString(head) + "</b></div>")
	runes := utf8.RuneCountInString(b.String())
	for i, m := range msgs {
		line := transcriptLine(m)
		n := utf8.RuneCountInString(line)
		if runes+n > maxTranscriptRunes-200 {
			b.WriteString(fmt.Sprintf("<div>… %d more messages (the whole chat is in SalesIQ)</div>", len(msgs)-i))
			break
		}
		b.WriteString(line)
		runes += n
	}
	return b.String()
}

// ChatMessage is one line of a chat's transcript.
type ChatMessage struct {
	ID, SenderName, SenderType, Text string
	At                               *time.Time
}

func messageOf(m connector.Record) ChatMessage {
	f := m.Fields
	out := ChatMessage{ID: m.ID}
	if s, ok := f["sender"].(map[string]any); ok {
		out.SenderName, out.SenderType = str(s["name"]), strings.ToLower(str(s["type"]))
	}
	switch body := f["message"].(type) {
	case map[string]any:
		out.Text = str(body["text"])
	case string:
		out.Text = body
	}
	if ms, err := strconv.ParseInt(str(f["time"]), 10, 64); err == nil && ms > 0 {
		t := time.UnixMilli(ms).UTC()
		out.At = &t
	}
	return out
}

func transcriptLine(rec connector.Record) string {
	m := messageOf(rec)
	at := ""
	if m.At != nil {
		at = "[" + m.At.Format("2006-01-02 15:04:05") + " UTC] "
	}
	who := firstNonEmptyStr(m.SenderName, m.SenderType, "?")
	if m.SenderType != "" && m.SenderName != "" {
		who += " (" + m.SenderType + ")"
	}
	return "<div>" + html.EscapeString(at) + "<b>" + html.EscapeString(who) + "</b>: " + html.EscapeString(m.Text) + "</div>"
}

// completeTranscript adds the whole transcript, as a private comment, to
// the ticket of a chat that was converted before it ended (at pickup, or
// by an agent mid-chat). Only one caller posts it.
func (s *ChatService) completeTranscript(ctx context.Context, link store.ChatLink, conn store.Connection, tool connector.ChatTool, convID string) error {
	row, claimed, err := store.ClaimChatTranscript(ctx, s.DB, link.OrgID, convID)
	if err != nil || !claimed {
		return err
	}
	unclaim := func(cause error) error {
		return errors.Join(cause, store.UnclaimChatTranscript(context.WithoutCancel(ctx), s.DB, link.OrgID, convID))
	}
	ticketID := deref(row.TicketID)
	if _, err := mirroredTicket(ctx, s.DB, conn, ticketID); err != nil {
		return err // merged away or deleted: nothing to add to
	}
	msgs, err := tool.Transcript(ctx, convID)
	if err != nil {
		return unclaim(err)
	}
	desk, _, err := s.chatDesk(ctx, conn)
	if err != nil {
		return unclaim(err)
	}
	comment, err := desk.AddComment(ctx, ticketID, transcriptHTML(chatConv{id: convID}, msgs, "Whole chat transcript"), false)
	if err != nil {
		if isOutcomeUnknown(err) {
			return err // it may be there: never post twice
		}
		return unclaim(err)
	}
	return store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		return recordTicketEvent(ctx, tx, conn, nil, TicketComment,
			TicketEventPayload{Source: SourceDeskbridge, TicketID: ticketID, Comment: comment.Fields})
	})
}

// RetryConversions makes the tickets whose attempts were deferred (the
// leader's job): RETRY and UNKNOWN claims whose time has come, and claims
// a dead process left PENDING. It returns how many it settled.
func (s *ChatService) RetryConversions(ctx context.Context) (int, error) {
	rows, err := store.ChatTicketsDue(ctx, s.DB, time.Now(), time.Now().Add(-keyStale), 50)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, row := range rows {
		link, err := store.ChatLinkByID(ctx, s.DB, row.OrgID, row.LinkID)
		if err != nil {
			return done, err
		}
		if link.Status != store.ChatLinkActive {
			continue // waits for the link to be fixed
		}
		conn, err := store.ConnectionByID(ctx, s.DB, link.OrgID, link.ConnectionID)
		if err != nil {
			return done, err
		}
		tool, err := s.tool(ctx, link)
		if err != nil {
			return done, err
		}
		rec, err := tool.Conversation(ctx, row.ConversationID)
		if err != nil {
			s.log().WarnContext(ctx, "reading a chat to convert; trying later", "conversation", row.ConversationID, "err", err)
			continue
		}
		var req chatTicketRequest
		if err := json.Unmarshal(row.Request, &req); err != nil {
			return done, fmt.Errorf("decoding the request of chat %s: %w", row.ConversationID, err)
		}
		c, err := s.makeTicket(ctx, ticketMaking{link: link, conn: conn, tool: tool, conv: convOf(rec), req: req,
			origin: row.Origin, background: true})
		if err != nil {
			return done, err
		}
		if c.TicketID != "" {
			done++
		}
	}
	return done, nil
}

// Maintain is the leader's periodic pass over the links: it asks for a
// re-link when the linked user is gone (A5), keeps SalesIQ subscribed,
// maps chat departments created since (F3), and retries deferred
// conversions (F1).
func (s *ChatService) Maintain(ctx context.Context) error {
	links, err := store.ChatLinksInStatus(ctx, s.DB, store.ChatLinkActive)
	if err != nil {
		return err
	}
	var errs []error
	for _, link := range links {
		l, err := s.CheckLink(ctx, link)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking chat link %d: %w", link.ID, err))
			continue
		}
		if l.Status != store.ChatLinkActive {
			continue
		}
		if l, err = s.ensureWebhook(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("subscribing chat link %d: %w", link.ID, err))
		}
		if _, err := s.refreshDepartments(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("mapping chat departments of link %d: %w", link.ID, err))
		}
	}
	if _, err := s.RetryConversions(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
