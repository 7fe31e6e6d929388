package syncengine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Event types written by the connection service. They match the GraphQL
// EventType enum values.
const (
	ConnectionEventCreated       = "CONNECTION_CREATED"
	ConnectionEventStatusChanged = "CONNECTION_STATUS_CHANGED"
)

// Connection auth methods (connections.auth_method).
const (
	ConnectionAuthOAuth      = "OAUTH"
	ConnectionAuthOtherUser  = "OTHER_USER"
	ConnectionAuthServiceKey = "SERVICE_KEY"
)

// ConnectionAction is a status change an admin asks for.
type ConnectionAction string

// The status changes of SetStatus.
const (
	// ConnectionDeactivate stops an ACTIVE or PAUSED connection (INACTIVE).
	ConnectionDeactivate ConnectionAction = "DEACTIVATE"
	// ConnectionReactivate restarts an INACTIVE connection (ACTIVE).
	ConnectionReactivate ConnectionAction = "REACTIVATE"
	// ConnectionRemove ends any connection that is not removed yet
	// (REMOVED) and deletes its secrets; data on both sides stays (A6).
	ConnectionRemove ConnectionAction = "REMOVE"
)

// connectionTransitions says, per action, from which statuses it applies,
// what it moves to and how a message names it.
var connectionTransitions = map[ConnectionAction]struct {
	from []string
	to   string
	verb string
}{
	ConnectionDeactivate: {[]string{store.ConnectionActive, store.ConnectionPaused}, store.ConnectionInactive, "deactivate"},
	ConnectionReactivate: {[]string{store.ConnectionInactive}, store.ConnectionActive, "reactivate"},
	ConnectionRemove: {[]string{store.ConnectionPendingApproval, store.ConnectionActive, store.ConnectionPaused,
		store.ConnectionInactive}, store.ConnectionRemoved, "remove"},
	// Pausing stops the workers (the queue only serves ACTIVE connections)
	// while capture goes on, so resuming applies everything missed (B12).
	ConnectionPause:  {[]string{store.ConnectionActive}, store.ConnectionPaused, "pause sync of"},
	ConnectionResume: {[]string{store.ConnectionPaused}, store.ConnectionActive, "resume sync of"},
}

// ConnectionCredentials are OAuth credentials of a Zoho account: a refresh
// token, or an authorization code and the redirect URI it was issued for.
// They print masked (fmt and slog alike), so logging a value that holds
// them never leaks them.
type ConnectionCredentials struct {
	RefreshToken      string
	AuthorizationCode string
	RedirectURI       string
}

// String masks the secrets.
func (c ConnectionCredentials) String() string {
	return fmt.Sprintf("credentials(refreshToken:%s authorizationCode:%s)",
		maskConnectionSecret(c.RefreshToken), maskConnectionSecret(c.AuthorizationCode))
}

// GoString masks the secrets for %#v too.
func (c ConnectionCredentials) GoString() string { return c.String() }

// LogValue masks the secrets in structured logs.
func (c ConnectionCredentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasRefreshToken", c.RefreshToken != ""),
		slog.Bool("hasAuthorizationCode", c.AuthorizationCode != ""),
		slog.String("redirectUri", c.RedirectURI),
	)
}

// MarshalJSON masks the secrets, so a JSON log handler that encodes a
// struct holding credentials (it ignores nested LogValuers) cannot leak them.
func (c ConnectionCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"hasRefreshToken": c.RefreshToken != "",
		"hasAuthorizationCode": c.AuthorizationCode != "", "redirectUri": c.RedirectURI})
}

func maskConnectionSecret(s string) string {
	if s == "" {
		return "(none)"
	}
	return "********"
}

// ConnectionRequest is what Connect needs (SPEC A1, A4). Field names follow
// the GraphQL input, and ConnectionInputError.Field names them the same way.
type ConnectionRequest struct {
	CRMSystem       connector.System // connector.CRM or connector.Bigin
	CRMDC           string           // data center key, e.g. "us"
	CRMOrgID        string
	CRMCredentials  ConnectionCredentials
	DeskDC          string
	DeskOrgID       string
	DeskCredentials ConnectionCredentials
	// Settings are the module groups' settings to start with (B1-B5, as
	// UpdateSettings takes them), in force before the first sync starts;
	// the defaults otherwise.
	Settings []SettingsChange
}

// LogValue prints the request for logs with its credentials masked.
func (r ConnectionRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("crmSystem", string(r.CRMSystem)), slog.String("crmDc", r.CRMDC), slog.String("crmOrgId", r.CRMOrgID),
		slog.Any("crmCredentials", r.CRMCredentials),
		slog.String("deskDc", r.DeskDC), slog.String("deskOrgId", r.DeskOrgID),
		slog.Any("deskCredentials", r.DeskCredentials),
	)
}

// ConnectionInputError is a request the service refuses because of one of
// its fields. Field is the name of the connectCrm input field
// ("crmCredentials", "deskOrgId", ...); Reason never contains a secret.
type ConnectionInputError struct {
	Field  string
	Reason string
}

func (e *ConnectionInputError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// ConnectionConflictError is a refused change that conflicts with existing
// state. It wraps a store error that wraps store.ErrConflict, and carries a
// message fit for the API (PublicMessage).
type ConnectionConflictError struct {
	Reason string
	Err    error
}

func (e *ConnectionConflictError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the store error.
func (e *ConnectionConflictError) Unwrap() error { return e.Err }

// PublicMessage is what the API may show the caller.
func (e *ConnectionConflictError) PublicMessage() string { return e.Reason }

// ConnectionServiceConfig builds a ConnectionService.
type ConnectionServiceConfig struct {
	DB *sqlx.DB
	// Box seals secrets; nil makes Connect refuse (no DESKBRIDGE_SECRET_KEY).
	Box *crypt.Box
	// Vendor builds the connectors and exchanges OAuth codes; the
	// composition root passes Zoho's. nil refuses every vendor call.
	Vendor connector.Vendor
	Logger *slog.Logger
}

// ConnectionService makes, lists and changes connections: it checks
// credentials against the vendors, seals secrets and writes each change
// with its event in one transaction.
type ConnectionService struct {
	db     *sqlx.DB
	box    *crypt.Box
	vendor connector.Vendor
	log    *slog.Logger
	cache  connectorCache
}

// errNoVendor is returned by vendor calls of a service built without one.
var errNoVendor = errors.New("no vendor configured for connections")

// NewConnectionService returns a service for cfg.
func NewConnectionService(cfg ConnectionServiceConfig) *ConnectionService {
	s := &ConnectionService{db: cfg.DB, box: cfg.Box, vendor: cfg.Vendor, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// open builds a connector for a through the vendor.
func (s *ConnectionService) open(a connector.Account) (connector.Connector, error) {
	return openThrough(s.vendor, a)
}

// openThrough builds a connector for a through vendor, which a service
// may lack (errNoVendor).
func openThrough(vendor connector.Vendor, a connector.Account) (connector.Connector, error) {
	if vendor == nil {
		return nil, errNoVendor
	}
	c, err := vendor.Open(a)
	if err != nil {
		return nil, fmt.Errorf("building %s connector: %w", a.System, err)
	}
	return c, nil
}

// knownDC reports whether dc is a data center; the data-center enum of the
// schema is the same list for every vendor deskbridge speaks to.
func knownDC(dc string) bool {
	switch dc {
	case "us", "eu", "in", "au", "jp", "cn", "ca", "sa", "uk":
		return true
	}
	return false
}

// checkConnectionDC validates a data center key.
func checkConnectionDC(field, dc string) (string, error) {
	dc = strings.ToLower(strings.TrimSpace(dc))
	if !knownDC(dc) {
		return "", &ConnectionInputError{Field: field, Reason: fmt.Sprintf("unknown data center %q", dc)}
	}
	return dc, nil
}

// refreshTokenOf returns a refresh token for creds: the one given, or the
// one an authorization code is exchanged for (once; codes are single-use).
func (s *ConnectionService) refreshTokenOf(ctx context.Context, field string, sys connector.System, dc string, creds ConnectionCredentials) (string, error) {
	if err := checkCredentialShape(field, creds); err != nil {
		return "", err
	}
	if token := strings.TrimSpace(creds.RefreshToken); token != "" {
		return token, nil
	}
	if s.vendor == nil {
		return "", errNoVendor
	}
	token, err := s.vendor.ExchangeCode(ctx, sys, dc, strings.TrimSpace(creds.AuthorizationCode), strings.TrimSpace(creds.RedirectURI))
	if err != nil {
		return "", s.vendorError(field, "exchanging the authorization code", err)
	}
	return token, nil
}

// vendorError turns a vendor failure into an input error on the credentials
// when the vendor refused them, and passes anything else on.
func (s *ConnectionService) vendorError(field, what string, err error) error {
	if connector.ClassOf(err) == connector.Auth {
		reason := "the credentials were refused by Zoho"
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Code != "" {
			reason += " (" + ce.Code + ")"
		}
		return &ConnectionInputError{Field: field, Reason: reason}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// listOrgs builds a temporary connector for an account and returns the
// orgs it reaches; a refused credential is an input error on field.
func (s *ConnectionService) listOrgs(ctx context.Context, field string, a connector.Account) ([]connector.Org, error) {
	a.Interactive = true
	c, err := s.open(a)
	if err != nil {
		return nil, err
	}
	lister, ok := c.(connector.OrgLister)
	if !ok {
		return nil, fmt.Errorf("%s lists no orgs", a.System)
	}
	orgs, err := lister.Orgs(ctx)
	if err != nil {
		return nil, s.vendorError(field, "listing "+string(a.System)+" orgs", err)
	}
	return orgs, nil
}

// ReachableCRMOrgs lists the CRM or Bigin orgs that the authorizing account
// reaches (SPEC A1). Credentials the vendor refuses yield a
// ConnectionInputError on "crmCredentials".
func (s *ConnectionService) ReachableCRMOrgs(ctx context.Context, sys connector.System, dc string, creds ConnectionCredentials) ([]connector.Org, error) {
	if sys != connector.CRM && sys != connector.Bigin {
		return nil, &ConnectionInputError{Field: "crmSystem", Reason: "must be Zoho CRM or Bigin"}
	}
	dc, err := checkConnectionDC("crmDataCenter", dc)
	if err != nil {
		return nil, err
	}
	token, err := s.refreshTokenOf(ctx, "crmCredentials", sys, dc, creds)
	if err != nil {
		return nil, err
	}
	return s.listOrgs(ctx, "crmCredentials", connector.Account{System: sys, DC: dc, RefreshToken: token})
}

// Connect joins a desk portal to a CRM or Bigin org (SPEC A1, A4). Both
// credentials are checked against the vendors first; then, in one
// transaction, the connection is stored ACTIVE with auth method OAUTH, both
// refresh tokens are sealed and stored, default settings are written, the
// first sync's runs are started and a CONNECTION_CREATED event is appended.
func (s *ConnectionService) Connect(ctx context.Context, v auth.Viewer, req ConnectionRequest) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("connecting a crm: %w", auth.ErrForbidden)
	}
	if s.box == nil {
		return store.Connection{}, errors.New("connecting a crm: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	// Shapes first, so a malformed desk input does not spend the CRM's
	// authorization code.
	if _, err := checkConnectionDC("deskDataCenter", req.DeskDC); err != nil {
		return store.Connection{}, err
	}
	if strings.TrimSpace(req.DeskOrgID) == "" {
		return store.Connection{}, &ConnectionInputError{Field: "deskOrgId", Reason: "must not be empty"}
	}
	if err := checkCredentialShape("deskCredentials", req.DeskCredentials); err != nil {
		return store.Connection{}, err
	}
	initial, err := initialSettings(v, req.CRMSystem, req.Settings)
	if err != nil {
		return store.Connection{}, err
	}
	crm, err := s.checkCRMOAuth(ctx, req.CRMSystem, req.CRMDC, req.CRMOrgID, req.CRMCredentials)
	if err != nil {
		return store.Connection{}, err
	}
	desk, err := s.checkDeskOAuth(ctx, req.DeskDC, req.DeskOrgID, req.DeskCredentials)
	if err != nil {
		return store.Connection{}, err
	}
	userID := v.UserID
	out, err := s.createConnection(ctx, v, store.NewConnection{
		OrgID: v.OrgID, CRMSystem: string(req.CRMSystem), Status: store.ConnectionActive,
		AuthMethod: ConnectionAuthOAuth, CRMDC: crm.dc, CRMOrgID: &crm.orgID, CRMOrgName: &crm.orgName,
		DeskDC: desk.dc, DeskOrgID: desk.orgID, DeskPortal: nonEmptyConnectionString(desk.portal), AuthorizedBy: &userID,
	}, map[string]string{store.SecretCRMRefreshToken: crm.token, store.SecretDeskRefreshToken: desk.token}, initial)
	if err != nil {
		return store.Connection{}, fmt.Errorf("connecting a crm: %w", err)
	}
	s.log.InfoContext(ctx, "connection created", "org_id", v.OrgID, "connection_id", out.ID,
		"crm_system", out.CRMSystem, "crm_dc", out.CRMDC, "desk_dc", out.DeskDC, "has_secret", true)
	return out, nil
}

// checkedCRM is a CRM side whose credentials the vendor accepted.
type checkedCRM struct {
	dc, orgID, orgName, token string
}

// checkCRMOAuth checks a CRM or Bigin side: the system, data center and
// org, and that the credentials reach the org.
func (s *ConnectionService) checkCRMOAuth(ctx context.Context, sys connector.System, dc, orgID string, creds ConnectionCredentials) (checkedCRM, error) {
	if sys != connector.CRM && sys != connector.Bigin {
		return checkedCRM{}, &ConnectionInputError{Field: "crmSystem", Reason: "must be Zoho CRM or Bigin"}
	}
	dc, err := checkConnectionDC("crmDataCenter", dc)
	if err != nil {
		return checkedCRM{}, err
	}
	orgID = strings.TrimSpace(orgID)
	if orgID == "" {
		return checkedCRM{}, &ConnectionInputError{Field: "crmOrgId", Reason: "must not be empty"}
	}
	token, err := s.refreshTokenOf(ctx, "crmCredentials", sys, dc, creds)
	if err != nil {
		return checkedCRM{}, err
	}
	orgs, err := s.listOrgs(ctx, "crmCredentials", connector.Account{System: sys, DC: dc, RefreshToken: token})
	if err != nil {
		return checkedCRM{}, err
	}
	org, err := pickCRMOrg(orgs, orgID)
	if err != nil {
		return checkedCRM{}, err
	}
	return checkedCRM{dc: dc, orgID: org.ID, orgName: org.Name, token: token}, nil
}

// checkedDesk is a desk side whose credentials the vendor accepted.
type checkedDesk struct {
	dc, orgID, portal, token string
}

// checkDeskOAuth checks a desk side authorized with OAuth: the data center,
// and that the credentials belong to the portal.
func (s *ConnectionService) checkDeskOAuth(ctx context.Context, dc, orgID string, creds ConnectionCredentials) (checkedDesk, error) {
	dc, err := checkConnectionDC("deskDataCenter", dc)
	if err != nil {
		return checkedDesk{}, err
	}
	orgID = strings.TrimSpace(orgID)
	if orgID == "" {
		return checkedDesk{}, &ConnectionInputError{Field: "deskOrgId", Reason: "must not be empty"}
	}
	token, err := s.refreshTokenOf(ctx, "deskCredentials", connector.Desk, dc, creds)
	if err != nil {
		return checkedDesk{}, err
	}
	orgs, err := s.listOrgs(ctx, "deskCredentials", connector.Account{System: connector.Desk, DC: dc, RefreshToken: token, DeskOrgID: orgID})
	if err != nil {
		return checkedDesk{}, err
	}
	i := slices.IndexFunc(orgs, func(o connector.Org) bool { return o.ID == orgID })
	if i < 0 {
		return checkedDesk{}, &ConnectionInputError{Field: "deskOrgId", Reason: "the desk account does not belong to this portal"}
	}
	return checkedDesk{dc: dc, orgID: orgID, portal: orgs[i].Name, token: token}, nil
}

// createConnection stores a new connection in one transaction: the row
// (with a fresh webhook token), its sealed secrets, its settings (initial,
// from initialSettings), the first sync's runs when it starts ACTIVE, and a
// CONNECTION_CREATED event.
func (s *ConnectionService) createConnection(ctx context.Context, v auth.Viewer, nc store.NewConnection, secrets map[string]string,
	initial map[string]store.Settings) (store.Connection, error) {
	webhookToken, err := newConnectionWebhookToken()
	if err != nil {
		return store.Connection{}, err
	}
	nc.WebhookToken = webhookToken
	var out store.Connection
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := store.InsertConnection(ctx, tx, nc)
		if err != nil {
			return err
		}
		if err := s.putSecrets(ctx, tx, c, secrets); err != nil {
			return err
		}
		for _, group := range Groups {
			settings := initial[group]
			settings.ConnectionID = c.ID
			if _, err := store.InsertSettings(ctx, tx, settings); err != nil {
				return err
			}
		}
		// An ACTIVE connection starts its first sync (B7); the leader's
		// driver walks the runs from here.
		if c.Status == store.ConnectionActive {
			if _, _, err := startFirstSyncRuns(ctx, tx, v, c); err != nil {
				return err
			}
		}
		out = c
		return insertConnectionEvent(ctx, tx, v, ConnectionEventCreated, c, "")
	})
	if err != nil {
		return store.Connection{}, connectionConflict(err)
	}
	return out, nil
}

// putSecrets seals and stores secrets of a connection, each bound to its
// row and name.
func (s *ConnectionService) putSecrets(ctx context.Context, q store.Queryer, c store.Connection, secrets map[string]string) error {
	for name, secret := range secrets {
		sealed, err := s.box.Seal([]byte(secret), ConnectionSecretAD(c.ID, name))
		if err != nil {
			return err
		}
		if err := store.PutSecret(ctx, q, c.OrgID, c.ID, name, sealed); err != nil {
			return err
		}
	}
	return nil
}

// insertConnectionEvent appends a connection event visible to those who
// manage connections.
func insertConnectionEvent(ctx context.Context, tx *sqlx.Tx, v auth.Viewer, typ string, c store.Connection, previous string) error {
	_, err := store.InsertEvent(ctx, tx, store.NewEvent{
		OrgID: c.OrgID, Type: typ, Permission: string(auth.PermManageConnections),
		SubjectID: connectionSubject(c.ID), Payload: connectionPayload(c, previous, v),
	})
	return err
}

// checkCredentialShape checks that exactly one kind of credential is given.
func checkCredentialShape(field string, c ConnectionCredentials) error {
	hasToken := strings.TrimSpace(c.RefreshToken) != ""
	hasCode := strings.TrimSpace(c.AuthorizationCode) != ""
	hasRedirect := strings.TrimSpace(c.RedirectURI) != ""
	switch {
	case hasToken && (hasCode || hasRedirect):
		return &ConnectionInputError{Field: field, Reason: "give either refreshToken or authorizationCode with redirectUri, not both"}
	case hasToken:
		return nil
	case hasCode && !hasRedirect:
		return &ConnectionInputError{Field: field, Reason: "authorizationCode needs the redirectUri it was issued for"}
	case !hasCode:
		return &ConnectionInputError{Field: field, Reason: "give refreshToken, or authorizationCode with redirectUri"}
	}
	return nil
}

// defaultConnectionSettings are the documented defaults of a new
// connection: two-way sync for both groups (B1; Bigin the same), primary
// email matching, no deletion propagated, a one-year first-sync window.
func defaultConnectionSettings(v auth.Viewer, connID int64, group string) store.Settings {
	userID := v.UserID
	return store.Settings{
		OrgID: v.OrgID, ConnectionID: connID, ModuleGroup: group, SyncType: "TWO_WAY",
		MatchEmail: "PRIMARY", CRMDeletePolicy: "NEVER", DeskDeletePolicy: "NEVER",
		FirstSyncWindowDays: 365, CreatedBy: &userID,
	}
}

// SetStatus deactivates, reactivates or removes a connection (A3, A6) and
// appends a CONNECTION_STATUS_CHANGED event, in one transaction. Removing
// deletes the connection's secrets. A transition that does not apply to the
// current status is a ConnectionConflictError naming that status.
func (s *ConnectionService) SetStatus(ctx context.Context, v auth.Viewer, id int64, action ConnectionAction) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("changing a connection: %w", auth.ErrForbidden)
	}
	tr, ok := connectionTransitions[action]
	if !ok {
		return store.Connection{}, fmt.Errorf("changing a connection: unknown action %q", action)
	}
	var out store.Connection
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		before, err := store.ConnectionByID(ctx, tx, v.OrgID, id)
		if err != nil {
			return err
		}
		c, err := store.SetConnectionStatus(ctx, tx, v.OrgID, id, tr.from, tr.to)
		if err != nil {
			if errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrCRMOrgTaken) && !errors.Is(err, store.ErrOrgHasConnection) {
				status := before.Status
				if now, lerr := store.ConnectionByID(ctx, tx, v.OrgID, id); lerr == nil {
					status = now.Status
				}
				return &ConnectionConflictError{Reason: fmt.Sprintf("cannot %s the connection: it is %s", tr.verb, status), Err: err}
			}
			return err
		}
		if action == ConnectionRemove {
			if _, err := store.DeleteSecrets(ctx, tx, v.OrgID, id); err != nil {
				return err
			}
		}
		out = c
		return insertConnectionEvent(ctx, tx, v, ConnectionEventStatusChanged, c, before.Status)
	})
	if err != nil {
		return store.Connection{}, connectionConflict(fmt.Errorf("changing connection %d: %w", id, err))
	}
	s.log.InfoContext(ctx, "connection status changed", "org_id", v.OrgID, "connection_id", id, "status", out.Status)
	return out, nil
}

// Connections lists the org's connections (removed ones on request).
func (s *ConnectionService) Connections(ctx context.Context, v auth.Viewer, includeRemoved bool) ([]store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return nil, fmt.Errorf("listing connections: %w", auth.ErrForbidden)
	}
	return store.ListConnections(ctx, s.db, v.OrgID, includeRemoved)
}

// Connection returns one connection of the org; ErrNotFound for another
// org's.
func (s *ConnectionService) Connection(ctx context.Context, v auth.Viewer, id int64) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("reading a connection: %w", auth.ErrForbidden)
	}
	return store.ConnectionByID(ctx, s.db, v.OrgID, id)
}

// connectionConflict gives the store's connection conflicts a message the
// API can show; other errors pass unchanged.
func connectionConflict(err error) error {
	var ce *ConnectionConflictError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, store.ErrCRMOrgTaken):
		return &ConnectionConflictError{Reason: "the CRM org is already joined to a desk portal by another connection", Err: err}
	case errors.Is(err, store.ErrOrgHasConnection):
		return &ConnectionConflictError{Reason: "the org already has a live CRM connection; deactivate or remove it first", Err: err}
	}
	return err
}

// ConnectionSecretAD is the associated data a connection's secret is sealed
// with, binding the ciphertext to its row (docs/SYNC.md, Secrets).
func ConnectionSecretAD(connID int64, name string) []byte {
	return []byte("connection:" + strconv.FormatInt(connID, 10) + ":" + name)
}

// connectionSubject is the event subject of a connection ("Type:rowid").
func connectionSubject(id int64) *string {
	s := "Connection:" + strconv.FormatInt(id, 10)
	return &s
}

// connectionEventPayload is the JSON of connection events; it never holds
// a secret.
type connectionEventPayload struct {
	ConnectionID   int64  `json:"connectionId"`
	CRMSystem      string `json:"crmSystem"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previousStatus,omitempty"`
	AuthMethod     string `json:"authMethod"`
	CRMDataCenter  string `json:"crmDataCenter"`
	CRMOrgID       string `json:"crmOrgId,omitempty"`
	DeskDataCenter string `json:"deskDataCenter"`
	DeskOrgID      string `json:"deskOrgId"`
	ActorTokenID   int64  `json:"actorTokenId,omitempty"`
}

func connectionPayload(c store.Connection, previous string, v auth.Viewer) connectionEventPayload {
	p := connectionEventPayload{ConnectionID: c.ID, CRMSystem: strings.ToUpper(c.CRMSystem), Status: c.Status,
		PreviousStatus: previous, AuthMethod: c.AuthMethod, CRMDataCenter: strings.ToUpper(c.CRMDC),
		DeskDataCenter: strings.ToUpper(c.DeskDC), DeskOrgID: c.DeskOrgID, ActorTokenID: v.TokenID}
	if c.CRMOrgID != nil {
		p.CRMOrgID = *c.CRMOrgID
	}
	return p
}

func nonEmptyConnectionString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newConnectionWebhookToken makes the random token inbound notifications
// of a connection must carry.
func newConnectionWebhookToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating webhook token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
