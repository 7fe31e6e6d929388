package store

import (
	"context"
	"fmt"
	"time"
)

// HistoryBucket is one hour of a connection's sync counters for a module
// and direction (B13).
type HistoryBucket struct {
	OrgID        int64     `db:"org_id"`
	ConnectionID int64     `db:"connection_id"`
	Bucket       time.Time `db:"bucket"`
	Module       string    `db:"module"`
	Direction    string    `db:"direction"`
	Added        int64     `db:"added"`
	Updated      int64     `db:"updated"`
	Deleted      int64     `db:"deleted"`
	Failed       int64     `db:"failed"`
}

// HistoryHour is the bucket a moment falls in: the UTC hour. It is computed
// here rather than with date_trunc, whose result depends on the session's
// time zone (half-hour zones would split buckets).
func HistoryHour(at time.Time) time.Time {
	return at.UTC().Truncate(time.Hour)
}

// AddHistory adds counts to the hour bucket containing h.Bucket (any moment
// in the hour will do), creating it at zero first. Concurrent workers add to
// the same row without losing counts: the increment is in the upsert.
// ErrNotFound when the connection is not the org's.
func AddHistory(ctx context.Context, q Queryer, h HistoryBucket) error {
	var n int
	err := q.GetContext(ctx, &n, `
		INSERT INTO sync_history AS h (org_id, connection_id, bucket, module, direction, added, updated, deleted, failed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (connection_id, bucket, module, direction) DO UPDATE SET
			added = h.added + EXCLUDED.added,
			updated = h.updated + EXCLUDED.updated,
			deleted = h.deleted + EXCLUDED.deleted,
			failed = h.failed + EXCLUDED.failed
		WHERE h.org_id = EXCLUDED.org_id
		RETURNING 1`,
		h.OrgID, h.ConnectionID, HistoryHour(h.Bucket), h.Module, h.Direction, h.Added, h.Updated, h.Deleted, h.Failed)
	return classify("adding sync history", err)
}

// History returns a connection's buckets from the hour containing since on,
// oldest first.
func History(ctx context.Context, q Queryer, orgID, connID int64, since time.Time) ([]HistoryBucket, error) {
	out := []HistoryBucket{}
	err := q.SelectContext(ctx, &out, `
		SELECT org_id, connection_id, bucket, module, direction, added, updated, deleted, failed
		FROM sync_history WHERE org_id = $1 AND connection_id = $2 AND bucket >= $3
		ORDER BY bucket, module, direction`, orgID, connID, HistoryHour(since))
	if err != nil {
		return nil, fmt.Errorf("loading sync history: %w", err)
	}
	return out, nil
}

// PruneHistory deletes the buckets of every org that start before before
// (retention, 7 days by default, run by the leader). It returns how many
// buckets went.
func PruneHistory(ctx context.Context, q Queryer, before time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM sync_history WHERE bucket < $1`, before)
	if err != nil {
		return 0, classify("pruning sync history", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("pruning sync history: %w", err)
	}
	return n, nil
}
