package desk

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// Service-level agreements. In Desk an SLA belongs to one department and a
// contract names one (associatedSLAId; GET /contracts/{id} also shows it as
// sla{id,name}, GET /accounts/{id}/contracts as slaName). The public OAS
// has no SLA endpoint of its own; GET /api/v1/slas and /slas/{id} are
// modelled here (see doc.go).

// standardSLA is one SLA every org starts with.
type standardSLA struct {
	name, description string
	isDefault         bool
	defaultDeptOnly   bool // only in the org's default department
}

// standardSLAs are set up in every enabled department (Gold and Silver
// only in the default one, Support); a disabled department gets one
// inactive SLA.
var standardSLAs = []standardSLA{
	{name: "Standard 24h", description: "First response within 24 hours, resolution within 5 business days.", isDefault: true},
	{name: "Gold 4h", description: "First response within 4 hours, around the clock.", defaultDeptOnly: true},
	{name: "Silver 8h", description: "First response within 8 business hours.", defaultDeptOnly: true},
}

// setupSLAs gives an org its standard SLAs and gives every contract that
// has none one of its department's SLAs (seed.RNG(seed, "desk.slas")). It
// runs after seeding, so the SLAs take the last ids and every id seeded
// before them stays what it was.
func (c *core) setupSLAs(o *org, s uint64) {
	o.departments.each(func(d *department) bool {
		if !d.enabled {
			c.putSLA(o, &sla{name: "Legacy 72h", description: "Retired support plan: first response within 72 hours.",
				deptID: d.id, isDefault: true, createdTime: d.createdTime})
			return true
		}
		for _, std := range standardSLAs {
			if std.defaultDeptOnly && !d.isDefault {
				continue
			}
			c.putSLA(o, &sla{name: std.name, description: std.description, deptID: d.id, active: true,
				isDefault: std.isDefault, createdTime: d.createdTime})
		}
		return true
	})
	rng := seed.RNG(s, "desk.slas")
	o.contracts.each(func(k *contract) bool {
		if k.slaID == 0 {
			if ids := o.activeSLAs(k.deptID); len(ids) > 0 {
				k.slaID = ids[rng.IntN(len(ids))]
			}
		}
		return true
	})
}

// addDepartmentSLA gives a new department its default SLA.
func (c *core) addDepartmentSLA(o *org, d *department) {
	std := standardSLAs[0]
	c.putSLA(o, &sla{name: std.name, description: std.description, deptID: d.id, active: true, isDefault: true, createdTime: c.now()})
}

func (c *core) putSLA(o *org, s *sla) {
	s.id = o.newID()
	if s.modifiedTime == 0 {
		s.modifiedTime = s.createdTime
	}
	o.slas.put(s.id, s)
}

// activeSLAs lists the ids of a department's active SLAs in creation order.
func (o *org) activeSLAs(deptID int64) []int64 {
	var out []int64
	o.slas.each(func(s *sla) bool {
		if s.deptID == deptID && s.active {
			out = append(out, s.id)
		}
		return true
	})
	return out
}

// defaultSLA is a department's default SLA if active, else its first
// active one, else 0.
func (o *org) defaultSLA(deptID int64) int64 {
	var first int64
	var def int64
	o.slas.each(func(s *sla) bool {
		if s.deptID != deptID || !s.active {
			return true
		}
		if first == 0 {
			first = s.id
		}
		if s.isDefault {
			def = s.id
			return false
		}
		return true
	})
	if def != 0 {
		return def
	}
	return first
}

func (c *core) slaJSON(o *org, s *sla) map[string]any {
	var dept any
	if d := o.departments.get(s.deptID); d != nil {
		dept = map[string]any{"id": idStr(d.id), "name": d.name}
	}
	return map[string]any{
		"id": idStr(s.id), "name": s.name, "description": nullStr(s.description), "departmentId": idStr(s.deptID),
		"department": dept, "isActive": s.active, "isDefault": s.isDefault,
		"createdTime": timeStr(s.createdTime), "modifiedTime": timeStr(s.modifiedTime),
	}
}

// slaRef is how a contract shows its SLA: {id, name}, or null.
func (o *org) slaRef(id int64) any {
	s := o.slas.get(id)
	if s == nil {
		return nil
	}
	return map[string]any{"id": idStr(s.id), "name": s.name}
}

// applyContractSLA settles a contract's SLA after the rest of a create or
// update body was applied: raw is the body's associatedSLAId (nil when
// absent). An explicit SLA must be an active SLA of the contract's
// department; null, or none on create, or a department change that leaves
// the old SLA behind, takes the department's default.
func (o *org) applyContractSLA(k *contract, raw json.RawMessage, create bool) *FieldError {
	switch {
	case raw != nil && string(raw) != "null" && string(raw) != `""`:
		id, ok := parseLookup(raw)
		s := o.slas.get(id)
		if !ok || s == nil || !s.active || s.deptID != k.deptID {
			fe := invalid("associatedSLAId")
			return &fe
		}
		k.slaID = id
	case raw != nil, create:
		k.slaID = o.defaultSLA(k.deptID)
	default:
		if s := o.slas.get(k.slaID); s == nil || s.deptID != k.deptID {
			k.slaID = o.defaultSLA(k.deptID)
		}
	}
	return nil
}

func (c *core) slaRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/slas", true, func(cl *call) (reply, *APIError) {
		q := cl.q
		if q.Get("from") == "0" { // Desk's SLA lists document from as starting at 0
			q.Set("from", "1")
		}
		p, e := parsePage(q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var dept int64
		if v := q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok {
				return fail(errBadParam("departmentId"))
			}
			dept = id
		}
		status := strings.ToUpper(q.Get("status"))
		if status != "" && status != "ACTIVE" && status != "INACTIVE" {
			return fail(errBadParam("status"))
		}
		var rows []*sla
		cl.org.slas.each(func(s *sla) bool {
			if (dept == 0 || s.deptID == dept) && (status == "" || s.active == (status == "ACTIVE")) {
				rows = append(rows, s)
			}
			return true
		})
		var out []map[string]any
		for _, s := range window(rows, p) {
			out = append(out, c.slaJSON(cl.org, s))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/slas/{slaId}", true, func(cl *call) (reply, *APIError) {
		id, e := cl.pathID("slaId")
		if e != nil {
			return fail(e)
		}
		s := cl.org.slas.get(id)
		if s == nil {
			return fail(errNotFound())
		}
		return okJSON(c.slaJSON(cl.org, s))
	})
}
