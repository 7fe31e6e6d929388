package desk

import (
	"encoding/json"
	"sort"
	"strings"
)

// This file holds contacts, accounts and products: how they are stored,
// shown and written. Each write goes through one function used by both
// the HTTP API and the UI methods, so both fire the same webhooks.

func setMore(more map[string]any, name string, v any) map[string]any {
	if isBlank(v) {
		delete(more, name)
		if len(more) == 0 {
			return nil
		}
		return more
	}
	if more == nil {
		more = map[string]any{}
	}
	more[name] = v
	return more
}

func asString(v any) string { s, _ := v.(string); return s }

func asID(v any) int64 { id, _ := v.(int64); return id }

// ---- contacts ----

func (c *contact) get(name string) any {
	switch name {
	case "firstName":
		return c.firstName
	case "lastName":
		return c.lastName
	case "email":
		return c.email
	case "secondaryEmail":
		return c.secondaryEmail
	case "phone":
		return c.phone
	case "mobile":
		return c.mobile
	case "title":
		return c.title
	case "type":
		return c.typ
	case "accountId":
		return c.accountID
	case "ownerId":
		return c.ownerID
	}
	return c.more[name]
}

func (c *contact) set(name string, v any) {
	switch name {
	case "firstName":
		c.firstName = asString(v)
	case "lastName":
		c.lastName = asString(v)
	case "email":
		c.email = asString(v)
	case "secondaryEmail":
		c.secondaryEmail = asString(v)
	case "phone":
		c.phone = asString(v)
	case "mobile":
		c.mobile = asString(v)
	case "title":
		c.title = asString(v)
	case "type":
		c.typ = asString(v)
	case "accountId":
		c.accountID = asID(v)
	case "ownerId":
		c.ownerID = asID(v)
	default:
		c.more = setMore(c.more, name, v)
	}
}

func (c *contact) fullName() string {
	if c.firstName == "" {
		return c.lastName
	}
	return c.firstName + " " + c.lastName
}

// happiness summarises the ratings on a set of tickets as Desk's
// customerHappiness percentages.
func (o *org) happiness(ticketIDs []int64) map[string]any {
	var good, okay, bad int
	for _, tid := range ticketIDs {
		for _, rid := range o.ratingsOf[tid] {
			switch o.ratings.get(rid).value {
			case "GOOD":
				good++
			case "OKAY":
				okay++
			case "BAD":
				bad++
			}
		}
	}
	total := good + okay + bad
	pct := func(n int) string {
		if total == 0 {
			return "0"
		}
		return count(n * 100 / total)
	}
	return map[string]any{"goodPercentage": pct(good), "okPercentage": pct(okay), "badPercentage": pct(bad)}
}

func (c *core) contactJSON(o *org, ct *contact, inc map[string]bool) map[string]any {
	out := map[string]any{}
	for _, f := range o.fields[modContacts] {
		if !f.custom {
			out[f.apiName] = renderValue(f, ct.get(f.apiName))
		}
	}
	out["id"] = idStr(ct.id)
	out["cf"] = o.renderCF(modContacts, ct.cf)
	out["createdTime"] = timeStr(ct.createdTime)
	out["modifiedTime"] = timeStr(ct.modifiedTime)
	out["webUrl"] = c.webURL(o, "Contacts", ct.id)
	out["photoURL"] = nil
	out["isDeleted"] = false
	out["isTrashed"] = ct.trashed
	out["isSpam"] = ct.spam
	out["isAnonymous"] = false
	out["isEndUser"] = false
	out["customerHappiness"] = o.happiness(o.ticketsOf[ct.id])
	out["zohoCRMContact"] = nil
	if ct.crmID != 0 {
		out["zohoCRMContact"] = map[string]any{"id": idStr(ct.crmID), "type": ct.crmType}
	}
	if inc["accounts"] {
		out["account"] = nil
		if a := o.accounts.get(ct.accountID); a != nil {
			out["account"] = map[string]any{"id": idStr(a.id), "accountName": a.name, "website": nullStr(a.website)}
		}
	}
	if inc["owner"] {
		out["owner"] = o.agentRef(ct.ownerID)
	}
	return out
}

func (c *core) createContact(o *org, act actor, ws writeSet) *contact {
	now := c.now()
	ct := &contact{id: o.newID(), createdTime: now, modifiedTime: now, createdBy: act.agentID, modifiedBy: act.agentID, ownerID: act.agentID}
	for k, v := range ws.std {
		ct.set(k, v)
	}
	ct.cf = applyCF(ct.cf, ws.cf)
	o.contacts.put(ct.id, ct)
	o.contactsOf.add(ct.accountID, ct.id)
	o.reindexEmail(ct.id, "", ct.email)
	c.emit(o, act, event{typ: "Contact_Add", payload: c.contactJSON(o, ct, nil)})
	return ct
}

func (c *core) updateContact(o *org, act actor, ct *contact, ws writeSet) {
	before := c.contactJSON(o, ct, nil)
	oldAccount, oldEmail := ct.accountID, ct.email
	for k, v := range ws.std {
		ct.set(k, v)
	}
	ct.cf = applyCF(ct.cf, ws.cf)
	o.contactsOf.move(oldAccount, ct.accountID, ct.id)
	o.reindexEmail(ct.id, oldEmail, ct.email)
	c.touchContact(o, act, ct, before)
}

// touchContact stamps a change and tells subscribers what changed.
func (c *core) touchContact(o *org, act actor, ct *contact, before map[string]any) {
	after := c.contactJSON(o, ct, nil)
	prev, changed := diff(before, after)
	if changed == nil {
		return
	}
	ct.modifiedTime, ct.modifiedBy = c.now(), act.agentID
	after["modifiedTime"] = timeStr(ct.modifiedTime)
	c.emit(o, act, event{typ: "Contact_Update", payload: after, prev: prev, changed: changed})
}

// ---- accounts ----

func (a *account) get(name string) any {
	switch name {
	case "accountName":
		return a.name
	case "email":
		return a.email
	case "phone":
		return a.phone
	case "website":
		return a.website
	case "industry":
		return a.industry
	case "ownerId":
		return a.ownerID
	}
	return a.more[name]
}

func (a *account) set(name string, v any) {
	switch name {
	case "accountName":
		a.name = asString(v)
	case "email":
		a.email = asString(v)
	case "phone":
		a.phone = asString(v)
	case "website":
		a.website = asString(v)
	case "industry":
		a.industry = asString(v)
	case "ownerId":
		a.ownerID = asID(v)
	default:
		a.more = setMore(a.more, name, v)
	}
}

func (c *core) accountJSON(o *org, a *account, inc map[string]bool) map[string]any {
	out := map[string]any{}
	for _, f := range o.fields[modAccounts] {
		if !f.custom {
			out[f.apiName] = renderValue(f, a.get(f.apiName))
		}
	}
	out["id"] = idStr(a.id)
	out["cf"] = o.renderCF(modAccounts, a.cf)
	out["createdTime"] = timeStr(a.createdTime)
	out["modifiedTime"] = timeStr(a.modifiedTime)
	out["webUrl"] = c.webURL(o, "Accounts", a.id)
	out["isDeleted"] = false
	out["isTrashed"] = a.trashed
	out["customerHappiness"] = o.happiness(o.ticketsOf[a.id])
	out["associatedSLAIds"] = []string{}
	out["zohoCRMAccount"] = nil
	if a.crmID != 0 {
		out["zohoCRMAccount"] = map[string]any{"id": idStr(a.crmID)}
	}
	if inc["owner"] {
		out["owner"] = o.agentRef(a.ownerID)
	}
	return out
}

func (c *core) createAccount(o *org, act actor, ws writeSet) *account {
	now := c.now()
	a := &account{id: o.newID(), createdTime: now, modifiedTime: now, createdBy: act.agentID, modifiedBy: act.agentID, ownerID: act.agentID}
	for k, v := range ws.std {
		a.set(k, v)
	}
	a.cf = applyCF(a.cf, ws.cf)
	o.accounts.put(a.id, a)
	c.emit(o, act, event{typ: "Account_Add", payload: c.accountJSON(o, a, nil)})
	return a
}

func (c *core) updateAccount(o *org, act actor, a *account, ws writeSet) {
	before := c.accountJSON(o, a, nil)
	for k, v := range ws.std {
		a.set(k, v)
	}
	a.cf = applyCF(a.cf, ws.cf)
	c.touchAccount(o, act, a, before)
}

func (c *core) touchAccount(o *org, act actor, a *account, before map[string]any) {
	after := c.accountJSON(o, a, nil)
	prev, changed := diff(before, after)
	if changed == nil {
		return
	}
	a.modifiedTime, a.modifiedBy = c.now(), act.agentID
	after["modifiedTime"] = timeStr(a.modifiedTime)
	c.emit(o, act, event{typ: "Account_Update", payload: after, prev: prev, changed: changed})
}

// ---- products ----

func (p *product) get(name string) any {
	switch name {
	case "productName":
		return p.name
	case "productCode":
		return p.code
	case "unitPrice":
		return p.unitPrice
	case "productCategory":
		return p.category
	case "departmentIds":
		return p.deptIDs
	case "ownerId":
		return p.ownerID
	}
	return p.more[name]
}

func (p *product) set(name string, v any) {
	switch name {
	case "productName":
		p.name = asString(v)
	case "productCode":
		p.code = asString(v)
	case "unitPrice":
		p.unitPrice, _ = v.(float64)
	case "productCategory":
		p.category = asString(v)
	case "departmentIds":
		ids, _ := v.([]int64)
		p.deptIDs = append([]int64(nil), ids...)
	case "ownerId":
		p.ownerID = asID(v)
	default:
		p.more = setMore(p.more, name, v)
	}
}

func (c *core) productJSON(o *org, p *product) map[string]any {
	out := map[string]any{}
	for _, f := range o.fields[modProducts] {
		if !f.custom {
			out[f.apiName] = renderValue(f, p.get(f.apiName))
		}
	}
	out["unitPrice"] = decimalStr(p.unitPrice)
	out["departmentIds"] = idList(p.deptIDs)
	out["id"] = idStr(p.id)
	out["cf"] = o.renderCF(modProducts, p.cf)
	out["createdTime"] = timeStr(p.createdTime)
	out["modifiedTime"] = timeStr(p.modifiedTime)
	out["createdBy"] = idStr(p.createdBy)
	out["modifiedBy"] = idStr(p.modifiedBy)
	out["webUrl"] = c.webURL(o, "Products", p.id)
	out["isDeleted"] = p.trashed
	out["isTrashed"] = p.trashed
	return out
}

// Desk has no product webhooks, so product writes fire nothing.

func (c *core) createProduct(o *org, act actor, ws writeSet) *product {
	now := c.now()
	p := &product{id: o.newID(), createdTime: now, modifiedTime: now, createdBy: act.agentID, modifiedBy: act.agentID, ownerID: act.agentID}
	for k, v := range ws.std {
		p.set(k, v)
	}
	p.cf = applyCF(p.cf, ws.cf)
	o.products.put(p.id, p)
	return p
}

func (c *core) updateProduct(o *org, act actor, p *product, ws writeSet) {
	before := c.productJSON(o, p)
	for k, v := range ws.std {
		p.set(k, v)
	}
	p.cf = applyCF(p.cf, ws.cf)
	if _, changed := diff(before, c.productJSON(o, p)); changed != nil {
		p.modifiedTime, p.modifiedBy = c.now(), act.agentID
	}
}

// ---- trash ----

func (c *core) addTrash(o *org, kind string, id int64, name string, dept int64, act actor, parent int64) {
	o.trash = append(o.trash, &trashEntry{id: id, kind: kind, displayName: name, deptID: dept,
		deletedBy: act.agentID, deletedTime: c.now(), parent: parent})
}

// trashContact moves a contact to the recycle bin with its tickets, as
// Desk does when a contact is deleted.
func (c *core) trashContact(o *org, act actor, ct *contact) {
	ct.trashed = true
	ct.modifiedTime = c.now()
	c.addTrash(o, "Contacts", ct.id, ct.fullName(), 0, act, 0)
	for _, tid := range append([]int64(nil), o.ticketsOf[ct.id]...) {
		if t := o.tickets.get(tid); t != nil && !t.trashed {
			c.trashTicket(o, act, t, ct.id)
		}
	}
	c.emit(o, act, event{typ: "Contact_Delete", payload: c.contactJSON(o, ct, nil)})
}

// trashAccount moves an account and its contracts to the recycle bin; its
// contacts and tickets stay and keep pointing at it, so a restore puts
// everything back as it was.
func (c *core) trashAccount(o *org, act actor, a *account) {
	a.trashed = true
	a.modifiedTime = c.now()
	c.addTrash(o, "Accounts", a.id, a.name, 0, act, 0)
	for _, kid := range o.contractsOf[a.id] {
		if k := o.contracts.get(kid); k != nil && !k.trashed {
			k.trashed = true
			c.addTrash(o, "Contracts", k.id, k.name, k.deptID, act, a.id)
		}
	}
	c.emit(o, act, event{typ: "Account_Delete", payload: c.accountJSON(o, a, nil)})
}

func (c *core) trashProduct(o *org, act actor, p *product) {
	p.trashed = true
	p.modifiedTime = c.now()
	var dept int64
	if len(p.deptIDs) > 0 {
		dept = p.deptIDs[0]
	}
	c.addTrash(o, "Products", p.id, p.name, dept, act, 0)
}

// trashIDs reads a moveToTrash body: Desk names the list after the module
// (contactIds, accountIds, productIds, ticketIds); "ids" is accepted too.
func trashIDs(body []byte, key string) ([]int64, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return nil, e
	}
	raw, found := m[key]
	name := key
	if !found {
		raw, found = m["ids"]
		name = "ids"
	}
	if !found {
		return nil, errInvalidData(missing(key))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, errInvalidData(invalid(name))
	}
	ids := make([]int64, 0, len(list))
	for _, item := range list {
		id, ok := parseLookup(item)
		if !ok {
			return nil, errInvalidData(invalid(name))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ---- merge ----

// mergeInput is the body of POST /{module}/{id}/merge: the records merged
// into the master, and which record each field's value is taken from.
type mergeInput struct {
	ids    []int64
	source map[string]int64
}

func parseMerge(body []byte, masterID int64, exists func(int64) bool) (mergeInput, *APIError) {
	var in struct {
		IDs    []json.RawMessage          `json:"ids"`
		Source map[string]json.RawMessage `json:"source"`
	}
	if _, e := decodeObject(body); e != nil {
		return mergeInput{}, e
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return mergeInput{}, errMalformed()
	}
	out := mergeInput{source: map[string]int64{}}
	if len(in.IDs) == 0 {
		return out, errInvalidData(missing("ids"))
	}
	if len(in.IDs) > 3 {
		return out, errInvalidData(FieldError{FieldName: "/ids", ErrorType: "invalid", ErrorMessage: "At most four records can be merged at once."})
	}
	seen := map[int64]bool{masterID: true}
	for _, raw := range in.IDs {
		id, ok := parseLookup(raw)
		if !ok || seen[id] || !exists(id) {
			return out, errInvalidData(invalid("ids"))
		}
		seen[id] = true
		out.ids = append(out.ids, id)
	}
	keys := make([]string, 0, len(in.Source))
	for k := range in.Source {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id, ok := parseLookup(in.Source[k])
		if !ok || !seen[id] {
			return out, errInvalidData(invalid("source/" + k))
		}
		out.source[k] = id
	}
	return out, nil
}

// mergeContacts folds other contacts into the master: chosen field values
// are copied, their tickets and activities move to the master, and they
// go to the recycle bin.
func (c *core) mergeContacts(o *org, act actor, master *contact, in mergeInput) *APIError {
	before := c.contactJSON(o, master, nil)
	oldEmail, oldAccount := master.email, master.accountID
	defer func() {
		o.reindexEmail(master.id, oldEmail, master.email)
		o.contactsOf.move(oldAccount, master.accountID, master.id)
	}()
	for fieldName, from := range in.source {
		if from == master.id {
			continue
		}
		src := o.contacts.get(from)
		if strings.HasPrefix(fieldName, "cf_") {
			master.cf = applyCF(master.cf, map[string]any{fieldName: src.cf[fieldName]})
			continue
		}
		if o.fieldByName(modContacts, fieldName, false) == nil {
			return errInvalidData(invalid("source/" + fieldName))
		}
		master.set(fieldName, src.get(fieldName))
	}
	for _, id := range in.ids {
		other := o.contacts.get(id)
		for _, tid := range append([]int64(nil), o.ticketsOf[other.id]...) {
			t := o.tickets.get(tid)
			tb := c.ticketJSON(o, t, nil)
			o.ticketsOf.move(other.id, master.id, tid)
			t.contactID = master.id
			c.touchTicket(o, act, t, tb)
		}
		for _, aid := range append([]int64(nil), o.activitiesOf[other.id]...) {
			o.activitiesOf.move(other.id, master.id, aid)
			o.activities.get(aid).contactID = master.id
		}
		c.trashContact(o, act, other)
	}
	c.touchContact(o, act, master, before)
	return nil
}

func (c *core) mergeAccounts(o *org, act actor, master *account, in mergeInput) *APIError {
	before := c.accountJSON(o, master, nil)
	for fieldName, from := range in.source {
		if from == master.id {
			continue
		}
		src := o.accounts.get(from)
		if strings.HasPrefix(fieldName, "cf_") {
			master.cf = applyCF(master.cf, map[string]any{fieldName: src.cf[fieldName]})
			continue
		}
		if o.fieldByName(modAccounts, fieldName, false) == nil {
			return errInvalidData(invalid("source/" + fieldName))
		}
		master.set(fieldName, src.get(fieldName))
	}
	for _, id := range in.ids {
		other := o.accounts.get(id)
		for _, cid := range append([]int64(nil), o.contactsOf[other.id]...) {
			ct := o.contacts.get(cid)
			cb := c.contactJSON(o, ct, nil)
			o.contactsOf.move(other.id, master.id, cid)
			ct.accountID = master.id
			c.touchContact(o, act, ct, cb)
		}
		for _, tid := range append([]int64(nil), o.ticketsOf[other.id]...) {
			t := o.tickets.get(tid)
			tb := c.ticketJSON(o, t, nil)
			o.ticketsOf.move(other.id, master.id, tid)
			t.accountID = master.id
			c.touchTicket(o, act, t, tb)
		}
		for _, kid := range append([]int64(nil), o.contractsOf[other.id]...) {
			o.contractsOf.move(other.id, master.id, kid)
			o.contracts.get(kid).accountID = master.id
		}
		c.trashAccount(o, act, other)
	}
	c.touchAccount(o, act, master, before)
	return nil
}

// ---- statistics ----

// statistics counts a contact's or account's tickets by state, for the
// "resolved / unresolved / overdue" figures of SPEC E3 and F7.
func (c *core) statistics(o *org, ticketIDs []int64) map[string]any {
	var total, open, onhold, closed, overdue, escalated, spam int
	channels := map[string]int{}
	now := c.now()
	for _, id := range ticketIDs {
		t := o.tickets.get(id)
		if t == nil || t.trashed {
			continue
		}
		total++
		switch o.statusType(t.status) {
		case "Closed":
			closed++
		case "On Hold":
			onhold++
		default:
			open++
		}
		if t.isOverdue(o, now) {
			overdue++
		}
		if t.escalated {
			escalated++
		}
		if t.spam {
			spam++
		}
		channels[t.channel]++
	}
	cw := map[string]any{}
	for k, v := range channels {
		cw[k] = count(v)
	}
	h := o.happiness(ticketIDs)
	return map[string]any{
		"totalTickets": count(total), "openTickets": count(open), "onholdTickets": count(onhold),
		"closedTickets": count(closed), "overdueTickets": count(overdue), "escalatedTickets": count(escalated),
		"spamTickets": count(spam), "channelWiseCount": cw, "customerHappiness": h,
		"firstResponseTime": nil, "responseTime": nil, "resolutionTime": nil,
	}
}
