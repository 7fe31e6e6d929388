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
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// crmBatchAnswer is the body of a write: one element per input record, in
// order, even when the status is 400 (every record failed).
type crmBatchAnswer struct {
	Data []json.RawMessage `json:"data"`
}

func crmBatchAllowed(status int, body []byte) bool {
	if status != http.StatusBadRequest && status != http.StatusMultiStatus && status != http.StatusAccepted {
		return false
	}
	var a crmBatchAnswer
	return json.Unmarshal(body, &a) == nil && len(a.Data) > 0
}

type crmWriteResult struct {
	Code    string `json:"code"`
	Status  string `json:"status"`
	Action  string `json:"action"`
	Details struct {
		ID           any    `json:"id"`
		CreatedTime  string `json:"Created_Time"`
		ModifiedTime string `json:"Modified_Time"`
	} `json:"details"`
}

// parseBatch splits a write answer into one result per record.
func parseBatch(resp *response, n int, action string) ([]json.RawMessage, error) {
	var a crmBatchAnswer
	if err := json.Unmarshal(resp.body, &a); err != nil || len(a.Data) != n {
		return nil, &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
			Message: fmt.Sprintf("%s: answer has %d results for %d records", action, len(a.Data), n)}
	}
	return a.Data, nil
}

// Write creates, updates and upserts up to BatchSize records; each group
// goes to its endpoint in batches of 100, and results come back in input
// order. See write.go for the rule that keeps a create from happening
// twice. An upsert without a value in any of its duplicate-check fields
// would insert, so it is treated as a create.
func (c *CRM) Write(ctx context.Context, m connector.Module, ws []connector.Write) ([]connector.Result, error) {
	results := make([]connector.Result, len(ws))
	var creates, updates []int
	upserts := map[string][]int{}
	var upsertKeys []string
	for i, w := range ws {
		switch w.Op {
		case connector.Create:
			creates = append(creates, i)
		case connector.Update:
			if w.ID == "" {
				results[i].Err = &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamMissing, Field: "id",
					Message: "updating " + string(m) + ": no id"}
				continue
			}
			updates = append(updates, i)
		case connector.Upsert:
			if !hasDupValue(w) {
				creates = append(creates, i)
				continue
			}
			key := strings.Join(w.DuplicateCheck, ",")
			if _, ok := upserts[key]; !ok {
				upsertKeys = append(upsertKeys, key)
			}
			upserts[key] = append(upserts[key], i)
		default:
			results[i].Err = &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
				Message: fmt.Sprintf("writing %s: unknown operation %d", m, w.Op)}
		}
	}
	var reqErr error
	anyDone := false
	note := func(err error) {
		if err == nil {
			anyDone = true
		} else if reqErr == nil {
			reqErr = err
		}
	}
	for part := range slices.Chunk(creates, crmMaxBatch) {
		note(c.createBatch(ctx, m, ws, part, results))
	}
	for part := range slices.Chunk(updates, crmMaxBatch) {
		note(c.updateBatch(ctx, m, ws, part, results))
	}
	for _, key := range upsertKeys {
		for part := range slices.Chunk(upserts[key], crmMaxBatch) {
			note(c.upsertBatch(ctx, m, ws, part, strings.Split(key, ","), results))
		}
	}
	return requestLevel(results, reqErr, anyDone, "writing "+string(m))
}

// requestLevel decides between per-record results and one error for the
// call: when no batch got an answer the failure is the request's
// (transport, auth), unless it is an unknown create outcome, which must
// stay per record so the engine does not resend it.
func requestLevel(results []connector.Result, reqErr error, anyDone bool, action string) ([]connector.Result, error) {
	if reqErr == nil || anyDone {
		return results, nil
	}
	if e := asError(reqErr); e != nil && e.Code == "OUTCOME_UNKNOWN" {
		return results, nil
	}
	return nil, fmt.Errorf("%s: %w", action, reqErr)
}

func hasDupValue(w connector.Write) bool {
	if len(w.DuplicateCheck) == 0 {
		return false
	}
	for _, f := range w.DuplicateCheck {
		if v, ok := w.Fields[f]; ok && scalar(v) != "" {
			return true
		}
	}
	return false
}

// fail sets err on every result of idx and returns it.
func fail(results []connector.Result, idx []int, err error) error {
	for _, i := range idx {
		results[i].Err = err
	}
	return err
}

// createBatch inserts records, reconciling when an attempt's outcome is
// unknown.
func (c *CRM) createBatch(ctx context.Context, m connector.Module, ws []connector.Write, idx []int, results []connector.Result) error {
	action := "creating " + string(m)
	pending := slices.Clone(idx)
	var first time.Time
	for round := 0; len(pending) > 0; round++ {
		data := make([]map[string]any, 0, len(pending))
		for _, i := range pending {
			data = append(data, ws[i].Fields)
		}
		if first.IsZero() {
			first = c.clock.Now()
		}
		resp, err := c.c.do(ctx, request{method: http.MethodPost, path: joinPath(string(m)), body: map[string]any{"data": data},
			allow: crmBatchAllowed, action: action})
		if err == nil {
			elems, perr := parseBatch(resp, len(pending), action)
			if perr != nil {
				// The vendor answered, so something may have been created:
				// reconcile as for an unknown outcome.
				err = &outcomeUnknown{err: asError(perr)}
			} else {
				for k, i := range pending {
					results[i] = crmResult(elems[k], connector.Create, resp.replayed, first)
				}
				return nil
			}
		}
		if !isOutcomeUnknown(err) {
			return fail(results, pending, err)
		}
		if round >= c.c.attempts {
			return fail(results, pending, errOutcomeUnknown(action, err))
		}
		found, rerr := c.reconcile(ctx, m, ws, pending, first.Add(-reconcileSkew))
		if rerr != nil {
			return fail(results, pending, errOutcomeUnknown(action, rerr))
		}
		var rest []int
		for _, i := range pending {
			if id := found[i]; id != "" {
				results[i] = connector.Result{ID: id, Created: true}
			} else {
				rest = append(rest, i)
			}
		}
		c.c.log.Warn("create outcome unknown; reconciled", "module", m, "found", len(pending)-len(rest), "resending", len(rest))
		pending = rest
	}
	return nil
}

// reconcile looks for records of idx created since `since`: it reads the
// module newest-modified first with If-Modified-Since and matches on the
// values sent.
func (c *CRM) reconcile(ctx context.Context, m connector.Module, ws []connector.Write, idx []int, since time.Time) (map[int]string, error) {
	known := map[string]bool{}
	if fs, err := c.cachedFields(ctx, m); err == nil {
		for _, f := range fs {
			known[f.Name] = true
		}
	}
	nameSet := map[string]bool{"Created_Time": true}
	for _, i := range idx {
		for k := range ws[i].Fields {
			if known[k] && !strings.HasPrefix(k, "$") {
				nameSet[k] = true
			}
		}
	}
	names := make([]string, 0, len(nameSet))
	for k := range nameSet {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > crmMaxFields {
		names = names[:crmMaxFields]
	}
	var cands []connector.Record
	h := http.Header{"If-Modified-Since": {crmTime(since)}}
	token := ""
	for page := 0; page < 10; page++ {
		q := url.Values{"fields": {strings.Join(names, ",")}, "sort_by": {"Created_Time"}, "sort_order": {"desc"},
			"per_page": {strconv.Itoa(crmPerPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var p crmPage
		ok, _, err := c.c.getJSON(ctx, request{path: joinPath(string(m)), query: q, header: h,
			action: "looking for records of an unconfirmed create in " + string(m)}, &p)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		stop := false
		for _, d := range p.Data {
			r := crmRecord(d)
			if !r.CreatedAt.IsZero() && r.CreatedAt.Before(since) {
				stop = true
				continue
			}
			cands = append(cands, r)
		}
		if stop || !p.Info.MoreRecords || p.Info.NextPageToken == "" {
			break
		}
		token = p.Info.NextPageToken
	}
	found := map[int]string{}
	var mt matcher
	skip := func(k string) bool { return !known[k] }
	if len(known) == 0 {
		skip = nil
	}
	for _, i := range idx {
		if id := mt.match(ws[i].Fields, cands, skip); id != "" {
			found[i] = id
		}
	}
	return found, nil
}

// crmResult reads one result element. replayed says an earlier attempt may
// have applied the write.
func crmResult(raw json.RawMessage, op connector.Op, replayed bool, first time.Time) connector.Result {
	var r crmWriteResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return connector.Result{Err: &connector.Error{Class: connector.Transient, Raw: truncate(raw), Message: "unreadable result: " + err.Error()}}
	}
	if !strings.EqualFold(r.Status, "success") && r.Code != "SUCCESS" {
		return connector.Result{Err: crmRecordError(raw)}
	}
	res := connector.Result{ID: str(r.Details.ID)}
	switch op {
	case connector.Create:
		res.Created = true
	case connector.Upsert:
		res.Created = r.Action == "insert"
		if !res.Created && replayed {
			// Our own earlier attempt may have inserted it: judge by when
			// the record was created.
			if ct := parseCRMTime(r.Details.CreatedTime); !ct.IsZero() && !ct.Before(first.Add(-reconcileSkew)) {
				res.Created = true
			}
		}
	}
	return res
}

func (c *CRM) updateBatch(ctx context.Context, m connector.Module, ws []connector.Write, idx []int, results []connector.Result) error {
	action := "updating " + string(m)
	data := make([]map[string]any, 0, len(idx))
	for _, i := range idx {
		f := copyFields(ws[i].Fields)
		f["id"] = ws[i].ID
		data = append(data, f)
	}
	resp, err := c.c.do(ctx, request{method: http.MethodPut, path: joinPath(string(m)), body: map[string]any{"data": data},
		idempotent: true, allow: crmBatchAllowed, action: action})
	if err != nil {
		return fail(results, idx, err)
	}
	elems, err := parseBatch(resp, len(idx), action)
	if err != nil {
		return fail(results, idx, err)
	}
	for k, i := range idx {
		results[i] = crmResult(elems[k], connector.Update, resp.replayed, time.Time{})
		if results[i].ID == "" && results[i].Err == nil {
			results[i].ID = ws[i].ID
		}
	}
	return nil
}

func (c *CRM) upsertBatch(ctx context.Context, m connector.Module, ws []connector.Write, idx []int, dup []string, results []connector.Result) error {
	action := "upserting " + string(m)
	data := make([]map[string]any, 0, len(idx))
	for _, i := range idx {
		data = append(data, ws[i].Fields)
	}
	first := c.clock.Now()
	resp, err := c.c.do(ctx, request{method: http.MethodPost, path: joinPath(string(m), "upsert"),
		body: map[string]any{"data": data, "duplicate_check_fields": dup}, idempotent: true, allow: crmBatchAllowed, action: action})
	if err != nil {
		return fail(results, idx, err)
	}
	elems, err := parseBatch(resp, len(idx), action)
	if err != nil {
		return fail(results, idx, err)
	}
	for k, i := range idx {
		results[i] = crmResult(elems[k], connector.Upsert, resp.replayed, first)
	}
	return nil
}

// Delete moves records to the recycle bin, 100 per request.
func (c *CRM) Delete(ctx context.Context, m connector.Module, ids []string) ([]connector.Result, error) {
	results := make([]connector.Result, len(ids))
	action := "deleting " + string(m)
	var reqErr error
	anyDone := false
	for start := 0; start < len(ids); start += crmMaxBatch {
		end := min(start+crmMaxBatch, len(ids))
		part := ids[start:end]
		idx := make([]int, 0, len(part))
		for i := start; i < end; i++ {
			idx = append(idx, i)
		}
		resp, err := c.c.do(ctx, request{method: http.MethodDelete, path: joinPath(string(m)),
			query: url.Values{"ids": {strings.Join(part, ",")}}, idempotent: true, allow: crmBatchAllowed, action: action})
		if err != nil {
			if reqErr == nil {
				reqErr = err
			}
			_ = fail(results, idx, err)
			continue
		}
		elems, err := parseBatch(resp, len(part), action)
		if err != nil {
			_ = fail(results, idx, err)
			continue
		}
		anyDone = true
		for k, i := range idx {
			res := crmResult(elems[k], connector.Update, resp.replayed, time.Time{})
			if e := asError(res.Err); e != nil && e.Reason == connector.ReasonNotFound && resp.replayed {
				res.Err = nil // our earlier attempt deleted it
			}
			if res.ID == "" {
				res.ID = ids[i]
			}
			results[i] = res
		}
	}
	return requestLevel(results, reqErr, anyDone, action)
}
