package desk

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

func (t *ticket) get(name string) any {
	switch name {
	case "subject":
		return t.subject
	case "description":
		return t.description
	case "status":
		return t.status
	case "priority":
		return t.priority
	case "classification":
		return t.classification
	case "channel":
		return t.channel
	case "email":
		return t.email
	case "phone":
		return t.phone
	case "departmentId":
		return t.departmentID
	case "contactId":
		return t.contactID
	case "accountId":
		return t.accountID
	case "productId":
		return t.productID
	case "assigneeId":
		return t.assigneeID
	case "teamId":
		return t.teamID
	case "dueDate":
		return t.dueDate
	case "responseDueDate":
		return t.responseDueDate
	}
	return t.more[name]
}

func (t *ticket) set(name string, v any) {
	switch name {
	case "subject":
		t.subject = asString(v)
	case "description":
		t.description = asString(v)
	case "status":
		t.status = asString(v)
	case "priority":
		t.priority = asString(v)
	case "classification":
		t.classification = asString(v)
	case "channel":
		t.channel = asString(v)
	case "email":
		t.email = asString(v)
	case "phone":
		t.phone = asString(v)
	case "departmentId":
		t.departmentID = asID(v)
	case "contactId":
		t.contactID = asID(v)
	case "accountId":
		t.accountID = asID(v)
	case "productId":
		t.productID = asID(v)
	case "assigneeId":
		t.assigneeID = asID(v)
	case "teamId":
		t.teamID = asID(v)
	case "dueDate":
		t.dueDate = asID(v)
	case "responseDueDate":
		t.responseDueDate = asID(v)
	default:
		t.more = setMore(t.more, name, v)
	}
}

// statusType maps a status, custom ones included, to Open, On Hold or
// Closed.
func (o *org) statusType(status string) string {
	for _, s := range o.statuses {
		if strings.EqualFold(s.name, status) {
			return s.typ
		}
	}
	return "Open"
}

// isOverdue is computed on every read from dueDate and the clock, so a
// test that moves the clock sees tickets fall overdue.
func (t *ticket) isOverdue(o *org, now int64) bool {
	return t.dueDate != 0 && t.dueDate < now && o.statusType(t.status) != "Closed"
}

func (t *ticket) threadCount() int {
	if !t.materialized {
		return int(t.seedThreads)
	}
	n := 0
	for _, th := range t.threads {
		if th.status != "DRAFT" {
			n++
		}
	}
	return n
}

func (t *ticket) commentCount() int {
	if !t.materialized {
		return int(t.seedComments)
	}
	return len(t.comments)
}

func (o *org) liveCount(ids []int64, alive func(int64) bool) int {
	n := 0
	for _, id := range ids {
		if alive(id) {
			n++
		}
	}
	return n
}

func (c *core) ticketJSON(o *org, t *ticket, inc map[string]bool) map[string]any {
	out := map[string]any{}
	for _, f := range o.fields[modTickets] {
		if !f.custom {
			out[f.apiName] = renderValue(f, t.get(f.apiName))
		}
	}
	now := c.now()
	out["id"] = idStr(t.id)
	out["ticketNumber"] = strconv.FormatInt(t.number, 10)
	out["statusType"] = o.statusType(t.status)
	out["cf"] = o.renderCF(modTickets, t.cf)
	out["createdTime"] = timeStr(t.createdTime)
	out["modifiedTime"] = timeStr(t.modifiedTime)
	out["customerResponseTime"] = timeStr(t.customerResponseTime)
	out["closedTime"] = timeStr(t.closedTime)
	out["onholdTime"] = timeStr(t.onholdTime)
	out["threadCount"] = count(t.threadCount())
	out["commentCount"] = count(t.commentCount())
	out["taskCount"] = count(o.liveCount(o.activitiesOf[t.id], func(id int64) bool {
		a := o.activities.get(id)
		return !a.trashed && a.kind == "Tasks" && a.ticketID == t.id
	}))
	out["attachmentCount"] = count(o.liveCount(o.attachmentsOf[t.id], func(id int64) bool { return !o.attachments.get(id).trashed }))
	out["timeEntryCount"] = count(o.liveCount(o.timeEntriesOf[t.id], func(id int64) bool { return !o.timeEntries.get(id).trashed }))
	out["approvalCount"] = "0"
	out["sharedCount"] = "0"
	out["sharedDepartments"] = []string{}
	out["isOverDue"] = t.isOverdue(o, now)
	out["isEscalated"] = t.escalated
	out["isSpam"] = t.spam
	out["isTrashed"] = t.trashed
	out["isArchived"] = false
	out["channelCode"] = nil
	out["createdBy"] = idStr(t.createdBy)
	out["modifiedBy"] = idStr(t.modifiedBy)
	out["source"] = map[string]any{"type": "SYSTEM", "appName": nil, "extId": nil, "permalink": nil, "appPhotoURL": nil}
	out["webUrl"] = c.webURL(o, "Cases", t.id)
	if inc["contacts"] {
		out["contact"] = nil
		if ct := o.contacts.get(t.contactID); ct != nil {
			var acc any
			if a := o.accounts.get(ct.accountID); a != nil {
				acc = map[string]any{"id": idStr(a.id), "accountName": a.name, "website": nullStr(a.website)}
			}
			out["contact"] = map[string]any{"id": idStr(ct.id), "firstName": nullStr(ct.firstName), "lastName": ct.lastName,
				"email": nullStr(ct.email), "phone": nullStr(ct.phone), "mobile": nullStr(ct.mobile), "type": nullStr(ct.typ), "account": acc}
		}
	}
	if inc["assignee"] {
		out["assignee"] = nil
		if a := o.agents.get(t.assigneeID); a != nil {
			out["assignee"] = map[string]any{"id": idStr(a.id), "firstName": a.firstName, "lastName": a.lastName, "email": a.email, "photoURL": nil}
		}
	}
	if inc["departments"] {
		out["department"] = nil
		if d := o.departments.get(t.departmentID); d != nil {
			out["department"] = map[string]any{"id": idStr(d.id), "name": d.name}
		}
	}
	if inc["products"] {
		out["product"] = nil
		if p := o.products.get(t.productID); p != nil {
			out["product"] = map[string]any{"id": idStr(p.id), "productName": p.name}
		}
	}
	if inc["team"] {
		out["team"] = nil
		if tm := o.teams.get(t.teamID); tm != nil {
			out["team"] = map[string]any{"id": idStr(tm.id), "name": tm.name, "logoUrl": nil}
		}
	}
	if inc["isRead"] {
		out["isRead"] = true
	}
	return out
}

// setStatus changes a status and keeps the status clocks right.
func (c *core) setStatus(o *org, t *ticket, status string) {
	oldType, newType := o.statusType(t.status), o.statusType(status)
	t.status = status
	now := c.now()
	if newType == "Closed" && oldType != "Closed" {
		t.closedTime = now
	}
	if newType != "Closed" {
		t.closedTime = 0
	}
	if newType == "On Hold" && oldType != "On Hold" {
		t.onholdTime = now
	}
	if newType != "On Hold" {
		t.onholdTime = 0
	}
}

// ticketContact resolves the contact of a new ticket: contactId, or a
// "contact" object matched by email to an existing contact, or created.
func (c *core) ticketContact(o *org, act actor, ws writeSet) (*contact, []FieldError, *APIError) {
	if id := asID(ws.std["contactId"]); id != 0 {
		return o.contacts.get(id), nil, nil
	}
	raw, given := ws.raw["contact"]
	if !given || string(raw) == "null" {
		return nil, []FieldError{missing("contactId")}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, []FieldError{invalid("contact")}, nil
	}
	var email string
	if v, ok := m["email"]; ok {
		_ = json.Unmarshal(v, &email)
	}
	if email != "" {
		if ct := o.contactByEmail(email); ct != nil {
			return ct, nil, nil
		}
		if _, ok := m["lastName"]; !ok {
			local, _, _ := strings.Cut(email, "@")
			m["lastName"], _ = json.Marshal(local)
		}
	}
	cws, e := o.validateWrite(modContacts, m, true)
	if e != nil {
		if e.Code != "INVALID_DATA" {
			return nil, nil, e
		}
		var errs []FieldError
		for _, fe := range e.Errors {
			fe.FieldName = "/contact" + fe.FieldName
			errs = append(errs, fe)
		}
		return nil, errs, nil
	}
	return c.createContact(o, act, cws), nil, nil
}

func (o *org) contactByEmail(email string) *contact {
	for _, id := range o.byEmail[strings.ToLower(email)] {
		if ct := o.contacts.get(id); ct != nil && !ct.trashed {
			return ct
		}
	}
	return nil
}

// createTicket validates and creates a ticket: subject, departmentId and
// a contact (contactId or a "contact" object) are required.
func (c *core) createTicket(o *org, act actor, body []byte) (*ticket, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return nil, e
	}
	ws, e := o.validateWrite(modTickets, m, true, "contact")
	var errs []FieldError
	if e != nil {
		if e.Code != "INVALID_DATA" {
			return nil, e
		}
		errs = e.Errors
	}
	_, hasContact := m["contact"]
	if _, hasID := m["contactId"]; !hasID && !hasContact && !hasError(errs, "/contactId") {
		errs = append(errs, missing("contactId"))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return nil, errInvalidData(errs...)
	}
	ct, cerrs, e := c.ticketContact(o, act, ws)
	if e != nil {
		return nil, e
	}
	if len(cerrs) > 0 {
		return nil, errInvalidData(cerrs...)
	}
	now := c.now()
	o.ticket++
	t := &ticket{id: o.newID(), number: o.ticket, status: "Open", createdTime: now, modifiedTime: now,
		customerResponseTime: now, createdBy: act.agentID, modifiedBy: act.agentID, materialized: true}
	for k, v := range ws.std {
		if k != "status" {
			t.set(k, v)
		}
	}
	if s, ok := ws.std["status"].(string); ok && s != "" {
		c.setStatus(o, t, s)
	}
	t.contactID = ct.id
	if !ws.has("accountId") {
		t.accountID = ct.accountID
	}
	if t.email == "" {
		t.email = ct.email
	}
	if t.phone == "" {
		t.phone = ct.phone
	}
	t.cf = applyCF(t.cf, ws.cf)
	o.tickets.put(t.id, t)
	o.ticketsOf.add(t.contactID, t.id)
	o.ticketsOf.add(t.accountID, t.id)
	o.ticketsOf.add(t.productID, t.id)
	c.emit(o, act, event{typ: "Ticket_Add", deptID: t.departmentID, payload: c.ticketJSON(o, t, nil)})
	return t, nil
}

// parseTicketUpdate validates a ticket PATCH: a ticket always keeps a
// contact, so contactId cannot be cleared.
func (o *org) parseTicketUpdate(body []byte) (writeSet, *APIError) {
	ws, e := o.parseWrite(modTickets, body, false)
	if e != nil {
		return ws, e
	}
	if v, given := ws.std["contactId"]; given && isBlank(v) {
		return ws, errInvalidData(invalid("contactId"))
	}
	return ws, nil
}

// updateTicket applies a validated PATCH.
func (c *core) updateTicket(o *org, act actor, t *ticket, ws writeSet) {
	before := c.ticketJSON(o, t, nil)
	oldContact, oldAccount, oldProduct := t.contactID, t.accountID, t.productID
	for k, v := range ws.std {
		if k == "status" {
			if s, _ := v.(string); s != "" {
				c.setStatus(o, t, s)
			}
			continue
		}
		t.set(k, v)
	}
	if t.contactID != oldContact && !ws.has("accountId") {
		if ct := o.contacts.get(t.contactID); ct != nil {
			t.accountID = ct.accountID
		}
	}
	t.cf = applyCF(t.cf, ws.cf)
	o.ticketsOf.move(oldContact, t.contactID, t.id)
	o.ticketsOf.move(oldAccount, t.accountID, t.id)
	o.ticketsOf.move(oldProduct, t.productID, t.id)
	c.touchTicket(o, act, t, before)
}

// touchTicket stamps a change and fires Ticket_Update with what changed.
func (c *core) touchTicket(o *org, act actor, t *ticket, before map[string]any) {
	after := c.ticketJSON(o, t, nil)
	prev, changed := diff(before, after)
	if changed == nil {
		return
	}
	t.modifiedTime, t.modifiedBy = c.now(), act.agentID
	after["modifiedTime"] = timeStr(t.modifiedTime)
	c.emit(o, act, event{typ: "Ticket_Update", deptID: t.departmentID, payload: after, prev: prev, changed: changed})
}

// trashTicket moves a ticket to the recycle bin; parent is the record
// whose deletion took it along (0 when deleted on its own).
func (c *core) trashTicket(o *org, act actor, t *ticket, parent int64) {
	t.trashed = true
	c.addTrash(o, "Tickets", t.id, t.subject, t.departmentID, act, parent)
	c.emit(o, act, event{typ: "Ticket_Delete", deptID: t.departmentID, payload: c.ticketJSON(o, t, nil)})
}

// mergeTickets folds tickets into the master: the master keeps its id and
// takes the chosen field values; the others' threads, comments and
// related records move over, and the others go to the recycle bin.
func (c *core) mergeTickets(o *org, act actor, master *ticket, in mergeInput) *APIError {
	for fieldName := range in.source {
		if !strings.HasPrefix(fieldName, "cf_") && o.fieldByName(modTickets, fieldName, false) == nil {
			return errInvalidData(invalid("source/" + fieldName))
		}
	}
	before := c.ticketJSON(o, master, nil)
	c.materialize(o, master)
	for fieldName, from := range in.source {
		if from == master.id {
			continue
		}
		src := o.tickets.get(from)
		if strings.HasPrefix(fieldName, "cf_") {
			master.cf = applyCF(master.cf, map[string]any{fieldName: src.cf[fieldName]})
			continue
		}
		v := src.get(fieldName)
		if fieldName == "status" {
			c.setStatus(o, master, asString(v))
			continue
		}
		oldContact, oldAccount, oldProduct := master.contactID, master.accountID, master.productID
		master.set(fieldName, v)
		o.ticketsOf.move(oldContact, master.contactID, master.id)
		o.ticketsOf.move(oldAccount, master.accountID, master.id)
		o.ticketsOf.move(oldProduct, master.productID, master.id)
	}
	for _, id := range in.ids {
		other := o.tickets.get(id)
		c.materialize(o, other)
		for _, th := range other.threads {
			th.ticketID = master.id
		}
		for _, cm := range other.comments {
			cm.ticketID = master.id
		}
		master.threads = append(master.threads, other.threads...)
		master.comments = append(master.comments, other.comments...)
		other.threads, other.comments = nil, nil
		for _, id := range append([]int64(nil), o.timeEntriesOf[other.id]...) {
			o.timeEntriesOf.move(other.id, master.id, id)
			o.timeEntries.get(id).ticketID = master.id
		}
		for _, id := range append([]int64(nil), o.attachmentsOf[other.id]...) {
			o.attachmentsOf.move(other.id, master.id, id)
			o.attachments.get(id).parentID = master.id
		}
		for _, id := range append([]int64(nil), o.ratingsOf[other.id]...) {
			o.ratingsOf.move(other.id, master.id, id)
			o.ratings.get(id).ticketID = master.id
		}
		for _, aid := range append([]int64(nil), o.activitiesOf[other.id]...) {
			o.activitiesOf.move(other.id, master.id, aid)
			o.activities.get(aid).ticketID = master.id
		}
		other.more = setMore(other.more, "mergedWith", master.id)
		c.trashTicket(o, act, other, 0)
	}
	sortThreads(master.threads)
	c.touchTicket(o, act, master, before)
	return nil
}

// ticketFilter is the parsed query of a ticket list or search.
type ticketFilter struct {
	ids, contactIDs, accountIDs, productIDs, departmentIDs, assigneeIDs []int64
	unassigned                                                          bool
	statuses, statusTypes                                               []string
	numbers                                                             []int64
	priority, channel, category                                         []string
	subject, email, phone, contactName, accountName, productName, all   string
	description                                                         string
	created, modified, due, customerResponse                            timeRange
	cf                                                                  map[string]string
	receivedSince                                                       int64
}

func (f *ticketFilter) match(c *core, o *org, t *ticket) bool {
	if t.trashed || t.spam {
		return false
	}
	in := func(list []int64, v int64) bool { return len(list) == 0 || contains64(list, v) }
	if !in(f.ids, t.id) || !in(f.contactIDs, t.contactID) || !in(f.accountIDs, t.accountID) ||
		!in(f.productIDs, t.productID) || !in(f.departmentIDs, t.departmentID) || !in(f.numbers, t.number) {
		return false
	}
	if f.unassigned && t.assigneeID != 0 {
		return false
	}
	if len(f.assigneeIDs) > 0 && !contains64(f.assigneeIDs, t.assigneeID) {
		return false
	}
	if len(f.statuses) > 0 || len(f.statusTypes) > 0 {
		hit := false
		for _, s := range f.statuses {
			hit = hit || strings.EqualFold(s, t.status)
		}
		for _, s := range f.statusTypes {
			hit = hit || strings.EqualFold(s, o.statusType(t.status))
		}
		if !hit {
			return false
		}
	}
	anyFold := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	if !anyFold(f.priority, t.priority) || !anyFold(f.channel, t.channel) || !anyFold(f.category, asString(t.more["category"])) {
		return false
	}
	if f.subject != "" && !matchText(f.subject, t.subject) {
		return false
	}
	if f.description != "" && !matchText(f.description, t.description) {
		return false
	}
	if f.email != "" && !matchText(f.email, t.email) {
		return false
	}
	if f.phone != "" && !matchText(f.phone, t.phone) {
		return false
	}
	if f.contactName != "" {
		ct := o.contacts.get(t.contactID)
		if ct == nil || (!matchText(f.contactName, ct.fullName()) && !matchText(f.contactName, ct.lastName)) {
			return false
		}
	}
	if f.accountName != "" {
		a := o.accounts.get(t.accountID)
		if a == nil || !matchText(f.accountName, a.name) {
			return false
		}
	}
	if f.productName != "" {
		p := o.products.get(t.productID)
		if p == nil || !matchText(f.productName, p.name) {
			return false
		}
	}
	if !f.created.contains(t.createdTime) || !f.modified.contains(t.modifiedTime) || !f.due.contains(t.dueDate) ||
		!f.customerResponse.contains(t.customerResponseTime) {
		return false
	}
	if f.receivedSince != 0 && t.createdTime < f.receivedSince {
		return false
	}
	for k, v := range f.cf {
		fd := o.fieldByName(modTickets, k, true)
		rendered, _ := renderValue(fd, t.cf[k]).(string)
		if !matchText(v, rendered) {
			return false
		}
	}
	if f.all != "" {
		ctName := ""
		if ct := o.contacts.get(t.contactID); ct != nil {
			ctName = ct.fullName()
		}
		if !containsFold(f.all, t.subject, t.description, t.email, t.phone, strconv.FormatInt(t.number, 10), ctName) {
			return false
		}
	}
	return true
}

func contains64(list []int64, v int64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// sortTickets orders tickets by a list or search sortBy. Ties break on id
// so that pages stay stable.
func sortTickets(o *org, rows []*ticket, s sortSpec) {
	id := func(t *ticket) int64 { return t.id }
	switch s.key {
	case "", "relevance":
		sortByInt(rows, func(t *ticket) int64 { return t.modifiedTime }, id, true, s.keep)
	case "createdTime":
		sortByInt(rows, func(t *ticket) int64 { return t.createdTime }, id, s.desc, s.keep)
	case "modifiedTime":
		sortByInt(rows, func(t *ticket) int64 { return t.modifiedTime }, id, s.desc, s.keep)
	case "dueDate":
		sortByInt(rows, func(t *ticket) int64 { return t.dueDate }, id, s.desc, s.keep)
	case "responseDueDate":
		sortByInt(rows, func(t *ticket) int64 { return t.responseDueDate }, id, s.desc, s.keep)
	case "customerResponseTime":
		sortByInt(rows, func(t *ticket) int64 { return t.customerResponseTime }, id, s.desc, s.keep)
	case "ticketNumber":
		sortByInt(rows, func(t *ticket) int64 { return t.number }, id, s.desc, s.keep)
	case "recentThread":
		sortByInt(rows, func(t *ticket) int64 { return lastThreadTime(t) }, id, s.desc, s.keep)
	}
}

func lastThreadTime(t *ticket) int64 {
	if !t.materialized || len(t.threads) == 0 {
		return t.customerResponseTime
	}
	return t.threads[len(t.threads)-1].createdTime
}
