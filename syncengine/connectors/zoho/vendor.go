package zoho

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// VendorConfig configures a Vendor: deskbridge's OAuth client and where each
// data center lives.
type VendorConfig struct {
	ClientID     string
	ClientSecret string
	// Endpoints override the hosts of data centers (key: "us", "eu", ...),
	// for the sandbox or private endpoints. Every host named here is also
	// allowed to receive tokens.
	Endpoints  map[string]DataCenter
	HTTPClient *http.Client // nil = the connectors' default
	Logger     *slog.Logger
}

// Vendor is the connector.Vendor of Zoho: it builds CRM, Bigin, Desk and
// SalesIQ connectors for stored accounts.
type Vendor struct {
	cfg       VendorConfig
	endpoints map[string]DataCenter
	allowed   []string
}

var _ connector.Vendor = (*Vendor)(nil)

// ErrClientNotConfigured is returned when deskbridge has no Zoho OAuth client.
var ErrClientNotConfigured = errors.New("zoho oauth client is not configured (DESKBRIDGE_ZOHO_CLIENT_ID, DESKBRIDGE_ZOHO_CLIENT_SECRET)")

// NewVendor returns the Zoho vendor for cfg.
func NewVendor(cfg VendorConfig) *Vendor {
	v := &Vendor{cfg: cfg, endpoints: map[string]DataCenter{}}
	for dc, ep := range cfg.Endpoints {
		v.endpoints[strings.ToLower(dc)] = ep
		for _, u := range []string{ep.Accounts, ep.API, ep.Desk, ep.SalesIQ} {
			if u != "" {
				v.allowed = append(v.allowed, u)
			}
		}
	}
	return v
}

// KnownDC reports whether dc is a Zoho data center.
func (v *Vendor) KnownDC(dc string) bool {
	_, ok := DataCenters[strings.ToLower(dc)]
	return ok
}

// settings are the connector settings of an account. Interactive accounts
// get a short retry budget: a person waits for the answer.
func (v *Vendor) settings(a connector.Account) Settings {
	ep := v.endpoints[strings.ToLower(a.DC)]
	s := Settings{
		System: a.System, DC: a.DC,
		AccountsURL: ep.Accounts, APIDomain: ep.API, DeskURL: ep.Desk, SalesIQURL: ep.SalesIQ,
		AllowedHosts: slices.Clone(v.allowed),
		ClientID:     v.cfg.ClientID, ClientSecret: v.cfg.ClientSecret, RefreshToken: a.RefreshToken,
		ServiceKey: a.ServiceKey, ServiceKeyEmail: a.ServiceKeyEmail,
		CRMOrgID: a.CRMOrgID, DeskOrgID: a.DeskOrgID, SourceID: a.SourceID,
		HTTPClient: v.cfg.HTTPClient, Logger: v.cfg.Logger,
	}
	if a.Interactive {
		s.MaxAttempts, s.MaxRetryTime, s.RequestTimeout = 3, 20*time.Second, 15*time.Second
	}
	return s
}

// ExchangeCode trades an authorization code for a refresh token.
func (v *Vendor) ExchangeCode(ctx context.Context, sys connector.System, dc, code, redirectURI string) (string, error) {
	if v.cfg.ClientID == "" || v.cfg.ClientSecret == "" {
		return "", ErrClientNotConfigured
	}
	tok, err := ExchangeCode(ctx, v.settings(connector.Account{System: sys, DC: dc, Interactive: true}), "", code, redirectURI)
	if err != nil {
		return "", err
	}
	return tok.RefreshToken, nil
}

// consentScopes are what deskbridge asks a CRM or Bigin admin to grant:
// records and their metadata, notifications (change capture), users (who
// approves) and the org, and search (matching).
var consentScopes = map[connector.System][]string{
	connector.CRM: {"ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.notifications.ALL", "ZohoCRM.users.READ",
		"ZohoCRM.org.READ", "ZohoCRM.coql.READ", "ZohoSearch.securesearch.READ"},
	connector.Bigin: {"ZohoBigin.modules.ALL", "ZohoBigin.settings.ALL", "ZohoBigin.notifications.ALL", "ZohoBigin.users.ALL",
		"ZohoBigin.org.read", "ZohoSearch.securesearch.READ"},
}

// ConsentURL is Zoho's consent page for a CRM or Bigin admin on dc.
func (v *Vendor) ConsentURL(sys connector.System, dc, redirectURI, state string) (string, error) {
	scopes, ok := consentScopes[sys]
	if !ok {
		return "", fmt.Errorf("no consent page for %s", sys)
	}
	if v.cfg.ClientID == "" {
		return "", ErrClientNotConfigured
	}
	return AuthURL(v.settings(connector.Account{System: sys, DC: dc, Interactive: true}), scopes, redirectURI, state), nil
}

// Open builds the connector of an account.
func (v *Vendor) Open(a connector.Account) (connector.Connector, error) {
	if a.ServiceKey == "" && (v.cfg.ClientID == "" || v.cfg.ClientSecret == "") {
		return nil, ErrClientNotConfigured
	}
	return Factory(a.System)(v.settings(a))
}
