package syncengine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// ConnectionEventUpdated is written when a connection's details change
// without a status change: an access request re-sent (A2), a portal
// switched (A3).
const ConnectionEventUpdated = "CONNECTION_UPDATED"

// AccessRequestLifetime is how long an approval code works (A2). Re-sending
// the request issues a new code with a new lifetime.
const AccessRequestLifetime = 7 * 24 * time.Hour

// AccessRequestInput is a desk admin's request to use a CRM admin's account
// (A2): the desk side is authorized now, the CRM side when the CRM admin
// approves.
type AccessRequestInput struct {
	CRMSystem       connector.System
	CRMDC           string
	CRMAdminEmail   string
	DeskDC          string
	DeskOrgID       string
	DeskCredentials ConnectionCredentials
	Settings        []SettingsChange // as ConnectionRequest.Settings; editable until approval
}

// AccessRequest is a pending request and the code that approves it. The
// code is shown once, to the requesting admin, who passes it to the CRM
// admin; deskbridge stores only its hash and sends no email itself.
type AccessRequest struct {
	Connection store.Connection
	Code       string
	ExpiresAt  time.Time
}

// RequestAccess stores a PENDING_APPROVAL connection whose CRM side waits
// for the CRM admin named in the request (SPEC A2). The desk credentials are
// checked and sealed now; default settings are written so they can be
// edited before approval. Admins only.
func (s *ConnectionService) RequestAccess(ctx context.Context, v auth.Viewer, in AccessRequestInput) (AccessRequest, error) {
	if !v.Can(auth.PermManageConnections) {
		return AccessRequest{}, fmt.Errorf("requesting crm access: %w", auth.ErrForbidden)
	}
	if s.box == nil {
		return AccessRequest{}, errors.New("requesting crm access: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	if in.CRMSystem != connector.CRM && in.CRMSystem != connector.Bigin {
		return AccessRequest{}, &ConnectionInputError{Field: "crmSystem", Reason: "must be Zoho CRM or Bigin"}
	}
	crmDC, err := checkConnectionDC("crmDataCenter", in.CRMDC)
	if err != nil {
		return AccessRequest{}, err
	}
	email, err := checkEmail("crmAdminEmail", in.CRMAdminEmail)
	if err != nil {
		return AccessRequest{}, err
	}
	initial, err := initialSettings(v, in.CRMSystem, in.Settings)
	if err != nil {
		return AccessRequest{}, err
	}
	desk, err := s.checkDeskOAuth(ctx, in.DeskDC, in.DeskOrgID, in.DeskCredentials)
	if err != nil {
		return AccessRequest{}, err
	}
	code, hash, err := newAccessRequestCode()
	if err != nil {
		return AccessRequest{}, err
	}
	now := time.Now()
	expires := now.Add(AccessRequestLifetime)
	userID := v.UserID
	c, err := s.createConnection(ctx, v, store.NewConnection{
		OrgID: v.OrgID, CRMSystem: string(in.CRMSystem), Status: store.ConnectionPendingApproval,
		AuthMethod: ConnectionAuthOtherUser, CRMDC: crmDC, DeskDC: desk.dc, DeskOrgID: desk.orgID,
		DeskPortal: nonEmptyConnectionString(desk.portal), ApproverEmail: &email, RequestedAt: &now,
		AuthorizedBy: &userID, RequestTokenHash: hash, RequestExpiresAt: &expires,
	}, map[string]string{store.SecretDeskRefreshToken: desk.token}, initial)
	if err != nil {
		return AccessRequest{}, fmt.Errorf("requesting crm access: %w", err)
	}
	s.log.InfoContext(ctx, "crm access requested", "org_id", v.OrgID, "connection_id", c.ID, "expires", expires)
	return AccessRequest{Connection: c, Code: code, ExpiresAt: expires}, nil
}

// ResendAccessRequest issues a new approval code for a PENDING_APPROVAL
// connection (A2 "re-send"): the old code stops working, the lifetime
// starts again and the sent count grows. Admins only.
func (s *ConnectionService) ResendAccessRequest(ctx context.Context, v auth.Viewer, id int64) (AccessRequest, error) {
	if !v.Can(auth.PermManageConnections) {
		return AccessRequest{}, fmt.Errorf("re-sending a crm access request: %w", auth.ErrForbidden)
	}
	code, hash, err := newAccessRequestCode()
	if err != nil {
		return AccessRequest{}, err
	}
	now := time.Now()
	expires := now.Add(AccessRequestLifetime)
	var out store.Connection
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := store.UpdateConnection(ctx, tx, v.OrgID, id, store.ConnectionUpdate{
			IfStatus: []string{store.ConnectionPendingApproval}, RequestTokenHash: hash, RequestExpiresAt: &expires,
			RequestedAt: &now, RequestSent: true,
		})
		if errors.Is(err, store.ErrConflict) {
			return &ConnectionConflictError{Reason: "only a connection waiting for approval has a request to re-send", Err: err}
		}
		if err != nil {
			return err
		}
		out = c
		return insertConnectionEvent(ctx, tx, v, ConnectionEventUpdated, c, "")
	})
	if err != nil {
		return AccessRequest{}, connectionConflict(fmt.Errorf("re-sending access request of connection %d: %w", id, err))
	}
	s.log.InfoContext(ctx, "crm access request re-sent", "org_id", v.OrgID, "connection_id", id, "sent", out.RequestSentCount)
	return AccessRequest{Connection: out, Code: code, ExpiresAt: expires}, nil
}

// ApproveAccess is the CRM admin's answer to an access request (A2): the
// code identifies the request, the credentials must be the invited
// administrator's own, and crmOrgID picks the org ("" when the account
// reaches only one). The connection becomes ACTIVE and its first sync
// starts. No deskbridge token is needed: the code is the capability, and
// without the invited admin's Zoho credentials it approves nothing.
func (s *ConnectionService) ApproveAccess(ctx context.Context, code, crmOrgID string, creds ConnectionCredentials) (store.Connection, error) {
	if s.box == nil {
		return store.Connection{}, errors.New("approving crm access: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	hash := accessRequestHash(code)
	pending, err := store.ConnectionByRequestToken(ctx, s.db, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connection{}, errUnknownAccessRequest
	}
	if err != nil {
		return store.Connection{}, fmt.Errorf("approving crm access: %w", err)
	}
	sys := connector.System(pending.CRMSystem)
	token, err := s.refreshTokenOf(ctx, "credentials", sys, pending.CRMDC, creds)
	if err != nil {
		return store.Connection{}, err
	}
	account := connector.Account{System: sys, DC: pending.CRMDC, RefreshToken: token, Interactive: true}
	if err := s.checkApprover(ctx, account, pending); err != nil {
		return store.Connection{}, err
	}
	orgs, err := s.listOrgs(ctx, "credentials", account)
	if err != nil {
		return store.Connection{}, err
	}
	org, err := pickCRMOrg(orgs, strings.TrimSpace(crmOrgID))
	if err != nil {
		return store.Connection{}, err
	}

	system := auth.Viewer{OrgID: pending.OrgID}
	var out store.Connection
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		// Locked again: a re-send or removal since the first read wins.
		c, err := store.ConnectionByRequestToken(ctx, tx, hash)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.ID != pending.ID) {
			return errUnknownAccessRequest
		}
		if err != nil {
			return err
		}
		if _, err := store.UpdateConnection(ctx, tx, c.OrgID, c.ID, store.ConnectionUpdate{
			IfStatus: []string{store.ConnectionPendingApproval}, CRMOrgID: &org.ID, CRMOrgName: &org.Name, ClearRequest: true,
		}); err != nil {
			return err
		}
		if c, err = store.SetConnectionStatus(ctx, tx, c.OrgID, c.ID, []string{store.ConnectionPendingApproval}, store.ConnectionActive); err != nil {
			return err
		}
		if err := s.putSecrets(ctx, tx, c, map[string]string{store.SecretCRMRefreshToken: token}); err != nil {
			return err
		}
		if _, _, err := startFirstSyncRuns(ctx, tx, system, c); err != nil {
			return err
		}
		out = c
		return insertConnectionEvent(ctx, tx, system, ConnectionEventStatusChanged, c, store.ConnectionPendingApproval)
	})
	if err != nil {
		if errors.Is(err, errUnknownAccessRequest) {
			return store.Connection{}, err
		}
		return store.Connection{}, connectionConflict(fmt.Errorf("approving crm access: %w", err))
	}
	s.log.InfoContext(ctx, "crm access approved", "org_id", out.OrgID, "connection_id", out.ID)
	return out, nil
}

// PendingAccess is what the approval page shows of a request (A2): which
// desk portal asks to sync with which CRM, whom it asks, until when, and
// the vendor's consent page to send that admin to.
type PendingAccess struct {
	CRMSystem     connector.System
	DeskPortal    string
	ApproverEmail string
	ExpiresAt     time.Time
	// ConsentURL signs the admin in and sends the browser to the
	// redirectURI given with an authorization code, and the approval code
	// as state, for ApproveAccess.
	ConsentURL string
}

// AccessRequestOf reads the pending request an approval code opens, for
// the approval page that redirectURI belongs to.
func (s *ConnectionService) AccessRequestOf(ctx context.Context, code, redirectURI string) (PendingAccess, error) {
	c, err := store.ConnectionByRequestToken(ctx, s.db, accessRequestHash(code))
	if errors.Is(err, store.ErrNotFound) {
		return PendingAccess{}, errUnknownAccessRequest
	}
	if err != nil {
		return PendingAccess{}, fmt.Errorf("reading a crm access request: %w", err)
	}
	if s.vendor == nil {
		return PendingAccess{}, errNoVendor
	}
	consent, err := s.vendor.ConsentURL(connector.System(c.CRMSystem), c.CRMDC, redirectURI, code)
	if err != nil {
		return PendingAccess{}, fmt.Errorf("building the consent page's address: %w", err)
	}
	out := PendingAccess{CRMSystem: connector.System(c.CRMSystem), DeskPortal: deref(c.DeskPortal),
		ApproverEmail: deref(c.ApproverEmail), ConsentURL: consent}
	if c.RequestExpiresAt != nil {
		out.ExpiresAt = *c.RequestExpiresAt
	}
	return out, nil
}

// errUnknownAccessRequest answers every approval code that does not open a
// pending request, without saying why.
var errUnknownAccessRequest = &ConnectionInputError{Field: "code",
	Reason: "the approval code is unknown, was replaced by a re-sent request, or has expired"}

// checkApprover makes sure the approving account is the invited one and
// administers its CRM.
func (s *ConnectionService) checkApprover(ctx context.Context, a connector.Account, pending store.Connection) error {
	c, err := s.open(a)
	if err != nil {
		return err
	}
	id, ok := c.(connector.Identifier)
	if !ok {
		return fmt.Errorf("approving crm access: %s cannot tell who the user is", a.System)
	}
	u, err := id.CurrentUser(ctx)
	if err != nil {
		return s.vendorError("credentials", "reading the approving user", err)
	}
	if pending.ApproverEmail == nil || !strings.EqualFold(u.Email, *pending.ApproverEmail) {
		return &ConnectionInputError{Field: "credentials", Reason: "the credentials belong to another account than the CRM admin the request was sent to"}
	}
	if !u.Admin {
		return &ConnectionInputError{Field: "credentials", Reason: "the account is not an administrator of its CRM"}
	}
	return nil
}

// pickCRMOrg finds the org to join: the one asked for, or the only one.
func pickCRMOrg(orgs []connector.Org, id string) (connector.Org, error) {
	if id == "" {
		if len(orgs) == 1 {
			return orgs[0], nil
		}
		names := make([]string, len(orgs))
		for i, o := range orgs {
			names[i] = o.ID + " (" + o.Name + ")"
		}
		return connector.Org{}, &ConnectionInputError{Field: "crmOrgId",
			Reason: "the account reaches several CRM orgs; pick one of " + strings.Join(names, ", ")}
	}
	i := slices.IndexFunc(orgs, func(o connector.Org) bool { return o.ID == id })
	if i < 0 {
		return connector.Org{}, &ConnectionInputError{Field: "crmOrgId", Reason: "the account cannot reach this CRM org"}
	}
	return orgs[i], nil
}

// newAccessRequestCode makes a random approval code and its stored hash.
func newAccessRequestCode() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generating approval code: %w", err)
	}
	code := "dbkapprove_" + base64.RawURLEncoding.EncodeToString(b)
	return code, accessRequestHash(code), nil
}

func accessRequestHash(code string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(code)))
	return sum[:]
}

// checkEmail validates an email address input.
func checkEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 254 {
		return "", &ConnectionInputError{Field: field, Reason: "is longer than 254 characters"}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return "", &ConnectionInputError{Field: field, Reason: "is not an email address"}
	}
	return strings.ToLower(s), nil
}
