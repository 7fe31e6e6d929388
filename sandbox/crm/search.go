package crm

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Search limits.
const (
	maxConditions = 10
	maxSearch     = 2000
)

// cond is a parsed search criteria: a group of conditions joined by one
// operator, or one condition.
type cond struct {
	group string // "and" or "or" for a group; "" for a condition
	kids  []*cond
	api   string
	f     *field // nil for id
	op    string
	vals  []string  // lower-cased for text comparisons
	raws  []string  // as given, for rendering
	nums  []float64 // numeric, date-time (unix seconds) values
}

type criteriaParser struct {
	m     *module
	s     string
	i     int
	count int
}

func badQuery(reason string, details map[string]any) *Error {
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = reason
	return errf(400, "INVALID_QUERY", "invalid query formed", details)
}

// parseCriteria reads criteria such as ((Email:equals:a@b.com)and(Last_Name:starts_with:Sm)).
// In values, \ escapes the next character: \( \) \, and \\.
func parseCriteria(m *module, s string) (*cond, *Error) {
	p := &criteriaParser{m: m, s: strings.TrimSpace(s)}
	c, e := p.expr()
	if e != nil {
		return nil, e
	}
	p.space()
	if p.i != len(p.s) {
		return nil, badQuery("unexpected text after the criteria", map[string]any{"position": p.i})
	}
	if p.count > maxConditions {
		return nil, errf(400, "LIMIT_EXCEEDED", "the criteria has more than 10 conditions",
			map[string]any{"param_name": "criteria", "limit": maxConditions})
	}
	return c, nil
}

func (p *criteriaParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *criteriaParser) expr() (*cond, *Error) {
	left, e := p.term()
	if e != nil {
		return nil, e
	}
	for {
		p.space()
		rest := strings.ToLower(p.s[p.i:])
		var op string
		switch {
		case strings.HasPrefix(rest, "and"):
			op = "and"
		case strings.HasPrefix(rest, "or"):
			op = "or"
		default:
			return left, nil
		}
		p.i += len(op)
		right, e := p.term()
		if e != nil {
			return nil, e
		}
		if left.group == op {
			left.kids = append(left.kids, right)
		} else {
			left = &cond{group: op, kids: []*cond{left, right}}
		}
	}
}

func (p *criteriaParser) term() (*cond, *Error) {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return nil, badQuery("expected (", map[string]any{"position": p.i})
	}
	p.i++
	p.space()
	var c *cond
	var e *Error
	if p.i < len(p.s) && p.s[p.i] == '(' {
		c, e = p.expr()
	} else {
		c, e = p.leaf()
	}
	if e != nil {
		return nil, e
	}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		return nil, badQuery("expected )", map[string]any{"position": p.i})
	}
	p.i++
	return c, nil
}

// leaf reads field:operator:value up to the unescaped closing parenthesis.
func (p *criteriaParser) leaf() (*cond, *Error) {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ')' {
		if p.s[p.i] == '\\' {
			p.i++
		}
		p.i++
	}
	if p.i > len(p.s) {
		p.i = len(p.s)
	}
	raw := p.s[start:p.i]
	parts := splitUnescaped(raw, ':', 3)
	if len(parts) != 3 {
		return nil, badQuery("a condition is field:operator:value", map[string]any{"condition": raw})
	}
	p.count++
	api, op := strings.TrimSpace(parts[0]), strings.ToLower(strings.TrimSpace(parts[1]))
	c := &cond{api: api, op: op}
	if api != "id" {
		c.f = p.m.field(api)
		if c.f == nil || c.f.hidden {
			return nil, badQuery("the field api name given seems to be invalid", map[string]any{"api_name": api})
		}
	}
	var vals []string
	if op == "in" || op == "between" {
		for _, v := range splitUnescaped(parts[2], ',', -1) {
			vals = append(vals, unescape(v))
		}
	} else {
		vals = []string{unescape(parts[2])}
	}
	if op == "between" && len(vals) != 2 {
		return nil, badQuery("between takes two values", map[string]any{"api_name": api})
	}
	if !opAllowed(c.f, op) {
		return nil, badQuery("the operator is not supported for this field", map[string]any{"api_name": api, "operator": op})
	}
	class := classOf(c.f)
	for _, v := range vals {
		switch class {
		case "number":
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return nil, badQuery("the value is not a number", map[string]any{"api_name": api})
			}
			c.nums = append(c.nums, n)
		case "datetime":
			t, ok := parseTime(v)
			if !ok {
				return nil, badQuery("the value is not a date-time", map[string]any{"api_name": api})
			}
			c.nums = append(c.nums, float64(t.Unix()))
		case "date":
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				return nil, badQuery("the value is not a date", map[string]any{"api_name": api})
			}
		case "boolean":
			if v != "true" && v != "false" {
				return nil, badQuery("the value is not a boolean", map[string]any{"api_name": api})
			}
		}
		c.vals = append(c.vals, strings.ToLower(v))
		c.raws = append(c.raws, v)
	}
	return c, nil
}

func splitUnescaped(s string, sep byte, n int) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == sep && (n < 0 || len(out) < n-1) {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// classOf groups field types by how search compares them.
func classOf(f *field) string {
	if f == nil {
		return "id"
	}
	switch f.kind {
	case kindCreatedTime, kindModifiedTime:
		return "datetime"
	case kindOwner, kindCreatedBy, kindModifiedBy:
		return "user"
	case kindFullName:
		return "text"
	}
	switch f.typ {
	case typeInteger, typeDouble, typeCurrency:
		return "number"
	case typeDatetime:
		return "datetime"
	case typeDate:
		return "date"
	case typeBoolean:
		return "boolean"
	case typePicklist:
		return "picklist"
	case typeLookup, typeMultiLook:
		return "lookup"
	}
	return "text"
}

func opAllowed(f *field, op string) bool {
	ordered := map[string]bool{"equals": true, "not_equal": true, "in": true, "greater_than": true,
		"greater_equal": true, "less_than": true, "less_equal": true, "between": true}
	switch classOf(f) {
	case "id", "user", "lookup":
		return op == "equals" || op == "not_equal" || op == "in"
	case "text":
		return op == "equals" || op == "not_equal" || op == "starts_with" || op == "in"
	case "picklist":
		return op == "equals" || op == "not_equal" || op == "in" || op == "starts_with"
	case "boolean":
		return op == "equals" || op == "not_equal"
	}
	return ordered[op]
}

// match evaluates criteria on a record. exact makes equals on text exact,
// as a custom view's "equal" is; search's equals matches like contains.
func (o *Org) match(r *record, c *cond, exact bool) bool {
	switch c.group {
	case "and":
		for _, k := range c.kids {
			if !o.match(r, k, exact) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range c.kids {
			if o.match(r, k, exact) {
				return true
			}
		}
		return false
	}
	switch classOf(c.f) {
	case "number", "datetime":
		var n float64
		var ok bool
		if c.f.kind == kindCreatedTime {
			n, ok = float64(r.created), true
		} else if c.f.kind == kindModifiedTime {
			n, ok = float64(r.modified), true
		} else if v := r.vals[c.f.slot]; v != "" {
			n, _ = strconv.ParseFloat(v, 64)
			ok = true
		}
		if !ok {
			return c.op == "not_equal"
		}
		return compareNum(n, c.op, c.nums)
	case "date":
		v := r.vals[c.f.slot]
		if v == "" {
			return c.op == "not_equal"
		}
		return compareStr(v, c.op, c.vals)
	}
	var candidates []string
	switch classOf(c.f) {
	case "id":
		candidates = []string{r.id}
	case "user":
		u := o.users[r.owner]
		if c.f.kind == kindCreatedBy {
			u = o.users[r.createdBy]
		} else if c.f.kind == kindModifiedBy {
			u = o.users[r.modifiedBy]
		}
		candidates = []string{u.id, strings.ToLower(u.email), strings.ToLower(u.name())}
	case "lookup":
		if v := r.vals[c.f.slot]; v != "" {
			candidates = []string{v}
			if t := o.lookupRecord(v, o.s.modList...); t != nil {
				candidates = append(candidates, strings.ToLower(o.displayName(t)))
			}
		}
	case "boolean":
		v := r.vals[c.f.slot]
		if v == "" {
			v = "false"
		}
		candidates = []string{v}
	default:
		v := ""
		if c.f.kind == kindFullName {
			v = fullName(r)
		} else {
			v = r.vals[c.f.slot]
		}
		candidates = []string{strings.ToLower(v)}
	}
	textual := classOf(c.f) == "text" && !exact
	hit := false
	for _, have := range candidates {
		for _, want := range c.vals {
			switch {
			case c.op == "starts_with":
				hit = hit || (want != "" && strings.HasPrefix(have, want))
			case textual && c.op == "equals":
				hit = hit || (want != "" && strings.Contains(have, want))
			default:
				hit = hit || have == want
			}
		}
	}
	if c.op == "not_equal" {
		return !hit
	}
	return hit
}

func compareNum(n float64, op string, vals []float64) bool {
	switch op {
	case "equals":
		return n == vals[0]
	case "not_equal":
		return n != vals[0]
	case "greater_than":
		return n > vals[0]
	case "greater_equal":
		return n >= vals[0]
	case "less_than":
		return n < vals[0]
	case "less_equal":
		return n <= vals[0]
	case "between":
		return n >= vals[0] && n <= vals[1]
	case "in":
		for _, v := range vals {
			if n == v {
				return true
			}
		}
	}
	return false
}

func compareStr(s, op string, vals []string) bool {
	switch op {
	case "equals":
		return s == vals[0]
	case "not_equal":
		return s != vals[0]
	case "greater_than":
		return s > vals[0]
	case "greater_equal":
		return s >= vals[0]
	case "less_than":
		return s < vals[0]
	case "less_equal":
		return s <= vals[0]
	case "between":
		return s >= vals[0] && s <= vals[1]
	case "in":
		for _, v := range vals {
			if s == v {
				return true
			}
		}
	}
	return false
}

// searchFilter is what a search or count request asks for.
type searchFilter struct {
	criteria *cond
	email    string
	phone    string
	word     string
}

func (s *Server) parseSearch(c *call, m *module, required bool) (*searchFilter, *Error) {
	q := c.q
	sf := &searchFilter{}
	switch {
	case q.Get("criteria") != "":
		crit, e := parseCriteria(m, q.Get("criteria"))
		if e != nil {
			return nil, e
		}
		sf.criteria = crit
	case q.Get("email") != "":
		sf.email = strings.ToLower(strings.TrimSpace(q.Get("email")))
	case q.Get("phone") != "":
		sf.phone = digits(q.Get("phone"))
		if sf.phone == "" {
			return nil, invalidParam("phone", "the phone number given seems to be invalid")
		}
	case q.Get("word") != "":
		sf.word = strings.ToLower(strings.TrimSpace(q.Get("word")))
	default:
		if required {
			return nil, missingParam("criteria")
		}
		return nil, nil
	}
	return sf, nil
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// hit reports whether a record satisfies a search; called with s.mu held.
func (o *Org) hit(r *record, sf *searchFilter) bool {
	switch {
	case sf.criteria != nil:
		return o.match(r, sf.criteria, false)
	case sf.email != "":
		for _, f := range r.mod.fields {
			if f.typ == typeEmail && strings.EqualFold(r.vals[f.slot], sf.email) {
				return true
			}
		}
	case sf.phone != "":
		for _, f := range r.mod.fields {
			if f.typ == typePhone && r.vals[f.slot] != "" && strings.Contains(digits(r.vals[f.slot]), sf.phone) {
				return true
			}
		}
	case sf.word != "":
		if r.mod.field("Full_Name") != nil && strings.Contains(strings.ToLower(fullName(r)), sf.word) {
			return true
		}
		for _, f := range r.mod.fields {
			switch f.typ {
			case typeText, typeTextarea, typeEmail, typePhone, typeWebsite, typePicklist:
				if f.slot >= 0 && r.vals[f.slot] != "" && strings.Contains(strings.ToLower(r.vals[f.slot]), sf.word) {
					return true
				}
			}
		}
	}
	return false
}

// search serves GET /{module}/search. Records written within the index lag
// are not found yet.
func (s *Server) search(c *call, m *module) {
	sf, e := s.parseSearch(c, m, true)
	if e != nil {
		c.fail(e)
		return
	}
	fields, e := parseFields(m, c.q.Get("fields"), false)
	if e != nil {
		c.fail(e)
		return
	}
	perPage, e := intParam(c.q, "per_page", maxPerPage, 1, maxPerPage)
	if e != nil {
		c.fail(e)
		return
	}
	page, e := intParam(c.q, "page", 1, 1, 0)
	if e != nil {
		c.fail(e)
		return
	}
	if page*perPage > maxSearch {
		c.fail(errf(400, "LIMIT_REACHED", "search results are limited to 2000 records", map[string]any{"limit": maxSearch}))
		return
	}
	asc := c.q.Get("sort_order") == "asc"
	now := s.clock.Now().UnixNano()
	start := (page - 1) * perPage
	s.mu.Lock()
	order := c.o.stores[m.api].order
	var found []*record
	for i := range order {
		r := order[len(order)-1-i]
		if asc {
			r = order[i]
		}
		if r.searchable > now || !c.o.hit(r, sf) {
			continue
		}
		found = append(found, r)
		if len(found) > start+perPage {
			break
		}
	}
	var data []any
	more := len(found) > start+perPage
	if start < len(found) {
		for _, r := range found[start:min(start+perPage, len(found))] {
			data = append(data, c.o.render(r, fields))
		}
	}
	s.mu.Unlock()
	if len(data) == 0 {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"data": data,
		"info": map[string]any{"per_page": perPage, "count": len(data), "page": page, "more_records": more}})
}

// count serves GET /{module}/actions/count, optionally narrowed by cvid or
// by the search parameters.
func (s *Server) count(c *call, m *module) {
	sf, e := s.parseSearch(c, m, false)
	if e != nil {
		c.fail(e)
		return
	}
	var v *view
	if cvid := c.q.Get("cvid"); cvid != "" {
		for _, x := range s.views[m.api] {
			if x.id == cvid {
				v = x
			}
		}
		if v == nil {
			c.fail(invalidParam("cvid", "the custom view id given seems to be invalid"))
			return
		}
	}
	now := s.clock.Now().UnixNano()
	s.mu.Lock()
	n := 0
	for _, r := range c.o.stores[m.api].order {
		if v != nil && v.criteria != nil && !c.o.match(r, v.criteria, true) {
			continue
		}
		if sf != nil && (r.searchable > now || !c.o.hit(r, sf)) {
			continue
		}
		n++
	}
	s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"count": n})
}
