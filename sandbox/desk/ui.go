package desk

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The methods in this file act as people in Desk's web UI: an agent
// editing a contact, a customer writing back, a customer rating a ticket.
// They use the same write path as the API, so subscribers get the same
// webhooks, and they carry no source id, so ignoreSourceId never hides
// them. They act as the portal owner unless an agent id is given.

// Fields is a record body as the API takes it: API names, ids as strings,
// custom fields under "cf".
type Fields map[string]any

// Record is a record as the API shows it.
type Record map[string]any

// ID is the record's id.
func (r Record) ID() string { s, _ := r["id"].(string); return s }

// Str reads a string field ("" when null or absent).
func (r Record) Str(key string) string { s, _ := r[key].(string); return s }

// ui runs fn under the lock as the given agent (the owner when "").
func (s *Server) ui(agentID string, fn func(o *org, act actor) error) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	act := actor{agentID: s.o.owner}
	if agentID != "" {
		id, ok := parseID(agentID)
		a := s.o.agents.get(id)
		if !ok || a == nil || a.deleted {
			return fmt.Errorf("desk: act as agent %s: %w", agentID, errNotFound())
		}
		act.agentID = id
	}
	return fn(s.o, act)
}

func body(f Fields) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		return nil
	}
	return b
}

func record(m map[string]any) Record {
	// A JSON round trip gives the caller the exact wire shapes (strings
	// for ids and counts, null for unset) and a copy it may keep.
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil
	}
	return r
}

func wrap(action string, e *APIError) error {
	if e == nil {
		return nil
	}
	return fmt.Errorf("desk: %s: %w", action, e)
}

func lookupID(id string) int64 {
	n, _ := parseID(id)
	return n
}

// ---- contacts, accounts, products ----

// CreateContact adds a contact as an agent would in the UI.
func (s *Server) CreateContact(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		ws, e := o.parseWrite(modContacts, body(f), true)
		if e != nil {
			return wrap("create contact", e)
		}
		out = record(s.c.contactJSON(o, s.c.createContact(o, act, ws), nil))
		return nil
	})
	return out, err
}

// UpdateContact edits a contact.
func (s *Server) UpdateContact(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		ct := o.contacts.get(lookupID(id))
		if ct == nil || ct.trashed {
			return wrap("update contact "+id, errNotFound())
		}
		ws, e := o.parseWrite(modContacts, body(f), false)
		if e != nil {
			return wrap("update contact "+id, e)
		}
		s.c.updateContact(o, act, ct, ws)
		out = record(s.c.contactJSON(o, ct, nil))
		return nil
	})
	return out, err
}

// DeleteContact moves a contact, with its tickets, to the recycle bin.
func (s *Server) DeleteContact(id string) error {
	return s.ui("", func(o *org, act actor) error {
		ct := o.contacts.get(lookupID(id))
		if ct == nil || ct.trashed {
			return wrap("delete contact "+id, errNotFound())
		}
		s.c.trashContact(o, act, ct)
		return nil
	})
}

// LinkCRMContact records the link Desk's built-in CRM integration keeps
// (zohoCRMContact); crmID "" removes it.
func (s *Server) LinkCRMContact(contactID, crmID, crmType string) error {
	return s.ui("", func(o *org, act actor) error {
		ct := o.contacts.get(lookupID(contactID))
		if ct == nil {
			return wrap("link contact "+contactID, errNotFound())
		}
		before := s.c.contactJSON(o, ct, nil)
		ct.crmID, ct.crmType = lookupID(crmID), crmType
		if ct.crmType == "" && ct.crmID != 0 {
			ct.crmType = "contacts_leads"
		}
		s.c.touchContact(o, act, ct, before)
		return nil
	})
}

// CreateAccount adds an account.
func (s *Server) CreateAccount(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		ws, e := o.parseWrite(modAccounts, body(f), true)
		if e != nil {
			return wrap("create account", e)
		}
		out = record(s.c.accountJSON(o, s.c.createAccount(o, act, ws), nil))
		return nil
	})
	return out, err
}

// UpdateAccount edits an account.
func (s *Server) UpdateAccount(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		a := o.accounts.get(lookupID(id))
		if a == nil || a.trashed {
			return wrap("update account "+id, errNotFound())
		}
		ws, e := o.parseWrite(modAccounts, body(f), false)
		if e != nil {
			return wrap("update account "+id, e)
		}
		s.c.updateAccount(o, act, a, ws)
		out = record(s.c.accountJSON(o, a, nil))
		return nil
	})
	return out, err
}

// DeleteAccount moves an account and its contracts to the recycle bin.
func (s *Server) DeleteAccount(id string) error {
	return s.ui("", func(o *org, act actor) error {
		a := o.accounts.get(lookupID(id))
		if a == nil || a.trashed {
			return wrap("delete account "+id, errNotFound())
		}
		s.c.trashAccount(o, act, a)
		return nil
	})
}

// CreateProduct adds a product; departmentIds is required.
func (s *Server) CreateProduct(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		ws, e := o.parseWrite(modProducts, body(f), true)
		if e != nil {
			return wrap("create product", e)
		}
		out = record(s.c.productJSON(o, s.c.createProduct(o, act, ws)))
		return nil
	})
	return out, err
}

// UpdateProduct edits a product.
func (s *Server) UpdateProduct(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		p := o.products.get(lookupID(id))
		if p == nil || p.trashed {
			return wrap("update product "+id, errNotFound())
		}
		ws, e := o.parseWrite(modProducts, body(f), false)
		if e != nil {
			return wrap("update product "+id, e)
		}
		s.c.updateProduct(o, act, p, ws)
		out = record(s.c.productJSON(o, p))
		return nil
	})
	return out, err
}

// DeleteProduct moves a product to the recycle bin.
func (s *Server) DeleteProduct(id string) error {
	return s.ui("", func(o *org, act actor) error {
		p := o.products.get(lookupID(id))
		if p == nil || p.trashed {
			return wrap("delete product "+id, errNotFound())
		}
		s.c.trashProduct(o, act, p)
		return nil
	})
}

// ---- tickets ----

// CreateTicket opens a ticket (subject, departmentId and contactId or a
// "contact" object are required).
func (s *Server) CreateTicket(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t, e := s.c.createTicket(o, act, body(f))
		if e != nil {
			return wrap("create ticket", e)
		}
		out = record(s.c.ticketJSON(o, t, nil))
		return nil
	})
	return out, err
}

// UpdateTicket edits ticket fields.
func (s *Server) UpdateTicket(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(id))
		if t == nil || t.trashed {
			return wrap("update ticket "+id, errNotFound())
		}
		ws, e := o.parseTicketUpdate(body(f))
		if e != nil {
			return wrap("update ticket "+id, e)
		}
		s.c.updateTicket(o, act, t, ws)
		out = record(s.c.ticketJSON(o, t, nil))
		return nil
	})
	return out, err
}

// SetTicketStatus changes a ticket's status (custom statuses included).
func (s *Server) SetTicketStatus(id, status string) (Record, error) {
	return s.UpdateTicket(id, Fields{"status": status})
}

// Escalate marks a ticket escalated, as an SLA escalation or an agent
// would; subscribers see a Ticket_Update with isEscalated.
func (s *Server) Escalate(id string) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(id))
		if t == nil || t.trashed {
			return wrap("escalate ticket "+id, errNotFound())
		}
		before := s.c.ticketJSON(o, t, nil)
		t.escalated = true
		s.c.touchTicket(o, act, t, before)
		out = record(s.c.ticketJSON(o, t, nil))
		return nil
	})
	return out, err
}

// DeleteTicket moves a ticket to the recycle bin.
func (s *Server) DeleteTicket(id string) error {
	return s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(id))
		if t == nil || t.trashed {
			return wrap("delete ticket "+id, errNotFound())
		}
		s.c.trashTicket(o, act, t, 0)
		return nil
	})
}

// CustomerReply records an email from the ticket's contact: an incoming
// thread, which reopens a closed or on-hold ticket.
func (s *Server) CustomerReply(ticketID, content string) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil || t.trashed {
			return wrap("add customer reply to "+ticketID, errNotFound())
		}
		out = record(s.c.threadJSON(o, s.c.addCustomerThread(o, act, t, "EMAIL", content), true))
		return nil
	})
	return out, err
}

// AgentReply sends an email reply from the UI, from the department's
// default address to the ticket's email.
func (s *Server) AgentReply(ticketID, agentID, content string) (Record, error) {
	var out Record
	err := s.ui(agentID, func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil || t.trashed {
			return wrap("reply to "+ticketID, errNotFound())
		}
		b := body(Fields{"channel": "EMAIL", "content": content, "contentType": "html",
			"fromEmailAddress": o.defaultReplyAddress(t.departmentID)})
		th, status, e := s.c.parseReply(o, t, b, false)
		if e != nil {
			return wrap("reply to "+ticketID, e)
		}
		s.c.addAgentThread(o, act, t, th, status)
		out = record(s.c.threadJSON(o, th, true))
		return nil
	})
	return out, err
}

// AddComment comments on a ticket as an agent. Mention someone with
// MentionMarkup(zuid) in content.
func (s *Server) AddComment(ticketID, agentID, content string, public bool) (Record, error) {
	var out Record
	err := s.ui(agentID, func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil || t.trashed {
			return wrap("comment on "+ticketID, errNotFound())
		}
		in, e := parseComment(body(Fields{"content": content, "isPublic": public, "contentType": "html"}), true)
		if e != nil {
			return wrap("comment on "+ticketID, e)
		}
		out = record(s.c.commentJSON(o, s.c.addComment(o, act, t, in), map[string]bool{"mentions": true}))
		return nil
	})
	return out, err
}

// EditComment changes a comment's content.
func (s *Server) EditComment(ticketID, commentID, content string) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil {
			return wrap("edit comment "+commentID, errNotFound())
		}
		s.c.materialize(o, t)
		cm := t.comment(lookupID(commentID))
		if cm == nil {
			return wrap("edit comment "+commentID, errNotFound())
		}
		in, e := parseComment(body(Fields{"content": content}), false)
		if e != nil {
			return wrap("edit comment "+commentID, e)
		}
		s.c.editComment(o, act, t, cm, in)
		out = record(s.c.commentJSON(o, cm, map[string]bool{"mentions": true}))
		return nil
	})
	return out, err
}

// RateTicket records the customer's happiness rating (GOOD, OKAY or BAD)
// and feedback. It shows as an incoming FEEDBACK thread, so subscribers
// hear of it through Ticket_Thread_Add.
func (s *Server) RateTicket(ticketID, rating, feedback string) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil || t.trashed {
			return wrap("rate ticket "+ticketID, errNotFound())
		}
		v := strings.ToUpper(rating)
		if !contains(ratingValues, v) {
			return wrap("rate ticket "+ticketID, errInvalidData(invalid("rating")))
		}
		out = record(s.c.ratingJSON(o, s.c.rate(o, act, t, v, feedback)))
		return nil
	})
	return out, err
}

// AddTimeEntry logs time on a ticket (executedTime is required).
func (s *Server) AddTimeEntry(ticketID string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		t := o.tickets.get(lookupID(ticketID))
		if t == nil || t.trashed {
			return wrap("log time on "+ticketID, errNotFound())
		}
		te, e := s.c.addTimeEntry(o, act, t, body(f))
		if e != nil {
			return wrap("log time on "+ticketID, e)
		}
		out = record(s.c.timeEntryJSON(o, te))
		return nil
	})
	return out, err
}

// AddActivity adds a task, call or event (kind "tasks", "calls" or
// "events") linked to a ticket and/or contact.
func (s *Server) AddActivity(kind string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		k, known := activityKinds[kind]
		if !known {
			return wrap("add activity", errInvalidData(invalid("kind")))
		}
		a, e := s.c.addActivity(o, act, k, body(f))
		if e != nil {
			return wrap("add activity", e)
		}
		out = record(s.c.activityJSON(o, a))
		return nil
	})
	return out, err
}

// AddAttachment attaches a file to a ticket, contact, account or product
// (module "tickets", "contacts", "accounts" or "products").
func (s *Server) AddAttachment(module, parentID, name string, data []byte) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		id := lookupID(parentID)
		var exists bool
		switch module {
		case modTickets:
			exists = o.tickets.get(id) != nil
		case modContacts:
			exists = o.contacts.get(id) != nil
		case modAccounts:
			exists = o.accounts.get(id) != nil
		case modProducts:
			exists = o.products.get(id) != nil
		}
		if !exists {
			return wrap("attach to "+module+" "+parentID, errNotFound())
		}
		out = record(s.c.attachmentJSON(o, s.c.addAttachment(o, act, module, id, name, data, true)))
		return nil
	})
	return out, err
}

// AddContract adds a contract to an account. Without associatedSLAId it
// gets its department's default SLA.
func (s *Server) AddContract(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		k := &contract{id: o.newID(), ownerID: act.agentID}
		if e := s.c.applyContract(o, k, body(f), true); e != nil {
			o.contractsOf.remove(k.accountID, k.id)
			return wrap("add contract", e)
		}
		k.createdTime, k.modifiedTime = s.c.now(), s.c.now()
		o.contracts.put(k.id, k)
		out = record(s.c.contractJSON(o, k))
		return nil
	})
	return out, err
}

// ---- agents, departments, setup ----

// AgentSpec describes an agent for AddAgent.
type AgentSpec struct {
	FirstName   string
	LastName    string
	Email       string
	Profile     string   // profile name or type: "Administrator", "Agent", "Light Agent", ... (default Agent)
	Departments []string // department ids (default: the default department)
}

// AddAgent adds an active agent and fires Agent_Add.
func (s *Server) AddAgent(spec AgentSpec) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		if !emailRe.MatchString(spec.Email) || o.agentByEmail(spec.Email) != nil {
			return wrap("add agent", errInvalidData(invalid("emailId")))
		}
		if spec.LastName == "" {
			return wrap("add agent", errInvalidData(missing("lastName")))
		}
		want := spec.Profile
		if want == "" {
			want = "Agent"
		}
		var prof *profile
		o.profiles.each(func(p *profile) bool {
			if strings.EqualFold(p.name, want) || strings.EqualFold(p.typ, want) || (want == "Light Agent" && p.typ == "Light") {
				prof = p
				return false
			}
			return true
		})
		if prof == nil {
			return wrap("add agent", errInvalidData(invalid("profileId")))
		}
		var roleID int64
		o.roles.each(func(r *role) bool { roleID = r.id; return true })
		a := &agent{id: o.newID(), zuid: 56000000 + int64(o.agents.len()), firstName: spec.FirstName, lastName: spec.LastName,
			email: spec.Email, profileID: prof.id, roleID: roleID, status: "ACTIVE", confirmed: true, langCode: "en_US",
			timeZone: o.timeZone, createdTime: s.c.now()}
		for _, d := range spec.Departments {
			dep := o.departments.get(lookupID(d))
			if dep == nil {
				return wrap("add agent", errInvalidData(invalid("associatedDepartmentIds")))
			}
			a.deptIDs = append(a.deptIDs, dep.id)
		}
		if len(a.deptIDs) == 0 {
			o.departments.each(func(d *department) bool {
				if d.isDefault {
					a.deptIDs = append(a.deptIDs, d.id)
				}
				return true
			})
		}
		o.agents.put(a.id, a)
		for _, d := range a.deptIDs {
			dep := o.departments.get(d)
			dep.agentIDs = append(dep.agentIDs, a.id)
		}
		out = record(s.c.agentJSON(o, a, nil))
		s.c.emit(o, act, event{typ: "Agent_Add", payload: s.c.agentJSON(o, a, nil)})
		return nil
	})
	return out, err
}

// setAgentStatus changes an agent's status and fires Agent_Update.
func (s *Server) setAgentStatus(id, status string) error {
	return s.ui("", func(o *org, act actor) error {
		a := o.agents.get(lookupID(id))
		if a == nil || a.deleted {
			return wrap("change agent "+id, errNotFound())
		}
		if a.id == o.owner && status != "ACTIVE" {
			return wrap("change agent "+id, errUnprocessable("The portal owner cannot be deactivated."))
		}
		before := s.c.agentJSON(o, a, nil)
		a.status = status
		after := s.c.agentJSON(o, a, nil)
		if prev, changed := diff(before, after); changed != nil {
			s.c.emit(o, act, event{typ: "Agent_Update", payload: after, prev: prev, changed: changed})
		}
		return nil
	})
}

// DeactivateAgent disables an agent (status DISABLED), as when a linked
// user leaves (SPEC A5).
func (s *Server) DeactivateAgent(id string) error { return s.setAgentStatus(id, "DISABLED") }

// ActivateAgent re-enables an agent.
func (s *Server) ActivateAgent(id string) error { return s.setAgentStatus(id, "ACTIVE") }

// DeleteAgent deletes an agent: GET /agents/{id} then shows status
// DELETED, lists leave it out, and Agent_Delete fires.
func (s *Server) DeleteAgent(id string) error {
	return s.ui("", func(o *org, act actor) error {
		a := o.agents.get(lookupID(id))
		if a == nil || a.deleted {
			return wrap("delete agent "+id, errNotFound())
		}
		if a.id == o.owner {
			return wrap("delete agent "+id, errUnprocessable("The portal owner cannot be deleted."))
		}
		a.deleted = true
		s.c.emit(o, act, event{typ: "Agent_Delete", payload: s.c.agentJSON(o, a, nil)})
		return nil
	})
}

// AddDepartment creates a department (with a default from-address
// <slug>@<portal>.example) and fires Department_Add.
func (s *Server) AddDepartment(name string) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		d, e := s.c.createDepartment(o, act, body(Fields{"name": name}))
		if e != nil {
			return wrap("add department", e)
		}
		out = record(s.c.departmentJSON(o, d))
		return nil
	})
	return out, err
}

// UpdateDepartment edits a department (name, description, isEnabled).
func (s *Server) UpdateDepartment(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		d := o.departments.get(lookupID(id))
		if d == nil {
			return wrap("update department "+id, errNotFound())
		}
		if e := s.c.updateDepartment(o, act, d, body(f)); e != nil {
			return wrap("update department "+id, e)
		}
		out = record(s.c.departmentJSON(o, d))
		return nil
	})
	return out, err
}

// AddCustomField adds a custom field to a module's layout.
func (s *Server) AddCustomField(module string, spec FieldSpec) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		f, e := o.addCustomField(module, spec)
		if e != nil {
			return wrap("add field "+spec.APIName, e)
		}
		out = record(o.fieldJSON(module, f))
		return nil
	})
	return out, err
}

// AddTicketStatus adds a custom ticket status of a type (Open, On Hold or
// Closed).
func (s *Server) AddTicketStatus(name, statusType string) error {
	return s.ui("", func(o *org, act actor) error {
		if statusType != "Open" && statusType != "On Hold" && statusType != "Closed" {
			return wrap("add status "+name, errInvalidData(invalid("statusType")))
		}
		for _, st := range o.statuses {
			if strings.EqualFold(st.name, name) {
				return wrap("add status "+name, errInvalidData(FieldError{FieldName: "/name", ErrorType: "duplicate"}))
			}
		}
		o.statuses = append(o.statuses, ticketStatus{name: name, typ: statusType})
		return nil
	})
}

// ---- knowledge base ----

// CreateArticle adds an article (title, answer, categoryId, status and
// locale are required).
func (s *Server) CreateArticle(f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		a, e := s.c.createArticle(o, act, body(f))
		if e != nil {
			return wrap("create article", e)
		}
		out = record(s.c.articleJSON(o, a, true))
		return nil
	})
	return out, err
}

// UpdateArticle edits an article.
func (s *Server) UpdateArticle(id string, f Fields) (Record, error) {
	var out Record
	err := s.ui("", func(o *org, act actor) error {
		a := o.articles.get(lookupID(id))
		if a == nil || a.trashed {
			return wrap("update article "+id, errNotFound())
		}
		if e := s.c.updateArticle(o, act, a, body(f)); e != nil {
			return wrap("update article "+id, e)
		}
		out = record(s.c.articleJSON(o, a, true))
		return nil
	})
	return out, err
}

// DeleteArticle moves an article to the recycle bin.
func (s *Server) DeleteArticle(id string) error {
	return s.ui("", func(o *org, act actor) error {
		a := o.articles.get(lookupID(id))
		if a == nil || a.trashed {
			return wrap("delete article "+id, errNotFound())
		}
		s.c.trashArticle(o, act, a)
		return nil
	})
}

// ---- reads for tests ----

func (s *Server) read(fn func(o *org)) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	fn(s.o)
}

// Contact returns a contact as GET /contacts/{id} shows it.
func (s *Server) Contact(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if ct := o.contacts.get(lookupID(id)); ct != nil {
			out = record(s.c.contactJSON(o, ct, nil))
		}
	})
	return out, out != nil
}

// ContactByEmail finds a live contact by primary email.
func (s *Server) ContactByEmail(email string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if ct := o.contactByEmail(email); ct != nil {
			out = record(s.c.contactJSON(o, ct, nil))
		}
	})
	return out, out != nil
}

// Account returns an account.
func (s *Server) Account(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if a := o.accounts.get(lookupID(id)); a != nil {
			out = record(s.c.accountJSON(o, a, nil))
		}
	})
	return out, out != nil
}

// Product returns a product.
func (s *Server) Product(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if p := o.products.get(lookupID(id)); p != nil {
			out = record(s.c.productJSON(o, p))
		}
	})
	return out, out != nil
}

// Ticket returns a ticket.
func (s *Server) Ticket(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if t := o.tickets.get(lookupID(id)); t != nil {
			out = record(s.c.ticketJSON(o, t, nil))
		}
	})
	return out, out != nil
}

// Threads returns a ticket's threads with content, oldest first.
func (s *Server) Threads(ticketID string) []Record {
	var out []Record
	s.read(func(o *org) {
		if t := o.tickets.get(lookupID(ticketID)); t != nil {
			s.c.materialize(o, t)
			for _, th := range t.threads {
				out = append(out, record(s.c.threadJSON(o, th, true)))
			}
		}
	})
	return out
}

// Comments returns a ticket's comments with their mentions.
func (s *Server) Comments(ticketID string) []Record {
	var out []Record
	s.read(func(o *org) {
		if t := o.tickets.get(lookupID(ticketID)); t != nil {
			s.c.materialize(o, t)
			for _, cm := range t.comments {
				out = append(out, record(s.c.commentJSON(o, cm, map[string]bool{"mentions": true})))
			}
		}
	})
	return out
}

// Ratings returns a ticket's happiness ratings.
func (s *Server) Ratings(ticketID string) []Record {
	var out []Record
	s.read(func(o *org) {
		for _, id := range o.ratingsOf[lookupID(ticketID)] {
			out = append(out, record(s.c.ratingJSON(o, o.ratings.get(id))))
		}
	})
	return out
}

// Article returns an article with its answer.
func (s *Server) Article(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if a := o.articles.get(lookupID(id)); a != nil {
			out = record(s.c.articleJSON(o, a, true))
		}
	})
	return out, out != nil
}

// Agent returns an agent.
func (s *Server) Agent(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if a := o.agents.get(lookupID(id)); a != nil {
			out = record(s.c.agentJSON(o, a, map[string]bool{"profile": true, "role": true}))
		}
	})
	return out, out != nil
}

// Agents lists the agents that are not deleted, with their profiles.
func (s *Server) Agents() []Record {
	var out []Record
	s.read(func(o *org) {
		o.agents.each(func(a *agent) bool {
			if !a.deleted {
				out = append(out, record(s.c.agentJSON(o, a, map[string]bool{"profile": true, "role": true})))
			}
			return true
		})
	})
	return out
}

// Departments lists every department, disabled ones included.
func (s *Server) Departments() []Record {
	var out []Record
	s.read(func(o *org) {
		o.departments.each(func(d *department) bool {
			out = append(out, record(s.c.departmentJSON(o, d)))
			return true
		})
	})
	return out
}

// SLAs lists every SLA as GET /slas shows them, in creation order.
func (s *Server) SLAs() []Record {
	var out []Record
	s.read(func(o *org) {
		o.slas.each(func(x *sla) bool {
			out = append(out, record(s.c.slaJSON(o, x)))
			return true
		})
	})
	return out
}

// Contract returns a contract as GET /contracts/{id} shows it, with its
// SLA as associatedSLAId and sla{id,name}.
func (s *Server) Contract(id string) (Record, bool) {
	var out Record
	s.read(func(o *org) {
		if k := o.contracts.get(lookupID(id)); k != nil {
			out = record(s.c.contractJSON(o, k))
		}
	})
	return out, out != nil
}

// FromAddresses lists a department's verified reply addresses.
func (s *Server) FromAddresses(deptID string) []string {
	var out []string
	s.read(func(o *org) {
		o.replyAddrs.each(func(a *replyAddress) bool {
			if a.deptID == lookupID(deptID) && a.verified {
				out = append(out, a.address)
			}
			return true
		})
	})
	return out
}

// Webhooks lists the subscriptions as GET /webhooks shows them.
func (s *Server) Webhooks() []Record {
	var out []Record
	s.read(func(o *org) {
		o.webhooks.each(func(w *webhook) bool {
			out = append(out, record(s.c.webhookJSON(w)))
			return true
		})
	})
	return out
}

// Trash lists the recycle bin, newest first.
func (s *Server) Trash() []Record {
	var out []Record
	s.read(func(o *org) {
		for i := len(o.trash) - 1; i >= 0; i-- {
			out = append(out, record(s.c.trashJSON(o, o.trash[i], nil)))
		}
	})
	return out
}

// Related counts a record's live related lists (SPEC B11), the figures a
// delete policy looks at.
type Related struct {
	Tickets     int
	TimeEntries int
	Activities  int
	Attachments int
	Contacts    int
	Contracts   int
}

// Any reports whether there is anything at all.
func (r Related) Any() bool {
	return r.Tickets+r.TimeEntries+r.Activities+r.Attachments+r.Contacts+r.Contracts > 0
}

// RelatedOf counts the related records of a contact, account or product.
func (s *Server) RelatedOf(id string) Related {
	var r Related
	s.read(func(o *org) {
		n := lookupID(id)
		for _, tid := range o.ticketsOf[n] {
			t := o.tickets.get(tid)
			if t.trashed {
				continue
			}
			r.Tickets++
			if o.contacts.get(n) != nil {
				for _, te := range o.timeEntriesOf[tid] {
					if !o.timeEntries.get(te).trashed {
						r.TimeEntries++
					}
				}
			}
		}
		if o.contacts.get(n) != nil {
			for _, aid := range o.activitiesOf[n] {
				if !o.activities.get(aid).trashed {
					r.Activities++
				}
			}
		}
		for _, aid := range o.attachmentsOf[n] {
			if !o.attachments.get(aid).trashed {
				r.Attachments++
			}
		}
		for _, cid := range o.contactsOf[n] {
			if !o.contacts.get(cid).trashed {
				r.Contacts++
			}
		}
		for _, kid := range o.contractsOf[n] {
			if !o.contracts.get(kid).trashed {
				r.Contracts++
			}
		}
	})
	return r
}

// Counts are the sizes of the bound org, trashed records excluded.
type Counts struct {
	Contacts, Accounts, Products, Tickets, Articles, Categories int
}

// Counts counts the live records of the bound org.
func (s *Server) Counts() Counts {
	var n Counts
	s.read(func(o *org) {
		o.contacts.each(func(x *contact) bool {
			if !x.trashed {
				n.Contacts++
			}
			return true
		})
		o.accounts.each(func(x *account) bool {
			if !x.trashed {
				n.Accounts++
			}
			return true
		})
		o.products.each(func(x *product) bool {
			if !x.trashed {
				n.Products++
			}
			return true
		})
		o.tickets.each(func(x *ticket) bool {
			if !x.trashed {
				n.Tickets++
			}
			return true
		})
		o.articles.each(func(x *article) bool {
			if !x.trashed {
				n.Articles++
			}
			return true
		})
		o.categories.each(func(x *category) bool {
			if !x.trashed {
				n.Categories++
			}
			return true
		})
	})
	return n
}

// IDs lists the ids of a module's live records in creation order (module
// "contacts", "accounts", "products", "tickets" or "articles"), so tests
// can pick records with or without related lists.
func (s *Server) IDs(module string) []string {
	var out []string
	s.read(func(o *org) {
		add := func(id int64, trashed bool) {
			if !trashed {
				out = append(out, strconv.FormatInt(id, 10))
			}
		}
		switch module {
		case modContacts:
			o.contacts.each(func(x *contact) bool { add(x.id, x.trashed); return true })
		case modAccounts:
			o.accounts.each(func(x *account) bool { add(x.id, x.trashed); return true })
		case modProducts:
			o.products.each(func(x *product) bool { add(x.id, x.trashed); return true })
		case modTickets:
			o.tickets.each(func(x *ticket) bool { add(x.id, x.trashed); return true })
		case "articles":
			o.articles.each(func(x *article) bool { add(x.id, x.trashed); return true })
		case "categories":
			o.categories.each(func(x *category) bool { add(x.id, x.trashed); return true })
		}
	})
	return out
}
