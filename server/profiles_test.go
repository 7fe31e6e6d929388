package server

import (
	"testing"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// Permission profiles (SPEC C1): each role starts with its default, an admin
// edits one role's profile in one org, and the role's next request sees the
// change; other orgs and roles keep theirs.
func TestPermissionProfilesOverGraphQL(t *testing.T) {
	t.Parallel()
	ts := startServer(t, storetest.URL(t), nil)
	admin := ts.token("acme", auth.RoleAdmin)
	restricted := ts.token("acme", auth.RoleRestrictedAgent)
	light := ts.token("acme", auth.RoleLightAgent)
	otherRestricted := ts.token("globex", auth.RoleRestrictedAgent)
	own := func(token string) map[string]any {
		t.Helper()
		r := ts.query(token, `{ viewer { profile { role crmPanels panelRecord contactInfo deals notes calls events tasks crmTickets ticketActions customized } } }`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("viewer.profile: %+v", r.Errors)
		}
		return dig(r.Data, "viewer", "profile").(map[string]any)
	}
	if p := own(restricted); p["deals"] != "NONE" || p["notes"] != "FULL" || p["contactInfo"] != "FULL" || p["customized"] != false {
		t.Fatalf("default restricted agent profile: %+v", p)
	}
	if p := own(light); p["deals"] != "READ" || p["tasks"] != "READ" || p["ticketActions"] != false {
		t.Fatalf("default light agent profile: %+v", p)
	}

	list := `{ permissionProfiles { role deals customized updatedAt } }`
	wantCode(t, "a restricted agent lists profiles", ts.query(restricted, list, nil), codeForbidden)
	r := ts.query(admin, list, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("permissionProfiles: %+v", r.Errors)
	}
	profiles := r.Data["permissionProfiles"].([]any)
	if len(profiles) != 4 || profiles[0].(map[string]any)["role"] != "ADMIN" || profiles[2].(map[string]any)["deals"] != "NONE" {
		t.Fatalf("permissionProfiles = %+v", profiles)
	}

	update := `mutation($role: Role!, $in: PermissionProfileInput!) { updatePermissionProfile(role: $role, input: $in) { role deals notes panelRecord customized updatedAt } }`
	in := map[string]any{"crmPanels": true, "panelRecord": "ACCOUNT", "contactInfo": "READ", "deals": "READ", "notes": "NONE",
		"calls": "FULL", "events": "FULL", "tasks": "NONE", "crmTickets": true, "ticketActions": false}
	wantCode(t, "a restricted agent edits its profile", ts.query(restricted, update, map[string]any{"role": "RESTRICTED_AGENT", "in": in}), codeForbidden)
	if r := ts.query(admin, update, map[string]any{"role": "RESTRICTED_AGENT", "in": map[string]any{"deals": "SOME"}}); r.code(0) != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("a bad level: %+v", r.Errors)
	}
	r = ts.query(admin, update, map[string]any{"role": "RESTRICTED_AGENT", "in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("updatePermissionProfile: %+v", r.Errors)
	}
	if p := r.Data["updatePermissionProfile"].(map[string]any); p["deals"] != "READ" || p["notes"] != "NONE" || p["customized"] != true || p["updatedAt"] == nil {
		t.Fatalf("updated profile: %+v", p)
	}
	if p := own(restricted); p["deals"] != "READ" || p["notes"] != "NONE" || p["panelRecord"] != "ACCOUNT" || p["customized"] != true {
		t.Fatalf("the restricted agent's next request: %+v", p)
	}
	if p := own(otherRestricted); p["deals"] != "NONE" || p["customized"] != false {
		t.Fatalf("another org's restricted agent changed: %+v", p)
	}
	if p := own(light); p["notes"] != "READ" || p["customized"] != false {
		t.Fatalf("the light agent changed: %+v", p)
	}
	var events int
	if err := ts.srv.db.DB.Get(&events, `SELECT count(*) FROM events WHERE type = 'PERMISSION_PROFILE_UPDATED'`); err != nil || events != 1 {
		t.Fatalf("PERMISSION_PROFILE_UPDATED events: %d, %v", events, err)
	}
}
