package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Change kinds and origins of the queue (docs/SYNC.md, Queue).
const (
	KindUpsert = "UPSERT"
	KindDelete = "DELETE"

	OriginWebhook     = "WEBHOOK"
	OriginPoll        = "POLL"
	OriginDeletedFeed = "DELETED_FEED"
	OriginFirstSync   = "FIRST_SYNC"
	OriginRetry       = "RETRY"
)

// QueueItem is one row of change_queue: a record that needs applying. The
// queue is a hint, not a payload: the worker reads the record fresh, so only
// the identity and bookkeeping are kept. Version moves with every capture;
// a claimed item carries the version it was claimed at, and LeasedBy and
// LeaseUntil identify the claim for Complete, Retry and Release.
type QueueItem struct {
	ID           int64      `db:"id"`
	OrgID        int64      `db:"org_id"`
	ConnectionID int64      `db:"connection_id"`
	System       string     `db:"system"`
	Module       string     `db:"module"`
	ExtID        string     `db:"ext_id"`
	Kind         string     `db:"kind"`
	Origin       string     `db:"origin"`
	Version      int64      `db:"version"`
	FirstSeenAt  time.Time  `db:"first_seen_at"`
	AvailableAt  time.Time  `db:"available_at"`
	Attempts     int        `db:"attempts"`
	LastError    *string    `db:"last_error"`
	LeasedBy     *string    `db:"leased_by"`
	LeaseUntil   *time.Time `db:"lease_until"`
	RunID        *int64     `db:"run_id"`
}

// NewQueueItem is one captured change for Enqueue.
type NewQueueItem struct {
	System string // the side the change happened on
	Module string
	ExtID  string
	Kind   string // KindUpsert or KindDelete
	Origin string
	RunID  *int64 // the first-sync run that found it, for its progress
}

const queueColumns = `id, org_id, connection_id, system, module, ext_id, kind, origin, version,
	first_seen_at, available_at, attempts, last_error, leased_by, lease_until, run_id`

// Enqueue records captured changes of one connection in one statement, so a
// webhook can answer after a single insert and a polling page commits with
// its cursor. A record already queued is coalesced into its row instead of
// queued twice:
//
//   - version is bumped, so a worker holding the row knows it moved;
//   - kind becomes the latest capture's (a delete after an edit is a delete;
//     an edit after a delete is a restore); the worker reads fresh anyway;
//   - origin and first_seen_at keep the first capture, so "how was this
//     first noticed, and how long ago" stays true (polling catching what
//     webhooks missed is a metric), except that an admin's RETRY replaces the
//     origin, since it is a deliberate request the engine may treat apart;
//   - run_id becomes the latest run's when one is given, so the run walking
//     now counts the record when it is applied;
//   - available_at moves to now if it was later (a backoff ends early: this
//     is a new change), but a row under a live lease is left alone: the
//     holder's Complete sees the new version and makes the row due again;
//   - attempts and last_error are unchanged; Retry and Complete reset them
//     once the claimed version turns out to be stale.
//
// Items repeating a record count once (the last one wins). It returns
// ErrNotFound when the connection is not the org's.
func Enqueue(ctx context.Context, q Queryer, orgID, connID int64, items []NewQueueItem) error {
	const action = "enqueueing changes"
	if len(items) == 0 {
		return nil
	}
	// One row per record (ON CONFLICT cannot touch a row twice in one
	// statement), in key order, so concurrent enqueues of overlapping
	// batches lock rows in the same order and cannot deadlock.
	type key struct{ system, module, extID string }
	last := map[key]int{}
	for i, it := range items {
		last[key{it.System, it.Module, it.ExtID}] = i
	}
	uniq := make([]NewQueueItem, 0, len(last))
	for i, it := range items {
		if last[key{it.System, it.Module, it.ExtID}] == i {
			uniq = append(uniq, it)
		}
	}
	slices.SortFunc(uniq, func(a, b NewQueueItem) int {
		return cmp.Or(cmp.Compare(a.System, b.System), cmp.Compare(a.Module, b.Module), cmp.Compare(a.ExtID, b.ExtID))
	})
	var systems, modules, extIDs, kinds, origins []string
	var runIDs []int64 // 0 = none; serial ids start at 1
	for _, it := range uniq {
		systems = append(systems, it.System)
		modules = append(modules, it.Module)
		extIDs = append(extIDs, it.ExtID)
		kinds = append(kinds, it.Kind)
		origins = append(origins, it.Origin)
		var run int64
		if it.RunID != nil {
			run = *it.RunID
		}
		runIDs = append(runIDs, run)
	}
	// The upsert CTE runs to completion although nothing reads it; the
	// final SELECT only says whether the connection was the org's.
	var found bool
	err := q.GetContext(ctx, &found, `
		WITH conn AS (
			SELECT org_id, id FROM connections WHERE org_id = $1 AND id = $2
		), up AS (
			INSERT INTO change_queue AS cq (org_id, connection_id, system, module, ext_id, kind, origin, run_id)
			SELECT conn.org_id, conn.id, i.system, i.module, i.ext_id, i.kind, i.origin, NULLIF(i.run_id, 0)
			FROM conn, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
				AS i(system, module, ext_id, kind, origin, run_id)
			ON CONFLICT (connection_id, system, module, ext_id) DO UPDATE SET
				version = cq.version + 1,
				kind = EXCLUDED.kind,
				origin = CASE WHEN EXCLUDED.origin = 'RETRY' THEN 'RETRY' ELSE cq.origin END,
				run_id = COALESCE(EXCLUDED.run_id, cq.run_id),
				available_at = CASE WHEN cq.lease_until > now() THEN cq.available_at
					ELSE LEAST(cq.available_at, now()) END
		)
		SELECT EXISTS (SELECT 1 FROM conn)`,
		orgID, connID, pq.Array(systems), pq.Array(modules), pq.Array(extIDs), pq.Array(kinds),
		pq.Array(origins), pq.Array(runIDs))
	if err != nil {
		return classify(action, err)
	}
	if !found {
		return fmt.Errorf("%s: connection: %w", action, ErrNotFound)
	}
	return nil
}

// ClaimOptions says what a worker claims.
type ClaimOptions struct {
	// Worker names the claimer in leased_by; make it unique per worker
	// (host, process, goroutine) so one worker's Complete cannot release
	// another's claim.
	Worker string
	// ConnectionIDs limits the claim to these connections; nil means every
	// connection, and an empty non-nil slice means none. Either way only
	// ACTIVE connections are claimed from: pausing stops the workers.
	ConnectionIDs []int64
	Limit         int
	Lease         time.Duration
}

// Claim leases up to Limit due rows (available_at passed, no live lease),
// oldest first, and returns them. Rows other claimers hold are skipped, not
// waited for (FOR UPDATE SKIP LOCKED), so any number of workers on any
// number of replicas share the queue without taking a row twice. A worker
// that dies simply lets its lease expire and another claims the row.
//
// Call it on the pool, not inside a longer transaction: the lease must be
// committed at once to mean anything to other workers.
func Claim(ctx context.Context, q Queryer, o ClaimOptions) ([]QueueItem, error) {
	const action = "claiming queue items"
	if o.Worker == "" || o.Limit <= 0 || o.Lease <= 0 {
		return nil, fmt.Errorf("%s: worker, limit and lease are required", action)
	}
	var connIDs any // NULL: every connection
	if o.ConnectionIDs != nil {
		connIDs = pq.Array(o.ConnectionIDs)
	}
	out := []QueueItem{}
	// The CTE is MATERIALIZED so the locked pick runs exactly once; a
	// subquery inlined into the UPDATE could be re-run and exceed LIMIT.
	// The active connections are read once into an array rather than
	// joined: joined, the planner starts from the connection and sorts all
	// its due rows (a first sync queues thousands) on every claim, instead
	// of walking change_queue_claim in order and stopping at LIMIT.
	err := q.SelectContext(ctx, &out, `
		WITH picked AS MATERIALIZED (
			SELECT cq.id FROM change_queue cq
			WHERE cq.available_at <= now()
			  AND (cq.lease_until IS NULL OR cq.lease_until <= now())
			  AND ($1::bigint[] IS NULL OR cq.connection_id = ANY($1::bigint[]))
			  AND cq.connection_id = ANY(ARRAY(SELECT c.id FROM connections c WHERE c.status = 'ACTIVE'))
			ORDER BY cq.available_at, cq.id
			LIMIT $2
			FOR UPDATE OF cq SKIP LOCKED
		)
		UPDATE change_queue cq SET leased_by = $3, lease_until = now() + $4::bigint * interval '1 microsecond'
		FROM picked WHERE cq.id = picked.id
		RETURNING `+prefixColumns("cq.", queueColumns),
		connIDs, o.Limit, o.Worker, o.Lease.Microseconds())
	if err != nil {
		return nil, classify(action, err)
	}
	slices.SortFunc(out, func(a, b QueueItem) int {
		return cmp.Or(a.AvailableAt.Compare(b.AvailableAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// claimTokens turns claimed items into arrays identifying each claim: id,
// version, holder and lease end. A lease end is sent as text because lib/pq
// cannot send a time array; microseconds round-trip exactly.
func claimTokens(action string, items []QueueItem) (ids, versions []int64, holders, leases []string, err error) {
	for _, it := range items {
		if it.LeasedBy == nil || it.LeaseUntil == nil {
			return nil, nil, nil, nil, fmt.Errorf("%s: item %d was not claimed", action, it.ID)
		}
		ids = append(ids, it.ID)
		versions = append(versions, it.Version)
		holders = append(holders, *it.LeasedBy)
		leases = append(leases, it.LeaseUntil.UTC().Format("2006-01-02T15:04:05.999999Z07:00"))
	}
	return ids, versions, holders, leases, nil
}

// Complete finishes claimed items after they were applied (or deliberately
// dropped). Each row is deleted only if its version is still the claimed
// one; a row re-captured meanwhile stays, its lease is released and it is
// due at once with a fresh attempt budget, so the newer change is applied
// too and never lost. It returns the ids of such rows. A row whose lease
// expired and was claimed again is still deleted if its version did not
// move: that change has been applied, and the other holder's Complete then
// simply finds nothing.
//
// It is two statements on purpose: the release must see versions bumped by
// captures that committed while the delete waited for their row locks.
func Complete(ctx context.Context, q Queryer, items []QueueItem) (requeued []int64, err error) {
	const action = "completing queue items"
	if len(items) == 0 {
		return []int64{}, nil
	}
	ids, versions, holders, leases, err := claimTokens(action, items)
	if err != nil {
		return nil, err
	}
	if _, err := q.ExecContext(ctx, `
		DELETE FROM change_queue cq
		USING unnest($1::bigint[], $2::bigint[]) AS d(id, version)
		WHERE cq.id = d.id AND cq.version = d.version`,
		pq.Array(ids), pq.Array(versions)); err != nil {
		return nil, classify(action, err)
	}
	requeued = []int64{}
	err = q.SelectContext(ctx, &requeued, `
		UPDATE change_queue cq SET leased_by = NULL, lease_until = NULL, attempts = 0, last_error = NULL,
			available_at = LEAST(cq.available_at, now())
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[]) AS d(id, version, leased_by, lease_until)
		WHERE cq.id = d.id AND cq.version <> d.version AND cq.leased_by = d.leased_by AND cq.lease_until = d.lease_until
		RETURNING cq.id`,
		pq.Array(ids), pq.Array(versions), pq.Array(holders), pq.Array(leases))
	if err != nil {
		return nil, classify(action, err)
	}
	slices.Sort(requeued)
	return requeued, nil
}

// Retry gives a claimed item back after a transient failure (5xx, timeout,
// rate limit): the lease is released and the row is due after delay, which
// the caller computes with exponential backoff and the vendor's RetryAfter.
// If the version is still the claimed one, attempts grows by one (the
// caller compares it with its budget and records a failure when spent). If
// the record was captured again meanwhile, this is a new change: attempts
// restart at 0. The delay applies either way, because it is about the
// upstream (a rate limit does not lift because a record changed again).
//
// It returns the row as it now is, or ErrNotFound when the claim is gone
// (the lease expired and someone else holds or finished the row).
func Retry(ctx context.Context, q Queryer, item QueueItem, delay time.Duration, lastErr string) (QueueItem, error) {
	const action = "retrying queue item"
	if item.LeasedBy == nil || item.LeaseUntil == nil {
		return QueueItem{}, fmt.Errorf("%s: item %d was not claimed", action, item.ID)
	}
	var out QueueItem
	err := q.GetContext(ctx, &out, `
		UPDATE change_queue SET
			attempts = CASE WHEN version = $2 THEN attempts + 1 ELSE 0 END,
			last_error = $5,
			available_at = now() + $6::bigint * interval '1 microsecond',
			leased_by = NULL, lease_until = NULL
		WHERE id = $1 AND leased_by = $3 AND lease_until = $4
		RETURNING `+queueColumns,
		item.ID, item.Version, *item.LeasedBy, *item.LeaseUntil, lastErr, max(delay, 0).Microseconds())
	return out, classify(action, err)
}

// Release gives claimed items back untouched, due at once for any worker:
// for a worker shutting down, or one that found its connection paused.
// Claims that are no longer the caller's are left alone.
func Release(ctx context.Context, q Queryer, items []QueueItem) error {
	const action = "releasing queue items"
	if len(items) == 0 {
		return nil
	}
	ids, _, holders, leases, err := claimTokens(action, items)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `
		UPDATE change_queue cq SET leased_by = NULL, lease_until = NULL
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS d(id, leased_by, lease_until)
		WHERE cq.id = d.id AND cq.leased_by = d.leased_by AND cq.lease_until = d.lease_until`,
		pq.Array(ids), pq.Array(holders), pq.Array(leases))
	return classify(action, err)
}

// QueuedForRun counts the rows of a first-sync run still in the queue, so
// its walk can pause while the workers catch up.
func QueuedForRun(ctx context.Context, q Queryer, runID int64) (int64, error) {
	var n int64
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM change_queue WHERE run_id = $1`, runID)
	if err != nil {
		return 0, fmt.Errorf("counting queued rows of sync run %d: %w", runID, err)
	}
	return n, nil
}

// ClearQueue drops every queued change of a connection, for removal (A6:
// a removed connection stops everything). It returns how many were dropped.
func ClearQueue(ctx context.Context, q Queryer, orgID, connID int64) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM change_queue WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return 0, classify("clearing queue", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("clearing queue: %w", err)
	}
	return n, nil
}

// QueueDepth is a connection's backlog for one system and module, for
// metrics and the admin's "N changes waiting".
type QueueDepth struct {
	System string `db:"system"`
	Module string `db:"module"`
	// Total rows, of which Due can be claimed now, Leased are being applied
	// and Retrying have failed at least once.
	Total    int64 `db:"total"`
	Due      int64 `db:"due"`
	Leased   int64 `db:"leased"`
	Retrying int64 `db:"retrying"`
	// OldestFirstSeen is when the longest-waiting change was captured.
	OldestFirstSeen time.Time `db:"oldest_first_seen"`
}

// QueueDepths returns the backlog of a connection per system and module.
func QueueDepths(ctx context.Context, q Queryer, orgID, connID int64) ([]QueueDepth, error) {
	out := []QueueDepth{}
	err := q.SelectContext(ctx, &out, `
		SELECT system, module, count(*) AS total,
			count(*) FILTER (WHERE available_at <= now() AND (lease_until IS NULL OR lease_until <= now())) AS due,
			count(*) FILTER (WHERE lease_until > now()) AS leased,
			count(*) FILTER (WHERE attempts > 0) AS retrying,
			min(first_seen_at) AS oldest_first_seen
		FROM change_queue WHERE org_id = $1 AND connection_id = $2
		GROUP BY system, module ORDER BY system, module`, orgID, connID)
	if err != nil {
		return nil, fmt.Errorf("measuring queue depth: %w", err)
	}
	return out, nil
}

// Cursor purposes: where polling stands, and where the deleted feed stands.
const (
	CursorPoll        = "POLL"
	CursorDeletedFeed = "DELETED_FEED"
)

// GetCursor returns where polling (or the deleted feed) of a module stands,
// ErrNotFound before the first poll.
func GetCursor(ctx context.Context, q Queryer, orgID, connID int64, system, module, purpose string) (string, error) {
	var cursor string
	err := q.GetContext(ctx, &cursor, `
		SELECT cursor FROM sync_cursors
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4 AND purpose = $5`,
		orgID, connID, system, module, purpose)
	return cursor, classify("loading sync cursor", err)
}

// PutCursor stores where polling stands. Call it in the transaction that
// enqueued the page's changes, so a crash never moves the cursor past
// changes that were not queued. ErrNotFound when the connection is not the
// org's (the guard in the update branch stops a write to another org's row,
// which the foreign key would not re-check).
func PutCursor(ctx context.Context, q Queryer, orgID, connID int64, system, module, purpose, cursor string) error {
	var n int
	err := q.GetContext(ctx, &n, `
		INSERT INTO sync_cursors (org_id, connection_id, system, module, purpose, cursor)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (connection_id, system, module, purpose) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
		WHERE sync_cursors.org_id = EXCLUDED.org_id
		RETURNING 1`, orgID, connID, system, module, purpose, cursor)
	return classify("storing sync cursor", err)
}

// prefixColumns qualifies a column list, for RETURNING in an UPDATE ...
// FROM, where a bare id would be ambiguous.
func prefixColumns(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// Postpone hands claimed rows back, due again after delay, without counting
// an attempt: the worker could not apply them now for a reason that is not
// theirs (another worker is applying the same connection and module).
func Postpone(ctx context.Context, q Queryer, items []QueueItem, delay time.Duration) error {
	const action = "postponing queue items"
	if len(items) == 0 {
		return nil
	}
	ids, _, holders, leases, err := claimTokens(action, items)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `
		UPDATE change_queue cq SET leased_by = NULL, lease_until = NULL,
			available_at = GREATEST(cq.available_at, now() + make_interval(secs => $4))
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS d(id, leased_by, lease_until)
		WHERE cq.id = d.id AND cq.leased_by = d.leased_by AND cq.lease_until = d.lease_until`,
		pq.Array(ids), pq.Array(holders), pq.Array(leases), delay.Seconds())
	return classify(action, err)
}
