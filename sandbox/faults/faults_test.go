package faults_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/faults"
)

type responder struct{}

func (responder) RateLimited(w http.ResponseWriter, retryAfter time.Duration, _ int) {
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusTooManyRequests)
}
func (responder) ServerError(w http.ResponseWriter)  { w.WriteHeader(http.StatusInternalServerError) }
func (responder) TokenExpired(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) }

func serve(in *faults.Injector, h http.Handler) *httptest.Server {
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	}
	return httptest.NewServer(in.Wrap(responder{}, h))
}

func statuses(t *testing.T, url string, n int) map[int]int {
	t.Helper()
	out := map[int]int{}
	for range n {
		resp, err := http.Get(url)
		if err != nil {
			out[-1]++
			continue
		}
		resp.Body.Close()
		out[resp.StatusCode]++
	}
	return out
}

func TestRatesAreApproximatelyHonouredAndRepeatable(t *testing.T) {
	run := func() map[int]int {
		in := faults.New(42, clock.Real{})
		in.SetRules(faults.Rule{Kind: faults.ServerError, Rate: 0.3, Path: "/crm"})
		srv := serve(in, nil)
		defer srv.Close()
		got := statuses(t, srv.URL+"/crm/v8/Contacts", 500)
		if other := statuses(t, srv.URL+"/desk", 50); other[200] != 50 {
			t.Fatalf("rule leaked to another path: %v", other)
		}
		if in.Stats()[faults.ServerError] != got[500] {
			t.Fatalf("stats %v disagree with responses %v", in.Stats(), got)
		}
		return got
	}
	a, b := run(), run()
	if a[500] < 110 || a[500] > 190 {
		t.Fatalf("30%% of 500 requests failed %d times", a[500])
	}
	if a[500] != b[500] {
		t.Fatalf("same seed, different faults: %d vs %d", a[500], b[500])
	}
}

func TestConcurrencyCap(t *testing.T) {
	in := faults.New(1, clock.Real{})
	in.SetLimits(faults.Limits{MaxConcurrent: 2})
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := serve(in, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); statuses(t, srv.URL, 1) }()
	}
	<-entered
	<-entered
	if got := statuses(t, srv.URL, 1); got[429] != 1 {
		t.Fatalf("third concurrent request: %v, want 429", got)
	}
	close(release)
	wg.Wait()
	if got := statuses(t, srv.URL, 1); got[200] != 1 {
		t.Fatalf("after the others finished: %v, want 200", got)
	}
}

func TestDailyCreditsRollOver(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	in := faults.New(1, clk)
	in.SetLimits(faults.Limits{DailyCredits: 5})
	srv := serve(in, nil)
	defer srv.Close()
	if got := statuses(t, srv.URL, 7); got[200] != 5 || got[429] != 2 {
		t.Fatalf("budget of 5: %v", got)
	}
	clk.Advance(23 * time.Hour)
	if got := statuses(t, srv.URL, 1); got[429] != 1 {
		t.Fatalf("after 23h: %v, want still limited", got)
	}
	clk.Advance(time.Hour + time.Minute)
	if got := statuses(t, srv.URL, 1); got[200] != 1 {
		t.Fatalf("after 24h: %v, want a fresh budget", got)
	}
}

func TestDropAndSlow(t *testing.T) {
	in := faults.New(1, clock.Real{})
	in.SetRules(faults.Rule{Kind: faults.Drop, Rate: 1, Path: "/drop"}, faults.Rule{Kind: faults.Slow, Rate: 1, Path: "/slow", Delay: 50 * time.Millisecond})
	srv := serve(in, nil)
	defer srv.Close()
	if got := statuses(t, srv.URL+"/drop", 1); got[-1] != 1 {
		t.Fatalf("dropped connection: %v, want a transport error", got)
	}
	start := time.Now()
	if got := statuses(t, srv.URL+"/slow", 1); got[200] != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("slow: %v after %v", got, time.Since(start))
	}
}

func TestParseRules(t *testing.T) {
	rules, err := faults.ParseRules("rate_limit:0.05, server_error:0.1@/crm/v8/Contacts ,slow:0.2:300ms")
	if err != nil || len(rules) != 3 || rules[1].Path != "/crm/v8/Contacts" || rules[2].Delay != 300*time.Millisecond {
		t.Fatalf("ParseRules = %+v, %v", rules, err)
	}
	for _, bad := range []string{"nope:0.1", "slow:2", "slow", "slow:0.1:fast"} {
		if _, err := faults.ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q) accepted", bad)
		}
	}
}
