package crm

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Paging limits of the records API.
const (
	maxPerPage      = 200
	maxFields       = 50
	maxDiscrete     = 2000    // records reachable with the page parameter
	maxTokenRecords = 100_000 // records reachable with page_token
	tokenLifetime   = 24 * time.Hour
	maxIDs          = 100
)

// pageToken is the server side of an opaque page_token: a keyset cursor
// bound to the user and to the query it continues.
type pageToken struct {
	org     *Org
	user    string
	bind    string
	afterK  int64
	afterID string
	fromTop bool // the cursor is the start of the listing
	page    int
	served  int
	expires time.Time
}

// cachedList is a filtered, sorted listing kept until the org's next write,
// so deep paging does not sort 100,000 records per page.
type cachedList struct {
	recs []*record
}

// listQuery is a parsed list or related-list request.
type listQuery struct {
	fields  []*field
	perPage int
	page    int
	token   string
	sortBy  string
	desc    bool
	view    *view
	ids     []string
	since   int64
	hasIMS  bool
	bind    string
}

func parseFields(m *module, raw string, required bool) ([]*field, *Error) {
	if strings.TrimSpace(raw) == "" {
		if required {
			return nil, missingParam("fields")
		}
		return nil, nil
	}
	var names []string
	seen := map[string]bool{}
	for _, name := range strings.Split(raw, ",") {
		name = strings.TrimSpace(name)
		if name == "" || name == "id" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	if len(names) > maxFields {
		return nil, errf(400, "LIMIT_EXCEEDED", "the number of fields exceeds the limit",
			map[string]any{"param_name": "fields", "limit": maxFields})
	}
	var out []*field
	for _, name := range names {
		f := m.field(name)
		if f == nil {
			return nil, errf(400, "INVALID_DATA", "the field api name given seems to be invalid",
				map[string]any{"param_name": "fields", "api_name": name})
		}
		out = append(out, f)
	}
	if out == nil {
		out = []*field{}
	}
	return out, nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, *Error) {
	raw := q.Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || (hi > 0 && n > hi) {
		e := invalidParam(name, "invalid value for "+name)
		if hi > 0 {
			e.Details["limit"] = hi
		}
		return 0, e
	}
	return n, nil
}

// ifModifiedSince reads the If-Modified-Since header.
func ifModifiedSince(r *http.Request) (int64, bool, *Error) {
	raw := r.Header.Get("If-Modified-Since")
	if raw == "" {
		return 0, false, nil
	}
	t, ok := parseTime(raw)
	if !ok {
		return 0, false, errf(400, "INVALID_DATA", "the If-Modified-Since header is invalid",
			map[string]any{"header_name": "If-Modified-Since"})
	}
	return t.Unix(), true, nil
}

func (s *Server) parseList(c *call, m *module, parent *parentRef) (*listQuery, *Error) {
	q := c.q
	lq := &listQuery{sortBy: "id", desc: true}
	var e *Error
	if lq.fields, e = parseFields(m, q.Get("fields"), true); e != nil {
		return nil, e
	}
	if lq.perPage, e = intParam(q, "per_page", maxPerPage, 1, maxPerPage); e != nil {
		return nil, e
	}
	lq.token = q.Get("page_token")
	if lq.token != "" && q.Get("page") != "" {
		return nil, errf(400, "AMBIGUITY_DURING_PROCESSING", "page and page_token cannot be given together",
			map[string]any{"ambiguity_due_to": []string{"page", "page_token"}})
	}
	if lq.page, e = intParam(q, "page", 1, 1, 0); e != nil {
		return nil, e
	}
	if sb := q.Get("sort_by"); sb != "" {
		if sb != "id" && sb != "Created_Time" && sb != "Modified_Time" {
			e := invalidParam("sort_by", "invalid value for sort_by")
			e.Details["supported_values"] = []string{"id", "Created_Time", "Modified_Time"}
			return nil, e
		}
		lq.sortBy = sb
	}
	switch q.Get("sort_order") {
	case "", "desc":
	case "asc":
		lq.desc = false
	default:
		e := invalidParam("sort_order", "invalid value for sort_order")
		e.Details["supported_values"] = []string{"asc", "desc"}
		return nil, e
	}
	if cvid := q.Get("cvid"); cvid != "" {
		if parent != nil {
			return nil, invalidParam("cvid", "cvid is not supported on related lists")
		}
		if q.Get("sort_by") != "" {
			return nil, errf(400, "AMBIGUITY_DURING_PROCESSING", "cvid and sort_by cannot be given together",
				map[string]any{"ambiguity_due_to": []string{"cvid", "sort_by"}})
		}
		for _, v := range s.views[m.api] {
			if v.id == cvid {
				lq.view = v
			}
		}
		if lq.view == nil {
			return nil, invalidParam("cvid", "the custom view id given seems to be invalid")
		}
	}
	if raw := q.Get("ids"); raw != "" {
		for _, id := range strings.Split(raw, ",") {
			id = strings.TrimSpace(id)
			if !numeric(id) {
				return nil, invalidParam("ids", "the id given seems to be invalid")
			}
			lq.ids = append(lq.ids, id)
		}
		if len(lq.ids) > maxIDs {
			return nil, errf(400, "LIMIT_EXCEEDED", "too many ids", map[string]any{"param_name": "ids", "limit": maxIDs})
		}
	}
	if lq.since, lq.hasIMS, e = ifModifiedSince(c.r); e != nil {
		return nil, e
	}
	if lq.token == "" && lq.page*lq.perPage > maxDiscrete {
		return nil, errf(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
			"you can fetch only the first 2000 records with the page parameter; use page_token beyond that",
			map[string]any{"limit": maxDiscrete})
	}
	// The token is bound to every other parameter and to the header.
	bound := url.Values{}
	for k, v := range q {
		if k != "page_token" && k != "page" {
			bound[k] = v
		}
	}
	lq.bind = m.api + "?" + bound.Encode() + "|ims=" + c.r.Header.Get("If-Modified-Since")
	if parent != nil {
		lq.bind = parent.module.api + "/" + parent.id + "/" + lq.bind
	}
	return lq, nil
}

func numeric(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func sortKey(r *record, sortBy string) int64 {
	switch sortBy {
	case "Created_Time":
		return r.created
	case "Modified_Time":
		return r.modified
	}
	return 0
}

// candidates returns the records a listing covers, filtered and sorted.
// Called with s.mu held.
func (o *Org) candidates(m *module, parent *parentRef, lq *listQuery) []*record {
	key := lq.bind
	if c, ok := o.cache[key]; ok {
		return c.recs
	}
	st := o.stores[m.api]
	var base []*record
	switch {
	case parent != nil:
		f := m.field(parent.via)
		for _, r := range st.refs[parent.via][parent.id] {
			if f.seSlot < 0 || r.vals[f.seSlot] == parent.module.api {
				base = append(base, r)
			}
		}
		sort.Slice(base, func(i, j int) bool { return base[i].id < base[j].id })
	case lq.ids != nil:
		seen := map[string]bool{}
		for _, id := range lq.ids {
			if r := st.byID[id]; r != nil && !seen[id] {
				seen[id] = true
				base = append(base, r)
			}
		}
		sort.Slice(base, func(i, j int) bool { return base[i].id < base[j].id })
	default:
		base = st.order
	}
	if lq.view != nil || lq.hasIMS {
		var kept []*record
		for _, r := range base {
			if lq.hasIMS && r.modified <= lq.since {
				continue
			}
			if lq.view != nil && lq.view.criteria != nil && !o.match(r, lq.view.criteria, true) {
				continue
			}
			kept = append(kept, r)
		}
		base = kept
	}
	out := make([]*record, len(base))
	copy(out, base)
	if lq.sortBy != "id" {
		sortByKey(out, lq.sortBy)
	}
	if lq.desc {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	if len(o.cache) > 32 {
		clear(o.cache)
	}
	o.cache[key] = &cachedList{recs: out}
	return out
}

// sortByKey orders records by a time key, ties by id. Every write clears
// the listing cache, so a walk that writes as it reads sorts the whole
// module per page: the keys are read once per record, not per comparison,
// and (key, id) being a total order, an unstable sort is the stable answer.
func sortByKey(recs []*record, sortBy string) {
	type keyed struct {
		k int64
		r *record
	}
	ks := make([]keyed, len(recs))
	for i, r := range recs {
		ks[i] = keyed{sortKey(r, sortBy), r}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := cmp.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.r.id, b.r.id)
	})
	for i := range ks {
		recs[i] = ks[i].r
	}
}

// after returns the index of the first record past the cursor.
func after(recs []*record, sortBy string, desc bool, k int64, id string) int {
	return sort.Search(len(recs), func(i int) bool {
		ki := sortKey(recs[i], sortBy)
		if desc {
			return ki < k || (ki == k && recs[i].id < id)
		}
		return ki > k || (ki == k && recs[i].id > id)
	})
}

func newTokenString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// list serves GET /{module} and GET /{module}/{id}/{related_list}.
func (s *Server) list(c *call, m *module, parent *parentRef) {
	lq, e := s.parseList(c, m, parent)
	if e != nil {
		c.fail(e)
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	body, status, e := s.listLocked(c, m, parent, lq, now)
	s.mu.Unlock()
	switch {
	case e != nil:
		c.fail(e)
	case body == nil:
		c.w.WriteHeader(status)
	default:
		writeJSON(c.w, status, body)
	}
}

func (s *Server) listLocked(c *call, m *module, parent *parentRef, lq *listQuery, now time.Time) (map[string]any, int, *Error) {
	o := c.o
	if parent != nil && o.stores[parent.module.api].byID[parent.id] == nil {
		return nil, 0, invalidID()
	}
	start, pageNo, served := (lq.page-1)*lq.perPage, lq.page, 0
	recs := o.candidates(m, parent, lq)
	if lq.token != "" {
		t := s.tokens[lq.token]
		switch {
		case t == nil || t.org != o:
			return nil, 0, invalidParam("page_token", "the page token given seems to be invalid")
		case !now.Before(t.expires):
			return nil, 0, errf(400, "EXPIRED_VALUE", "the page token has expired", map[string]any{"param_name": "page_token"})
		case t.bind != lq.bind || !strings.EqualFold(t.user, c.g.UserEmail):
			return nil, 0, errf(400, "TOKEN_BOUND_DATA_MISMATCH",
				"the page token was issued for other parameters or another user", map[string]any{"param_name": "page_token"})
		}
		if t.served >= s.tokenLimit {
			return nil, 0, errf(400, "PAGINATION_LIMIT_EXCEEDED", "you can fetch only 100000 records with page_token",
				map[string]any{"limit": s.tokenLimit})
		}
		start = 0
		if !t.fromTop {
			start = after(recs, lq.sortBy, lq.desc, t.afterK, t.afterID)
		}
		pageNo, served = t.page, t.served
	} else {
		served = start
	}
	if len(recs) == 0 && lq.hasIMS {
		return nil, http.StatusNotModified, nil
	}
	if start >= len(recs) {
		return nil, http.StatusNoContent, nil
	}
	end := min(start+lq.perPage, len(recs))
	if lq.token != "" && served+(end-start) > s.tokenLimit {
		end = start + (s.tokenLimit - served)
	}
	page := recs[start:end]
	data := make([]any, 0, len(page))
	for _, r := range page {
		data = append(data, o.render(r, lq.fields))
	}
	more := end < len(recs)
	sortOrder := "desc"
	if !lq.desc {
		sortOrder = "asc"
	}
	info := map[string]any{"call": false, "email": false, "per_page": lq.perPage, "count": len(page),
		"page": pageNo, "sort_by": lq.sortBy, "sort_order": sortOrder, "more_records": more,
		"next_page_token": nil, "previous_page_token": nil, "page_token_expiry": nil}
	expires := now.Add(tokenLifetime)
	issue := func(cursor *record, pageNo, served int) string {
		t := &pageToken{org: o, user: c.g.UserEmail, bind: lq.bind, page: pageNo, served: served,
			expires: expires, fromTop: cursor == nil}
		if cursor != nil {
			t.afterK, t.afterID = sortKey(cursor, lq.sortBy), cursor.id
		}
		str := newTokenString()
		s.storeToken(str, t, now)
		return str
	}
	if more {
		info["next_page_token"] = issue(page[len(page)-1], pageNo+1, served+len(page))
		info["page_token_expiry"] = s.renderTime(expires.Unix())
	}
	if start > 0 && pageNo > 1 {
		prevStart := max(0, start-lq.perPage)
		var cursor *record
		if prevStart > 0 {
			cursor = recs[prevStart-1]
		}
		info["previous_page_token"] = issue(cursor, pageNo-1, max(0, served-(start-prevStart)))
		info["page_token_expiry"] = s.renderTime(expires.Unix())
	}
	return map[string]any{"data": data, "info": info}, http.StatusOK, nil
}

// storeToken keeps a token, dropping expired ones now and then. Called with
// s.mu held.
func (s *Server) storeToken(str string, t *pageToken, now time.Time) {
	s.issued++
	if s.issued%1000 == 0 {
		for k, old := range s.tokens {
			if !now.Before(old.expires) {
				delete(s.tokens, k)
			}
		}
	}
	s.tokens[str] = t
}

// get serves GET /{module}/{id}.
func (s *Server) get(c *call, m *module, id string) {
	fields, e := parseFields(m, c.q.Get("fields"), false)
	if e != nil {
		c.fail(e)
		return
	}
	since, hasIMS, e := ifModifiedSince(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	r := c.o.stores[m.api].byID[id]
	var out map[string]any
	if r != nil && (!hasIMS || r.modified > since) {
		out = c.o.render(r, fields)
	}
	s.mu.Unlock()
	switch {
	case r == nil:
		c.fail(invalidID())
	case out == nil:
		c.w.WriteHeader(http.StatusNotModified)
	default:
		writeJSON(c.w, http.StatusOK, map[string]any{"data": []any{out}})
	}
}
