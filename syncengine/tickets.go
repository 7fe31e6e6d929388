package syncengine

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// TicketService does ticket work from the CRM side (SPEC E1-E3): it
// creates tickets for CRM records' customers, replies, comments and changes
// statuses through the desk's API, then records the ticket in the mirror
// and its event in the org's stream in one transaction. Every action that
// cannot be taken back runs under the client's idempotency key.
type TicketService struct {
	DB         *sqlx.DB
	Connectors Connectors
	Log        *slog.Logger
}

// Ticket event types in the org's stream (schema EventType TICKET_*).
const (
	TicketCreated       = "TICKET_CREATED"
	TicketUpdated       = "TICKET_UPDATED"
	TicketStatusChanged = "TICKET_STATUS_CHANGED"
	TicketReply         = "TICKET_REPLY"
	TicketComment       = "TICKET_COMMENT"
	TicketMerged        = "TICKET_MERGED"
	TicketDeleted       = "TICKET_DELETED"
)

// Where a ticket change came from (TicketEventPayload.Source).
const (
	SourceDeskbridge = "DESKBRIDGE"
	SourceDesk       = "DESK"
)

// TicketEventPayload is the payload of a TICKET_* event.
type TicketEventPayload struct {
	Source         string         `json:"source"`
	TicketID       string         `json:"ticketId"`
	Status         string         `json:"status,omitempty"`
	PreviousStatus string         `json:"previousStatus,omitempty"`
	Thread         map[string]any `json:"thread,omitempty"`
	Comment        map[string]any `json:"comment,omitempty"`
	MergedIDs      []string       `json:"mergedIds,omitempty"`
	CRMModule      string         `json:"crmModule,omitempty"` // a ticket created from a CRM record
	CRMID          string         `json:"crmId,omitempty"`
	Escalated      bool           `json:"escalated,omitempty"` // the change escalated the ticket
	// ActorUserID is the deskbridge user who made the change, who needs
	// no signal about it; not part of the event.
	ActorUserID int64 `json:"-"`
}

// TicketError is a refused ticket action, with the code and message the
// API shows.
type TicketError struct {
	Code    string
	Message string
	Err     error
}

// Ticket error codes (extensions.code).
const (
	CodeFailedPrecondition  = "FAILED_PRECONDITION" // e.g. the contact has no valid email
	CodeKeyReused           = "IDEMPOTENCY_KEY_REUSED"
	CodeInProgress          = "IN_PROGRESS"          // the same key is being served
	CodeOutcomeUnknown      = "OUTCOME_UNKNOWN"      // the desk may or may not have acted
	CodeUpstreamRejected    = "UPSTREAM_REJECTED"    // the desk refused the request
	CodeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE" // the desk could not be reached; retry
)

func (e *TicketError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *TicketError) Unwrap() error { return e.Err }

// PublicMessage is what the API may show the caller.
func (e *TicketError) PublicMessage() string { return e.Message }

// ErrorCode is the API's extensions.code.
func (e *TicketError) ErrorCode() string { return e.Code }

// keyStale is how long a claimed key may stay under way before its
// outcome is reported unknown: the process that claimed it died mid-call.
const keyStale = 2 * time.Minute

// ticketDesk is the connection's desk with its ticket calls.
func (s *TicketService) ticketDesk(ctx context.Context, conn store.Connection) (connector.TicketDesk, error) {
	desk, _, err := s.Connectors.For(ctx, conn)
	if err != nil {
		return nil, err
	}
	td, ok := desk.(connector.TicketDesk)
	if !ok {
		return nil, fmt.Errorf("the desk connector of connection %d does not take ticket work", conn.ID)
	}
	return td, nil
}

// runKeyed runs send at most once per (org, key): a key seen before
// returns the first answer, or says why it cannot (under way, outcome
// unknown, reused for another request). A send the desk certainly refused
// frees the key; one whose outcome is unknown keeps it, so a retry never
// sends a second email. commit records the answer's effects in the
// transaction that marks the key done. An empty key runs without one.
func runKeyed[T any](ctx context.Context, db *sqlx.DB, orgID int64, key, operation string, request any,
	send func() (T, error), commit func(tx *sqlx.Tx, result T) error) (T, error) {
	var zero T
	if key == "" {
		res, err := send()
		if err != nil {
			return zero, deskActionError(err)
		}
		return res, store.InTx(ctx, db, func(tx *sqlx.Tx) error { return commit(tx, res) })
	}
	raw, err := json.Marshal(request)
	if err != nil {
		return zero, fmt.Errorf("encoding %s request: %w", operation, err)
	}
	hash := sha256.Sum256(raw)
	k, fresh, err := store.ClaimIdempotencyKey(ctx, db, orgID, key, operation, hash[:])
	if errors.Is(err, store.ErrKeyReused) {
		return zero, &TicketError{Code: CodeKeyReused, Message: "this idempotency key was already used for another request; choose a new key", Err: err}
	}
	if err != nil {
		return zero, err
	}
	if !fresh {
		switch {
		case k.State == store.KeyDone:
			var res T
			if err := json.Unmarshal(k.Result, &res); err != nil {
				return zero, fmt.Errorf("decoding the stored answer of idempotency key %q: %w", key, err)
			}
			return res, nil
		case k.State == store.KeyUnknown || time.Since(k.CreatedAt) > keyStale:
			return zero, &TicketError{Code: CodeOutcomeUnknown, Message: "an earlier request with this idempotency key may or may not have reached the desk; check the ticket before acting again with a new key"}
		default:
			return zero, &TicketError{Code: CodeInProgress, Message: "a request with this idempotency key is still under way; try again in a moment"}
		}
	}
	res, err := send()
	if err != nil {
		// A detached context: the key's state must be written even when
		// the caller has gone.
		bg := context.WithoutCancel(ctx)
		if isOutcomeUnknown(err) {
			if merr := store.MarkIdempotencyKeyUnknown(bg, db, orgID, key); merr != nil {
				return zero, errors.Join(deskActionError(err), merr)
			}
		} else if rerr := store.ReleaseIdempotencyKey(bg, db, orgID, key); rerr != nil {
			return zero, errors.Join(deskActionError(err), rerr)
		}
		return zero, deskActionError(err)
	}
	err = store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := commit(tx, res); err != nil {
			return err
		}
		return store.FinishIdempotencyKey(ctx, tx, orgID, key, res)
	})
	if err != nil {
		// The desk acted; only the recording failed. The key keeps the
		// action from happening twice, and the desk's webhook or polling
		// brings the ticket into the mirror later.
		bg := context.WithoutCancel(ctx)
		if ferr := store.InTx(bg, db, func(tx *sqlx.Tx) error { return store.FinishIdempotencyKey(bg, tx, orgID, key, res) }); ferr != nil {
			_ = store.MarkIdempotencyKeyUnknown(bg, db, orgID, key)
		}
		return zero, fmt.Errorf("recording %s: %w", operation, err)
	}
	return res, nil
}

// isOutcomeUnknown reports whether the vendor may have acted although the
// call failed.
func isOutcomeUnknown(err error) bool {
	var ce *connector.Error
	return errors.As(err, &ce) && ce.Code == "OUTCOME_UNKNOWN"
}

// deskActionError turns a failed desk call into what the API shows: the
// desk's own reason when it refused, "retry" when it could not be reached.
func deskActionError(err error) error {
	var ce *connector.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch {
	case ce.Code == "OUTCOME_UNKNOWN":
		return &TicketError{Code: CodeOutcomeUnknown, Message: "the desk may or may not have done it (its answer was lost); check the ticket before acting again", Err: err}
	case ce.Class == connector.Transient || ce.Class == connector.RateLimited:
		return &TicketError{Code: CodeUpstreamUnavailable, Message: "the desk could not be reached; try again", Err: err}
	case ce.Class == connector.Auth:
		return &TicketError{Code: CodeUpstreamUnavailable, Message: "the desk refused the connection's credentials; an admin must reconnect", Err: err}
	case ce.Reason == connector.ReasonNotFound:
		return fmt.Errorf("the desk does not know it: %w", store.ErrNotFound)
	}
	msg := "the desk refused the request"
	if ce.Field != "" {
		msg += ": " + ce.Field + " is " + strings.ReplaceAll(string(ce.Reason), "_", " ")
	} else if ce.Message != "" {
		msg += ": " + ce.Message
	}
	return &TicketError{Code: CodeUpstreamRejected, Message: msg, Err: err}
}

// mayActOnTickets is C3: only roles whose profile allows ticket actions.
func mayActOnTickets(v auth.Viewer) error {
	if !v.EffectiveProfile().TicketActions {
		return fmt.Errorf("your permission profile does not allow acting on tickets: %w", auth.ErrForbidden)
	}
	return nil
}

// validEmail is an address a desk can write to: one mailbox, with a
// domain that has a dot.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != strings.TrimSpace(s) {
		return false
	}
	_, domain, ok := strings.Cut(a.Address, "@")
	return ok && strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}

// NewTicket is a ticket for a CRM record's customer (E1).
type NewTicket struct {
	Module       string // leads, contacts, accounts or deals
	CRMID        string
	ContactCRMID string // accounts and deals: the related contact to raise it for
	DepartmentID string
	Subject      string
	Description  string
	Priority     string
	Key          string
}

// ticketContact is the person a new ticket is raised for.
type ticketContact struct {
	crmID, email, firstName, lastName, deskID string
}

// CreateFromCRM creates a desk ticket for the customer of a CRM record and
// records it (mirror row, TICKET_CREATED event) at once, so the record's
// ticket list shows it before any webhook arrives.
func (s *TicketService) CreateFromCRM(ctx context.Context, v auth.Viewer, conn store.Connection, in NewTicket) (connector.Record, error) {
	if err := mayActOnTickets(v); err != nil {
		return connector.Record{}, err
	}
	person, err := s.ticketContactOf(ctx, conn, in)
	if err != nil {
		return connector.Record{}, err
	}
	fields := map[string]any{"subject": in.Subject, "departmentId": in.DepartmentID, "channel": "Email"}
	if in.Description != "" {
		fields["description"] = in.Description
	}
	if in.Priority != "" {
		fields["priority"] = in.Priority
	}
	if person.deskID != "" {
		fields["contactId"] = person.deskID
	} else {
		// The desk finds its contact by the email, or creates it; the sync
		// then links it to the CRM contact by that same email (B8).
		contact := map[string]any{"email": person.email, "lastName": firstNonEmptyStr(person.lastName, person.email)}
		if person.firstName != "" {
			contact["firstName"] = person.firstName
		}
		fields["contact"] = contact
	}
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return connector.Record{}, err
	}
	return runKeyed(ctx, s.DB, v.OrgID, in.Key, "createTicketFromCrm", in,
		func() (connector.Record, error) { return desk.CreateTicket(ctx, fields) },
		func(tx *sqlx.Tx, rec connector.Record) error {
			return recordTicketEvent(ctx, tx, conn, &rec, TicketCreated,
				TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, CRMModule: in.Module, CRMID: in.CRMID})
		})
}

// ticketContactOf finds who a ticket from a CRM record is for: the lead or
// contact itself; for an account, the named related contact or the first
// with a valid email; for a deal (Bigin: pipeline record), its contact.
// Refused unless that person has a valid email (E1).
func (s *TicketService) ticketContactOf(ctx context.Context, conn store.Connection, in NewTicket) (ticketContact, error) {
	sys := conn.CRMSystem
	recs, err := store.CustomerRecordsByExtIDs(ctx, s.DB, conn.OrgID, conn.ID, sys, in.Module, []string{in.CRMID})
	if err != nil {
		return ticketContact{}, err
	}
	rec, ok := recs[in.CRMID]
	if !ok {
		return ticketContact{}, fmt.Errorf("%s record %s: %w", in.Module, in.CRMID, store.ErrNotFound)
	}
	var candidates []store.CustomerRecord
	switch in.Module {
	case "leads", "contacts":
		if in.ContactCRMID != "" && in.ContactCRMID != in.CRMID {
			return ticketContact{}, &TicketError{Code: CodeFailedPrecondition, Message: "contactCrmId applies to accounts and deals only"}
		}
		candidates = []store.CustomerRecord{rec}
	case "deals":
		contact := deref(rec.ContactRef)
		if contact == "" || (in.ContactCRMID != "" && in.ContactCRMID != contact) {
			return ticketContact{}, &TicketError{Code: CodeFailedPrecondition, Message: "the deal has no related contact to raise a ticket for"}
		}
		people, err := store.CustomerRecordsByExtIDs(ctx, s.DB, conn.OrgID, conn.ID, sys, "contacts", []string{contact})
		if err != nil {
			return ticketContact{}, err
		}
		if p, ok := people[contact]; ok {
			candidates = []store.CustomerRecord{p}
		}
	case "accounts":
		page, err := store.ListCustomerRecords(ctx, s.DB, store.CustomerListQuery{OrgID: conn.OrgID, ConnectionID: conn.ID,
			System: sys, Modules: []string{"contacts"}, AccountRefs: []string{in.CRMID}, RefsGiven: true,
			Order: store.OrderCreatedDesc, Limit: 200})
		if err != nil {
			return ticketContact{}, err
		}
		for _, p := range page.Records {
			if in.ContactCRMID == "" || p.ExtID == in.ContactCRMID {
				candidates = append(candidates, p)
			}
		}
		if in.ContactCRMID != "" && len(candidates) == 0 {
			return ticketContact{}, &TicketError{Code: CodeFailedPrecondition, Message: "contactCrmId is not a contact of this account"}
		}
	default:
		return ticketContact{}, &TicketError{Code: CodeFailedPrecondition, Message: in.Module + " records cannot raise tickets"}
	}
	for _, p := range candidates {
		email := strings.TrimSpace(deref(p.Email))
		if !validEmail(email) {
			continue
		}
		f := map[string]any{}
		_ = json.Unmarshal(p.Fields, &f)
		person := ticketContact{crmID: p.ExtID, email: email, firstName: str(f["First_Name"]), lastName: str(f["Last_Name"])}
		if p.Module == "contacts" {
			link, err := store.LinkByCRM(ctx, s.DB, conn.OrgID, conn.ID, "contacts", p.ExtID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return ticketContact{}, err
			}
			person.deskID = link.DeskID
		}
		return person, nil
	}
	return ticketContact{}, &TicketError{Code: CodeFailedPrecondition,
		Message: "a ticket needs a contact with a valid email address, and this record has none"}
}

// recordTicketEvent writes a ticket's current state to the mirror (when rec
// is not nil) and appends its event, in the caller's transaction. The
// event's refs come from the ticket (or, for a message or comment, from its
// mirror row), so subscribers filtered by contact, account or department
// get it.
func recordTicketEvent(ctx context.Context, tx *sqlx.Tx, conn store.Connection, rec *connector.Record, typ string, p TicketEventPayload) error {
	var facts ticketFacts
	if rec != nil {
		if err := store.LockTickets(ctx, tx, conn.ID, []string{rec.ID}); err != nil {
			return err
		}
		rows, err := mirrorRecords(connector.Desk, "tickets", []connector.Record{*rec})
		if err != nil {
			return err
		}
		written, err := store.UpsertMirror(ctx, tx, conn.OrgID, conn.ID, rows)
		if err != nil {
			return err
		}
		if written == 0 && typ != TicketMerged {
			// The mirror holds this copy (or a newer one) already: another
			// path (polling, the webhook) recorded the change first, as
			// the same kind of event. (A merge is news only here.)
			return nil
		}
		refs := rows[0].Refs
		p.TicketID = rec.ID
		if p.Status == "" {
			p.Status = refs.Status
		}
		facts = ticketFacts{id: rec.ID, number: str(rec.Fields["ticketNumber"]), subject: refs.Title, channel: str(rec.Fields["channel"]),
			contact: refs.ContactID, account: refs.AccountID, department: refs.DepartmentID}
	} else {
		facts.id = p.TicketID
		row, known, err := ticketRow(ctx, tx, conn, p.TicketID)
		if err != nil {
			return err
		}
		if known {
			facts = factsOfRow(row)
			if p.Status == "" {
				p.Status = deref(row.Status)
			}
		}
	}
	subject := "Ticket:" + p.TicketID
	ev, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: conn.OrgID, Type: typ, Permission: string(auth.PermReadOrg),
		SubjectID: &subject, Payload: p, Refs: store.EventRefs{Ticket: p.TicketID, Contact: facts.contact,
			Account: facts.account, Department: facts.department, Connection: conn.ID}})
	if err != nil {
		return err
	}
	return signalTicketEvent(ctx, tx, conn, typ, p, facts, signalCause(typ, p, ev.ID))
}

// signalCause names what caused a ticket event's signals, the same for a
// redelivery of the same change: the thread or comment id, or the event.
func signalCause(typ string, p TicketEventPayload, eventID int64) string {
	switch {
	case p.Thread != nil && str(p.Thread["id"]) != "":
		return "thread:" + str(p.Thread["id"])
	case p.Comment != nil && str(p.Comment["id"]) != "":
		return "comment:" + str(p.Comment["id"])
	case typ == TicketCreated:
		return "created:" + p.TicketID
	}
	return "event:" + strconv.FormatInt(eventID, 10)
}

// ticketRow reads a ticket's mirror row; ok is false when it is not
// mirrored.
func ticketRow(ctx context.Context, q store.Queryer, conn store.Connection, ticketID string) (store.CustomerRecord, bool, error) {
	rows, err := store.CustomerRecordsByExtIDs(ctx, q, conn.OrgID, conn.ID, string(connector.Desk), "tickets", []string{ticketID})
	if err != nil {
		return store.CustomerRecord{}, false, err
	}
	row, ok := rows[ticketID]
	return row, ok, nil
}

// mirroredTicket is a ticket a mutation acts on: one of the connection's
// mirrored, live tickets, else ErrNotFound (another org's or portal's
// ticket is as unknown as one that does not exist).
func mirroredTicket(ctx context.Context, q store.Queryer, conn store.Connection, ticketID string) (store.CustomerRecord, error) {
	row, ok, err := ticketRow(ctx, q, conn, ticketID)
	if err != nil {
		return store.CustomerRecord{}, err
	}
	if !ok {
		return store.CustomerRecord{}, fmt.Errorf("ticket %s: %w", ticketID, store.ErrNotFound)
	}
	return row, nil
}

// ReplyRequest is a reply, reply-all or forward (E2).
type ReplyRequest struct {
	TicketID    string
	Mode        string // REPLY, REPLY_ALL, FORWARD
	To, Cc      []string
	Content     string
	ContentType string // html or plainText
	From        string
	Status      string
	Key         string
}

// Reply sends a reply under the desk's rules: the ticket's channel (EMAIL
// when the ticket came by email or has none), a from address among the
// department's reply addresses (its default when none is given), and for a
// forward the recipients given.
func (s *TicketService) Reply(ctx context.Context, v auth.Viewer, conn store.Connection, in ReplyRequest) (connector.Record, error) {
	if err := mayActOnTickets(v); err != nil {
		return connector.Record{}, err
	}
	for _, a := range append(append([]string{}, in.To...), in.Cc...) {
		if !validEmail(a) {
			return connector.Record{}, &TicketError{Code: CodeFailedPrecondition, Message: fmt.Sprintf("%q is not a valid email address", a)}
		}
	}
	if in.Mode == "FORWARD" && len(in.To) == 0 {
		return connector.Record{}, &TicketError{Code: CodeFailedPrecondition, Message: "a forward needs at least one address in `to`"}
	}
	row, err := mirroredTicket(ctx, s.DB, conn, in.TicketID)
	if err != nil {
		return connector.Record{}, err
	}
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return connector.Record{}, err
	}
	from := in.From
	if from == "" {
		if from, err = s.defaultReplyAddress(ctx, desk, deref(row.DepartmentID)); err != nil {
			return connector.Record{}, err
		}
	}
	r := connector.Reply{Channel: "EMAIL", FromEmailAddress: from, Content: in.Content, ContentType: in.ContentType,
		TicketStatus: in.Status, IsForward: in.Mode == "FORWARD", To: strings.Join(in.To, ",")}
	if in.Mode == "REPLY_ALL" {
		r.To, r.Cc = "", strings.Join(in.Cc, ",")
	}
	return runKeyed(ctx, s.DB, v.OrgID, in.Key, "replyToTicket", in,
		func() (connector.Record, error) { return desk.SendReply(ctx, in.TicketID, r) },
		func(tx *sqlx.Tx, thread connector.Record) error {
			p := TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, TicketID: in.TicketID, Thread: thread.Fields, Status: in.Status}
			return recordTicketEvent(ctx, tx, conn, nil, TicketReply, p)
		})
}

// defaultReplyAddress is the department's default reply address, else its
// first one.
func (s *TicketService) defaultReplyAddress(ctx context.Context, desk connector.TicketDesk, departmentID string) (string, error) {
	if departmentID == "" {
		return "", &TicketError{Code: CodeFailedPrecondition, Message: "the ticket has no department, so it has no reply address; give fromEmailAddress"}
	}
	addrs, err := desk.ReplyAddresses(ctx, departmentID)
	if err != nil {
		return "", deskActionError(err)
	}
	first := ""
	for _, a := range addrs {
		addr := str(a.Fields["address"])
		if a.Fields["isDefault"] == true {
			return addr, nil
		}
		if first == "" {
			first = addr
		}
	}
	if first == "" {
		return "", &TicketError{Code: CodeFailedPrecondition, Message: "the ticket's department has no reply address"}
	}
	return first, nil
}

// CommentRequest is a comment on a ticket.
type CommentRequest struct {
	TicketID string
	Content  string
	Public   bool
	Key      string
}

// Comment adds a comment.
func (s *TicketService) Comment(ctx context.Context, v auth.Viewer, conn store.Connection, in CommentRequest) (connector.Record, error) {
	if err := mayActOnTickets(v); err != nil {
		return connector.Record{}, err
	}
	if _, err := mirroredTicket(ctx, s.DB, conn, in.TicketID); err != nil {
		return connector.Record{}, err
	}
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return connector.Record{}, err
	}
	return runKeyed(ctx, s.DB, v.OrgID, in.Key, "addTicketComment", in,
		func() (connector.Record, error) { return desk.AddComment(ctx, in.TicketID, in.Content, in.Public) },
		func(tx *sqlx.Tx, comment connector.Record) error {
			p := TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, TicketID: in.TicketID, Comment: comment.Fields}
			return recordTicketEvent(ctx, tx, conn, nil, TicketComment, p)
		})
}

// StatusRequest is a status change (E3).
type StatusRequest struct {
	TicketID string
	Status   string
	Key      string
}

// SetStatus changes a ticket's status and records the change; setting the
// status it already has changes nothing and records nothing.
func (s *TicketService) SetStatus(ctx context.Context, v auth.Viewer, conn store.Connection, in StatusRequest) (connector.Record, error) {
	if err := mayActOnTickets(v); err != nil {
		return connector.Record{}, err
	}
	row, err := mirroredTicket(ctx, s.DB, conn, in.TicketID)
	if err != nil {
		return connector.Record{}, err
	}
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return connector.Record{}, err
	}
	previous := deref(row.Status)
	return runKeyed(ctx, s.DB, v.OrgID, in.Key, "setTicketStatus", in,
		func() (connector.Record, error) {
			return desk.UpdateTicket(ctx, in.TicketID, map[string]any{"status": in.Status})
		},
		func(tx *sqlx.Tx, rec connector.Record) error {
			if strings.EqualFold(previous, str(rec.Fields["status"])) {
				return nil
			}
			return recordTicketEvent(ctx, tx, conn, &rec, TicketStatusChanged,
				TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, PreviousStatus: previous})
		})
}

// MergeRequest merges tickets into one.
type MergeRequest struct {
	TicketID string
	IDs      []string
	Key      string
}

// Merge merges tickets into one and records a MERGED event for the ticket
// that stays and a DELETED event (and deleted mirror row) for each merged
// one: the desk's own webhook ignores deskbridge's calls, so this is how
// their subscribers learn of it.
func (s *TicketService) Merge(ctx context.Context, v auth.Viewer, conn store.Connection, in MergeRequest) (connector.Record, error) {
	if err := mayActOnTickets(v); err != nil {
		return connector.Record{}, err
	}
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return connector.Record{}, err
	}
	return mergeKeyed(ctx, s.DB, desk, conn, v, in.TicketID, in.IDs, in.Key, "mergeTickets", in, nil)
}

// mergeKeyed merges ids into master through the desk under an idempotency
// key (operation and request as for runKeyed), and records a MERGED event
// for the master and a DELETED event (and deleted mirror row) for each
// merged ticket, plus whatever also records in the same transaction. The
// tickets are checked only when the key is new: a retry after the merge
// gets its answer, although the merged tickets are gone by then.
func mergeKeyed(ctx context.Context, db *sqlx.DB, desk connector.TicketDesk, conn store.Connection, v auth.Viewer,
	master string, ids []string, key, operation string, request any, also func(tx *sqlx.Tx) error) (connector.Record, error) {
	all := append([]string{master}, ids...)
	return runKeyed(ctx, db, v.OrgID, key, operation, request,
		func() (connector.Record, error) {
			known, err := store.CustomerRecordsByExtIDs(ctx, db, conn.OrgID, conn.ID, string(connector.Desk), "tickets", all)
			if err != nil {
				return connector.Record{}, err
			}
			for _, id := range all {
				if _, ok := known[id]; !ok {
					return connector.Record{}, fmt.Errorf("ticket %s: %w", id, store.ErrNotFound)
				}
			}
			return desk.MergeTickets(ctx, master, ids, nil)
		},
		func(tx *sqlx.Tx, rec connector.Record) error {
			if also != nil {
				if err := also(tx); err != nil {
					return err
				}
			}
			if err := recordTicketEvent(ctx, tx, conn, &rec, TicketMerged,
				TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, MergedIDs: ids}); err != nil {
				return err
			}
			// The events first: they take the merged tickets' contact and
			// department from their mirror rows, still live.
			for _, id := range ids {
				if err := recordTicketEvent(ctx, tx, conn, nil, TicketDeleted,
					TicketEventPayload{Source: SourceDeskbridge, ActorUserID: v.UserID, TicketID: id}); err != nil {
					return err
				}
			}
			_, err := store.MarkMirrorDeleted(ctx, tx, conn.OrgID, conn.ID, string(connector.Desk), "tickets", ids, time.Now())
			return err
		})
}

// Conversation reads a ticket's latest threads or comments from the desk
// (C3: anyone who sees the ticket reads them).
func (s *TicketService) Conversation(ctx context.Context, conn store.Connection, ticketID string, activity connector.Activity, limit int) ([]connector.Record, error) {
	desk, err := s.ticketDesk(ctx, conn)
	if err != nil {
		return nil, err
	}
	var recs []connector.Record
	if activity == connector.ActivityComment {
		recs, err = desk.ListComments(ctx, ticketID, 1, limit)
	} else {
		recs, err = desk.ListThreads(ctx, ticketID, 1, limit)
	}
	if err != nil {
		return nil, deskActionError(err)
	}
	return recs, nil
}

// recordDeskTicketChanges records the ticket changes of a desk webhook
// delivery: the ticket's new state in the mirror and its event, in one
// transaction. A copy no newer than the mirrored one (a redelivery) is
// dropped, so a change is one event however often it arrives. Changes the
// desk made on deskbridge's own request never come back: the webhook
// ignores our source id, and the mutation recorded them already.
func recordDeskTicketChanges(ctx context.Context, db *sqlx.DB, conn store.Connection, changes []connector.Change) (int, error) {
	recorded := 0
	var ticketIDs []string
	for _, ch := range changes {
		if ch.Module == "tickets" {
			ticketIDs = append(ticketIDs, ch.IDs...)
		}
	}
	if len(ticketIDs) == 0 {
		return 0, nil
	}
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := store.LockTickets(ctx, tx, conn.ID, ticketIDs); err != nil {
			return err
		}
		for _, ch := range changes {
			if ch.Module != "tickets" {
				continue
			}
			for i, id := range ch.IDs {
				p := TicketEventPayload{Source: SourceDesk, TicketID: id}
				typ := ""
				switch {
				case ch.Activity == connector.ActivityThread:
					typ, p.Thread = TicketReply, ch.Detail
				case ch.Activity == connector.ActivityComment:
					typ, p.Comment = TicketComment, ch.Detail
				case ch.Kind == connector.Deleted:
					if _, live, err := ticketRow(ctx, tx, conn, id); err != nil {
						return err
					} else if !live {
						continue // unknown or already deleted
					}
					// The event first: it takes the ticket's contact and
					// department from its mirror row, still live.
					if err := recordTicketEvent(ctx, tx, conn, nil, TicketDeleted, p); err != nil {
						return err
					}
					at := ch.At
					if at.IsZero() {
						at = time.Now()
					}
					if _, err := store.MarkMirrorDeleted(ctx, tx, conn.OrgID, conn.ID, string(connector.Desk), "tickets", []string{id}, at); err != nil {
						return err
					}
					recorded++
					continue
				case i < len(ch.Records):
					// The tickets are locked above; the row is read per
					// change, since one delivery may change a ticket twice.
					ok, err := noteTicketChange(ctx, tx, conn, ch.Records[i], ch.Kind == connector.Created, str(ch.Previous["status"]))
					if err != nil {
						return err
					}
					if ok {
						recorded++
					}
					continue
				default:
					continue // an update without the ticket: polling brings it
				}
				if err := recordTicketEvent(ctx, tx, conn, nil, typ, p); err != nil {
					return err
				}
				recorded++
			}
		}
		return nil
	})
	return recorded, err
}

// noteTicketChange is noteTicketChangeFrom for one ticket: it takes the
// ticket's lock and reads its mirror row first.
func noteTicketChange(ctx context.Context, tx *sqlx.Tx, conn store.Connection, rec connector.Record, created bool, previousStatus string) (bool, error) {
	if err := store.LockTickets(ctx, tx, conn.ID, []string{rec.ID}); err != nil {
		return false, err
	}
	row, known, err := ticketRow(ctx, tx, conn, rec.ID)
	if err != nil {
		return false, err
	}
	var prev *store.CustomerRecord
	if known {
		prev = &row
	}
	return noteTicketChangeFrom(ctx, tx, conn, rec, prev, created, previousStatus)
}

// noteTicketChangeFrom records a ticket the desk changed (seen by its webhook
// or by polling): the mirror row and a CREATED, UPDATED or STATUS_CHANGED
// event. prev is its mirror row (nil when not mirrored), read by the
// caller under the ticket's lock (store.LockTickets). A copy no newer than
// the mirrored one is a redelivery or an echo of what was already
// recorded, and records nothing (false). created says the desk reported a
// new ticket; previousStatus is the status before, when the desk sent it
// and the ticket was not mirrored yet.
func noteTicketChangeFrom(ctx context.Context, tx *sqlx.Tx, conn store.Connection, rec connector.Record, prev *store.CustomerRecord, created bool, previousStatus string) (bool, error) {
	if prev != nil && prev.ModifiedAt != nil && !rec.ModifiedAt.After(*prev.ModifiedAt) {
		return false, nil
	}
	var before map[string]any // the mirrored fields
	if prev != nil {
		_ = json.Unmarshal(prev.Fields, &before)
		previousStatus = deref(prev.Status)
	}
	p := TicketEventPayload{Source: SourceDesk}
	typ := TicketUpdated
	if created && prev == nil {
		typ = TicketCreated
	}
	if now := str(rec.Fields["status"]); typ == TicketUpdated && previousStatus != "" && !strings.EqualFold(previousStatus, now) {
		typ, p.PreviousStatus = TicketStatusChanged, previousStatus
	}
	if rec.Fields["isEscalated"] == true && before["isEscalated"] != true {
		p.Escalated = true
	}
	if typ == TicketUpdated && prev != nil && !ticketFieldsChanged(before, rec.Fields) {
		// Only counters and times moved (a message or comment was added,
		// which has its own event): mirror it, tell nobody.
		rows, err := mirrorRecords(connector.Desk, "tickets", []connector.Record{rec})
		if err != nil {
			return false, err
		}
		_, err = store.UpsertMirror(ctx, tx, conn.OrgID, conn.ID, rows)
		return false, err
	}
	return true, recordTicketEvent(ctx, tx, conn, &rec, typ, p)
}

// ticketNewsFields are the ticket fields whose change is news to a
// subscriber; counters (threadCount, commentCount) and times move with
// every message and comment, which have events of their own.
var ticketNewsFields = []string{"subject", "status", "priority", "assigneeId", "departmentId", "contactId", "accountId",
	"dueDate", "channel", "classification", "category", "subCategory", "teamId", "productId", "isEscalated", "description",
	"customerResponseTime", "email", "phone", "language", "cf"}

// ticketFieldsChanged reports whether any news field differs between the
// mirrored copy's fields and the new ones.
func ticketFieldsChanged(before, now map[string]any) bool {
	if before == nil {
		return true
	}
	for _, k := range ticketNewsFields {
		a, _ := json.Marshal(before[k])
		b, _ := json.Marshal(normalizeJSON(now[k]))
		if string(a) != string(b) {
			return true
		}
	}
	return false
}

// normalizeJSON gives a vendor value the shape it has after a round trip
// through the mirror's jsonb (numbers as float64).
func normalizeJSON(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

// notePolledTickets records the events of a page of desk tickets that
// polling read: tickets already mirrored that changed, and tickets created
// since the connection was made. The first read of a desk's existing
// tickets is a bulk load, not news.
func notePolledTickets(ctx context.Context, tx *sqlx.Tx, conn store.Connection, recs []connector.Record) error {
	if err := store.LockTickets(ctx, tx, conn.ID, recordIDs(recs)); err != nil {
		return err
	}
	known, err := store.CustomerRecordsByExtIDs(ctx, tx, conn.OrgID, conn.ID, string(connector.Desk), "tickets", recordIDs(recs))
	if err != nil {
		return err
	}
	for _, rec := range recs {
		var prev *store.CustomerRecord
		if row, ok := known[rec.ID]; ok {
			prev = &row
		} else if !rec.CreatedAt.After(conn.CreatedAt) {
			continue
		}
		if _, err := noteTicketChangeFrom(ctx, tx, conn, rec, prev, prev == nil, ""); err != nil {
			return err
		}
	}
	return nil
}

func recordIDs(recs []connector.Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}
