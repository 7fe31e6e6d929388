package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Connection statuses (docs/SYNC.md, Objects). PENDING_APPROVAL, ACTIVE and
// PAUSED are "live": they hold the CRM org and the org's one connection.
const (
	ConnectionPendingApproval = "PENDING_APPROVAL"
	ConnectionActive          = "ACTIVE"
	ConnectionPaused          = "PAUSED"
	ConnectionInactive        = "INACTIVE"
	ConnectionRemoved         = "REMOVED"
)

// ErrCRMOrgTaken means the CRM org is already joined to a portal by another
// live connection (A3). It wraps ErrConflict, so generic handling still
// works, while the API can say precisely what is wrong.
var ErrCRMOrgTaken = fmt.Errorf("crm org is already joined to a portal: %w", ErrConflict)

// ErrOrgHasConnection means the deskbridge org already has a live CRM
// connection; it must be removed or deactivated first. It wraps ErrConflict.
var ErrOrgHasConnection = fmt.Errorf("org already has a live crm connection: %w", ErrConflict)

// Connection joins one desk portal to one CRM or Bigin org inside one
// deskbridge org. It deliberately has no secret fields: secrets live in
// connection_secrets and are read only through GetSecret, so no query that
// loads a connection can leak one.
type Connection struct {
	ID               int64      `db:"id"`
	OrgID            int64      `db:"org_id"`
	CRMSystem        string     `db:"crm_system"`
	Status           string     `db:"status"`
	AuthMethod       string     `db:"auth_method"`
	CRMDC            string     `db:"crm_dc"`
	CRMOrgID         *string    `db:"crm_org_id"`
	CRMOrgName       *string    `db:"crm_org_name"`
	DeskDC           string     `db:"desk_dc"`
	DeskOrgID        string     `db:"desk_org_id"`
	DeskPortal       *string    `db:"desk_portal"`
	Language         *string    `db:"language"`
	TimeZone         *string    `db:"time_zone"`
	ApproverEmail    *string    `db:"approver_email"`
	RequestedAt      *time.Time `db:"requested_at"`
	RequestSentCount int        `db:"request_sent_count"`
	AuthorizedBy     *int64     `db:"authorized_by"`
	WebhookToken     string     `db:"webhook_token"`
	// RequestExpiresAt is when the pending access request's link stops
	// working (A2); nil when no request is pending.
	RequestExpiresAt *time.Time `db:"request_expires_at"`
	// ServiceKeyEmail is the desk admin whose service key is used (A3).
	ServiceKeyEmail *string   `db:"service_key_email"`
	CreatedAt       time.Time `db:"created_at"`
	UpdatedAt       time.Time `db:"updated_at"`
}

// NewConnection is what InsertConnection needs. The caller generates
// WebhookToken (random, per connection) because it also has to hand it to
// the vendors when it subscribes.
type NewConnection struct {
	OrgID         int64
	CRMSystem     string
	Status        string
	AuthMethod    string
	CRMDC         string
	CRMOrgID      *string
	CRMOrgName    *string
	DeskDC        string
	DeskOrgID     string
	DeskPortal    *string
	Language      *string
	TimeZone      *string
	ApproverEmail *string
	RequestedAt   *time.Time
	AuthorizedBy  *int64
	WebhookToken  string
	// RequestTokenHash and RequestExpiresAt: the approval link of an access
	// request (A2), stored as a SHA-256 only.
	RequestTokenHash []byte
	RequestExpiresAt *time.Time
	ServiceKeyEmail  *string
}

const connectionColumns = `id, org_id, crm_system, status, auth_method, crm_dc, crm_org_id, crm_org_name,
	desk_dc, desk_org_id, desk_portal, language, time_zone, approver_email, requested_at,
	request_sent_count, authorized_by, webhook_token, created_at, updated_at, request_expires_at,
	service_key_email`

// classifyConnection is classify plus the two partial unique indexes of
// connections, which deserve their own sentinels: "this CRM org is taken"
// and "this org already has a connection" are different answers to a user.
func classifyConnection(action string, err error) error {
	return classifyUnique(action, err, map[string]error{
		"connections_crm_org_live": ErrCRMOrgTaken, "connections_org_live": ErrOrgHasConnection})
}

// InsertConnection stores a new connection. A second live connection for
// the same CRM org fails with ErrCRMOrgTaken, a second live connection in
// the org with ErrOrgHasConnection; both wrap ErrConflict.
func InsertConnection(ctx context.Context, q Queryer, c NewConnection) (Connection, error) {
	var out Connection
	err := q.GetContext(ctx, &out, `
		INSERT INTO connections (org_id, crm_system, status, auth_method, crm_dc, crm_org_id, crm_org_name,
			desk_dc, desk_org_id, desk_portal, language, time_zone, approver_email, requested_at,
			authorized_by, webhook_token, request_token_hash, request_expires_at, service_key_email,
			request_sent_count)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			CASE WHEN $17::bytea IS NULL THEN 0 ELSE 1 END)
		RETURNING `+connectionColumns,
		c.OrgID, c.CRMSystem, c.Status, c.AuthMethod, c.CRMDC, c.CRMOrgID, c.CRMOrgName,
		c.DeskDC, c.DeskOrgID, c.DeskPortal, c.Language, c.TimeZone, c.ApproverEmail, c.RequestedAt,
		c.AuthorizedBy, c.WebhookToken, c.RequestTokenHash, c.RequestExpiresAt, c.ServiceKeyEmail)
	return out, classifyConnection("inserting connection", err)
}

// ConnectionByID returns one connection of the org, whatever its status.
func ConnectionByID(ctx context.Context, q Queryer, orgID, id int64) (Connection, error) {
	var out Connection
	err := q.GetContext(ctx, &out, `
		SELECT `+connectionColumns+` FROM connections WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading connection", err)
}

// ConnectionForWebhook returns a connection by id alone. Inbound webhooks
// carry no org: the gateway finds the connection by the id in the URL and
// then compares the token, answering 404 either way so a caller cannot tell
// which was wrong. Nothing else should look connections up without an org.
func ConnectionForWebhook(ctx context.Context, q Queryer, id int64) (Connection, error) {
	var out Connection
	err := q.GetContext(ctx, &out, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`, id)
	return out, classify("loading connection for webhook", err)
}

// ListConnections returns the org's connections, oldest first. Removed ones
// are history, shown only on request.
func ListConnections(ctx context.Context, q Queryer, orgID int64, includeRemoved bool) ([]Connection, error) {
	out := []Connection{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+connectionColumns+` FROM connections
		WHERE org_id = $1 AND ($2 OR status <> 'REMOVED')
		ORDER BY id`, orgID, includeRemoved)
	if err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	return out, nil
}

// ConnectionsInStatus returns the connections of every org in one of the
// statuses, by id. It is for the leader's schedulers (polling runs for
// ACTIVE and PAUSED connections, since pausing stops workers, not capture),
// never for answering a client.
func ConnectionsInStatus(ctx context.Context, q Queryer, statuses ...string) ([]Connection, error) {
	out := []Connection{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+connectionColumns+` FROM connections WHERE status = ANY($1) ORDER BY id`,
		pq.Array(nonNil(statuses)))
	if err != nil {
		return nil, fmt.Errorf("listing connections by status: %w", err)
	}
	return out, nil
}

// ActiveConnections returns the ACTIVE connections of every org: the ones
// whose queues workers drain.
func ActiveConnections(ctx context.Context, q Queryer) ([]Connection, error) {
	return ConnectionsInStatus(ctx, q, ConnectionActive)
}

// SetConnectionStatus moves the connection to status to, but only from one
// of the statuses in from, in one statement, so two admins (or an admin and
// the engine) racing on the same connection cannot both win. It returns
// ErrConflict, naming the current status, when the connection is in another
// status; ErrNotFound when it is not in the org. Reactivating a connection
// whose CRM org was taken meanwhile fails with ErrCRMOrgTaken.
func SetConnectionStatus(ctx context.Context, q Queryer, orgID, id int64, from []string, to string) (Connection, error) {
	action := "setting connection status to " + to
	if len(from) == 0 {
		return Connection{}, fmt.Errorf("%s: no status to move from", action)
	}
	var out Connection
	err := q.GetContext(ctx, &out, `
		UPDATE connections SET status = $4, updated_at = now()
		WHERE org_id = $1 AND id = $2 AND status = ANY($3)
		RETURNING `+connectionColumns, orgID, id, pq.Array(from), to)
	if err == nil {
		return out, nil
	}
	if err = classifyConnection(action, err); !errors.Is(err, ErrNotFound) {
		return Connection{}, err
	}
	return Connection{}, connectionStatusConflict(ctx, q, action, orgID, id)
}

// connectionStatusConflict explains why a conditional update matched no
// row: the connection is missing (ErrNotFound) or in another status
// (ErrConflict).
func connectionStatusConflict(ctx context.Context, q Queryer, action string, orgID, id int64) error {
	var status string
	err := q.GetContext(ctx, &status, `SELECT status FROM connections WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return classify(action, err)
	}
	return fmt.Errorf("%s: %w (connection is %s)", action, ErrConflict, status)
}

// ConnectionUpdate changes the fields that move after creation: the CRM org
// picked or approved (A1, A2), the approval request (A2), the portal and its
// locale (A3 portal switch), the auth method and the webhook token (rotation).
// A nil field is left as it is; fields cannot be cleared, because no flow
// needs that. Status moves only through SetConnectionStatus.
type ConnectionUpdate struct {
	// IfStatus, when not empty, applies the update only while the connection
	// is in one of these statuses (ErrConflict otherwise): an approval must
	// not land on a connection that was removed meanwhile.
	IfStatus []string

	AuthMethod    *string
	CRMOrgID      *string
	CRMOrgName    *string
	DeskDC        *string
	DeskOrgID     *string
	DeskPortal    *string
	Language      *string
	TimeZone      *string
	ApproverEmail *string
	RequestedAt   *time.Time
	// RequestSent counts one more approval request sent (A2 re-send).
	RequestSent  bool
	AuthorizedBy *int64
	WebhookToken *string
	// RequestTokenHash and RequestExpiresAt replace the approval link (A2
	// re-send); ClearRequest drops it (approved).
	RequestTokenHash []byte
	RequestExpiresAt *time.Time
	ClearRequest     bool
	ServiceKeyEmail  *string
}

// UpdateConnection applies u to the connection. Picking a CRM org that
// another live connection holds fails with ErrCRMOrgTaken.
func UpdateConnection(ctx context.Context, q Queryer, orgID, id int64, u ConnectionUpdate) (Connection, error) {
	const action = "updating connection"
	var out Connection
	err := q.GetContext(ctx, &out, `
		UPDATE connections SET
			auth_method = COALESCE($4, auth_method),
			crm_org_id = COALESCE($5, crm_org_id),
			crm_org_name = COALESCE($6, crm_org_name),
			desk_dc = COALESCE($7, desk_dc),
			desk_org_id = COALESCE($8, desk_org_id),
			desk_portal = COALESCE($9, desk_portal),
			language = COALESCE($10, language),
			time_zone = COALESCE($11, time_zone),
			approver_email = COALESCE($12, approver_email),
			requested_at = COALESCE($13, requested_at),
			request_sent_count = request_sent_count + CASE WHEN $14 THEN 1 ELSE 0 END,
			authorized_by = COALESCE($15, authorized_by),
			webhook_token = COALESCE($16, webhook_token),
			request_token_hash = CASE WHEN $19 THEN NULL ELSE COALESCE($17, request_token_hash) END,
			request_expires_at = CASE WHEN $19 THEN NULL ELSE COALESCE($18, request_expires_at) END,
			service_key_email = COALESCE($20, service_key_email),
			updated_at = now()
		WHERE org_id = $1 AND id = $2 AND (cardinality($3::text[]) = 0 OR status = ANY($3))
		RETURNING `+connectionColumns,
		orgID, id, pq.Array(nonNil(u.IfStatus)),
		u.AuthMethod, u.CRMOrgID, u.CRMOrgName, u.DeskDC, u.DeskOrgID, u.DeskPortal, u.Language,
		u.TimeZone, u.ApproverEmail, u.RequestedAt, u.RequestSent, u.AuthorizedBy, u.WebhookToken,
		u.RequestTokenHash, u.RequestExpiresAt, u.ClearRequest, u.ServiceKeyEmail)
	if err == nil {
		return out, nil
	}
	if err = classifyConnection(action, err); !errors.Is(err, ErrNotFound) {
		return Connection{}, err
	}
	return Connection{}, connectionStatusConflict(ctx, q, action, orgID, id)
}

// ConnectionByRequestToken returns the connection whose pending access
// request (A2) has this token hash, locked for the approval that follows.
// ErrNotFound when no pending request has it or its link expired: the
// caller cannot tell which, and neither can someone guessing.
func ConnectionByRequestToken(ctx context.Context, q Queryer, hash []byte) (Connection, error) {
	var out Connection
	err := q.GetContext(ctx, &out, `
		SELECT `+connectionColumns+` FROM connections
		WHERE request_token_hash = $1 AND status = 'PENDING_APPROVAL' AND request_expires_at > now()
		FOR UPDATE`, hash)
	return out, classify("loading connection by access request", err)
}

// ForgetDeskSide drops what a connection knows of its desk portal: the
// links (so no record pairs with a record of another portal), the desk's
// mirror rows and the first sync's match index over them, queued desk
// changes, polling cursors and the webhook subscription row. The portal
// keeps its data; the CRM side is untouched.
// It is the data half of switching portals (A3) and returns how many links
// were dropped.
func ForgetDeskSide(ctx context.Context, q Queryer, orgID, connID int64, deskSystem string) (int64, error) {
	const action = "forgetting the desk side of a connection"
	var links int64
	// Data-modifying CTEs run to completion whether or not the outer
	// query reads them, so one statement does all six deletes.
	err := q.GetContext(ctx, &links, `
		WITH l AS (DELETE FROM links WHERE org_id = $1 AND connection_id = $2 RETURNING 1),
		     m AS (DELETE FROM mirror_records WHERE org_id = $1 AND connection_id = $2 AND system = $3 RETURNING 1),
		     q AS (DELETE FROM change_queue WHERE org_id = $1 AND connection_id = $2 AND system = $3 RETURNING 1),
		     c AS (DELETE FROM sync_cursors WHERE org_id = $1 AND connection_id = $2 AND system = $3 RETURNING 1),
		     w AS (DELETE FROM connection_watches WHERE org_id = $1 AND connection_id = $2 AND system = $3 RETURNING 1),
		     x AS (DELETE FROM match_indexes WHERE org_id = $1 AND connection_id = $2 AND system = $3 RETURNING 1)
		SELECT count(*) FROM l`, orgID, connID, deskSystem)
	return links, classify(action, err)
}
