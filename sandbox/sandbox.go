package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// DefaultDCs are the data centers Start runs when Config.DCs is empty; the
// first holds the sample data.
var DefaultDCs = []string{"us", "eu", "jp"}

// Vendors name the fault injectors: one per vendor, shared by its servers
// in every data center.
var Vendors = []string{"accounts", "crm", "bigin", "desk", "salesiq"}

// Roles are the listeners of one data center, in port order. "api" serves
// CRM and Bigin together, as www.zohoapis.{dc} does.
var Roles = []string{"accounts", "api", "desk", "salesiq"}

// TokenProducts are the keys of Credentials.RefreshTokens[dc]; "all" carries
// every product's scopes in one grant.
var TokenProducts = []string{"crm", "bigin", "desk", "salesiq", "all"}

// Scopes each product's refresh token carries.
var Scopes = map[string][]string{
	"crm": {"ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.notifications.ALL", "ZohoCRM.users.READ",
		"ZohoCRM.org.READ", "ZohoCRM.coql.READ", "ZohoCRM.bulk.ALL", "ZohoSearch.securesearch.READ"},
	"bigin": {"ZohoBigin.modules.ALL", "ZohoBigin.settings.ALL", "ZohoBigin.notifications.ALL", "ZohoBigin.users.ALL",
		"ZohoBigin.org.READ", "ZohoSearch.securesearch.READ"},
	"desk": {"Desk.tickets.ALL", "Desk.contacts.ALL", "Desk.basic.ALL", "Desk.products.ALL", "Desk.search.READ",
		"Desk.articles.ALL", "Desk.settings.ALL", "Desk.events.ALL"},
	"salesiq": salesiq.AllScopes,
}

// Config sizes and shapes a sandbox.
type Config struct {
	Seed                       uint64
	People, Accounts, Products int // world size (seed.Options); all zero = seed.Demo
	// CreatedWithin spreads the records' creation over this long before
	// now (seed.Options.CreatedWithin); zero = two years.
	CreatedWithin time.Duration

	DCs    []string                 // data centers to run, default DefaultDCs; the first is seeded
	Faults map[string][]faults.Rule // per vendor (see Vendors)
	Limits map[string]faults.Limits // per vendor
	Clock  clock.Clock              // nil = real time
	Host   string                   // listen host, default 127.0.0.1
	Ports  map[string]int           // fixed ports per "dc/role" (see Roles); absent = a free port
	Log    *slog.Logger             // nil = discard
}

// DCEndpoints are one data center's base URLs, what a gateway configures.
type DCEndpoints struct {
	AccountsURL       string `json:"accounts_url"`
	APIDomain         string `json:"api_domain"` // CRM (/crm/v8) and Bigin (/bigin/v2)
	DeskURL           string `json:"desk_url"`
	SalesIQURL        string `json:"salesiq_url"`
	DeskOrgID         string `json:"desk_org_id"`
	SalesIQScreenName string `json:"salesiq_screen_name"`
}

// Credentials are what the gateway's configuration needs to reach the
// sandbox as the demo user.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	UserEmail    string `json:"user_email"`
	// RefreshTokens[dc][product]; a token works only at its own data
	// center's accounts URL.
	RefreshTokens map[string]map[string]string `json:"refresh_tokens"`
	// ServiceKeys[dc] is the desk service communication key (ZSC key, SPEC
	// A3) of UserEmail, an admin of every desk portal of that data center.
	ServiceKeys       map[string]string   `json:"service_keys"`
	Scopes            map[string][]string `json:"scopes"`
	DeskOrgID         string              `json:"desk_org_id"` // of the primary data center
	SalesIQScreenName string              `json:"salesiq_screen_name"`
}

// dcServers are one data center's fakes.
type dcServers struct {
	crm, bigin *crm.Server
	desk       *desk.Server
	salesiq    *salesiq.Server
}

// Sandbox is a running set of fakes. Close it when done.
type Sandbox struct {
	cfg       Config
	log       *slog.Logger
	registry  *oauth.Registry
	hooks     *hooks.Deliverer
	injectors map[string]*faults.Injector
	servers   map[string]*dcServers
	endpoints map[string]DCEndpoints
	creds     Credentials
	user      string // the demo user: the primary desk's owner

	https     []*http.Server
	serveErrs chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens on every (data center, role), seeds the primary data
// center from a generated world and serves until Close. ctx bounds the
// start only.
func Start(ctx context.Context, cfg Config) (*Sandbox, error) {
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	sb := &Sandbox{cfg: cfg, log: cfg.Log, injectors: map[string]*faults.Injector{},
		servers: map[string]*dcServers{}, endpoints: map[string]DCEndpoints{}}

	// Listen first: the token registry must name each data center's API
	// URL, and with free ports that is known only once bound.
	listeners := map[string]net.Listener{}
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	var lc net.ListenConfig
	for _, dc := range cfg.DCs {
		for _, role := range Roles {
			key := dc + "/" + role
			l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Ports[key])))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("start sandbox: listen for %s: %w", key, err)
			}
			listeners[key] = l
		}
	}
	hostPort := func(key string) string {
		port := listeners[key].Addr().(*net.TCPAddr).Port
		return net.JoinHostPort(advertisedHost(cfg.Host), strconv.Itoa(port))
	}
	urlOf := func(key string) string { return "http://" + hostPort(key) }

	sb.registry = oauth.NewRegistry(cfg.Clock)
	sb.hooks = hooks.New(cfg.Log.With("component", "webhooks"), 5)
	for _, v := range Vendors {
		in := faults.New(cfg.Seed^fnvHash(v), cfg.Clock)
		in.SetRules(cfg.Faults[v]...)
		in.SetLimits(cfg.Limits[v])
		sb.injectors[v] = in
	}

	start := time.Now()
	world := seed.Generate(seed.Options{Seed: cfg.Seed, People: cfg.People, Accounts: cfg.Accounts,
		Products: cfg.Products, Now: cfg.Clock.Now(), CreatedWithin: cfg.CreatedWithin})
	handlers := map[string]http.Handler{}
	for i, dc := range cfg.DCs {
		var w *seed.World
		if i == 0 {
			w = world // only the primary data center holds the demo org's data
		}
		apiDomain := urlOf(dc + "/api")
		sb.registry.SetDC(oauth.DC{Name: dc, APIDomain: apiDomain})
		log := cfg.Log.With("dc", dc)
		crmOpts := func(f crm.Flavor, vendor string) crm.Options {
			o := crm.Options{Flavor: f, DC: dc, Registry: sb.registry, Clock: cfg.Clock, Faults: sb.injectors[vendor],
				Hooks: sb.hooks, World: w, Seed: cfg.Seed, Log: log, RateLimit: cfg.Limits[vendor].DailyCredits}
			if !unspecified(cfg.Host) {
				// Answer only the host api_domain names, as Zoho answers
				// only www.zohoapis.{dc}.
				o.Hosts = []string{hostPort(dc + "/api")}
			}
			return o
		}
		srv := &dcServers{
			crm:   crm.New(crmOpts(crm.CRM, "crm")),
			bigin: crm.New(crmOpts(crm.Bigin, "bigin")),
			desk: desk.New(desk.Options{DC: dc, Registry: sb.registry, Clock: cfg.Clock, Faults: sb.injectors["desk"],
				Hooks: sb.hooks, World: w, Seed: cfg.Seed, Log: log}),
		}
		if i == 0 {
			sb.user = deskOwner(srv.desk)
		}
		// The SalesIQ portal belongs to the desk's owner, so SPEC A5's
		// "same account email" holds for the demo user.
		srv.salesiq = salesiq.New(salesiq.Options{DC: dc, Registry: sb.registry, Clock: cfg.Clock, Faults: sb.injectors["salesiq"],
			Hooks: sb.hooks, World: w, Seed: cfg.Seed, Log: log, AdminEmail: sb.user})
		sb.servers[dc] = srv

		api := http.NewServeMux()
		api.Handle("/crm/", srv.crm.Handler())
		api.Handle("/bigin/", srv.bigin.Handler())
		api.Handle("/", srv.crm.Handler()) // CRM answers unknown paths in its own format
		handlers[dc+"/accounts"] = sb.injectors["accounts"].Wrap(accountsResponder{}, sb.registry.Handler(dc))
		handlers[dc+"/api"] = api
		handlers[dc+"/desk"] = srv.desk.Handler()
		handlers[dc+"/salesiq"] = srv.salesiq.Handler()
		sb.endpoints[dc] = DCEndpoints{AccountsURL: urlOf(dc + "/accounts"), APIDomain: apiDomain,
			DeskURL: urlOf(dc + "/desk"), SalesIQURL: urlOf(dc + "/salesiq"),
			DeskOrgID: srv.desk.OrgID(), SalesIQScreenName: srv.salesiq.ScreenName()}
	}
	sb.creds = sb.issueCredentials()

	sb.serveErrs = make(chan error, len(listeners))
	for _, dc := range cfg.DCs {
		for _, role := range Roles {
			key := dc + "/" + role
			hs := &http.Server{Handler: handlers[key], ReadHeaderTimeout: 10 * time.Second,
				ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug)}
			sb.https = append(sb.https, hs)
			go func(l net.Listener) {
				if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
					sb.serveErrs <- fmt.Errorf("serve %s: %w", key, err)
				}
			}(listeners[key])
		}
	}
	cfg.Log.Info("sandbox started", "dcs", cfg.DCs, "people", len(world.People), "accounts", len(world.Accounts),
		"products", len(world.Products), "took", time.Since(start).Round(time.Millisecond))
	return sb, nil
}

// Close stops every listener, waiting briefly for requests in flight.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs := make([]error, len(s.https))
		var wg sync.WaitGroup
		for i, hs := range s.https {
			wg.Go(func() {
				if err := hs.Shutdown(ctx); err != nil {
					// Requests still running (a Timeout fault holds one
					// for a minute): cut them off.
					errs[i] = hs.Close()
				}
			})
		}
		wg.Wait()
		select {
		case err := <-s.serveErrs:
			errs = append(errs, err)
		default:
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("sandbox stopped")
	})
	return s.closeErr
}

// Endpoints returns each data center's URLs.
func (s *Sandbox) Endpoints() map[string]DCEndpoints {
	out := make(map[string]DCEndpoints, len(s.endpoints))
	for k, v := range s.endpoints {
		out[k] = v
	}
	return out
}

// Credentials returns the demo user's OAuth client and refresh tokens.
func (s *Sandbox) Credentials() Credentials {
	c := s.creds
	c.RefreshTokens = map[string]map[string]string{}
	for dc, byProduct := range s.creds.RefreshTokens {
		c.RefreshTokens[dc] = map[string]string{}
		for p, t := range byProduct {
			c.RefreshTokens[dc][p] = t
		}
	}
	c.Scopes = map[string][]string{}
	for p, sc := range s.creds.Scopes {
		c.Scopes[p] = slices.Clone(sc)
	}
	return c
}

// DCs returns the data centers, the primary first.
func (s *Sandbox) DCs() []string { return slices.Clone(s.cfg.DCs) }

// CRM returns the Zoho CRM fake of data center dc (nil if not running).
func (s *Sandbox) CRM(dc string) *crm.Server { return s.dc(dc).crm }

// Bigin returns the Bigin fake of data center dc.
func (s *Sandbox) Bigin(dc string) *crm.Server { return s.dc(dc).bigin }

// Desk returns the Zoho Desk fake of data center dc.
func (s *Sandbox) Desk(dc string) *desk.Server { return s.dc(dc).desk }

// SalesIQ returns the SalesIQ fake of data center dc.
func (s *Sandbox) SalesIQ(dc string) *salesiq.Server { return s.dc(dc).salesiq }

// Registry returns the token registry every vendor checks.
func (s *Sandbox) Registry() *oauth.Registry { return s.registry }

// Injector returns a vendor's fault injector (see Vendors), to change
// faults while running.
func (s *Sandbox) Injector(vendor string) *faults.Injector { return s.injectors[vendor] }

// Hooks returns the webhook deliverer all vendors share.
func (s *Sandbox) Hooks() *hooks.Deliverer { return s.hooks }

// deskOwner is the email of the desk portal's first administrator, which
// the desk fake documents as admin@<portal>.example.
func deskOwner(d *desk.Server) string {
	return "admin@" + d.PortalName() + ".example"
}

func (s *Sandbox) dc(dc string) *dcServers {
	if srv, ok := s.servers[dc]; ok {
		return srv
	}
	return &dcServers{}
}

// issueCredentials registers the demo OAuth client and one refresh token
// per data center and product.
func (s *Sandbox) issueCredentials() Credentials {
	id, secret := clientCredentials(s.cfg.Seed)
	s.registry.AddClient(id, secret)
	c := Credentials{ClientID: id, ClientSecret: secret, UserEmail: s.user,
		RefreshTokens: map[string]map[string]string{}, ServiceKeys: map[string]string{}, Scopes: map[string][]string{},
		DeskOrgID: s.endpoints[s.cfg.DCs[0]].DeskOrgID, SalesIQScreenName: s.endpoints[s.cfg.DCs[0]].SalesIQScreenName}
	var all []string
	for _, p := range TokenProducts {
		if p != "all" {
			c.Scopes[p] = slices.Clone(Scopes[p])
			all = append(all, Scopes[p]...)
		}
	}
	c.Scopes["all"] = all
	for _, dc := range s.cfg.DCs {
		c.ServiceKeys[dc] = s.registry.AddServiceKey(oauth.Grant{ClientID: id, UserEmail: s.user, Scopes: slices.Clone(Scopes["desk"]), DC: dc})
		c.RefreshTokens[dc] = map[string]string{}
		for _, p := range TokenProducts {
			c.RefreshTokens[dc][p] = s.registry.AddRefreshToken(oauth.Grant{ClientID: id, UserEmail: s.user,
				Scopes: slices.Clone(c.Scopes[p]), DC: dc})
		}
	}
	return c
}

// clientCredentials makes a Zoho-shaped client id ("1000." and 30
// upper-case characters) that stays the same for a seed, so a gateway
// configuration survives a restart; the secret is fresh each run.
func clientCredentials(seedValue uint64) (id, secret string) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := seed.RNG(seedValue, "oauth-client")
	b := make([]byte, 30)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	var raw [21]byte
	_, _ = rand.Read(raw[:])
	return "1000." + string(b), hex.EncodeToString(raw[:])
}

func withDefaults(cfg Config) Config {
	if len(cfg.DCs) == 0 {
		cfg.DCs = slices.Clone(DefaultDCs)
	}
	if cfg.People == 0 && cfg.Accounts == 0 && cfg.Products == 0 {
		demo := seed.Demo(time.Time{})
		cfg.People, cfg.Accounts, cfg.Products = demo.People, demo.Accounts, demo.Products
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func validate(cfg Config) error {
	seen := map[string]bool{}
	for _, dc := range cfg.DCs {
		if dc == "" || seen[dc] {
			return fmt.Errorf("data centers %q: each must be named once", cfg.DCs)
		}
		seen[dc] = true
	}
	for v := range cfg.Faults {
		if !slices.Contains(Vendors, v) {
			return fmt.Errorf("faults for unknown vendor %q (want one of %v)", v, Vendors)
		}
	}
	for v := range cfg.Limits {
		if !slices.Contains(Vendors, v) {
			return fmt.Errorf("limits for unknown vendor %q (want one of %v)", v, Vendors)
		}
	}
	if cfg.People < 0 || cfg.Accounts < 0 || cfg.Products < 0 {
		return errors.New("world sizes must not be negative")
	}
	return nil
}

// advertisedHost is the host URLs name: a wildcard listen address is not
// one a client can dial.
func advertisedHost(host string) string {
	if unspecified(host) {
		return "127.0.0.1"
	}
	return host
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func fnvHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// accountsResponder answers injected faults as accounts.zoho.* does.
type accountsResponder struct{}

// RateLimited answers with the accounts server's throttling error: HTTP
// 400 "Access Denied" (what Zoho returns to too many token requests), plus
// Retry-After, which the real server does not send.
func (accountsResponder) RateLimited(w http.ResponseWriter, retryAfter time.Duration, _ int) {
	secs := max(int((retryAfter+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusBadRequest, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time."}`)
}

// ServerError answers 500 with an "error" key, like the token endpoint's
// other failures.
func (accountsResponder) ServerError(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, `{"error":"internal_error"}`)
}

// TokenExpired has no meaning for the token endpoint; it answers as for a
// refresh token that is no longer valid.
func (accountsResponder) TokenExpired(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, `{"error":"invalid_code"}`)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}
