package syncengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// ChatService links the org's chat tool (SalesIQ) to the desk portal of its
// connection and turns chats into tickets (SPEC A5, F1, F3-F9; docs/CHAT.md).
// The link is made with one Zoho account that is a desk administrator of
// the connected portal and an administrator of the SalesIQ portal (the
// same email on both products); its refresh token is sealed like a
// connection's. Tickets go through the connection's desk and are recorded
// like every ticket action (recordTicketEvent), so they reach the ticket
// stream and the customer picture at once.
type ChatService struct {
	DB  *sqlx.DB
	Box *crypt.Box
	// Vendor opens the link's own connectors (SalesIQ, and the desk as the
	// linked account); nil refuses every vendor call.
	Vendor connector.Vendor
	// Connectors opens the connection's desk, which takes the tickets.
	Connectors Connectors
	// PublicURL is the gateway's address as SalesIQ reaches it ("" leaves
	// the webhook to a later check).
	PublicURL func() string
	Log       *slog.Logger

	mu      sync.Mutex
	tools   map[int64]liveChatTool
	created map[int64]*createdEntry // event id -> the new ticket's chat and email
}

type liveChatTool struct {
	updatedAt time.Time
	tool      connector.ChatTool
}

// Chat conversion rules (chat_links.convert_chats, convert_at, ticket_status).
const (
	ChatConvertAll      = "ALL"
	ChatConvertAttended = "ATTENDED"
	ChatConvertMissed   = "MISSED"
	ChatConvertNone     = "NONE"
	ChatConvertAtPickup = "PICKUP"
	ChatConvertAtEnd    = "CHAT_END"
	ChatTicketOpen      = "OPEN"
	ChatTicketClosed    = "CLOSED"
)

func (s *ChatService) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// precondition is a refused chat action, as the API shows it.
func precondition(format string, args ...any) error {
	return &TicketError{Code: CodeFailedPrecondition, Message: fmt.Sprintf(format, args...)}
}

// chatLinkAD is the associated data the link's token is sealed with.
func chatLinkAD(id int64) []byte {
	return []byte("chat-link:" + strconv.FormatInt(id, 10) + ":salesiq_refresh_token")
}

// ChatWebhookPath is where SalesIQ posts a link's events; the link's token
// travels in the query.
func ChatWebhookPath(linkID int64) string {
	return "/webhooks/salesiq/" + strconv.FormatInt(linkID, 10)
}

// LinkRequest links SalesIQ (SPEC A5): the credentials of one Zoho account
// with SalesIQ and Desk scopes, and the SalesIQ portal.
type LinkRequest struct {
	Credentials ConnectionCredentials
	ScreenName  string
}

// chatAccount is a linking account the vendors accepted.
type chatAccount struct {
	token    string
	user     connector.DeskUser
	portal   connector.ChatPortal
	tool     connector.ChatTool
	operator connector.Record
}

// open builds a connector through the vendor.
func (s *ChatService) open(a connector.Account) (connector.Connector, error) {
	return openThrough(s.Vendor, a)
}

// refreshToken is the token of creds: the one given, or the one an
// authorization code is exchanged for.
func (s *ChatService) refreshToken(ctx context.Context, dc string, creds ConnectionCredentials) (string, error) {
	if err := checkCredentialShape("credentials", creds); err != nil {
		return "", err
	}
	if t := strings.TrimSpace(creds.RefreshToken); t != "" {
		return t, nil
	}
	if s.Vendor == nil {
		return "", errNoVendor
	}
	t, err := s.Vendor.ExchangeCode(ctx, connector.SalesIQ, dc, strings.TrimSpace(creds.AuthorizationCode), strings.TrimSpace(creds.RedirectURI))
	if err != nil {
		return "", refusedCredentials("exchanging the authorization code", err)
	}
	return t, nil
}

// refusedCredentials is an input error on the credentials when Zoho refused
// them; other errors pass on.
func refusedCredentials(what string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Code == "OAUTH_ORG_MISMATCH" || ce.Code == "FORBIDDEN":
			return &ConnectionInputError{Field: "credentials", Reason: "the account is not a user of the connected desk portal"}
		case ce.Class == connector.Auth:
			reason := "the credentials were refused by Zoho"
			if ce.Code != "" {
				reason += " (" + ce.Code + ")"
			}
			return &ConnectionInputError{Field: "credentials", Reason: reason}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// checkAccount checks a linking account against both products: it must be
// an active administrator of the connection's desk portal, an active
// operator of the SalesIQ portal, and that operator (the same email) must
// be a SalesIQ administrator.
func (s *ChatService) checkAccount(ctx context.Context, conn store.Connection, creds ConnectionCredentials, screen string) (chatAccount, error) {
	screen = strings.TrimSpace(screen)
	if screen == "" {
		return chatAccount{}, &ConnectionInputError{Field: "screenName", Reason: "must not be empty"}
	}
	if len(screen) > 100 {
		return chatAccount{}, &ConnectionInputError{Field: "screenName", Reason: "is longer than 100 characters"}
	}
	token, err := s.refreshToken(ctx, conn.DeskDC, creds)
	if err != nil {
		return chatAccount{}, err
	}
	acct := chatAccount{token: token}
	if acct.user, err = s.currentDeskUser(ctx, conn.DeskDC, token, conn.DeskOrgID); err != nil {
		return chatAccount{}, refusedCredentials("reading the account's desk user", err)
	}
	switch {
	case acct.user.Status != "ACTIVE":
		return chatAccount{}, precondition("the account's desk user %s is %s; link with an active desk administrator", acct.user.Email, strings.ToLower(acct.user.Status))
	case !acct.user.Admin:
		return chatAccount{}, precondition("the account's desk user %s is not an administrator of the desk portal; only a desk administrator can link SalesIQ", acct.user.Email)
	case acct.user.Email == "":
		return chatAccount{}, precondition("the account's desk user has no email address")
	}
	ca, portals, err := s.salesIQPortals(ctx, conn.DeskDC, token)
	if err != nil {
		return chatAccount{}, err
	}
	i := slices.IndexFunc(portals, func(p connector.ChatPortal) bool { return strings.EqualFold(p.ScreenName, screen) })
	if i < 0 {
		return chatAccount{}, &ConnectionInputError{Field: "screenName", Reason: "the account is not an active operator of this SalesIQ portal"}
	}
	acct.portal = portals[i]
	acct.tool = ca.ChatTool(acct.portal.ScreenName)
	ops, err := acct.tool.Operators(ctx, "active")
	if err != nil {
		return chatAccount{}, refusedCredentials("listing the SalesIQ portal's operators", err)
	}
	j := slices.IndexFunc(ops, func(o connector.Record) bool { return strings.EqualFold(str(o.Fields["email_id"]), acct.user.Email) })
	if j < 0 {
		return chatAccount{}, precondition("SalesIQ and the desk must be linked by one account with the same email: no active SalesIQ operator has the desk user's email %s", acct.user.Email)
	}
	acct.operator = ops[j]
	if !strings.EqualFold(str(acct.operator.Fields["role"]), "Administrator") {
		return chatAccount{}, precondition("the SalesIQ operator %s is not an administrator of the SalesIQ portal", acct.user.Email)
	}
	return acct, nil
}

// linkConnection is the org's connection a link can serve: the current
// one, not removed or inactive.
func (s *ChatService) linkConnection(ctx context.Context, v auth.Viewer) (store.Connection, error) {
	conn, err := store.CurrentConnection(ctx, s.DB, v.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connection{}, precondition("connect a desk portal first (connectCrm): SalesIQ links to the org's desk portal")
	}
	if err != nil {
		return store.Connection{}, err
	}
	if conn.Status != store.ConnectionActive && conn.Status != store.ConnectionPaused {
		return store.Connection{}, precondition("the org's connection is %s; reactivate it before linking SalesIQ", conn.Status)
	}
	return conn, nil
}

func mayManageChat(v auth.Viewer) error {
	if !v.Can(auth.PermManageConnections) {
		return fmt.Errorf("managing the SalesIQ link: %w", auth.ErrForbidden)
	}
	return nil
}

// Link links SalesIQ to the org's desk portal (A5): the account is checked
// on both products, the link is stored ACTIVE with its token sealed, every
// chat department is mapped (same-name desk departments automatically, F3),
// and SalesIQ is subscribed to the gateway's webhook.
func (s *ChatService) Link(ctx context.Context, v auth.Viewer, in LinkRequest) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	if s.Box == nil {
		return store.ChatLink{}, errors.New("linking SalesIQ: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	conn, err := s.linkConnection(ctx, v)
	if err != nil {
		return store.ChatLink{}, err
	}
	if _, err := store.LiveChatLink(ctx, s.DB, v.OrgID); err == nil {
		return store.ChatLink{}, chatConflict(store.ErrOrgHasChatLink)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.ChatLink{}, err
	}
	acct, err := s.checkAccount(ctx, conn, in.Credentials, in.ScreenName)
	if err != nil {
		return store.ChatLink{}, err
	}
	chatDepts, deskDepts, err := s.departmentsOf(ctx, conn, acct.tool)
	if err != nil {
		return store.ChatLink{}, err
	}
	webhookToken, err := newConnectionWebhookToken()
	if err != nil {
		return store.ChatLink{}, err
	}
	var link store.ChatLink
	err = store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		l, err := store.InsertChatLink(ctx, tx, store.NewChatLink{OrgID: v.OrgID, ConnectionID: conn.ID, DataCenter: conn.DeskDC,
			ScreenName: acct.portal.ScreenName, PortalName: acct.portal.Name, DeskOrgID: conn.DeskOrgID, DeskPortal: deref(conn.DeskPortal),
			DeskUserID: acct.user.ID, DeskUserName: acct.user.Name, AccountEmail: acct.user.Email, LinkedBy: v.UserID, WebhookToken: webhookToken})
		if err != nil {
			return err
		}
		sealed, err := s.Box.Seal([]byte(acct.token), chatLinkAD(l.ID))
		if err != nil {
			return err
		}
		if err := store.SetChatLinkSecret(ctx, tx, v.OrgID, l.ID, sealed); err != nil {
			return err
		}
		if _, err := mapNewDepartments(ctx, tx, l, chatDepts, deskDepts); err != nil {
			return err
		}
		link = l
		return insertChatLinkEvent(ctx, tx, l, "")
	})
	if err != nil {
		return store.ChatLink{}, chatConflict(fmt.Errorf("linking SalesIQ: %w", err))
	}
	s.log().InfoContext(ctx, "SalesIQ linked", "org_id", v.OrgID, "chat_link", link.ID, "screen", link.ScreenName,
		"desk_org", link.DeskOrgID, "has_secret", true)
	if l, err := s.ensureWebhook(ctx, link); err != nil {
		s.log().WarnContext(ctx, "subscribing to SalesIQ's webhooks; the leader tries again", "chat_link", link.ID, "err", err)
	} else {
		link = l
	}
	return link, nil
}

// ChatEventLinkChanged tells admins the SalesIQ link was made, re-linked,
// moved to another desk portal, disabled, enabled, removed, or found to
// need a re-link (its reason in the payload).
const ChatEventLinkChanged = "CHAT_LINK_CHANGED"

type chatLinkEventPayload struct {
	LinkID         string  `json:"linkId"`
	Status         string  `json:"status"`
	PreviousStatus string  `json:"previousStatus,omitempty"`
	RelinkReason   *string `json:"relinkReason,omitempty"`
	ScreenName     string  `json:"screenName"`
	DeskOrgID      string  `json:"deskOrgId"`
}

// insertChatLinkEvent writes CHAT_LINK_CHANGED for link, whose status was
// previous ("" for a new link), in the transaction that changed it.
func insertChatLinkEvent(ctx context.Context, tx *sqlx.Tx, link store.ChatLink, previous string) error {
	subject := "ChatLink:" + strconv.FormatInt(link.ID, 10)
	_, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: link.OrgID, Type: ChatEventLinkChanged,
		Permission: string(auth.PermManageConnections), SubjectID: &subject,
		Refs: store.EventRefs{Connection: link.ConnectionID},
		Payload: chatLinkEventPayload{LinkID: GlobalID("ChatLink", link.ID), Status: link.Status, PreviousStatus: previous,
			RelinkReason: link.RelinkReason, ScreenName: link.ScreenName, DeskOrgID: link.DeskOrgID}})
	return err
}

// updateChatLinkNoting changes a link and writes CHAT_LINK_CHANGED in one
// transaction.
func (s *ChatService) updateChatLinkNoting(ctx context.Context, link store.ChatLink, u store.ChatLinkUpdate) (store.ChatLink, error) {
	var out store.ChatLink
	err := store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		if out, err = store.UpdateChatLink(ctx, tx, link.OrgID, link.ID, u); err != nil {
			return err
		}
		return insertChatLinkEvent(ctx, tx, out, link.Status)
	})
	return out, err
}

// chatConflict gives the link's unique conflicts a message.
func chatConflict(err error) error {
	switch {
	case errors.Is(err, store.ErrOrgHasChatLink):
		return &ConnectionConflictError{Reason: "the org already has a SalesIQ link; re-link or unlink it", Err: err}
	case errors.Is(err, store.ErrChatPortalTaken):
		return &ConnectionConflictError{Reason: "this SalesIQ portal is linked by another org", Err: err}
	}
	return err
}

// Portals lists the SalesIQ portals an account is an active operator of,
// in the data center of the org's desk, for Link.
func (s *ChatService) Portals(ctx context.Context, v auth.Viewer, creds ConnectionCredentials) ([]connector.ChatPortal, error) {
	if err := mayManageChat(v); err != nil {
		return nil, err
	}
	conn, err := s.linkConnection(ctx, v)
	if err != nil {
		return nil, err
	}
	token, err := s.refreshToken(ctx, conn.DeskDC, creds)
	if err != nil {
		return nil, err
	}
	_, ps, err := s.salesIQPortals(ctx, conn.DeskDC, token)
	return ps, err
}

// salesIQPortals opens SalesIQ as an account (interactive) and lists the
// portals it is an active operator of.
func (s *ChatService) salesIQPortals(ctx context.Context, dc, token string) (connector.ChatAccount, []connector.ChatPortal, error) {
	c, err := s.open(connector.Account{System: connector.SalesIQ, DC: dc, RefreshToken: token, Interactive: true})
	if err != nil {
		return nil, nil, err
	}
	ca, ok := c.(connector.ChatAccount)
	if !ok {
		return nil, nil, errors.New("the SalesIQ connector lists no portals")
	}
	ps, err := ca.ChatPortals(ctx)
	if err != nil {
		return nil, nil, refusedCredentials("listing the account's SalesIQ portals", err)
	}
	return ca, ps, nil
}

// currentDeskUser opens a desk portal as an account (interactive) and
// reads who the account's desk user there is. The vendor's error is
// returned as is, for the caller to classify.
func (s *ChatService) currentDeskUser(ctx context.Context, dc, token, deskOrgID string) (connector.DeskUser, error) {
	c, err := s.open(connector.Account{System: connector.Desk, DC: dc, RefreshToken: token, DeskOrgID: deskOrgID, Interactive: true})
	if err != nil {
		return connector.DeskUser{}, err
	}
	desk, ok := c.(connector.ChatDesk)
	if !ok {
		return connector.DeskUser{}, errors.New("the desk connector cannot tell who its user is")
	}
	return desk.CurrentDeskUser(ctx)
}

// LinkOf returns the org's live link; ErrNotFound when there is none.
func (s *ChatService) LinkOf(ctx context.Context, v auth.Viewer) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	return store.LiveChatLink(ctx, s.DB, v.OrgID)
}

// Relink links the org's link again, with the same or another account (A5:
// the linked desk user was deleted or deactivated) and optionally another
// SalesIQ portal; it also moves the link onto the org's current
// connection. Mappings stay unless the SalesIQ portal changes.
func (s *ChatService) Relink(ctx context.Context, v auth.Viewer, in LinkRequest) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	if s.Box == nil {
		return store.ChatLink{}, errors.New("re-linking SalesIQ: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return store.ChatLink{}, err
	}
	if link.Status == store.ChatLinkDisabled {
		return store.ChatLink{}, precondition("the SalesIQ link is disabled; enable it first")
	}
	conn, err := s.linkConnection(ctx, v)
	if err != nil {
		return store.ChatLink{}, err
	}
	screen := in.ScreenName
	if strings.TrimSpace(screen) == "" {
		screen = link.ScreenName
	}
	acct, err := s.checkAccount(ctx, conn, in.Credentials, screen)
	if err != nil {
		return store.ChatLink{}, err
	}
	chatDepts, deskDepts, err := s.departmentsOf(ctx, conn, acct.tool)
	if err != nil {
		return store.ChatLink{}, err
	}
	oldTool, _ := s.tool(ctx, link)
	portalChanged := !strings.EqualFold(link.ScreenName, acct.portal.ScreenName)
	deskChanged := link.DeskOrgID != conn.DeskOrgID
	status, reason := store.ChatLinkActive, ""
	userID := v.UserID
	var out store.ChatLink
	err = store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		l, err := store.UpdateChatLink(ctx, tx, v.OrgID, link.ID, store.ChatLinkUpdate{
			IfStatus: []string{store.ChatLinkActive, store.ChatLinkRelinkRequired}, Status: &status, RelinkReason: &reason,
			ConnectionID: &conn.ID, ScreenName: &acct.portal.ScreenName, PortalName: &acct.portal.Name,
			DeskOrgID: &conn.DeskOrgID, DeskPortal: ptr(deref(conn.DeskPortal)), DeskUserID: &acct.user.ID, DeskUserName: &acct.user.Name,
			AccountEmail: &acct.user.Email, LinkedBy: &userID, Checked: true,
		})
		if err != nil {
			return err
		}
		sealed, err := s.Box.Seal([]byte(acct.token), chatLinkAD(l.ID))
		if err != nil {
			return err
		}
		if err := store.SetChatLinkSecret(ctx, tx, v.OrgID, l.ID, sealed); err != nil {
			return err
		}
		if portalChanged {
			if err := store.DeleteChatDepartmentMappings(ctx, tx, v.OrgID, l.ID); err != nil {
				return err
			}
		} else if deskChanged {
			if err := remapDeskDepartments(ctx, tx, l, deskDepts); err != nil {
				return err
			}
		}
		if _, err := mapNewDepartments(ctx, tx, l, chatDepts, deskDepts); err != nil {
			return err
		}
		out = l
		return insertChatLinkEvent(ctx, tx, l, link.Status)
	})
	if err != nil {
		return store.ChatLink{}, chatConflict(fmt.Errorf("re-linking SalesIQ: %w", err))
	}
	if portalChanged && oldTool != nil && link.WebhookID != nil {
		_ = oldTool.Unwatch(ctx, *link.WebhookID) // the old portal's subscription; a stale one only costs refused posts
	}
	if portalChanged {
		if out, err = store.UpdateChatLink(ctx, s.DB, v.OrgID, out.ID, store.ChatLinkUpdate{Webhook: &store.ChatWebhook{}}); err != nil {
			return store.ChatLink{}, err
		}
	}
	s.log().InfoContext(ctx, "SalesIQ re-linked", "org_id", v.OrgID, "chat_link", out.ID, "screen", out.ScreenName)
	if l, err := s.ensureWebhook(ctx, out); err != nil {
		s.log().WarnContext(ctx, "subscribing to SalesIQ's webhooks; the leader tries again", "chat_link", out.ID, "err", err)
	} else {
		out = l
	}
	return out, nil
}

// ChatDeskPortal is a desk portal the linked account belongs to.
type ChatDeskPortal struct {
	OrgID, Name string
	Current     bool // the link serves it
	Connected   bool // the org's connection serves it, so the link can move there
}

// DeskPortals lists the desk portals the linked account belongs to (A5:
// the portal can only change to one of them).
func (s *ChatService) DeskPortals(ctx context.Context, v auth.Viewer) ([]ChatDeskPortal, error) {
	if err := mayManageChat(v); err != nil {
		return nil, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return nil, err
	}
	orgs, err := s.accountPortals(ctx, link)
	if err != nil {
		return nil, err
	}
	conn, cerr := store.CurrentConnection(ctx, s.DB, v.OrgID)
	out := make([]ChatDeskPortal, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, ChatDeskPortal{OrgID: o.ID, Name: o.Name, Current: o.ID == link.DeskOrgID,
			Connected: cerr == nil && conn.Status != store.ConnectionRemoved && conn.DeskOrgID == o.ID})
	}
	return out, nil
}

// accountPortals lists the desk portals the link's account reaches.
func (s *ChatService) accountPortals(ctx context.Context, link store.ChatLink) ([]connector.Org, error) {
	token, err := s.linkToken(ctx, link)
	if err != nil {
		return nil, err
	}
	c, err := s.open(connector.Account{System: connector.Desk, DC: link.DataCenter, RefreshToken: token, Interactive: true})
	if err != nil {
		return nil, err
	}
	lister, ok := c.(connector.OrgLister)
	if !ok {
		return nil, errors.New("the desk connector lists no portals")
	}
	orgs, err := lister.Orgs(ctx)
	if err != nil {
		return nil, chatVendorError("listing the linked account's desk portals", err)
	}
	return orgs, nil
}

// ChangeDeskPortal moves the link to another desk portal (A5): one the
// linked account belongs to, and the one the org's connection serves
// (deskbridge works the tickets of its connected portal). The account's
// desk user there must be an active administrator; desk-department
// mappings are made again by name.
func (s *ChatService) ChangeDeskPortal(ctx context.Context, v auth.Viewer, deskOrgID string) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	deskOrgID = strings.TrimSpace(deskOrgID)
	if deskOrgID == "" || len(deskOrgID) > 40 {
		return store.ChatLink{}, &ConnectionInputError{Field: "deskOrgId", Reason: "must be a desk portal's organization id"}
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return store.ChatLink{}, err
	}
	if link.Status == store.ChatLinkDisabled {
		return store.ChatLink{}, precondition("the SalesIQ link is disabled; enable it first")
	}
	orgs, err := s.accountPortals(ctx, link)
	if err != nil {
		return store.ChatLink{}, err
	}
	i := slices.IndexFunc(orgs, func(o connector.Org) bool { return o.ID == deskOrgID })
	if i < 0 {
		return store.ChatLink{}, &ConnectionInputError{Field: "deskOrgId", Reason: "the linked account does not belong to this desk portal"}
	}
	conn, err := s.linkConnection(ctx, v)
	if err != nil {
		return store.ChatLink{}, err
	}
	if conn.DeskOrgID != deskOrgID {
		return store.ChatLink{}, precondition("the org's connection serves desk portal %s; switch the connection to this portal first (switchDeskPortal)", conn.DeskOrgID)
	}
	token, err := s.linkToken(ctx, link)
	if err != nil {
		return store.ChatLink{}, err
	}
	user, err := s.currentDeskUser(ctx, link.DataCenter, token, deskOrgID)
	if err != nil {
		return store.ChatLink{}, chatVendorError("reading the linked account's desk user", err)
	}
	if user.Status != "ACTIVE" || !user.Admin || !strings.EqualFold(user.Email, link.AccountEmail) {
		return store.ChatLink{}, precondition("the linked account is not an active administrator of desk portal %s", deskOrgID)
	}
	tool, err := s.tool(ctx, link)
	if err != nil {
		return store.ChatLink{}, err
	}
	chatDepts, deskDepts, err := s.departmentsOf(ctx, conn, tool)
	if err != nil {
		return store.ChatLink{}, err
	}
	status, reason, portal := store.ChatLinkActive, "", firstNonEmptyStr(orgs[i].Name, deref(conn.DeskPortal))
	var out store.ChatLink
	err = store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		l, err := store.UpdateChatLink(ctx, tx, v.OrgID, link.ID, store.ChatLinkUpdate{
			IfStatus: []string{store.ChatLinkActive, store.ChatLinkRelinkRequired}, Status: &status, RelinkReason: &reason,
			ConnectionID: &conn.ID, DeskOrgID: &deskOrgID, DeskPortal: &portal, DeskUserID: &user.ID, DeskUserName: &user.Name, Checked: true})
		if err != nil {
			return err
		}
		if err := remapDeskDepartments(ctx, tx, l, deskDepts); err != nil {
			return err
		}
		if _, err := mapNewDepartments(ctx, tx, l, chatDepts, deskDepts); err != nil {
			return err
		}
		out = l
		return insertChatLinkEvent(ctx, tx, l, link.Status)
	})
	if err != nil {
		return store.ChatLink{}, chatConflict(fmt.Errorf("changing the SalesIQ link's desk portal: %w", err))
	}
	s.log().InfoContext(ctx, "SalesIQ link moved to another desk portal", "org_id", v.OrgID, "chat_link", out.ID, "desk_org", deskOrgID)
	return out, nil
}

// ChatLinkAction is a status change of the link.
type ChatLinkAction string

// The status changes of SetLinkStatus.
const (
	ChatLinkDisable ChatLinkAction = "DISABLE" // stop everything; data stays
	ChatLinkEnable  ChatLinkAction = "ENABLE"  // start again (after a check of the linked user)
	ChatLinkUnlink  ChatLinkAction = "UNLINK"  // remove: the secret is deleted
)

// SetLinkStatus disables, enables or removes the link. Disabling and
// removing delete SalesIQ's webhook, so nothing more arrives; enabling
// checks the linked desk user first (RELINK_REQUIRED when it is gone) and
// subscribes again.
func (s *ChatService) SetLinkStatus(ctx context.Context, v auth.Viewer, action ChatLinkAction) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return store.ChatLink{}, err
	}
	var u store.ChatLinkUpdate
	switch action {
	case ChatLinkDisable:
		if link.Status == store.ChatLinkDisabled {
			return store.ChatLink{}, &ConnectionConflictError{Reason: "the SalesIQ link is already disabled", Err: store.ErrConflict}
		}
		st := store.ChatLinkDisabled
		u = store.ChatLinkUpdate{IfStatus: []string{store.ChatLinkActive, store.ChatLinkRelinkRequired}, Status: &st, Webhook: &store.ChatWebhook{}}
	case ChatLinkEnable:
		if link.Status != store.ChatLinkDisabled {
			return store.ChatLink{}, &ConnectionConflictError{Reason: "the SalesIQ link is not disabled (it is " + link.Status + ")", Err: store.ErrConflict}
		}
		st := store.ChatLinkActive
		u = store.ChatLinkUpdate{IfStatus: []string{store.ChatLinkDisabled}, Status: &st}
	case ChatLinkUnlink:
		st := store.ChatLinkRemoved
		u = store.ChatLinkUpdate{Status: &st, Webhook: &store.ChatWebhook{}, ClearSecret: true,
			IfStatus: []string{store.ChatLinkActive, store.ChatLinkDisabled, store.ChatLinkRelinkRequired}}
	default:
		return store.ChatLink{}, fmt.Errorf("changing the SalesIQ link: unknown action %q", action)
	}
	if action != ChatLinkEnable && link.WebhookID != nil {
		if tool, err := s.tool(ctx, link); err == nil {
			if err := tool.Unwatch(ctx, *link.WebhookID); err != nil {
				s.log().WarnContext(ctx, "deleting SalesIQ's webhook; its deliveries are refused with 410", "chat_link", link.ID, "err", err)
			}
		}
	}
	out, err := s.updateChatLinkNoting(ctx, link, u)
	if err != nil {
		return store.ChatLink{}, chatConflict(fmt.Errorf("changing the SalesIQ link: %w", err))
	}
	s.forget(link.ID)
	s.log().InfoContext(ctx, "SalesIQ link status changed", "org_id", v.OrgID, "chat_link", out.ID, "status", out.Status)
	if action == ChatLinkEnable {
		if out, err = s.CheckLink(ctx, out); err != nil {
			s.log().WarnContext(ctx, "checking the SalesIQ link; the leader tries again", "chat_link", out.ID, "err", err)
		}
		if out.Status == store.ChatLinkActive {
			if l, err := s.ensureWebhook(ctx, out); err != nil {
				s.log().WarnContext(ctx, "subscribing to SalesIQ's webhooks; the leader tries again", "chat_link", out.ID, "err", err)
			} else {
				out = l
			}
		}
	}
	return out, nil
}

// CheckLink asks for a re-link (RELINK_REQUIRED, with the reason) when the
// linked desk user was deleted or deactivated, the SalesIQ operator was
// deactivated, the credentials were revoked, or the connection no longer
// serves the linked desk portal. A vendor that cannot be reached changes
// nothing.
func (s *ChatService) CheckLink(ctx context.Context, link store.ChatLink) (store.ChatLink, error) {
	if link.Status != store.ChatLinkActive {
		return link, nil
	}
	reason, err := s.relinkReason(ctx, link)
	if err != nil {
		return link, err
	}
	u := store.ChatLinkUpdate{IfStatus: []string{store.ChatLinkActive}, Checked: true}
	if reason != "" {
		st := store.ChatLinkRelinkRequired
		u.Status, u.RelinkReason = &st, &reason
	}
	var out store.ChatLink
	if reason != "" {
		out, err = s.updateChatLinkNoting(ctx, link, u)
	} else {
		out, err = store.UpdateChatLink(ctx, s.DB, link.OrgID, link.ID, u)
	}
	if errors.Is(err, store.ErrConflict) {
		return store.ChatLinkByID(ctx, s.DB, link.OrgID, link.ID) // changed meanwhile
	}
	if err == nil && reason != "" {
		s.log().WarnContext(ctx, "the SalesIQ link needs a re-link", "org_id", link.OrgID, "chat_link", link.ID, "reason", reason)
	}
	return out, err
}

func (s *ChatService) relinkReason(ctx context.Context, link store.ChatLink) (string, error) {
	conn, err := store.ConnectionByID(ctx, s.DB, link.OrgID, link.ConnectionID)
	if err != nil {
		return "", err
	}
	switch {
	case conn.Status == store.ConnectionRemoved:
		return "the desk connection was removed; re-link with the org's current connection", nil
	case conn.DeskOrgID != link.DeskOrgID:
		return fmt.Sprintf("the connection now serves desk portal %s; change the link's desk portal", conn.DeskOrgID), nil
	}
	deskC, _, err := s.Connectors.For(ctx, conn)
	if err != nil {
		return "", err
	}
	desk, ok := deskC.(connector.ChatDesk)
	if !ok {
		return "", errors.New("the desk connector cannot read its users")
	}
	name := firstNonEmptyStr(deref(link.DeskUserName), link.AccountEmail)
	user, err := desk.DeskUser(ctx, link.DeskUserID)
	var ce *connector.Error
	switch {
	case errors.As(err, &ce) && ce.Reason == connector.ReasonNotFound:
		return fmt.Sprintf("the linked desk user %s was deleted; re-link with another desk administrator", name), nil
	case err != nil:
		return "", err
	case user.Status == "DELETED":
		return fmt.Sprintf("the linked desk user %s was deleted; re-link with another desk administrator", name), nil
	case user.Status != "ACTIVE":
		return fmt.Sprintf("the linked desk user %s was deactivated; re-link with another desk administrator", name), nil
	}
	tool, err := s.tool(ctx, link)
	if err != nil {
		return "", err
	}
	ops, err := tool.Operators(ctx, "")
	if connector.ClassOf(err) == connector.Auth {
		return "the SalesIQ credentials were refused; re-link", nil
	}
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(ops, func(o connector.Record) bool { return strings.EqualFold(str(o.Fields["email_id"]), link.AccountEmail) })
	if i < 0 || !strings.EqualFold(str(ops[i].Fields["status"]), "active") {
		return fmt.Sprintf("the SalesIQ operator %s was deactivated; re-link with another administrator", link.AccountEmail), nil
	}
	return "", nil
}

// linkToken opens the link's sealed token.
func (s *ChatService) linkToken(ctx context.Context, link store.ChatLink) (string, error) {
	if s.Box == nil {
		return "", errors.New("cannot open the SalesIQ link's secret: DESKBRIDGE_SECRET_KEY is not set")
	}
	sealed, err := store.ChatLinkSecret(ctx, s.DB, link.OrgID, link.ID)
	if err != nil {
		return "", fmt.Errorf("loading the secret of chat link %d: %w", link.ID, err)
	}
	plain, err := s.Box.Open(sealed, chatLinkAD(link.ID))
	if err != nil {
		return "", fmt.Errorf("opening the secret of chat link %d: %w", link.ID, err)
	}
	return string(plain), nil
}

// tool returns the link's SalesIQ portal connector, kept while the link row
// is unchanged (its token source caches access tokens), with the webhook's
// key trusted.
func (s *ChatService) tool(ctx context.Context, link store.ChatLink) (connector.ChatTool, error) {
	s.mu.Lock()
	if lt, ok := s.tools[link.ID]; ok && lt.updatedAt.Equal(link.UpdatedAt) {
		s.mu.Unlock()
		return lt.tool, nil
	}
	s.mu.Unlock()
	token, err := s.linkToken(ctx, link)
	if err != nil {
		return nil, err
	}
	c, err := s.open(connector.Account{System: connector.SalesIQ, DC: link.DataCenter, RefreshToken: token})
	if err != nil {
		return nil, err
	}
	ca, ok := c.(connector.ChatAccount)
	if !ok {
		return nil, errors.New("the SalesIQ connector has no portals")
	}
	tool := ca.ChatTool(link.ScreenName)
	if link.WebhookID != nil && link.WebhookKey != nil {
		if err := tool.TrustWebhookKey(*link.WebhookID, *link.WebhookKey, link.WebhookToken); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tools == nil {
		s.tools = map[int64]liveChatTool{}
	}
	s.tools[link.ID] = liveChatTool{updatedAt: link.UpdatedAt, tool: tool}
	return tool, nil
}

func (s *ChatService) forget(linkID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tools, linkID)
}

// ensureWebhook subscribes SalesIQ's conversation and visitor events to the
// gateway, once per URL; the subscription's key is stored so a restarted
// gateway still verifies deliveries. The link's row is locked meanwhile, so
// the leader's pass and a request (or two replicas) never subscribe twice.
func (s *ChatService) ensureWebhook(ctx context.Context, link store.ChatLink) (store.ChatLink, error) {
	if link.Status != store.ChatLinkActive || s.PublicURL == nil || s.PublicURL() == "" {
		return link, nil
	}
	target := strings.TrimRight(s.PublicURL(), "/") + ChatWebhookPath(link.ID)
	if link.WebhookID != nil && link.WebhookKey != nil && deref(link.WebhookURL) == target {
		return link, nil
	}
	out := link
	err := store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		cur, err := store.LockChatLink(ctx, tx, link.OrgID, link.ID)
		if err != nil {
			return err
		}
		if cur.Status != store.ChatLinkActive || (cur.WebhookID != nil && cur.WebhookKey != nil && deref(cur.WebhookURL) == target) {
			out = cur
			return nil
		}
		tool, err := s.tool(ctx, cur)
		if err != nil {
			return err
		}
		if cur.WebhookID != nil {
			_ = tool.Unwatch(ctx, *cur.WebhookID) // replaced below
		}
		sub, err := tool.Watch(ctx, connector.WatchRequest{URL: target + "?token=" + cur.WebhookToken,
			Modules: []connector.Module{"conversations", "visitors"}, Token: cur.WebhookToken})
		if err != nil {
			return fmt.Errorf("subscribing to SalesIQ's webhooks: %w", err)
		}
		key, _ := tool.WebhookKey(sub.ID)
		out, err = store.UpdateChatLink(ctx, tx, cur.OrgID, cur.ID, store.ChatLinkUpdate{
			Webhook: &store.ChatWebhook{ID: sub.ID, Key: key, URL: target}})
		if err != nil {
			_ = tool.Unwatch(context.WithoutCancel(ctx), sub.ID)
		}
		return err
	})
	if err != nil {
		return link, err
	}
	return out, nil
}

// ConversionRules are the automatic conversion's settings (F1).
type ConversionRules struct {
	Chats        string  // ALL, ATTENDED, MISSED, NONE
	At           string  // PICKUP, CHAT_END
	TicketStatus string  // OPEN, CLOSED
	Fallback     *string // desk department for CHOOSE_EACH_TIME chats; "" clears
}

// UpdateRules sets the automatic conversion's rules.
func (s *ChatService) UpdateRules(ctx context.Context, v auth.Viewer, r ConversionRules) (store.ChatLink, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return store.ChatLink{}, err
	}
	if r.Fallback != nil && *r.Fallback != "" {
		conn, err := store.ConnectionByID(ctx, s.DB, v.OrgID, link.ConnectionID)
		if err != nil {
			return store.ChatLink{}, err
		}
		if _, err := s.deskDepartment(ctx, conn, *r.Fallback); err != nil {
			return store.ChatLink{}, inputField(err, "fallbackDepartmentId")
		}
	}
	u := store.ChatLinkUpdate{FallbackDepartmentID: r.Fallback}
	if r.Chats != "" {
		u.ConvertChats = &r.Chats
	}
	if r.At != "" {
		u.ConvertAt = &r.At
	}
	if r.TicketStatus != "" {
		u.TicketStatus = &r.TicketStatus
	}
	return store.UpdateChatLink(ctx, s.DB, v.OrgID, link.ID, u)
}

// inputField renames an input error's field.
func inputField(err error, field string) error {
	var ie *ConnectionInputError
	if errors.As(err, &ie) {
		return &ConnectionInputError{Field: field, Reason: ie.Reason}
	}
	return err
}

// chatVendorError is what a failed vendor call of a chat action shows: the
// desk's and SalesIQ's refusals and outages in TicketError terms.
func chatVendorError(what string, err error) error {
	var ce *connector.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case ce.Class == connector.Transient || ce.Class == connector.RateLimited:
		return &TicketError{Code: CodeUpstreamUnavailable, Message: what + ": the vendor could not be reached; try again", Err: err}
	case ce.Class == connector.Auth:
		return &TicketError{Code: CodeUpstreamUnavailable, Message: what + ": the vendor refused the link's credentials; an admin must re-link", Err: err}
	case ce.Reason == connector.ReasonNotFound:
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	msg := what + ": the vendor refused the request"
	if ce.Message != "" {
		msg += ": " + ce.Message
	}
	return &TicketError{Code: CodeUpstreamRejected, Message: msg, Err: err}
}

func ptr[T any](v T) *T { return &v }
