package desk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// addOrg creates an org with Desk's standard setup: profiles, roles,
// departments (one disabled), agents (one per profile kind plus a
// disabled one), from-addresses, ticket statuses and the field layout.
// The caller holds the lock, or is New.
func (c *core) addOrg(spec OrgSpec) *org {
	idx := uint64(len(c.orgs))
	o := newOrg()
	o.id = int64(600000000 + (c.seed%1000)*100000 + idx*1111)
	o.prefix = int64(1000 + (c.seed*37+idx*1117)%9000)
	o.portal = strings.ToLower(spec.PortalName)
	if o.portal == "" {
		o.portal = fmt.Sprintf("portal%d", idx+1)
	}
	o.company = spec.CompanyName
	if o.company == "" {
		o.company = o.portal
	}
	o.edition = strings.ToUpper(spec.Edition)
	if o.edition == "" {
		o.edition = "ENTERPRISE"
	}
	o.timeZone = spec.TimeZone
	if o.timeZone == "" {
		o.timeZone = "UTC"
	}
	o.country = "United States"
	o.open = spec.Open
	now := c.now()
	domain := o.portal + ".example"

	profiles := []profile{
		{name: "Support Administrator", description: "Set the privileges for support administrators.", typ: "Administrator", isDefault: true, visible: true},
		{name: "Agent", description: "Set the privileges for standard agents", typ: "Standard", isDefault: true, visible: true},
		{name: "Light Agent", description: "Set the privilege for light agents", typ: "Light", isDefault: true, visible: true},
		{name: "Support Manager", description: "Set the privileges for managerial users.", typ: "Custom", visible: true},
		{name: "Newbie Agent", description: "Set the privileges for new agents.", typ: "Custom", visible: true},
		{name: "Help Center", description: "This profile will have the permissions of End Users", typ: "Portal", isDefault: true},
	}
	var profileIDs []int64
	for i := range profiles {
		p := profiles[i]
		p.id = o.newID()
		o.profiles.put(p.id, &p)
		profileIDs = append(profileIDs, p.id)
	}
	ceo := &role{id: o.newID(), name: "CEO", description: "Agent belongs to this role can access all other user's data.", isDefault: true}
	manager := &role{id: o.newID(), name: "Manager", description: "Manages the support team.", reportsTo: ceo.id}
	associate := &role{id: o.newID(), name: "Customer Care Associate", description: "Can work on own tickets and can not re-assign tickets.", reportsTo: manager.id}
	for _, r := range []*role{ceo, manager, associate} {
		o.roles.put(r.id, r)
	}

	depts := []struct {
		name, desc, from string
		enabled          bool
	}{
		{"Support", "Product support for every customer.", "support", true},
		{"Sales", "Pre-sales questions, quotes and renewals.", "sales", true},
		{"サポート", "日本のお客様向けサポート窓口", "support-jp", true},
		{"Legacy", "Retired products; kept for history.", "legacy", false},
	}
	var deptIDs []int64
	for i, d := range depts {
		dep := &department{id: o.newID(), name: d.name, description: d.desc, enabled: d.enabled, isDefault: i == 0,
			chatStatus: "AVAILABLE", createdTime: now}
		if !d.enabled {
			dep.chatStatus = "DISABLED"
		}
		o.departments.put(dep.id, dep)
		deptIDs = append(deptIDs, dep.id)
		addr := &replyAddress{id: o.newID(), address: d.from + "@" + domain, displayName: o.company + " " + d.name,
			deptID: dep.id, verified: true, isDefault: true}
		o.replyAddrs.put(addr.id, addr)
	}
	help := &replyAddress{id: o.newID(), address: "help@" + domain, displayName: o.company + " Help", deptID: deptIDs[0], verified: true}
	o.replyAddrs.put(help.id, help)
	tier2 := &team{id: o.newID(), name: "Tier 2", deptID: deptIDs[0]}
	o.teams.put(tier2.id, tier2)

	admin := spec.Admin
	if admin == "" {
		admin = "admin@" + domain
	}
	agents := []agent{
		{firstName: "Jade", lastName: "Tywin", email: admin, profileID: profileIDs[0], roleID: ceo.id, deptIDs: deptIDs[:3]},
		{firstName: "Carol", lastName: "Marsh", email: "carol.marsh@" + domain, profileID: profileIDs[1], roleID: manager.id, deptIDs: deptIDs[:2]},
		{firstName: "健", lastName: "佐藤", email: "ken.sato@" + domain, profileID: profileIDs[1], roleID: associate.id, deptIDs: []int64{deptIDs[0], deptIDs[2]}, langCode: "ja_JP", timeZone: "Asia/Tokyo"},
		{firstName: "Liam", lastName: "Novak", email: "liam.novak@" + domain, profileID: profileIDs[2], roleID: associate.id, deptIDs: deptIDs[:1]},
		{firstName: "Noah", lastName: "Reyes", email: "noah.reyes@" + domain, profileID: profileIDs[3], roleID: manager.id, deptIDs: deptIDs[:3]},
		{firstName: "Mia", lastName: "Park", email: "mia.park@" + domain, profileID: profileIDs[4], roleID: associate.id, deptIDs: deptIDs[:1], status: "DISABLED"},
	}
	for i := range agents {
		a := agents[i]
		a.id = o.newID()
		a.zuid = int64(55000000 + idx*1000 + uint64(i))
		a.confirmed = true
		a.createdTime = now
		if a.status == "" {
			a.status = "ACTIVE"
		}
		if a.langCode == "" {
			a.langCode, a.timeZone = "en_US", o.timeZone
		}
		a.deptIDs = append([]int64(nil), a.deptIDs...)
		o.agents.put(a.id, &a)
		for _, d := range a.deptIDs {
			dep := o.departments.get(d)
			dep.agentIDs = append(dep.agentIDs, a.id)
		}
		if i == 0 {
			o.owner = a.id
		}
	}
	o.departments.each(func(d *department) bool {
		d.creatorID = o.owner
		return true
	})

	o.statuses = []ticketStatus{{"Open", "Open"}, {"In Progress", "Open"}, {"On Hold", "On Hold"},
		{"Waiting on Customer", "On Hold"}, {"Closed", "Closed"}, {"Resolved", "Closed"}}
	std, custom := standardFields(), seedCustomFields()
	for _, module := range []string{modContacts, modAccounts, modProducts, modTickets} {
		for _, f := range append(std[module], custom[module]...) {
			f.id = o.newID()
			o.fields[module] = append(o.fields[module], f)
		}
	}
	c.orgs = append(c.orgs, o)
	return o
}

func (c *core) orgJSON(o *org, isDefault, isAdmin bool) map[string]any {
	admin := o.agents.get(o.owner)
	return map[string]any{
		"id": strconv.FormatInt(o.id, 10), "portalName": o.portal, "companyName": o.company, "edition": o.edition,
		"timeZone": o.timeZone, "isDefault": strconv.FormatBool(isDefault), "isAdminInOrg": isAdmin,
		"portalURL":    fmt.Sprintf("https://%s/support/%s/ShowHomePage.do", c.host, o.portal),
		"currencyCode": "USD", "currencySymbol": "$", "currencyLocale": "US", "country": o.country,
		"alias": o.company, "description": nil, "isSandboxPortal": "false", "isPayloadEncryptionEnabled": "false",
		"primaryContact": admin.email, "website": "www." + o.portal + ".example", "employeeCount": strconv.Itoa(o.agents.len()),
		"logoURL": nil, "faviconURL": nil, "phoneNumber": nil, "mobile": nil, "fax": nil,
		"street": nil, "city": nil, "state": nil, "zip": nil,
	}
}

func (o *org) isAdminEmail(email string) bool {
	a := o.agentByEmail(email)
	if a == nil {
		return o.open // an open org's stranger acts as the owner
	}
	p := o.profiles.get(a.profileID)
	return p != nil && p.typ == "Administrator"
}

func (c *core) departmentJSON(o *org, d *department) map[string]any {
	return map[string]any{
		"id": idStr(d.id), "name": d.name, "description": nullStr(d.description), "isEnabled": d.enabled,
		"isDefault": d.isDefault, "chatStatus": d.chatStatus, "hasLogo": false, "isVisibleInCustomerPortal": d.enabled,
		"nameInCustomerPortal": d.name, "isAssignToTeamEnabled": false, "creatorId": idStr(d.creatorID),
		"createdTime": timeStr(d.createdTime), "associatedAgentIds": idList(d.agentIDs),
	}
}

func (o *org) permissionType(a *agent) string {
	p := o.profiles.get(a.profileID)
	switch {
	case p == nil:
		return "Custom"
	case p.typ == "Administrator":
		return "Admin"
	case p.typ == "Light":
		return "Light"
	case p.typ == "Standard":
		return "AgentPublic"
	}
	return "Custom"
}

func (c *core) agentJSON(o *org, a *agent, inc map[string]bool) map[string]any {
	status := a.status
	if a.deleted {
		status = "DELETED"
	}
	out := map[string]any{
		"id": idStr(a.id), "zuid": strconv.FormatInt(a.zuid, 10), "name": a.name(), "firstName": a.firstName,
		"lastName": a.lastName, "emailId": a.email, "phone": a.phone, "mobile": "", "extn": "", "langCode": a.langCode,
		"countryCode": "en_US", "timeZone": a.timeZone, "roleId": idStr(a.roleID), "profileId": idStr(a.profileID),
		"rolePermissionType": o.permissionType(a), "status": status, "isConfirmed": a.confirmed,
		"associatedDepartmentIds": idList(a.deptIDs), "associatedChatDepartmentIds": []string{},
		"photoURL": nil, "aboutInfo": "", "channelExpert": []string{}, "isZiaAgent": false,
	}
	if inc["profile"] {
		if p := o.profiles.get(a.profileID); p != nil {
			out["profile"] = map[string]any{"id": idStr(p.id), "name": p.name, "type": p.typ}
		}
	}
	if inc["role"] {
		if r := o.roles.get(a.roleID); r != nil {
			out["role"] = map[string]any{"id": idStr(r.id), "name": r.name}
		}
	}
	return out
}

// agentRef is the short agent object Desk nests in other records.
func (o *org) agentRef(id int64) any {
	a := o.agents.get(id)
	if a == nil {
		return nil
	}
	status := a.status
	if a.deleted {
		status = "DELETED"
	}
	return map[string]any{"id": idStr(a.id), "name": a.name(), "firstName": a.firstName, "lastName": a.lastName,
		"email": a.email, "photoURL": nil, "status": status, "zuid": strconv.FormatInt(a.zuid, 10)}
}

// profilePermissions sketches the permission groups that matter to the
// gateway: CRM panel access (SPEC C1) and ticket creation and reply (C3).
func profilePermissions(p *profile) map[string]any {
	admin := p.typ == "Administrator"
	light := p.typ == "Light" || p.typ == "Portal"
	restricted := p.name == "Newbie Agent"
	crm := func(prefix string) map[string]any {
		return map[string]any{
			prefix + "Info": !light || p.typ == "Light", prefix + "Notes": !light || p.typ == "Light",
			prefix + "Potentials":     !light && !restricted,
			prefix + "ActivityTasks":  !light || p.typ == "Light",
			prefix + "ActivityCalls":  !light || p.typ == "Light",
			prefix + "ActivityEvents": !light || p.typ == "Light",
		}
	}
	crmInteg := map[string]any{}
	for k, v := range crm("crmContacts") {
		crmInteg[k] = v
	}
	for k, v := range crm("crmAccounts") {
		crmInteg[k] = v
	}
	crud := func(all bool) map[string]any {
		return map[string]any{"view": true, "create": all, "edit": all, "delete": all && (admin || p.name == "Support Manager"), "import": admin, "export": admin}
	}
	return map[string]any{
		"crmInteg": crmInteg,
		"tickets": map[string]any{"view": true, "create": !light, "edit": !light, "delete": admin || p.name == "Support Manager",
			"mailSend": !light, "closeTicket": !light, "mergeTickets": !light, "changeOwner": !light && !restricted,
			"export": admin, "import": admin},
		"contacts": crud(!light), "accounts": crud(!light), "products": crud(!light), "contracts": crud(!light),
		"comments": map[string]any{"edit": true, "delete": !light},
		"setup":    map[string]any{"portalAdmin": admin, "manageWebhooks": admin},
	}
}

func profileJSON(p *profile) map[string]any {
	return map[string]any{"id": idStr(p.id), "name": p.name, "description": p.description, "type": p.typ,
		"default": p.isDefault, "isVisible": p.visible, "permissions": profilePermissions(p)}
}

func roleJSON(r *role) map[string]any {
	return map[string]any{"id": idStr(r.id), "name": r.name, "description": r.description, "isDefault": r.isDefault,
		"reportsTo": idStr(r.reportsTo), "shareDataWithPeers": true, "isVisible": true, "immediateSubRoles": []string{}}
}

func replyAddressJSON(a *replyAddress) map[string]any {
	return map[string]any{"id": idStr(a.id), "address": a.address, "displayName": a.displayName,
		"departmentId": idStr(a.deptID), "isVerified": a.verified, "isDefault": a.isDefault, "isActive": true}
}

func (c *core) adminRoutes(mux *http.ServeMux) {
	listOrgs := func(cl *call) (reply, *APIError) {
		var out []map[string]any
		first := true
		for _, o := range c.orgs {
			if !o.visibleTo(cl.grant) {
				continue
			}
			out = append(out, c.orgJSON(o, first, o.isAdminEmail(cl.grant.UserEmail)))
			first = false
		}
		return list(out)
	}
	c.handle(mux, "GET /api/v1/organizations", false, listOrgs)
	c.handle(mux, "GET /api/v1/accessibleOrganizations", false, listOrgs)
	c.handle(mux, "GET /api/v1/organizations/{organizationId}", false, func(cl *call) (reply, *APIError) {
		o := c.orgByID(cl.path("organizationId"))
		if o == nil || !o.visibleTo(cl.grant) {
			return fail(errNotFound())
		}
		return okJSON(c.orgJSON(o, o == c.orgs[0], o.isAdminEmail(cl.grant.UserEmail)))
	})

	// Departments.
	c.handle(mux, "GET /api/v1/departments", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 200)
		if e != nil {
			return fail(e)
		}
		enabled := cl.q.Get("isEnabled")
		if enabled != "" && enabled != "true" && enabled != "false" {
			return fail(errBadParam("isEnabled"))
		}
		chat := cl.q.Get("chatStatus")
		var rows []*department
		cl.org.departments.each(func(d *department) bool {
			if (enabled == "" || strconv.FormatBool(d.enabled) == enabled) && (chat == "" || strings.EqualFold(chat, d.chatStatus)) {
				rows = append(rows, d)
			}
			return true
		})
		var out []map[string]any
		for _, d := range window(rows, p) {
			out = append(out, c.departmentJSON(cl.org, d))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/departmentsByIds", true, func(cl *call) (reply, *APIError) {
		ids, e := parseIDList(cl.q, "departmentIds")
		if e != nil {
			return fail(e)
		}
		var out []map[string]any
		for _, id := range ids {
			if d := cl.org.departments.get(id); d != nil {
				out = append(out, c.departmentJSON(cl.org, d))
			}
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/departments/{departmentId}", true, func(cl *call) (reply, *APIError) {
		d, e := cl.department()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.departmentJSON(cl.org, d))
	})
	c.handle(mux, "GET /api/v1/departments/{departmentId}/agents", true, func(cl *call) (reply, *APIError) {
		d, e := cl.department()
		if e != nil {
			return fail(e)
		}
		var out []map[string]any
		for _, id := range d.agentIDs {
			if a := cl.org.agents.get(id); a != nil && !a.deleted {
				out = append(out, c.agentJSON(cl.org, a, includes(cl.q)))
			}
		}
		return list(out)
	})
	c.handle(mux, "POST /api/v1/departments", true, func(cl *call) (reply, *APIError) {
		d, e := c.createDepartment(cl.org, cl.act, cl.body)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.departmentJSON(cl.org, d))
	})
	c.handle(mux, "PATCH /api/v1/departments/{departmentId}", true, func(cl *call) (reply, *APIError) {
		d, e := cl.department()
		if e != nil {
			return fail(e)
		}
		if e := c.updateDepartment(cl.org, cl.act, d, cl.body); e != nil {
			return fail(e)
		}
		return okJSON(c.departmentJSON(cl.org, d))
	})
	for _, action := range []string{"enable", "disable"} {
		enable := action == "enable"
		c.handle(mux, "POST /api/v1/departments/{departmentId}/"+action, true, func(cl *call) (reply, *APIError) {
			d, e := cl.department()
			if e != nil {
				return fail(e)
			}
			if d.isDefault && !enable {
				return fail(errUnprocessable("The default department cannot be disabled."))
			}
			body, _ := json.Marshal(map[string]any{"isEnabled": enable})
			if e := c.updateDepartment(cl.org, cl.act, d, body); e != nil {
				return fail(e)
			}
			return noContent()
		})
	}

	// Agents, profiles, roles.
	c.handle(mux, "GET /api/v1/agents", true, func(cl *call) (reply, *APIError) {
		q := cl.q
		if q.Get("from") == "0" { // the agents API documents from as starting at 0
			q.Set("from", "1")
		}
		p, e := parsePage(q, 1, 10, 200)
		if e != nil {
			return fail(e)
		}
		status := strings.ToUpper(q.Get("status"))
		if status != "" && status != "ACTIVE" && status != "DISABLED" && status != "DELETED" {
			return fail(errBadParam("status"))
		}
		depts, e := parseIDList(q, "departmentIds")
		if e != nil {
			return fail(e)
		}
		profiles, e := parseIDList(q, "profileIds")
		if e != nil {
			return fail(e)
		}
		roles, e := parseIDList(q, "roleIds")
		if e != nil {
			return fail(e)
		}
		permType, search := q.Get("rolePermissionType"), q.Get("searchStr")
		var rows []*agent
		cl.org.agents.each(func(a *agent) bool {
			st := a.status
			if a.deleted {
				st = "DELETED"
			}
			switch {
			case status == "" && a.deleted, status != "" && st != status:
			case len(depts) > 0 && !overlaps(depts, a.deptIDs):
			case len(profiles) > 0 && !overlaps(profiles, []int64{a.profileID}):
			case len(roles) > 0 && !overlaps(roles, []int64{a.roleID}):
			case permType != "" && permType != cl.org.permissionType(a):
			case search != "" && !matchText(search, a.name()) && !matchText(search, a.email) && !containsFold(search, a.name(), a.email):
			default:
				rows = append(rows, a)
			}
			return true
		})
		inc := includes(q)
		var out []map[string]any
		for _, a := range window(rows, p) {
			out = append(out, c.agentJSON(cl.org, a, inc))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/agentsByIds", true, func(cl *call) (reply, *APIError) {
		ids, e := parseIDList(cl.q, "agentIds")
		if e != nil {
			return fail(e)
		}
		var out []map[string]any
		for _, id := range ids {
			if a := cl.org.agents.get(id); a != nil {
				out = append(out, c.agentJSON(cl.org, a, includes(cl.q)))
			}
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/agents/{agentId}", true, func(cl *call) (reply, *APIError) {
		id, e := cl.pathID("agentId")
		if e != nil {
			return fail(e)
		}
		a := cl.org.agents.get(id)
		if a == nil {
			return fail(errNotFound())
		}
		return okJSON(c.agentJSON(cl.org, a, includes(cl.q)))
	})
	c.handle(mux, "GET /api/v1/myinfo", true, func(cl *call) (reply, *APIError) {
		return okJSON(c.agentJSON(cl.org, cl.org.agents.get(cl.act.agentID), includes(cl.q)))
	})
	c.handle(mux, "GET /api/v1/profiles", true, func(cl *call) (reply, *APIError) {
		def, vis := cl.q.Get("default"), cl.q.Get("visible")
		var out []map[string]any
		cl.org.profiles.each(func(p *profile) bool {
			if (def == "" || def == strconv.FormatBool(p.isDefault)) && (vis == "" || vis == strconv.FormatBool(p.visible)) {
				out = append(out, profileJSON(p))
			}
			return true
		})
		return list(out)
	})
	c.handle(mux, "GET /api/v1/profiles/{profileId}", true, func(cl *call) (reply, *APIError) {
		id, e := cl.pathID("profileId")
		if e != nil {
			return fail(e)
		}
		p := cl.org.profiles.get(id)
		if p == nil {
			return fail(errNotFound())
		}
		return okJSON(profileJSON(p))
	})
	c.handle(mux, "GET /api/v1/myProfile", true, func(cl *call) (reply, *APIError) {
		a := cl.org.agents.get(cl.act.agentID)
		return okJSON(profileJSON(cl.org.profiles.get(a.profileID)))
	})
	c.handle(mux, "GET /api/v1/roles", true, func(cl *call) (reply, *APIError) {
		var out []map[string]any
		cl.org.roles.each(func(r *role) bool {
			out = append(out, roleJSON(r))
			return true
		})
		return list(out)
	})
	c.handle(mux, "GET /api/v1/roles/{roleId}", true, func(cl *call) (reply, *APIError) {
		id, e := cl.pathID("roleId")
		if e != nil {
			return fail(e)
		}
		r := cl.org.roles.get(id)
		if r == nil {
			return fail(errNotFound())
		}
		return okJSON(roleJSON(r))
	})
	c.handle(mux, "GET /api/v1/mailReplyAddress", true, func(cl *call) (reply, *APIError) {
		var dept int64
		if v := cl.q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok || cl.org.departments.get(id) == nil {
				return fail(errBadParam("departmentId"))
			}
			dept = id
		}
		var out []map[string]any
		cl.org.replyAddrs.each(func(a *replyAddress) bool {
			if dept == 0 || a.deptID == dept {
				out = append(out, replyAddressJSON(a))
			}
			return true
		})
		return list(out)
	})
	c.handle(mux, "GET /api/v1/organizationFields", true, func(cl *call) (reply, *APIError) {
		module := cl.q.Get("module")
		if module == "" {
			return fail(errMissingParam("module"))
		}
		fields, known := cl.org.fields[module]
		if !known {
			return fail(errBadParam("module"))
		}
		var out []map[string]any
		for _, f := range fields {
			out = append(out, cl.org.fieldJSON(module, f))
		}
		return list(out)
	})
}

func overlaps(a, b []int64) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func (cl *call) department() (*department, *APIError) {
	id, e := cl.pathID("departmentId")
	if e != nil {
		return nil, e
	}
	d := cl.org.departments.get(id)
	if d == nil {
		return nil, errNotFound()
	}
	return d, nil
}

// departmentInput is the writable part of a department.
type departmentInput struct {
	Name               *string  `json:"name"`
	Description        *string  `json:"description"`
	IsEnabled          *bool    `json:"isEnabled"`
	AssociatedAgentIDs []string `json:"associatedAgentIds"`
}

func (c *core) createDepartment(o *org, act actor, body []byte) (*department, *APIError) {
	var in departmentInput
	if _, e := decodeObject(body); e != nil {
		return nil, e
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errMalformed()
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, errInvalidData(missing("name"))
	}
	dup := false
	o.departments.each(func(d *department) bool {
		dup = dup || strings.EqualFold(d.name, *in.Name)
		return !dup
	})
	if dup {
		return nil, errInvalidData(FieldError{FieldName: "/name", ErrorType: "duplicate", ErrorMessage: "A department with this name exists."})
	}
	d := &department{id: o.newID(), name: *in.Name, enabled: true, chatStatus: "NOT_CREATED", createdTime: c.now(), creatorID: act.agentID}
	if in.Description != nil {
		d.description = *in.Description
	}
	for _, sid := range in.AssociatedAgentIDs {
		id, ok := parseID(sid)
		a := o.agents.get(id)
		if !ok || a == nil || a.deleted {
			return nil, errInvalidData(invalid("associatedAgentIds"))
		}
		d.agentIDs = append(d.agentIDs, id)
	}
	o.departments.put(d.id, d)
	// Every department gets a verified from-address so replies work at once.
	local := slugify(d.name)
	if local == "" || strings.ContainsFunc(local, func(r rune) bool { return r > 0x7f }) {
		local = "dept" + strconv.FormatInt(d.id%100000, 10)
	}
	addr := &replyAddress{id: o.newID(), address: local + "@" + o.portal + ".example", displayName: d.name, deptID: d.id, verified: true, isDefault: true}
	o.replyAddrs.put(addr.id, addr)
	for _, id := range d.agentIDs {
		a := o.agents.get(id)
		a.deptIDs = append(a.deptIDs, d.id)
	}
	c.addDepartmentSLA(o, d)
	c.emit(o, act, event{typ: "Department_Add", deptID: d.id, payload: c.departmentJSON(o, d)})
	return d, nil
}

func (c *core) updateDepartment(o *org, act actor, d *department, body []byte) *APIError {
	m, e := decodeObject(body)
	if e != nil {
		return e
	}
	for k := range m {
		if k != "name" && k != "description" && k != "isEnabled" && !readOnlyKeys[k] && k != "isDefault" && k != "chatStatus" {
			return errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	var in departmentInput
	if err := json.Unmarshal(body, &in); err != nil {
		return errMalformed()
	}
	before := c.departmentJSON(o, d)
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" {
			return errInvalidData(invalid("name"))
		}
		d.name = *in.Name
	}
	if in.Description != nil {
		d.description = *in.Description
	}
	if in.IsEnabled != nil {
		d.enabled = *in.IsEnabled
	}
	after := c.departmentJSON(o, d)
	prev, changed := diff(before, after)
	if changed != nil {
		c.emit(o, act, event{typ: "Department_Update", deptID: d.id, payload: after, prev: prev, changed: changed})
	}
	return nil
}
