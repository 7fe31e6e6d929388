package store

import (
	"context"
	"slices"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// LockTickets serialises, until the transaction ends, everything that
// records a change of these desk tickets (a mutation's answer, the desk's
// webhook, polling): each then reads the mirror rows the previous one
// committed, so one change is recorded once, whichever paths report it.
// The locks are taken in id order, and before the org's event lock
// (InsertEvent), so two transactions never wait on each other in a cycle.
func LockTickets(ctx context.Context, tx *sqlx.Tx, connID int64, ticketIDs []string) error {
	ids := slices.Compact(slices.Sorted(slices.Values(ticketIDs)))
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('deskbridge.ticket:' || id, $1))
		FROM (SELECT id FROM unnest($2::text[]) AS id ORDER BY id) AS sorted`, connID, pq.Array(ids))
	return classify("locking tickets", err)
}
