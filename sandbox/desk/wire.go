package desk

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// timeLayout is how Desk writes every timestamp: UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// dateLayout is the layout of Date fields (custom fields, contract dates).
const dateLayout = "2006-01-02"

// APIError is a Desk error answer. HTTP handlers write it as the §4.7
// envelope; the UI methods return it so tests can look at the errorCode.
type APIError struct {
	Status  int
	Code    string
	Message string
	Errors  []FieldError
}

// FieldError is one entry of the envelope's errors[]: fieldName is a JSON
// pointer into the request body ("/contactId", "/cf/cf_model").
type FieldError struct {
	FieldName    string `json:"fieldName"`
	ErrorType    string `json:"errorType"` // invalid, missing or duplicate
	ErrorMessage string `json:"errorMessage,omitempty"`
}

func (e *APIError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("desk: %d %s: %s", e.Status, e.Code, e.Message)
	}
	parts := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		parts = append(parts, fe.FieldName+" "+fe.ErrorType)
	}
	return fmt.Sprintf("desk: %d %s: %s (%s)", e.Status, e.Code, e.Message, strings.Join(parts, ", "))
}

func (e *APIError) body() map[string]any {
	out := map[string]any{"errorCode": e.Code, "message": e.Message}
	if len(e.Errors) > 0 {
		out["errors"] = e.Errors
	}
	return out
}

// The error answers the fake gives, with Desk's wording.
func errUnauthorized() *APIError {
	return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "You are not authenticated to perform this operation."}
}

func errInvalidOAuth() *APIError {
	return &APIError{Status: http.StatusUnauthorized, Code: "INVALID_OAUTH", Message: "The OAuth Token you provided is invalid."}
}

func errOrgMismatch() *APIError {
	return &APIError{Status: http.StatusUnauthorized, Code: "OAUTH_ORG_MISMATCH", Message: "The OAuthToken is not valid for specified organization"}
}

func errNotFound() *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "URL_NOT_FOUND", Message: "The URL you requested could not be found."}
}

func errForbidden() *APIError {
	return &APIError{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "You are not authorized to access this resource."}
}

func errUnprocessable(msg string) *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "UNPROCESSABLE_ENTITY", Message: msg}
}

func errBadParam(name string) *APIError {
	return errUnprocessable(fmt.Sprintf("The value passed for the '%s' query parameter is invalid.", name))
}

func errMissingParam(name string) *APIError {
	return errUnprocessable(fmt.Sprintf("The '%s' query parameter is mandatory.", name))
}

func errInvalidData(errs ...FieldError) *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "INVALID_DATA",
		Message: "The data does not comply to the validation restrictions defined.", Errors: errs}
}

func errInternal() *APIError {
	return &APIError{Status: http.StatusInternalServerError, Code: "INTERNAL_SERVER_ERROR", Message: "An internal server error occurred while performing this operation."}
}

func invalid(field string) FieldError {
	return FieldError{FieldName: "/" + field, ErrorType: "invalid", ErrorMessage: "The value passed for '" + field + "' is invalid."}
}

func missing(field string) FieldError {
	return FieldError{FieldName: "/" + field, ErrorType: "missing", ErrorMessage: "'" + field + "' is mandatory."}
}

// writeJSON writes v without HTML escaping: article answers and thread
// contents are HTML and Desk returns them verbatim.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, errInternal())
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *APIError) {
	b, _ := json.Marshal(e.body())
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}

// idStr renders an id the way Desk does: a numeric string, null for none.
func idStr(id int64) any {
	if id == 0 {
		return nil
	}
	return strconv.FormatInt(id, 10)
}

func idList(ids []int64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, strconv.FormatInt(id, 10))
	}
	return out
}

// parseID reads a numeric id; Desk ids are positive 64-bit integers.
func parseID(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// ms is the internal time unit: epoch milliseconds, 0 meaning "no time".
func ms(t time.Time) int64 { return t.UnixMilli() }

// timeStr renders an epoch-ms time as Desk does, null for none.
func timeStr(v int64) any {
	if v == 0 {
		return nil
	}
	return time.UnixMilli(v).UTC().Format(timeLayout)
}

// parseTime accepts Desk's own layout and any RFC 3339 time.
func parseTime(s string) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// count renders a count the way Desk does: as a string.
func count(n int) string { return strconv.Itoa(n) }

// page is an offset window; from is 0-based here whatever the endpoint's
// convention on the wire.
type page struct {
	from, limit int
}

// parsePage reads from and limit. base is 1 for list endpoints and 0 for
// search endpoints; values outside the documented bounds are refused with
// 422 as Desk does, so off-by-one paging bugs show up in tests.
func parsePage(q url.Values, base, defLimit, maxLimit int) (page, *APIError) {
	p := page{from: 0, limit: defLimit}
	if v := q.Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < base {
			return p, errBadParam("from")
		}
		p.from = n - base
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, errBadParam("limit")
		}
		p.limit = n
	}
	return p, nil
}

func window[T any](items []T, p page) []T {
	if p.from >= len(items) {
		return nil
	}
	end := p.from + p.limit
	if end > len(items) {
		end = len(items)
	}
	return items[p.from:end]
}

// timeRange is an inclusive [from, to] window in epoch ms.
type timeRange struct {
	set      bool
	from, to int64
}

func (r timeRange) contains(v int64) bool {
	return !r.set || (v != 0 && v >= r.from && v <= r.to)
}

// parseRange reads "a,b" with both ends as ISO times.
func parseRange(q url.Values, name string) (timeRange, *APIError) {
	v := q.Get(name)
	if v == "" {
		return timeRange{}, nil
	}
	a, b, ok := strings.Cut(v, ",")
	if !ok {
		return timeRange{}, errBadParam(name)
	}
	from, ok1 := parseTime(a)
	to, ok2 := parseTime(b)
	if !ok1 || !ok2 || to < from {
		return timeRange{}, errBadParam(name)
	}
	return timeRange{set: true, from: from, to: to}, nil
}

// sortSpec is a parsed sortBy: a key and a direction.
type sortSpec struct {
	key  string
	desc bool
	// keep is how many leading records the caller reads (a page's end);
	// 0 = all. Past it the order is unspecified.
	keep int
}

// upTo is the sort a page needs: its records in order, the rest not.
func (s sortSpec) upTo(p page) sortSpec {
	s.keep = p.from + p.limit
	return s
}

// parseSort reads sortBy against the keys the endpoint allows.
func parseSort(q url.Values, allowed ...string) (sortSpec, *APIError) {
	v := q.Get("sortBy")
	if v == "" {
		return sortSpec{}, nil
	}
	s := sortSpec{key: strings.TrimPrefix(v, "-"), desc: strings.HasPrefix(v, "-")}
	for _, a := range allowed {
		if s.key == a {
			return s, nil
		}
	}
	return sortSpec{}, errBadParam("sortBy")
}

// splitList splits a comma-separated query value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseIDList reads a comma-separated id list; any bad id refuses the lot.
func parseIDList(q url.Values, name string) ([]int64, *APIError) {
	var out []int64
	for _, p := range splitList(q.Get(name)) {
		id, ok := parseID(p)
		if !ok {
			return nil, errBadParam(name)
		}
		out = append(out, id)
	}
	return out, nil
}

// includes reads the include parameter into a set.
func includes(q url.Values) map[string]bool {
	out := map[string]bool{}
	for _, p := range splitList(q.Get("include")) {
		out[p] = true
	}
	return out
}

// matchText implements Desk's search semantics: a value with '*' is a
// wildcard pattern, any other value must match the whole field; both
// ignore case.
func matchText(pattern, value string) bool {
	p, v := strings.ToLower(strings.TrimSpace(pattern)), strings.ToLower(value)
	if !strings.Contains(p, "*") {
		return p == v
	}
	parts := strings.Split(p, "*")
	if !strings.HasPrefix(v, parts[0]) {
		return false
	}
	v = v[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(v, mid)
		if i < 0 {
			return false
		}
		v = v[i+len(mid):]
	}
	return strings.HasSuffix(v, last)
}

// containsFold reports whether any of values contains needle, ignoring
// case: the "_all" search.
func containsFold(needle string, values ...string) bool {
	n := strings.ToLower(strings.Trim(strings.TrimSpace(needle), "*"))
	if n == "" {
		return true
	}
	for _, v := range values {
		if strings.Contains(strings.ToLower(v), n) {
			return true
		}
	}
	return false
}

// sortByInt and sortByString order records by a key, ties broken by id,
// so pages never shuffle between calls; with keep > 0 only the first keep
// are put in order (see sortKeyed).
func sortByInt[T any](items []T, key func(T) int64, id func(T) int64, desc bool, keep int) {
	sortKeyed(items, key, id, desc, keep)
}

func sortByString[T any](items []T, key func(T) string, id func(T) int64, desc bool, keep int) {
	sortKeyed(items, func(t T) string { return strings.ToLower(key(t)) }, id, desc, keep)
}

// sortKeyed computes each record's key once, not per comparison. A walk
// by modified time over a 100,000-contact org asks for every page's
// matches in order: when the page ends well before the matches do (keep),
// the first keep are selected through a bounded heap and only they are
// sorted; the others follow in their previous order.
func sortKeyed[T any, K cmp.Ordered](items []T, key func(T) K, id func(T) int64, desc bool, keep int) {
	type keyed struct {
		k   K
		id  int64
		pos int
	}
	order := func(a, b keyed) int {
		c := cmp.Compare(a.k, b.k)
		if c == 0 {
			c = cmp.Compare(a.id, b.id) // ids are unique: a total order, so unstable sorting is stable
		}
		if desc {
			return -c
		}
		return c
	}
	if keep <= 0 || keep*8 >= len(items) {
		ks := make([]keyed, len(items))
		for i, it := range items {
			ks[i] = keyed{key(it), id(it), i}
		}
		slices.SortFunc(ks, order)
		sorted := make([]T, len(items))
		for i, e := range ks {
			sorted[i] = items[e.pos]
		}
		copy(items, sorted)
		return
	}
	h := keyedHeap[keyed]{items: make([]keyed, 0, keep), less: func(a, b keyed) bool { return order(a, b) > 0 }} // the worst kept on top
	for i, it := range items {
		e := keyed{key(it), id(it), i}
		switch {
		case len(h.items) < keep:
			h.push(e)
		case order(e, h.items[0]) < 0:
			h.replaceTop(e)
		}
	}
	slices.SortFunc(h.items, order)
	picked := make([]bool, len(items))
	out := make([]T, 0, len(items))
	for _, e := range h.items {
		picked[e.pos] = true
		out = append(out, items[e.pos])
	}
	for i, it := range items {
		if !picked[i] {
			out = append(out, it)
		}
	}
	copy(items, out)
}

// keyedHeap is a binary heap ordered by less (the top is the least).
type keyedHeap[E any] struct {
	items []E
	less  func(a, b E) bool
}

func (h *keyedHeap[E]) push(e E) {
	h.items = append(h.items, e)
	for i := len(h.items) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(h.items[i], h.items[parent]) {
			break
		}
		h.items[i], h.items[parent] = h.items[parent], h.items[i]
		i = parent
	}
}

func (h *keyedHeap[E]) replaceTop(e E) {
	h.items[0] = e
	for i, n := 0, len(h.items); ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && h.less(h.items[l], h.items[least]) {
			least = l
		}
		if r < n && h.less(h.items[r], h.items[least]) {
			least = r
		}
		if least == i {
			return
		}
		h.items[i], h.items[least] = h.items[least], h.items[i]
		i = least
	}
}

// nullStr renders "" as null, as Desk does for unset text fields.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}
