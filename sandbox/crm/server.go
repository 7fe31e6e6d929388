package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// Flavor picks the product the server fakes: the same code serves Zoho CRM
// v8 and Bigin v2, which share their wire format but not their modules.
type Flavor int

// The flavors.
const (
	CRM   Flavor = iota // Zoho CRM, under /crm/v8
	Bigin               // Bigin, under /bigin/v2
)

// String names the flavor in logs and in the seed streams, so CRM and Bigin
// draw different sample data from the same world.
func (f Flavor) String() string {
	if f == Bigin {
		return "bigin"
	}
	return "crm"
}

// OrgOptions describes one more org served by the same server, so a token
// whose user belongs to several orgs can pick one with X-CRM-ORG (SPEC A1).
type OrgOptions struct {
	ID      string      // org id; "" = generated
	Name    string      // company name; "" = a generated one
	World   *seed.World // initial data; nil = an empty org
	Seed    uint64      // seeds the org's extra data (deals, notes, activities, leads)
	Members []string    // emails of the users who belong; empty = anyone who authorizes
}

// Options configure a server.
type Options struct {
	Flavor   Flavor
	DC       string           // data center of this API server; tokens of other DCs are INVALID_TOKEN
	Registry *oauth.Registry  // required: checks every request's token
	Clock    clock.Clock      // nil = the wall clock
	Faults   *faults.Injector // nil = no faults
	Hooks    *hooks.Deliverer // where watch notifications go; nil = nowhere
	World    *seed.World      // the default org's initial data; nil = an empty org
	Seed     uint64
	Log      *slog.Logger   // nil = discard
	Offset   *time.Location // the org user's time zone; nil = -07:00 (CRM) or +09:00 (Bigin)

	OrgName  string       // the default org's company name; "" = generated
	Members  []string     // the default org's members; empty = anyone who authorizes
	MoreOrgs []OrgOptions // further orgs on the same server
	// Hosts, when set, are the only Host headers answered; others get 400
	// INVALID_HOST, as the real API answers hosts other than www.zohoapis.*.
	Hosts []string
	// RateLimit is what 429 answers report in X-RATELIMIT-LIMIT: set it to
	// the injector's DailyCredits. 0 = 50000.
	RateLimit int
}

// Server is one fake API server of one data center, holding one or more
// orgs. Safe for concurrent use.
type Server struct {
	o       Options
	log     *slog.Logger
	clock   clock.Clock
	prefix  string
	mods    map[string]*module
	modList []string
	lower   map[string]string // lower-case module name -> api name
	views   map[string][]*view

	mu     sync.Mutex
	orgs   []*Org
	byID   map[string]*Org
	tokens map[string]*pageToken
	issued int
	lag    time.Duration
	// tokenLimit is how many records page tokens reach (100,000 on Zoho);
	// tests lower it.
	tokenLimit int
	outbox     []hooks.Delivery

	outMu sync.Mutex // serialises handing the outbox to Hooks, so callbacks keep commit order
}

// New builds a server and seeds its orgs.
func New(o Options) *Server {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Offset == nil {
		if o.Flavor == Bigin {
			o.Offset = time.FixedZone("Asia/Tokyo", 9*3600)
		} else {
			o.Offset = time.FixedZone("America/Phoenix", -7*3600)
		}
	}
	if o.RateLimit == 0 {
		o.RateLimit = 50000
	}
	s := &Server{o: o, log: o.Log.With("vendor", o.Flavor.String(), "dc", o.DC), clock: o.Clock,
		byID: map[string]*Org{}, tokens: map[string]*pageToken{}, lower: map[string]string{},
		tokenLimit: maxTokenRecords}
	s.prefix = "/crm/v8"
	if o.Flavor == Bigin {
		s.prefix = "/bigin/v2"
	}
	s.mods, s.modList = schema(o.Flavor)
	for _, name := range s.modList {
		s.lower[strings.ToLower(name)] = name
	}
	s.views = buildViews(s.mods, s.modList, o.Flavor)
	all := append([]OrgOptions{{ID: "", Name: o.OrgName, World: o.World, Seed: o.Seed, Members: o.Members}}, o.MoreOrgs...)
	for i, oo := range all {
		org := newOrg(s, i, oo)
		s.orgs = append(s.orgs, org)
		s.byID[org.id] = org
		s.byID[org.zgid] = org
	}
	return s
}

// Handler serves the API under /crm/v8 (CRM) or /bigin/v2 (Bigin), behind
// the fault injector when there is one.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.serve)
	if s.o.Faults != nil {
		h = s.o.Faults.Wrap(Responder{s: s}, h)
	}
	return h
}

// Org returns the org with id (its org id or zgid), or nil; "" is the
// default org. Tests use it to act in an org other than the default.
func (s *Server) Org(id string) *Org {
	if id == "" {
		return s.orgs[0]
	}
	return s.byID[id]
}

// Orgs returns the server's orgs, the default first, so a demo can show
// what X-CRM-ORG may name.
func (s *Server) Orgs() []*Org { return append([]*Org(nil), s.orgs...) }

// SetIndexLag makes records written from now on invisible to search for d,
// as Zoho's search index trails writes.
func (s *Server) SetIndexLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = d
}

// Create adds a record to the default org as a person in the CRM UI would.
func (s *Server) Create(module string, fields map[string]any) (string, error) {
	return s.orgs[0].Create(module, fields)
}

// Edit changes a record of the default org as a person in the CRM UI would.
func (s *Server) Edit(module, id string, fields map[string]any) error {
	return s.orgs[0].Edit(module, id, fields)
}

// MassUpdate sets the same fields on many records of the default org at
// once, as the UI's mass update does (one notification for all).
func (s *Server) MassUpdate(module string, ids []string, fields map[string]any) error {
	return s.orgs[0].MassUpdate(module, ids, fields)
}

// Delete moves a record of the default org to the recycle bin.
func (s *Server) Delete(module, id string) error { return s.orgs[0].Delete(module, id) }

// Record returns a record of the default org as the API renders it.
func (s *Server) Record(module, id string) (map[string]any, bool) {
	return s.orgs[0].Record(module, id)
}

// Count returns how many live records a module of the default org holds.
func (s *Server) Count(module string) int { return s.orgs[0].Count(module) }

// IDs returns the ids of a module of the default org, oldest first.
func (s *Server) IDs(module string) []string { return s.orgs[0].IDs(module) }

// EmptyRecycleBin permanently deletes what the default org's recycle bin
// holds for module ("" = every module).
func (s *Server) EmptyRecycleBin(module string) { s.orgs[0].EmptyRecycleBin(module) }

// Error is a Zoho error answer. Request-level errors are written as the
// whole body; per-record errors are elements of the "data" array.
type Error struct {
	Status  int // HTTP status of a request-level error
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	d, _ := json.Marshal(e.Details)
	return fmt.Sprintf("%s: %s %s", e.Code, e.Message, d)
}

func (e *Error) body() map[string]any {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return map[string]any{"code": e.Code, "details": d, "message": e.Message, "status": "error"}
}

func errf(status int, code, msg string, details map[string]any) *Error {
	return &Error{Status: status, Code: code, Message: msg, Details: details}
}

func missingParam(name string) *Error {
	return errf(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", map[string]any{"param": name})
}

func invalidParam(name, msg string) *Error {
	return errf(400, "INVALID_DATA", msg, map[string]any{"param_name": name})
}

func invalidID() *Error {
	return errf(400, "INVALID_DATA", "the id given seems to be invalid", map[string]any{})
}

var errNotFoundURL = errf(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", nil)

// Responder answers the fault injector's faults in CRM's format. Retry-After
// is an addition: Zoho documents only the X-RATELIMIT-* headers for CRM.
type Responder struct{ s *Server }

// RateLimited answers 429 TOO_MANY_REQUESTS.
func (r Responder) RateLimited(w http.ResponseWriter, retryAfter time.Duration, remaining int) {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	reset := r.s.clock.Now().Add(retryAfter)
	w.Header().Set("X-RATELIMIT-LIMIT", strconv.Itoa(r.s.o.RateLimit))
	w.Header().Set("X-RATELIMIT-REMAINING", strconv.Itoa(remaining))
	w.Header().Set("X-RATELIMIT-RESET", strconv.FormatInt(reset.UnixMilli(), 10))
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	writeJSON(w, http.StatusTooManyRequests, errf(429, "TOO_MANY_REQUESTS",
		"too many requests continuously, retry after some time", nil).body())
}

// ServerError answers 500 INTERNAL_ERROR.
func (r Responder) ServerError(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, errf(500, "INTERNAL_ERROR", "Internal Server Error", nil).body())
}

// TokenExpired answers 401 INVALID_TOKEN.
func (r Responder) TokenExpired(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, errf(401, "INVALID_TOKEN", "invalid oauth token", nil).body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) { writeJSON(w, e.Status, e.body()) }

// call is one authenticated request.
type call struct {
	s *Server
	o *Org
	u *user
	g oauth.Grant
	w http.ResponseWriter
	r *http.Request
	q url.Values
}

func (c *call) fail(e *Error) { writeError(c.w, e) }

// base is the scheme and host the client reached us on, for resource URIs.
func (c *call) base() string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.r.Host
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	sw.status = code
	sw.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: 200}
	start := time.Now()
	s.dispatch(sw, r)
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if len(s.o.Hosts) > 0 && !hostAllowed(s.o.Hosts, r.Host) {
		writeError(w, errf(400, "INVALID_HOST", "the host given seems to be invalid; use www.zohoapis.{dc}", nil))
		return
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		writeError(w, errf(401, "AUTHENTICATION_FAILURE", "Authentication failed", nil))
		return
	}
	g, err := s.o.Registry.Check(header, s.o.DC)
	if err != nil {
		writeError(w, errf(401, "INVALID_TOKEN", "invalid oauth token", nil))
		return
	}
	c := &call{s: s, g: g, w: w, r: r, q: r.URL.Query()}
	if e := s.pickOrg(c, firstHeader(r, "X-CRM-ORG", "X-CRMORG")); e != nil {
		writeError(w, e)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, s.prefix+"/")
	if !ok || rest == "" {
		writeError(w, errNotFoundURL)
		return
	}
	s.route(c, strings.Split(strings.TrimSuffix(rest, "/"), "/"))
}

func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func hostAllowed(hosts []string, host string) bool {
	for _, h := range hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// pickOrg chooses the org a request works on: the X-CRM-ORG header's, or
// the first org (default first) the token's user belongs to.
func (s *Server) pickOrg(c *call, want string) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if want != "" {
		o := s.byID[want]
		if o == nil || !o.admits(c.g.UserEmail) {
			return errf(403, "NO_PERMISSION", "permission denied: the user does not belong to the org",
				map[string]any{"org_id": want})
		}
		c.o = o
	} else {
		for _, o := range s.orgs {
			if o.admits(c.g.UserEmail) {
				c.o = o
				break
			}
		}
		if c.o == nil {
			return errf(403, "NO_PERMISSION", "permission denied: the user belongs to no org on this server", nil)
		}
	}
	c.u = c.o.userFor(c.g.UserEmail)
	return nil
}

// route dispatches on the path segments after the version prefix.
func (s *Server) route(c *call, seg []string) {
	method := c.r.Method
	is := func(m string) bool { return method == m }
	badMethod := func() {
		c.fail(errf(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one", nil))
	}
	switch seg[0] {
	case "org":
		if len(seg) != 1 {
			c.fail(errNotFoundURL)
		} else if !is("GET") {
			badMethod()
		} else if c.need("org", "", "READ") {
			s.getOrg(c)
		}
		return
	case "users":
		if len(seg) > 2 {
			c.fail(errNotFoundURL)
		} else if !is("GET") {
			badMethod()
		} else if c.need("users", "", "READ") {
			id := ""
			if len(seg) == 2 {
				id = seg[1]
			}
			s.getUsers(c, id)
		}
		return
	case "settings":
		if len(seg) < 2 || len(seg) > 3 {
			c.fail(errNotFoundURL)
			return
		}
		if !is("GET") {
			badMethod()
			return
		}
		id := ""
		if len(seg) == 3 {
			id = seg[2]
		}
		switch seg[1] {
		case "modules":
			if c.need("settings", "modules", "READ") {
				s.getModules(c, id)
			}
		case "fields":
			if c.need("settings", "fields", "READ") {
				s.getFields(c, id)
			}
		case "custom_views":
			if c.need("settings", "custom_views", "READ") {
				s.getViews(c, id)
			}
		default:
			c.fail(errNotFoundURL)
		}
		return
	case "actions":
		if len(seg) != 2 || seg[1] != "watch" {
			c.fail(errNotFoundURL)
			return
		}
		op := map[string]string{"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}[method]
		if op == "" {
			badMethod()
		} else if c.need("notifications", "", op) {
			s.watch(c)
		}
		return
	}
	name, ok := s.lower[strings.ToLower(seg[0])]
	if !ok {
		c.fail(errf(400, "INVALID_MODULE", "the module name given seems to be invalid", map[string]any{}))
		return
	}
	m := s.mods[name]
	sub := strings.ToLower(m.api)
	switch {
	case len(seg) == 1:
		switch method {
		case "GET":
			if c.need("modules", sub, "READ") {
				s.list(c, m, nil)
			}
		case "POST":
			if c.need("modules", sub, "CREATE") {
				s.insert(c, m, nil)
			}
		case "PUT":
			if c.need("modules", sub, "UPDATE") {
				s.update(c, m, "")
			}
		case "DELETE":
			if c.need("modules", sub, "DELETE") {
				s.deleteMany(c, m)
			}
		default:
			badMethod()
		}
	case len(seg) == 2 && seg[1] == "upsert":
		if !is("POST") {
			badMethod()
		} else if c.need("modules", sub, "CREATE") && c.need("modules", sub, "UPDATE") {
			s.upsert(c, m)
		}
	case len(seg) == 2 && seg[1] == "search":
		if !is("GET") {
			badMethod()
		} else if c.need("modules", sub, "READ") && c.needSearch() {
			s.search(c, m)
		}
	case len(seg) == 2 && seg[1] == "deleted":
		if !is("GET") {
			badMethod()
		} else if c.need("modules", sub, "READ") {
			s.deletedFeed(c, m)
		}
	case len(seg) == 3 && seg[1] == "actions" && seg[2] == "count":
		if !is("GET") {
			badMethod()
		} else if c.need("modules", sub, "READ") {
			s.count(c, m)
		}
	case len(seg) == 2:
		switch method {
		case "GET":
			if c.need("modules", sub, "READ") {
				s.get(c, m, seg[1])
			}
		case "PUT":
			if c.need("modules", sub, "UPDATE") {
				s.update(c, m, seg[1])
			}
		case "DELETE":
			if c.need("modules", sub, "DELETE") {
				s.deleteOne(c, m, seg[1])
			}
		default:
			badMethod()
		}
	case len(seg) == 3:
		rel, ok := m.related[seg[2]]
		if !ok {
			c.fail(errf(400, "INVALID_DATA", "the related list name given seems to be invalid",
				map[string]any{"param_name": "related_list", "api_name": seg[2]}))
			return
		}
		switch {
		case is("GET"):
			if c.need("modules", sub, "READ") {
				s.list(c, s.mods[rel.child], &parentRef{module: m, id: seg[1], via: rel.via})
			}
		case is("POST") && rel.child == "Notes":
			if c.need("modules", "notes", "CREATE") {
				s.insert(c, s.mods["Notes"], &parentRef{module: m, id: seg[1]})
			}
		default:
			badMethod()
		}
	default:
		c.fail(errNotFoundURL)
	}
}

// need checks the token's scopes for a service scope such as
// ZohoCRM.modules.contacts.READ, answering 401 OAUTH_SCOPE_MISMATCH when
// none covers it.
func (c *call) need(scope, sub, op string) bool {
	service := "ZohoCRM"
	if c.s.o.Flavor == Bigin {
		service = "ZohoBigin"
	}
	if hasScope(c.g.Scopes, service, scope, sub, op) {
		return true
	}
	c.fail(errf(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", map[string]any{}))
	return false
}

// needSearch checks the extra scope the Search API wants.
func (c *call) needSearch() bool {
	if hasScope(c.g.Scopes, "ZohoSearch", "securesearch", "", "READ") {
		return true
	}
	c.fail(errf(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", map[string]any{}))
	return false
}

// hasScope reports whether any granted scope covers service.scope[.sub].op.
// ALL covers every operation and WRITE covers CREATE, UPDATE and DELETE; a
// scope without a sub-scope covers all of them.
func hasScope(granted []string, service, scope, sub, op string) bool {
	opOK := func(have string) bool {
		have = strings.ToUpper(have)
		return have == "ALL" || have == op || (have == "WRITE" && op != "READ")
	}
	for _, g := range granted {
		for _, one := range strings.Split(g, ",") {
			p := strings.Split(strings.TrimSpace(one), ".")
			if len(p) < 3 || !strings.EqualFold(p[0], service) || !strings.EqualFold(p[1], scope) {
				continue
			}
			switch len(p) {
			case 3:
				if opOK(p[2]) {
					return true
				}
			case 4:
				if (sub == "" || strings.EqualFold(p[2], sub)) && opOK(p[3]) {
					return true
				}
			}
		}
	}
	return false
}

// readBody decodes a JSON object body, keeping numbers exact.
func readBody(r *http.Request) (map[string]any, *Error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return nil, errf(400, "INVALID_DATA", "the request body could not be read", nil)
	}
	var out map[string]any
	if err := decodeJSON(raw, &out); err != nil || out == nil {
		return nil, errf(400, "INVALID_DATA", "body is not a valid JSON object", map[string]any{})
	}
	return out, nil
}

func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding json body: %w", err)
	}
	if dec.More() {
		return errors.New("decoding json body: trailing data")
	}
	return nil
}

// renderTime formats an instant as the CRM does: ISO-8601, second
// precision, in the org user's offset.
func (s *Server) renderTime(unix int64) string {
	return time.Unix(unix, 0).In(s.o.Offset).Format("2006-01-02T15:04:05-07:00")
}

// parseTime reads a client-supplied instant: ISO-8601 with an offset (as
// Zoho sends and expects), or an HTTP date.
func parseTime(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700", http.TimeFormat} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
