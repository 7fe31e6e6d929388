package crm

import (
	"net/http"
	"strconv"
	"strings"
)

// maxBatch is the most records one insert, update, upsert or delete takes.
const maxBatch = 100

// dataArray reads the "data" array of a write body.
func dataArray(body map[string]any) ([]any, *Error) {
	raw, ok := body["data"]
	if !ok || raw == nil {
		return nil, missingParam("data")
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, errf(400, "INVALID_DATA", "data should be a JSON array", map[string]any{"api_name": "data"})
	}
	if len(items) == 0 {
		return nil, missingParam("data")
	}
	if len(items) > maxBatch {
		return nil, errf(400, "LIMIT_EXCEEDED", "the number of records exceeds the limit of 100",
			map[string]any{"api_name": "data", "limit": maxBatch})
	}
	return items, nil
}

func notObject(i int) *Error {
	return errf(400, "INVALID_DATA", "invalid data", map[string]any{
		"expected_data_type": "jsonobject", "json_path": "$.data[" + strconv.Itoa(i) + "]"})
}

// written is the success element of a write result.
func (o *Org) written(r *record, message string) map[string]any {
	by := func(idx int32) map[string]any {
		u := o.users[idx]
		return map[string]any{"name": u.name(), "id": u.id}
	}
	return map[string]any{"code": "SUCCESS", "message": message, "status": "success", "details": map[string]any{
		"Modified_Time": o.s.renderTime(r.modified), "Modified_By": by(r.modifiedBy),
		"Created_Time": o.s.renderTime(r.created), "id": r.id, "Created_By": by(r.createdBy),
	}}
}

// batchStatus is the HTTP status of a per-record answer: allOK when every
// record succeeded, 207 when results are mixed, 400 when all failed.
func batchStatus(ok, failed, allOK int) int {
	switch {
	case failed == 0:
		return allOK
	case ok == 0:
		return http.StatusBadRequest
	}
	return http.StatusMultiStatus
}

// insert serves POST /{module} and POST /{module}/{id}/Notes.
func (s *Server) insert(c *call, m *module, parent *parentRef) {
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	items, e := dataArray(body)
	if e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	if parent != nil && c.o.stores[parent.module.api].byID[parent.id] == nil {
		s.mu.Unlock()
		c.fail(invalidID())
		return
	}
	w := c.o.newWriter(c.u, c.base())
	results := make([]any, len(items))
	ok, failed := 0, 0
	for i, it := range items {
		in, isObj := it.(map[string]any)
		if !isObj {
			results[i], failed = notObject(i).body(), failed+1
			continue
		}
		r, e := c.o.insert(w, m, in, i, parent)
		if e != nil {
			results[i], failed = e.body(), failed+1
			continue
		}
		results[i], ok = c.o.written(r, "record added"), ok+1
	}
	c.o.commit(w)
	s.mu.Unlock()
	s.flush()
	writeJSON(c.w, batchStatus(ok, failed, http.StatusCreated), map[string]any{"data": results})
}

// update serves PUT /{module} (ids in the records) and PUT /{module}/{id}.
func (s *Server) update(c *call, m *module, pathID string) {
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	items, e := dataArray(body)
	if e != nil {
		c.fail(e)
		return
	}
	if pathID != "" && len(items) > 1 {
		c.fail(errf(400, "LIMIT_EXCEEDED", "only one record can be updated by id", map[string]any{"api_name": "data", "limit": 1}))
		return
	}
	s.mu.Lock()
	w := c.o.newWriter(c.u, c.base())
	results := make([]any, len(items))
	ok, failed := 0, 0
	for i, it := range items {
		in, isObj := it.(map[string]any)
		if !isObj {
			results[i], failed = notObject(i).body(), failed+1
			continue
		}
		id := pathID
		if id == "" {
			id = refID(in["id"])
		}
		if id == "" {
			results[i], failed = errf(400, "MANDATORY_NOT_FOUND", "required field not found",
				map[string]any{"api_name": "id", "json_path": jsonPath(i, "id")}).body(), failed+1
			continue
		}
		r := c.o.stores[m.api].byID[id]
		if r == nil {
			results[i], failed = errf(400, "INVALID_DATA", "the id given seems to be invalid",
				map[string]any{"api_name": "id", "json_path": jsonPath(i, "id")}).body(), failed+1
			continue
		}
		if e := c.o.update(w, r, in, i); e != nil {
			results[i], failed = e.body(), failed+1
			continue
		}
		results[i], ok = c.o.written(r, "record updated"), ok+1
	}
	c.o.commit(w)
	s.mu.Unlock()
	s.flush()
	writeJSON(c.w, batchStatus(ok, failed, http.StatusOK), map[string]any{"data": results})
}

// upsert serves POST /{module}/upsert: each record updates the first record
// matching its duplicate-check fields, in the order given, or is inserted.
func (s *Server) upsert(c *call, m *module) {
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	items, e := dataArray(body)
	if e != nil {
		c.fail(e)
		return
	}
	var checks []*field
	if raw, given := body["duplicate_check_fields"]; given && raw != nil {
		list, isList := raw.([]any)
		if !isList {
			c.fail(errf(400, "INVALID_DATA", "duplicate_check_fields should be a JSON array",
				map[string]any{"api_name": "duplicate_check_fields"}))
			return
		}
		for i, x := range list {
			name, _ := x.(string)
			f := m.field(name)
			if f == nil || !indexed(m, f) {
				c.fail(errf(400, "INVALID_DATA", "the field given cannot be used to check duplicates",
					map[string]any{"api_name": "duplicate_check_fields", "json_path": "$.duplicate_check_fields[" + strconv.Itoa(i) + "]"}))
				return
			}
			checks = append(checks, f)
		}
	} else {
		if f := m.field(m.dupField); f != nil {
			checks = append(checks, f)
		}
		for _, f := range m.fields {
			if f.unique && f.api != m.dupField {
				checks = append(checks, f)
			}
		}
	}
	s.mu.Lock()
	w := c.o.newWriter(c.u, c.base())
	st := c.o.stores[m.api]
	results := make([]any, len(items))
	ok, failed, inserted := 0, 0, 0
	for i, it := range items {
		in, isObj := it.(map[string]any)
		if !isObj {
			results[i], failed = notObject(i).body(), failed+1
			continue
		}
		var match *record
		var by string
		for _, f := range checks {
			v, _ := in[f.api].(string)
			if strings.TrimSpace(v) == "" {
				continue
			}
			if rs := st.find(f.api, v); len(rs) > 0 {
				match, by = rs[0], f.api
				break
			}
		}
		if match != nil {
			if e := c.o.update(w, match, in, i); e != nil {
				results[i], failed = e.body(), failed+1
				continue
			}
			res := c.o.written(match, "record updated")
			res["action"], res["duplicate_field"] = "update", by
			results[i], ok = res, ok+1
			continue
		}
		r, e := c.o.insert(w, m, in, i, nil)
		if e != nil {
			results[i], failed = e.body(), failed+1
			continue
		}
		res := c.o.written(r, "record added")
		res["action"], res["duplicate_field"] = "insert", nil
		results[i], ok, inserted = res, ok+1, inserted+1
	}
	c.o.commit(w)
	s.mu.Unlock()
	s.flush()
	allOK := http.StatusOK
	if inserted > 0 {
		allOK = http.StatusCreated
	}
	writeJSON(c.w, batchStatus(ok, failed, allOK), map[string]any{"data": results})
}

// deleteMany serves DELETE /{module}?ids=a,b,c.
func (s *Server) deleteMany(c *call, m *module) {
	raw := c.q.Get("ids")
	if strings.TrimSpace(raw) == "" {
		c.fail(missingParam("ids"))
		return
	}
	var ids []string
	for _, id := range strings.Split(raw, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > maxBatch {
		c.fail(errf(400, "LIMIT_EXCEEDED", "the number of ids exceeds the limit of 100",
			map[string]any{"param_name": "ids", "limit": maxBatch}))
		return
	}
	s.deleteIDs(c, m, ids)
}

// deleteOne serves DELETE /{module}/{id}.
func (s *Server) deleteOne(c *call, m *module, id string) { s.deleteIDs(c, m, []string{id}) }

func (s *Server) deleteIDs(c *call, m *module, ids []string) {
	s.mu.Lock()
	w := c.o.newWriter(c.u, c.base())
	results := make([]any, len(ids))
	ok, failed := 0, 0
	for i, id := range ids {
		r := c.o.stores[m.api].byID[id]
		if r == nil {
			results[i], failed = map[string]any{"code": "INVALID_DATA", "details": map[string]any{"id": id},
				"message": "the id given seems to be invalid", "status": "error"}, failed+1
			continue
		}
		c.o.remove(w, r)
		results[i], ok = map[string]any{"code": "SUCCESS", "details": map[string]any{"id": id},
			"message": "record deleted", "status": "success"}, ok+1
	}
	c.o.commit(w)
	s.mu.Unlock()
	s.flush()
	writeJSON(c.w, batchStatus(ok, failed, http.StatusOK), map[string]any{"data": results})
}
