package syncengine

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
)

// CancelFirstSync stops the connection's running first sync: its runs end
// CANCELLED (each with a SYNC_RUN_FINISHED event), and the records it
// queued that no worker has started on are dropped. Records already
// applied stay applied, and changes captured meanwhile still sync. A new
// first sync can be started afterwards and matches what exists (B8), so
// nothing is created twice. A ConnectionConflictError when none is running.
// Admins only.
func (s *ConnectionService) CancelFirstSync(ctx context.Context, v auth.Viewer, id int64) ([]store.Run, error) {
	var out []store.Run
	var dropped int64
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := s.adminConnection(ctx, tx, v, id, "cancelling a first sync"); err != nil {
			return err
		}
		runs, n, err := store.CancelRuns(ctx, tx, v.OrgID, id)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return &ConnectionConflictError{Reason: "no first sync of the connection is running",
				Err: fmt.Errorf("cancelling a first sync: %w", store.ErrConflict)}
		}
		for _, r := range runs {
			if _, err := store.InsertEvent(ctx, tx, runEvent(SyncEventRunFinished, r)); err != nil {
				return err
			}
		}
		out, dropped = runs, n
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "first sync cancelled", "org_id", v.OrgID, "connection_id", id, "runs", len(out), "dropped", dropped)
	return out, nil
}
