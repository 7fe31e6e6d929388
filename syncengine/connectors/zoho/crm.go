package zoho

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// CRM limits (reference §2.1–2.4).
const (
	crmPerPage   = 200
	crmMaxFields = 50
	crmMaxBatch  = 100
	crmMaxIDs    = 100
)

// CRM is the connector of Zoho CRM and of Bigin, which shares its wire
// format under another path and with other modules (Pipelines instead of
// Deals, no Leads). Safe for concurrent use.
type CRM struct {
	c       *client
	flavor  connector.System
	prefix  string // "/crm/v8" or "/bigin/v2"
	views   map[connector.Module]string
	clock   Clock
	fieldMu sync.Mutex
	fields  map[connector.Module][]connector.Field
}

// NewCRM builds a CRM connector (Settings.System CRM) or a Bigin one
// (Settings.System Bigin).
func NewCRM(s Settings) (*CRM, error) {
	if s.System == "" {
		s.System = connector.CRM
	}
	if s.System != connector.CRM && s.System != connector.Bigin {
		return nil, fmt.Errorf("building CRM connector: system %q is not CRM or Bigin", s.System)
	}
	s, err := s.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("building %s connector: %w", s.System, err)
	}
	ts, err := newTokenSource(s)
	if err != nil {
		return nil, fmt.Errorf("building %s connector: %w", s.System, err)
	}
	return newCRM(s, ts)
}

func newCRM(s Settings, ts *TokenSource) (*CRM, error) {
	prefix := "/crm/" + firstNonEmpty(s.APIVersion, "v8")
	if s.System == connector.Bigin {
		prefix = "/bigin/" + firstNonEmpty(s.APIVersion, "v2")
	}
	hosts := newHostPolicy(s)
	fallback := firstNonEmpty(s.APIDomain, s.dataCenter().API)
	cl := newClient(s, ts)
	cl.base = func(tok Token) (string, error) {
		domain := firstNonEmpty(tok.APIDomain, fallback)
		base, err := hosts.check(domain)
		if err != nil {
			return "", err
		}
		return base + prefix, nil
	}
	if s.CRMOrgID != "" {
		org := s.CRMOrgID
		cl.decorate = func(h http.Header) { h.Set("X-CRM-ORG", org) }
	}
	cl.classify = classifyCRM
	views := map[connector.Module]string{}
	for m, v := range s.CustomViews {
		views[m] = v
	}
	return &CRM{c: cl, flavor: s.System, prefix: prefix, views: views, clock: s.Clock,
		fields: map[connector.Module][]connector.Field{}}, nil
}

// System reports CRM or Bigin.
func (c *CRM) System() connector.System { return c.flavor }

// Tokens exposes the connection's token source (for revoking on removal).
func (c *CRM) Tokens() *TokenSource { return c.c.tokens }

// crmPage is a list answer.
type crmPage struct {
	Data []map[string]any `json:"data"`
	Info struct {
		MoreRecords   bool   `json:"more_records"`
		NextPageToken string `json:"next_page_token"`
		Count         int    `json:"count"`
		Page          int    `json:"page"`
	} `json:"info"`
}

// crmRecord converts one data element.
func crmRecord(m map[string]any) connector.Record {
	r := connector.Record{ID: str(m["id"]), Fields: m}
	delete(m, "id")
	r.CreatedAt = parseCRMTime(str(m["Created_Time"]))
	r.ModifiedAt = parseCRMTime(str(m["Modified_Time"]))
	return r
}

// parseCRMTime reads an ISO-8601 time with offset; zero when absent.
func parseCRMTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// crmTime formats a time for If-Modified-Since and criteria.
func crmTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-07:00") }

// listFields returns the field names to ask for, in chunks of at most 50:
// the first chunk always holds the system times the cursor needs.
func (c *CRM) listFields(ctx context.Context, m connector.Module) ([][]string, error) {
	fs, err := c.cachedFields(ctx, m)
	if err != nil {
		return nil, err
	}
	names := []string{"Modified_Time", "Created_Time"}
	for _, f := range fs {
		if f.Name == "id" || f.Name == "Modified_Time" || f.Name == "Created_Time" || strings.HasPrefix(f.Name, "$") {
			continue
		}
		names = append(names, f.Name)
	}
	var chunks [][]string
	for len(names) > 0 {
		n := min(len(names), crmMaxFields)
		chunks = append(chunks, names[:n])
		names = names[n:]
	}
	return chunks, nil
}

func (c *CRM) cachedFields(ctx context.Context, m connector.Module) ([]connector.Field, error) {
	c.fieldMu.Lock()
	fs, ok := c.fields[m]
	c.fieldMu.Unlock()
	if ok {
		return fs, nil
	}
	return c.Fields(ctx, m)
}

// ListChanged returns records modified after the cursor, oldest first. It
// walks GET /{module}?sort_by=Modified_Time&sort_order=asc with
// If-Modified-Since one second before the cursor's time (so it works
// whether the server compares with > or >=, at second precision), then
// page tokens; records already delivered at the cursor's time are skipped
// by id. A module with more than 50 fields is read with the first 50 and
// completed by id (GET ?ids=…&fields=next 50) before the page is returned.
//
// With a custom view configured for the module (Settings.CustomViews, SPEC
// B3) the walk is the same, and each page is filtered to the records in
// the view (GET ?cvid=…&ids=…): Zoho refuses cvid together with sort_by,
// so the view cannot drive the order itself.
func (c *CRM) ListChanged(ctx context.Context, m connector.Module, after connector.Cursor, limit int) (connector.ChangePage, error) {
	cur, err := decodeCursor(after, m)
	if err != nil {
		return connector.ChangePage{}, err
	}
	if limit <= 0 {
		limit = crmPerPage
	}
	view := c.views[m]
	if cur.View != view {
		cur.View = view
		cur.resetWalk()
	}
	chunks, err := c.listFields(ctx, m)
	if err != nil {
		return connector.ChangePage{}, fmt.Errorf("listing changed %s: %w", m, err)
	}
	var out []connector.Record
	done := false
	for len(out) < limit {
		if cur.Anchor == "" {
			cur.Anchor = firstNonEmpty(cur.T, "-")
			cur.Token = ""
		}
		q := url.Values{
			"fields":     {strings.Join(chunks[0], ",")},
			"sort_by":    {"Modified_Time"},
			"sort_order": {"asc"},
			"per_page":   {strconv.Itoa(crmPerPage)},
		}
		if cur.Token != "" {
			q.Set("page_token", cur.Token)
		}
		h := http.Header{}
		if cur.Anchor != "-" {
			t, perr := time.Parse(time.RFC3339Nano, cur.Anchor)
			if perr != nil {
				cur.resetWalk()
				continue
			}
			h.Set("If-Modified-Since", crmTime(t.Truncate(time.Second).Add(-time.Second)))
		}
		var page crmPage
		ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m)), query: q, header: h,
			action: "listing changed " + string(m)}, &page)
		if err != nil {
			if e := asError(err); e != nil && cur.Token != "" && pageTokenRejected(e.Code) {
				// An expired or foreign page token: start the walk again at T.
				cur.resetWalk()
				continue
			}
			if e := asError(err); e != nil && e.Code == "PAGINATION_LIMIT_EXCEEDED" {
				cur.resetWalk()
				continue
			}
			return connector.ChangePage{}, err
		}
		if !ok || len(page.Data) == 0 {
			done = true
			cur.resetWalk()
			break
		}
		recs := make([]connector.Record, 0, len(page.Data))
		for _, d := range page.Data {
			recs = append(recs, crmRecord(d))
		}
		if len(chunks) > 1 {
			if err := c.completeFields(ctx, m, recs, chunks[1:]); err != nil {
				return connector.ChangePage{}, err
			}
		}
		var inView map[string]bool
		if view != "" {
			if inView, err = c.viewMembers(ctx, m, view, recs); err != nil {
				return connector.ChangePage{}, err
			}
		}
		truncated := false
		for _, r := range recs {
			if cur.delivered(r.ModifiedAt, r.ID) {
				continue
			}
			if len(out) >= limit {
				truncated = true
				break
			}
			cur.advance(r.ModifiedAt, r.ID)
			if inView == nil || inView[r.ID] {
				out = append(out, r)
			}
		}
		switch {
		case truncated:
			// The rest of this page comes again from a fresh walk at T.
			cur.resetWalk()
		case !page.Info.MoreRecords:
			done = true
			cur.resetWalk()
		case page.Info.NextPageToken != "":
			cur.Token = page.Info.NextPageToken
		default:
			// More records but no token (an old API version): re-anchor at T.
			if cur.Anchor == firstNonEmpty(cur.T, "-") {
				return connector.ChangePage{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonOther,
					Code: "NO_PAGE_TOKEN", Message: fmt.Sprintf("listing changed %s: more records but no page token and no progress", m)}
			}
			cur.resetWalk()
		}
		if done || truncated {
			break
		}
	}
	return connector.ChangePage{Records: out, Next: cur.encode(), Done: done}, nil
}

func pageTokenRejected(code string) bool {
	switch code {
	case "EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH", "INVALID_DATA", "AMBIGUITY_DURING_PROCESSING":
		return true
	}
	return false
}

// completeFields reads the fields beyond the first 50 by id and merges
// them into recs.
func (c *CRM) completeFields(ctx context.Context, m connector.Module, recs []connector.Record, chunks [][]string) error {
	byID := make(map[string]*connector.Record, len(recs))
	ids := make([]string, 0, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
		ids = append(ids, recs[i].ID)
	}
	for _, chunk := range chunks {
		for part := range slices.Chunk(ids, crmMaxIDs) {
			var page crmPage
			q := url.Values{"ids": {strings.Join(part, ",")}, "fields": {strings.Join(chunk, ",")}}
			if _, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m)), query: q,
				action: "reading more fields of " + string(m)}, &page); err != nil {
				return err
			}
			for _, d := range page.Data {
				if r := byID[str(d["id"])]; r != nil {
					for k, v := range d {
						if k != "id" {
							r.Fields[k] = v
						}
					}
				}
			}
		}
	}
	return nil
}

// viewMembers returns which of recs are in custom view cvid.
func (c *CRM) viewMembers(ctx context.Context, m connector.Module, cvid string, recs []connector.Record) (map[string]bool, error) {
	in := map[string]bool{}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	for part := range slices.Chunk(ids, crmMaxIDs) {
		var page crmPage
		q := url.Values{"cvid": {cvid}, "ids": {strings.Join(part, ",")}, "fields": {"Modified_Time"}}
		if _, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m)), query: q,
			action: "filtering " + string(m) + " by custom view"}, &page); err != nil {
			return nil, err
		}
		for _, d := range page.Data {
			in[str(d["id"])] = true
		}
	}
	return in, nil
}

// StartAt returns the cursor of the moment t.
func (c *CRM) StartAt(m connector.Module, t time.Time) connector.Cursor { return startCursor(m, t) }

// Get reads one record with all its fields.
func (c *CRM) Get(ctx context.Context, m connector.Module, id string) (connector.Record, error) {
	var page crmPage
	ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m), id), action: "reading " + string(m) + " " + id}, &page)
	if err != nil {
		return connector.Record{}, err
	}
	if !ok || len(page.Data) == 0 {
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound,
			Code: "NOT_FOUND", Message: fmt.Sprintf("reading %s %s: no such record", m, id)}
	}
	return crmRecord(page.Data[0]), nil
}

// GetMany reads records by id, 100 per request; ids that do not exist are
// left out.
func (c *CRM) GetMany(ctx context.Context, m connector.Module, ids []string) ([]connector.Record, error) {
	chunks, err := c.listFields(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("reading %s by id: %w", m, err)
	}
	var out []connector.Record
	for part := range slices.Chunk(ids, crmMaxIDs) {
		var page crmPage
		q := url.Values{"ids": {strings.Join(part, ",")}, "fields": {strings.Join(chunks[0], ",")}}
		if _, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m)), query: q,
			action: "reading " + string(m) + " by id"}, &page); err != nil {
			if e := asError(err); e != nil && e.Reason == connector.ReasonNotFound && len(part) == 1 {
				continue
			}
			return nil, err
		}
		recs := make([]connector.Record, 0, len(page.Data))
		for _, d := range page.Data {
			recs = append(recs, crmRecord(d))
		}
		if len(chunks) > 1 {
			if err := c.completeFields(ctx, m, recs, chunks[1:]); err != nil {
				return nil, err
			}
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Find searches for records whose field equals the value (email, account
// name, product name), for duplicate matching (SPEC B8). Zoho's search
// index trails writes by a short while, so a record written moments ago
// may not be found yet: the engine must not take "not found" right after
// its own write as proof of absence (it keeps its own links for that).
// "equals" on text fields matches by containment on Zoho; results are
// filtered to exact (case-insensitive) matches here.
func (c *CRM) Find(ctx context.Context, m connector.Module, q connector.Query) ([]connector.Record, error) {
	chunks, err := c.listFields(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("searching %s: %w", m, err)
	}
	params := url.Values{"fields": {strings.Join(chunks[0], ",")}, "per_page": {strconv.Itoa(crmPerPage)}}
	if strings.EqualFold(q.Field, "Email") {
		params.Set("email", q.Value)
	} else {
		params.Set("criteria", fmt.Sprintf("(%s:equals:%s)", q.Field, escapeCriteria(q.Value)))
	}
	var out []connector.Record
	for page := 1; page <= 10; page++ {
		params.Set("page", strconv.Itoa(page))
		var p crmPage
		ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m), "search"), query: params,
			action: "searching " + string(m)}, &p)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, d := range p.Data {
			r := crmRecord(d)
			if strings.EqualFold(strings.TrimSpace(str(r.Fields[q.Field])), strings.TrimSpace(q.Value)) ||
				lookupName(r.Fields[q.Field], q.Value) {
				out = append(out, r)
			}
		}
		if !p.Info.MoreRecords {
			break
		}
	}
	return out, nil
}

func lookupName(v any, want string) bool {
	m, ok := v.(map[string]any)
	return ok && strings.EqualFold(strings.TrimSpace(str(m["name"])), strings.TrimSpace(want))
}

// escapeCriteria escapes the characters search criteria give meaning to.
func escapeCriteria(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`, ",", `\,`)
	return r.Replace(v)
}

// Deleted reads the deleted-records feed since a moment: recycle-bin and
// permanent deletions.
func (c *CRM) Deleted(ctx context.Context, m connector.Module, since time.Time) ([]connector.Deletion, error) {
	var out []connector.Deletion
	h := http.Header{}
	if !since.IsZero() {
		h.Set("If-Modified-Since", crmTime(since.Truncate(time.Second).Add(-time.Second)))
	}
	for page := 1; page <= 2000/crmPerPage; page++ {
		var p struct {
			Data []struct {
				ID          any    `json:"id"`
				Type        string `json:"type"`
				DeletedTime string `json:"deleted_time"`
			} `json:"data"`
			Info struct {
				MoreRecords bool `json:"more_records"`
			} `json:"info"`
		}
		q := url.Values{"type": {"all"}, "page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(crmPerPage)}}
		ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m), "deleted"), query: q, header: h,
			action: "reading deleted " + string(m)}, &p)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, d := range p.Data {
			at := parseCRMTime(d.DeletedTime)
			if !since.IsZero() && at.Before(since) {
				continue
			}
			out = append(out, connector.Deletion{ID: str(d.ID), DeletedAt: at, Permanent: d.Type == "permanent"})
		}
		if !p.Info.MoreRecords {
			break
		}
	}
	return out, nil
}

// crmField is one entry of settings/fields.
type crmField struct {
	APIName         string          `json:"api_name"`
	FieldLabel      string          `json:"field_label"`
	DisplayLabel    string          `json:"display_label"`
	DataType        string          `json:"data_type"`
	SystemMandatory bool            `json:"system_mandatory"`
	Required        json.RawMessage `json:"required"`
	CustomField     bool            `json:"custom_field"`
	ReadOnly        bool            `json:"read_only"`
	FieldReadOnly   bool            `json:"field_read_only"`
	Unique          json.RawMessage `json:"unique"`
	Length          json.Number     `json:"length"`
	PickListValues  []struct {
		DisplayValue string `json:"display_value"`
		ActualValue  string `json:"actual_value"`
	} `json:"pick_list_values"`
	Lookup struct {
		Module json.RawMessage `json:"module"`
	} `json:"lookup"`
}

// Fields reads a module's field metadata and caches it for listing.
func (c *CRM) Fields(ctx context.Context, m connector.Module) ([]connector.Field, error) {
	var body struct {
		Fields []crmField `json:"fields"`
	}
	ok, _, err := c.c.getJSON(ctx, request{path: "/settings/fields", query: url.Values{"module": {string(m)}},
		action: "reading fields of " + string(m)}, &body)
	if err != nil {
		return nil, err
	}
	if !ok || len(body.Fields) == 0 {
		return nil, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound, Code: "NO_FIELDS",
			Message: fmt.Sprintf("reading fields of %s: none returned", m)}
	}
	out := make([]connector.Field, 0, len(body.Fields))
	for _, f := range body.Fields {
		out = append(out, f.normalise())
	}
	c.fieldMu.Lock()
	c.fields[m] = out
	c.fieldMu.Unlock()
	return out, nil
}

func (f crmField) normalise() connector.Field {
	out := connector.Field{
		Name: f.APIName, Label: firstNonEmpty(f.FieldLabel, f.DisplayLabel), VendorType: f.DataType,
		Type: crmType(f.DataType), Mandatory: f.SystemMandatory || truthy(f.Required), Custom: f.CustomField,
		ReadOnly: f.ReadOnly || f.FieldReadOnly, Unique: truthy(f.Unique),
	}
	if n, err := f.Length.Int64(); err == nil {
		out.MaxLength = int(n)
	}
	for _, p := range f.PickListValues {
		if p.ActualValue == "-None-" {
			continue
		}
		out.Picklist = append(out.Picklist, firstNonEmpty(p.ActualValue, p.DisplayValue))
	}
	if len(f.Lookup.Module) > 0 {
		var name string
		if json.Unmarshal(f.Lookup.Module, &name) != nil {
			var mod struct {
				APIName string `json:"api_name"`
			}
			_ = json.Unmarshal(f.Lookup.Module, &mod)
			name = mod.APIName
		}
		out.LookupModule = connector.Module(name)
	}
	return out
}

// truthy reads true, a non-empty object ({"casesensitive":…}) or "true".
func truthy(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	switch s {
	case "", "null", "false", "{}", `""`, `"false"`:
		return false
	}
	return true
}

func crmType(t string) connector.FieldType {
	switch t {
	case "text", "autonumber":
		return connector.TypeText
	case "textarea":
		return connector.TypeTextArea
	case "email":
		return connector.TypeEmail
	case "phone":
		return connector.TypePhone
	case "website":
		return connector.TypeURL
	case "integer", "bigint":
		return connector.TypeInteger
	case "double", "decimal", "percent":
		return connector.TypeDecimal
	case "currency":
		return connector.TypeCurrency
	case "boolean":
		return connector.TypeBoolean
	case "date":
		return connector.TypeDate
	case "datetime":
		return connector.TypeDateTime
	case "picklist":
		return connector.TypePicklist
	case "multiselectpicklist":
		return connector.TypeMultiPicklist
	case "lookup", "multi_module_lookup", "multiselectlookup":
		return connector.TypeLookup
	case "ownerlookup", "userlookup":
		return connector.TypeOwner
	}
	return connector.TypeOther
}

// BatchSize is Zoho's 100 records per write.
func (c *CRM) BatchSize() int { return crmMaxBatch }

// Related reads a related list (a contact's Notes, Deals, Calls…).
func (c *CRM) Related(ctx context.Context, m connector.Module, id, list string, limit int) ([]connector.Record, error) {
	if limit <= 0 {
		limit = crmPerPage
	}
	fields := []string{"Modified_Time", "Created_Time"}
	if chunks, err := c.listFields(ctx, connector.Module(list)); err == nil {
		fields = chunks[0]
	}
	var out []connector.Record
	for page := 1; len(out) < limit && page <= 10; page++ {
		q := url.Values{"fields": {strings.Join(fields, ",")}, "page": {strconv.Itoa(page)},
			"per_page": {strconv.Itoa(min(crmPerPage, limit))}}
		var p crmPage
		ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m), id, list), query: q,
			action: fmt.Sprintf("reading %s of %s %s", list, m, id)}, &p)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, d := range p.Data {
			if len(out) < limit {
				out = append(out, crmRecord(d))
			}
		}
		if !p.Info.MoreRecords {
			break
		}
	}
	return out, nil
}

// CustomView is a saved list view of a CRM module (SPEC B3).
type CustomView struct {
	ID          string
	Name        string
	SystemName  string
	Default     bool
	SystemView  bool // predefined by Zoho, not made by a user
	DisplayName string
}

// CustomViews lists a module's list views, for the admin to pick the one
// whose records sync (SPEC B3); set the chosen id in Settings.CustomViews.
func (c *CRM) CustomViews(ctx context.Context, m connector.Module) ([]CustomView, error) {
	var body struct {
		CustomViews []struct {
			ID           any    `json:"id"`
			Name         string `json:"name"`
			DisplayValue string `json:"display_value"`
			SystemName   string `json:"system_name"`
			Default      bool   `json:"default"`
			SystemDef    bool   `json:"system_defined"`
		} `json:"custom_views"`
	}
	if _, _, err := c.c.getJSON(ctx, request{path: "/settings/custom_views", query: url.Values{"module": {string(m)}},
		action: "listing custom views of " + string(m)}, &body); err != nil {
		return nil, err
	}
	out := make([]CustomView, 0, len(body.CustomViews))
	for _, v := range body.CustomViews {
		out = append(out, CustomView{ID: str(v.ID), Name: v.Name, DisplayName: firstNonEmpty(v.DisplayValue, v.Name),
			SystemName: v.SystemName, Default: v.Default, SystemView: v.SystemDef || v.SystemName != ""})
	}
	return out, nil
}

// Orgs lists the CRM orgs the authorizing user reaches (SPEC A1): GET
// /org, whose answer lists each org the token's user belongs to; the
// chosen id goes into Settings.CRMOrgID (sent as X-CRM-ORG).
func (c *CRM) Orgs(ctx context.Context) ([]connector.Org, error) {
	var body struct {
		Org []struct {
			ID          any    `json:"id"`
			ZGID        any    `json:"zgid"`
			CompanyName string `json:"company_name"`
		} `json:"org"`
	}
	cl := *c.c
	cl.decorate = nil // every org, not only the configured one
	if _, _, err := cl.getJSON(ctx, request{path: "/org", action: "listing orgs"}, &body); err != nil {
		return nil, err
	}
	out := make([]connector.Org, 0, len(body.Org))
	for _, o := range body.Org {
		out = append(out, connector.Org{ID: firstNonEmpty(str(o.ID), str(o.ZGID)), Name: o.CompanyName})
	}
	return out, nil
}

// CurrentUser says who authorized the connection (GET /users?type=CurrentUser):
// the access-request approval of SPEC A2 checks it is the invited CRM admin.
func (c *CRM) CurrentUser(ctx context.Context) (connector.User, error) {
	var body struct {
		Users []struct {
			Email   string `json:"email"`
			Profile struct {
				Name string `json:"name"`
			} `json:"profile"`
		} `json:"users"`
	}
	cl := *c.c
	cl.decorate = nil // the user is the same in every org they reach
	if _, _, err := cl.getJSON(ctx, request{path: "/users", query: url.Values{"type": {"CurrentUser"}},
		action: "reading the current user"}, &body); err != nil {
		return connector.User{}, err
	}
	if len(body.Users) == 0 {
		return connector.User{}, &connector.Error{Class: connector.Permanent, Message: "reading the current user: no user returned"}
	}
	u := body.Users[0]
	return connector.User{Email: u.Email, Admin: u.Profile.Name == "Administrator"}, nil
}
