package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Chat link statuses (chat_links.status).
const (
	ChatLinkActive         = "ACTIVE"
	ChatLinkDisabled       = "DISABLED"
	ChatLinkRelinkRequired = "RELINK_REQUIRED"
	ChatLinkRemoved        = "REMOVED"
)

// Sentinels of the two partial unique indexes of chat_links; both wrap
// ErrConflict.
var (
	// ErrOrgHasChatLink: the org already has a live chat link.
	ErrOrgHasChatLink = fmt.Errorf("the org already has a chat link: %w", ErrConflict)
	// ErrChatPortalTaken: another org's live link holds the chat portal.
	ErrChatPortalTaken = fmt.Errorf("the chat portal is linked by another org: %w", ErrConflict)
)

// ChatLink is a SalesIQ portal linked to the desk portal of one of the
// org's connections (SPEC A5), with its conversion rules (F1). The sealed
// token is never read into it: ChatLinkSecret loads it.
type ChatLink struct {
	ID                   int64      `db:"id"`
	OrgID                int64      `db:"org_id"`
	ConnectionID         int64      `db:"connection_id"`
	Status               string     `db:"status"`
	RelinkReason         *string    `db:"relink_reason"`
	DataCenter           string     `db:"data_center"`
	ScreenName           string     `db:"screen_name"`
	PortalName           *string    `db:"portal_name"`
	DeskOrgID            string     `db:"desk_org_id"`
	DeskPortal           *string    `db:"desk_portal"`
	DeskUserID           string     `db:"desk_user_id"`
	DeskUserName         *string    `db:"desk_user_name"`
	AccountEmail         string     `db:"account_email"`
	LinkedBy             *int64     `db:"linked_by"`
	LinkedByName         *string    `db:"linked_by_name"`
	WebhookToken         string     `db:"webhook_token"`
	WebhookID            *string    `db:"webhook_id"`
	WebhookKey           *string    `db:"webhook_key"`
	WebhookURL           *string    `db:"webhook_url"`
	ConvertChats         string     `db:"convert_chats"`
	ConvertAt            string     `db:"convert_at"`
	TicketStatus         string     `db:"ticket_status"`
	FallbackDepartmentID *string    `db:"fallback_department_id"`
	CheckedAt            *time.Time `db:"checked_at"`
	CreatedAt            time.Time  `db:"created_at"`
	UpdatedAt            time.Time  `db:"updated_at"`
}

const chatLinkColumns = `l.id, l.org_id, l.connection_id, l.status, l.relink_reason, l.data_center, l.screen_name,
	l.portal_name, l.desk_org_id, l.desk_portal, l.desk_user_id, l.desk_user_name, l.account_email, l.linked_by,
	(SELECT u.name FROM users u WHERE u.org_id = l.org_id AND u.id = l.linked_by) AS linked_by_name,
	l.webhook_token, l.webhook_id, l.webhook_key, l.webhook_url, l.convert_chats, l.convert_at, l.ticket_status,
	l.fallback_department_id, l.checked_at, l.created_at, l.updated_at`

// NewChatLink is what InsertChatLink needs; the caller seals the token
// afterwards (SetChatLinkSecret), since its associated data names the row.
type NewChatLink struct {
	OrgID        int64
	ConnectionID int64
	DataCenter   string
	ScreenName   string
	PortalName   string
	DeskOrgID    string
	DeskPortal   string
	DeskUserID   string
	DeskUserName string
	AccountEmail string
	LinkedBy     int64
	WebhookToken string
}

func classifyChatLink(action string, err error) error {
	return classifyUnique(action, err, map[string]error{
		"chat_links_org_live": ErrOrgHasChatLink, "chat_links_portal_live": ErrChatPortalTaken})
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// InsertChatLink stores a new ACTIVE link.
func InsertChatLink(ctx context.Context, q Queryer, n NewChatLink) (ChatLink, error) {
	var id int64
	err := q.GetContext(ctx, &id, `
		INSERT INTO chat_links (org_id, connection_id, status, data_center, screen_name, portal_name, desk_org_id,
			desk_portal, desk_user_id, desk_user_name, account_email, linked_by, webhook_token)
		VALUES ($1, $2, 'ACTIVE', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING id`, n.OrgID, n.ConnectionID, n.DataCenter, n.ScreenName, nullable(n.PortalName), n.DeskOrgID,
		nullable(n.DeskPortal), n.DeskUserID, nullable(n.DeskUserName), n.AccountEmail, n.LinkedBy, n.WebhookToken)
	if err != nil {
		return ChatLink{}, classifyChatLink("inserting chat link", err)
	}
	return ChatLinkByID(ctx, q, n.OrgID, id)
}

// ChatLinkByID returns one link of the org, whatever its status.
func ChatLinkByID(ctx context.Context, q Queryer, orgID, id int64) (ChatLink, error) {
	var out ChatLink
	err := q.GetContext(ctx, &out, `SELECT `+chatLinkColumns+` FROM chat_links l WHERE l.org_id = $1 AND l.id = $2`, orgID, id)
	return out, classify("loading chat link", err)
}

// LiveChatLink returns the org's link that is not removed; ErrNotFound
// when it has none.
func LiveChatLink(ctx context.Context, q Queryer, orgID int64) (ChatLink, error) {
	var out ChatLink
	err := q.GetContext(ctx, &out, `SELECT `+chatLinkColumns+` FROM chat_links l
		WHERE l.org_id = $1 AND l.status <> 'REMOVED'`, orgID)
	return out, classify("loading the org's chat link", err)
}

// LockChatLink reads a link and locks its row until the transaction ends.
func LockChatLink(ctx context.Context, q Queryer, orgID, id int64) (ChatLink, error) {
	var out ChatLink
	err := q.GetContext(ctx, &out, `SELECT `+chatLinkColumns+` FROM chat_links l WHERE l.org_id = $1 AND l.id = $2 FOR UPDATE OF l`, orgID, id)
	return out, classify("locking chat link", err)
}

// ChatLinkForWebhook returns a link by id alone, for the webhook receiver,
// which compares the token next (see ConnectionForWebhook).
func ChatLinkForWebhook(ctx context.Context, q Queryer, id int64) (ChatLink, error) {
	var out ChatLink
	err := q.GetContext(ctx, &out, `SELECT `+chatLinkColumns+` FROM chat_links l WHERE l.id = $1`, id)
	return out, classify("loading chat link for webhook", err)
}

// ChatLinksInStatus lists every org's links in these statuses, for the
// leader's checks.
func ChatLinksInStatus(ctx context.Context, q Queryer, statuses ...string) ([]ChatLink, error) {
	out := []ChatLink{}
	err := q.SelectContext(ctx, &out, `SELECT `+chatLinkColumns+` FROM chat_links l
		WHERE l.status = ANY($1) ORDER BY l.id`, pq.Array(statuses))
	if err != nil {
		return nil, fmt.Errorf("listing chat links: %w", err)
	}
	return out, nil
}

// ChatLinkUpdate changes a link; nil fields stay. IfStatus, when set, applies
// the update only in those statuses (ErrConflict otherwise).
type ChatLinkUpdate struct {
	IfStatus     []string
	Status       *string
	RelinkReason *string // "" clears it
	ConnectionID *int64
	ScreenName   *string
	PortalName   *string
	DeskOrgID    *string
	DeskPortal   *string
	DeskUserID   *string
	DeskUserName *string
	AccountEmail *string
	LinkedBy     *int64
	// Webhook replaces the subscription (WebhookID "" clears all three).
	Webhook              *ChatWebhook
	ConvertChats         *string
	ConvertAt            *string
	TicketStatus         *string
	FallbackDepartmentID *string // "" clears it
	Checked              bool
	ClearSecret          bool
}

// ChatWebhook is a link's SalesIQ subscription.
type ChatWebhook struct {
	ID, Key, URL string
}

// UpdateChatLink applies u and returns the link as it is now.
func UpdateChatLink(ctx context.Context, q Queryer, orgID, id int64, u ChatLinkUpdate) (ChatLink, error) {
	const action = "updating chat link"
	var whID, whKey, whURL *string
	if u.Webhook != nil {
		whID, whKey, whURL = nullable(u.Webhook.ID), nullable(u.Webhook.Key), nullable(u.Webhook.URL)
	}
	var n int
	err := q.GetContext(ctx, &n, `
		UPDATE chat_links SET
			status = COALESCE($4, status),
			relink_reason = CASE WHEN $5::text IS NULL THEN relink_reason ELSE NULLIF($5, '') END,
			connection_id = COALESCE($6, connection_id),
			screen_name = COALESCE($7, screen_name),
			portal_name = COALESCE($8, portal_name),
			desk_org_id = COALESCE($9, desk_org_id),
			desk_portal = COALESCE($10, desk_portal),
			desk_user_id = COALESCE($11, desk_user_id),
			desk_user_name = COALESCE($12, desk_user_name),
			account_email = COALESCE($13, account_email),
			linked_by = COALESCE($14, linked_by),
			webhook_id = CASE WHEN $15 THEN $16 ELSE webhook_id END,
			webhook_key = CASE WHEN $15 THEN $17 ELSE webhook_key END,
			webhook_url = CASE WHEN $15 THEN $18 ELSE webhook_url END,
			convert_chats = COALESCE($19, convert_chats),
			convert_at = COALESCE($20, convert_at),
			ticket_status = COALESCE($21, ticket_status),
			fallback_department_id = CASE WHEN $22::text IS NULL THEN fallback_department_id ELSE NULLIF($22, '') END,
			checked_at = CASE WHEN $23 THEN now() ELSE checked_at END,
			sealed_token = CASE WHEN $24 THEN NULL ELSE sealed_token END,
			updated_at = CASE WHEN $23 AND $4::text IS NULL THEN updated_at ELSE now() END
		WHERE org_id = $1 AND id = $2 AND (cardinality($3::text[]) = 0 OR status = ANY($3))
		RETURNING 1`,
		orgID, id, pq.Array(nonNil(u.IfStatus)), u.Status, u.RelinkReason, u.ConnectionID, u.ScreenName, u.PortalName,
		u.DeskOrgID, u.DeskPortal, u.DeskUserID, u.DeskUserName, u.AccountEmail, u.LinkedBy,
		u.Webhook != nil, whID, whKey, whURL, u.ConvertChats, u.ConvertAt, u.TicketStatus, u.FallbackDepartmentID,
		u.Checked, u.ClearSecret)
	if errors.Is(classify(action, err), ErrNotFound) {
		cur, lerr := ChatLinkByID(ctx, q, orgID, id)
		if lerr != nil {
			return ChatLink{}, lerr
		}
		return ChatLink{}, fmt.Errorf("%s: %w (the link is %s)", action, ErrConflict, cur.Status)
	}
	if err != nil {
		return ChatLink{}, classifyChatLink(action, err)
	}
	return ChatLinkByID(ctx, q, orgID, id)
}

// SetChatLinkSecret stores the link's sealed token.
func SetChatLinkSecret(ctx context.Context, q Queryer, orgID, id int64, sealed []byte) error {
	var n int
	err := q.GetContext(ctx, &n, `UPDATE chat_links SET sealed_token = $3 WHERE org_id = $1 AND id = $2 RETURNING 1`,
		orgID, id, sealed)
	return classify("storing the chat link's secret", err)
}

// ChatLinkSecret loads the link's sealed token; ErrNotFound when it has
// none (removed).
func ChatLinkSecret(ctx context.Context, q Queryer, orgID, id int64) ([]byte, error) {
	var sealed []byte
	err := q.GetContext(ctx, &sealed, `SELECT sealed_token FROM chat_links WHERE org_id = $1 AND id = $2 AND sealed_token IS NOT NULL`,
		orgID, id)
	return sealed, classify("loading the chat link's secret", err)
}

// Chat department mapping modes (chat_department_mappings.mode).
const (
	ChatModeDeskDepartment = "DESK_DEPARTMENT"
	ChatModeNoIntegration  = "NO_INTEGRATION"
	ChatModeViewOnly       = "VIEW_ONLY"
	ChatModeChooseEachTime = "CHOOSE_EACH_TIME"
)

// ChatDepartmentMapping is where one chat department's chats go (F3).
type ChatDepartmentMapping struct {
	OrgID              int64     `db:"org_id"`
	LinkID             int64     `db:"link_id"`
	ChatDepartmentID   string    `db:"chat_department_id"`
	ChatDepartmentName string    `db:"chat_department_name"`
	Mode               string    `db:"mode"`
	DeskDepartmentID   *string   `db:"desk_department_id"`
	DeskDepartmentName *string   `db:"desk_department_name"`
	Automatic          bool      `db:"automatic"`
	UpdatedBy          *int64    `db:"updated_by"`
	UpdatedAt          time.Time `db:"updated_at"`
}

const chatMappingColumns = `org_id, link_id, chat_department_id, chat_department_name, mode, desk_department_id,
	desk_department_name, automatic, updated_by, updated_at`

// ChatDepartmentMappings lists a link's mappings by chat department name.
func ChatDepartmentMappings(ctx context.Context, q Queryer, orgID, linkID int64) ([]ChatDepartmentMapping, error) {
	out := []ChatDepartmentMapping{}
	err := q.SelectContext(ctx, &out, `SELECT `+chatMappingColumns+` FROM chat_department_mappings
		WHERE org_id = $1 AND link_id = $2 ORDER BY chat_department_name, chat_department_id`, orgID, linkID)
	if err != nil {
		return nil, fmt.Errorf("listing chat department mappings: %w", err)
	}
	return out, nil
}

// ChatDepartmentMappingOf returns one chat department's mapping.
func ChatDepartmentMappingOf(ctx context.Context, q Queryer, orgID, linkID int64, chatDepartmentID string) (ChatDepartmentMapping, error) {
	var out ChatDepartmentMapping
	err := q.GetContext(ctx, &out, `SELECT `+chatMappingColumns+` FROM chat_department_mappings
		WHERE org_id = $1 AND link_id = $2 AND chat_department_id = $3`, orgID, linkID, chatDepartmentID)
	return out, classify("loading chat department mapping", err)
}

// DeleteChatDepartmentMappings drops every department mapping of a link
// (its SalesIQ portal changed: the old portal's departments mean nothing).
func DeleteChatDepartmentMappings(ctx context.Context, q Queryer, orgID, linkID int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM chat_department_mappings WHERE org_id = $1 AND link_id = $2`, orgID, linkID)
	return classify("dropping chat department mappings", err)
}

// InsertChatDepartmentMapping adds the mapping of a chat department seen
// for the first time; one already there is left alone (false).
func InsertChatDepartmentMapping(ctx context.Context, q Queryer, m ChatDepartmentMapping) (bool, error) {
	res, err := q.ExecContext(ctx, `
		INSERT INTO chat_department_mappings (org_id, link_id, chat_department_id, chat_department_name, mode,
			desk_department_id, desk_department_name, automatic, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (link_id, chat_department_id) DO NOTHING`,
		m.OrgID, m.LinkID, m.ChatDepartmentID, m.ChatDepartmentName, m.Mode, m.DeskDepartmentID, m.DeskDepartmentName,
		m.Automatic, m.UpdatedBy)
	if err != nil {
		return false, classify("adding chat department mapping", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetChatDepartmentMapping replaces an existing mapping's mode, desk
// department and automatic flag (and the chat department's name).
func SetChatDepartmentMapping(ctx context.Context, q Queryer, m ChatDepartmentMapping) (ChatDepartmentMapping, error) {
	var out ChatDepartmentMapping
	err := q.GetContext(ctx, &out, `
		UPDATE chat_department_mappings SET chat_department_name = $4, mode = $5, desk_department_id = $6,
			desk_department_name = $7, automatic = $8, updated_by = $9, updated_at = now()
		WHERE org_id = $1 AND link_id = $2 AND chat_department_id = $3
		RETURNING `+chatMappingColumns,
		m.OrgID, m.LinkID, m.ChatDepartmentID, m.ChatDepartmentName, m.Mode, m.DeskDepartmentID, m.DeskDepartmentName,
		m.Automatic, m.UpdatedBy)
	return out, classify("setting chat department mapping", err)
}

// RenameChatDepartment follows a chat department's new name.
func RenameChatDepartment(ctx context.Context, q Queryer, orgID, linkID int64, chatDepartmentID, name string) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_department_mappings SET chat_department_name = $4, updated_at = now()
		WHERE org_id = $1 AND link_id = $2 AND chat_department_id = $3 AND chat_department_name <> $4`,
		orgID, linkID, chatDepartmentID, name)
	return classify("renaming chat department", err)
}

// ChatConversation is a conversation as the chat tool last showed it.
type ChatConversation struct {
	OrgID          int64     `db:"org_id"`
	LinkID         int64     `db:"link_id"`
	ConversationID string    `db:"conversation_id"`
	DepartmentID   *string   `db:"department_id"`
	VisitorID      *string   `db:"visitor_id"`
	VisitorName    *string   `db:"visitor_name"`
	VisitorEmail   *string   `db:"visitor_email"`
	VisitorPhone   *string   `db:"visitor_phone"`
	State          *string   `db:"state"`
	Question       *string   `db:"question"`
	AutoOutcome    *string   `db:"auto_outcome"`
	SeenAt         time.Time `db:"seen_at"`
}

const chatConversationColumns = `org_id, link_id, conversation_id, department_id, visitor_id, visitor_name,
	visitor_email, visitor_phone, state, question, auto_outcome, seen_at`

// UpsertChatConversation records a conversation as seen now; the automatic
// rule's outcome is kept.
func UpsertChatConversation(ctx context.Context, q Queryer, c ChatConversation) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO chat_conversations (org_id, link_id, conversation_id, department_id, visitor_id, visitor_name,
			visitor_email, visitor_phone, state, question)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (org_id, conversation_id) DO UPDATE SET link_id = EXCLUDED.link_id,
			department_id = EXCLUDED.department_id, visitor_id = EXCLUDED.visitor_id,
			visitor_name = EXCLUDED.visitor_name, visitor_email = EXCLUDED.visitor_email,
			visitor_phone = EXCLUDED.visitor_phone, state = EXCLUDED.state,
			question = COALESCE(EXCLUDED.question, chat_conversations.question), seen_at = now()`,
		c.OrgID, c.LinkID, c.ConversationID, c.DepartmentID, c.VisitorID, c.VisitorName, c.VisitorEmail,
		c.VisitorPhone, c.State, c.Question)
	return classify("recording chat conversation", err)
}

// UpdateChatVisitor writes a visitor's new details into the conversations
// of that visitor.
func UpdateChatVisitor(ctx context.Context, q Queryer, orgID int64, visitorID string, name, email, phone *string) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_conversations SET
			visitor_name = COALESCE($3, visitor_name), visitor_email = COALESCE($4, visitor_email),
			visitor_phone = COALESCE($5, visitor_phone), seen_at = now()
		WHERE org_id = $1 AND visitor_id = $2`, orgID, visitorID, name, email, phone)
	return classify("updating chat visitor", err)
}

// SetChatAutoOutcome records why the automatic rule made no ticket ("" =
// it did, or it has not decided).
func SetChatAutoOutcome(ctx context.Context, q Queryer, orgID int64, conversationID, outcome string) error {
	_, err := q.ExecContext(ctx, `UPDATE chat_conversations SET auto_outcome = NULLIF($3, '')
		WHERE org_id = $1 AND conversation_id = $2`, orgID, conversationID, outcome)
	return classify("recording the automatic conversion's outcome", err)
}

// ChatConversationByID returns a recorded conversation.
func ChatConversationByID(ctx context.Context, q Queryer, orgID int64, conversationID string) (ChatConversation, error) {
	var out ChatConversation
	err := q.GetContext(ctx, &out, `SELECT `+chatConversationColumns+` FROM chat_conversations
		WHERE org_id = $1 AND conversation_id = $2`, orgID, conversationID)
	return out, classify("loading chat conversation", err)
}
