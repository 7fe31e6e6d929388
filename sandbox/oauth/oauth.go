// Package oauth is the sandbox's Zoho accounts server: the token endpoint
// (refresh-token and authorization-code grants, revoke) for several data
// centers, and the registry of live access tokens that every sandbox vendor
// checks. As the real service does, it answers bad credentials with HTTP 200
// and an "error" key, issues tokens valid for one hour on the issuing data
// center only, and never returns a new refresh token on refresh.
package oauth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
)

// Token check failures; vendors answer each in their own format.
var (
	ErrMissing = errors.New("no Zoho-oauthtoken authorization header")
	ErrInvalid = errors.New("invalid oauth token")
	ErrExpired = errors.New("oauth token expired")
)

// AccessTokenLifetime is how long an access token lives, as on Zoho.
const AccessTokenLifetime = time.Hour

// Grant is what a token stands for: who authorized which scopes on which
// data center, for which client.
type Grant struct {
	ClientID  string
	UserEmail string
	Scopes    []string
	DC        string // "us", "eu", "jp", ...
}

// DC is a data center: the API domain its tokens work on.
type DC struct {
	Name      string
	APIDomain string // e.g. https://www.zohoapis.com, or the sandbox's URL
}

type access struct {
	grant   Grant
	expires time.Time
}

// Registry issues and checks tokens. Safe for concurrent use.
type Registry struct {
	clock clock.Clock

	mu       sync.Mutex
	dcs      map[string]DC
	clients  map[string]string // client id -> secret
	refresh  map[string]Grant
	codes    map[string]Grant
	keys     map[string]Grant // desk service keys (SPEC A3)
	accesses map[string]access
	issued   int
}

// NewRegistry returns an empty registry on clk.
func NewRegistry(clk clock.Clock) *Registry {
	return &Registry{clock: clk, dcs: map[string]DC{}, clients: map[string]string{},
		refresh: map[string]Grant{}, codes: map[string]Grant{}, keys: map[string]Grant{}, accesses: map[string]access{}}
}

// SetDC registers a data center and the API domain its tokens name.
func (r *Registry) SetDC(dc DC) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dcs[dc.Name] = dc
}

// AddClient registers an OAuth client.
func (r *Registry) AddClient(id, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients[id] = secret
}

// AddRefreshToken stores a refresh token for g and returns it.
func (r *Registry) AddRefreshToken(g Grant) string {
	tok := newToken()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh[tok] = g
	return tok
}

// AddServiceKey issues a desk service communication key (ZSC key, SPEC A3)
// for g and returns it. It works with g.UserEmail only, never expires, and
// stops working when revoked.
func (r *Registry) AddServiceKey(g Grant) string {
	key := newToken()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[key] = g
	return key
}

// RevokeServiceKey makes a service key stop working.
func (r *Registry) RevokeServiceKey(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, key)
}

// CheckRequest validates a desk request's credentials: an OAuth access
// token (as Check), or "Zoho-zsckey <key>" with the key's admin email in
// X-ZSC-Email. The service-key form is modelled (no public reference
// documents it; reference/zoho-api.md marks it so).
func (r *Registry) CheckRequest(req *http.Request, dc string) (Grant, error) {
	header := req.Header.Get("Authorization")
	key, ok := strings.CutPrefix(header, "Zoho-zsckey ")
	if !ok {
		return r.Check(header, dc)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.keys[key]
	if !ok || key == "" || g.DC != dc || !strings.EqualFold(g.UserEmail, strings.TrimSpace(req.Header.Get("X-ZSC-Email"))) {
		return Grant{}, ErrInvalid
	}
	return g, nil
}

// AddAuthCode stores a one-time authorization code for g and returns it.
func (r *Registry) AddAuthCode(g Grant) string {
	code := newToken()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes[code] = g
	return code
}

// ExpireAccessTokens makes every issued access token expire now, as after
// an hour's wait.
func (r *Registry) ExpireAccessTokens() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	for k, a := range r.accesses {
		a.expires = now
		r.accesses[k] = a
	}
}

// Issued counts access tokens handed out, so tests can check that clients
// cache them.
func (r *Registry) Issued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.issued
}

// Check validates an Authorization header ("Zoho-oauthtoken <token>") for
// an API server of data center dc.
func (r *Registry) Check(header, dc string) (Grant, error) {
	tok, ok := strings.CutPrefix(header, "Zoho-oauthtoken ")
	if !ok || tok == "" {
		return Grant{}, ErrMissing
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.accesses[tok]
	if !ok || a.grant.DC != dc {
		return Grant{}, ErrInvalid
	}
	if !r.clock.Now().Before(a.expires) {
		return Grant{}, ErrExpired
	}
	return a.grant, nil
}

// Handler serves the accounts server of data center dc:
// POST /oauth/v2/token and POST /oauth/v2/token/revoke.
func (r *Registry) Handler(dc string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/v2/token", func(w http.ResponseWriter, req *http.Request) { r.token(w, req, dc) })
	mux.HandleFunc("GET /oauth/v2/auth", func(w http.ResponseWriter, req *http.Request) { r.consentPage(w, req) })
	mux.HandleFunc("POST /oauth/v2/auth", func(w http.ResponseWriter, req *http.Request) { r.consent(w, req, dc) })
	mux.HandleFunc("POST /oauth/v2/token/revoke", func(w http.ResponseWriter, req *http.Request) {
		tok := param(req, "token")
		r.mu.Lock()
		delete(r.refresh, tok)
		r.mu.Unlock()
		writeJSON(w, map[string]string{"status": "success"})
	})
	return mux
}

// param reads a value from the query string or the form body (multipart or
// urlencoded): Zoho's SDKs use both.
func param(req *http.Request, name string) string {
	if v := req.URL.Query().Get(name); v != "" {
		return v
	}
	if strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/form-data") {
		_ = req.ParseMultipartForm(1 << 20)
	} else {
		_ = req.ParseForm()
	}
	return req.PostFormValue(name)
}

func (r *Registry) token(w http.ResponseWriter, req *http.Request, dc string) {
	clientID, secret := param(req, "client_id"), param(req, "client_secret")
	r.mu.Lock()
	defer r.mu.Unlock()
	known, ok := r.clients[clientID]
	switch {
	case !ok:
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	case known != secret:
		writeJSON(w, map[string]string{"error": "invalid_client_secret"})
		return
	}
	var grant Grant
	var newRefresh string
	switch param(req, "grant_type") {
	case "refresh_token":
		g, ok := r.refresh[param(req, "refresh_token")]
		if !ok || g.ClientID != clientID || g.DC != dc {
			writeJSON(w, map[string]string{"error": "invalid_code"})
			return
		}
		grant = g
	case "authorization_code":
		code := param(req, "code")
		g, ok := r.codes[code]
		if !ok || g.ClientID != clientID || g.DC != dc {
			writeJSON(w, map[string]string{"error": "invalid_code"})
			return
		}
		delete(r.codes, code)
		grant = g
		newRefresh = newToken()
		r.refresh[newRefresh] = g
	default:
		writeJSON(w, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	tok := newToken()
	r.accesses[tok] = access{grant: grant, expires: r.clock.Now().Add(AccessTokenLifetime)}
	r.issued++
	body := map[string]any{
		"access_token": tok,
		"scope":        strings.Join(grant.Scopes, " "),
		"api_domain":   r.dcs[dc].APIDomain,
		"token_type":   "Bearer",
		"expires_in":   int(AccessTokenLifetime / time.Second),
	}
	if newRefresh != "" {
		body["refresh_token"] = newRefresh
	}
	writeJSON(w, body)
}

// newToken returns a token shaped like Zoho's: 1000.<32 hex>.<32 hex>.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "1000." + h[:32] + "." + h[32:]
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
