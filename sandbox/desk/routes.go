package desk

import (
	"net/http"
	"net/url"
	"strings"
)

// routes builds the API. Patterns are method-specific; anything else is
// answered as Desk answers an unknown URL.
func (c *core) routes() http.Handler {
	mux := http.NewServeMux()
	c.adminRoutes(mux)
	c.contactRoutes(mux)
	c.accountRoutes(mux)
	c.productRoutes(mux)
	c.ticketRoutes(mux)
	c.threadRoutes(mux)
	c.relatedRoutes(mux)
	c.slaRoutes(mux)
	c.kbRoutes(mux)
	c.webhookRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := c.registry.CheckRequest(r, c.dc); err != nil {
			if strings.TrimSpace(r.Header.Get("Authorization")) == "" {
				writeError(w, errUnauthorized())
				return
			}
			writeError(w, errInvalidOAuth())
			return
		}
		writeError(w, errNotFound())
	})
	return mux
}

// can checks a permission of the caller's profile (SPEC C3: light agents
// may read tickets but not create them or reply).
func (o *org) can(agentID int64, group, action string) bool {
	a := o.agents.get(agentID)
	if a == nil {
		return false
	}
	p := o.profiles.get(a.profileID)
	if p == nil {
		return false
	}
	g, _ := profilePermissions(p)[group].(map[string]any)
	allowed, _ := g[action].(bool)
	return allowed
}

// textFilter is one search criterion on a text field.
type textFilter struct {
	value string
	get   func(any) string
}

// recordSearch is a parsed search query over contacts, accounts or
// products: text criteria, time ranges and _all.
type recordSearch struct {
	texts    []textFilter
	email    string // an exact email criterion, answered from the index
	all      string
	created  timeRange
	modified timeRange
	id       int64
}

func parseRecordSearch(o *org, module string, q url.Values, getters map[string]func(any) string) (recordSearch, *APIError) {
	var rs recordSearch
	var e *APIError
	for k, vs := range q {
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		switch k {
		case "from", "limit", "sortBy", "orgId", "include":
		case "_all":
			rs.all = v
		case "createdTimeRange":
			if rs.created, e = parseRange(q, k); e != nil {
				return rs, e
			}
		case "modifiedTimeRange":
			if rs.modified, e = parseRange(q, k); e != nil {
				return rs, e
			}
		case "id":
			id, ok := parseID(v)
			if !ok {
				return rs, errBadParam("id")
			}
			rs.id = id
		default:
			if g, found := getters[k]; found {
				rs.texts = append(rs.texts, textFilter{value: v, get: g})
				if k == "email" && !strings.Contains(v, "*") {
					rs.email = v
				}
				continue
			}
			if strings.HasPrefix(k, "cf_") && o.fieldByName(module, k, true) != nil {
				f := o.fieldByName(module, k, true)
				name := k
				rs.texts = append(rs.texts, textFilter{value: v, get: func(rec any) string {
					cf := cfOf(rec)
					s, _ := renderValue(f, cf[name]).(string)
					if b, isBool := cf[name].(bool); isBool {
						if b {
							return "true"
						}
						return "false"
					}
					return s
				}})
				continue
			}
			return rs, errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	return rs, nil
}

func cfOf(rec any) map[string]any {
	switch r := rec.(type) {
	case *contact:
		return r.cf
	case *account:
		return r.cf
	case *product:
		return r.cf
	}
	return nil
}

// match says whether a record meets the search. all gives the fields _all
// looks in; it is called only when the search has _all, since a walk by
// modified time runs match over every record of the module per page.
func (rs *recordSearch) match(rec any, id, created, modified int64, all func() []string) bool {
	if rs.id != 0 && rs.id != id {
		return false
	}
	if !rs.created.contains(created) || !rs.modified.contains(modified) {
		return false
	}
	for _, t := range rs.texts {
		if !matchText(t.value, t.get(rec)) {
			return false
		}
	}
	return rs.all == "" || containsFold(rs.all, all()...)
}
