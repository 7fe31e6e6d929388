package crm

import (
	"fmt"
	"sort"
	"strings"
)

// record is one live record. Values sit in slots by field (a string each,
// "" for null) so 100,000 contacts and their activities stay small; the
// system fields live in the struct.
type record struct {
	id         string
	mod        *module
	created    int64 // unix seconds: the CRM keeps second precision
	modified   int64
	searchable int64 // unix nanoseconds from which search sees the record; 0 = always
	owner      int32 // index into Org.users
	createdBy  int32
	modifiedBy int32
	vals       []string
}

// store holds one module's records of one org, with the indexes the API
// needs: by id, in id order, by duplicate-check value and by lookup target.
type store struct {
	mod   *module
	byID  map[string]*record
	order []*record                       // ascending id
	index map[string]map[string][]*record // duplicate-check field -> folded value -> records
	refs  map[string]map[string][]*record // lookup field -> target id -> records
}

func newStore(m *module) *store {
	st := &store{mod: m, byID: map[string]*record{}, index: map[string]map[string][]*record{},
		refs: map[string]map[string][]*record{}}
	for _, f := range m.fields {
		if indexed(m, f) {
			st.index[f.api] = map[string][]*record{}
		}
		if f.kind == kindSlot && (f.typ == typeLookup || f.typ == typeMultiLook) {
			st.refs[f.api] = map[string][]*record{}
		}
	}
	return st
}

// indexed reports whether a field can find duplicates: unique fields and
// the module's system duplicate-check field.
func indexed(m *module, f *field) bool {
	return f.kind == kindSlot && (f.unique || f.api == m.dupField)
}

func fold(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

func (st *store) add(r *record) {
	st.byID[r.id] = r
	n := len(st.order)
	if n == 0 || st.order[n-1].id < r.id {
		st.order = append(st.order, r)
	} else {
		i := sort.Search(n, func(i int) bool { return st.order[i].id >= r.id })
		st.order = append(st.order, nil)
		copy(st.order[i+1:], st.order[i:])
		st.order[i] = r
	}
	for _, f := range st.mod.fields {
		st.link(r, f)
	}
}

func (st *store) drop(r *record) {
	delete(st.byID, r.id)
	i := sort.Search(len(st.order), func(i int) bool { return st.order[i].id >= r.id })
	if i < len(st.order) && st.order[i] == r {
		st.order = append(st.order[:i], st.order[i+1:]...)
	}
	for _, f := range st.mod.fields {
		st.unlink(r, f)
	}
}

// link adds r to the indexes of field f.
func (st *store) link(r *record, f *field) {
	if f.slot < 0 || r.vals[f.slot] == "" {
		return
	}
	if idx := st.index[f.api]; idx != nil {
		k := fold(r.vals[f.slot])
		idx[k] = append(idx[k], r)
	}
	if refs := st.refs[f.api]; refs != nil {
		k := r.vals[f.slot]
		refs[k] = append(refs[k], r)
	}
}

// unlink removes r from the indexes of field f.
func (st *store) unlink(r *record, f *field) {
	if f.slot < 0 || r.vals[f.slot] == "" {
		return
	}
	if idx := st.index[f.api]; idx != nil {
		k := fold(r.vals[f.slot])
		if rest := without(idx[k], r); len(rest) == 0 {
			delete(idx, k)
		} else {
			idx[k] = rest
		}
	}
	if refs := st.refs[f.api]; refs != nil {
		k := r.vals[f.slot]
		if rest := without(refs[k], r); len(rest) == 0 {
			delete(refs, k)
		} else {
			refs[k] = rest
		}
	}
}

func without(rs []*record, r *record) []*record {
	for i, x := range rs {
		if x == r {
			return append(rs[:i:i], rs[i+1:]...)
		}
	}
	return rs
}

// find returns the live records whose field api holds v (case-insensitive),
// oldest first.
func (st *store) find(api, v string) []*record {
	rs := st.index[api][fold(v)]
	out := append([]*record(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// writer collects what one write operation (one API call or one UI action)
// changed, so notifications go out once per module and operation.
type writer struct {
	o       *Org
	actor   *user
	now     int64
	base    string // scheme://host of the API call, for resource URIs
	batches []*batch
}

type batch struct {
	module string
	op     string // insert, update or delete
	ids    []string
	fields map[string][]string // id -> affected field api names (updates)
}

func (o *Org) newWriter(actor *user, base string) *writer {
	return &writer{o: o, actor: actor, now: o.s.clock.Now().Unix(), base: base}
}

func (w *writer) note(module, op, id string, fields []string) {
	var b *batch
	for _, x := range w.batches {
		if x.module == module && x.op == op {
			b = x
		}
	}
	if b == nil {
		b = &batch{module: module, op: op, fields: map[string][]string{}}
		w.batches = append(w.batches, b)
	}
	b.ids = append(b.ids, id)
	b.fields[id] = fields
}

// change is a parsed write: new slot values and, maybe, a new owner.
type change struct {
	vals  map[int]string
	owner *user
	set   []string // field api names given, in input order
}

// combine turns a record's errors into the one error Zoho answers with.
func combine(errs []*Error) *Error {
	if len(errs) == 1 {
		return errs[0]
	}
	list := make([]any, 0, len(errs))
	for _, e := range errs {
		list = append(list, e.body())
	}
	return &Error{Status: 400, Code: "MULTIPLE_OR_MULTI_ERRORS", Message: "Multiple errors in the request",
		Details: map[string]any{"errors": list}}
}

func jsonPath(idx int, api string) string { return fmt.Sprintf("$.data[%d].%s", idx, api) }

// insert validates and adds one record. Called with s.mu held.
func (o *Org) insert(w *writer, m *module, in map[string]any, idx int, parent *parentRef) (*record, *Error) {
	ch, errs := o.parse(m, in, idx, parent)
	bad := map[string]bool{}
	for _, e := range errs {
		if a, ok := e.Details["api_name"].(string); ok {
			bad[a] = true
		}
	}
	for _, f := range m.fields {
		if f.mandatory && f.slot >= 0 && ch.vals[f.slot] == "" && !bad[f.api] {
			errs = append(errs, errf(400, "MANDATORY_NOT_FOUND", "required field not found",
				map[string]any{"api_name": f.api, "json_path": jsonPath(idx, f.api)}))
		}
	}
	if len(errs) == 0 {
		errs = o.rules(m, nil, ch, idx)
	}
	if len(errs) == 0 {
		errs = o.unique(m, nil, ch, idx)
	}
	if len(errs) > 0 {
		return nil, combine(errs)
	}
	r := &record{id: o.newID(), mod: m, created: w.now, modified: w.now,
		owner: w.actor.idx, createdBy: w.actor.idx, modifiedBy: w.actor.idx, vals: make([]string, m.slots)}
	if ch.owner != nil {
		r.owner = ch.owner.idx
	}
	for slot, v := range ch.vals {
		r.vals[slot] = v
	}
	o.markSearch(r)
	o.stores[m.api].add(r)
	w.note(m.api, "insert", r.id, ch.set)
	return r, nil
}

// update validates and applies a change to one record. Called with s.mu
// held.
func (o *Org) update(w *writer, r *record, in map[string]any, idx int) *Error {
	m := r.mod
	ch, errs := o.parse(m, in, idx, nil)
	for _, f := range m.fields {
		if v, ok := ch.vals[f.slot]; ok && f.mandatory && f.slot >= 0 && v == "" {
			errs = append(errs, errf(400, "MANDATORY_NOT_FOUND", "required field not found",
				map[string]any{"api_name": f.api, "json_path": jsonPath(idx, f.api)}))
		}
	}
	if len(errs) == 0 {
		errs = o.rules(m, r, ch, idx)
	}
	if len(errs) == 0 {
		errs = o.unique(m, r, ch, idx)
	}
	if len(errs) > 0 {
		return combine(errs)
	}
	st := o.stores[m.api]
	var changed []string
	for _, f := range m.fields {
		v, ok := ch.vals[f.slot]
		if !ok || f.slot < 0 || r.vals[f.slot] == v {
			continue
		}
		st.unlink(r, f)
		r.vals[f.slot] = v
		st.link(r, f)
		if !f.hidden {
			changed = append(changed, f.api)
		}
	}
	if ch.owner != nil && ch.owner.idx != r.owner {
		r.owner = ch.owner.idx
		changed = append(changed, "Owner")
	}
	r.modified = w.now
	r.modifiedBy = w.actor.idx
	o.markSearch(r)
	w.note(m.api, "update", r.id, changed)
	return nil
}

// remove moves a record to the recycle bin. Called with s.mu held.
func (o *Org) remove(w *writer, r *record) {
	o.stores[r.mod.api].drop(r)
	o.deleted[r.mod.api] = append(o.deleted[r.mod.api], &deletedEntry{
		id: r.id, name: o.displayName(r), createdBy: r.createdBy, deletedBy: w.actor.idx, deletedAt: w.now,
	})
	w.note(r.mod.api, "delete", r.id, nil)
}

// markSearch hides a just-written record from search for the index lag.
func (o *Org) markSearch(r *record) {
	if o.s.lag > 0 {
		r.searchable = o.s.clock.Now().Add(o.s.lag).UnixNano()
	} else {
		r.searchable = 0
	}
}

// rules applies cross-field rules: Bigin's stage must belong to the
// record's sub-pipeline.
func (o *Org) rules(m *module, r *record, ch *change, idx int) []*Error {
	if o.s.o.Flavor != Bigin || m.api != "Pipelines" {
		return nil
	}
	sp, st := m.field("Sub_Pipeline"), m.field("Stage")
	cur := func(f *field) string {
		if v, ok := ch.vals[f.slot]; ok {
			return v
		}
		if r != nil {
			return r.vals[f.slot]
		}
		return ""
	}
	sub, stage := cur(sp), cur(st)
	if sub == "" || stage == "" {
		return nil
	}
	for _, allowed := range subPipelines[sub] {
		if allowed == stage {
			return nil
		}
	}
	return []*Error{errf(400, "INVALID_DATA", "invalid data", map[string]any{
		"api_name": "Stage", "json_path": jsonPath(idx, "Stage"), "expected_data_type": typePicklist,
		"supported_values": subPipelines[sub]})}
}

// unique rejects values of unique fields another record already holds.
func (o *Org) unique(m *module, self *record, ch *change, idx int) []*Error {
	st := o.stores[m.api]
	var errs []*Error
	for _, f := range m.fields {
		v, ok := ch.vals[f.slot]
		if !f.unique || f.slot < 0 || !ok || v == "" {
			continue
		}
		for _, other := range st.find(f.api, v) {
			if other == self {
				continue
			}
			errs = append(errs, o.duplicate(f, other, idx))
			break
		}
	}
	return errs
}

func (o *Org) duplicate(f *field, other *record, idx int) *Error {
	owner := o.users[other.owner]
	return errf(400, "DUPLICATE_DATA", "duplicate data", map[string]any{
		"api_name": f.api, "json_path": jsonPath(idx, f.api),
		"duplicate_record": map[string]any{
			"Owner":  map[string]any{"name": owner.name(), "id": owner.id, "zuid": owner.zuid},
			"module": map[string]any{"api_name": other.mod.api, "id": other.mod.id},
			"id":     other.id,
		},
		"more_records": false,
	})
}

// commit queues the notifications of a write and invalidates cached
// listings. Called with s.mu held; the caller flushes after unlocking.
func (o *Org) commit(w *writer) {
	if len(w.batches) == 0 {
		return
	}
	o.version++
	clear(o.cache)
	o.queueNotifications(w)
}

// displayName is how a record is named in lookups and the recycle bin.
func (o *Org) displayName(r *record) string {
	f := r.mod.field(r.mod.display)
	if f.kind == kindFullName {
		return fullName(r)
	}
	return r.vals[f.slot]
}

func fullName(r *record) string {
	first, last := r.mod.field("First_Name"), r.mod.field("Last_Name")
	return strings.TrimSpace(r.vals[first.slot] + " " + r.vals[last.slot])
}

// lookupRecord finds a live record by id in any of the given modules.
func (o *Org) lookupRecord(id string, modules ...string) *record {
	for _, m := range modules {
		if r := o.stores[m].byID[id]; r != nil {
			return r
		}
	}
	return nil
}
