package salesiq

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Scope operations.
const (
	opRead   = "READ"
	opCreate = "CREATE"
	opUpdate = "UPDATE"
	opDelete = "DELETE"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	r := func(pattern, area, op string, h handlerFunc) { s.route(mux, pattern, area, op, h) }

	r("GET /api/v2/portals", "portals", opRead, s.listPortals)
	r("GET /api/v2/{screen}/apps", "apps", opRead, s.listApps)

	r("GET /api/v2/{screen}/departments", "departments", opRead, s.listDepartments)
	r("POST /api/v2/{screen}/departments", "departments", opCreate, s.postDepartment)
	r("GET /api/v2/{screen}/departments/{id}", "departments", opRead, s.getDepartment)
	r("PUT /api/v2/{screen}/departments/{id}", "departments", opUpdate, s.putDepartment)

	r("GET /api/v2/{screen}/operators", "operators", opRead, s.listOperators)
	r("GET /api/v2/{screen}/operators/{id}", "operators", opRead, s.getOperator)

	r("GET /api/v2/{screen}/visitors", "visitors", opRead, s.listVisitors)
	r("POST /api/v2/{screen}/visitors", "visitors", opUpdate, s.postVisitor)
	r("GET /api/v2/{screen}/visitors/{id}", "visitors", opRead, s.getVisitor)
	r("PUT /api/visitor/v1/{screen}/conversations/{id}/visitor", "visitors", opUpdate, s.putConversationVisitor)

	r("GET /api/v2/{screen}/conversations", "conversations", opRead, s.listConversations)
	r("GET /api/v2/{screen}/conversations/{id}", "conversations", opRead, s.getConversation)
	r("GET /api/v2/{screen}/conversations/{id}/messages", "conversations", opRead, s.listMessages)

	r("GET /api/v2/{screen}/articlecategories", "articles", opRead, s.listCategories)
	r("POST /api/v2/{screen}/articlecategories", "articles", opCreate, s.postCategory)
	r("GET /api/v2/{screen}/articles", "articles", opRead, s.listArticles)
	r("POST /api/v2/{screen}/articles", "articles", opCreate, s.postArticle)
	r("GET /api/v2/{screen}/articles/{id}", "articles", opRead, s.getArticle)
	r("PUT /api/v2/{screen}/articles/{id}", "articles", opUpdate, s.putArticle)
	r("DELETE /api/v2/{screen}/articles/{id}", "articles", opDelete, s.deleteArticle)

	r("GET /api/v2/{screen}/webhooks", "webhooks", opRead, s.listWebhooks)
	r("POST /api/v2/{screen}/webhooks", "webhooks", opCreate, s.postWebhook)
	r("GET /api/v2/{screen}/webhooks/{id}", "webhooks", opRead, s.getWebhook)
	r("DELETE /api/v2/{screen}/webhooks/{id}", "webhooks", opDelete, s.deleteWebhook)
	r("POST /api/v2/{screen}/webhooks/{id}/keys", "webhooks", opCreate, s.postWebhookKeys)

	mux.HandleFunc("/", notRouted(mux))
	return mux
}

func list[T any](items []T, q url.Values) (reply, *apiError) {
	page, limit, aerr := paging(q)
	if aerr != nil {
		return reply{}, aerr
	}
	return reply{object: "list", data: pageOf(items, page, limit)}, nil
}

// Portals and apps.

func (s *Server) listPortals(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	portals := []Portal{}
	if o := s.operatorByEmail(c.grant.UserEmail); o != nil && o.Status == OperatorActive {
		portals = append(portals, s.portalLocked())
	}
	return list(portals, c.r.URL.Query())
}

func (s *Server) listApps(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return list(clone(s.apps), c.r.URL.Query())
}

// Departments.

func (s *Server) listDepartments(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Department, 0, len(s.departments))
	for _, d := range s.departments {
		out = append(out, *d)
	}
	return list(out, c.r.URL.Query())
}

func (s *Server) getDepartment(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.department(c.r.PathValue("id"))
	if d == nil {
		return reply{}, missing("department", c.r.PathValue("id"))
	}
	return reply{object: "department", data: *d}, nil
}

type departmentBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	IsPublic    *bool   `json:"is_public"`
}

func (s *Server) postDepartment(c *call) (reply, *apiError) {
	var b departmentBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	if b.Name == nil || strings.TrimSpace(*b.Name) == "" {
		return reply{}, badField("name", "required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.createDepartment(*b.Name, deref(b.Description), b.IsPublic == nil || *b.IsPublic)
	if err != nil {
		return reply{}, departmentError(err)
	}
	return reply{object: "department", data: *d}, nil
}

func (s *Server) putDepartment(c *call) (reply, *apiError) {
	var b departmentBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.department(c.r.PathValue("id"))
	if d == nil {
		return reply{}, missing("department", c.r.PathValue("id"))
	}
	if b.Name != nil {
		if err := s.renameDepartment(d, *b.Name); err != nil {
			return reply{}, departmentError(err)
		}
	}
	if b.Description != nil {
		d.Description = *b.Description
	}
	if b.IsPublic != nil {
		d.IsPublic = *b.IsPublic
	}
	d.ModifiedTime = ms(s.now())
	return reply{object: "department", data: *d}, nil
}

func departmentError(err error) *apiError {
	if errors.Is(err, ErrDuplicate) {
		return &apiError{Code: CodeDuplicate, Message: "Department name already exists", JSONKey: "name"}
	}
	return badField("name", "must not be empty")
}

// Operators.

func (s *Server) listOperators(c *call) (reply, *apiError) {
	q := c.r.URL.Query()
	status := q.Get("status")
	if status != "" && status != OperatorActive && status != OperatorDeactivated {
		return reply{}, badParam("status", "must be active or deactivated")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Operator{}
	for _, o := range s.operators {
		if status == "" || o.Status == status {
			out = append(out, copyOperator(o))
		}
	}
	return list(out, q)
}

func (s *Server) getOperator(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.operator(c.r.PathValue("id"))
	if o == nil {
		return reply{}, missing("operator", c.r.PathValue("id"))
	}
	return reply{object: "operator", data: copyOperator(o)}, nil
}

// Visitors.

func (s *Server) listVisitors(c *call) (reply, *apiError) {
	q := c.r.URL.Query()
	email := q.Get("email")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Visitor{}
	for _, v := range s.visitors {
		if email == "" || strings.EqualFold(v.EmailID, email) {
			out = append(out, *v)
		}
	}
	return list(out, q)
}

func (s *Server) getVisitor(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.visitor(c.r.PathValue("id"))
	if v == nil {
		return reply{}, &apiError{Code: CodeNoVisitor, Message: "No Visitor found"}
	}
	return reply{object: "visitor", data: *v}, nil
}

type visitorBody struct {
	Name      string `json:"name"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	EmailID   string `json:"email_id"`
	Phone     string `json:"phone"`
	AppID     string `json:"app_id"`
}

func (b visitorBody) update() VisitorUpdate {
	return VisitorUpdate{Name: b.Name, FirstName: b.FirstName, LastName: b.LastName, Email: cmp.Or(b.Email, b.EmailID), Phone: b.Phone}
}

// postVisitor creates a visitor; a known email updates and returns that
// visitor instead, since SalesIQ identifies visitors by email.
func (s *Server) postVisitor(c *call) (reply, *apiError) {
	var b visitorBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	u := b.update()
	if u.Name == "" && u.FirstName == "" && u.LastName == "" && u.Email == "" {
		return reply{}, badField("email", "a visitor needs a name or an email")
	}
	if u.Email != "" && !validEmail(u.Email) {
		return reply{}, badField("email", "not an email address")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.AppID != "" && !slices.ContainsFunc(s.apps, func(a App) bool { return a.ID == b.AppID }) {
		return reply{}, badField("app_id", "unknown app")
	}
	if v := s.visitorByEmail(u.Email); v != nil {
		if _, err := s.updateVisitor(v, u); err != nil {
			return reply{}, badField("email", "not an email address")
		}
		return reply{object: "visitor", data: *v}, nil
	}
	now := ms(s.now())
	name := u.Name
	if name == "" {
		name = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	v := &Visitor{ID: s.newID(), Type: "lead", Name: name, FirstName: u.FirstName, LastName: u.LastName,
		EmailID: u.Email, Phone: u.Phone, AppID: cmp.Or(b.AppID, s.appID()), CreatedTime: now, ModifiedTime: now}
	s.addVisitor(v)
	return reply{object: "visitor", data: *v}, nil
}

// putConversationVisitor is the visitor edit of SPEC F8 through the API.
func (s *Server) putConversationVisitor(c *call) (reply, *apiError) {
	var b visitorBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	u := b.update()
	if u == (VisitorUpdate{}) {
		return reply{}, badField("email", "nothing to update")
	}
	if u.Email != "" && !validEmail(u.Email) {
		return reply{}, badField("email", "not an email address")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.conversation(c.r.PathValue("id"))
	var v *Visitor
	if conv != nil {
		v = s.visitor(conv.visitorID)
	}
	if v == nil {
		return reply{}, &apiError{Code: CodeNoConvVisitor, Message: "No Visitor found"}
	}
	if _, err := s.updateVisitor(v, u); err != nil {
		return reply{}, badField("email", "not an email address")
	}
	return reply{object: "visitor", data: *v}, nil
}

// Conversations.

var statusFilters = map[string][]string{
	"open":         {StateWaiting, StateConnected},
	"closed":       {StateMissed, StateEnded},
	StateWaiting:   {StateWaiting},
	StateConnected: {StateConnected},
	StateMissed:    {StateMissed},
	StateEnded:     {StateEnded},
}

func (s *Server) listConversations(c *call) (reply, *apiError) {
	q := c.r.URL.Query()
	var states []string
	if v := q.Get("status"); v != "" {
		var ok bool
		if states, ok = statusFilters[v]; !ok {
			return reply{}, badParam("status", "must be one of open, closed, waiting, connected, missed, end")
		}
	}
	var bounds [4]time.Time
	var has [4]bool
	for i, name := range []string{"from_time", "to_time", "updated_from_time", "updated_till_time"} {
		var aerr *apiError
		if bounds[i], has[i], aerr = msParam(q, name); aerr != nil {
			return reply{}, aerr
		}
	}
	sortBy := cmp.Or(q.Get("sort_by"), "in_time")
	if sortBy != "in_time" && sortBy != "end_time" && sortBy != "updated_time" {
		return reply{}, badParam("sort_by", "must be in_time, end_time or updated_time")
	}
	visitorType := q.Get("visitor_type")
	if visitorType != "" && visitorType != "lead" && visitorType != "contact" {
		return reply{}, badParam("visitor_type", "must be lead or contact")
	}
	dept, attender, app, email := q.Get("department_id"), q.Get("attender_id"), q.Get("app_id"), q.Get("email")

	s.mu.Lock()
	defer s.mu.Unlock()
	var picked []*conversation
	for _, conv := range s.conversations {
		v := s.visitor(conv.visitorID)
		switch {
		case states != nil && !slices.Contains(states, conv.state),
			dept != "" && conv.departmentID != dept,
			attender != "" && conv.ownerID != attender,
			app != "" && conv.appID != app,
			email != "" && (v == nil || !strings.EqualFold(v.EmailID, email)),
			visitorType != "" && (v == nil || v.Type != visitorType),
			has[0] && conv.opened.Before(bounds[0]),
			has[1] && conv.opened.After(bounds[1]),
			has[2] && conv.updated.Before(bounds[2]),
			has[3] && conv.updated.After(bounds[3]):
			continue
		}
		picked = append(picked, conv)
	}
	key := func(c *conversation) time.Time {
		switch sortBy {
		case "end_time":
			return c.ended
		case "updated_time":
			return c.updated
		}
		return c.opened
	}
	// Newest first; the id breaks ties so pages are stable.
	slices.SortStableFunc(picked, func(a, b *conversation) int {
		if n := key(b).Compare(key(a)); n != 0 {
			return n
		}
		return cmp.Compare(b.id, a.id)
	})
	out := make([]Conversation, 0, len(picked))
	for _, conv := range picked {
		out = append(out, s.render(conv))
	}
	return list(out, q)
}

func (s *Server) getConversation(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.conversation(c.r.PathValue("id"))
	if conv == nil {
		return reply{}, missing("conversation", c.r.PathValue("id"))
	}
	return reply{object: "conversation", data: s.render(conv)}, nil
}

func (s *Server) listMessages(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.conversation(c.r.PathValue("id"))
	if conv == nil {
		return reply{}, missing("conversation", c.r.PathValue("id"))
	}
	return list(clone(conv.messages), c.r.URL.Query())
}

// Article categories and articles.

func (s *Server) listCategories(c *call) (reply, *apiError) {
	q := c.r.URL.Query()
	dept := q.Get("department_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Category{}
	for _, cat := range s.categories {
		if dept == "" || slices.Contains(cat.DepartmentIDs, dept) {
			out = append(out, s.renderCategory(cat))
		}
	}
	return list(out, q)
}

type categoryBody struct {
	Name          string   `json:"name"`
	DepartmentIDs []string `json:"department_ids"`
}

func (s *Server) postCategory(c *call) (reply, *apiError) {
	var b categoryBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	name := strings.TrimSpace(b.Name)
	if name == "" {
		return reply{}, badField("name", "required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.checkDepartments(b.DepartmentIDs); aerr != nil {
		return reply{}, aerr
	}
	for _, cat := range s.categories {
		if strings.EqualFold(cat.Name, name) {
			return reply{}, &apiError{Code: CodeDuplicate, Message: "Category name already exists", JSONKey: "name"}
		}
	}
	now := ms(s.now())
	cat := &Category{ID: s.newID(), Name: name, DepartmentIDs: clone(b.DepartmentIDs), CreatedTime: now, ModifiedTime: now}
	s.categories = append(s.categories, cat)
	return reply{object: "articlecategory", data: s.renderCategory(cat)}, nil
}

func (s *Server) checkDepartments(ids []string) *apiError {
	for _, id := range ids {
		if s.department(id) == nil {
			return badField("department_ids", "unknown department "+id)
		}
	}
	return nil
}

func (s *Server) listArticles(c *call) (reply, *apiError) {
	q := c.r.URL.Query()
	category, dept, source, sourceID, status := q.Get("category_id"), q.Get("department_id"), q.Get("source"), q.Get("source_id"), q.Get("status")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Article{}
	for _, a := range s.articles {
		switch {
		case category != "" && a.CategoryID != category,
			dept != "" && !slices.Contains(a.DepartmentIDs, dept),
			source != "" && a.Source != source,
			sourceID != "" && a.SourceID != sourceID,
			status != "" && a.Status != status:
			continue
		}
		out = append(out, copyArticle(a))
	}
	return list(out, q)
}

func (s *Server) getArticle(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.article(c.r.PathValue("id"))
	if a == nil {
		return reply{}, missing("article", c.r.PathValue("id"))
	}
	return reply{object: "article", data: copyArticle(a)}, nil
}

type articleBody struct {
	Title         *string   `json:"title"`
	Content       *string   `json:"content"`
	CategoryID    *string   `json:"category_id"`
	DepartmentIDs *[]string `json:"department_ids"`
	Status        *string   `json:"status"`
	Source        *string   `json:"source"`
	SourceID      *string   `json:"source_id"`
	ReadOnly      *bool     `json:"read_only"`
}

func (s *Server) postArticle(c *call) (reply, *apiError) {
	var b articleBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	if b.Title == nil || strings.TrimSpace(*b.Title) == "" {
		return reply{}, badField("title", "required")
	}
	if b.Content == nil {
		return reply{}, badField("content", "required")
	}
	source := cmp.Or(deref(b.Source), SourceSalesIQ)
	if source != SourceSalesIQ && source != SourceZohoDesk {
		return reply{}, badField("source", "must be salesiq or zoho_desk")
	}
	now := ms(s.now())
	a := &article{Article: Article{Title: *b.Title, Content: *b.Content, Status: StatusDraft, Source: source,
		SourceID: deref(b.SourceID), DepartmentIDs: []string{}, Tags: []string{}, CreatedTime: now, ModifiedTime: now}}
	if source == SourceZohoDesk || (b.ReadOnly != nil && *b.ReadOnly) {
		// The creating client is the integration: only it may change the
		// copy later.
		a.ReadOnly, a.ownerClient = true, c.grant.ClientID
	}
	if source == SourceZohoDesk {
		a.Tags = []string{SourceZohoDesk}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.applyArticle(a, b); aerr != nil {
		return reply{}, aerr
	}
	a.ID = s.newID()
	s.articles = append(s.articles, a)
	return reply{object: "article", data: copyArticle(a)}, nil
}

func (s *Server) putArticle(c *call) (reply, *apiError) {
	var b articleBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.article(c.r.PathValue("id"))
	if a == nil {
		return reply{}, missing("article", c.r.PathValue("id"))
	}
	if aerr := s.mayChange(a, c); aerr != nil {
		return reply{}, aerr
	}
	if b.Source != nil && *b.Source != a.Source {
		return reply{}, badField("source", "cannot be changed")
	}
	if b.ReadOnly != nil && *b.ReadOnly != a.ReadOnly {
		return reply{}, badField("read_only", "cannot be changed")
	}
	if b.Title != nil && strings.TrimSpace(*b.Title) == "" {
		return reply{}, badField("title", "must not be empty")
	}
	next := *a
	next.DepartmentIDs, next.Tags = clone(a.DepartmentIDs), clone(a.Tags)
	if b.Title != nil {
		next.Title = *b.Title
	}
	if b.Content != nil {
		next.Content = *b.Content
	}
	if b.SourceID != nil {
		next.SourceID = *b.SourceID
	}
	if aerr := s.applyArticle(&next, b); aerr != nil {
		return reply{}, aerr
	}
	next.ModifiedTime = ms(s.now())
	*a = next
	return reply{object: "article", data: copyArticle(a)}, nil
}

func (s *Server) deleteArticle(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.r.PathValue("id")
	a := s.article(id)
	if a == nil {
		return reply{}, missing("article", id)
	}
	if aerr := s.mayChange(a, c); aerr != nil {
		return reply{}, aerr
	}
	s.articles = slices.DeleteFunc(s.articles, func(x *article) bool { return x == a })
	return reply{object: "article", data: map[string]any{"id": id, "deleted": true}}, nil
}

// mayChange enforces SPEC F2's read-only rule for synced articles.
func (s *Server) mayChange(a *article, c *call) *apiError {
	if a.ReadOnly && c.grant.ClientID != a.ownerClient {
		return &apiError{Code: CodeNotPermitted, Message: "This article was synced from Zoho Desk and is read-only"}
	}
	return nil
}

// applyArticle validates and sets the category, departments and status.
func (s *Server) applyArticle(a *article, b articleBody) *apiError {
	if b.CategoryID != nil {
		if *b.CategoryID != "" && s.category(*b.CategoryID) == nil {
			return badField("category_id", "unknown category")
		}
		a.CategoryID = *b.CategoryID
	}
	if b.DepartmentIDs != nil {
		if aerr := s.checkDepartments(*b.DepartmentIDs); aerr != nil {
			return aerr
		}
		a.DepartmentIDs = clone(*b.DepartmentIDs)
	}
	if b.Status != nil {
		if *b.Status != StatusPublished && *b.Status != StatusDraft {
			return badField("status", "must be published or draft")
		}
		a.Status = *b.Status
	}
	return nil
}

// Webhooks.

func (s *Server) listWebhooks(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Webhook, 0, len(s.webhooks))
	for _, w := range s.webhooks {
		out = append(out, copyWebhook(w))
	}
	return list(out, c.r.URL.Query())
}

func (s *Server) getWebhook(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhook(c.r.PathValue("id"))
	if w == nil {
		return reply{}, missing("webhook", c.r.PathValue("id"))
	}
	return reply{object: "webhook", data: copyWebhook(w)}, nil
}

type webhookBody struct {
	Type    string   `json:"type"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Version string   `json:"version"`
	AppIDs  []string `json:"app_ids"`
}

func (s *Server) postWebhook(c *call) (reply, *apiError) {
	var b webhookBody
	if aerr := decodeBody(c.r, &b); aerr != nil {
		return reply{}, aerr
	}
	if b.Type != "" && b.Type != "data" {
		return reply{}, badField("type", "must be data")
	}
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return reply{}, badField("url", "must be an http or https URL")
	}
	if len(b.Events) == 0 {
		return reply{}, badField("events", "required")
	}
	for _, e := range b.Events {
		if !slices.Contains(knownEvents, e) {
			return reply{}, badField("events", fmt.Sprintf("unknown event %q", e))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range b.AppIDs {
		if !slices.ContainsFunc(s.apps, func(a App) bool { return a.ID == id }) {
			return reply{}, badField("app_ids", "unknown app "+id)
		}
	}
	w := &webhook{Webhook: Webhook{ID: s.newID(), Type: "data", URL: b.URL, Events: slices.Compact(slices.Sorted(slices.Values(b.Events))),
		Version: cmp.Or(b.Version, "1"), AppIDs: clone(b.AppIDs), CreatedTime: ms(s.now())}}
	s.webhooks = append(s.webhooks, w)
	return reply{object: "webhook", data: copyWebhook(w)}, nil
}

func (s *Server) deleteWebhook(c *call) (reply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.r.PathValue("id")
	w := s.webhook(id)
	if w == nil {
		return reply{}, missing("webhook", id)
	}
	s.webhooks = slices.DeleteFunc(s.webhooks, func(x *webhook) bool { return x == w })
	return reply{object: "webhook", data: map[string]any{"id": id, "deleted": true}}, nil
}

// postWebhookKeys makes a new key pair; deliveries are signed with it from
// now on and the subscriber gets the public half.
func (s *Server) postWebhookKeys(c *call) (reply, *apiError) {
	id := c.r.PathValue("id")
	s.mu.Lock()
	found := s.webhook(id) != nil
	s.mu.Unlock()
	if !found {
		return reply{}, missing("webhook", id)
	}
	key, pub, err := newKeyPair() // slow; not under the lock
	if err != nil {
		s.log.Error("make webhook key", "webhook", id, "err", err)
		return reply{}, &apiError{Code: CodeUnknownAuth, Message: "Unknown authentication error, Contact SalesIQ Team!"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhook(id)
	if w == nil {
		return reply{}, missing("webhook", id)
	}
	w.key = key
	return reply{object: "webhook_key", data: map[string]string{"public_key": pub}}, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
