package zoho

import (
	"context"
	"encoding/json"
	"errors"
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

// Desk limits and formats (reference §4).
const (
	deskSearchLimit = 100 // search page size (from is 0-based)
	deskListLimit   = 99  // list page size (from is 1-based); contacts and accounts allow 99
	deskBatch       = 50  // records per Write call; each is its own request
	deskTimeLayout  = "2006-01-02T15:04:05.000Z"
	// deskSourceHeader tags our writes with Settings.SourceID, so webhooks
	// created with ignoreSourceId do not echo them (the sandbox's header;
	// Zoho does not document how a call is tagged).
	deskSourceHeader = "X-Desk-Source-Id"
)

// deskEpoch is the lower bound of a stream that starts at the beginning.
var deskEpoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Desk is the Zoho Desk connector: contacts, accounts, products and
// tickets through the connector contract, plus the typed ticket and
// knowledge-base calls the ticket features need. Safe for concurrent use.
type Desk struct {
	c        *client
	clock    Clock
	sourceID string

	fieldMu sync.Mutex
	fields  map[connector.Module][]connector.Field
}

// NewDesk builds a Desk connector. Without Settings.DeskOrgID it can only
// list the portals the credential reaches (Orgs), to pick one; every other
// call fails at once.
func NewDesk(s Settings) (*Desk, error) {
	s.System = connector.Desk
	s, err := s.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("building desk connector: %w", err)
	}
	ts, err := newTokenSource(s)
	if err != nil {
		return nil, fmt.Errorf("building desk connector: %w", err)
	}
	return newDesk(s, ts), nil
}

func newDesk(s Settings, ts *TokenSource) *Desk {
	cl := newClient(s, ts)
	cl.base = regionalBase(s, "Desk", s.DeskURL, func(dc DataCenter) string { return dc.Desk }, "/api/v1")
	org, source := s.DeskOrgID, s.SourceID
	cl.decorate = func(h http.Header) {
		h.Set("orgId", org)
		if source != "" {
			h.Set(deskSourceHeader, source)
		}
	}
	cl.classify = classifyDesk
	if org == "" {
		cl.refuse = errors.New("no desk portal (orgId) configured")
	}
	return &Desk{c: cl, clock: s.Clock, sourceID: s.SourceID, fields: map[connector.Module][]connector.Field{}}
}

// System reports zoho_desk.
func (d *Desk) System() connector.System { return connector.Desk }

// Tokens exposes the connection's token source.
func (d *Desk) Tokens() *TokenSource { return d.c.tokens }

// BatchSize is how many records one Write takes; Desk has no batch API, so
// each is its own request, run concurrently within the connection's limit.
func (d *Desk) BatchSize() int { return deskBatch }

// deskRecord converts a Desk object: custom fields ("cf":{…}) are
// flattened to their cf_ names, as organizationFields names them.
func deskRecord(m map[string]any) connector.Record {
	r := connector.Record{ID: str(m["id"]), Fields: m}
	delete(m, "id")
	if cf, ok := m["cf"].(map[string]any); ok {
		for k, v := range cf {
			m[k] = v
		}
		delete(m, "cf")
	}
	r.CreatedAt = parseDeskTime(str(m["createdTime"]))
	r.ModifiedAt = parseDeskTime(str(m["modifiedTime"]))
	return r
}

func parseDeskTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func deskTime(t time.Time) string { return t.UTC().Format(deskTimeLayout) }

// deskBody nests cf_ fields under "cf" for a write.
func deskBody(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	var cf map[string]any
	for k, v := range fields {
		if strings.HasPrefix(k, "cf_") {
			if cf == nil {
				cf = map[string]any{}
			}
			cf[k] = v
			continue
		}
		out[k] = v
	}
	if cf != nil {
		out["cf"] = cf
	}
	return out
}

type deskList struct {
	Data  []map[string]any `json:"data"`
	Count json.Number      `json:"count"`
}

// ListChanged returns records modified after the cursor, oldest first,
// from /{module}/search?modifiedTimeRange=T,…&sortBy=modifiedTime (the list
// endpoints cannot filter by time). Search offsets are 0-based and there is
// no "more" flag: a full page means there may be more. Each call starts
// again at the cursor's time, so records modified while we page move to
// the end instead of shifting a page under us; only when more than a page
// of records share one modified time does the walk page with an offset.
func (d *Desk) ListChanged(ctx context.Context, m connector.Module, after connector.Cursor, limit int) (connector.ChangePage, error) {
	cur, err := decodeCursor(after, m)
	if err != nil {
		return connector.ChangePage{}, err
	}
	if limit <= 0 {
		limit = deskSearchLimit
	}
	var out []connector.Record
	done := false
	for len(out) < limit {
		if cur.Anchor == "" {
			cur.Anchor = firstNonEmpty(cur.T, "-")
			cur.Offset = 0
		}
		lo := deskEpoch
		if cur.Anchor != "-" {
			t, perr := time.Parse(time.RFC3339Nano, cur.Anchor)
			if perr != nil {
				cur.resetWalk()
				cur.Anchor = "-"
				continue
			}
			lo = t.Truncate(time.Millisecond)
		}
		hi := d.clock.Now().Add(24 * time.Hour)
		q := url.Values{
			"modifiedTimeRange": {deskTime(lo) + "," + deskTime(hi)},
			"sortBy":            {"modifiedTime"},
			"from":              {strconv.Itoa(cur.Offset)},
			"limit":             {strconv.Itoa(deskSearchLimit)},
		}
		var page deskList
		ok, _, err := d.c.getJSON(ctx, request{path: joinPath(string(m), "search"), query: q,
			action: "listing changed " + string(m)}, &page)
		if err != nil {
			return connector.ChangePage{}, err
		}
		if !ok || len(page.Data) == 0 {
			done = true
			cur.resetWalk()
			break
		}
		anchorT := cur.T
		truncated := false
		for _, raw := range page.Data {
			r := deskRecord(raw)
			if cur.delivered(r.ModifiedAt, r.ID) {
				continue
			}
			if len(out) >= limit {
				truncated = true
				break
			}
			cur.advance(r.ModifiedAt, r.ID)
			out = append(out, r)
		}
		full := len(page.Data) >= deskSearchLimit
		switch {
		case !full && !truncated:
			done = true
			cur.resetWalk()
		case truncated || cur.T != anchorT:
			cur.resetWalk() // re-anchor at the new T
		default:
			cur.Offset += len(page.Data) // a page of records sharing one time
		}
		if done || truncated {
			break
		}
	}
	return connector.ChangePage{Records: out, Next: cur.encode(), Done: done}, nil
}

// StartAt returns the cursor of the moment t.
func (d *Desk) StartAt(m connector.Module, t time.Time) connector.Cursor { return startCursor(m, t) }

// Get reads one record.
func (d *Desk) Get(ctx context.Context, m connector.Module, id string) (connector.Record, error) {
	var raw map[string]any
	ok, _, err := d.c.getJSON(ctx, request{path: joinPath(string(m), id), action: "reading " + string(m) + " " + id}, &raw)
	if err != nil {
		return connector.Record{}, err
	}
	if !ok || raw == nil || raw["isTrashed"] == true || raw["isDeleted"] == true {
		// A record in the trash counts as deleted, as Delete put it there.
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound,
			Code: "NOT_FOUND", Message: fmt.Sprintf("reading %s %s: no such record (or in the trash)", m, id)}
	}
	return deskRecord(raw), nil
}

// GetMany reads records by id: contactsByIds for contacts, one request per
// id (concurrently) elsewhere; missing ids are left out.
func (d *Desk) GetMany(ctx context.Context, m connector.Module, ids []string) ([]connector.Record, error) {
	if m == "contacts" {
		var out []connector.Record
		// contactsByIds takes at most 20 ids (Desk answers more with
		// UNPROCESSABLE_ENTITY on ids, which would fail the whole batch).
		for part := range slices.Chunk(ids, 20) {
			var page deskList
			if _, _, err := d.c.getJSON(ctx, request{path: "/contacts/contactsByIds", query: url.Values{"ids": {strings.Join(part, ",")}},
				action: "reading contacts by id"}, &page); err != nil {
				return nil, err
			}
			for _, raw := range page.Data {
				if raw["isTrashed"] != true && raw["isDeleted"] != true {
					out = append(out, deskRecord(raw))
				}
			}
		}
		return out, nil
	}
	recs := make([]connector.Record, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i], errs[i] = d.Get(ctx, m, id)
		}()
	}
	wg.Wait()
	var out []connector.Record
	for i := range ids {
		if errs[i] != nil {
			if e := asError(errs[i]); e != nil && e.Reason == connector.ReasonNotFound {
				continue
			}
			return nil, errs[i]
		}
		out = append(out, recs[i])
	}
	return out, nil
}

// Find searches /{module}/search?{field}={value} (email, accountName,
// productName…), filtered to exact matches.
func (d *Desk) Find(ctx context.Context, m connector.Module, q connector.Query) ([]connector.Record, error) {
	var out []connector.Record
	for from := 0; from < 1000; from += deskSearchLimit {
		var page deskList
		params := url.Values{q.Field: {q.Value}, "from": {strconv.Itoa(from)}, "limit": {strconv.Itoa(deskSearchLimit)}}
		ok, _, err := d.c.getJSON(ctx, request{path: joinPath(string(m), "search"), query: params,
			action: "searching " + string(m)}, &page)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, raw := range page.Data {
			r := deskRecord(raw)
			if strings.EqualFold(strings.TrimSpace(str(r.Fields[q.Field])), strings.TrimSpace(q.Value)) {
				out = append(out, r)
			}
		}
		if len(page.Data) < deskSearchLimit {
			break
		}
	}
	return out, nil
}

// Deleted lists records moved to the trash since a moment, from the
// recycle bin listing (GET /recycleBin?module=…, newest first). Records
// deleted for good (the bin emptied) are not listed anywhere by Desk:
// only a Contact_Delete/Account_Delete webhook tells of them, so a
// connection without webhooks misses those (documented gap). The listing
// is newest first, so reading stops at the first entry older than since.
func (d *Desk) Deleted(ctx context.Context, m connector.Module, since time.Time) ([]connector.Deletion, error) {
	var out []connector.Deletion
	const binLimit = 50
	for from := 1; from < 10000; from += binLimit {
		var page deskList
		q := url.Values{"module": {string(m)}, "from": {strconv.Itoa(from)}, "limit": {strconv.Itoa(binLimit)}}
		ok, _, err := d.c.getJSON(ctx, request{path: "/recycleBin", query: q, action: "reading deleted " + string(m)}, &page)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, raw := range page.Data {
			at := parseDeskTime(firstNonEmpty(str(raw["deletedTime"]), str(raw["modifiedTime"])))
			if !since.IsZero() && at.Before(since) {
				return out, nil
			}
			id := firstNonEmpty(str(raw["entityId"]), str(raw["recordId"]), str(raw["id"]))
			out = append(out, connector.Deletion{ID: id, DeletedAt: at})
		}
		if len(page.Data) < binLimit {
			break
		}
	}
	return out, nil
}

type deskField struct {
	APIName       string   `json:"apiName"`
	Name          string   `json:"name"`
	DisplayLabel  string   `json:"displayLabel"`
	Type          string   `json:"type"`
	IsCustomField bool     `json:"isCustomField"`
	IsMandatory   bool     `json:"isMandatory"`
	IsReadOnly    bool     `json:"isReadOnly"`
	MaxLength     int      `json:"maxLength"`
	AllowedValues []string `json:"allowedValues"`
	LookupModule  string   `json:"lookupModule"`
	IsMultiple    bool     `json:"isMultiple"`
}

// Fields reads organizationFields of a module.
func (d *Desk) Fields(ctx context.Context, m connector.Module) ([]connector.Field, error) {
	var page struct {
		Data []deskField `json:"data"`
	}
	if _, _, err := d.c.getJSON(ctx, request{path: "/organizationFields", query: url.Values{"module": {string(m)}},
		action: "reading fields of " + string(m)}, &page); err != nil {
		return nil, err
	}
	out := make([]connector.Field, 0, len(page.Data))
	for _, f := range page.Data {
		out = append(out, connector.Field{
			Name: firstNonEmpty(f.APIName, f.Name), Label: f.DisplayLabel, VendorType: f.Type, Type: deskType(f.Type),
			Mandatory: f.IsMandatory, Custom: f.IsCustomField, ReadOnly: f.IsReadOnly, MaxLength: f.MaxLength,
			Picklist: f.AllowedValues, LookupModule: connector.Module(f.LookupModule),
		})
	}
	d.fieldMu.Lock()
	d.fields[m] = out
	d.fieldMu.Unlock()
	return out, nil
}

// refine sharpens a Desk "invalid" field error into type_mismatch or
// too_long: Desk says only that the value is invalid, and the field
// metadata plus the value sent tell why.
func (d *Desk) refine(ctx context.Context, m connector.Module, fields map[string]any, err error) error {
	e := asError(err)
	if e == nil || e.Class != connector.Permanent || e.Reason != connector.ReasonParamInvalid || e.Field == "" {
		return err
	}
	v, sent := fields[e.Field]
	if !sent {
		return err
	}
	d.fieldMu.Lock()
	fs, ok := d.fields[m]
	d.fieldMu.Unlock()
	if !ok {
		var ferr error
		if fs, ferr = d.Fields(ctx, m); ferr != nil {
			return err
		}
	}
	for _, f := range fs {
		if f.Name != e.Field {
			continue
		}
		if r := valueProblem(f, v); r != "" {
			e.Reason = r
		}
	}
	return err
}

// valueProblem says why v does not fit f, if the type or length says.
func valueProblem(f connector.Field, v any) connector.Reason {
	s, isString := v.(string)
	switch f.Type {
	case connector.TypeInteger, connector.TypeDecimal, connector.TypeCurrency:
		if isString {
			if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
				return connector.ReasonTypeMismatch
			}
		}
		if _, ok := v.(bool); ok {
			return connector.ReasonTypeMismatch
		}
	case connector.TypeBoolean:
		if _, ok := v.(bool); !ok && s != "true" && s != "false" {
			return connector.ReasonTypeMismatch
		}
	case connector.TypeDate:
		if _, err := time.Parse("2006-01-02", s); isString && err != nil {
			return connector.ReasonTypeMismatch
		}
	case connector.TypeDateTime:
		if _, err := time.Parse(time.RFC3339Nano, s); isString && err != nil {
			return connector.ReasonTypeMismatch
		}
	}
	if isString && f.MaxLength > 0 && len([]rune(s)) > f.MaxLength {
		return connector.ReasonTooLong
	}
	return ""
}

func deskType(t string) connector.FieldType {
	switch strings.ToLower(t) {
	case "text":
		return connector.TypeText
	case "textarea":
		return connector.TypeTextArea
	case "email":
		return connector.TypeEmail
	case "phone":
		return connector.TypePhone
	case "url":
		return connector.TypeURL
	case "number":
		return connector.TypeInteger
	case "decimal", "percent":
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
	case "multiselect":
		return connector.TypeMultiPicklist
	case "lookup":
		return connector.TypeLookup
	}
	return connector.TypeOther
}

// Write creates, updates and upserts records, one request each, run
// concurrently. Upsert (Desk has none) finds the record by the first
// duplicate-check field that has a value, then updates or creates.
func (d *Desk) Write(ctx context.Context, m connector.Module, ws []connector.Write) ([]connector.Result, error) {
	results := make([]connector.Result, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.writeOne(ctx, m, w)
		}()
	}
	wg.Wait()
	var reqErr error
	anyDone := false
	for _, r := range results {
		if e := asError(r.Err); e != nil && (e.Class == connector.Auth) {
			if reqErr == nil {
				reqErr = r.Err
			}
		} else {
			anyDone = true
		}
	}
	return requestLevel(results, reqErr, anyDone, "writing "+string(m))
}

func (d *Desk) writeOne(ctx context.Context, m connector.Module, w connector.Write) connector.Result {
	switch w.Op {
	case connector.Create:
		rec, err := d.create(ctx, m, w.Fields)
		if err != nil {
			return connector.Result{Err: d.refine(ctx, m, w.Fields, err)}
		}
		return connector.Result{ID: rec.ID, Created: true}
	case connector.Update:
		if w.ID == "" {
			return connector.Result{Err: &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamMissing,
				Field: "id", Message: "updating " + string(m) + ": no id"}}
		}
		if _, err := d.update(ctx, m, w.ID, w.Fields); err != nil {
			return connector.Result{ID: w.ID, Err: d.refine(ctx, m, w.Fields, err)}
		}
		return connector.Result{ID: w.ID}
	case connector.Upsert:
		for _, f := range w.DuplicateCheck {
			v := scalar(w.Fields[f])
			if v == "" {
				continue
			}
			found, err := d.Find(ctx, m, connector.Query{Field: f, Value: v})
			if err != nil {
				return connector.Result{Err: err}
			}
			if len(found) > 0 {
				if _, err := d.update(ctx, m, found[0].ID, w.Fields); err != nil {
					return connector.Result{ID: found[0].ID, Err: err}
				}
				return connector.Result{ID: found[0].ID}
			}
			break
		}
		return d.writeOne(ctx, m, connector.Write{Op: connector.Create, Fields: w.Fields})
	}
	return connector.Result{Err: &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
		Message: fmt.Sprintf("writing %s: unknown operation %d", m, w.Op)}}
}

// create POSTs one record; when the outcome is unknown it looks for the
// record (reconcile) before sending it again. See write.go.
func (d *Desk) create(ctx context.Context, m connector.Module, fields map[string]any) (connector.Record, error) {
	action := "creating " + string(m)
	first := d.clock.Now()
	for round := 0; ; round++ {
		resp, err := d.c.do(ctx, request{method: http.MethodPost, path: joinPath(string(m)), body: deskBody(fields), action: action})
		if err == nil {
			var raw map[string]any
			if derr := decodeJSON(resp.body, &raw); derr != nil || str(raw["id"]) == "" {
				err = &outcomeUnknown{err: &connector.Error{Class: connector.Transient, Status: resp.status,
					Raw: truncate(resp.body), Message: action + ": unreadable answer"}}
			} else {
				return deskRecord(raw), nil
			}
		}
		if !isOutcomeUnknown(err) {
			return connector.Record{}, err
		}
		if round >= d.c.attempts {
			return connector.Record{}, errOutcomeUnknown(action, err)
		}
		id, rerr := d.reconcile(ctx, m, fields, first.Add(-reconcileSkew))
		if rerr != nil {
			return connector.Record{}, errOutcomeUnknown(action, rerr)
		}
		if id != "" {
			d.c.log.Warn("create outcome unknown; found it", "module", m, "id", id)
			return d.Get(ctx, m, id)
		}
		d.c.log.Warn("create outcome unknown; not found, sending again", "module", m)
	}
}

// reconcile finds a record created since `since` holding fields' values.
func (d *Desk) reconcile(ctx context.Context, m connector.Module, fields map[string]any, since time.Time) (string, error) {
	sent := deskBody(fields)
	flat := copyFields(sent)
	if cf, ok := flat["cf"].(map[string]any); ok {
		delete(flat, "cf")
		for k, v := range cf {
			flat[k] = v
		}
	}
	var mt matcher
	for from := 0; from < 10*deskSearchLimit; from += deskSearchLimit {
		var page deskList
		q := url.Values{"modifiedTimeRange": {deskTime(since) + "," + deskTime(d.clock.Now().Add(24*time.Hour))},
			"sortBy": {"-modifiedTime"}, "from": {strconv.Itoa(from)}, "limit": {strconv.Itoa(deskSearchLimit)}}
		ok, _, err := d.c.getJSON(ctx, request{path: joinPath(string(m), "search"), query: q,
			action: "looking for an unconfirmed create in " + string(m)}, &page)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", nil
		}
		cands := make([]connector.Record, 0, len(page.Data))
		for _, raw := range page.Data {
			r := deskRecord(raw)
			if !r.CreatedAt.IsZero() && r.CreatedAt.Before(since) {
				continue
			}
			cands = append(cands, r)
		}
		if id := mt.match(flat, cands, nil); id != "" {
			return id, nil
		}
		if len(page.Data) < deskSearchLimit {
			return "", nil
		}
	}
	return "", nil
}

// update PATCHes one record; repeating it is harmless.
func (d *Desk) update(ctx context.Context, m connector.Module, id string, fields map[string]any) (connector.Record, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodPatch, path: joinPath(string(m), id), body: deskBody(fields),
		idempotent: true, action: "updating " + string(m) + " " + id})
	if err != nil {
		return connector.Record{}, err
	}
	var raw map[string]any
	if decodeJSON(resp.body, &raw) != nil || raw == nil {
		return connector.Record{ID: id}, nil
	}
	return deskRecord(raw), nil
}

// Delete moves records to the trash (POST /{module}/moveToTrash). Desk
// answers for the whole batch; when it refuses one, the records are sent
// one by one to find which.
func (d *Desk) Delete(ctx context.Context, m connector.Module, ids []string) ([]connector.Result, error) {
	results := make([]connector.Result, len(ids))
	if len(ids) == 0 {
		return results, nil
	}
	err := d.trash(ctx, m, ids)
	if err == nil {
		for i, id := range ids {
			results[i] = connector.Result{ID: id}
		}
		return results, nil
	}
	if e := asError(err); e == nil || e.Class != connector.Permanent || len(ids) == 1 {
		if len(ids) == 1 {
			results[0] = connector.Result{ID: ids[0], Err: err}
			return results, nil
		}
		return nil, fmt.Errorf("deleting %s: %w", m, err)
	}
	for i, id := range ids {
		results[i] = connector.Result{ID: id, Err: d.trash(ctx, m, []string{id})}
	}
	return results, nil
}

func (d *Desk) trash(ctx context.Context, m connector.Module, ids []string) error {
	key := "ids"
	if m == "tickets" {
		key = "ticketIds"
	}
	_, err := d.c.do(ctx, request{method: http.MethodPost, path: joinPath(string(m), "moveToTrash"),
		body: map[string]any{key: ids}, idempotent: true, action: "moving " + string(m) + " to the trash"})
	return err
}

// Related reads a related list (SPEC B11): contacts' tickets, timeEntries,
// activities and attachments; accounts' tickets, contacts, contracts and
// attachments; products' attachments.
func (d *Desk) Related(ctx context.Context, m connector.Module, id, list string, limit int) ([]connector.Record, error) {
	if limit <= 0 {
		limit = deskListLimit
	}
	var out []connector.Record
	for from := 1; len(out) < limit; from += deskListLimit {
		var page deskList
		q := url.Values{"from": {strconv.Itoa(from)}, "limit": {strconv.Itoa(min(deskListLimit, limit-len(out)))}}
		ok, _, err := d.c.getJSON(ctx, request{path: joinPath(string(m), id, list), query: q,
			action: fmt.Sprintf("reading %s of %s %s", list, m, id)}, &page)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, raw := range page.Data {
			out = append(out, deskRecord(raw))
		}
		if len(page.Data) < min(deskListLimit, limit) {
			break
		}
	}
	return out, nil
}

// Orgs lists the Desk organizations the token reaches (the connect flow's
// portal choice).
func (d *Desk) Orgs(ctx context.Context) ([]connector.Org, error) {
	var page struct {
		Data []struct {
			ID          any    `json:"id"`
			CompanyName string `json:"companyName"`
			PortalName  string `json:"portalName"`
			TimeZone    string `json:"timeZone"`
			IsAdmin     bool   `json:"isAdminInOrg"`
		} `json:"data"`
	}
	cl := *d.c
	cl.decorate, cl.refuse = nil, nil // organizations need no orgId
	if _, _, err := cl.getJSON(ctx, request{path: "/organizations", action: "listing desk organizations"}, &page); err != nil {
		return nil, err
	}
	out := make([]connector.Org, 0, len(page.Data))
	for _, o := range page.Data {
		out = append(out, connector.Org{ID: str(o.ID), Name: firstNonEmpty(o.CompanyName, o.PortalName),
			TimeZone: o.TimeZone, Admin: o.IsAdmin})
	}
	return out, nil
}

// deskEventPrefix maps modules to webhook event prefixes. Products have no
// webhook events on Desk: they are polled.
var deskEventPrefix = map[connector.Module]string{
	"contacts": "Contact", "accounts": "Account", "tickets": "Ticket", "articles": "Article",
}

// deskEventModule is the reverse, for parsing.
var deskEventModule = map[string]connector.Module{
	"Contact": "contacts", "Account": "accounts", "Ticket": "tickets", "Article": "articles",
	"Department": "departments", "Agent": "agents", "Task": "tasks", "Call": "calls", "Event": "events",
}

// Watch creates a webhook for the modules' Add, Update (with previous
// state) and Delete events, ignoring our own writes (ignoreSourceId =
// Settings.SourceID). Desk sends no verification token back: req.Token is
// carried in the URL's "token" query parameter for the receiver to check.
func (d *Desk) Watch(ctx context.Context, req connector.WatchRequest) (connector.Subscription, error) {
	subs := map[string]any{}
	for _, m := range req.Modules {
		p, ok := deskEventPrefix[m]
		if !ok {
			return connector.Subscription{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
				Field: "modules", Message: fmt.Sprintf("subscribing: Desk has no webhook events for %s; poll it", m)}
		}
		subs[p+"_Add"] = nil
		subs[p+"_Update"] = map[string]any{"includePrevState": true}
		subs[p+"_Delete"] = nil
		if m == "tickets" {
			// New messages and comments, for the ticket event stream.
			subs["Ticket_Thread_Add"] = nil
			subs["Ticket_Comment_Add"] = nil
		}
	}
	target := req.URL
	if req.Token != "" {
		u, err := url.Parse(req.URL)
		if err != nil {
			return connector.Subscription{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
				Field: "url", Message: "subscribing: " + err.Error()}
		}
		q := u.Query()
		q.Set("token", req.Token)
		u.RawQuery = q.Encode()
		target = u.String()
	}
	body := map[string]any{"name": "deskbridge sync " + strconv.FormatInt(d.clock.Now().UnixMilli(), 10), "url": target,
		"description": "deskbridge change capture", "subscriptions": subs}
	if d.sourceID != "" {
		body["ignoreSourceId"] = d.sourceID
	}
	// The name is unique per call, so a create whose answer was lost is
	// found by it, as record creates are found by their values (write.go).
	const action = "creating desk webhook"
	for round := 0; ; round++ {
		resp, err := d.c.do(ctx, request{method: http.MethodPost, path: "/webhooks", body: body, action: action})
		if err == nil {
			var out struct {
				ID any `json:"id"`
			}
			if json.Unmarshal(resp.body, &out) == nil && str(out.ID) != "" {
				return connector.Subscription{ID: str(out.ID)}, nil
			}
			err = &outcomeUnknown{err: &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
				Message: action + ": no id in the answer"}}
		}
		if !isOutcomeUnknown(err) {
			return connector.Subscription{}, err
		}
		if round >= d.c.attempts {
			return connector.Subscription{}, errOutcomeUnknown(action, err)
		}
		id, ferr := d.webhookNamed(ctx, body["name"].(string))
		if ferr != nil {
			return connector.Subscription{}, errOutcomeUnknown(action, ferr)
		}
		if id != "" {
			d.c.log.Warn("webhook create outcome unknown; found it", "id", id)
			return connector.Subscription{ID: id}, nil
		}
		d.c.log.Warn("webhook create outcome unknown; not found, sending again")
	}
}

// webhookNamed returns the id of the portal's webhook with this name, ""
// when there is none.
func (d *Desk) webhookNamed(ctx context.Context, name string) (string, error) {
	var page deskList
	if _, _, err := d.c.getJSON(ctx, request{path: "/webhooks", action: "listing desk webhooks"}, &page); err != nil {
		return "", err
	}
	for _, w := range page.Data {
		if str(w["name"]) == name {
			return str(w["id"]), nil
		}
	}
	return "", nil
}

// Unwatch deletes the webhook; one already gone counts as deleted.
func (d *Desk) Unwatch(ctx context.Context, id string) error {
	_, err := d.c.do(ctx, request{method: http.MethodDelete, path: joinPath("webhooks", id), idempotent: true,
		action: "deleting desk webhook " + id})
	if e := asError(err); e != nil && e.Reason == connector.ReasonNotFound {
		return nil
	}
	return err
}

// ParseNotification reads a Desk delivery: a JSON array of events, each
// with the full record (payload) and, for updates, the previous values of
// the changed fields (prevState).
func (d *Desk) ParseNotification(_ http.Header, body []byte) ([]connector.Change, error) {
	return parseDeskNotification(body)
}

type deskEvent struct {
	EventType string          `json:"eventType"`
	OrgID     json.RawMessage `json:"orgId"`
	EventTime json.RawMessage `json:"eventTime"`
	Payload   json.RawMessage `json:"payload"`
	PrevState json.RawMessage `json:"prevState"`
}

func parseDeskNotification(body []byte) ([]connector.Change, error) {
	if len(body) > maxNotification {
		return nil, badNotification("body of %d bytes", len(body))
	}
	var events []deskEvent
	if err := json.Unmarshal(body, &events); err != nil {
		// Tolerate a single event not wrapped in an array.
		var one deskEvent
		if err2 := json.Unmarshal(body, &one); err2 != nil || one.EventType == "" {
			return nil, badNotification("desk delivery: %v", err)
		}
		events = []deskEvent{one}
	}
	var out []connector.Change
	for _, ev := range events {
		prefix, op, ok := strings.Cut(ev.EventType, "_")
		if !ok {
			continue
		}
		m, known := deskEventModule[prefix]
		if !known {
			continue
		}
		ch := connector.Change{Module: m}
		var payload map[string]any
		if len(ev.Payload) > 0 {
			_ = decodeJSON(ev.Payload, &payload)
		}
		id := str(payload["id"])
		switch op {
		case "Add":
			ch.Kind = connector.Created
		case "Update":
			ch.Kind = connector.Updated
		case "Delete":
			ch.Kind = connector.Deleted
		default:
			// Thread, comment and attachment events change their ticket;
			// a thread or comment is kept as the change's detail.
			if prefix != "Ticket" {
				continue
			}
			ch.Kind = connector.Updated
			id = str(payload["ticketId"])
			switch op {
			case "Thread_Add":
				ch.Activity, ch.Detail = connector.ActivityThread, payload
			case "Comment_Add":
				ch.Activity, ch.Detail = connector.ActivityComment, payload
			}
			payload = nil
		}
		if id == "" {
			continue
		}
		ch.IDs = []string{id}
		if payload != nil && ch.Kind != connector.Deleted {
			ch.Records = []connector.Record{deskRecord(payload)}
		}
		if len(ev.PrevState) > 0 {
			var prev map[string]any
			if decodeJSON(ev.PrevState, &prev) == nil && len(prev) > 0 {
				if cf, ok := prev["cf"].(map[string]any); ok {
					delete(prev, "cf")
					for k, v := range cf {
						prev[k] = v
					}
				}
				ch.Previous = prev
			}
		}
		if ms, err := strconv.ParseInt(strings.Trim(string(ev.EventTime), `"`), 10, 64); err == nil && ms > 0 {
			ch.At = time.UnixMilli(ms)
		}
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, badNotification("desk delivery holds no known event")
	}
	return out, nil
}
