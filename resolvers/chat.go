package resolvers

import (
	"context"
	"errors"
	"strings"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

// Chat (schema/chat.graphqls): conversions between the chat engine's values
// and the API's, and the chat widget's subscription.

// Input limits of the chat fields.
const (
	maxChatSearchRunes = 100
	maxChatList        = 50
	maxDeskIDLength    = 40
)

// chatInput turns the engine's input errors into InputErrors at the
// argument's path.
func chatInput(err error, prefix string) error {
	return connectionInput(err, prefix, nil)
}

func chatLinkModel(l store.ChatLink) *model.ChatLink {
	out := &model.ChatLink{ID: globalID("ChatLink", l.ID), Status: model.ChatLinkStatus(l.Status), RelinkReason: l.RelinkReason,
		DataCenter: model.DataCenter(strings.ToUpper(l.DataCenter)), SalesIQPortal: &model.ChatPortal{ScreenName: l.ScreenName, Name: l.PortalName},
		ConnectionID: globalID("Connection", l.ConnectionID), DeskOrgID: l.DeskOrgID, DeskPortal: l.DeskPortal,
		LinkedUser: &model.ChatLinkedUser{DeskUserID: l.DeskUserID, Name: l.DeskUserName, Email: l.AccountEmail},
		LinkedBy:   l.LinkedByName,
		Rules: &model.ChatConversionRules{Chats: model.ChatConversionKind(l.ConvertChats), Timing: model.ChatConversionTiming(l.ConvertAt),
			TicketStatus: model.ChatTicketStatus(l.TicketStatus), FallbackDepartmentID: l.FallbackDepartmentID},
		WebhookSubscribed: l.WebhookID != nil && l.Status == store.ChatLinkActive, LastCheckedAt: l.CheckedAt,
		LinkedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
	return out
}

func chatMappingModel(m store.ChatDepartmentMapping) *model.ChatDepartmentMapping {
	return &model.ChatDepartmentMapping{ChatDepartmentID: m.ChatDepartmentID, ChatDepartmentName: m.ChatDepartmentName,
		Mode: model.ChatDepartmentMode(m.Mode), DeskDepartmentID: m.DeskDepartmentID, DeskDepartmentName: m.DeskDepartmentName,
		Automatic: m.Automatic, UpdatedAt: m.UpdatedAt}
}

func chatVisitorModel(v syncengine.ChatVisitor) *model.ChatVisitor {
	return &model.ChatVisitor{ID: nonEmpty(v.ID), Name: nonEmpty(v.Name), Email: nonEmpty(v.Email), Phone: nonEmpty(v.Phone)}
}

func chatMessageModel(m syncengine.ChatMessage) *model.ChatMessage {
	return &model.ChatMessage{ID: nonEmpty(m.ID), SenderName: nonEmpty(m.SenderName), SenderType: nonEmpty(m.SenderType),
		Text: nonEmpty(m.Text), SentAt: m.At}
}

func chatConversationModel(view *syncengine.ChatView) *model.ChatConversation {
	out := &model.ChatConversation{ConversationID: view.ConversationID, State: nonEmpty(view.State), Question: nonEmpty(view.Question),
		Attended: view.Attended, Missed: view.Missed, Ended: view.Ended, Visitor: chatVisitorModel(view.Visitor),
		Department: chatMappingModel(view.Mapping), AutoConversionNote: nonEmpty(view.AutoOutcome),
		CanChangeTickets: view.CanChange, CannotChangeReason: nonEmpty(view.Blocker), View: *view}
	if view.Mapping.UpdatedAt.IsZero() {
		out.Department.UpdatedAt = view.Link.UpdatedAt
	}
	if view.TicketOrigin != "" {
		o := model.ChatTicketOrigin(view.TicketOrigin)
		out.TicketOrigin = &o
	}
	return out
}

// chatViewer is the caller of a chat field.
func (r *Resolver) chatViewer(ctx context.Context) (auth.Viewer, error) {
	return cacheOf(ctx).viewerOf(ctx)
}

// chatTicket is a mirrored ticket of the link's connection; nil when the
// mirror does not hold it (deleted meanwhile).
func (r *Resolver) chatTicket(ctx context.Context, v auth.Viewer, conn store.Connection, id string) (*model.Ticket, error) {
	t, err := r.ticketAnswer(ctx, v, conn, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// scopeOf is the scope argument's engine value.
func scopeOf(s *model.ChatTicketScope) string {
	if s == nil {
		return syncengine.ChatScopeAll
	}
	return string(*s)
}

// checkDeskID refuses an empty or overlong desk id argument.
func checkDeskID(argument, id string) error {
	if strings.TrimSpace(id) == "" || len(id) > maxDeskIDLength {
		return badInput(argument, "must be a desk id (1 to %d characters)", maxDeskIDLength)
	}
	return nil
}

// visitorEvent is a ticket event with what a visitor's follower matches it
// on.
type visitorEvent struct {
	raw   store.Event
	event *model.TicketEvent
}

// visitorTicketEvent converts a stream event for visitorTickets; a pure
// function shared by every follower.
func visitorTicketEvent(e store.Event) visitorEvent {
	return visitorEvent{raw: e, event: ticketEventModel(e)}
}

// followVisitor streams the ticket events of a visitor: the org's ticket
// events (filtered like ticketEvents, for the caller), kept when they are
// about the visitor's desk contacts or the chat's ticket. A new ticket that
// matches nothing is adopted when it is the chat's or carries the visitor's
// email (a conversion may have just made the contact); what a new ticket is
// is read once per event for every follower. A matched ticket's contact
// joins the set.
func (r *Resolver) followVisitor(ctx context.Context, v auth.Viewer, f *syncengine.VisitorFollow, after int64) (<-chan *model.TicketEvent, error) {
	src, err := eventbus.Subscribe(ctx, r.Bus, ticketEventFilter(v, nil), after, visitorTicketEvent)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.TicketEvent)
	go func() {
		defer close(out)
		for ev := range src {
			refs := ev.raw.EventRefs
			if !f.Matches(refs) && (ev.raw.Type != syncengine.TicketCreated || !f.Adopt(refs, r.ChatService.CreatedTicketOf(ctx, ev.raw))) {
				continue
			}
			if refs.Contact != "" {
				f.Contacts[refs.Contact] = true
			}
			select {
			case out <- ev.event:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// chatMerge is the shared body of the two merges (F6).
func (r *Resolver) chatMerge(ctx context.Context, in model.ChatTicketMergeInput,
	merge func(ctx context.Context, v auth.Viewer, conversationID, ticketID, key string) (string, error)) (*model.Ticket, error) {
	v, err := r.chatViewer(ctx)
	if err != nil {
		return nil, err
	}
	key, err := checkKey("input.idempotencyKey", &in.IdempotencyKey, true)
	if err != nil {
		return nil, err
	}
	if err := checkDeskID("input.ticketDeskId", in.TicketDeskID); err != nil {
		return nil, err
	}
	id, err := merge(ctx, v, in.ConversationID, strings.TrimSpace(in.TicketDeskID), key)
	if err != nil {
		return nil, chatInput(err, "input.")
	}
	return r.orgTicketAnswer(ctx, v, id)
}
