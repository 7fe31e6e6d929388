package resolvers

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Input limits of the ticket mutations.
const (
	maxSubjectRunes = 255
	maxBodyRunes    = 32_000
	maxKeyLength    = 100
	maxConversation = 50
)

// checkText refuses an empty (when required) or too long text argument.
func checkText(argument, s string, required bool, maxRunes int) error {
	if required && strings.TrimSpace(s) == "" {
		return badInput(argument, "must not be empty")
	}
	if utf8.RuneCountInString(s) > maxRunes {
		return badInput(argument, "is longer than %d characters", maxRunes)
	}
	return nil
}

// checkKey refuses an idempotency key that is empty (when required) or
// longer than the limit.
func checkKey(argument string, key *string, required bool) (string, error) {
	k := strings.TrimSpace(deref(key))
	if k == "" && required {
		return "", badInput(argument, "must not be empty")
	}
	if len(k) > maxKeyLength {
		return "", badInput(argument, "is longer than %d characters", maxKeyLength)
	}
	return k, nil
}

// ticketAction is what every ticket mutation starts with: the caller, the
// org's connection, and the idempotency key checked (input.idempotencyKey;
// required unless said otherwise).
func (r *Resolver) ticketAction(ctx context.Context, key *string, required bool) (auth.Viewer, store.Connection, string, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return auth.Viewer{}, store.Connection{}, "", err
	}
	k, err := checkKey("input.idempotencyKey", key, required)
	return v, conn, k, err
}

// ticketAnswer is the mirrored ticket a mutation just recorded.
func (r *Resolver) ticketAnswer(ctx context.Context, v auth.Viewer, conn store.Connection, id string) (*model.Ticket, error) {
	rows, err := store.CustomerRecordsByExtIDs(ctx, r.DB, v.OrgID, conn.ID, deskSystem, "tickets", []string{id})
	if err != nil {
		return nil, err
	}
	row, ok := rows[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return ticketModel(row), nil
}

// orgTicketAnswer is ticketAnswer on the org's connection: a ticket a chat
// action wrote.
func (r *Resolver) orgTicketAnswer(ctx context.Context, v auth.Viewer, id string) (*model.Ticket, error) {
	conn, err := r.orgConnection(ctx, v)
	if err != nil {
		return nil, err
	}
	return r.ticketAnswer(ctx, v, conn, id)
}

// ticketOfEvent is the ticket an event or signal names, read under the
// viewer's profile like any customer record; nil when it is not mirrored.
func (r *Resolver) ticketOfEvent(ctx context.Context, deskID string) (*model.Ticket, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := r.record(ctx, v, conn, deskSystem, "tickets", deskID)
	if err != nil || rec == nil {
		return nil, err
	}
	return ticketModel(*rec), nil
}

// threadModel and commentModel convert the desk's thread and comment
// objects (as the connector or a webhook gave them).
func threadModel(f map[string]any) *model.TicketThread {
	if f == nil {
		return nil
	}
	return &model.TicketThread{DeskID: jsonText(f["id"]), Direction: nonEmpty(jsonText(f["direction"])),
		Channel: nonEmpty(jsonText(f["channel"])), FromEmailAddress: nonEmpty(jsonText(f["fromEmailAddress"])),
		To: nonEmpty(jsonText(f["to"])), Cc: nonEmpty(jsonText(f["cc"])), Summary: nonEmpty(jsonText(f["summary"])),
		IsForward: f["isForward"] == true || f["isForward"] == "true", CreatedAt: parseInstant(f["createdTime"])}
}

func commentModel(f map[string]any) *model.TicketComment {
	if f == nil {
		return nil
	}
	c := &model.TicketComment{DeskID: jsonText(f["id"]), Content: nonEmpty(jsonText(f["content"])),
		IsPublic: f["isPublic"] == true || f["isPublic"] == "true", CreatedAt: parseInstant(f["commentedTime"])}
	if who, ok := f["commenter"].(map[string]any); ok {
		c.CommenterName = nonEmpty(strings.TrimSpace(jsonText(who["firstName"]) + " " + jsonText(who["lastName"])))
		if c.CommenterName == nil {
			c.CommenterName = nonEmpty(jsonText(who["name"]))
		}
	}
	return c
}

// jsonText is a JSON value's text: strings as they are, numbers in their
// JSON form.
func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// ticketEventTypes maps the stream's TICKET_* types to the typed enum.
var ticketEventTypes = map[string]model.TicketEventType{
	syncengine.TicketCreated: model.TicketEventTypeCreated, syncengine.TicketUpdated: model.TicketEventTypeUpdated,
	syncengine.TicketStatusChanged: model.TicketEventTypeStatusChanged, syncengine.TicketReply: model.TicketEventTypeReply,
	syncengine.TicketComment: model.TicketEventTypeComment, syncengine.TicketMerged: model.TicketEventTypeMerged,
	syncengine.TicketDeleted: model.TicketEventTypeDeleted,
}

// ticketEventModel converts a TICKET_* event of the stream.
func ticketEventModel(e store.Event) *model.TicketEvent {
	var p syncengine.TicketEventPayload
	_ = json.Unmarshal(e.Payload, &p)
	ev := &model.TicketEvent{ID: strconv.FormatInt(e.ID, 10), Type: ticketEventTypes[e.Type], Source: model.ChangeSource(p.Source),
		OccurredAt: e.OccurredAt, TicketDeskID: e.Ticket, ContactDeskID: nonEmpty(e.Contact), AccountDeskID: nonEmpty(e.Account),
		DepartmentID: nonEmpty(e.Department), Status: nonEmpty(p.Status), PreviousStatus: nonEmpty(p.PreviousStatus),
		Thread: threadModel(p.Thread), Comment: commentModel(p.Comment), MergedDeskIds: p.MergedIDs}
	if !ev.Source.IsValid() {
		ev.Source = model.ChangeSourceDesk
	}
	return ev
}

// ticketEventFilter is the stream filter of a ticketEvents subscription.
func ticketEventFilter(v auth.Viewer, f *model.TicketEventFilter) store.EventFilter {
	filter := viewerEvents(v)
	var types []model.TicketEventType
	if f != nil {
		filter.Refs = store.EventRefs{Ticket: deref(f.TicketDeskID), Contact: deref(f.ContactDeskID),
			Account: deref(f.AccountDeskID), Department: deref(f.DepartmentID), User: v.UserID}
		types = f.Types
	}
	for stream, typed := range ticketEventTypes {
		if len(types) == 0 || slices.Contains(types, typed) {
			filter.Types = append(filter.Types, stream)
		}
	}
	return filter
}

// parseInstant reads the desk's ISO-8601 times; nil when absent or not one.
func parseInstant(v any) *time.Time {
	t, err := time.Parse(time.RFC3339, jsonText(v))
	if err != nil {
		return nil
	}
	return &t
}

// conversationLimit checks a threads/comments page size.
func conversationLimit(first *int) (int, error) {
	return pageSize(first, 20, maxConversation)
}

// conversation reads a ticket's threads or comments from the desk.
func (r *Resolver) conversation(ctx context.Context, obj *model.Ticket, first *int, activity connector.Activity) ([]connector.Record, error) {
	limit, err := conversationLimit(first)
	if err != nil {
		return nil, err
	}
	_, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	return r.TicketService.Conversation(ctx, conn, obj.DeskID, activity, limit)
}
