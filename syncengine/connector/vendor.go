package connector

import "context"

// Account is one vendor account a connector acts for: which system, where,
// with which credential, and which org inside it.
type Account struct {
	System System
	DC     string // data center key, e.g. "us"
	// RefreshToken is the OAuth credential (A1, A2, A4).
	RefreshToken string
	// ServiceKey is a desk portal admin's service communication key (A3),
	// used instead of OAuth; ServiceKeyEmail is the admin it belongs to.
	ServiceKey      string
	ServiceKeyEmail string
	CRMOrgID        string // picks one of several CRM orgs; "" = default
	DeskOrgID       string // the desk portal (orgId)
	// SourceID marks this integration's desk writes so its own desk
	// webhooks do not echo them.
	SourceID string
	// Interactive connectors answer someone who waits (checking
	// credentials while connecting): a short retry budget instead of the
	// long one of background sync.
	Interactive bool
}

// Vendor builds connectors for one vendor family and speaks its OAuth. The
// composition root hands the sync engine one, so the engine never names a
// concrete vendor package.
type Vendor interface {
	// KnownDC reports whether dc is one of the vendor's data centers.
	KnownDC(dc string) bool
	// ExchangeCode trades a single-use authorization code, issued for
	// redirectURI, for a refresh token.
	ExchangeCode(ctx context.Context, sys System, dc, code, redirectURI string) (string, error)
	// ConsentURL is the vendor's sign-in and consent page for sys on dc,
	// which sends the browser back to redirectURI with an authorization
	// code and state.
	ConsentURL(sys System, dc, redirectURI, state string) (string, error)
	// Open builds a connector for a.
	Open(a Account) (Connector, error)
}
