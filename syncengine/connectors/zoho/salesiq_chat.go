package zoho

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The chat-to-ticket integration's calls (SPEC A5, F1, F3-F9): SalesIQ seen
// through one account (connector.ChatAccount, connector.ChatTool), and the
// Desk calls a SalesIQ link needs (connector.ChatDesk).

var (
	_ connector.ChatAccount = (*SalesIQ)(nil)
	_ connector.ChatTool    = (*SalesIQ)(nil)
	_ connector.ChatDesk    = (*Desk)(nil)
)

// ChatPortals lists the portals the account is an active operator of.
func (s *SalesIQ) ChatPortals(ctx context.Context) ([]connector.ChatPortal, error) {
	ps, err := s.Portals(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]connector.ChatPortal, 0, len(ps))
	for _, p := range ps {
		out = append(out, connector.ChatPortal{ScreenName: str(p.Fields["screenname"]), Name: str(p.Fields["name"]), ID: p.ID})
	}
	return out, nil
}

// ChatTool returns the connector of one portal: it shares this one's
// credentials and token cache, and keeps its own webhook keys.
func (s *SalesIQ) ChatTool(screenName string) connector.ChatTool {
	return &SalesIQ{c: s.c, clock: s.clock, screen: screenName, keys: map[string]siqKey{}, pems: map[string]string{}}
}

// EditVisitor is UpdateVisitor in the contract's terms.
func (s *SalesIQ) EditVisitor(ctx context.Context, conversationID string, e connector.VisitorEdit) (connector.Record, error) {
	return s.UpdateVisitor(ctx, conversationID, VisitorUpdate{Name: e.Name, Email: e.Email, Phone: e.Phone})
}

// CurrentDeskUser is the agent the credentials belong to (GET /myinfo).
func (d *Desk) CurrentDeskUser(ctx context.Context) (connector.DeskUser, error) {
	return d.deskUser(ctx, "/myinfo", "reading the desk user of the credentials")
}

// DeskUser reads one agent; a deleted agent still answers, with status
// DELETED.
func (d *Desk) DeskUser(ctx context.Context, id string) (connector.DeskUser, error) {
	return d.deskUser(ctx, joinPath("agents", id), "reading desk agent "+id)
}

func (d *Desk) deskUser(ctx context.Context, path, action string) (connector.DeskUser, error) {
	var raw map[string]any
	ok, _, err := d.c.getJSON(ctx, request{path: path, query: url.Values{"include": {"profile"}}, action: action}, &raw)
	if err != nil {
		return connector.DeskUser{}, err
	}
	if !ok || raw == nil || str(raw["id"]) == "" {
		return connector.DeskUser{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound,
			Code: "NOT_FOUND", Message: action + ": nothing returned"}
	}
	u := connector.DeskUser{ID: str(raw["id"]), Email: strings.ToLower(str(raw["emailId"])), Status: strings.ToUpper(str(raw["status"]))}
	u.Name = strings.TrimSpace(str(raw["name"]))
	if u.Name == "" {
		u.Name = strings.TrimSpace(str(raw["firstName"]) + " " + str(raw["lastName"]))
	}
	if raw["isDeleted"] == true {
		u.Status = "DELETED"
	}
	if p, ok := raw["profile"].(map[string]any); ok {
		u.Admin = strings.EqualFold(str(p["type"]), "Administrator")
	}
	return u, nil
}

// ChatTickets finds the tickets whose cf_chat_id is chatID (the desk's
// search takes a custom field by its cf_ name; see sandbox/desk).
func (d *Desk) ChatTickets(ctx context.Context, chatID string) ([]connector.Record, error) {
	if chatID == "" {
		return nil, fmt.Errorf("finding chat tickets: no chat id")
	}
	return d.Find(ctx, "tickets", connector.Query{Field: "cf_chat_id", Value: chatID})
}
