package syncengine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
)

// Signal kinds (SPEC E4; schema SignalKind).
const (
	SignalNewTicket  = "NEW_TICKET"
	SignalNewComment = "NEW_COMMENT"
	SignalNewReply   = "NEW_REPLY"
	SignalOverdue    = "OVERDUE_TICKET"
	SignalEscalated  = "ESCALATED_TICKET"
	SignalNewRating  = "NEW_RATING"
	SignalMention    = "MENTION"
)

// SignalKinds lists every kind, in the order settings show them.
var SignalKinds = []string{SignalNewTicket, SignalNewReply, SignalNewComment, SignalMention, SignalOverdue, SignalEscalated, SignalNewRating}

// EventSignal is the stream's event type of a signal; only its user sees
// it.
const EventSignal = "SIGNAL"

// ticketFacts is what a signal says about its ticket and whom it concerns.
type ticketFacts struct {
	id, number, subject, channel string
	contact, account, department string
}

func (f ticketFacts) label() string {
	label := "ticket"
	if f.number != "" {
		label += " #" + f.number
	}
	if f.subject != "" {
		label += " " + truncateRunes(f.subject, 80)
	}
	return label
}

// signalsOf derives the signals a ticket event causes: a new ticket, a
// customer's reply (a rating when the message is the desk's feedback
// thread), a comment and its mentions, an escalation.
func signalsOf(typ string, p TicketEventPayload, t ticketFacts) []struct{ kind, title string } {
	type signal = struct{ kind, title string }
	var out []signal
	switch typ {
	case TicketCreated:
		out = append(out, signal{SignalNewTicket, "New " + t.label()})
	case TicketReply:
		if !strings.EqualFold(str(p.Thread["direction"]), "in") {
			break // the desk's own replies are not news to the desk's people
		}
		if strings.EqualFold(str(p.Thread["channel"]), "FEEDBACK") {
			out = append(out, signal{SignalNewRating, "New rating on " + t.label()})
		} else {
			out = append(out, signal{SignalNewReply, "New reply on " + t.label()})
		}
	case TicketComment:
		out = append(out, signal{SignalNewComment, "New comment on " + t.label()})
		if len(mentionedEmails(p.Comment)) > 0 {
			out = append(out, signal{SignalMention, "You were mentioned on " + t.label()})
		}
	}
	if p.Escalated {
		out = append(out, signal{SignalEscalated, "Escalated: " + t.label()})
	}
	return out
}

// mentionedEmails are the lower-case emails of the agents a comment
// mentions (Desk's "mention" list).
func mentionedEmails(comment map[string]any) []string {
	list, _ := comment["mention"].([]any)
	var out []string
	for _, m := range list {
		if mm, ok := m.(map[string]any); ok {
			if e := strings.ToLower(str(mm["email"])); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// signalTicketEvent records the signals a ticket event causes, each for the
// users it reaches (signal settings, scope, channel), with a SIGNAL event
// per user, in the ticket event's transaction. cause makes a redelivered
// change signal no one twice.
func signalTicketEvent(ctx context.Context, tx *sqlx.Tx, conn store.Connection, typ string, p TicketEventPayload, t ticketFacts, cause string) error {
	signals := signalsOf(typ, p, t)
	if len(signals) == 0 {
		return nil
	}
	owners, err := store.TicketOwnerEmails(ctx, tx, conn.OrgID, conn.ID, conn.CRMSystem, t.contact, t.account)
	if err != nil {
		return err
	}
	for _, s := range signals {
		a := store.SignalAudience{OrgID: conn.OrgID, Kind: s.kind, Channel: t.channel, Owners: owners, Except: p.ActorUserID}
		if s.kind == SignalMention {
			a.Named = mentionedEmails(p.Comment)
		}
		if err := recordSignals(ctx, tx, conn.OrgID, a, t, s.title, cause); err != nil {
			return err
		}
	}
	return nil
}

// recordSignals records one signal for an audience and a SIGNAL event for
// each user it reached.
func recordSignals(ctx context.Context, tx *sqlx.Tx, orgID int64, a store.SignalAudience, t ticketFacts, title, cause string) error {
	users, err := store.SignalRecipients(ctx, tx, a)
	if err != nil {
		return err
	}
	made, err := store.InsertSignals(ctx, tx, store.NewSignal{OrgID: orgID, Users: users, Kind: a.Kind, TicketRef: t.id,
		Channel: t.channel, Title: title, Cause: cause})
	if err != nil {
		return err
	}
	for _, s := range made {
		subject := "Signal:" + strconv.FormatInt(s.ID, 10)
		if _, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: orgID, Type: EventSignal, Permission: string(auth.PermReadOrg),
			SubjectID: &subject, Refs: store.EventRefs{Ticket: t.id, User: s.UserID},
			Payload: map[string]any{"signalId": s.ID, "kind": s.Kind, "title": s.Title, "ticketId": t.id}}); err != nil {
			return err
		}
	}
	return nil
}

// overdueWindow: a due date that passed longer ago than this when
// deskbridge first sees it is old news, not a signal.
const overdueWindow = 24 * time.Hour

// NoteOverdueTickets marks the tickets whose due date just passed, once per
// ticket and due date, and signals them (SPEC E4). The engine runs it on
// the cluster's leader only, so a lapse is signalled once per cluster; the
// marks make it once even across leaders.
func NoteOverdueTickets(ctx context.Context, db *sqlx.DB, now time.Time) (int, error) {
	n := 0
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		lapsed, err := store.MarkOverdueTickets(ctx, tx, now, overdueWindow, 500)
		if err != nil {
			return err
		}
		conns := map[int64]store.Connection{}
		for _, o := range lapsed {
			conn, ok := conns[o.ConnectionID]
			if !ok {
				if conn, err = store.ConnectionByID(ctx, tx, o.OrgID, o.ConnectionID); err != nil {
					return err
				}
				conns[o.ConnectionID] = conn
			}
			row, ok, err := ticketRow(ctx, tx, conn, o.TicketRef)
			if err != nil {
				return err
			}
			if !ok {
				continue // deleted since it was marked, in this very statement's snapshot
			}
			t := factsOfRow(row)
			owners, err := store.TicketOwnerEmails(ctx, tx, conn.OrgID, conn.ID, conn.CRMSystem, t.contact, t.account)
			if err != nil {
				return err
			}
			a := store.SignalAudience{OrgID: conn.OrgID, Kind: SignalOverdue, Channel: t.channel, Owners: owners}
			cause := fmt.Sprintf("overdue:%s:%d", o.TicketRef, o.DueAt.Unix())
			if err := recordSignals(ctx, tx, conn.OrgID, a, t, "Overdue: "+t.label(), cause); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// factsOfRow reads a mirrored ticket's facts.
func factsOfRow(row store.CustomerRecord) ticketFacts {
	f := map[string]any{}
	_ = json.Unmarshal(row.Fields, &f)
	return ticketFacts{id: row.ExtID, number: str(f["ticketNumber"]), subject: deref(row.Title), channel: str(f["channel"]),
		contact: deref(row.ContactRef), account: deref(row.AccountRef), department: deref(row.DepartmentID)}
}
