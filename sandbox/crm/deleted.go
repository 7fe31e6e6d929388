package crm

import (
	"net/http"
	"sort"
)

// How long the deleted-records feed lists entries.
const (
	recycleDays   = 60  // a record stays in the recycle bin, then is purged
	permanentDays = 120 // a purged record stays listed as permanent
)

// deletedEntry is a deleted record as the /deleted feed shows it.
type deletedEntry struct {
	id          string
	name        string
	createdBy   int32
	deletedBy   int32
	deletedAt   int64 // unix seconds
	permanentAt int64 // 0 while in the recycle bin
}

// state returns the entry's type and deleted_time at now, and whether it is
// still listed: the recycle bin purges itself after 60 days.
func (d *deletedEntry) state(now int64) (typ string, at int64, listed bool) {
	perm := d.permanentAt
	if perm == 0 && now >= d.deletedAt+recycleDays*86400 {
		perm = d.deletedAt + recycleDays*86400
	}
	if perm == 0 {
		return "recycle", d.deletedAt, true
	}
	return "permanent", perm, now < perm+permanentDays*86400
}

// EmptyRecycleBin permanently deletes what the recycle bin holds for module
// ("" = every module), as an admin emptying it in the UI does: the entries
// turn "permanent" and lose their names and users.
func (o *Org) EmptyRecycleBin(module string) {
	now := o.s.clock.Now().Unix()
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	for mod, list := range o.deleted {
		if module != "" && mod != module {
			continue
		}
		for _, d := range list {
			if typ, _, _ := d.state(now); typ == "recycle" {
				d.permanentAt = now
			}
		}
	}
}

// deletedFeed serves GET /{module}/deleted?type=all|recycle|permanent.
func (s *Server) deletedFeed(c *call, m *module) {
	typ := c.q.Get("type")
	if typ == "" {
		typ = "all"
	}
	if typ != "all" && typ != "recycle" && typ != "permanent" {
		e := invalidParam("type", "invalid value for type")
		e.Details["supported_values"] = []string{"all", "recycle", "permanent"}
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
	since, hasIMS, e := ifModifiedSince(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	now := s.clock.Now().Unix()
	type row struct {
		d   *deletedEntry
		typ string
		at  int64
	}
	s.mu.Lock()
	var rows []row
	for _, d := range c.o.deleted[m.api] {
		t, at, listed := d.state(now)
		if !listed || (typ != "all" && t != typ) || (hasIMS && at <= since) {
			continue
		}
		rows = append(rows, row{d, t, at})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].at != rows[j].at {
			return rows[i].at > rows[j].at
		}
		return rows[i].d.id > rows[j].d.id
	})
	start := (page - 1) * perPage
	var data []any
	for i := start; i < len(rows) && i < start+perPage; i++ {
		r := rows[i]
		item := map[string]any{"id": r.d.id, "type": r.typ, "deleted_time": s.renderTime(r.at),
			"display_name": nil, "deleted_by": nil, "created_by": nil}
		if r.typ == "recycle" {
			item["display_name"] = nilIfEmpty(r.d.name)
			item["deleted_by"] = c.o.userRef(r.d.deletedBy)
			item["created_by"] = c.o.userRef(r.d.createdBy)
		}
		data = append(data, item)
	}
	s.mu.Unlock()
	switch {
	case len(rows) == 0 && hasIMS:
		c.w.WriteHeader(http.StatusNotModified)
	case len(data) == 0:
		c.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(c.w, http.StatusOK, map[string]any{"data": data, "info": map[string]any{
			"per_page": perPage, "count": len(data), "page": page, "more_records": start+perPage < len(rows)}})
	}
}

func (o *Org) userRef(idx int32) map[string]any {
	u := o.users[idx]
	return map[string]any{"name": u.name(), "id": u.id}
}
