package store

import (
	"context"
	"fmt"
	"time"
)

// PermissionProfile is an org's stored profile for one role (SPEC C1-C3).
// Access levels are "NONE", "READ" or "FULL"; PanelRecord is "CONTACT" or
// "ACCOUNT". The json tags match the column names: authentication reads the
// row as to_jsonb beside the token.
type PermissionProfile struct {
	OrgID         int64     `db:"org_id" json:"org_id"`
	Role          string    `db:"role" json:"role"`
	CRMPanels     bool      `db:"crm_panels" json:"crm_panels"`
	PanelRecord   string    `db:"panel_record" json:"panel_record"`
	ContactInfo   string    `db:"contact_info" json:"contact_info"`
	Deals         string    `db:"deals" json:"deals"`
	Notes         string    `db:"notes" json:"notes"`
	Calls         string    `db:"calls" json:"calls"`
	Events        string    `db:"events" json:"events"`
	Tasks         string    `db:"tasks" json:"tasks"`
	CRMTickets    bool      `db:"crm_tickets" json:"crm_tickets"`
	TicketActions bool      `db:"ticket_actions" json:"ticket_actions"`
	UpdatedAt     time.Time `db:"updated_at" json:"updated_at"`
	UpdatedBy     *int64    `db:"updated_by" json:"updated_by"`
}

const profileColumns = `org_id, role, crm_panels, panel_record, contact_info, deals, notes, calls, events, tasks,
	crm_tickets, ticket_actions, updated_at, updated_by`

// PermissionProfiles returns the org's stored profiles by role; roles an
// admin never edited are absent.
func PermissionProfiles(ctx context.Context, q Queryer, orgID int64) (map[string]PermissionProfile, error) {
	var rows []PermissionProfile
	if err := q.SelectContext(ctx, &rows, `SELECT `+profileColumns+` FROM permission_profiles WHERE org_id = $1`, orgID); err != nil {
		return nil, fmt.Errorf("listing permission profiles: %w", err)
	}
	out := make(map[string]PermissionProfile, len(rows))
	for _, p := range rows {
		out[p.Role] = p
	}
	return out, nil
}

// PutPermissionProfile stores the whole profile of one role, replacing
// what was there.
func PutPermissionProfile(ctx context.Context, q Queryer, p PermissionProfile) (PermissionProfile, error) {
	var out PermissionProfile
	err := q.GetContext(ctx, &out, `
		INSERT INTO permission_profiles (org_id, role, crm_panels, panel_record, contact_info, deals, notes,
			calls, events, tasks, crm_tickets, ticket_actions, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (org_id, role) DO UPDATE SET crm_panels = EXCLUDED.crm_panels,
			panel_record = EXCLUDED.panel_record, contact_info = EXCLUDED.contact_info,
			deals = EXCLUDED.deals, notes = EXCLUDED.notes, calls = EXCLUDED.calls,
			events = EXCLUDED.events, tasks = EXCLUDED.tasks, crm_tickets = EXCLUDED.crm_tickets,
			ticket_actions = EXCLUDED.ticket_actions, updated_by = EXCLUDED.updated_by, updated_at = now()
		RETURNING `+profileColumns,
		p.OrgID, p.Role, p.CRMPanels, p.PanelRecord, p.ContactInfo, p.Deals, p.Notes, p.Calls, p.Events,
		p.Tasks, p.CRMTickets, p.TicketActions, p.UpdatedBy)
	return out, classify("storing permission profile", err)
}
