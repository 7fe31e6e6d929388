// Package salesiq is the sandbox's fake of the Zoho SalesIQ REST API v2
// (reference/zoho-api.md §5): portals, apps, departments, operators,
// visitors, conversations with transcripts, article categories and
// articles, and webhooks whose deliveries are signed with RSA-SHA256 in the
// x-siqsignature header. Go methods play the chat product's humans (a
// visitor starts a chat, an operator picks it up, a chat is missed or ends,
// an operator edits a visitor...), going through the same code as the API
// and firing the same webhooks.
//
// Like the real service it answers HTTP 200 to everything, errors included,
// as {"error":{"code":…,"message":…}}; success is {"url","object","data"},
// plus "sync_time" on lists. Where the vendor documents nothing this fake
// chooses, and the choices are:
//
//   - Error codes. Documented: 1001 unknown authentication error, 1002
//     invalid authorization header (missing, or not "Zoho-oauthtoken"), 1004
//     invalid request type (wrong method), 1005 invalid portal or wrong
//     screen name, 1006 invalid URL, 2310/2311 no visitor found (2310 for a
//     visitor id, 2311 for a conversation's visitor). Chosen: 1003 for an
//     unknown, expired or other-data-center token, 1007 for a token without
//     the needed scope, 1008 for the rate limit, 1010 for a bad query
//     parameter (with "param") or body field (with "json_key"), 1011 for a
//     body that is not JSON, 1012 for an unknown resource id, 1013 for a
//     change the caller may not make (a synced article), 1014 for a
//     duplicate name.
//   - Scopes: SalesIQ.{area}.{READ|CREATE|UPDATE|DELETE|ALL} with area one
//     of portals, apps, departments, operators, visitors, conversations,
//     articles, webhooks (see AllScopes).
//   - Paging: page (alias index, 1-based) and limit (default 20, 1 to 99;
//     anything else is error 1010). Conversations come newest first by
//     sort_by (in_time, end_time or updated_time); other lists in creation
//     order.
//   - Rate limit (undocumented): HTTP 429, Retry-After in seconds and
//     {"error":{"code":1008,"message":"…"}}. The fault injector's server
//     error is the documented general error: HTTP 200 with code 1001; its
//     expired token is HTTP 200 with code 1003.
//   - Transcript: GET …/conversations/{id}/messages lists
//     {id, type:"text", sender{id,name,type:visitor|operator},
//     message{text}, time}, oldest first.
//   - Read-only synced articles: an article created with source "zoho_desk"
//     gets read_only:true and tags ["zoho_desk"]; source_id carries the desk
//     article id. Only the OAuth client that created it may PUT or DELETE
//     it; anyone else gets 1013, and so does an operator editing it in the
//     product (EditArticle).
//   - Webhook body: {"entity_id","event_time","event","entity_type","entity"},
//     entity_type "conversation" or "visitor", event_time an epoch-ms
//     string. POST …/webhooks/{id}/keys makes a new RSA-2048 key pair each
//     time (the old one stops signing) and returns {"public_key": PEM}.
//   - GET /api/v2/portals lists the portal only when the token's user is one
//     of its active operators, as a user sees only portals they belong to.
//   - Redeliveries: the service retries deliveries (at least once); Sent
//     and Redeliver let a test see what a webhook was sent and post it
//     again verbatim, signature included. AddOperator invites an operator,
//     active at once (no confirmation email).
package salesiq

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
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

// Defaults for Options.
const (
	DefaultScreenName = "zylker"
	DefaultAdminEmail = "admin@zylker.example"
)

// AllScopes grants every area this fake checks; hand it to a refresh token
// meant for the SalesIQ connector.
var AllScopes = []string{
	"SalesIQ.portals.READ", "SalesIQ.apps.READ", "SalesIQ.departments.ALL", "SalesIQ.operators.READ",
	"SalesIQ.visitors.ALL", "SalesIQ.conversations.ALL", "SalesIQ.articles.ALL", "SalesIQ.webhooks.ALL",
}

// Errors of the Go methods that act as the product's users.
var (
	ErrNotFound  = errors.New("not found")
	ErrState     = errors.New("not allowed in the conversation's current state")
	ErrReadOnly  = errors.New("article synced from Zoho Desk is read-only")
	ErrInvalid   = errors.New("invalid value")
	ErrDuplicate = errors.New("name already used")
)

// Options configure one data center's SalesIQ.
type Options struct {
	DC       string
	Registry *oauth.Registry
	Clock    clock.Clock      // nil = real time
	Faults   *faults.Injector // nil = no faults
	Hooks    *hooks.Deliverer // nil = webhooks are never posted
	// World seeds the portal with departments, operators, visitors and
	// chats; nil leaves an empty portal (a data center the demo org does
	// not live in).
	World *seed.World
	Seed  uint64
	Log   *slog.Logger // nil = discard
	// ScreenName is the portal's unique name; default DefaultScreenName.
	ScreenName string
	// AdminEmail is the portal owner's email: the account that links SalesIQ
	// to the desk, so it should equal a desk admin's (SPEC A5). Default
	// DefaultAdminEmail.
	AdminEmail string
}

// Server is one data center's SalesIQ. Safe for concurrent use.
type Server struct {
	dc         string
	screen     string
	adminEmail string
	reg        *oauth.Registry
	clock      clock.Clock
	hooks      *hooks.Deliverer
	log        *slog.Logger
	handler    http.Handler

	mu            sync.Mutex
	idPrefix      uint64
	nextID        uint64
	nextRef       int
	rng           *rand.Rand
	portal        Portal
	apps          []App
	departments   []*Department
	operators     []*Operator
	visitors      []*Visitor
	visitorIdx    map[string]*Visitor
	conversations []*conversation
	convIdx       map[string]*conversation
	categories    []*Category
	articles      []*article
	webhooks      []*webhook
}

// New builds the server and seeds it from o.World.
func New(o Options) *Server {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ScreenName == "" {
		o.ScreenName = DefaultScreenName
	}
	if o.AdminEmail == "" {
		o.AdminEmail = DefaultAdminEmail
	}
	s := &Server{
		dc: o.DC, screen: o.ScreenName, adminEmail: strings.ToLower(o.AdminEmail),
		reg: o.Registry, clock: o.Clock, hooks: o.Hooks,
		log:      o.Log.With("vendor", "salesiq", "dc", o.DC),
		idPrefix: 30000 + o.Seed%9000,
		rng:      seed.RNG(o.Seed, "salesiq"),

		visitorIdx: map[string]*Visitor{},
		convIdx:    map[string]*conversation{},
	}
	s.seed(o.World)
	var h http.Handler = s.routes()
	if o.Faults != nil {
		h = o.Faults.Wrap(responder{}, h)
	}
	s.handler = h
	return s
}

// Handler serves /api/v2/... and /api/visitor/v1/....
func (s *Server) Handler() http.Handler { return s.handler }

// newID returns a fresh 17-digit id. Callers hold s.mu.
func (s *Server) newID() string {
	s.nextID++
	return strconv.FormatUint(s.idPrefix*1_000_000_000_000+s.nextID, 10)
}

// ScreenName is the portal's unique name, the first segment of every path.
func (s *Server) ScreenName() string { return s.screen }

// AdminEmail is the portal owner's email.
func (s *Server) AdminEmail() string { return s.adminEmail }

// Portal returns the portal.
func (s *Server) Portal() Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.portalLocked()
}

// Apps returns the brands.
func (s *Server) Apps() []App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.apps)
}

// Departments returns every department, oldest first.
func (s *Server) Departments() []Department {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Department, 0, len(s.departments))
	for _, d := range s.departments {
		out = append(out, *d)
	}
	return out
}

// Operators returns every operator, deactivated ones included.
func (s *Server) Operators() []Operator {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Operator, 0, len(s.operators))
	for _, o := range s.operators {
		out = append(out, copyOperator(o))
	}
	return out
}

// Visitors returns every visitor.
func (s *Server) Visitors() []Visitor {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Visitor, 0, len(s.visitors))
	for _, v := range s.visitors {
		out = append(out, *v)
	}
	return out
}

// Visitor returns one visitor.
func (s *Server) Visitor(id string) (Visitor, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.visitor(id)
	if v == nil {
		return Visitor{}, false
	}
	return *v, true
}

// Conversations returns every conversation, oldest first.
func (s *Server) Conversations() []Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conversation, 0, len(s.conversations))
	for _, c := range s.conversations {
		out = append(out, s.render(c))
	}
	return out
}

// Conversation returns one conversation.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(id)
	if c == nil {
		return Conversation{}, false
	}
	return s.render(c), true
}

// Messages returns a conversation's transcript, oldest first.
func (s *Server) Messages(conversationID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return nil
	}
	return clone(c.messages)
}

// Categories returns the article categories.
func (s *Server) Categories() []Category {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Category, 0, len(s.categories))
	for _, c := range s.categories {
		out = append(out, s.renderCategory(c))
	}
	return out
}

// Articles returns every article.
func (s *Server) Articles() []Article {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Article, 0, len(s.articles))
	for _, a := range s.articles {
		out = append(out, copyArticle(a))
	}
	return out
}

// Article returns one article.
func (s *Server) Article(id string) (Article, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.article(id)
	if a == nil {
		return Article{}, false
	}
	return copyArticle(a), true
}

// Webhooks returns the subscriptions.
func (s *Server) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Webhook, 0, len(s.webhooks))
	for _, w := range s.webhooks {
		out = append(out, copyWebhook(w))
	}
	return out
}

// Lookups and rendering; callers hold s.mu.

func (s *Server) portalLocked() Portal {
	p := s.portal
	p.Admins = nil
	for _, o := range s.operators {
		if o.Role == "Administrator" && o.Status == OperatorActive {
			p.Admins = append(p.Admins, ref(o))
		}
	}
	p.Admins = clone(p.Admins)
	return p
}

func (s *Server) department(id string) *Department {
	for _, d := range s.departments {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (s *Server) operator(id string) *Operator {
	for _, o := range s.operators {
		if o.ID == id {
			return o
		}
	}
	return nil
}

func (s *Server) operatorByEmail(email string) *Operator {
	for _, o := range s.operators {
		if strings.EqualFold(o.EmailID, email) {
			return o
		}
	}
	return nil
}

func (s *Server) visitor(id string) *Visitor { return s.visitorIdx[id] }

func (s *Server) visitorByEmail(email string) *Visitor {
	if email == "" {
		return nil
	}
	for _, v := range s.visitors {
		if strings.EqualFold(v.EmailID, email) {
			return v
		}
	}
	return nil
}

func (s *Server) conversation(id string) *conversation { return s.convIdx[id] }

func (s *Server) addVisitor(v *Visitor) {
	s.visitors = append(s.visitors, v)
	s.visitorIdx[v.ID] = v
}

func (s *Server) addConversation(c *conversation) {
	s.conversations = append(s.conversations, c)
	s.convIdx[c.id] = c
}

func (s *Server) category(id string) *Category {
	for _, c := range s.categories {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (s *Server) article(id string) *article {
	for _, a := range s.articles {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func (s *Server) webhook(id string) *webhook {
	for _, w := range s.webhooks {
		if w.ID == id {
			return w
		}
	}
	return nil
}

var stateLabels = map[string]string{
	StateWaiting: "Waiting", StateConnected: "Live", StateMissed: "Missed", StateEnded: "Ended",
}

func (s *Server) render(c *conversation) Conversation {
	out := Conversation{
		ID: c.id, VisitorConversationID: c.visitorConvID, ReferenceID: c.referenceID,
		AppID: c.appID, DepartmentID: c.departmentID, Question: c.question,
		Supervisors: []string{}, Participants: []string{},
		Status: c.state, ChatStatus: ChatStatus{Label: stateLabels[c.state]},
		OpenedTime: ms(c.opened), AttendedTime: ms(c.attended), MissedTime: ms(c.missed),
		EndTime: ms(c.ended), UpdatedTime: ms(c.updated),
	}
	if v := s.visitor(c.visitorID); v != nil {
		out.Visitor = VisitorRef{ID: v.ID, Type: v.Type, Name: v.Name, EmailID: v.EmailID, Phone: v.Phone}
	}
	if o := s.operator(c.ownerID); o != nil {
		r := ref(o)
		out.Owner = &r
		out.Participants = []string{o.ID}
	}
	return out
}

func (s *Server) renderCategory(c *Category) Category {
	out := *c
	out.DepartmentIDs = clone(c.DepartmentIDs)
	out.ArticlesCount = 0
	for _, a := range s.articles {
		if a.CategoryID == c.ID {
			out.ArticlesCount++
		}
	}
	return out
}

func ref(o *Operator) OperatorRef {
	return OperatorRef{ID: o.ID, Name: o.Name, EmailID: o.EmailID}
}

func copyOperator(o *Operator) Operator {
	out := *o
	out.DepartmentIDs = clone(o.DepartmentIDs)
	return out
}

func copyArticle(a *article) Article {
	out := a.Article
	out.DepartmentIDs = clone(a.DepartmentIDs)
	out.Tags = clone(a.Tags)
	return out
}

func copyWebhook(w *webhook) Webhook {
	out := w.Webhook
	out.Events = clone(w.Events)
	out.AppIDs = clone(w.AppIDs)
	out.Signed = w.key != nil
	return out
}

func (s *Server) now() time.Time { return s.clock.Now() }

// notFound wraps ErrNotFound with the action that failed.
func notFound(action, kind, id string) error {
	return fmt.Errorf("%s: %s %q: %w", action, kind, id, ErrNotFound)
}
