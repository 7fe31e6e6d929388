package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// maxBody caps what is read from one answer: a CRM page of 200 records
// with 50 fields is well under a megabyte.
const maxBody = 64 << 20

// client is the HTTP core every vendor connector shares: token handling,
// the per-connection concurrency limit, retries and error classification.
//
// The retry rule, which is what keeps a write from happening twice:
//
//   - A request that provably never reached the vendor is always retried:
//     the connection failed before the request was fully written.
//   - A request the vendor refused before doing anything is always retried:
//     401 for a stale token (once, after a refresh), 429 (after Retry-After
//     or the rate-limit reset) and 503.
//   - Anything else that fails without a definite answer (a timeout or a
//     dropped connection after the request was sent, a 500/502/504) is
//     retried only when the request is idempotent: reads, updates by id,
//     deletes, upserts keyed on a duplicate check. A non-idempotent create
//     returns an *outcomeUnknown error instead, and the connector decides:
//     it looks the records up before sending them again (see reconcile in
//     crm.go and desk.go).
type client struct {
	system   connector.System
	http     *http.Client
	tokens   *TokenSource
	sem      chan struct{}
	clock    Clock
	sleep    func(context.Context, time.Duration) error
	log      *slog.Logger
	attempts int
	budget   time.Duration
	timeout  time.Duration

	// Vendor hooks.
	base     func(tok Token) (string, error) // base URL of requests
	decorate func(h http.Header)             // vendor headers (orgId, X-CRM-ORG)
	// refuse, when set, fails every call before it leaves: a desk connector
	// built without a portal can list portals and nothing else.
	refuse   error
	classify func(status int, h http.Header, body []byte, now time.Time) *vendorError // nil = success
}

// vendorError is a classified failure plus what the core must know to
// retry it.
type vendorError struct {
	err          *connector.Error
	tokenExpired bool // 401 for a stale token: refresh once and retry
	safe         bool // refused before any processing (429, 503): retry even a create
}

// request is one API call.
type request struct {
	method     string
	path       string // appended to the base URL
	query      url.Values
	body       any // JSON-encoded; []byte is sent as is
	header     http.Header
	idempotent bool
	// allow accepts an error status whose body the caller reads itself
	// (CRM's all-failed batches: 400 with a data array).
	allow  func(status int, body []byte) bool
	action string // for error messages: "listing Contacts"
}

type response struct {
	status int
	header http.Header
	body   []byte
	// replayed is set when an earlier attempt of this request may have been
	// applied (an idempotent request repeated after a timeout, a dropped
	// connection or a 5xx): a delete may then find its record gone.
	replayed bool
}

// outcomeUnknown reports a non-idempotent request that may or may not have
// been applied: the vendor got it, and no definite answer came back.
type outcomeUnknown struct {
	err *connector.Error
}

func (o *outcomeUnknown) Error() string { return "outcome unknown: " + o.err.Error() }
func (o *outcomeUnknown) Unwrap() error { return o.err }

func isOutcomeUnknown(err error) bool {
	var o *outcomeUnknown
	return errors.As(err, &o)
}

func newClient(s Settings, tokens *TokenSource) *client {
	return &client{
		system: s.System, http: s.HTTPClient, tokens: tokens, sem: make(chan struct{}, s.MaxConcurrency),
		clock: s.Clock, sleep: s.Sleep, log: s.Logger.With("system", string(s.System)),
		attempts: s.MaxAttempts, budget: s.MaxRetryTime, timeout: s.RequestTimeout,
	}
}

// do sends r, retrying as the rule above allows, and returns a 2xx answer
// (or one r.allow accepts). Errors are *connector.Error, possibly wrapped
// in *outcomeUnknown.
func (c *client) do(ctx context.Context, r request) (*response, error) {
	if c.refuse != nil {
		return nil, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
			Message: fmt.Sprintf("%s: %v", r.action, c.refuse)}
	}
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			return nil, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
				Message: fmt.Sprintf("%s: encoding request: %v", r.action, err)}
		}
	}
	start := c.clock.Now()
	refreshed, replayed := false, false
	var last *connector.Error
	for attempt := 1; ; attempt++ {
		resp, verr, wrote := c.once(ctx, r, body)
		if verr == nil {
			resp.replayed = replayed
			return resp, nil
		}
		if wrote && !verr.safe && !verr.tokenExpired {
			replayed = true
		}
		last = verr.err
		if ctx.Err() != nil {
			return nil, ctxError(ctx, r.action)
		}
		if verr.tokenExpired && !refreshed {
			refreshed = true // one refresh per request; a second 401 is an answer
			continue
		}
		if verr.tokenExpired {
			last.Class = connector.Auth
			return nil, last
		}
		if !connector.Retryable(last) {
			return nil, last
		}
		// A request that may have been processed is only repeated when
		// repeating it is harmless.
		if wrote && !verr.safe && !r.idempotent {
			return nil, &outcomeUnknown{err: last}
		}
		wait := backoff(attempt, 250*time.Millisecond, 20*time.Second)
		if last.RetryAfter > wait {
			wait = last.RetryAfter
		}
		elapsed := c.clock.Now().Sub(start)
		if attempt >= c.attempts || elapsed+wait > c.budget {
			if last.RetryAfter == 0 && last.Class == connector.RateLimited {
				last.RetryAfter = wait
			}
			return nil, last
		}
		c.log.Debug("retrying request", "action", r.action, "attempt", attempt, "wait", wait,
			"class", last.Class.String(), "code", last.Code, "status", last.Status)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, ctxError(ctx, r.action)
		}
	}
}

// once makes one attempt. wrote reports whether the request was fully
// written to the connection, i.e. whether the vendor may have acted on it.
func (c *client) once(ctx context.Context, r request, body []byte) (*response, *vendorError, bool) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &vendorError{err: &connector.Error{Class: connector.Transient, Message: ctx.Err().Error()}}, false
	}
	defer func() { <-c.sem }()

	tok, err := c.tokens.Token(ctx)
	if err != nil {
		e := asError(err)
		if e == nil {
			e = &connector.Error{Class: connector.Transient, Message: err.Error()}
		}
		return nil, &vendorError{err: e, safe: true}, false
	}
	base, err := c.base(tok)
	if err != nil {
		return nil, &vendorError{err: &connector.Error{Class: connector.Auth, Code: "FORBIDDEN_HOST", Message: err.Error()}}, false
	}
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, u, rd)
	if err != nil {
		return nil, &vendorError{err: &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
			Message: fmt.Sprintf("%s: building request: %v", r.action, err)}}, false
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if tok.Scheme == serviceKeyScheme {
		req.Header.Set("Authorization", serviceKeyScheme+" "+tok.AccessToken)
		req.Header.Set(serviceKeyEmailHeader, c.tokens.keyEmail)
	} else {
		req.Header.Set("Authorization", oauthScheme+" "+tok.AccessToken)
	}
	if c.decorate != nil {
		c.decorate(req.Header)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &vendorError{err: &connector.Error{Class: connector.Transient,
			Message: fmt.Sprintf("%s: %v", r.action, err)}}, wrote.Load()
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, &vendorError{err: &connector.Error{Class: connector.Transient, Status: resp.StatusCode,
			Message: fmt.Sprintf("%s: reading answer: %v", r.action, err)}}, true
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: raw}
	if r.allow != nil && r.allow(resp.StatusCode, raw) {
		return out, nil, true
	}
	if verr := c.classify(resp.StatusCode, resp.Header, raw, c.clock.Now()); verr != nil {
		if verr.tokenExpired {
			c.tokens.Invalidate(tok.AccessToken)
		}
		if verr.err.Message == "" {
			verr.err.Message = r.action
		} else {
			verr.err.Message = r.action + ": " + verr.err.Message
		}
		return nil, verr, true
	}
	return out, nil, true
}

// backoff is exponential with jitter: a random wait in [d/2, d] where d
// doubles from base up to limit, so many clients do not retry in step.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func ctxError(ctx context.Context, action string) error {
	return &connector.Error{Class: connector.Transient, Message: fmt.Sprintf("%s: %v", action, ctx.Err())}
}

// asError finds the *connector.Error in err's chain.
func asError(err error) *connector.Error {
	var e *connector.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// getJSON is do for a read whose answer is decoded into v; it reports
// false for an empty answer (204, 304).
func (c *client) getJSON(ctx context.Context, r request, v any) (bool, *response, error) {
	if r.method == "" {
		r.method = http.MethodGet
	}
	r.idempotent = true
	resp, err := c.do(ctx, r)
	if err != nil {
		return false, nil, err
	}
	if resp.status == http.StatusNoContent || resp.status == http.StatusNotModified || len(bytes.TrimSpace(resp.body)) == 0 {
		return false, resp, nil
	}
	if v != nil {
		if err := decodeJSON(resp.body, v); err != nil {
			return false, resp, &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
				Message: fmt.Sprintf("%s: decoding answer: %v", r.action, err)}
		}
	}
	return true, resp, nil
}

// decodeJSON decodes keeping numbers exact (json.Number), as
// connector.Record promises.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

func truncate(b []byte) []byte {
	const max = 8 << 10
	if len(b) > max {
		return append([]byte(nil), b[:max]...)
	}
	return append([]byte(nil), b...)
}

// joinPath builds a path from segments, escaping each.
func joinPath(segs ...string) string {
	var sb strings.Builder
	for _, s := range segs {
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(s))
	}
	return sb.String()
}

// regionalBase resolves the base URL of a product that lives on its own
// host per data center (Desk, SalesIQ): the configured override, else the
// product's host in the data center whose API domain the token names (a
// token follows its region), else the settings' data center. The host must
// pass the allow-list, so a forged api_domain never receives a token.
func regionalBase(s Settings, product, override string, hostOf func(DataCenter) string, path string) func(Token) (string, error) {
	hosts := newHostPolicy(s)
	dcHost := hostOf(s.dataCenter())
	return func(tok Token) (string, error) {
		host := override
		if host == "" {
			host = dcHost
			if dc, ok := dcOfAPIDomain(tok.APIDomain); ok && hostOf(dc) != "" {
				host = hostOf(dc)
			}
		}
		if host == "" {
			return "", fmt.Errorf("no %s host is known for data center %q", product, s.DC)
		}
		base, err := hosts.check(host)
		if err != nil {
			return "", err
		}
		return base + path, nil
	}
}
