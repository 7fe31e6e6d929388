package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Conflict is a field changed on both sides since the last sync, and which
// side won (the later-modified record; ties go to the CRM). Admins see these
// to understand why a value they typed did not stick.
type Conflict struct {
	ID             int64           `db:"id"`
	OrgID          int64           `db:"org_id"`
	ConnectionID   int64           `db:"connection_id"`
	LinkID         *int64          `db:"link_id"` // nil once the link is gone
	Module         string          `db:"module"`
	DeskField      string          `db:"desk_field"`
	CRMField       string          `db:"crm_field"`
	DeskValue      json.RawMessage `db:"desk_value"` // JSON null for an empty field
	CRMValue       json.RawMessage `db:"crm_value"`
	DeskModifiedAt *time.Time      `db:"desk_modified_at"`
	CRMModifiedAt  *time.Time      `db:"crm_modified_at"`
	Winner         string          `db:"winner"` // SideDesk or SideCRM
	DecidedAt      time.Time       `db:"decided_at"`
}

// NewConflict is what RecordConflict needs; the module comes from the link.
// Nil values are stored as JSON null.
type NewConflict struct {
	OrgID          int64
	ConnectionID   int64
	LinkID         int64
	DeskField      string
	CRMField       string
	DeskValue      json.RawMessage
	CRMValue       json.RawMessage
	DeskModifiedAt *time.Time
	CRMModifiedAt  *time.Time
	Winner         string
}

// Values are selected with COALESCE so a NULL from older rows still scans
// into json.RawMessage (which cannot hold SQL NULL) as JSON null.
const conflictColumns = `id, org_id, connection_id, link_id, module, desk_field, crm_field,
	COALESCE(desk_value, 'null') AS desk_value, COALESCE(crm_value, 'null') AS crm_value,
	desk_modified_at, crm_modified_at, winner, decided_at`

// RecordConflict stores a conflict decision. The link must be the org's and
// the connection's (ErrNotFound otherwise): the schema's link_id key alone
// does not check the org.
func RecordConflict(ctx context.Context, q Queryer, c NewConflict) (Conflict, error) {
	var out Conflict
	err := q.GetContext(ctx, &out, `
		INSERT INTO sync_conflicts (org_id, connection_id, link_id, module, desk_field, crm_field,
			desk_value, crm_value, desk_modified_at, crm_modified_at, winner)
		SELECT l.org_id, l.connection_id, l.id, l.module, $4, $5,
			COALESCE($6::jsonb, 'null'), COALESCE($7::jsonb, 'null'), $8, $9, $10
		FROM links l WHERE l.org_id = $1 AND l.connection_id = $2 AND l.id = $3
		RETURNING `+conflictColumns,
		c.OrgID, c.ConnectionID, c.LinkID, c.DeskField, c.CRMField, jsonArg(c.DeskValue), jsonArg(c.CRMValue),
		c.DeskModifiedAt, c.CRMModifiedAt, c.Winner)
	return out, classify("recording sync conflict", err)
}

// ListConflicts returns up to first of a connection's conflicts, newest
// first, after the conflict afterID in that order (0 = from the newest); an
// afterID that is not the org's gives an empty page.
func ListConflicts(ctx context.Context, q Queryer, orgID, connID int64, first int, afterID int64) ([]Conflict, error) {
	out := []Conflict{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+conflictColumns+` FROM sync_conflicts
		WHERE org_id = $1 AND connection_id = $2
		  AND ($3 = 0 OR (decided_at, id) < (SELECT decided_at, id FROM sync_conflicts WHERE org_id = $1 AND id = $3))
		ORDER BY decided_at DESC, id DESC LIMIT $4`, orgID, connID, afterID, first)
	if err != nil {
		return nil, fmt.Errorf("listing sync conflicts: %w", err)
	}
	return out, nil
}
