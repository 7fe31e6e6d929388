package store

import (
	"context"
	"time"
)

// Watch is a change-notification subscription held at a vendor for a
// connection.
type Watch struct {
	OrgID          int64      `db:"org_id"`
	ConnectionID   int64      `db:"connection_id"`
	System         string     `db:"system"`
	SubscriptionID string     `db:"subscription_id"`
	TargetURL      string     `db:"target_url"`
	ExpiresAt      *time.Time `db:"expires_at"`
	CreatedAt      time.Time  `db:"created_at"`
	RenewedAt      time.Time  `db:"renewed_at"`
}

const watchColumns = `org_id, connection_id, system, subscription_id, target_url, expires_at, created_at, renewed_at`

// PutWatch records (or replaces) the subscription of one system of a
// connection. The connection must belong to the org.
func PutWatch(ctx context.Context, q Queryer, w Watch) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO connection_watches (org_id, connection_id, system, subscription_id, target_url, expires_at)
		SELECT $1, $2, $3, $4, $5, $6 FROM connections WHERE org_id = $1 AND id = $2
		ON CONFLICT (connection_id, system) DO UPDATE SET subscription_id = EXCLUDED.subscription_id,
			target_url = EXCLUDED.target_url, expires_at = EXCLUDED.expires_at, renewed_at = now()`,
		w.OrgID, w.ConnectionID, w.System, w.SubscriptionID, w.TargetURL, w.ExpiresAt)
	return classify("recording watch", err)
}

// Watches returns the subscriptions of a connection, by system.
func Watches(ctx context.Context, q Queryer, orgID, connID int64) (map[string]Watch, error) {
	var rows []Watch
	err := q.SelectContext(ctx, &rows, `SELECT `+watchColumns+` FROM connection_watches
		WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return nil, classify("reading watches", err)
	}
	out := make(map[string]Watch, len(rows))
	for _, w := range rows {
		out[w.System] = w
	}
	return out, nil
}

// DeleteWatch forgets a subscription.
func DeleteWatch(ctx context.Context, q Queryer, orgID, connID int64, system string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM connection_watches WHERE org_id = $1 AND connection_id = $2 AND system = $3`,
		orgID, connID, system)
	return classify("deleting watch", err)
}
