package zoho

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Token is an access token and what came with it.
type Token struct {
	AccessToken  string
	RefreshToken string // only from an authorization-code exchange
	APIDomain    string // checked against the allow-list
	Scope        string
	Expiry       time.Time
	// Scheme is the Authorization scheme: "Zoho-oauthtoken", or
	// "Zoho-zsckey" for a service key.
	Scheme string

	early time.Duration // refresh margin: five minutes, or half a short lifetime
}

// refreshEarly is how long before expiry a token is replaced, so a request
// never leaves with a token that dies on the way.
const refreshEarly = 5 * time.Minute

// The Authorization schemes: OAuth access tokens, and the service keys of
// SPEC A3, which carry their admin's email in serviceKeyEmailHeader.
const (
	oauthScheme           = "Zoho-oauthtoken"
	serviceKeyScheme      = "Zoho-zsckey"
	serviceKeyEmailHeader = "X-ZSC-Email"
)

// authErrorHold is how long a definite credential failure is remembered: a
// revoked refresh token is not worth asking about again at once (Zoho
// limits token requests per minute).
const authErrorHold = 30 * time.Second

// TokenSource hands out access tokens for one connection: cached until
// shortly before expiry, refreshed by a single request however many
// goroutines ask at once. Safe for concurrent use.
type TokenSource struct {
	accounts     string
	clientID     string
	clientSecret string
	refreshToken string
	http         *http.Client
	clock        Clock
	sleep        func(context.Context, time.Duration) error
	hosts        *hostPolicy
	log          *slog.Logger
	// static sources hold a service key: Token always returns it.
	static   bool
	keyEmail string

	mu        sync.Mutex
	tok       Token
	inflight  *refreshCall
	lastErr   error
	errUntil  time.Time
	refreshes int
}

type refreshCall struct {
	done chan struct{}
	tok  Token
	err  error
}

// NewTokenSource builds the token source of a connection from its settings.
func NewTokenSource(s Settings) (*TokenSource, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	return newTokenSource(s)
}

func newTokenSource(s Settings) (*TokenSource, error) {
	hosts := newHostPolicy(s)
	accounts, err := hosts.check(s.accountsURL())
	if err != nil {
		return nil, fmt.Errorf("checking accounts server: %w", err)
	}
	if s.ServiceKey != "" {
		// A service key does not expire and is never refreshed; the desk
		// answers a revoked one with 401 like a dead access token.
		return &TokenSource{hosts: hosts, static: true, clock: s.Clock, log: s.Logger,
			tok:      Token{AccessToken: s.ServiceKey, Scheme: serviceKeyScheme, Expiry: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
			keyEmail: s.ServiceKeyEmail}, nil
	}
	if s.RefreshToken == "" {
		return nil, errors.New("checking settings: a refresh token is required")
	}
	return &TokenSource{
		accounts: accounts, clientID: s.ClientID, clientSecret: s.ClientSecret, refreshToken: s.RefreshToken,
		http: s.HTTPClient, clock: s.Clock, sleep: s.Sleep, hosts: hosts,
		log: s.Logger.With("component", "zoho-oauth"),
	}, nil
}

// Token returns a valid access token, refreshing it first if it expires
// within five minutes.
func (ts *TokenSource) Token(ctx context.Context) (Token, error) {
	if ts.static {
		return ts.tok, nil
	}
	ts.mu.Lock()
	now := ts.clock.Now()
	if ts.tok.AccessToken != "" && now.Before(ts.tok.Expiry.Add(-ts.tok.early)) {
		tok := ts.tok
		ts.mu.Unlock()
		return tok, nil
	}
	if ts.lastErr != nil && now.Before(ts.errUntil) {
		err := ts.lastErr
		ts.mu.Unlock()
		return Token{}, err
	}
	c := ts.startRefreshLocked()
	ts.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return Token{}, fmt.Errorf("waiting for an access token: %w", ctx.Err())
	}
}

// Invalidate drops access, a token the API refused (401), so the next Token
// call refreshes. A token already replaced is left alone: N requests that
// fail together cause one refresh.
func (ts *TokenSource) Invalidate(access string) {
	if ts.static {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok.AccessToken == access {
		ts.tok = Token{}
	}
}

// Refreshes counts the refresh requests made, for logs and tests.
func (ts *TokenSource) Refreshes() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.refreshes
}

// startRefreshLocked joins the refresh in flight or starts one. The
// refresh runs detached from any one caller's context, so a caller that
// gives up does not fail the others waiting on it.
func (ts *TokenSource) startRefreshLocked() *refreshCall {
	if ts.inflight != nil {
		return ts.inflight
	}
	c := &refreshCall{done: make(chan struct{})}
	ts.inflight = c
	ts.refreshes++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tok, err := ts.refresh(ctx)
		ts.mu.Lock()
		if err == nil {
			ts.tok = tok
			ts.lastErr = nil
		} else if connector.ClassOf(err) == connector.Auth {
			ts.lastErr, ts.errUntil = err, ts.clock.Now().Add(authErrorHold)
		}
		ts.inflight = nil
		ts.mu.Unlock()
		c.tok, c.err = tok, err
		close(c.done)
	}()
	return c
}

// refresh runs the refresh-token grant, retrying transport failures a few
// times.
func (ts *TokenSource) refresh(ctx context.Context) (Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {ts.clientID},
		"client_secret": {ts.clientSecret},
		"refresh_token": {ts.refreshToken},
	}
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		var tok Token
		tok, err = postToken(ctx, ts.http, ts.clock, ts.hosts, ts.accounts, form)
		if err == nil {
			ts.log.Debug("access token refreshed", "api_domain", tok.APIDomain, "expires", tok.Expiry)
			return tok, nil
		}
		if !connector.Retryable(err) {
			break
		}
		wait := backoff(attempt, 500*time.Millisecond, 10*time.Second)
		if e := asError(err); e != nil && e.RetryAfter > wait {
			wait = e.RetryAfter
		}
		ts.log.Warn("token refresh failed, retrying", "attempt", attempt, "err", err)
		if serr := ts.sleep(ctx, wait); serr != nil {
			break
		}
	}
	return Token{}, fmt.Errorf("refreshing access token: %w", err)
}

// ExchangeCode runs the authorization-code grant of the connect flow (SPEC
// A1): the returned Token carries the refresh token to store. accountsURL
// is the accounts-server of the OAuth redirect ("" = the settings' data
// center); it receives the client secret, so it must be an allowed host.
func ExchangeCode(ctx context.Context, s Settings, accountsURL, code, redirectURI string) (Token, error) {
	s.RefreshToken = "-"
	s, err := s.withDefaults()
	if err != nil {
		return Token{}, err
	}
	hosts := newHostPolicy(s)
	if accountsURL == "" {
		accountsURL = s.accountsURL()
	}
	accounts, err := hosts.check(accountsURL)
	if err != nil {
		return Token{}, &connector.Error{Class: connector.Auth, Code: "FORBIDDEN_HOST",
			Message: fmt.Sprintf("exchanging authorization code: %v", err)}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {s.ClientID},
		"client_secret": {s.ClientSecret},
		"redirect_uri":  {redirectURI},
		"code":          {code},
	}
	tok, err := postToken(ctx, s.HTTPClient, s.Clock, hosts, accounts, form)
	if err != nil {
		return Token{}, fmt.Errorf("exchanging authorization code: %w", err)
	}
	if tok.RefreshToken == "" {
		return Token{}, &connector.Error{Class: connector.Auth, Code: "NO_REFRESH_TOKEN",
			Message: "exchanging authorization code: no refresh token returned (was access_type=offline asked?)"}
	}
	return tok, nil
}

// AuthURL is the consent page to send an admin to (SPEC A1). Scopes are
// comma-separated on that page.
func AuthURL(s Settings, scopes []string, redirectURI, state string) string {
	base := s.AccountsURL
	if base == "" {
		dc, ok := DataCenters[strings.ToLower(s.DC)]
		if !ok {
			dc = DataCenters["us"]
		}
		base = dc.Accounts
	}
	q := url.Values{
		"scope":         {strings.Join(scopes, ",")},
		"client_id":     {s.ClientID},
		"response_type": {"code"},
		"access_type":   {"offline"},
		"redirect_uri":  {redirectURI},
		"prompt":        {"consent"},
	}
	if state != "" {
		q.Set("state", state)
	}
	return strings.TrimRight(base, "/") + "/oauth/v2/auth?" + q.Encode()
}

// Revoke revokes the connection's refresh token (removing an integration,
// SPEC A6).
func (ts *TokenSource) Revoke(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		ts.accounts+"/oauth/v2/token/revoke?"+url.Values{"token": {ts.refreshToken}}.Encode(), nil)
	if err != nil {
		return fmt.Errorf("revoking refresh token: %w", err)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		return fmt.Errorf("revoking refresh token: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("revoking refresh token: %w", &connector.Error{Class: statusClass(resp.StatusCode),
			Status: resp.StatusCode, Message: "revoke refused"})
	}
	return nil
}

type tokenBody struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	APIDomain    string          `json:"api_domain"`
	Scope        string          `json:"scope"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	ExpiresInSec json.RawMessage `json:"expires_in_sec"`
	Error        string          `json:"error"`
	Description  string          `json:"error_description"`
}

// postToken POSTs a grant as a urlencoded form and reads the answer. Zoho
// reports bad credentials as HTTP 200 with an "error" key, so failure is
// judged by the body, not the status.
func postToken(ctx context.Context, hc *http.Client, clk Clock, hosts *hostPolicy, accounts string, form url.Values) (Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, accounts+"/oauth/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid, Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Token{}, &connector.Error{Class: connector.Transient, Message: "token request: " + err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, &connector.Error{Class: connector.Transient, Status: resp.StatusCode, Message: "reading token answer: " + err.Error()}
	}
	var b tokenBody
	jerr := json.Unmarshal(raw, &b)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || strings.EqualFold(b.Error, "Access Denied"):
		return Token{}, &connector.Error{Class: connector.RateLimited, Code: b.Error, Status: resp.StatusCode,
			RetryAfter: retryAfterHeader(resp.Header, clk.Now()), Message: firstNonEmpty(b.Description, "too many token requests"), Raw: raw}
	case resp.StatusCode >= 500:
		return Token{}, &connector.Error{Class: connector.Transient, Status: resp.StatusCode, Message: "accounts server error", Raw: raw}
	case b.Error != "":
		return Token{}, &connector.Error{Class: connector.Auth, Code: b.Error, Status: resp.StatusCode,
			Message: firstNonEmpty(b.Description, "the accounts server refused the credentials"), Raw: raw}
	case jerr != nil || b.AccessToken == "":
		return Token{}, &connector.Error{Class: connector.Auth, Code: "NO_ACCESS_TOKEN", Status: resp.StatusCode,
			Message: "the accounts server answered without an access token", Raw: raw}
	}
	tok := Token{AccessToken: b.AccessToken, RefreshToken: b.RefreshToken, Scope: b.Scope}
	if b.APIDomain != "" {
		if tok.APIDomain, err = hosts.check(b.APIDomain); err != nil {
			return Token{}, &connector.Error{Class: connector.Auth, Code: "FORBIDDEN_API_DOMAIN", Status: resp.StatusCode,
				Message: "token response names a host outside the allow-list: " + err.Error()}
		}
	}
	life := lifetime(b)
	tok.Expiry = clk.Now().Add(life)
	tok.early = min(refreshEarly, life/2)
	return tok, nil
}

// lifetime reads expires_in. When expires_in_sec is present (older
// accounts servers), expires_in is in milliseconds and expires_in_sec is
// the one to trust. Missing or odd values count as Zoho's one hour.
func lifetime(b tokenBody) time.Duration {
	if n, ok := jsonInt(b.ExpiresInSec); ok && n > 0 {
		return time.Duration(n) * time.Second
	}
	if n, ok := jsonInt(b.ExpiresIn); ok && n > 0 {
		if len(b.ExpiresInSec) > 0 {
			return time.Duration(n) * time.Millisecond
		}
		return time.Duration(n) * time.Second
	}
	return time.Hour
}

// jsonInt reads a JSON number or numeric string.
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f), true
	}
	return 0, false
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
