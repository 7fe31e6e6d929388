package syncengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	// Time zones are checked against the IANA database; embedding it keeps
	// the check the same on a machine without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// DeskLanguages are the portal languages a service-key connection may
// choose (A3), as language codes.
var DeskLanguages = []string{"ar", "da", "de", "en", "es", "fi", "fr", "he", "hi", "id", "it", "ja", "ko",
	"nl", "no", "pl", "pt", "ru", "sv", "th", "tr", "uk", "vi", "zh"}

// ServiceKey is a desk portal admin's email and service communication key
// (ZSC key, SPEC A3). It prints masked, like ConnectionCredentials.
type ServiceKey struct {
	AdminEmail string
	Key        string
}

// String masks the key.
func (k ServiceKey) String() string {
	return fmt.Sprintf("serviceKey(adminEmail:%s key:%s)", k.AdminEmail, maskConnectionSecret(k.Key))
}

// GoString masks the key for %#v too.
func (k ServiceKey) GoString() string { return k.String() }

// LogValue masks the key in structured logs.
func (k ServiceKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("adminEmail", k.AdminEmail), slog.Bool("hasKey", k.Key != ""))
}

// MarshalJSON masks the key.
func (k ServiceKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"adminEmail": k.AdminEmail, "hasKey": k.Key != ""})
}

// ServiceKeyConnectionRequest is what ConnectWithServiceKey needs: the CRM
// side on OAuth as in Connect, the desk side on a service key with the
// portal, language and time zone chosen.
type ServiceKeyConnectionRequest struct {
	CRMSystem      connector.System
	CRMDC          string
	CRMOrgID       string
	CRMCredentials ConnectionCredentials
	DeskDC         string
	ServiceKey     ServiceKey
	DeskOrgID      string
	Language       string
	TimeZone       string
	Settings       []SettingsChange // as ConnectionRequest.Settings
}

// ServiceKeyPortals lists the desk portals the service key's admin
// administers, to pick one (A3). Admins only; a key the desk refuses is an
// input error on "serviceKey".
func (s *ConnectionService) ServiceKeyPortals(ctx context.Context, v auth.Viewer, deskDC string, key ServiceKey) ([]connector.Org, error) {
	if !v.Can(auth.PermManageConnections) {
		return nil, fmt.Errorf("listing service-key portals: %w", auth.ErrForbidden)
	}
	dc, err := checkConnectionDC("deskDataCenter", deskDC)
	if err != nil {
		return nil, err
	}
	key, err = checkServiceKey(key)
	if err != nil {
		return nil, err
	}
	return s.serviceKeyPortals(ctx, dc, key)
}

func (s *ConnectionService) serviceKeyPortals(ctx context.Context, dc string, key ServiceKey) ([]connector.Org, error) {
	orgs, err := s.listOrgs(ctx, "serviceKey", connector.Account{System: connector.Desk, DC: dc,
		ServiceKey: key.Key, ServiceKeyEmail: key.AdminEmail})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(orgs, func(o connector.Org) bool { return !o.Admin }), nil
}

// ConnectWithServiceKey joins a CRM or Bigin org to a desk portal through a
// portal admin's service key (SPEC A3): the CRM credentials are checked as
// in Connect, the key must administer the chosen portal, and the language
// and time zone are stored with the connection. A CRM org has one portal:
// CONFLICT when it already has one. Admins only.
func (s *ConnectionService) ConnectWithServiceKey(ctx context.Context, v auth.Viewer, req ServiceKeyConnectionRequest) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("connecting with a service key: %w", auth.ErrForbidden)
	}
	if s.box == nil {
		return store.Connection{}, errors.New("connecting with a service key: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	deskDC, err := checkConnectionDC("deskDataCenter", req.DeskDC)
	if err != nil {
		return store.Connection{}, err
	}
	key, err := checkServiceKey(req.ServiceKey)
	if err != nil {
		return store.Connection{}, err
	}
	language, timeZone, err := checkPortalLocale(req.Language, req.TimeZone)
	if err != nil {
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
	portal, err := s.pickPortal(ctx, deskDC, key, req.DeskOrgID)
	if err != nil {
		return store.Connection{}, err
	}
	userID := v.UserID
	out, err := s.createConnection(ctx, v, store.NewConnection{
		OrgID: v.OrgID, CRMSystem: string(req.CRMSystem), Status: store.ConnectionActive,
		AuthMethod: ConnectionAuthServiceKey, CRMDC: crm.dc, CRMOrgID: &crm.orgID, CRMOrgName: &crm.orgName,
		DeskDC: deskDC, DeskOrgID: portal.ID, DeskPortal: nonEmptyConnectionString(portal.Name),
		Language: &language, TimeZone: &timeZone, ServiceKeyEmail: &key.AdminEmail, AuthorizedBy: &userID,
	}, map[string]string{store.SecretCRMRefreshToken: crm.token, store.SecretServiceKey: key.Key}, initial)
	if err != nil {
		return store.Connection{}, fmt.Errorf("connecting with a service key: %w", err)
	}
	s.log.InfoContext(ctx, "connection created", "org_id", v.OrgID, "connection_id", out.ID, "auth_method", out.AuthMethod,
		"crm_system", out.CRMSystem, "desk_dc", out.DeskDC, "has_secret", true)
	return out, nil
}

// PortalSwitch is the result of SwitchPortal.
type PortalSwitch struct {
	Connection store.Connection
	// DroppedLinks is how many record links to the old portal were dropped.
	DroppedLinks int64
}

// SwitchPortal joins the connection to another desk portal that its desk
// credential reaches (A3), with a new language and time zone ("" keeps
// the current one). Links to the old portal's records are dropped, as are
// its mirror, queued changes, cursors and webhook; the old portal keeps its
// data. A running first sync is cancelled and a new one starts, pairing the
// CRM's records with the new portal's. Admins only; not for a connection
// waiting for approval or removed.
func (s *ConnectionService) SwitchPortal(ctx context.Context, v auth.Viewer, id int64, deskOrgID, language, timeZone string) (PortalSwitch, error) {
	if !v.Can(auth.PermManageConnections) {
		return PortalSwitch{}, fmt.Errorf("switching portals: %w", auth.ErrForbidden)
	}
	c, err := store.ConnectionByID(ctx, s.db, v.OrgID, id)
	if err != nil {
		return PortalSwitch{}, fmt.Errorf("switching portals: %w", err)
	}
	switchable := []string{store.ConnectionActive, store.ConnectionPaused, store.ConnectionInactive}
	if !slices.Contains(switchable, c.Status) {
		return PortalSwitch{}, &ConnectionConflictError{Reason: "cannot switch the portal: the connection is " + c.Status,
			Err: fmt.Errorf("switching portals: %w", store.ErrConflict)}
	}
	deskOrgID = strings.TrimSpace(deskOrgID)
	if deskOrgID == c.DeskOrgID {
		return PortalSwitch{}, &ConnectionInputError{Field: "deskOrgId", Reason: "the connection is already joined to this portal"}
	}
	update := store.ConnectionUpdate{IfStatus: switchable, DeskOrgID: &deskOrgID}
	if language != "" || timeZone != "" {
		language, timeZone, err := checkPortalLocale(firstSet(language, c.Language), firstSet(timeZone, c.TimeZone))
		if err != nil {
			return PortalSwitch{}, err
		}
		update.Language, update.TimeZone = &language, &timeZone
	}
	oldDesk, _, err := s.For(ctx, c)
	if err != nil {
		return PortalSwitch{}, fmt.Errorf("switching portals: %w", err)
	}
	portal, err := s.reachablePortal(ctx, c, deskOrgID)
	if err != nil {
		return PortalSwitch{}, err
	}
	update.DeskPortal = nonEmptyConnectionString(portal.Name)
	// The old portal's webhook goes first, while its subscription id is
	// still known; if that fails, its deliveries name records no link
	// points to any more, so they change nothing.
	if watches, err := store.Watches(ctx, s.db, c.OrgID, c.ID); err == nil {
		if w, ok := watches[string(connector.Desk)]; ok {
			if watcher, ok := oldDesk.(connector.Watcher); ok {
				if err := watcher.Unwatch(ctx, w.SubscriptionID); err != nil {
					s.log.WarnContext(ctx, "old portal's webhook not removed", "connection_id", c.ID, "err", err)
				}
			}
		}
	}
	var out PortalSwitch
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, _, err := store.CancelRuns(ctx, tx, c.OrgID, c.ID); err != nil {
			return err
		}
		dropped, err := store.ForgetDeskSide(ctx, tx, c.OrgID, c.ID, string(connector.Desk))
		if err != nil {
			return err
		}
		updated, err := store.UpdateConnection(ctx, tx, c.OrgID, c.ID, update)
		if err != nil {
			return err
		}
		if _, _, err := startFirstSyncRuns(ctx, tx, v, updated); err != nil {
			return err
		}
		out = PortalSwitch{Connection: updated, DroppedLinks: dropped}
		return insertConnectionEvent(ctx, tx, v, ConnectionEventUpdated, updated, "")
	})
	if err != nil {
		return PortalSwitch{}, connectionConflict(fmt.Errorf("switching portals of connection %d: %w", id, err))
	}
	s.log.InfoContext(ctx, "desk portal switched", "org_id", v.OrgID, "connection_id", id,
		"desk_org_id", deskOrgID, "dropped_links", out.DroppedLinks)
	return out, nil
}

// reachablePortal finds deskOrgID among the portals the connection's desk
// credential reaches; a service key must administer it.
func (s *ConnectionService) reachablePortal(ctx context.Context, c store.Connection, deskOrgID string) (connector.Org, error) {
	if c.AuthMethod == ConnectionAuthServiceKey {
		key, err := s.openSecret(ctx, c, store.SecretServiceKey)
		if err != nil {
			return connector.Org{}, err
		}
		return s.pickPortal(ctx, c.DeskDC, ServiceKey{AdminEmail: deref(c.ServiceKeyEmail), Key: key}, deskOrgID)
	}
	token, err := s.openSecret(ctx, c, store.SecretDeskRefreshToken)
	if err != nil {
		return connector.Org{}, err
	}
	orgs, err := s.listOrgs(ctx, "deskOrgId", connector.Account{System: connector.Desk, DC: c.DeskDC, RefreshToken: token})
	if err != nil {
		return connector.Org{}, err
	}
	i := slices.IndexFunc(orgs, func(o connector.Org) bool { return o.ID == deskOrgID })
	if i < 0 {
		return connector.Org{}, &ConnectionInputError{Field: "deskOrgId", Reason: "the connection's desk account does not belong to this portal"}
	}
	return orgs[i], nil
}

// pickPortal finds deskOrgID among the portals the key administers.
func (s *ConnectionService) pickPortal(ctx context.Context, dc string, key ServiceKey, deskOrgID string) (connector.Org, error) {
	deskOrgID = strings.TrimSpace(deskOrgID)
	if deskOrgID == "" {
		return connector.Org{}, &ConnectionInputError{Field: "deskOrgId", Reason: "must not be empty"}
	}
	portals, err := s.serviceKeyPortals(ctx, dc, key)
	if err != nil {
		return connector.Org{}, err
	}
	i := slices.IndexFunc(portals, func(o connector.Org) bool { return o.ID == deskOrgID })
	if i < 0 {
		return connector.Org{}, &ConnectionInputError{Field: "deskOrgId", Reason: "the service key's admin does not administer this portal"}
	}
	return portals[i], nil
}

// checkServiceKey validates the shape of a service key input.
func checkServiceKey(k ServiceKey) (ServiceKey, error) {
	email, err := checkEmail("serviceKey.adminEmail", k.AdminEmail)
	if err != nil {
		return ServiceKey{}, err
	}
	key := strings.TrimSpace(k.Key)
	if key == "" || len(key) > 512 {
		return ServiceKey{}, &ConnectionInputError{Field: "serviceKey.key", Reason: "must be 1 to 512 characters"}
	}
	return ServiceKey{AdminEmail: email, Key: key}, nil
}

// checkPortalLocale validates a portal language (one of DeskLanguages) and
// an IANA time zone.
func checkPortalLocale(language, timeZone string) (string, string, error) {
	language = strings.ToLower(strings.TrimSpace(language))
	if !slices.Contains(DeskLanguages, language) {
		return "", "", &ConnectionInputError{Field: "language", Reason: "must be one of " + strings.Join(DeskLanguages, ", ")}
	}
	timeZone = strings.TrimSpace(timeZone)
	if timeZone == "" || timeZone == "Local" {
		return "", "", &ConnectionInputError{Field: "timeZone", Reason: "must be an IANA time zone such as Asia/Tokyo"}
	}
	if _, err := time.LoadLocation(timeZone); err != nil {
		return "", "", &ConnectionInputError{Field: "timeZone", Reason: fmt.Sprintf("unknown time zone %q (use an IANA name such as Asia/Tokyo)", timeZone)}
	}
	return language, timeZone, nil
}

func firstSet(s string, current *string) string {
	if s != "" || current == nil {
		return s
	}
	return *current
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
