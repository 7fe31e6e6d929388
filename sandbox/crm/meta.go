package crm

import (
	"net/http"
	"strings"
)

// getOrg serves GET /org. With X-CRM-ORG it answers that org; without, the
// "org" array lists every org the token's user belongs to, the default
// first, so a client reading org[0] gets the default as from the real API.
func (s *Server) getOrg(c *call) {
	var orgs []*Org
	if firstHeader(c.r, "X-CRM-ORG", "X-CRMORG") != "" {
		orgs = []*Org{c.o}
	} else {
		s.mu.Lock()
		orgs = append(orgs, c.o)
		for _, o := range s.orgs {
			if o != c.o && o.admits(c.g.UserEmail) {
				orgs = append(orgs, o)
			}
		}
		s.mu.Unlock()
	}
	var list []any
	s.mu.Lock()
	for i, o := range orgs {
		primary := o.users[0]
		list = append(list, map[string]any{
			"id": o.id, "zgid": o.zgid, "company_name": o.name, "domain_name": "org" + o.zgid,
			"alias": nil, "primary_email": primary.email, "primary_zuid": primary.zuid,
			"time_zone": s.o.Offset.String(), "currency": "US Dollar", "currency_symbol": "$",
			"iso_code": "USD", "currency_locale": "en_US", "country_code": "US", "mc_status": false,
			"type": "production", "default": i == 0 && firstHeader(c.r, "X-CRM-ORG", "X-CRMORG") == "",
			"license_details": map[string]any{"paid": true, "paid_type": "enterprise", "users_license_purchased": 10},
		})
	}
	s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"org": list})
}

// getUsers serves GET /users?type=CurrentUser|AllUsers|ActiveUsers|AdminUsers
// and GET /users/{id}.
func (s *Server) getUsers(c *call, id string) {
	typ := c.q.Get("type")
	if typ == "" {
		typ = "AllUsers"
	}
	switch typ {
	case "AllUsers", "ActiveUsers", "AdminUsers", "CurrentUser", "ActiveConfirmedUsers":
	default:
		e := invalidParam("type", "invalid value for type")
		e.Details["supported_values"] = []string{"AllUsers", "ActiveUsers", "AdminUsers", "CurrentUser", "ActiveConfirmedUsers"}
		c.fail(e)
		return
	}
	s.mu.Lock()
	var list []any
	for _, u := range c.o.users {
		switch {
		case id != "" && u.id != id:
			continue
		case id == "" && typ == "CurrentUser" && u != c.u:
			continue
		case id == "" && typ == "AdminUsers" && u.profile != "Administrator":
			continue
		}
		list = append(list, map[string]any{
			"id": u.id, "zuid": u.zuid, "first_name": nilIfEmpty(u.first), "last_name": u.last,
			"full_name": u.name(), "name": u.name(), "email": u.email, "status": "active", "confirm": true,
			"role":      map[string]any{"name": u.role, "id": roleID(c.o, u.role)},
			"profile":   map[string]any{"name": u.profile, "id": roleID(c.o, u.profile)},
			"time_zone": s.o.Offset.String(), "locale": "en_US", "country": "US",
		})
	}
	s.mu.Unlock()
	if id != "" && len(list) == 0 {
		c.fail(invalidID())
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"users": list,
		"info": map[string]any{"per_page": 200, "count": len(list), "page": 1, "more_records": false}})
}

func roleID(o *Org, name string) string {
	n := uint64(0)
	for _, r := range name {
		n = n*31 + uint64(r)
	}
	return formatID(o.idBase + 100000 + n%90000)
}

// getModules serves GET /settings/modules[/{api_name}].
func (s *Server) getModules(c *call, name string) {
	var list []any
	for _, api := range s.modList {
		m := s.mods[api]
		if name != "" && !strings.EqualFold(name, api) {
			continue
		}
		list = append(list, map[string]any{
			"id": m.id, "api_name": m.api, "module_name": m.api, "singular_label": m.singular,
			"plural_label": m.plural, "api_supported": true, "creatable": true, "editable": true,
			"deletable": true, "viewable": true, "generated_type": "default", "visible": true,
			"status": "visible", "global_search_supported": m.api != "Notes",
		})
	}
	if len(list) == 0 {
		c.fail(errf(400, "INVALID_MODULE", "the module name given seems to be invalid", map[string]any{}))
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"modules": list})
}

// getFields serves GET /settings/fields?module=X and /settings/fields/{id}.
func (s *Server) getFields(c *call, id string) {
	m, e := s.moduleParam(c)
	if e != nil {
		c.fail(e)
		return
	}
	var list []any
	for _, f := range m.fields {
		if f.hidden || (id != "" && f.id != id) {
			continue
		}
		list = append(list, fieldJSON(f))
	}
	if len(list) == 0 {
		c.fail(invalidID())
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"fields": list})
}

func fieldJSON(f *field) map[string]any {
	picks := []any{}
	for _, p := range f.picks {
		picks = append(picks, map[string]any{"display_value": p, "actual_value": p})
	}
	lookup := map[string]any{}
	switch {
	case f.typ == typeLookup:
		lookup["module"] = map[string]any{"api_name": f.lookup}
	case f.typ == typeMultiLook:
		var mods []any
		for _, m := range f.lookups {
			mods = append(mods, map[string]any{"api_name": m})
		}
		lookup["module"] = nil
		lookup["modules"] = mods
	}
	jsonType := map[string]string{typeInteger: "integer", typeDouble: "double", typeCurrency: "double",
		typeBoolean: "boolean", typeLookup: "jsonobject", typeOwner: "jsonobject", typeMultiLook: "jsonobject"}[f.typ]
	if jsonType == "" {
		jsonType = "string"
	}
	// Zoho renders unique as an object: {} for an ordinary field and the
	// case-sensitivity setting for a unique one (crm-oas fields.json; the
	// official SDK types it as a Unique model and drops a bare boolean).
	unique := map[string]any{}
	if f.unique {
		unique["casesensitive"] = "false"
	}
	return map[string]any{
		"id": f.id, "api_name": f.api, "field_label": f.label, "display_label": f.label,
		"data_type": f.typ, "json_type": jsonType, "system_mandatory": f.mandatory, "custom_field": f.custom,
		"read_only": f.readOnly, "length": f.length, "unique": unique, "pick_list_values": picks,
		"lookup": lookup, "visible": true,
	}
}
