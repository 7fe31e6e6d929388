package zoho

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

func TestRetryAfterHonoured(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	for _, sys := range []connector.System{connector.CRM, connector.Desk, connector.SalesIQ} {
		t.Run(string(sys), func(t *testing.T) {
			vendor := product(sys)
			sb.Injector(vendor).SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 1})
			defer sb.Injector(vendor).SetRules()
			sl := newSleeps()
			s := settingsFor(sb, sys, sl)
			s.MaxAttempts = 3
			conn, err := Factory(sys)(s)
			if err != nil {
				t.Fatal(err)
			}
			m := map[connector.System]connector.Module{connector.CRM: "Contacts", connector.Desk: "contacts", connector.SalesIQ: ArticlesModule}[sys]
			_, err = conn.ListChanged(ctxT(t), m, "", 10)
			e := asError(err)
			if e == nil || e.Class != connector.RateLimited || e.Status != http.StatusTooManyRequests || e.RetryAfter < time.Second || len(e.Raw) == 0 {
				t.Fatalf("got %#v, want a rate-limit error carrying Retry-After and the body", err)
			}
			waits := sl.all()
			if len(waits) != 2 {
				t.Fatalf("waited %d times for 3 attempts: %v", len(waits), waits)
			}
			for _, w := range waits {
				if w < time.Second {
					t.Errorf("waited %v, less than the 1 s Retry-After", w)
				}
			}
			// Half the requests limited: the connector gets through.
			sb.Injector(vendor).SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 0.5})
			s.MaxAttempts = 12
			conn, _ = Factory(sys)(s)
			if _, err := conn.ListChanged(ctxT(t), m, "", 10); err != nil {
				t.Fatalf("with half the requests limited: %v", err)
			}
		})
	}
}

func TestBackoffOnTransientFailures(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	for _, rule := range []faults.Rule{
		{Kind: faults.ServerError, Rate: 1},
		{Kind: faults.Drop, Rate: 1},
		{Kind: faults.Timeout, Rate: 1, Delay: 5 * time.Second},
	} {
		t.Run(string(rule.Kind), func(t *testing.T) {
			sb.Injector("crm").SetRules(rule)
			defer sb.Injector("crm").SetRules()
			sl := newSleeps()
			s := settingsFor(sb, connector.CRM, sl)
			s.MaxAttempts, s.RequestTimeout = 4, 200*time.Millisecond
			conn, _ := NewCRM(s)
			_, err := conn.Get(ctxT(t), "Contacts", sb.CRM("us").IDs("Contacts")[0])
			if connector.ClassOf(err) != connector.Transient {
				t.Fatalf("got %v, want a transient error", err)
			}
			if rule.Kind == faults.ServerError {
				if e := asError(err); e.Code != "INTERNAL_ERROR" || e.Status != 500 {
					t.Errorf("vendor code and status lost: %#v", e)
				}
			}
			waits := sl.all()
			if len(waits) != 3 {
				t.Fatalf("%d waits for 4 attempts", len(waits))
			}
			// Exponential with jitter in [d/2, d]: each ceiling doubles.
			for i, w := range waits {
				ceil := 250 * time.Millisecond << i
				if w < ceil/2 || w > ceil {
					t.Errorf("wait %d = %v, want within [%v, %v]", i, w, ceil/2, ceil)
				}
			}
			// Back to normal: the same call succeeds through sporadic faults.
			rule.Rate = 0.3
			sb.Injector("crm").SetRules(rule)
			s.MaxAttempts = 12
			conn, _ = NewCRM(s)
			if _, err := conn.Get(ctxT(t), "Contacts", sb.CRM("us").IDs("Contacts")[0]); err != nil {
				t.Fatalf("with 30%% %s: %v", rule.Kind, err)
			}
		})
	}
}

func TestRefreshOn401(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	for _, sys := range []connector.System{connector.CRM, connector.Desk, connector.SalesIQ} {
		t.Run(string(sys), func(t *testing.T) {
			conn, _ := Factory(sys)(settingsFor(sb, sys, newSleeps()))
			m := map[connector.System]connector.Module{connector.CRM: "Contacts", connector.Desk: "contacts", connector.SalesIQ: ArticlesModule}[sys]
			if _, err := conn.ListChanged(ctxT(t), m, "", 5); err != nil {
				t.Fatal(err)
			}
			before := sb.Registry().Issued()
			sb.Registry().ExpireAccessTokens() // revoked early, as Zoho may
			if _, err := conn.ListChanged(ctxT(t), m, "", 5); err != nil {
				t.Fatalf("after the token was refused: %v", err)
			}
			if n := sb.Registry().Issued() - before; n != 1 {
				t.Fatalf("%d refreshes after one 401, want 1", n)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	ctx := ctxT(t)
	crmConn, _ := NewCRM(settingsFor(sb, connector.CRM, nil))
	deskConn, _ := NewDesk(settingsFor(sb, connector.Desk, nil))
	siqConn, _ := NewSalesIQ(settingsFor(sb, connector.SalesIQ, nil))
	wrongOrg := settingsFor(sb, connector.Desk, nil)
	wrongOrg.DeskOrgID = "123456789"
	deskWrongOrg, _ := NewDesk(wrongOrg)
	wrongScreen := settingsFor(sb, connector.SalesIQ, nil)
	wrongScreen.SalesIQScreen = "nobody"
	siqWrongScreen, _ := NewSalesIQ(wrongScreen)
	deskTokenForCRM := settingsFor(sb, connector.CRM, nil)
	deskTokenForCRM.RefreshToken = sb.Credentials().RefreshTokens["us"]["desk"]
	crmNoScope, _ := NewCRM(deskTokenForCRM)

	cases := []struct {
		name   string
		call   func() error
		class  connector.Class
		reason connector.Reason
		code   string
	}{
		{"crm unknown id", func() error { _, err := crmConn.Get(ctx, "Contacts", "1234567890123456789"); return err },
			connector.Permanent, connector.ReasonNotFound, "INVALID_DATA"},
		{"crm unknown module", func() error { _, err := crmConn.Fields(ctx, "Nope"); return err },
			connector.Permanent, connector.ReasonParamInvalid, "INVALID_MODULE"},
		{"crm scope missing", func() error { _, err := crmNoScope.Fields(ctx, "Contacts"); return err },
			connector.Auth, "", "OAUTH_SCOPE_MISMATCH"},
		{"desk unknown id", func() error { _, err := deskConn.Get(ctx, "contacts", "1234567890123456"); return err },
			connector.Permanent, connector.ReasonNotFound, ""},
		{"desk wrong org", func() error { _, err := deskWrongOrg.Fields(ctx, "contacts"); return err },
			connector.Auth, "", "OAUTH_ORG_MISMATCH"},
		{"salesiq unknown article", func() error { _, err := siqConn.Get(ctx, ArticlesModule, "123456789012345"); return err },
			connector.Permanent, connector.ReasonNotFound, "1012"},
		{"salesiq wrong screen", func() error { _, err := siqWrongScreen.Departments(ctx); return err },
			connector.Permanent, connector.ReasonParamInvalid, "1005"},
		{"salesiq missing title", func() error {
			res, err := siqConn.Write(ctx, ArticlesModule, []connector.Write{{Op: connector.Create, Fields: map[string]any{"content": "x"}}})
			if err != nil {
				return err
			}
			return res[0].Err
		}, connector.Permanent, connector.ReasonMandatoryMissing, "1010"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			e := asError(err)
			if e == nil {
				t.Fatalf("no classified error: %v", err)
			}
			if e.Class != c.class || (c.reason != "" && e.Reason != c.reason) || (c.code != "" && e.Code != c.code) {
				t.Fatalf("got class %v reason %q code %q (%v), want %v %q %q", e.Class, e.Reason, e.Code, err, c.class, c.reason, c.code)
			}
		})
	}
}

// lossyProxy forwards requests to the sandbox but, for the first matching
// POST, throws the answer away and cuts the connection: the vendor did the
// work and we never hear of it, the case a retry must not duplicate.
func lossyProxy(t *testing.T, target string, match func(*http.Request) bool) (string, *atomic.Int32) {
	u, _ := url.Parse(target)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = u.Host }}
	var lost atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r) && lost.Add(1) == 1 {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the vendor processes it...
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // ...and the answer never arrives
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &lost
}

func TestCreateNotRepeatedWhenAnswerLost(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	ep := sb.Endpoints()["us"]
	for _, sys := range []connector.System{connector.CRM, connector.Desk} {
		t.Run(string(sys), func(t *testing.T) {
			s := settingsFor(sb, sys, newSleeps())
			tag := "Lost" + strings.ToUpper(string(sys[:3]))
			var fields func(i int) map[string]any
			var count func() int
			var lost *atomic.Int32
			if sys == connector.CRM {
				var proxy string
				proxy, lost = lossyProxy(t, ep.APIDomain, func(r *http.Request) bool {
					return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Contacts")
				})
				// Tokens name the proxy as the API domain from now on.
				sb.Registry().SetDC(oauth.DC{Name: "us", APIDomain: proxy})
				defer sb.Registry().SetDC(oauth.DC{Name: "us", APIDomain: ep.APIDomain})
				s.AllowedHosts = []string{proxy}
				fields = func(i int) map[string]any {
					return map[string]any{"Last_Name": tag, "First_Name": "N" + string(rune('a'+i))}
				}
				count = func() int { return crmSide{sb.CRM("us")}.countWhere("Contacts", "Last_Name", tag) }
			} else {
				var proxy string
				proxy, lost = lossyProxy(t, ep.DeskURL, func(r *http.Request) bool {
					return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/contacts")
				})
				s.DeskURL = proxy
				fields = func(i int) map[string]any {
					return map[string]any{"lastName": tag, "firstName": "N" + string(rune('a'+i))}
				}
				count = func() int { return deskCase().tagged(sb, tag) }
			}
			conn, err := Factory(sys)(s)
			if err != nil {
				t.Fatal(err)
			}
			var ws []connector.Write
			for i := range 3 {
				ws = append(ws, connector.Write{Op: connector.Create, Fields: fields(i)}) // no unique key at all
			}
			res, err := conn.Write(ctxT(t), connector.Module(map[bool]string{true: "Contacts", false: "contacts"}[sys == connector.CRM]), ws)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Err != nil || r.ID == "" || !r.Created {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
			if lost.Load() < 1 {
				t.Fatalf("the proxy saw %d creates: the lost-answer path was not taken", lost.Load())
			}
			if n := count(); n != 3 {
				t.Fatalf("the vendor holds %d records for 3 creates whose first answer was lost", n)
			}
		})
	}
}

func TestCursorRejectsForeignInput(t *testing.T) {
	for _, cur := range []connector.Cursor{"garbage", "zc1.!!!", "zc1." + "eyJ2Ijo5fQ", startCursor("Accounts", time.Time{})} {
		if _, err := decodeCursor(cur, "Contacts"); connector.ClassOf(err) != connector.Permanent {
			t.Errorf("cursor %q accepted: %v", cur, err)
		}
	}
	if _, err := decodeCursor(startCursor("Contacts", time.Now()), "Contacts"); err != nil {
		t.Error(err)
	}
}
