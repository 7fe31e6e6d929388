// Package zoho holds deskbridge's real HTTP connectors for Zoho CRM, Bigin,
// Zoho Desk and Zoho SalesIQ. They share one OAuth token source per
// connection (data-center aware, refreshed before expiry and once on a 401)
// and one HTTP core (a per-connection concurrency limit, retries with
// backoff that honour the vendors' rate-limit headers, and error
// classification into connector.Error), so every vendor quirk is handled in
// one place and the sync engine sees only the connector contract.
//
// The connectors reach the vendor exactly as configured in Settings; the
// sandbox fakes are reached the same way, through URL overrides that are
// also added to the host allow-list.
package zoho

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// DataCenter is one Zoho data center: the hosts a connection of that region
// talks to. Tokens work only on the data center that issued them.
type DataCenter struct {
	Name     string // "us", "eu", ...
	Accounts string // OAuth accounts server, e.g. https://accounts.zoho.com
	API      string // CRM and Bigin API domain, e.g. https://www.zohoapis.com
	Desk     string // Desk API host, e.g. https://desk.zoho.com
	SalesIQ  string // SalesIQ API host; "" where Zoho publishes none
}

// DataCenters is the table of reference/zoho-api.md §1.1. It is also the
// production host allow-list: a token response naming any other api_domain
// is refused, since we would send our access token there.
var DataCenters = map[string]DataCenter{
	"us": {"us", "https://accounts.zoho.com", "https://www.zohoapis.com", "https://desk.zoho.com", "https://salesiq.zoho.com"},
	"eu": {"eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu", "https://desk.zoho.eu", "https://salesiq.zoho.eu"},
	"in": {"in", "https://accounts.zoho.in", "https://www.zohoapis.in", "https://desk.zoho.in", "https://salesiq.zoho.in"},
	"au": {"au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au", "https://desk.zoho.com.au", "https://salesiq.zoho.com.au"},
	"jp": {"jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp", "https://desk.zoho.jp", "https://salesiq.zoho.jp"},
	"cn": {"cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn", "https://desk.zoho.com.cn", "https://salesiq.zoho.com.cn"},
	"ca": {"ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca", "https://desk.zohocloud.ca", ""},
	"sa": {"sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa", "https://desk.zoho.sa", ""},
	"uk": {"uk", "https://accounts.zoho.uk", "https://www.zohoapis.uk", "https://desk.zoho.uk", ""},
}

// Clock tells the time. The sandbox's clock.Manual satisfies it, so a test
// can share one clock between the fake and the connector and expire tokens
// without waiting.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Settings configure one connection. The factories of Register take a
// Settings (or *Settings).
type Settings struct {
	System connector.System // CRM, Bigin, Desk or SalesIQ
	DC     string           // data center key of DataCenters; default "us"

	// Overrides of the data center's hosts, for the sandbox or a CRM
	// sandbox org. Each one given is also an allowed host.
	AccountsURL string
	APIDomain   string // CRM/Bigin; normally taken from the token response
	DeskURL     string
	SalesIQURL  string
	// AllowedHosts are further hosts (or base URLs) the connection may send
	// its token to, beyond the data-center table.
	AllowedHosts []string

	ClientID     string
	ClientSecret string
	RefreshToken string
	// ServiceKey is a desk portal admin's service communication key (SPEC
	// A3), sent as "Zoho-zsckey <key>" with ServiceKeyEmail instead of an
	// OAuth access token. Desk only; no client or refresh token is needed.
	ServiceKey      string
	ServiceKeyEmail string

	// CRMOrgID picks one of several orgs the user reaches (SPEC A1); sent as
	// X-CRM-ORG. "" = the user's default org.
	CRMOrgID string
	// DeskOrgID is sent as the orgId header on every Desk call.
	DeskOrgID string
	// SalesIQScreen is the portal's screen name, the first path segment of
	// every SalesIQ call.
	SalesIQScreen string
	// SourceID is the UUID this integration's Desk webhooks ignore
	// (ignoreSourceId) and that our own Desk writes carry, so the desk does
	// not echo them back. "" = no echo suppression by the desk.
	SourceID string
	// CustomViews restricts ListChanged of a CRM module to a list view (SPEC
	// B3): module → cvid. See CRM.ListChanged for what changes then.
	CustomViews map[connector.Module]string

	MaxConcurrency int           // requests in flight per connection; default 8
	MaxAttempts    int           // tries per request; default 6
	MaxRetryTime   time.Duration // retry budget per request; default 2 min
	RequestTimeout time.Duration // per attempt; default 60 s
	// APIVersion overrides the CRM ("v8") or Bigin ("v2") version.
	APIVersion string

	HTTPClient *http.Client // default: a client with sane transport timeouts
	Logger     *slog.Logger // default: discard
	Clock      Clock        // default: wall clock
	// Sleep waits between retries; tests shorten it. Default: a timer that
	// ends early when ctx does.
	Sleep func(ctx context.Context, d time.Duration) error
}

// withDefaults fills zero values and checks what cannot be defaulted.
func (s Settings) withDefaults() (Settings, error) {
	if s.DC == "" {
		s.DC = "us"
	}
	s.DC = strings.ToLower(s.DC)
	if _, ok := DataCenters[s.DC]; !ok {
		return s, fmt.Errorf("checking settings: unknown data center %q", s.DC)
	}
	if s.ServiceKey != "" && s.System != connector.Desk {
		return s, fmt.Errorf("checking settings: a service key works for the desk only, not %s", s.System)
	}
	if s.ServiceKey == "" && (s.ClientID == "" || s.ClientSecret == "") {
		return s, fmt.Errorf("checking settings: client id and secret are required")
	}
	if s.MaxConcurrency <= 0 {
		s.MaxConcurrency = 8
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 6
	}
	if s.MaxRetryTime <= 0 {
		s.MaxRetryTime = 2 * time.Minute
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = 60 * time.Second
	}
	if s.HTTPClient == nil {
		s.HTTPClient = defaultHTTPClient()
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	if s.Sleep == nil {
		s.Sleep = sleepCtx
	}
	return s, nil
}

func (s Settings) dataCenter() DataCenter { return DataCenters[s.DC] }

// accountsURL is where tokens come from: the override or the DC's server.
func (s Settings) accountsURL() string {
	if s.AccountsURL != "" {
		return strings.TrimRight(s.AccountsURL, "/")
	}
	return s.dataCenter().Accounts
}

func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 90 * time.Second
	return &http.Client{Transport: tr}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hostPolicy is the allow-list of hosts a connection sends secrets to.
type hostPolicy struct {
	allowed map[string]bool // "scheme://host[:port]", lower case
}

func newHostPolicy(s Settings) *hostPolicy {
	p := &hostPolicy{allowed: map[string]bool{}}
	for _, dc := range DataCenters {
		for _, u := range []string{dc.Accounts, dc.API, dc.Desk, dc.SalesIQ} {
			p.add(u)
		}
		// CRM sandbox and developer orgs live on sibling API hosts.
		if rest, ok := strings.CutPrefix(dc.API, "https://www."); ok {
			p.add("https://sandbox." + rest)
			p.add("https://developer." + rest)
		}
	}
	for _, u := range []string{s.AccountsURL, s.APIDomain, s.DeskURL, s.SalesIQURL} {
		p.add(u)
	}
	for _, h := range s.AllowedHosts {
		if !strings.Contains(h, "://") {
			p.add("https://" + h)
			p.add("http://" + h)
			continue
		}
		p.add(h)
	}
	return p
}

func (p *hostPolicy) add(raw string) {
	if key, ok := originOf(raw); ok {
		p.allowed[key] = true
	}
}

// check returns the base URL (origin plus path, no trailing slash) if raw
// names an allowed host.
func (p *hostPolicy) check(raw string) (string, error) {
	key, ok := originOf(raw)
	if !ok || !p.allowed[key] {
		return "", fmt.Errorf("host of %q is not an allowed Zoho host", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func originOf(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// dcOfAPIDomain finds the data center whose API domain is apiDomain, so the
// Desk and SalesIQ hosts follow the token's region.
func dcOfAPIDomain(apiDomain string) (DataCenter, bool) {
	key, ok := originOf(apiDomain)
	if !ok {
		return DataCenter{}, false
	}
	for _, dc := range DataCenters {
		if k, _ := originOf(dc.API); k == key {
			return dc, true
		}
	}
	return DataCenter{}, false
}
