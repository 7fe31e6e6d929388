package auth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
)

// Access is how much of one area of CRM data a profile opens (SPEC C1).
type Access string

// The access levels. READ is the vendor's "restricted access": the data is
// shown, nothing is changed through it; FULL also allows the actions later
// capabilities add (notes, activities, tickets from the CRM).
const (
	AccessNone Access = "NONE"
	AccessRead Access = "READ"
	AccessFull Access = "FULL"
)

// Area is a part of the customer picture that a profile opens or hides.
type Area string

// The areas of SPEC C1, activities each on its own.
const (
	AreaContactInfo Area = "contactInfo"
	AreaDeals       Area = "deals"
	AreaNotes       Area = "notes"
	AreaCalls       Area = "calls"
	AreaEvents      Area = "events"
	AreaTasks       Area = "tasks"
)

// Areas lists every area, in display order.
var Areas = []Area{AreaContactInfo, AreaDeals, AreaNotes, AreaCalls, AreaEvents, AreaTasks}

// Profile is what a role may see of the CRM (SPEC C1-C3).
type Profile struct {
	// CRMPanels false hides the CRM picture entirely, whatever the areas say.
	CRMPanels bool
	// PanelRecord is the CRM record the ticket sidebar leads with:
	// "CONTACT" or "ACCOUNT".
	PanelRecord string
	Access      map[Area]Access
	// CRMTickets lets the role see tickets listed on CRM records (C2).
	CRMTickets bool
	// TicketActions lets the role create and answer tickets from CRM
	// records (C3); without it the conversation is read only.
	TicketActions bool
}

// DefaultProfile is a role's profile until an admin edits it: admins and
// agents see everything, a restricted agent sees no deals, a light agent
// reads everything and acts on nothing.
func DefaultProfile(r Role) Profile {
	p := Profile{CRMPanels: true, PanelRecord: "CONTACT", CRMTickets: true, TicketActions: true, Access: map[Area]Access{}}
	for _, a := range Areas {
		p.Access[a] = AccessFull
	}
	switch r {
	case RoleRestrictedAgent:
		p.Access[AreaDeals] = AccessNone
	case RoleLightAgent:
		for _, a := range Areas {
			p.Access[a] = AccessRead
		}
		p.TicketActions = false
	case RoleAdmin, RoleAgent:
	default:
		// An unknown role opens nothing.
		return Profile{PanelRecord: "CONTACT", Access: map[Area]Access{}}
	}
	return p
}

// ParseAccess checks an access level.
func ParseAccess(s string) (Access, error) {
	a := Access(s)
	if !slices.Contains([]Access{AccessNone, AccessRead, AccessFull}, a) {
		return "", fmt.Errorf("unknown access level %q (want NONE, READ or FULL)", s)
	}
	return a, nil
}

// EffectiveProfile is the viewer's profile: the org's stored one for its
// role, or the role's default.
func (v Viewer) EffectiveProfile() Profile {
	if v.Profile != nil {
		return *v.Profile
	}
	return DefaultProfile(v.Role)
}

// CanSee reports whether the viewer may read an area of the CRM picture:
// the panels are shown and the area's access is READ or FULL.
func (v Viewer) CanSee(a Area) bool {
	p := v.EffectiveProfile()
	return p.CRMPanels && p.Access[a] != AccessNone && p.Access[a] != ""
}

// CanSeeCRM reports whether the viewer sees the CRM panels at all.
func (v Viewer) CanSeeCRM() bool { return v.EffectiveProfile().CRMPanels }

// ProfileFromStore converts a stored profile row.
func ProfileFromStore(sp store.PermissionProfile) Profile {
	return Profile{CRMPanels: sp.CRMPanels, PanelRecord: sp.PanelRecord, CRMTickets: sp.CRMTickets,
		TicketActions: sp.TicketActions, Access: map[Area]Access{
			AreaContactInfo: Access(sp.ContactInfo), AreaDeals: Access(sp.Deals), AreaNotes: Access(sp.Notes),
			AreaCalls: Access(sp.Calls), AreaEvents: Access(sp.Events), AreaTasks: Access(sp.Tasks),
		}}
}

// EventProfileUpdated is written when an admin changes a role's profile.
const EventProfileUpdated = "PERMISSION_PROFILE_UPDATED"

// RoleProfile is one role's effective profile and whether the org changed
// it from the default.
type RoleProfile struct {
	Role       Role
	Profile    Profile
	Customized bool
	UpdatedAt  *time.Time
}

// Profiles returns every role's effective profile in the viewer's org.
// Admins only (PermManageProfiles).
func Profiles(ctx context.Context, db *sqlx.DB, v Viewer) ([]RoleProfile, error) {
	if !v.Can(PermManageProfiles) {
		return nil, fmt.Errorf("listing permission profiles: %w", ErrForbidden)
	}
	stored, err := store.PermissionProfiles(ctx, db, v.OrgID)
	if err != nil {
		return nil, err
	}
	out := make([]RoleProfile, 0, len(Roles))
	for _, r := range Roles {
		rp := RoleProfile{Role: r, Profile: DefaultProfile(r)}
		if sp, ok := stored[string(r)]; ok {
			rp.Profile, rp.Customized, rp.UpdatedAt = ProfileFromStore(sp), true, &sp.UpdatedAt
		}
		out = append(out, rp)
	}
	return out, nil
}

// UpdateProfile replaces a role's profile in the viewer's org and appends
// a PERMISSION_PROFILE_UPDATED event, in one transaction. The next request
// of every token of that role uses it. Admins only. p must be complete:
// every area has a level.
func UpdateProfile(ctx context.Context, db *sqlx.DB, v Viewer, r Role, p Profile) (RoleProfile, error) {
	if !v.Can(PermManageProfiles) {
		return RoleProfile{}, fmt.Errorf("updating a permission profile: %w", ErrForbidden)
	}
	if !slices.Contains(Roles, r) {
		return RoleProfile{}, fmt.Errorf("updating a permission profile: unknown role %q", r)
	}
	if p.PanelRecord != "CONTACT" && p.PanelRecord != "ACCOUNT" {
		return RoleProfile{}, fmt.Errorf("updating a permission profile: panel record %q is not CONTACT or ACCOUNT", p.PanelRecord)
	}
	for _, a := range Areas {
		if _, err := ParseAccess(string(p.Access[a])); err != nil {
			return RoleProfile{}, fmt.Errorf("updating a permission profile: %s: %w", a, err)
		}
	}
	userID := v.UserID
	var out RoleProfile
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		sp, err := store.PutPermissionProfile(ctx, tx, store.PermissionProfile{
			OrgID: v.OrgID, Role: string(r), CRMPanels: p.CRMPanels, PanelRecord: p.PanelRecord,
			ContactInfo: string(p.Access[AreaContactInfo]), Deals: string(p.Access[AreaDeals]),
			Notes: string(p.Access[AreaNotes]), Calls: string(p.Access[AreaCalls]),
			Events: string(p.Access[AreaEvents]), Tasks: string(p.Access[AreaTasks]),
			CRMTickets: p.CRMTickets, TicketActions: p.TicketActions, UpdatedBy: &userID,
		})
		if err != nil {
			return err
		}
		out = RoleProfile{Role: r, Profile: ProfileFromStore(sp), Customized: true, UpdatedAt: &sp.UpdatedAt}
		payload := map[string]any{"role": r, "actorTokenId": v.TokenID}
		_, err = store.InsertEvent(ctx, tx, store.NewEvent{OrgID: v.OrgID, Type: EventProfileUpdated,
			Permission: string(PermManageProfiles), Payload: payload})
		return err
	})
	if err != nil {
		return RoleProfile{}, fmt.Errorf("updating the %s profile: %w", r, err)
	}
	return out, nil
}
