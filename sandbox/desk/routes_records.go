package desk

import (
	"net/http"
	"strings"
)

var contactGetters = map[string]func(any) string{
	"email":          func(r any) string { return r.(*contact).email },
	"secondaryEmail": func(r any) string { return r.(*contact).secondaryEmail },
	"phone":          func(r any) string { return r.(*contact).phone },
	"mobile":         func(r any) string { return r.(*contact).mobile },
	"firstName":      func(r any) string { return r.(*contact).firstName },
	"lastName":       func(r any) string { return r.(*contact).lastName },
	"fullName":       func(r any) string { return r.(*contact).fullName() },
	"title":          func(r any) string { return r.(*contact).title },
	"type":           func(r any) string { return r.(*contact).typ },
}

var accountGetters = map[string]func(any) string{
	"accountName": func(r any) string { return r.(*account).name },
	"email":       func(r any) string { return r.(*account).email },
	"phone":       func(r any) string { return r.(*account).phone },
	"website":     func(r any) string { return r.(*account).website },
	"industry":    func(r any) string { return r.(*account).industry },
}

var productGetters = map[string]func(any) string{
	"productName":     func(r any) string { return r.(*product).name },
	"productCode":     func(r any) string { return r.(*product).code },
	"productCategory": func(r any) string { return r.(*product).category },
}

func sortContacts(o *org, rows []*contact, s sortSpec) {
	id := func(c *contact) int64 { return c.id }
	switch s.key {
	case "firstName":
		sortByString(rows, func(c *contact) string { return c.firstName }, id, s.desc, s.keep)
	case "lastName":
		sortByString(rows, func(c *contact) string { return c.lastName }, id, s.desc, s.keep)
	case "phone":
		sortByString(rows, func(c *contact) string { return c.phone }, id, s.desc, s.keep)
	case "email":
		sortByString(rows, func(c *contact) string { return c.email }, id, s.desc, s.keep)
	case "account":
		sortByString(rows, func(c *contact) string {
			if a := o.accounts.get(c.accountID); a != nil {
				return a.name
			}
			return ""
		}, id, s.desc, s.keep)
	case "createdTime":
		sortByInt(rows, func(c *contact) int64 { return c.createdTime }, id, s.desc, s.keep)
	case "modifiedTime":
		sortByInt(rows, func(c *contact) int64 { return c.modifiedTime }, id, s.desc, s.keep)
	case "relevance":
		sortByInt(rows, func(c *contact) int64 { return c.modifiedTime }, id, true, s.keep)
	}
}

func (cl *call) contact() (*contact, *APIError) {
	id, e := cl.pathID("contactId")
	if e != nil {
		return nil, e
	}
	ct := cl.org.contacts.get(id)
	if ct == nil {
		return nil, errNotFound()
	}
	return ct, nil
}

func (cl *call) account() (*account, *APIError) {
	id, e := cl.pathID("accountId")
	if e != nil {
		return nil, e
	}
	a := cl.org.accounts.get(id)
	if a == nil {
		return nil, errNotFound()
	}
	return a, nil
}

func (cl *call) product() (*product, *APIError) {
	id, e := cl.pathID("productId")
	if e != nil {
		return nil, e
	}
	p := cl.org.products.get(id)
	if p == nil {
		return nil, errNotFound()
	}
	return p, nil
}

func errTrashed() *APIError {
	return errUnprocessable("The record is in the recycle bin.")
}

// relatedTickets answers a record's ticket list: 1-based paging, newest
// first unless sortBy says otherwise.
func (c *core) relatedTickets(cl *call, parent int64) (reply, *APIError) {
	p, e := parsePage(cl.q, 1, 10, 100)
	if e != nil {
		return fail(e)
	}
	s, e := parseSort(cl.q, "dueDate", "createdTime", "recentThread", "responseDueDate", "customerResponseTime", "ticketNumber", "modifiedTime")
	if e != nil {
		return fail(e)
	}
	if s.key == "" {
		s = sortSpec{key: "createdTime", desc: true}
	}
	var rows []*ticket
	for _, id := range cl.org.ticketsOf[parent] {
		if t := cl.org.tickets.get(id); t != nil && !t.trashed {
			rows = append(rows, t)
		}
	}
	sortTickets(cl.org, rows, s.upTo(p))
	inc := includes(cl.q)
	var out []map[string]any
	for _, t := range window(rows, p) {
		out = append(out, c.ticketJSON(cl.org, t, inc))
	}
	return list(out)
}

func (c *core) contactRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/contacts", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 99)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "firstName", "lastName", "phone", "email", "account", "createdTime", "modifiedTime")
		if e != nil {
			return fail(e)
		}
		o := cl.org
		rows := make([]*contact, 0, o.contacts.len())
		o.contacts.each(func(ct *contact) bool {
			if !ct.trashed && !ct.spam {
				rows = append(rows, ct)
			}
			return true
		})
		sortContacts(o, rows, s.upTo(p))
		inc := includes(cl.q)
		var out []map[string]any
		for _, ct := range window(rows, p) {
			out = append(out, c.contactJSON(o, ct, inc))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/contacts/contactsByIds", true, func(cl *call) (reply, *APIError) {
		ids, e := parseIDList(cl.q, "ids")
		if e != nil {
			return fail(e)
		}
		if len(ids) == 0 {
			return fail(errMissingParam("ids"))
		}
		if len(ids) > 20 {
			return fail(errBadParam("ids"))
		}
		var out []map[string]any
		for _, id := range ids {
			if ct := cl.org.contacts.get(id); ct != nil && !ct.trashed {
				out = append(out, c.contactJSON(cl.org, ct, includes(cl.q)))
			}
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/contacts/search", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 0, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "relevance", "modifiedTime", "createdTime", "lastName", "firstName")
		if e != nil {
			return fail(e)
		}
		o := cl.org
		getters := map[string]func(any) string{}
		for k, g := range contactGetters {
			getters[k] = g
		}
		getters["accountName"] = func(r any) string {
			if a := o.accounts.get(r.(*contact).accountID); a != nil {
				return a.name
			}
			return ""
		}
		rs, e := parseRecordSearch(o, modContacts, cl.q, getters)
		if e != nil {
			return fail(e)
		}
		var rows []*contact
		consider := func(ct *contact) bool {
			if !ct.trashed && rs.match(ct, ct.id, ct.createdTime, ct.modifiedTime, func() []string {
				return []string{ct.fullName(), ct.email, ct.secondaryEmail, ct.phone, ct.mobile, ct.title}
			}) {
				rows = append(rows, ct)
			}
			return true
		}
		if rs.email != "" {
			for _, id := range o.byEmail[strings.ToLower(strings.TrimSpace(rs.email))] {
				consider(o.contacts.get(id))
			}
		} else {
			o.contacts.each(consider)
		}
		if s.key == "" {
			s.key = "relevance"
		}
		sortContacts(o, rows, s.upTo(p))
		var out []map[string]any
		for _, ct := range window(rows, p) {
			out = append(out, c.contactJSON(o, ct, includes(cl.q)))
		}
		return searchResult(out, len(rows))
	})
	c.handle(mux, "GET /api/v1/contacts/{contactId}", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.contactJSON(cl.org, ct, includes(cl.q)))
	})
	c.handle(mux, "POST /api/v1/contacts", true, func(cl *call) (reply, *APIError) {
		if !cl.org.can(cl.act.agentID, "contacts", "create") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modContacts, cl.body, true)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.contactJSON(cl.org, c.createContact(cl.org, cl.act, ws), nil))
	})
	c.handle(mux, "PATCH /api/v1/contacts/{contactId}", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		if ct.trashed {
			return fail(errTrashed())
		}
		if !cl.org.can(cl.act.agentID, "contacts", "edit") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modContacts, cl.body, false)
		if e != nil {
			return fail(e)
		}
		c.updateContact(cl.org, cl.act, ct, ws)
		return okJSON(c.contactJSON(cl.org, ct, nil))
	})
	c.handle(mux, "POST /api/v1/contacts/moveToTrash", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "contactIds")
		if e != nil {
			return fail(e)
		}
		for _, id := range ids {
			if ct := cl.org.contacts.get(id); ct == nil || ct.trashed {
				return fail(errInvalidData(invalid("contactIds")))
			}
		}
		for _, id := range ids {
			c.trashContact(cl.org, cl.act, cl.org.contacts.get(id))
		}
		return noContent()
	})
	c.handle(mux, "POST /api/v1/contacts/{contactId}/merge", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		if ct.trashed {
			return fail(errTrashed())
		}
		in, e := parseMerge(cl.body, ct.id, func(id int64) bool { return cl.org.lookupExists(modContacts, id) })
		if e != nil {
			return fail(e)
		}
		if e := c.mergeContacts(cl.org, cl.act, ct, in); e != nil {
			return fail(e)
		}
		return okJSON(c.contactJSON(cl.org, ct, nil))
	})
	c.handle(mux, "GET /api/v1/contacts/{contactId}/tickets", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		return c.relatedTickets(cl, ct.id)
	})
	c.handle(mux, "GET /api/v1/contacts/{contactId}/statistics", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.statistics(cl.org, cl.org.ticketsOf[ct.id]))
	})
	c.handle(mux, "GET /api/v1/contacts/{contactId}/timeEntry", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var rows []*timeEntry
		for _, tid := range cl.org.ticketsOf[ct.id] {
			for _, id := range cl.org.timeEntriesOf[tid] {
				if te := cl.org.timeEntries.get(id); !te.trashed {
					rows = append(rows, te)
				}
			}
		}
		sortByInt(rows, func(te *timeEntry) int64 { return te.executedTime }, func(te *timeEntry) int64 { return te.id }, true, 0)
		var out []map[string]any
		for _, te := range window(rows, p) {
			out = append(out, c.timeEntryJSON(cl.org, te))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/contacts/{contactId}/activities", true, func(cl *call) (reply, *APIError) {
		ct, e := cl.contact()
		if e != nil {
			return fail(e)
		}
		return c.activityList(cl, ct.id)
	})
}

// activityList answers the activities (tasks, calls, events) of a ticket
// or contact, newest first.
func (c *core) activityList(cl *call, parent int64) (reply, *APIError) {
	p, e := parsePage(cl.q, 1, 10, 100)
	if e != nil {
		return fail(e)
	}
	kinds := map[string]bool{}
	for _, k := range splitList(cl.q.Get("activityType")) {
		kind, known := activityKinds[strings.ToLower(k)]
		if !known {
			return fail(errBadParam("activityType"))
		}
		kinds[kind] = true
	}
	var rows []*activity
	for _, id := range cl.org.activitiesOf[parent] {
		if a := cl.org.activities.get(id); !a.trashed && (len(kinds) == 0 || kinds[a.kind]) {
			rows = append(rows, a)
		}
	}
	sortByInt(rows, func(a *activity) int64 { return a.createdTime }, func(a *activity) int64 { return a.id }, true, 0)
	var out []map[string]any
	for _, a := range window(rows, p) {
		out = append(out, c.activityJSON(cl.org, a))
	}
	return list(out)
}

func sortAccounts(rows []*account, s sortSpec) {
	id := func(a *account) int64 { return a.id }
	switch s.key {
	case "accountName":
		sortByString(rows, func(a *account) string { return a.name }, id, s.desc, s.keep)
	case "createdTime":
		sortByInt(rows, func(a *account) int64 { return a.createdTime }, id, s.desc, s.keep)
	case "modifiedTime":
		sortByInt(rows, func(a *account) int64 { return a.modifiedTime }, id, s.desc, s.keep)
	case "relevance":
		sortByInt(rows, func(a *account) int64 { return a.modifiedTime }, id, true, s.keep)
	}
}

func (c *core) accountRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/accounts", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 99)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "accountName", "createdTime", "modifiedTime")
		if e != nil {
			return fail(e)
		}
		var rows []*account
		cl.org.accounts.each(func(a *account) bool {
			if !a.trashed {
				rows = append(rows, a)
			}
			return true
		})
		sortAccounts(rows, s.upTo(p))
		var out []map[string]any
		for _, a := range window(rows, p) {
			out = append(out, c.accountJSON(cl.org, a, includes(cl.q)))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/accounts/search", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 0, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "relevance", "modifiedTime", "createdTime", "accountName")
		if e != nil {
			return fail(e)
		}
		rs, e := parseRecordSearch(cl.org, modAccounts, cl.q, accountGetters)
		if e != nil {
			return fail(e)
		}
		var rows []*account
		cl.org.accounts.each(func(a *account) bool {
			if !a.trashed && rs.match(a, a.id, a.createdTime, a.modifiedTime, func() []string { return []string{a.name, a.email, a.phone, a.website} }) {
				rows = append(rows, a)
			}
			return true
		})
		if s.key == "" {
			s.key = "relevance"
		}
		sortAccounts(rows, s.upTo(p))
		var out []map[string]any
		for _, a := range window(rows, p) {
			out = append(out, c.accountJSON(cl.org, a, includes(cl.q)))
		}
		return searchResult(out, len(rows))
	})
	c.handle(mux, "GET /api/v1/accounts/{accountId}", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.accountJSON(cl.org, a, includes(cl.q)))
	})
	c.handle(mux, "POST /api/v1/accounts", true, func(cl *call) (reply, *APIError) {
		if !cl.org.can(cl.act.agentID, "accounts", "create") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modAccounts, cl.body, true)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.accountJSON(cl.org, c.createAccount(cl.org, cl.act, ws), nil))
	})
	c.handle(mux, "PATCH /api/v1/accounts/{accountId}", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		if a.trashed {
			return fail(errTrashed())
		}
		if !cl.org.can(cl.act.agentID, "accounts", "edit") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modAccounts, cl.body, false)
		if e != nil {
			return fail(e)
		}
		c.updateAccount(cl.org, cl.act, a, ws)
		return okJSON(c.accountJSON(cl.org, a, nil))
	})
	c.handle(mux, "POST /api/v1/accounts/moveToTrash", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "accountIds")
		if e != nil {
			return fail(e)
		}
		for _, id := range ids {
			if a := cl.org.accounts.get(id); a == nil || a.trashed {
				return fail(errInvalidData(invalid("accountIds")))
			}
		}
		for _, id := range ids {
			c.trashAccount(cl.org, cl.act, cl.org.accounts.get(id))
		}
		return noContent()
	})
	c.handle(mux, "POST /api/v1/accounts/{accountId}/merge", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		if a.trashed {
			return fail(errTrashed())
		}
		in, e := parseMerge(cl.body, a.id, func(id int64) bool { return cl.org.lookupExists(modAccounts, id) })
		if e != nil {
			return fail(e)
		}
		if e := c.mergeAccounts(cl.org, cl.act, a, in); e != nil {
			return fail(e)
		}
		return okJSON(c.accountJSON(cl.org, a, nil))
	})
	c.handle(mux, "GET /api/v1/accounts/{accountId}/tickets", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		return c.relatedTickets(cl, a.id)
	})
	c.handle(mux, "GET /api/v1/accounts/{accountId}/statistics", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.statistics(cl.org, cl.org.ticketsOf[a.id]))
	})
	c.handle(mux, "GET /api/v1/accounts/{accountId}/contacts", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 99)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "firstName", "lastName", "phone", "email", "createdTime", "modifiedTime")
		if e != nil {
			return fail(e)
		}
		var rows []*contact
		for _, id := range cl.org.contactsOf[a.id] {
			if ct := cl.org.contacts.get(id); ct != nil && !ct.trashed {
				rows = append(rows, ct)
			}
		}
		sortContacts(cl.org, rows, s.upTo(p))
		var out []map[string]any
		for _, ct := range window(rows, p) {
			out = append(out, c.contactJSON(cl.org, ct, includes(cl.q)))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/accounts/{accountId}/contracts", true, func(cl *call) (reply, *APIError) {
		a, e := cl.account()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var rows []*contract
		for _, id := range cl.org.contractsOf[a.id] {
			if k := cl.org.contracts.get(id); !k.trashed {
				rows = append(rows, k)
			}
		}
		var out []map[string]any
		for _, k := range window(rows, p) {
			out = append(out, c.accountContractJSON(cl.org, k))
		}
		return list(out)
	})
}

func sortProducts(rows []*product, s sortSpec) {
	id := func(p *product) int64 { return p.id }
	switch s.key {
	case "productName":
		sortByString(rows, func(p *product) string { return p.name }, id, s.desc, s.keep)
	case "productCode":
		sortByString(rows, func(p *product) string { return p.code }, id, s.desc, s.keep)
	case "unitPrice":
		sortByInt(rows, func(p *product) int64 { return int64(p.unitPrice * 100) }, id, s.desc, s.keep)
	case "createdTime":
		sortByInt(rows, func(p *product) int64 { return p.createdTime }, id, s.desc, s.keep)
	case "modifiedTime":
		sortByInt(rows, func(p *product) int64 { return p.modifiedTime }, id, s.desc, s.keep)
	case "relevance":
		sortByInt(rows, func(p *product) int64 { return p.modifiedTime }, id, true, s.keep)
	}
}

func (c *core) productRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/products", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "productName", "productCode", "unitPrice", "createdTime", "modifiedTime")
		if e != nil {
			return fail(e)
		}
		var dept, owner int64
		if v := cl.q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok || cl.org.departments.get(id) == nil {
				return fail(errBadParam("departmentId"))
			}
			dept = id
		}
		if v := cl.q.Get("ownerId"); v != "" {
			id, ok := parseID(v)
			if !ok {
				return fail(errBadParam("ownerId"))
			}
			owner = id
		}
		var rows []*product
		cl.org.products.each(func(pr *product) bool {
			if !pr.trashed && (dept == 0 || contains64(pr.deptIDs, dept)) && (owner == 0 || pr.ownerID == owner) {
				rows = append(rows, pr)
			}
			return true
		})
		sortProducts(rows, s.upTo(p))
		var out []map[string]any
		for _, pr := range window(rows, p) {
			out = append(out, c.productJSON(cl.org, pr))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/products/search", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 0, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "relevance", "modifiedTime", "createdTime", "productName")
		if e != nil {
			return fail(e)
		}
		q := cl.q
		var dept int64
		if v := q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok {
				return fail(errBadParam("departmentId"))
			}
			dept = id
			q = cloneValues(q)
			q.Del("departmentId")
		}
		rs, e := parseRecordSearch(cl.org, modProducts, q, productGetters)
		if e != nil {
			return fail(e)
		}
		var rows []*product
		cl.org.products.each(func(pr *product) bool {
			if !pr.trashed && (dept == 0 || contains64(pr.deptIDs, dept)) && rs.match(pr, pr.id, pr.createdTime, pr.modifiedTime, func() []string { return []string{pr.name, pr.code, pr.category} }) {
				rows = append(rows, pr)
			}
			return true
		})
		if s.key == "" {
			s.key = "relevance"
		}
		sortProducts(rows, s.upTo(p))
		var out []map[string]any
		for _, pr := range window(rows, p) {
			out = append(out, c.productJSON(cl.org, pr))
		}
		return searchResult(out, len(rows))
	})
	c.handle(mux, "GET /api/v1/products/{productId}", true, func(cl *call) (reply, *APIError) {
		p, e := cl.product()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.productJSON(cl.org, p))
	})
	c.handle(mux, "POST /api/v1/products", true, func(cl *call) (reply, *APIError) {
		if !cl.org.can(cl.act.agentID, "products", "create") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modProducts, cl.body, true)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.productJSON(cl.org, c.createProduct(cl.org, cl.act, ws)))
	})
	c.handle(mux, "PATCH /api/v1/products/{productId}", true, func(cl *call) (reply, *APIError) {
		p, e := cl.product()
		if e != nil {
			return fail(e)
		}
		if p.trashed {
			return fail(errTrashed())
		}
		if !cl.org.can(cl.act.agentID, "products", "edit") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseWrite(modProducts, cl.body, false)
		if e != nil {
			return fail(e)
		}
		c.updateProduct(cl.org, cl.act, p, ws)
		return okJSON(c.productJSON(cl.org, p))
	})
	c.handle(mux, "POST /api/v1/products/moveToTrash", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "productIds")
		if e != nil {
			return fail(e)
		}
		for _, id := range ids {
			if p := cl.org.products.get(id); p == nil || p.trashed {
				return fail(errInvalidData(invalid("productIds")))
			}
		}
		for _, id := range ids {
			c.trashProduct(cl.org, cl.act, cl.org.products.get(id))
		}
		return noContent()
	})
	c.handle(mux, "GET /api/v1/products/{productId}/tickets", true, func(cl *call) (reply, *APIError) {
		p, e := cl.product()
		if e != nil {
			return fail(e)
		}
		return c.relatedTickets(cl, p.id)
	})
}

func cloneValues(q map[string][]string) map[string][]string {
	out := make(map[string][]string, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
