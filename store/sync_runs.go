package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Sync directions, for runs, history and failures.
const (
	DirectionCRMToDesk = "CRM_TO_DESK"
	DirectionDeskToCRM = "DESK_TO_CRM"
)

// First-sync run statuses.
const (
	RunRunning   = "RUNNING"
	RunDone      = "DONE"
	RunCancelled = "CANCELLED"
)

// Run is a first sync (B7) of one module in one direction: a walk of the
// source that enqueues records created since Since, with the walk's
// checkpoint committed page by page so a restart resumes where it stood,
// and the progress counters the admin watches.
type Run struct {
	ID           int64      `db:"id"`
	OrgID        int64      `db:"org_id"`
	ConnectionID int64      `db:"connection_id"`
	Module       string     `db:"module"`
	Direction    string     `db:"direction"`
	Status       string     `db:"status"`
	Since        time.Time  `db:"since"`
	Checkpoint   string     `db:"checkpoint"`
	WalkDone     bool       `db:"walk_done"`
	Total        int64      `db:"total"`
	Enqueued     int64      `db:"enqueued"`
	Done         int64      `db:"done"`
	Added        int64      `db:"added"`
	Updated      int64      `db:"updated"`
	Failed       int64      `db:"failed"`
	StartedAt    time.Time  `db:"started_at"`
	FinishedAt   *time.Time `db:"finished_at"`
}

// NewRun is what StartRun needs. Total is the vendor's record count when
// known (0 otherwise; SetRunTotal can fill it in later).
type NewRun struct {
	OrgID        int64
	ConnectionID int64
	Module       string
	Direction    string
	Since        time.Time
	Total        int64
}

const runColumns = `id, org_id, connection_id, module, direction, status, since, checkpoint, walk_done,
	total, enqueued, done, added, updated, failed, started_at, finished_at`

// StartRun starts a first sync, or returns the one already RUNNING for the
// same connection, module and direction (started is false then), so a
// leader that restarts, or two that briefly overlap, resume one run instead
// of walking twice. Finished and cancelled runs do not block a new one.
func StartRun(ctx context.Context, q Queryer, r NewRun) (run Run, started bool, err error) {
	const action = "starting sync run"
	for range 3 {
		var out []Run
		err = q.SelectContext(ctx, &out, `
			INSERT INTO sync_runs (org_id, connection_id, module, direction, status, since, total)
			VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6)
			ON CONFLICT (connection_id, module, direction) WHERE status = 'RUNNING' DO NOTHING
			RETURNING `+runColumns, r.OrgID, r.ConnectionID, r.Module, r.Direction, r.Since, r.Total)
		if err != nil {
			return Run{}, false, classify(action, err)
		}
		if len(out) == 1 {
			return out[0], true, nil
		}
		err = q.GetContext(ctx, &run, `
			SELECT `+runColumns+` FROM sync_runs
			WHERE org_id = $1 AND connection_id = $2 AND module = $3 AND direction = $4 AND status = 'RUNNING'`,
			r.OrgID, r.ConnectionID, r.Module, r.Direction)
		if err == nil {
			return run, false, nil
		}
		if err = classify(action, err); !errors.Is(err, ErrNotFound) {
			return Run{}, false, err
		}
		// The running one finished between the two statements (or it is
		// another org's connection: then every attempt ends here).
	}
	return Run{}, false, fmt.Errorf("%s: %w", action, ErrNotFound)
}

// RunByID returns one run of the org.
func RunByID(ctx context.Context, q Queryer, orgID, id int64) (Run, error) {
	var out Run
	err := q.GetContext(ctx, &out, `SELECT `+runColumns+` FROM sync_runs WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading sync run", err)
}

// Runs returns a connection's runs, newest first.
func Runs(ctx context.Context, q Queryer, orgID, connID int64) ([]Run, error) {
	out := []Run{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+runColumns+` FROM sync_runs WHERE org_id = $1 AND connection_id = $2
		ORDER BY started_at DESC, id DESC`, orgID, connID)
	if err != nil {
		return nil, fmt.Errorf("listing sync runs: %w", err)
	}
	return out, nil
}

// RunningRuns returns the RUNNING runs of every org, for the leader's
// first-sync driver to resume after a restart.
func RunningRuns(ctx context.Context, q Queryer) ([]Run, error) {
	out := []Run{}
	err := q.SelectContext(ctx, &out, `SELECT `+runColumns+` FROM sync_runs WHERE status = 'RUNNING' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing running sync runs: %w", err)
	}
	return out, nil
}

// LatestRunStart is when the newest first sync of a connection's module
// started, whatever its status; ok is false when it never had one.
func LatestRunStart(ctx context.Context, q Queryer, orgID, connID int64, module string) (start time.Time, ok bool, err error) {
	var at *time.Time
	if err := q.GetContext(ctx, &at, `SELECT max(started_at) FROM sync_runs WHERE org_id = $1 AND connection_id = $2 AND module = $3`,
		orgID, connID, module); err != nil {
		return time.Time{}, false, fmt.Errorf("reading the start of connection %d's last %s sync run: %w", connID, module, err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return *at, true, nil
}

// runNotRunning explains why an update of a RUNNING run matched nothing.
func runNotRunning(ctx context.Context, q Queryer, action string, orgID, id int64) error {
	run, err := RunByID(ctx, q, orgID, id)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return fmt.Errorf("%s: %w (run is %s)", action, ErrConflict, run.Status)
}

// UpdateRunCheckpoint records a walked page: the walk's cursor, how many
// records the page enqueued, and whether the walk reached the end. Call it
// in the transaction that enqueued the page, so checkpoint and queue never
// disagree after a crash. Only a RUNNING run moves (ErrConflict otherwise):
// a cancelled walk must not resume behind the admin's back.
func UpdateRunCheckpoint(ctx context.Context, q Queryer, orgID, runID int64, checkpoint string, enqueuedDelta int64, walkDone bool) (Run, error) {
	const action = "updating sync run checkpoint"
	var out Run
	err := q.GetContext(ctx, &out, `
		UPDATE sync_runs SET checkpoint = $3, enqueued = enqueued + $4, walk_done = walk_done OR $5
		WHERE org_id = $1 AND id = $2 AND status = 'RUNNING'
		RETURNING `+runColumns, orgID, runID, checkpoint, enqueuedDelta, walkDone)
	if err == nil {
		return out, nil
	}
	if err = classify(action, err); !errors.Is(err, ErrNotFound) {
		return Run{}, err
	}
	return Run{}, runNotRunning(ctx, q, action, orgID, runID)
}

// SetRunTotal records the vendor's count of records in the window, once
// known, so progress can be a fraction.
func SetRunTotal(ctx context.Context, q Queryer, orgID, runID, total int64) (Run, error) {
	var out Run
	err := q.GetContext(ctx, &out, `
		UPDATE sync_runs SET total = $3 WHERE org_id = $1 AND id = $2
		RETURNING `+runColumns, orgID, runID, total)
	return out, classify("setting sync run total", err)
}

// RunProgress is what applying a batch of a run's records adds to it.
type RunProgress struct {
	Done    int64
	Added   int64
	Updated int64
	Failed  int64
}

// AddRunProgress adds a batch's counts to the run, in whatever status: items
// in flight when a run is cancelled still finish and are worth counting. It
// returns the run, so the caller can emit SYNC_PROGRESS and notice the end.
func AddRunProgress(ctx context.Context, q Queryer, orgID, runID int64, p RunProgress) (Run, error) {
	var out Run
	err := q.GetContext(ctx, &out, `
		UPDATE sync_runs SET done = done + $3, added = added + $4, updated = updated + $5, failed = failed + $6
		WHERE org_id = $1 AND id = $2
		RETURNING `+runColumns, orgID, runID, p.Done, p.Added, p.Updated, p.Failed)
	return out, classify("adding sync run progress", err)
}

// FinishRun ends a RUNNING run as DONE or CANCELLED. ErrConflict when it
// already ended, so two finishers do not both announce it.
func FinishRun(ctx context.Context, q Queryer, orgID, runID int64, status string) (Run, error) {
	action := "finishing sync run as " + status
	if status != RunDone && status != RunCancelled {
		return Run{}, fmt.Errorf("%s: not a final status", action)
	}
	var out Run
	err := q.GetContext(ctx, &out, `
		UPDATE sync_runs SET status = $3, finished_at = now()
		WHERE org_id = $1 AND id = $2 AND status = 'RUNNING'
		RETURNING `+runColumns, orgID, runID, status)
	if err == nil {
		return out, nil
	}
	if err = classify(action, err); !errors.Is(err, ErrNotFound) {
		return Run{}, err
	}
	return Run{}, runNotRunning(ctx, q, action, orgID, runID)
}

// CancelRuns ends every RUNNING first-sync run of a connection as
// CANCELLED and drops the queued rows those runs enqueued that no worker
// holds and nothing captured since (origin FIRST_SYNC, version 1: any
// later capture bumps the version). Rows being
// applied finish; changes captured meanwhile stay queued, since they are
// ordinary sync work. It returns the cancelled runs and the rows dropped.
func CancelRuns(ctx context.Context, q Queryer, orgID, connID int64) ([]Run, int64, error) {
	const action = "cancelling sync runs"
	runs := []Run{}
	err := q.SelectContext(ctx, &runs, `
		UPDATE sync_runs SET status = 'CANCELLED', finished_at = now()
		WHERE org_id = $1 AND connection_id = $2 AND status = 'RUNNING'
		RETURNING `+runColumns, orgID, connID)
	if err != nil {
		return nil, 0, classify(action, err)
	}
	if len(runs) == 0 {
		return runs, 0, nil
	}
	ids := make([]int64, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	res, err := q.ExecContext(ctx, `
		DELETE FROM change_queue
		WHERE org_id = $1 AND connection_id = $2 AND run_id = ANY($3) AND origin = 'FIRST_SYNC' AND version = 1
			AND (lease_until IS NULL OR lease_until < now())`, orgID, connID, pq.Array(ids))
	if err != nil {
		return nil, 0, classify(action, err)
	}
	dropped, err := res.RowsAffected()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", action, err)
	}
	return runs, dropped, nil
}
