package desk

import (
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

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/hooks"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// SourceIDHeader is the request header that tags an API call with the
// caller's source id. A webhook whose ignoreSourceId equals it is not told
// about the changes that call made, so a connector does not hear its own
// writes echoed back.
const SourceIDHeader = "X-Desk-Source-Id"

// maxBody bounds request bodies; attachments are the largest.
const maxBody = 20 << 20

// Options configure a fake Desk.
type Options struct {
	DC       string // data center whose tokens are accepted ("us", "eu", "jp", ...)
	Registry *oauth.Registry
	Clock    clock.Clock
	Faults   *faults.Injector // may be nil
	Hooks    *hooks.Deliverer // may be nil: webhooks are then recorded but not sent
	World    *seed.World      // initial data; nil = an empty portal
	Seed     uint64
	Log      *slog.Logger
}

// core is the state every view of the fake shares.
type core struct {
	log      *slog.Logger
	clock    clock.Clock
	registry *oauth.Registry
	hooks    *hooks.Deliverer
	dc       string
	host     string
	seed     uint64

	mu   sync.Mutex
	orgs []*org

	handler http.Handler
}

// Server is a fake Zoho Desk. A Server value is bound to one org (the
// seeded one unless obtained from WithOrg); every value serves all orgs
// over HTTP.
type Server struct {
	c *core
	o *org
}

// New builds the fake and seeds its first org from o.World.
func New(o Options) *Server {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.DC == "" {
		o.DC = "us"
	}
	if o.Registry == nil {
		o.Registry = oauth.NewRegistry(o.Clock) // no tokens: every call is refused
	}
	c := &core{log: o.Log.With("vendor", "desk"), clock: o.Clock, registry: o.Registry, hooks: o.Hooks,
		dc: o.DC, host: deskHost(o.DC), seed: o.Seed}
	primary := c.addOrg(OrgSpec{PortalName: "zylker", CompanyName: "Zylker Corp.", TimeZone: "America/Los_Angeles", Open: true})
	if o.World != nil {
		start := time.Now()
		seedWorld(c, primary, o.World, o.Seed)
		c.log.Info("desk seeded", "org", primary.id, "contacts", primary.contacts.len(), "accounts", primary.accounts.len(),
			"products", primary.products.len(), "tickets", primary.tickets.len(), "articles", primary.articles.len(),
			"took", time.Since(start).Round(time.Millisecond))
	}
	c.setupSLAs(primary, o.Seed)
	var h http.Handler = c.routes()
	if o.Faults != nil {
		h = o.Faults.Wrap(responder{}, h)
	}
	c.handler = h
	return &Server{c: c, o: primary}
}

// Handler serves /api/v1/... for every org, behind the fault injector.
func (s *Server) Handler() http.Handler { return s.c.handler }

// OrgID is the id of the org this Server value is bound to.
func (s *Server) OrgID() string { return strconv.FormatInt(s.o.id, 10) }

// PortalName is the bound org's portal name (the "zylker" of the web URLs
// and of the seeded from-addresses support@zylker.example).
func (s *Server) PortalName() string { return s.o.portal }

// OwnerEmail is the email of the bound org's portal owner, its first
// administrator: admin@<portal>.example unless OrgSpec.Admin said otherwise.
// Open orgs let tokens of other users act as this agent.
func (s *Server) OwnerEmail() string {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.o.agents.get(s.o.owner).email
}

// OrgSpec describes an extra org for AddOrg.
type OrgSpec struct {
	PortalName  string
	CompanyName string
	Edition     string // default ENTERPRISE
	TimeZone    string
	// Open orgs are listed for, and usable by, every valid token; a closed
	// org only for tokens whose user email is an active agent there.
	Open bool
	// Admin is the email of the org's first administrator (default
	// admin@<portal>.example).
	Admin string
}

// AddOrg adds an empty org (departments, agents, profiles, fields and SLAs,
// no customers) and returns a Server bound to it.
func (s *Server) AddOrg(spec OrgSpec) *Server {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	o := s.c.addOrg(spec)
	s.c.setupSLAs(o, s.c.seed)
	return &Server{c: s.c, o: o}
}

// WithOrg returns a Server bound to another org of the same fake.
func (s *Server) WithOrg(orgID string) (*Server, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	o := s.c.orgByID(orgID)
	if o == nil {
		return nil, fmt.Errorf("desk: look up org %s: %w", orgID, errNotFound())
	}
	return &Server{c: s.c, o: o}, nil
}

// SetOpen makes the bound org visible to every token (true) or only to its
// agents (false).
func (s *Server) SetOpen(open bool) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.o.open = open
}

func (c *core) orgByID(id string) *org {
	n, ok := parseID(id)
	if !ok {
		return nil
	}
	for _, o := range c.orgs {
		if o.id == n {
			return o
		}
	}
	return nil
}

func (c *core) now() int64 { return c.clock.Now().UnixMilli() }

// deskHost is the Desk host of a data center, for webUrl values.
func deskHost(dc string) string {
	switch strings.ToLower(dc) {
	case "eu":
		return "desk.zoho.eu"
	case "in":
		return "desk.zoho.in"
	case "au":
		return "desk.zoho.com.au"
	case "jp":
		return "desk.zoho.jp"
	case "cn":
		return "desk.zoho.com.cn"
	case "ca":
		return "desk.zohocloud.ca"
	case "sa":
		return "desk.zoho.sa"
	case "uk":
		return "desk.zoho.uk"
	}
	return "desk.zoho.com"
}

func (c *core) webURL(o *org, section string, id int64) string {
	return fmt.Sprintf("https://%s/support/%s/ShowHomePage.do#%s/dv/%d", c.host, o.portal, section, id)
}

// actor is who a write is attributed to: the agent behind the token (or
// the UI user) and the source id the request carried.
type actor struct {
	agentID int64
	source  string
}

// call is one API request being served.
type call struct {
	c     *core
	r     *http.Request
	q     url.Values
	body  []byte
	org   *org
	grant oauth.Grant
	act   actor
}

func (cl *call) path(name string) string { return cl.r.PathValue(name) }

// pathID reads a numeric id from the path; anything else is a URL Desk
// does not have.
func (cl *call) pathID(name string) (int64, *APIError) {
	id, ok := parseID(cl.r.PathValue(name))
	if !ok {
		return 0, errNotFound()
	}
	return id, nil
}

// reply is a handler's answer; a nil body means an empty 204 (or other
// bodiless status).
type reply struct {
	status int
	body   any
}

func okJSON(body any) (reply, *APIError) { return reply{status: http.StatusOK, body: body}, nil }

func noContent() (reply, *APIError) { return reply{status: http.StatusNoContent}, nil }

func fail(e *APIError) (reply, *APIError) { return reply{}, e }

// list answers a list: {"data":[…]}, or 204 with no body when empty.
func list(items []map[string]any) (reply, *APIError) {
	if len(items) == 0 {
		return noContent()
	}
	return okJSON(map[string]any{"data": items})
}

// searchResult answers a search: {"data":[…],"count":n}, 204 when empty.
func searchResult(items []map[string]any, total int) (reply, *APIError) {
	if len(items) == 0 {
		return noContent()
	}
	return okJSON(map[string]any{"data": items, "count": total})
}

type handlerFunc func(cl *call) (reply, *APIError)

// handle registers an endpoint. Every endpoint checks the token; all but
// the organization ones also need orgId. The handler runs under the
// fake's lock; its answer is encoded after the lock is released.
func (c *core) handle(mux *http.ServeMux, pattern string, needOrg bool, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		cl := &call{c: c, r: r, q: r.URL.Query()}
		grant, err := c.registry.CheckRequest(r, c.dc)
		switch {
		case errors.Is(err, oauth.ErrMissing):
			writeError(w, errUnauthorized())
			return
		case err != nil:
			writeError(w, errInvalidOAuth())
			return
		}
		cl.grant = grant
		if r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil {
				writeError(w, &APIError{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: "The request body could not be read."})
				return
			}
			if len(body) > maxBody {
				writeError(w, &APIError{Status: http.StatusRequestEntityTooLarge, Code: "RESOURCE_SIZE_EXCEEDED", Message: "The request body is too large."})
				return
			}
			cl.body = body
		}
		c.mu.Lock()
		rep, apiErr := c.serve(cl, needOrg, h)
		c.mu.Unlock()
		if apiErr != nil {
			writeError(w, apiErr)
			return
		}
		if rep.body == nil {
			w.WriteHeader(rep.status)
			return
		}
		if raw, isRaw := rep.body.(rawBody); isRaw {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(rep.status)
			_, _ = w.Write(raw)
			return
		}
		writeJSON(w, rep.status, rep.body)
	})
}

func (c *core) serve(cl *call, needOrg bool, h handlerFunc) (reply, *APIError) {
	if needOrg {
		raw := cl.r.Header.Get("orgId")
		if raw == "" {
			raw = cl.q.Get("orgId")
		}
		if raw == "" {
			return fail(errUnprocessable("The 'orgId' header is mandatory."))
		}
		o := c.orgByID(raw)
		if o == nil || !o.visibleTo(cl.grant) {
			return fail(errOrgMismatch())
		}
		cl.org = o
		cl.act = actor{agentID: o.agentFor(cl.grant.UserEmail), source: cl.r.Header.Get(SourceIDHeader)}
	}
	return h(cl)
}

// visibleTo reports whether a token may use the org.
func (o *org) visibleTo(g oauth.Grant) bool {
	if o.open {
		return true
	}
	a := o.agentByEmail(g.UserEmail)
	return a != nil && a.status == "ACTIVE"
}

func (o *org) agentByEmail(email string) *agent {
	if email == "" {
		return nil
	}
	var found *agent
	o.agents.each(func(a *agent) bool {
		if !a.deleted && strings.EqualFold(a.email, email) {
			found = a
			return false
		}
		return true
	})
	return found
}

// agentFor is the agent an API call acts as: the token's user when that
// user is an agent of the org, otherwise the portal owner (open orgs let
// any token in, and writes still need an author).
func (o *org) agentFor(email string) int64 {
	if a := o.agentByEmail(email); a != nil {
		return a.id
	}
	return o.owner
}

// responder answers injected faults in Desk's format.
type responder struct{}

// RateLimited answers 429 with Retry-After in whole seconds and the v3
// remaining-credits header. Desk's 429 errorCode was never observed; the
// fake uses TOO_MANY_REQUESTS, which the Desk OAS lists among its codes.
func (responder) RateLimited(w http.ResponseWriter, retryAfter time.Duration, remaining int) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("X-Rate-Limit-Remaining-v3", strconv.Itoa(remaining))
	writeError(w, &APIError{Status: http.StatusTooManyRequests, Code: "TOO_MANY_REQUESTS",
		Message: "You have exceeded the rate limit for this API. Try again after " + strconv.Itoa(secs) + " seconds."})
}

func (responder) ServerError(w http.ResponseWriter) { writeError(w, errInternal()) }

func (responder) TokenExpired(w http.ResponseWriter) { writeError(w, errInvalidOAuth()) }
