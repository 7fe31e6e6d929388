package desk

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds the related lists the delete policies look at (SPEC
// B10, B11): time entries, activities, attachments and contracts, and the
// recycle bin that deleted records go to.

// ---- time entries ----

func (c *core) timeEntryJSON(o *org, te *timeEntry) map[string]any {
	var dept int64
	if t := o.tickets.get(te.ticketID); t != nil {
		dept = t.departmentID
	}
	return map[string]any{
		"id": idStr(te.id), "ticketId": idStr(te.ticketID), "requestId": idStr(te.ticketID),
		"parent": map[string]any{"id": idStr(te.ticketID), "type": "TICKETS"}, "departmentId": idStr(dept),
		"ownerId": idStr(te.ownerID), "owner": o.agentRef(te.ownerID), "executedTime": timeStr(te.executedTime),
		"hoursSpent": count(te.hours), "minutesSpent": count(te.minutes), "secondsSpent": count(te.seconds),
		"isBillable": te.billable, "billingType": nil, "description": nullStr(te.description),
		"createdTime": timeStr(te.createdTime), "modifiedTime": timeStr(te.modifiedTime), "isTrashed": te.trashed,
	}
}

func (c *core) addTimeEntry(o *org, act actor, t *ticket, body []byte) (*timeEntry, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return nil, e
	}
	te := &timeEntry{ticketID: t.id, ownerID: act.agentID}
	var errs []FieldError
	num := func(k string) int {
		raw, present := m[k]
		if !present {
			return 0
		}
		v, ok := parseInteger(raw)
		n, _ := v.(int64)
		if !ok || n < 0 {
			errs = append(errs, invalid(k))
		}
		return int(n)
	}
	for k, raw := range m {
		switch k {
		case "executedTime":
			var s string
			ms, ok := int64(0), false
			if json.Unmarshal(raw, &s) == nil {
				ms, ok = parseTime(s)
			}
			if !ok {
				errs = append(errs, invalid(k))
			}
			te.executedTime = ms
		case "hoursSpent", "minutesSpent", "secondsSpent":
		case "isBillable":
			if json.Unmarshal(raw, &te.billable) != nil {
				errs = append(errs, invalid(k))
			}
		case "description":
			if json.Unmarshal(raw, &te.description) != nil {
				errs = append(errs, invalid(k))
			}
		case "ownerId":
			id, ok := parseLookup(raw)
			if !ok || !o.lookupExists("agents", id) {
				errs = append(errs, invalid(k))
			}
			te.ownerID = id
		default:
			return nil, errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	te.hours, te.minutes, te.seconds = num("hoursSpent"), num("minutesSpent"), num("secondsSpent")
	if _, present := m["executedTime"]; !present {
		errs = append(errs, missing("executedTime"))
	}
	if len(errs) > 0 {
		return nil, errInvalidData(errs...)
	}
	te.id = o.newID()
	te.createdTime, te.modifiedTime = c.now(), c.now()
	o.timeEntries.put(te.id, te)
	o.timeEntriesOf.add(t.id, te.id)
	return te, nil
}

// ---- activities ----

// activityKinds maps the API path of each activity kind to its name.
var activityKinds = map[string]string{"tasks": "Tasks", "calls": "Calls", "events": "Events"}

func (c *core) activityJSON(o *org, a *activity) map[string]any {
	return map[string]any{
		"id": idStr(a.id), "activityType": a.kind, "subject": a.subject, "status": a.status, "priority": nullStr(a.priority),
		"ticketId": idStr(a.ticketID), "contactId": idStr(a.contactID), "departmentId": idStr(a.deptID),
		"ownerId": idStr(a.ownerID), "dueDate": timeStr(a.dueDate), "createdTime": timeStr(a.createdTime),
		"modifiedTime": timeStr(a.modifiedTime), "isTrashed": a.trashed,
	}
}

func (c *core) addActivity(o *org, act actor, kind string, body []byte) (*activity, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return nil, e
	}
	a := &activity{kind: kind, status: "Not Started", ownerID: act.agentID}
	if kind != "Tasks" {
		a.status = "Scheduled"
	}
	var errs []FieldError
	for k, raw := range m {
		switch k {
		case "subject", "status", "priority":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				errs = append(errs, invalid(k))
			}
			switch k {
			case "subject":
				a.subject = s
			case "status":
				if s != "" {
					a.status = s
				}
			case "priority":
				a.priority = s
			}
		case "dueDate", "startTime":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				if ms, ok := parseTime(s); ok {
					a.dueDate = ms
					continue
				}
			}
			errs = append(errs, invalid(k))
		case "ticketId", "contactId", "departmentId", "ownerId":
			id, ok := parseLookup(raw)
			var exists bool
			switch k {
			case "ticketId":
				t := o.tickets.get(id)
				exists = t != nil && !t.trashed
			case "contactId":
				exists = o.lookupExists(modContacts, id)
			case "departmentId":
				exists = o.lookupExists("departments", id)
			case "ownerId":
				exists = o.lookupExists("agents", id)
			}
			if !ok || !exists {
				errs = append(errs, invalid(k))
				continue
			}
			switch k {
			case "ticketId":
				a.ticketID = id
			case "contactId":
				a.contactID = id
			case "departmentId":
				a.deptID = id
			case "ownerId":
				a.ownerID = id
			}
		default:
			return nil, errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	if strings.TrimSpace(a.subject) == "" {
		errs = append(errs, missing("subject"))
	}
	if a.ticketID != 0 {
		t := o.tickets.get(a.ticketID)
		if a.deptID == 0 {
			a.deptID = t.departmentID
		}
		if a.contactID == 0 {
			a.contactID = t.contactID
		}
	}
	if a.deptID == 0 && !hasError(errs, "/departmentId") {
		errs = append(errs, missing("departmentId"))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return nil, errInvalidData(errs...)
	}
	a.id = o.newID()
	a.createdTime, a.modifiedTime = c.now(), c.now()
	c.storeActivity(o, a)
	c.emit(o, act, event{typ: strings.TrimSuffix(kind, "s") + "_Add", deptID: a.deptID, payload: c.activityJSON(o, a)})
	return a, nil
}

func (c *core) storeActivity(o *org, a *activity) {
	o.activities.put(a.id, a)
	o.activitiesOf.add(a.ticketID, a.id)
	if a.contactID != 0 && a.contactID != a.ticketID {
		o.activitiesOf.add(a.contactID, a.id)
	}
}

// ---- attachments ----

func (c *core) attachmentJSON(o *org, a *attachment) map[string]any {
	return map[string]any{
		"id": idStr(a.id), "name": a.name, "size": count(a.size), "creatorId": idStr(a.creatorID),
		"createdTime": timeStr(a.createdTime), "isPublic": a.public,
		"href": "https://" + c.host + "/api/v1/" + a.parentKind + "/" + strconv.FormatInt(a.parentID, 10) + "/attachments/" + strconv.FormatInt(a.id, 10) + "/content",
	}
}

// readUpload takes the "file" part of a multipart body.
func readUpload(r *http.Request, body []byte) (string, []byte, *APIError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return "", nil, &APIError{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "Attachments are uploaded as multipart/form-data."}
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, errMalformed()
		}
		if part.FormName() != "file" {
			continue
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return "", nil, errMalformed()
		}
		name := part.FileName()
		if name == "" {
			name = "attachment"
		}
		return name, data, nil
	}
	return "", nil, errInvalidData(missing("file"))
}

func (c *core) addAttachment(o *org, act actor, kind string, parent int64, name string, data []byte, public bool) *attachment {
	a := &attachment{id: o.newID(), parentID: parent, parentKind: kind, name: name, content: data, size: len(data),
		creatorID: act.agentID, createdTime: c.now(), public: public}
	o.attachments.put(a.id, a)
	o.attachmentsOf.add(parent, a.id)
	if kind == modTickets {
		t := o.tickets.get(parent)
		payload := c.attachmentJSON(o, a)
		payload["ticketId"] = idStr(parent)
		c.emit(o, act, event{typ: "Ticket_Attachment_Add", deptID: t.departmentID, payload: payload})
	}
	return a
}

// ---- contracts ----

func (c *core) contractJSON(o *org, k *contract) map[string]any {
	status := "ACTIVE"
	today := time.UnixMilli(c.now()).UTC().Format(dateLayout)
	switch {
	case k.startDate > today:
		status = "INACTIVE"
	case k.endDate != "" && k.endDate < today:
		status = "EXPIRED"
	}
	return map[string]any{
		"id": idStr(k.id), "contractName": k.name, "contractNumber": nullStr(k.number), "accountId": idStr(k.accountID),
		"productId": idStr(k.productID), "departmentId": idStr(k.deptID), "ownerId": idStr(k.ownerID),
		"startDate": nullStr(k.startDate), "endDate": nullStr(k.endDate), "contractStatus": status,
		"description": nullStr(k.description), "createdTime": timeStr(k.createdTime), "modifiedTime": timeStr(k.modifiedTime),
		"isTrashed": k.trashed, "associatedSLAId": idStr(k.slaID), "sla": o.slaRef(k.slaID),
	}
}

// contractListJSON is a row of GET /contracts: the SLA as associatedSLAId,
// with sla{id,name} only for include=slas.
func (c *core) contractListJSON(o *org, k *contract, inc map[string]bool) map[string]any {
	m := c.contractJSON(o, k)
	if !inc["slas"] {
		delete(m, "sla")
	}
	return m
}

// accountContractJSON is a row of GET /accounts/{id}/contracts, which
// names the SLA as slaName (Account.json, contractsForAccountDataListJson).
func (c *core) accountContractJSON(o *org, k *contract) map[string]any {
	m := c.contractJSON(o, k)
	delete(m, "sla")
	m["slaName"] = nil
	if s := o.slas.get(k.slaID); s != nil {
		m["slaName"] = s.name
	}
	return m
}

// applyContract validates a contract create or update body into k.
func (c *core) applyContract(o *org, k *contract, body []byte, create bool) *APIError {
	m, e := decodeObject(body)
	if e != nil {
		return e
	}
	var errs []FieldError
	var slaRaw json.RawMessage
	for key, raw := range m {
		switch key {
		case "associatedSLAId":
			slaRaw = raw
			if slaRaw == nil {
				slaRaw = json.RawMessage("null")
			}
		case "contractName", "contractNumber", "description", "startDate", "endDate":
			var s string
			if json.Unmarshal(raw, &s) != nil && string(raw) != "null" {
				errs = append(errs, invalid(key))
				continue
			}
			if (key == "startDate" || key == "endDate") && s != "" {
				if _, err := time.Parse(dateLayout, s); err != nil {
					errs = append(errs, invalid(key))
					continue
				}
			}
			switch key {
			case "contractName":
				k.name = s
			case "contractNumber":
				k.number = s
			case "description":
				k.description = s
			case "startDate":
				k.startDate = s
			case "endDate":
				k.endDate = s
			}
		case "accountId", "productId", "departmentId", "ownerId":
			module := map[string]string{"accountId": modAccounts, "productId": modProducts, "departmentId": "departments", "ownerId": "agents"}[key]
			id, ok := parseLookup(raw)
			if !ok || !o.lookupExists(module, id) {
				errs = append(errs, invalid(key))
				continue
			}
			switch key {
			case "accountId":
				o.contractsOf.move(k.accountID, id, k.id)
				k.accountID = id
			case "productId":
				k.productID = id
			case "departmentId":
				k.deptID = id
			case "ownerId":
				k.ownerID = id
			}
		case "id", "createdTime", "modifiedTime", "contractStatus", "isTrashed":
		default:
			return errUnprocessable("An extra parameter '" + key + "' is found")
		}
	}
	if create {
		for key, v := range map[string]bool{"contractName": k.name != "", "accountId": k.accountID != 0,
			"departmentId": k.deptID != 0, "startDate": k.startDate != ""} {
			if !v && !hasError(errs, "/"+key) {
				errs = append(errs, missing(key))
			}
		}
	}
	if k.endDate != "" && k.startDate != "" && k.endDate < k.startDate {
		errs = append(errs, invalid("endDate"))
	}
	if !hasError(errs, "/departmentId") {
		if fe := o.applyContractSLA(k, slaRaw, create); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return errInvalidData(errs...)
	}
	return nil
}

// ---- recycle bin ----

func (c *core) trashJSON(o *org, e *trashEntry, inc map[string]bool) map[string]any {
	out := map[string]any{"id": idStr(e.id), "type": e.kind, "displayName": e.displayName,
		"departmentId": idStr(e.deptID), "deletedById": idStr(e.deletedBy), "deletedTime": timeStr(e.deletedTime)}
	if inc["deletedBy"] {
		out["deletedBy"] = o.agentRef(e.deletedBy)
	}
	if inc["department"] {
		out["department"] = nil
		if d := o.departments.get(e.deptID); d != nil {
			out["department"] = map[string]any{"id": idStr(d.id), "name": d.name}
		}
	}
	return out
}

// trashKinds maps the fake's module filter values to recycle-bin types.
var trashKinds = map[string]string{
	"tickets": "Tickets", "contacts": "Contacts", "accounts": "Accounts", "products": "Products",
	"articles": "Articles", "contracts": "Contracts", "timeentry": "Time Entry", "tasks": "Tasks",
	"calls": "Calls", "events": "Events", "attachments": "Attachments",
}

func (o *org) trashEntry(id int64) (int, *trashEntry) {
	for i, e := range o.trash {
		if e.id == id {
			return i, e
		}
	}
	return -1, nil
}

// restore takes a record out of the recycle bin, with the records that
// went in because of it unless the caller says otherwise, and announces it
// again with an *_Add event.
func (c *core) restore(o *org, act actor, id int64, children bool) bool {
	i, e := o.trashEntry(id)
	if e == nil {
		return false
	}
	o.trash = append(o.trash[:i], o.trash[i+1:]...)
	switch e.kind {
	case "Contacts":
		if ct := o.contacts.get(id); ct != nil {
			ct.trashed = false
			ct.modifiedTime = c.now()
			c.emit(o, act, event{typ: "Contact_Add", payload: c.contactJSON(o, ct, nil)})
		}
	case "Accounts":
		if a := o.accounts.get(id); a != nil {
			a.trashed = false
			a.modifiedTime = c.now()
			c.emit(o, act, event{typ: "Account_Add", payload: c.accountJSON(o, a, nil)})
		}
	case "Products":
		if p := o.products.get(id); p != nil {
			p.trashed = false
			p.modifiedTime = c.now()
		}
	case "Tickets":
		if t := o.tickets.get(id); t != nil {
			t.trashed = false
			t.modifiedTime = c.now()
			c.emit(o, act, event{typ: "Ticket_Add", deptID: t.departmentID, payload: c.ticketJSON(o, t, nil)})
		}
	case "Articles":
		if a := o.articles.get(id); a != nil {
			a.trashed = false
			a.modifiedTime = c.now()
			c.emit(o, act, event{typ: "Article_Add", payload: c.articleJSON(o, a, true)})
		}
	case "Contracts":
		if k := o.contracts.get(id); k != nil {
			k.trashed = false
		}
	case "Time Entry":
		if te := o.timeEntries.get(id); te != nil {
			te.trashed = false
		}
	case "Tasks", "Calls", "Events":
		if a := o.activities.get(id); a != nil {
			a.trashed = false
		}
	case "Attachments":
		if a := o.attachments.get(id); a != nil {
			a.trashed = false
		}
	}
	if children {
		for _, child := range o.childrenOf(id) {
			c.restore(o, act, child, true)
		}
	}
	return true
}

func (o *org) childrenOf(parent int64) []int64 {
	var out []int64
	for _, e := range o.trash {
		if e.parent == parent {
			out = append(out, e.id)
		}
	}
	return out
}

// purge deletes a recycle-bin record for good, with its children.
func (c *core) purge(o *org, id int64) bool {
	i, e := o.trashEntry(id)
	if e == nil {
		return false
	}
	o.trash = append(o.trash[:i], o.trash[i+1:]...)
	for _, child := range o.childrenOf(id) {
		c.purge(o, child)
	}
	switch e.kind {
	case "Contacts":
		if ct := o.contacts.get(id); ct != nil {
			o.contactsOf.remove(ct.accountID, id)
			for _, tid := range append([]int64(nil), o.ticketsOf[id]...) {
				if t := o.tickets.get(tid); t != nil {
					t.contactID = 0
				}
			}
			delete(o.ticketsOf, id)
			delete(o.activitiesOf, id)
			o.reindexEmail(id, ct.email, "")
			o.contacts.del(id)
		}
	case "Accounts":
		for _, cid := range o.contactsOf[id] {
			if ct := o.contacts.get(cid); ct != nil {
				ct.accountID = 0
			}
		}
		for _, tid := range o.ticketsOf[id] {
			if t := o.tickets.get(tid); t != nil {
				t.accountID = 0
			}
		}
		delete(o.contactsOf, id)
		delete(o.ticketsOf, id)
		o.accounts.del(id)
	case "Products":
		for _, tid := range o.ticketsOf[id] {
			if t := o.tickets.get(tid); t != nil {
				t.productID = 0
			}
		}
		delete(o.ticketsOf, id)
		o.products.del(id)
	case "Tickets":
		if t := o.tickets.get(id); t != nil {
			o.ticketsOf.remove(t.contactID, id)
			o.ticketsOf.remove(t.accountID, id)
			o.ticketsOf.remove(t.productID, id)
			for _, te := range o.timeEntriesOf[id] {
				o.timeEntries.del(te)
			}
			for _, r := range o.ratingsOf[id] {
				o.ratings.del(r)
			}
			delete(o.timeEntriesOf, id)
			delete(o.ratingsOf, id)
			o.tickets.del(id)
		}
	case "Articles":
		o.articles.del(id)
	case "Contracts":
		if k := o.contracts.get(id); k != nil {
			o.contractsOf.remove(k.accountID, id)
			o.contracts.del(id)
		}
	case "Time Entry":
		if te := o.timeEntries.get(id); te != nil {
			o.timeEntriesOf.remove(te.ticketID, id)
			o.timeEntries.del(id)
		}
	case "Tasks", "Calls", "Events":
		if a := o.activities.get(id); a != nil {
			o.activitiesOf.remove(a.ticketID, id)
			o.activitiesOf.remove(a.contactID, id)
			o.activities.del(id)
		}
	case "Attachments":
		if a := o.attachments.get(id); a != nil {
			o.attachmentsOf.remove(a.parentID, id)
			o.attachments.del(id)
		}
	}
	return true
}

// massResult is one row of a mass action's {"results":[…]}.
func massResult(id int64, success bool) map[string]any {
	var errs any
	if !success {
		errs = map[string]any{"errorCode": "UNPROCESSABLE_ENTITY", "httpCode": "422"}
	}
	return map[string]any{"id": idStr(id), "success": success, "errors": errs}
}
