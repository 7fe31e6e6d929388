package crm

import (
	"fmt"
	"net/http"
	"strings"
)

// view is a custom view (list view): a saved filter the admin picks to
// choose which records sync (SPEC B3).
type view struct {
	id       string
	name     string
	system   bool
	dflt     bool
	module   *module
	raw      string // criteria in search syntax; "" = every record
	criteria *cond
}

// buildViews defines the views of every module: "All …" for each, and a
// few criteria views on Contacts and Accounts.
func buildViews(mods map[string]*module, order []string, fl Flavor) map[string][]*view {
	prefix := "5725767000000"
	if fl == Bigin {
		prefix = "2034020000000"
	}
	extra := map[string][][2]string{
		"Contacts": {
			{"Enterprise Contacts", "(Customer_Type:equals:Enterprise)"},
			{"Tokyo Contacts", "(Mailing_City:equals:東京)"},
			{"Key Customers", "((Customer_Type:in:Enterprise,Mid-Market)and(Email_Opt_Out:equals:false))"},
		},
		"Accounts": {
			{"Software Accounts", "(Industry:equals:Software)"},
			{"Tokyo Accounts", "(Billing_City:equals:東京)"},
		},
	}
	out := map[string][]*view{}
	n := 0
	for _, api := range order {
		m := mods[api]
		n++
		all := &view{id: fmt.Sprintf("%s%06d", prefix, 300000+n*10), name: "All " + m.plural, system: true, dflt: true, module: m}
		out[api] = append(out[api], all)
		for i, x := range extra[api] {
			crit, e := parseCriteria(m, x[1])
			if e != nil {
				panic(fmt.Sprintf("custom view %q: %v", x[0], e))
			}
			out[api] = append(out[api], &view{id: fmt.Sprintf("%s%06d", prefix, 300000+n*10+i+1), name: x[0],
				module: m, raw: x[1], criteria: crit})
		}
	}
	return out
}

// criteriaJSON renders criteria the way custom view metadata does.
func criteriaJSON(c *cond) any {
	if c == nil {
		return nil
	}
	if c.group != "" {
		var kids []any
		for _, k := range c.kids {
			kids = append(kids, criteriaJSON(k))
		}
		return map[string]any{"group_operator": strings.ToUpper(c.group), "group": kids}
	}
	comparator := map[string]string{"equals": "equal"}[c.op]
	if comparator == "" {
		comparator = c.op
	}
	fieldRef := map[string]any{"api_name": c.api}
	if c.f != nil {
		fieldRef["id"] = c.f.id
	}
	var value any
	if c.op == "in" || c.op == "between" {
		value = originals(c)
	} else {
		value = originals(c)[0]
	}
	return map[string]any{"comparator": comparator, "field": fieldRef, "value": value}
}

// originals returns a condition's values as written, picklist values as
// the picklist spells them.
func originals(c *cond) []string {
	out := make([]string, 0, len(c.raws))
	for _, v := range c.raws {
		orig := v
		if c.f != nil {
			for _, p := range c.f.picks {
				if strings.EqualFold(p, v) {
					orig = p
				}
			}
		}
		out = append(out, orig)
	}
	return out
}

func (v *view) json() map[string]any {
	display := v.name
	return map[string]any{
		"id": v.id, "name": v.name, "display_value": display, "system_name": strings.ReplaceAll(strings.ToUpper(v.name), " ", ""),
		"system_defined": v.system, "default": v.dflt, "category": "public_views", "favorite": nil,
		"sort_by": nil, "sort_order": nil, "module": map[string]any{"api_name": v.module.api, "id": v.module.id},
		"criteria": criteriaJSON(v.criteria),
	}
}

// getViews serves GET /settings/custom_views?module=X and
// GET /settings/custom_views/{id}?module=X.
func (s *Server) getViews(c *call, id string) {
	m, e := s.moduleParam(c)
	if e != nil {
		c.fail(e)
		return
	}
	var list []any
	def := ""
	for _, v := range s.views[m.api] {
		if v.dflt {
			def = v.id
		}
		if id == "" || v.id == id {
			list = append(list, v.json())
		}
	}
	if id != "" && len(list) == 0 {
		c.fail(invalidID())
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"custom_views": list,
		"info": map[string]any{"per_page": 200, "count": len(list), "page": 1, "more_records": false, "default": def}})
}

// moduleParam reads the module query parameter of the settings APIs.
func (s *Server) moduleParam(c *call) (*module, *Error) {
	name := c.q.Get("module")
	if name == "" {
		return nil, missingParam("module")
	}
	api, ok := s.lower[strings.ToLower(name)]
	if !ok {
		return nil, errf(400, "INVALID_MODULE", "the module name given seems to be invalid", map[string]any{})
	}
	return s.mods[api], nil
}
