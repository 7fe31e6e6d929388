package oauth_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
)

func post(t *testing.T, srv *httptest.Server, form url.Values) map[string]any {
	t.Helper()
	resp, err := http.Post(srv.URL+"/oauth/v2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token endpoint answered %d; Zoho answers 200 even for errors", resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRefreshGrantAndExpiry(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := oauth.NewRegistry(clk)
	reg.SetDC(oauth.DC{Name: "eu", APIDomain: "https://www.zohoapis.eu"})
	reg.AddClient("1000.CLIENT", "secret")
	refresh := reg.AddRefreshToken(oauth.Grant{ClientID: "1000.CLIENT", UserEmail: "a@b.c", Scopes: []string{"ZohoCRM.modules.ALL"}, DC: "eu"})
	eu := httptest.NewServer(reg.Handler("eu"))
	defer eu.Close()
	us := httptest.NewServer(reg.Handler("us"))
	defer us.Close()

	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"1000.CLIENT"}, "client_secret": {"secret"}, "refresh_token": {refresh}}
	got := post(t, eu, form)
	tok, _ := got["access_token"].(string)
	if tok == "" || got["api_domain"] != "https://www.zohoapis.eu" || got["expires_in"] != float64(3600) || got["refresh_token"] != nil {
		t.Fatalf("refresh response = %v", got)
	}
	if g, err := reg.Check("Zoho-oauthtoken "+tok, "eu"); err != nil || g.UserEmail != "a@b.c" {
		t.Fatalf("Check = %+v, %v", g, err)
	}
	if _, err := reg.Check("Bearer "+tok, "eu"); !errors.Is(err, oauth.ErrMissing) {
		t.Fatalf("Bearer scheme accepted: %v", err)
	}
	if _, err := reg.Check("Zoho-oauthtoken "+tok, "us"); !errors.Is(err, oauth.ErrInvalid) {
		t.Fatalf("token used on another DC: %v", err)
	}
	if got := post(t, us, form); got["error"] != "invalid_code" {
		t.Fatalf("refresh at the wrong DC = %v", got)
	}
	clk.Advance(time.Hour)
	if _, err := reg.Check("Zoho-oauthtoken "+tok, "eu"); !errors.Is(err, oauth.ErrExpired) {
		t.Fatalf("after an hour: %v", err)
	}
	for field, want := range map[string]string{"client_id": "invalid_client", "client_secret": "invalid_client_secret", "refresh_token": "invalid_code"} {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set(field, "wrong")
		if got := post(t, eu, bad); got["error"] != want || got["access_token"] != nil {
			t.Errorf("bad %s = %v, want error %s", field, got, want)
		}
	}
}

func TestAuthorizationCodeIsSingleUse(t *testing.T) {
	reg := oauth.NewRegistry(clock.Real{})
	reg.SetDC(oauth.DC{Name: "us", APIDomain: "https://www.zohoapis.com"})
	reg.AddClient("c", "s")
	code := reg.AddAuthCode(oauth.Grant{ClientID: "c", DC: "us"})
	srv := httptest.NewServer(reg.Handler("us"))
	defer srv.Close()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"c"}, "client_secret": {"s"}, "code": {code}}
	first := post(t, srv, form)
	if first["refresh_token"] == nil || first["access_token"] == nil {
		t.Fatalf("code exchange = %v", first)
	}
	if again := post(t, srv, form); again["error"] != "invalid_code" {
		t.Fatalf("second use of a code = %v", again)
	}
	// The query-string form that some clients use works too.
	refresh := first["refresh_token"].(string)
	resp, err := http.Post(srv.URL+"/oauth/v2/token?grant_type=refresh_token&client_id=c&client_secret=s&refresh_token="+url.QueryEscape(refresh), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if out["access_token"] == nil || reg.Issued() != 2 {
		t.Fatalf("query-string refresh = %v (issued %d)", out, reg.Issued())
	}
}
