package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Module groups that settings are kept for.
const (
	GroupContactsAccounts = "CONTACTS_ACCOUNTS"
	GroupProducts         = "PRODUCTS"
)

// Settings is one version of a connection's settings for a module group.
// Versions are never updated: a change inserts a new row whose
// EffectiveFrom says from when captured changes follow it (B6), so a change
// captured before the edit is still applied under the rules of its time.
type Settings struct {
	ID                  int64     `db:"id"`
	OrgID               int64     `db:"org_id"`
	ConnectionID        int64     `db:"connection_id"`
	ModuleGroup         string    `db:"module_group"`
	SyncType            string    `db:"sync_type"`
	MatchEmail          string    `db:"match_email"`
	CRMViewID           *string   `db:"crm_view_id"`
	DeskDepartmentID    *string   `db:"desk_department_id"`
	CRMDeletePolicy     string    `db:"crm_delete_policy"`
	DeskDeletePolicy    string    `db:"desk_delete_policy"`
	FirstSyncWindowDays int       `db:"first_sync_window_days"`
	EffectiveFrom       time.Time `db:"effective_from"`
	CreatedBy           *int64    `db:"created_by"`
}

const settingsColumns = `id, org_id, connection_id, module_group, sync_type, match_email, crm_view_id,
	desk_department_id, crm_delete_policy, desk_delete_policy, first_sync_window_days, effective_from, created_by`

// InsertSettings stores a new version. Every field is required (the caller
// fills the documented defaults, so they live in one place); ID is ignored,
// and a zero EffectiveFrom means now, the database's clock, so versions
// written by different replicas order by one clock.
func InsertSettings(ctx context.Context, q Queryer, s Settings) (Settings, error) {
	var effective *time.Time
	if !s.EffectiveFrom.IsZero() {
		effective = &s.EffectiveFrom
	}
	var out Settings
	err := q.GetContext(ctx, &out, `
		INSERT INTO sync_settings (org_id, connection_id, module_group, sync_type, match_email, crm_view_id,
			desk_department_id, crm_delete_policy, desk_delete_policy, first_sync_window_days, effective_from, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, now()), $12)
		RETURNING `+settingsColumns,
		s.OrgID, s.ConnectionID, s.ModuleGroup, s.SyncType, s.MatchEmail, s.CRMViewID,
		s.DeskDepartmentID, s.CRMDeletePolicy, s.DeskDeletePolicy, s.FirstSyncWindowDays, effective, s.CreatedBy)
	return out, classify("inserting sync settings", err)
}

// CurrentSettings returns the version that applies to a change captured at
// at: the latest one effective at or before it. ErrNotFound when the group
// has no settings yet (or none that old).
func CurrentSettings(ctx context.Context, q Queryer, orgID, connID int64, group string, at time.Time) (Settings, error) {
	var out Settings
	err := q.GetContext(ctx, &out, `
		SELECT `+settingsColumns+` FROM sync_settings
		WHERE org_id = $1 AND connection_id = $2 AND module_group = $3 AND effective_from <= $4
		ORDER BY effective_from DESC, id DESC LIMIT 1`, orgID, connID, group, at)
	return out, classify("loading sync settings", err)
}

// SettingsHistory returns every version of a group's settings, newest first,
// for the admin's audit trail.
func SettingsHistory(ctx context.Context, q Queryer, orgID, connID int64, group string) ([]Settings, error) {
	out := []Settings{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+settingsColumns+` FROM sync_settings
		WHERE org_id = $1 AND connection_id = $2 AND module_group = $3
		ORDER BY effective_from DESC, id DESC`, orgID, connID, group)
	if err != nil {
		return nil, fmt.Errorf("listing sync settings history: %w", err)
	}
	return out, nil
}

// Mapping maps one desk field to one CRM field of a module. ValueMap is a
// JSON object from desk picklist values to CRM ones ({} for other fields);
// it stays JSON here because only the mapper interprets it.
type Mapping struct {
	ID           int64           `db:"id"`
	OrgID        int64           `db:"org_id"`
	ConnectionID int64           `db:"connection_id"`
	Module       string          `db:"module"`
	DeskField    string          `db:"desk_field"`
	CRMField     string          `db:"crm_field"`
	ValueMap     json.RawMessage `db:"value_map"`
	Standard     bool            `db:"standard"`
	Position     int             `db:"position"`
}

const mappingColumns = `id, org_id, connection_id, module, desk_field, crm_field, value_map, standard, position`

// ReplaceMappings replaces a module's whole mapping set: saving a mapping
// screen is one decision, so it is all or nothing, which is why it takes a
// transaction. The mappings' own ID, OrgID, ConnectionID and Module are
// ignored. A field mapped twice on either side fails with ErrConflict naming
// the field, before anything is written (the unique keys back this up).
func ReplaceMappings(ctx context.Context, tx *sqlx.Tx, orgID, connID int64, module string, ms []Mapping) ([]Mapping, error) {
	const action = "replacing field mappings"
	type row struct {
		DeskField string          `json:"desk_field"`
		CRMField  string          `json:"crm_field"`
		ValueMap  json.RawMessage `json:"value_map"`
		Standard  bool            `json:"standard"`
		Position  int             `json:"position"`
	}
	rows := make([]row, 0, len(ms))
	deskSeen := map[string]string{}
	crmSeen := map[string]string{}
	for _, m := range ms {
		if other, ok := deskSeen[m.DeskField]; ok {
			return nil, fmt.Errorf("%s: %w: desk field %q is mapped to both %q and %q", action, ErrConflict, m.DeskField, other, m.CRMField)
		}
		if other, ok := crmSeen[m.CRMField]; ok {
			return nil, fmt.Errorf("%s: %w: crm field %q is the target of both %q and %q", action, ErrConflict, m.CRMField, other, m.DeskField)
		}
		deskSeen[m.DeskField] = m.CRMField
		crmSeen[m.CRMField] = m.DeskField
		vm := m.ValueMap
		if len(vm) == 0 {
			vm = json.RawMessage(`{}`)
		}
		rows = append(rows, row{DeskField: m.DeskField, CRMField: m.CRMField, ValueMap: vm, Standard: m.Standard, Position: m.Position})
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding: %w", action, err)
	}
	// The connection must be the org's: checked explicitly because an empty
	// set inserts nothing for the foreign key to refuse.
	if _, err := ConnectionByID(ctx, tx, orgID, connID); err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM field_mappings WHERE org_id = $1 AND connection_id = $2 AND module = $3`,
		orgID, connID, module); err != nil {
		return nil, classify(action, err)
	}
	out := []Mapping{}
	err = tx.SelectContext(ctx, &out, `
		INSERT INTO field_mappings (org_id, connection_id, module, desk_field, crm_field, value_map, standard, position)
		SELECT $1, $2, $3, r.desk_field, r.crm_field, r.value_map, r.standard, r.position
		FROM jsonb_to_recordset($4::jsonb) AS r(desk_field text, crm_field text, value_map jsonb, standard boolean, position int)
		RETURNING `+mappingColumns, orgID, connID, module, batch)
	if err != nil {
		return nil, classify(action, err)
	}
	sortMappings(out)
	return out, nil
}

// Mappings returns a module's mappings in display order.
func Mappings(ctx context.Context, q Queryer, orgID, connID int64, module string) ([]Mapping, error) {
	out := []Mapping{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+mappingColumns+` FROM field_mappings
		WHERE org_id = $1 AND connection_id = $2 AND module = $3
		ORDER BY position, id`, orgID, connID, module)
	if err != nil {
		return nil, fmt.Errorf("listing field mappings: %w", err)
	}
	return out, nil
}

// sortMappings puts mappings in the order Mappings reads them: RETURNING
// promises no order.
func sortMappings(ms []Mapping) {
	slices.SortFunc(ms, func(a, b Mapping) int {
		if c := cmp.Compare(a.Position, b.Position); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
