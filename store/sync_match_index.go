package store

import (
	"context"
	"time"
)

// MatchIndex is how far a connection's first sync has read one module of a
// target side into the mirror, so unlinked records can be matched (B8)
// against mirror_records instead of through the vendor's search.
type MatchIndex struct {
	OrgID        int64      `db:"org_id"`
	ConnectionID int64      `db:"connection_id"`
	System       string     `db:"system"`
	Module       string     `db:"module"`
	Cursor       string     `db:"cursor"`
	Complete     bool       `db:"complete"`     // a read reached the end once
	CaughtUpAt   *time.Time `db:"caught_up_at"` // when a read last reached the end
	UpdatedAt    time.Time  `db:"updated_at"`
}

// GetMatchIndex returns the index of one module of a side, ErrNotFound
// before its read started.
func GetMatchIndex(ctx context.Context, q Queryer, orgID, connID int64, system, module string) (MatchIndex, error) {
	var out MatchIndex
	err := q.GetContext(ctx, &out, `
		SELECT org_id, connection_id, system, module, cursor, complete, caught_up_at, updated_at FROM match_indexes
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4`, orgID, connID, system, module)
	return out, classify("loading match index", err)
}

// PutMatchIndex records how far a read got; end says it reached the end
// (the index is then complete, and caught up now). Call it in the
// transaction that mirrored the records it covers. ErrNotFound when the
// connection is not the org's.
func PutMatchIndex(ctx context.Context, q Queryer, orgID, connID int64, system, module, cursor string, end bool) error {
	var n int
	err := q.GetContext(ctx, &n, `
		INSERT INTO match_indexes (org_id, connection_id, system, module, cursor, complete, caught_up_at)
		SELECT org_id, id, $3, $4, $5, $6, CASE WHEN $6 THEN now() END FROM connections WHERE org_id = $1 AND id = $2
		ON CONFLICT (connection_id, system, module) DO UPDATE SET cursor = EXCLUDED.cursor,
			complete = match_indexes.complete OR EXCLUDED.complete,
			caught_up_at = COALESCE(EXCLUDED.caught_up_at, match_indexes.caught_up_at), updated_at = now()
		RETURNING 1`, orgID, connID, system, module, cursor, end)
	return classify("storing match index", err)
}
