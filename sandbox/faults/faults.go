// Package faults makes the sandbox vendors misbehave on demand, the way real
// vendors do: rate limits (429 in each vendor's own format, a concurrency cap
// and a rolling daily credit budget), server errors, slow answers, requests
// that hang until the client gives up, dropped connections and expired
// tokens, each at a configurable rate per endpoint. The random choices come
// from a seeded generator, so a failing run can be replayed.
package faults

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
)

// Kind names one way of misbehaving.
type Kind string

// The fault kinds.
const (
	RateLimit    Kind = "rate_limit"    // 429 in the vendor's format
	ServerError  Kind = "server_error"  // 500 in the vendor's format
	Slow         Kind = "slow"          // wait Delay, then answer normally
	Timeout      Kind = "timeout"       // hold the request until the client gives up (at most Delay)
	Drop         Kind = "drop"          // close the TCP connection without answering
	ExpiredToken Kind = "expired_token" // answer as if the access token had expired
)

var kinds = []Kind{RateLimit, ServerError, Slow, Timeout, Drop, ExpiredToken}

// Rule injects one kind of fault into a share of matching requests.
type Rule struct {
	Kind   Kind
	Rate   float64       // probability per matching request, 0 to 1
	Path   string        // path prefix the rule applies to; "" = every path
	Method string        // "" = every method
	Delay  time.Duration // Slow: the delay (default 2s); Timeout: the longest hold (default 60s)
}

func (r Rule) matches(req *http.Request) bool {
	return (r.Path == "" || strings.HasPrefix(req.URL.Path, r.Path)) &&
		(r.Method == "" || strings.EqualFold(r.Method, req.Method))
}

// Limits are the vendor's quotas. Zero means unlimited.
type Limits struct {
	MaxConcurrent int // requests in flight at once
	DailyCredits  int // requests in any rolling 24 hours
}

// Responder writes fault answers in one vendor's wire format.
type Responder interface {
	// RateLimited answers 429 with the vendor's headers; retryAfter is when
	// capacity returns (0 when unknown).
	RateLimited(w http.ResponseWriter, retryAfter time.Duration, remaining int)
	ServerError(w http.ResponseWriter)
	TokenExpired(w http.ResponseWriter)
}

// Stats counts what was injected, so tests can check the faults they asked
// for really happened.
type Stats map[Kind]int

// Injector holds the rules and quotas of one vendor.
type Injector struct {
	clock clock.Clock

	mu       sync.Mutex
	rng      *rand.Rand
	rules    []Rule
	limits   Limits
	inFlight int
	credits  []minuteCount // rolling 24 h window, oldest first
	stats    Stats
}

type minuteCount struct {
	minute int64
	n      int
}

// New returns an injector with no rules; seed makes its choices repeatable.
func New(seed uint64, clk clock.Clock) *Injector {
	return &Injector{clock: clk, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), stats: Stats{}}
}

// SetRules replaces the fault rules.
func (in *Injector) SetRules(rules ...Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append([]Rule(nil), rules...)
}

// SetLimits replaces the quotas.
func (in *Injector) SetLimits(l Limits) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.limits = l
}

// Stats returns a copy of the injected-fault counts.
func (in *Injector) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := Stats{}
	for k, v := range in.stats {
		out[k] = v
	}
	return out
}

// Wrap puts the injector in front of a vendor handler.
func (in *Injector) Wrap(resp Responder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		retryAfter, remaining, limited := in.admit()
		if limited {
			resp.RateLimited(w, retryAfter, remaining)
			return
		}
		defer in.release()
		rule, hit := in.pick(r)
		if !hit {
			next.ServeHTTP(w, r)
			return
		}
		switch rule.Kind {
		case RateLimit:
			resp.RateLimited(w, time.Second, 0)
		case ServerError:
			resp.ServerError(w)
		case ExpiredToken:
			resp.TokenExpired(w)
		case Slow:
			if !sleep(r, orDefault(rule.Delay, 2*time.Second)) {
				return
			}
			next.ServeHTTP(w, r)
		case Timeout:
			sleep(r, orDefault(rule.Delay, time.Minute))
			resp.ServerError(w) // only reached by a client more patient than the hold
		case Drop:
			dropConnection(w)
		}
	})
}

// admit applies the quotas; it counts the request against both.
func (in *Injector) admit() (retryAfter time.Duration, remaining int, limited bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.limits.MaxConcurrent > 0 && in.inFlight >= in.limits.MaxConcurrent {
		in.stats[RateLimit]++
		return time.Second, 0, true
	}
	if in.limits.DailyCredits > 0 {
		now := in.clock.Now()
		minute := now.Unix() / 60
		for len(in.credits) > 0 && in.credits[0].minute <= minute-24*60 {
			in.credits = in.credits[1:]
		}
		used := 0
		for _, c := range in.credits {
			used += c.n
		}
		if used >= in.limits.DailyCredits {
			in.stats[RateLimit]++
			oldest := time.Unix((in.credits[0].minute+24*60)*60, 0)
			return oldest.Sub(now), 0, true
		}
		if n := len(in.credits); n > 0 && in.credits[n-1].minute == minute {
			in.credits[n-1].n++
		} else {
			in.credits = append(in.credits, minuteCount{minute: minute, n: 1})
		}
		remaining = in.limits.DailyCredits - used - 1
	}
	in.inFlight++
	return 0, remaining, false
}

func (in *Injector) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.inFlight--
}

func (in *Injector) pick(r *http.Request) (Rule, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, rule := range in.rules {
		if rule.Rate > 0 && rule.matches(r) && in.rng.Float64() < rule.Rate {
			in.stats[rule.Kind]++
			return rule, true
		}
	}
	return Rule{}, false
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// sleep waits d or until the client goes away; it reports whether the
// client is still there.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection without a response
	}
	conn.Close()
}

// ParseRules reads rules from a flag value: a comma-separated list of
// kind:rate[:delay][@pathprefix], e.g.
// "rate_limit:0.05,server_error:0.05@/crm/v8/Contacts,slow:0.1:300ms".
func ParseRules(spec string) ([]Rule, error) {
	var out []Rule
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var rule Rule
		part, rule.Path, _ = strings.Cut(part, "@")
		fields := strings.Split(part, ":")
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("fault %q: want kind:rate[:delay][@path]", part)
		}
		rule.Kind = Kind(fields[0])
		if !validKind(rule.Kind) {
			return nil, fmt.Errorf("fault %q: unknown kind %q", part, fields[0])
		}
		rate, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || rate < 0 || rate > 1 {
			return nil, fmt.Errorf("fault %q: rate must be between 0 and 1", part)
		}
		rule.Rate = rate
		if len(fields) == 3 {
			if rule.Delay, err = time.ParseDuration(fields[2]); err != nil {
				return nil, fmt.Errorf("fault %q: %w", part, err)
			}
		}
		out = append(out, rule)
	}
	return out, nil
}

func validKind(k Kind) bool {
	for _, known := range kinds {
		if k == known {
			return true
		}
	}
	return false
}
