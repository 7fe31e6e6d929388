package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// conflictRow is how RecordConflicts ships a conflict to jsonb_to_recordset.
type conflictRow struct {
	LinkID         int64           `json:"link_id"`
	DeskField      string          `json:"desk_field"`
	CRMField       string          `json:"crm_field"`
	DeskValue      json.RawMessage `json:"desk_value,omitempty"`
	CRMValue       json.RawMessage `json:"crm_value,omitempty"`
	DeskModifiedAt *time.Time      `json:"desk_modified_at"`
	CRMModifiedAt  *time.Time      `json:"crm_modified_at"`
	Winner         string          `json:"winner"`
}

// RecordConflicts is RecordConflict for a batch of one connection's
// conflicts, in one statement: a first sync matches thousands of records
// whose sides differ, each differing field a conflict. The conflicts keep
// their order (ids grow along the slice). Each NewConflict's OrgID and
// ConnectionID are ignored; every link must be the org's and the
// connection's (ErrNotFound otherwise, and the caller's transaction should
// roll back).
func RecordConflicts(ctx context.Context, q Queryer, orgID, connID int64, cs []NewConflict) error {
	const action = "recording sync conflicts"
	if len(cs) == 0 {
		return nil
	}
	rows := make([]conflictRow, len(cs))
	for i, c := range cs {
		rows[i] = conflictRow{LinkID: c.LinkID, DeskField: c.DeskField, CRMField: c.CRMField, DeskValue: c.DeskValue,
			CRMValue: c.CRMValue, DeskModifiedAt: c.DeskModifiedAt, CRMModifiedAt: c.CRMModifiedAt, Winner: c.Winner}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("%s: encoding: %w", action, err)
	}
	var n int
	err = q.GetContext(ctx, &n, `
		WITH ins AS (
			INSERT INTO sync_conflicts (org_id, connection_id, link_id, module, desk_field, crm_field,
				desk_value, crm_value, desk_modified_at, crm_modified_at, winner)
			SELECT l.org_id, l.connection_id, l.id, l.module, r.desk_field, r.crm_field,
				COALESCE(r.desk_value, 'null'), COALESCE(r.crm_value, 'null'), r.desk_modified_at, r.crm_modified_at, r.winner
			FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (link_id bigint, desk_field text, crm_field text,
				desk_value jsonb, crm_value jsonb, desk_modified_at timestamptz, crm_modified_at timestamptz, winner text))
				WITH ORDINALITY AS r(link_id, desk_field, crm_field, desk_value, crm_value, desk_modified_at, crm_modified_at, winner, ord)
			JOIN links l ON l.id = r.link_id AND l.org_id = $1 AND l.connection_id = $2
			ORDER BY r.ord
			RETURNING 1
		)
		SELECT count(*) FROM ins`, orgID, connID, batch)
	if err != nil {
		return classify(action, err)
	}
	if n != len(cs) {
		return fmt.Errorf("%s: %d of %d links: %w", action, len(cs)-n, len(cs), ErrNotFound)
	}
	return nil
}
