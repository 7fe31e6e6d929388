package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"
)

// Chat ticket states (chat_tickets.state).
const (
	ChatTicketPending = "PENDING" // claimed; the desk is being asked
	ChatTicketRetry   = "RETRY"   // the desk could not be reached; the leader tries again
	ChatTicketUnknown = "UNKNOWN" // the desk's answer was lost; look before sending again
	ChatTicketDone    = "DONE"
)

// Where a chat's ticket came from (chat_tickets.origin).
const (
	ChatOriginAutomatic = "AUTOMATIC"
	ChatOriginManual    = "MANUAL"
	ChatOriginAttached  = "ATTACHED" // the chat was attached to an existing ticket (F6)
)

// ChatTicket is the one ticket a chat makes, or the claim to make it.
type ChatTicket struct {
	OrgID              int64           `db:"org_id"`
	LinkID             int64           `db:"link_id"`
	ConversationID     string          `db:"conversation_id"`
	State              string          `db:"state"`
	Origin             string          `db:"origin"`
	TicketID           *string         `db:"ticket_id"`
	Request            json.RawMessage `db:"request"`
	Attempts           int             `db:"attempts"`
	NextAttemptAt      *time.Time      `db:"next_attempt_at"`
	LastError          *string         `db:"last_error"`
	TranscriptComplete bool            `db:"transcript_complete"`
	CreatedBy          *int64          `db:"created_by"`
	CreatedAt          time.Time       `db:"created_at"`
	UpdatedAt          time.Time       `db:"updated_at"`
}

const chatTicketColumns = `org_id, link_id, conversation_id, state, origin, ticket_id, request, attempts,
	next_attempt_at, last_error, transcript_complete, created_by, created_at, updated_at`

// ClaimChatTicket claims a conversation's ticket: it inserts a PENDING row
// and reports true, or reports false with the row already there (made,
// being made, or waiting for a retry). Exactly one caller wins a
// conversation, across replicas.
func ClaimChatTicket(ctx context.Context, q Queryer, c ChatTicket) (bool, ChatTicket, error) {
	const action = "claiming a chat's ticket"
	req := c.Request
	if len(req) == 0 {
		req = json.RawMessage("{}")
	}
	var out ChatTicket
	err := q.GetContext(ctx, &out, `
		INSERT INTO chat_tickets (org_id, link_id, conversation_id, state, origin, request, attempts, created_by)
		VALUES ($1, $2, $3, 'PENDING', $4, $5, 1, $6)
		ON CONFLICT (org_id, conversation_id) DO NOTHING
		RETURNING `+chatTicketColumns, c.OrgID, c.LinkID, c.ConversationID, c.Origin, req, c.CreatedBy)
	if err == nil {
		return true, out, nil
	}
	if !errors.Is(classify(action, err), ErrNotFound) {
		return false, ChatTicket{}, classify(action, err)
	}
	out, err = ChatTicketOf(ctx, q, c.OrgID, c.ConversationID)
	return false, out, err
}

// TakeOverChatTicket claims a row another attempt left behind (RETRY,
// UNKNOWN, or PENDING since before staleBefore): it becomes PENDING with
// one more attempt. False when someone else took it first or it is done.
func TakeOverChatTicket(ctx context.Context, q Queryer, orgID int64, conversationID string, staleBefore time.Time) (bool, ChatTicket, error) {
	var out ChatTicket
	err := q.GetContext(ctx, &out, `
		UPDATE chat_tickets SET state = 'PENDING', attempts = attempts + 1, updated_at = now()
		WHERE org_id = $1 AND conversation_id = $2
		  AND (state IN ('RETRY', 'UNKNOWN') OR (state = 'PENDING' AND updated_at < $3))
		RETURNING `+chatTicketColumns, orgID, conversationID, staleBefore)
	if errors.Is(classify("", err), ErrNotFound) {
		return false, ChatTicket{}, nil
	}
	if err != nil {
		return false, ChatTicket{}, classify("taking over a chat's ticket", err)
	}
	return true, out, nil
}

// ChatTicketOf returns a conversation's row.
func ChatTicketOf(ctx context.Context, q Queryer, orgID int64, conversationID string) (ChatTicket, error) {
	var out ChatTicket
	err := q.GetContext(ctx, &out, `SELECT `+chatTicketColumns+` FROM chat_tickets WHERE org_id = $1 AND conversation_id = $2`,
		orgID, conversationID)
	return out, classify("loading a chat's ticket", err)
}

// FinishChatTicket records the ticket a claimed conversation made.
// transcriptComplete says the ticket holds the chat's whole transcript
// (the chat had ended).
func FinishChatTicket(ctx context.Context, q Queryer, orgID int64, conversationID, ticketID string, origin string, transcriptComplete bool) error {
	var n int
	err := q.GetContext(ctx, &n, `
		UPDATE chat_tickets SET state = 'DONE', ticket_id = $3, origin = $4, transcript_complete = $5,
			next_attempt_at = NULL, last_error = NULL, updated_at = now()
		WHERE org_id = $1 AND conversation_id = $2 RETURNING 1`, orgID, conversationID, ticketID, origin, transcriptComplete)
	return classify("finishing a chat's ticket", err)
}

// ReleaseChatTicket drops an unfinished claim: nothing was made, and the
// conversation may be converted again.
func ReleaseChatTicket(ctx context.Context, q Queryer, orgID int64, conversationID string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM chat_tickets WHERE org_id = $1 AND conversation_id = $2 AND state <> 'DONE'`,
		orgID, conversationID)
	return classify("releasing a chat's ticket", err)
}

// DeferChatTicket leaves an unfinished claim for later: state RETRY (the
// desk was unreachable) or UNKNOWN (its answer was lost), tried again at
// next.
func DeferChatTicket(ctx context.Context, q Queryer, orgID int64, conversationID, state, reason string, next time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_tickets SET state = $3, last_error = $4, next_attempt_at = $5, updated_at = now()
		WHERE org_id = $1 AND conversation_id = $2 AND state <> 'DONE'`, orgID, conversationID, state, truncateText(reason, 500), next)
	return classify("deferring a chat's ticket", err)
}

// ChatTicketsDue lists unfinished claims due for another attempt, oldest
// first: RETRY and UNKNOWN rows whose time has come, and PENDING rows
// abandoned before staleBefore (a process died mid-call).
func ChatTicketsDue(ctx context.Context, q Queryer, now, staleBefore time.Time, limit int) ([]ChatTicket, error) {
	out := []ChatTicket{}
	err := q.SelectContext(ctx, &out, `SELECT `+chatTicketColumns+` FROM chat_tickets
		WHERE (state IN ('RETRY', 'UNKNOWN') AND next_attempt_at <= $1) OR (state = 'PENDING' AND updated_at < $2)
		ORDER BY updated_at LIMIT $3`, now, staleBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("listing chat tickets due: %w", err)
	}
	return out, nil
}

// ClaimChatTranscript marks a done conversation's ticket as holding the
// whole transcript and reports whether this caller did (so only one posts
// it); UnclaimChatTranscript gives the mark back when posting failed.
func ClaimChatTranscript(ctx context.Context, q Queryer, orgID int64, conversationID string) (ChatTicket, bool, error) {
	var out ChatTicket
	err := q.GetContext(ctx, &out, `UPDATE chat_tickets SET transcript_complete = true, updated_at = now()
		WHERE org_id = $1 AND conversation_id = $2 AND state = 'DONE' AND NOT transcript_complete
		RETURNING `+chatTicketColumns, orgID, conversationID)
	if errors.Is(classify("", err), ErrNotFound) {
		return ChatTicket{}, false, nil
	}
	return out, err == nil, classify("claiming a chat's transcript", err)
}

// UnclaimChatTranscript undoes ClaimChatTranscript.
func UnclaimChatTranscript(ctx context.Context, q Queryer, orgID int64, conversationID string) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_tickets SET transcript_complete = false WHERE org_id = $1 AND conversation_id = $2`,
		orgID, conversationID)
	return classify("giving back a chat's transcript", err)
}

// RepointChatTickets moves the chats whose ticket was merged away onto the
// ticket that stays.
func RepointChatTickets(ctx context.Context, q Queryer, orgID int64, from []string, to string) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_tickets SET ticket_id = $3, updated_at = now()
		WHERE org_id = $1 AND ticket_id = ANY($2)`, orgID, pq.Array(from), to)
	return classify("moving chats onto a merged ticket", err)
}

// ChatConversationsOfTickets maps desk ticket ids to the conversation each
// was made from or attached to.
func ChatConversationsOfTickets(ctx context.Context, q Queryer, orgID int64, ticketIDs []string) (map[string]string, error) {
	var rows []struct {
		Ticket string `db:"ticket_id"`
		Conv   string `db:"conversation_id"`
	}
	err := q.SelectContext(ctx, &rows, `SELECT ticket_id, conversation_id FROM chat_tickets
		WHERE org_id = $1 AND ticket_id = ANY($2) ORDER BY created_at`, orgID, pq.Array(ticketIDs))
	if err != nil {
		return nil, fmt.Errorf("finding the chats of tickets: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		if _, ok := out[r.Ticket]; !ok {
			out[r.Ticket] = r.Conv
		}
	}
	return out, nil
}

// ChatTicketSearch finds desk tickets for the chat window (F5).
type ChatTicketSearch struct {
	OrgID        int64
	ConnectionID int64
	DeskSystem   string
	// Text matches the subject (contains), the ticket number (equal, with
	// or without "#"), the ticket's or its contact's email (equal) or the
	// contact's name (contains), case-insensitively. "" lists everything.
	Text string
	// ContactRefs, when not empty, keeps the tickets of these contacts.
	ContactRefs []string
	// Departments, when not nil, keeps tickets of these departments only
	// (empty: none).
	Departments []string
	Limit       int
}

// SearchChatTickets runs s over the mirror, newest first.
func SearchChatTickets(ctx context.Context, q Queryer, s ChatTicketSearch) ([]CustomerRecord, error) {
	if s.Departments != nil && len(s.Departments) == 0 {
		return []CustomerRecord{}, nil
	}
	args := []any{s.OrgID, s.ConnectionID, s.DeskSystem, s.Limit}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := []string{"t.org_id = $1", "t.connection_id = $2", "t.system = $3", "t.module = 'tickets'", "t.deleted_at IS NULL"}
	if len(s.ContactRefs) > 0 {
		where = append(where, "t.contact_ref = ANY("+arg(pq.Array(s.ContactRefs))+")")
	}
	if s.Departments != nil {
		where = append(where, "t.department_id = ANY("+arg(pq.Array(s.Departments))+")")
	}
	join := ""
	if text := strings.TrimSpace(s.Text); text != "" {
		join = `LEFT JOIN mirror_records c ON c.connection_id = t.connection_id AND c.system = t.system
			AND c.module = 'contacts' AND c.ext_id = t.contact_ref`
		like := arg("%" + escapeLike(strings.ToLower(text)) + "%")
		exact := arg(strings.ToLower(text))
		number := arg(strings.TrimPrefix(text, "#"))
		where = append(where, "(lower(t.title) LIKE "+like+" OR t.fields ->> 'ticketNumber' = "+number+
			" OR t.email = "+exact+" OR lower(t.fields ->> 'email') = "+exact+" OR c.email = "+exact+
			" OR lower(c.name) LIKE "+like+")")
	}
	query := `SELECT ` + prefixColumns("t.", customerColumns) + ` FROM mirror_records t ` + join +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY t.created_at DESC NULLS LAST, t.id DESC LIMIT $4`
	out := []CustomerRecord{}
	var rec CustomerRecord
	if err := queryCustomerRows(ctx, q, query, args, nil, nil, &rec, func() { out = append(out, rec) }); err != nil {
		return nil, fmt.Errorf("searching tickets for a chat: %w", err)
	}
	return out, nil
}

// escapeLike escapes LIKE's wildcards.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// truncateText keeps at most n bytes of s, cut at a character boundary
// (a cut inside a UTF-8 sequence is text Postgres refuses).
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
