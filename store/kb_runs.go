package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// KB run triggers and statuses.
const (
	KBTriggerScheduled = "SCHEDULED"
	KBTriggerManual    = "MANUAL"
	KBTriggerRetry     = "RETRY"

	KBRunQueued    = "QUEUED"
	KBRunRunning   = "RUNNING"
	KBRunDone      = "DONE"
	KBRunFailed    = "FAILED"
	KBRunCancelled = "CANCELLED"
)

// ErrKBRunActive means the connection already has a queued or running KB
// run (one at a time). It wraps ErrConflict.
var ErrKBRunActive = fmt.Errorf("a kb sync of the connection is already queued or running: %w", ErrConflict)

// ErrKBSlotTaken means a run for that scheduled slot exists already. It
// wraps ErrConflict.
var ErrKBSlotTaken = fmt.Errorf("the scheduled kb sync slot has a run already: %w", ErrConflict)

// KBCounts are a run's counters: desk articles looked at, and what became
// of them on the chat side.
type KBCounts struct {
	Listed    int64 `db:"listed"`
	Added     int64 `db:"added"`
	Updated   int64 `db:"updated"`
	Deleted   int64 `db:"deleted"`
	Unchanged int64 `db:"unchanged"`
	Failed    int64 `db:"failed"`
}

// KBRun is one KB sync run: scheduled (for ScheduledFor), started by an
// admin ("sync now"), or a retry of failed articles (ArticleIDs).
type KBRun struct {
	ID           int64          `db:"id"`
	OrgID        int64          `db:"org_id"`
	ConnectionID int64          `db:"connection_id"`
	Trigger      string         `db:"trigger"`
	Status       string         `db:"status"`
	ScheduledFor *time.Time     `db:"scheduled_for"`
	ArticleIDs   pq.StringArray `db:"article_ids"`
	KBCounts
	Error      *string    `db:"error"`
	Attempts   int        `db:"attempts"`
	Runner     *string    `db:"runner"`
	CreatedBy  *int64     `db:"created_by"`
	CreatedAt  time.Time  `db:"created_at"`
	StartedAt  *time.Time `db:"started_at"`
	FinishedAt *time.Time `db:"finished_at"`
}

const kbRunColumns = `id, org_id, connection_id, trigger, status, scheduled_for, article_ids, listed, added, updated,
	deleted, unchanged, failed, error, attempts, runner, created_by, created_at, started_at, finished_at`

// NewKBRun is what InsertKBRun needs.
type NewKBRun struct {
	OrgID        int64
	ConnectionID int64
	Trigger      string
	ScheduledFor *time.Time
	ArticleIDs   []string
	CreatedBy    *int64
	CreatedAt    time.Time
}

// InsertKBRun queues a run. ErrKBRunActive when the connection has a
// queued or running one, ErrKBSlotTaken when the scheduled slot has one.
func InsertKBRun(ctx context.Context, q Queryer, r NewKBRun) (KBRun, error) {
	var ids any
	if r.ArticleIDs != nil {
		ids = pq.Array(r.ArticleIDs)
	}
	var out KBRun
	err := q.GetContext(ctx, &out, `
		INSERT INTO kb_sync_runs (org_id, connection_id, trigger, status, scheduled_for, article_ids, created_by, created_at)
		VALUES ($1, $2, $3, 'QUEUED', $4, $5, $6, $7)
		RETURNING `+kbRunColumns, r.OrgID, r.ConnectionID, r.Trigger, r.ScheduledFor, ids, r.CreatedBy, r.CreatedAt)
	if err != nil {
		return KBRun{}, classifyUnique("queueing kb sync run", err, map[string]error{
			"kb_sync_runs_active": ErrKBRunActive, "kb_sync_runs_slot": ErrKBSlotTaken})
	}
	return out, nil
}

// GetKBRun returns one run of the org.
func GetKBRun(ctx context.Context, q Queryer, orgID, id int64) (KBRun, error) {
	var out KBRun
	err := q.GetContext(ctx, &out, `SELECT `+kbRunColumns+` FROM kb_sync_runs WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading kb sync run", err)
}

// ActiveKBRun returns the connection's queued or running run; ErrNotFound
// when there is none.
func ActiveKBRun(ctx context.Context, q Queryer, orgID, connID int64) (KBRun, error) {
	var out KBRun
	err := q.GetContext(ctx, &out, `SELECT `+kbRunColumns+` FROM kb_sync_runs
		WHERE org_id = $1 AND connection_id = $2 AND status IN ('QUEUED', 'RUNNING')`, orgID, connID)
	return out, classify("loading the active kb sync run", err)
}

// ClaimKBRun starts a queued run: the one with id runID, or (runID 0) the
// oldest of any connection. SKIP LOCKED makes each run start once,
// whatever the number of replicas asking. ErrNotFound when none is queued.
func ClaimKBRun(ctx context.Context, q Queryer, runID int64, runner string, at time.Time) (KBRun, error) {
	var out KBRun
	err := q.GetContext(ctx, &out, `
		UPDATE kb_sync_runs SET status = 'RUNNING', started_at = $3, heartbeat_at = now(), runner = $2,
			attempts = attempts + 1
		WHERE id = (SELECT id FROM kb_sync_runs WHERE status = 'QUEUED' AND ($1 = 0 OR id = $1)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+kbRunColumns, runID, runner, at)
	return out, classify("starting a kb sync run", err)
}

// AddKBRunCounts adds a page's counters to a running run and renews its
// heartbeat. attempt fences the claim: ErrNotFound when the run is no
// longer RUNNING under that attempt (its runner was taken for dead, and
// the run was queued or started again).
func AddKBRunCounts(ctx context.Context, q Queryer, runID int64, attempt int, c KBCounts) error {
	var n int
	err := q.GetContext(ctx, &n, `
		UPDATE kb_sync_runs SET listed = listed + $3, added = added + $4, updated = updated + $5,
			deleted = deleted + $6, unchanged = unchanged + $7, failed = failed + $8, heartbeat_at = now()
		WHERE id = $1 AND attempts = $2 AND status = 'RUNNING' RETURNING 1`,
		runID, attempt, c.Listed, c.Added, c.Updated, c.Deleted, c.Unchanged, c.Failed)
	return classify("counting kb sync run", err)
}

// BeatKBRun renews a running run's heartbeat (database time) under its
// attempt; ErrNotFound when the run is no longer this runner's.
func BeatKBRun(ctx context.Context, q Queryer, runID int64, attempt int) error {
	var n int
	err := q.GetContext(ctx, &n, `UPDATE kb_sync_runs SET heartbeat_at = now()
		WHERE id = $1 AND attempts = $2 AND status = 'RUNNING' RETURNING 1`, runID, attempt)
	return classify("renewing kb sync run heartbeat", err)
}

// FinishKBRun ends a running run with status (DONE, FAILED or CANCELLED)
// and an error message for FAILED ones; ErrNotFound when the run is no
// longer RUNNING under attempt.
func FinishKBRun(ctx context.Context, q Queryer, runID int64, attempt int, status string, msg *string, at time.Time) (KBRun, error) {
	var out KBRun
	err := q.GetContext(ctx, &out, `
		UPDATE kb_sync_runs SET status = $3, error = $4, finished_at = $5, heartbeat_at = NULL
		WHERE id = $1 AND attempts = $2 AND status = 'RUNNING'
		RETURNING `+kbRunColumns, runID, attempt, status, msg, at)
	return out, classify("finishing kb sync run", err)
}

// RequeueKBRun puts a run this runner stops without finishing (the
// process is shutting down) back in the queue, so the next tick starts it
// again at once.
func RequeueKBRun(ctx context.Context, q Queryer, runID int64, attempt int) error {
	_, err := q.ExecContext(ctx, `UPDATE kb_sync_runs SET status = 'QUEUED', heartbeat_at = NULL, runner = NULL
		WHERE id = $1 AND attempts = $2 AND status = 'RUNNING'`, runID, attempt)
	return classify("requeueing kb sync run", err)
}

// CancelQueuedKBRuns cancels a connection's queued runs (the sync was
// disabled), returning how many.
func CancelQueuedKBRuns(ctx context.Context, q Queryer, orgID, connID int64, at time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE kb_sync_runs SET status = 'CANCELLED', finished_at = $3,
		error = 'the KB sync was disabled before the run started'
		WHERE org_id = $1 AND connection_id = $2 AND status = 'QUEUED'`, orgID, connID, at)
	if err != nil {
		return 0, classify("cancelling queued kb sync runs", err)
	}
	return res.RowsAffected()
}

// RequeueStaleKBRuns puts back in the queue the running runs whose
// heartbeat (database time) is older than staleAfter: their replica died.
// A run started maxAttempts times already fails instead. Runs are
// idempotent, so starting one again rewrites nothing it already wrote.
func RequeueStaleKBRuns(ctx context.Context, q Queryer, staleAfter time.Duration, maxAttempts int, at time.Time) (requeued, failed int64, err error) {
	var rows []struct {
		Status string `db:"status"`
	}
	err = q.SelectContext(ctx, &rows, `
		UPDATE kb_sync_runs SET
			status = CASE WHEN attempts >= $2 THEN 'FAILED' ELSE 'QUEUED' END,
			error = CASE WHEN attempts >= $2 THEN 'the replica running it stopped, ' || attempts || ' times' ELSE error END,
			finished_at = CASE WHEN attempts >= $2 THEN $3::timestamptz ELSE NULL END,
			heartbeat_at = NULL, runner = NULL
		WHERE status = 'RUNNING' AND heartbeat_at < now() - $1::interval
		RETURNING status`, fmt.Sprintf("%d milliseconds", staleAfter.Milliseconds()), maxAttempts, at)
	if err != nil {
		return 0, 0, classify("requeueing stale kb sync runs", err)
	}
	for _, r := range rows {
		if r.Status == KBRunQueued {
			requeued++
		} else {
			failed++
		}
	}
	return requeued, failed, nil
}

// ListKBRuns returns up to first runs of a connection, newest first, older
// than the run beforeID (0 = from the newest).
func ListKBRuns(ctx context.Context, q Queryer, orgID, connID int64, first int, beforeID int64) ([]KBRun, error) {
	out := []KBRun{}
	err := q.SelectContext(ctx, &out, `SELECT `+kbRunColumns+` FROM kb_sync_runs
		WHERE org_id = $1 AND connection_id = $2 AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, orgID, connID, beforeID, first)
	if err != nil {
		return nil, fmt.Errorf("listing kb sync runs: %w", err)
	}
	return out, nil
}

// PruneKBRuns deletes finished runs that ended before before, returning
// how many.
func PruneKBRuns(ctx context.Context, q Queryer, before time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM kb_sync_runs WHERE finished_at < $1`, before)
	if err != nil {
		return 0, classify("pruning kb sync runs", err)
	}
	return res.RowsAffected()
}

// KB failure operations.
const (
	KBOpCreate = "CREATE"
	KBOpUpdate = "UPDATE"
	KBOpDelete = "DELETE"
	KBOpRead   = "READ"
)

// KBFailure is a desk article that could not be synced: one open line per
// article, however often it failed.
type KBFailure struct {
	ID               int64      `db:"id"`
	OrgID            int64      `db:"org_id"`
	ConnectionID     int64      `db:"connection_id"`
	DeskArticleID    string     `db:"desk_article_id"`
	SalesIQArticleID *string    `db:"salesiq_article_id"`
	Title            *string    `db:"title"`
	Operation        string     `db:"operation"`
	Reason           string     `db:"reason"`
	Message          string     `db:"message"`
	VendorCode       *string    `db:"vendor_code"`
	Attempts         int        `db:"attempts"`
	RunID            *int64     `db:"run_id"`
	OccurredAt       time.Time  `db:"occurred_at"`
	RetriedAt        *time.Time `db:"retried_at"`
	ResolvedAt       *time.Time `db:"resolved_at"`
}

const kbFailureColumns = `id, org_id, connection_id, desk_article_id, salesiq_article_id, title, operation, reason,
	message, vendor_code, attempts, run_id, occurred_at, retried_at, resolved_at`

// NewKBFailure is what RecordKBFailure needs.
type NewKBFailure struct {
	OrgID            int64
	ConnectionID     int64
	DeskArticleID    string
	SalesIQArticleID *string
	Title            *string
	Operation        string
	Reason           string
	Message          string
	VendorCode       *string
	RunID            int64
	At               time.Time
}

// RecordKBFailure opens a failure for an article, or updates its open one
// (attempts + 1, the latest reason, occurred at).
func RecordKBFailure(ctx context.Context, q Queryer, f NewKBFailure) (KBFailure, error) {
	var out KBFailure
	err := q.GetContext(ctx, &out, `
		INSERT INTO kb_sync_failures AS f (org_id, connection_id, desk_article_id, salesiq_article_id, title, operation,
			reason, message, vendor_code, run_id, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (connection_id, desk_article_id) WHERE resolved_at IS NULL DO UPDATE SET
			attempts = f.attempts + 1, salesiq_article_id = COALESCE(EXCLUDED.salesiq_article_id, f.salesiq_article_id),
			title = COALESCE(EXCLUDED.title, f.title), operation = EXCLUDED.operation, reason = EXCLUDED.reason,
			message = EXCLUDED.message, vendor_code = EXCLUDED.vendor_code, run_id = EXCLUDED.run_id,
			occurred_at = EXCLUDED.occurred_at
		WHERE f.org_id = EXCLUDED.org_id
		RETURNING `+kbFailureColumns,
		f.OrgID, f.ConnectionID, f.DeskArticleID, f.SalesIQArticleID, f.Title, f.Operation, f.Reason, f.Message,
		f.VendorCode, f.RunID, f.At)
	return out, classify("recording kb sync failure", err)
}

// ResolveKBFailures closes the open failures of articles that have now
// synced (or left the sync), returning how many.
func ResolveKBFailures(ctx context.Context, q Queryer, orgID, connID int64, deskIDs []string, at time.Time) (int64, error) {
	if len(deskIDs) == 0 {
		return 0, nil
	}
	res, err := q.ExecContext(ctx, `UPDATE kb_sync_failures SET resolved_at = $4
		WHERE org_id = $1 AND connection_id = $2 AND desk_article_id = ANY($3) AND resolved_at IS NULL`,
		orgID, connID, pq.Array(deskIDs), at)
	if err != nil {
		return 0, classify("resolving kb sync failures", err)
	}
	return res.RowsAffected()
}

// ListKBFailures returns up to first failures of a connection in time
// order (oldest first), after the failure afterID (0 = from the start);
// resolved ones only on request.
func ListKBFailures(ctx context.Context, q Queryer, orgID, connID int64, includeResolved bool, first int, afterID int64) ([]KBFailure, error) {
	out := []KBFailure{}
	err := q.SelectContext(ctx, &out, `SELECT `+kbFailureColumns+` FROM kb_sync_failures
		WHERE org_id = $1 AND connection_id = $2 AND ($3 OR resolved_at IS NULL)
		  AND ($4 = 0 OR (occurred_at, id) > (SELECT occurred_at, id FROM kb_sync_failures WHERE org_id = $1 AND id = $4))
		ORDER BY occurred_at, id LIMIT $5`, orgID, connID, includeResolved, afterID, first)
	if err != nil {
		return nil, fmt.Errorf("listing kb sync failures: %w", err)
	}
	return out, nil
}

// KBFailuresForRetry marks open failures retried and returns them: ids nil
// means every open failure of the connection; ids of other orgs or
// connections, or already resolved, are skipped.
func KBFailuresForRetry(ctx context.Context, q Queryer, orgID, connID int64, ids []int64, at time.Time) ([]KBFailure, error) {
	var idArg any
	if ids != nil {
		idArg = pq.Array(ids)
	}
	out := []KBFailure{}
	err := q.SelectContext(ctx, &out, `
		UPDATE kb_sync_failures SET retried_at = $4
		WHERE org_id = $1 AND connection_id = $2 AND resolved_at IS NULL
		  AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
		RETURNING `+kbFailureColumns, orgID, connID, idArg, at)
	if err != nil {
		return nil, classify("marking kb sync failures for retry", err)
	}
	slices.SortFunc(out, func(a, b KBFailure) int {
		return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
