package zoho

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// accounts is a sandbox accounts server for the OAuth unit tests.
type accounts struct {
	reg     *oauth.Registry
	srv     *httptest.Server
	clock   *clock.Manual
	refresh string
}

func newAccounts(t *testing.T, apiDomain string) *accounts {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	reg := oauth.NewRegistry(clk)
	srv := httptest.NewServer(reg.Handler("us"))
	t.Cleanup(srv.Close)
	if apiDomain == "" {
		apiDomain = srv.URL // any allowed host; the tests here never call it
	}
	reg.SetDC(oauth.DC{Name: "us", APIDomain: apiDomain})
	reg.AddClient("1000.CLIENT", "secret")
	rt := reg.AddRefreshToken(oauth.Grant{ClientID: "1000.CLIENT", UserEmail: "admin@zylker.example", Scopes: []string{"ZohoCRM.modules.ALL"}, DC: "us"})
	return &accounts{reg: reg, srv: srv, clock: clk, refresh: rt}
}

func (a *accounts) settings() Settings {
	return Settings{System: connector.CRM, DC: "us", AccountsURL: a.srv.URL, ClientID: "1000.CLIENT", ClientSecret: "secret",
		RefreshToken: a.refresh, Clock: a.clock, Logger: testLogger(), Sleep: newSleeps().sleep}
}

func TestTokenCachedAndRefreshedOnce(t *testing.T) {
	a := newAccounts(t, "")
	ts, err := NewTokenSource(a.settings())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	toks := make([]string, 50)
	errs := make([]error, 50)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(context.Background())
			toks[i], errs[i] = tok.AccessToken, err
		}()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] || toks[0] == "" {
			t.Fatalf("goroutine %d got %q, %v; want the shared token %q", i, toks[i], errs[i], toks[0])
		}
	}
	if n := a.reg.Issued(); n != 1 {
		t.Fatalf("50 concurrent callers caused %d token requests, want 1", n)
	}
	if tok, _ := ts.Token(context.Background()); tok.APIDomain != a.srv.URL {
		t.Errorf("api domain %q, want %q from the token response", tok.APIDomain, a.srv.URL)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	a := newAccounts(t, "")
	ts, err := NewTokenSource(a.settings())
	if err != nil {
		t.Fatal(err)
	}
	first, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(54 * time.Minute) // six minutes left: still good
	if tok, _ := ts.Token(context.Background()); tok.AccessToken != first.AccessToken || a.reg.Issued() != 1 {
		t.Fatalf("token replaced too early (issued %d)", a.reg.Issued())
	}
	a.clock.Advance(2 * time.Minute) // four minutes left: inside the five-minute margin
	second, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || a.reg.Issued() != 2 {
		t.Fatalf("token not refreshed within five minutes of expiry (issued %d)", a.reg.Issued())
	}
}

func TestTokenInvalidateRefreshesOnce(t *testing.T) {
	a := newAccounts(t, "")
	ts, _ := NewTokenSource(a.settings())
	first, _ := ts.Token(context.Background())
	// Many requests fail with the same stale token at once: one refresh.
	for range 10 {
		ts.Invalidate(first.AccessToken)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			ts.Invalidate(first.AccessToken) // late 401s of the old token change nothing
			_ = tok
		}()
	}
	wg.Wait()
	if n := a.reg.Issued(); n != 2 {
		t.Fatalf("issued %d tokens, want 2", n)
	}
}

func TestTokenBadCredentialsAreAuth(t *testing.T) {
	a := newAccounts(t, "")
	for name, mutate := range map[string]func(*Settings){
		"wrong secret":          func(s *Settings) { s.ClientSecret = "nope" },
		"unknown client":        func(s *Settings) { s.ClientID = "1000.OTHER" },
		"revoked refresh token": func(s *Settings) { s.RefreshToken = "1000.revoked.token" },
	} {
		t.Run(name, func(t *testing.T) {
			s := a.settings()
			mutate(&s)
			ts, err := NewTokenSource(s)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token(context.Background())
			if connector.ClassOf(err) != connector.Auth {
				t.Fatalf("got %v (class %v), want an auth error", err, connector.ClassOf(err))
			}
			if e := asError(err); e == nil || e.Code == "" || len(e.Raw) == 0 {
				t.Fatalf("error lacks the vendor code and body: %#v", e)
			}
		})
	}
}

func TestForgedAPIDomainRefused(t *testing.T) {
	a := newAccounts(t, "https://www.zohoapis.evil.example")
	ts, _ := NewTokenSource(a.settings())
	_, err := ts.Token(context.Background())
	if e := asError(err); e == nil || e.Class != connector.Auth || e.Code != "FORBIDDEN_API_DOMAIN" {
		t.Fatalf("forged api_domain accepted or misclassified: %v", err)
	}
	// A real Zoho host is accepted.
	b := newAccounts(t, "https://www.zohoapis.eu")
	ts, _ = NewTokenSource(b.settings())
	if tok, err := ts.Token(context.Background()); err != nil || tok.APIDomain != "https://www.zohoapis.eu" {
		t.Fatalf("zoho host refused: %v", err)
	}
}

func TestAccountsServerMustBeAllowed(t *testing.T) {
	s := Settings{ClientID: "x", ClientSecret: "y", RefreshToken: "z", AccountsURL: "https://accounts.evil.example"}
	s.AllowedHosts = nil
	ts, err := NewTokenSource(s)
	if err != nil {
		t.Fatal(err) // an explicit override is allowed by configuration
	}
	_ = ts
	_, err = ExchangeCode(context.Background(), Settings{ClientID: "x", ClientSecret: "y"}, "https://accounts.evil.example", "code", "https://gw/cb")
	if connector.ClassOf(err) != connector.Auth {
		t.Fatalf("code exchange with an unknown accounts server: %v", err)
	}
}

func TestExchangeCode(t *testing.T) {
	a := newAccounts(t, "")
	code := a.reg.AddAuthCode(oauth.Grant{ClientID: "1000.CLIENT", UserEmail: "admin@zylker.example", DC: "us"})
	tok, err := ExchangeCode(context.Background(), a.settings(), a.srv.URL, code, "https://gw.example/oauth/callback")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatalf("exchange returned %+v", tok)
	}
	_, err = ExchangeCode(context.Background(), a.settings(), a.srv.URL, code, "https://gw.example/oauth/callback")
	if e := asError(err); e == nil || e.Class != connector.Auth || e.Code != "invalid_code" {
		t.Fatalf("reused code: %v", err)
	}
	u := AuthURL(Settings{ClientID: "1000.CLIENT", DC: "eu"}, []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"}, "https://gw/cb", "st")
	if !strings.HasPrefix(u, "https://accounts.zoho.eu/oauth/v2/auth?") || !strings.Contains(u, "access_type=offline") ||
		!strings.Contains(u, "ZohoCRM.modules.ALL%2CZohoCRM.settings.ALL") {
		t.Errorf("consent URL %s", u)
	}
}

func TestTokenLifetime(t *testing.T) {
	cases := []struct {
		body string
		want time.Duration
	}{
		{`{"expires_in":3600}`, time.Hour},
		{`{"expires_in":3600000,"expires_in_sec":3600}`, time.Hour},
		{`{"expires_in":"1800"}`, 30 * time.Minute},
		{`{}`, time.Hour},
		{`{"expires_in":-5}`, time.Hour},
	}
	for _, c := range cases {
		var b tokenBody
		if err := json.Unmarshal([]byte(c.body), &b); err != nil {
			t.Fatal(err)
		}
		if got := lifetime(b); got != c.want {
			t.Errorf("%s: lifetime %v, want %v", c.body, got, c.want)
		}
	}
}
