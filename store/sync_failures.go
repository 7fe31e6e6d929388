package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// Failure is a record that could not be synced (B14): what, which way, why
// (the connector's reason and fields, the vendor's code and raw answer),
// how often, and whether an admin retried it or it has since synced. A
// record has at most one open failure; repeats bump Attempts.
type Failure struct {
	ID           int64          `db:"id"`
	OrgID        int64          `db:"org_id"`
	ConnectionID int64          `db:"connection_id"`
	Module       string         `db:"module"`
	Direction    string         `db:"direction"`
	SourceSystem string         `db:"source_system"`
	SourceID     string         `db:"source_id"`
	TargetID     *string        `db:"target_id"`
	Reason       string         `db:"reason"`
	Fields       pq.StringArray `db:"fields"`
	Message      string         `db:"message"`
	VendorCode   *string        `db:"vendor_code"`
	RawError     []byte         `db:"raw_error"`
	Attempts     int            `db:"attempts"`
	OccurredAt   time.Time      `db:"occurred_at"`
	RetriedAt    *time.Time     `db:"retried_at"`
	ResolvedAt   *time.Time     `db:"resolved_at"`
}

// NewFailure is what RecordFailure needs.
type NewFailure struct {
	OrgID        int64
	ConnectionID int64
	Module       string
	Direction    string
	SourceSystem string
	SourceID     string
	TargetID     *string
	Reason       string
	Fields       []string
	Message      string
	VendorCode   *string
	RawError     []byte
}

const failureColumns = `id, org_id, connection_id, module, direction, source_system, source_id, target_id,
	reason, fields, message, vendor_code, raw_error, attempts, occurred_at, retried_at, resolved_at`

// bytesArg passes optional bytes: lib/pq would store a nil slice as an
// empty bytea rather than NULL.
func bytesArg(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// RecordFailure records that a record failed, or, when it already has an
// open failure, updates that one (attempts + 1, the latest reason, message,
// fields and raw error, occurred now), so the admin's list shows one line
// per broken record rather than one per attempt. ErrNotFound when the
// connection is not the org's.
func RecordFailure(ctx context.Context, q Queryer, f NewFailure) (Failure, error) {
	var out Failure
	err := q.GetContext(ctx, &out, `
		INSERT INTO sync_failures AS f (org_id, connection_id, module, direction, source_system, source_id,
			target_id, reason, fields, message, vendor_code, raw_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (connection_id, source_system, module, source_id) WHERE resolved_at IS NULL DO UPDATE SET
			attempts = f.attempts + 1,
			direction = EXCLUDED.direction,
			target_id = COALESCE(EXCLUDED.target_id, f.target_id),
			reason = EXCLUDED.reason,
			fields = EXCLUDED.fields,
			message = EXCLUDED.message,
			vendor_code = EXCLUDED.vendor_code,
			raw_error = EXCLUDED.raw_error,
			occurred_at = now()
		WHERE f.org_id = EXCLUDED.org_id
		RETURNING `+failureColumns,
		f.OrgID, f.ConnectionID, f.Module, f.Direction, f.SourceSystem, f.SourceID, f.TargetID,
		f.Reason, pq.Array(nonNil(f.Fields)), f.Message, f.VendorCode, bytesArg(f.RawError))
	return out, classify("recording sync failure", err)
}

// FailureByID returns one failure of the org.
func FailureByID(ctx context.Context, q Queryer, orgID, id int64) (Failure, error) {
	var out Failure
	err := q.GetContext(ctx, &out, `SELECT `+failureColumns+` FROM sync_failures WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading sync failure", err)
}

// FailureFilter selects a connection's failures for the admin's list.
type FailureFilter struct {
	OrgID        int64
	ConnectionID int64
	Module       string // "" = every module
	// IncludeResolved adds failures of records that synced since; by
	// default the list is what still needs attention.
	IncludeResolved bool
}

// ListFailures returns up to first failures in time order (oldest first,
// by when they last occurred), after the failure afterID (0 = from the
// start). The cursor is the row's position, not its id, so pages stay
// consistent while ids and times disagree; an afterID that is not the org's
// gives an empty page. A failure that happens again moves to the end.
func ListFailures(ctx context.Context, q Queryer, f FailureFilter, first int, afterID int64) ([]Failure, error) {
	out := []Failure{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+failureColumns+` FROM sync_failures
		WHERE org_id = $1 AND connection_id = $2 AND ($3 = '' OR module = $3) AND ($4 OR resolved_at IS NULL)
		  AND ($5 = 0 OR (occurred_at, id) > (SELECT occurred_at, id FROM sync_failures WHERE org_id = $1 AND id = $5))
		ORDER BY occurred_at, id LIMIT $6`,
		f.OrgID, f.ConnectionID, f.Module, f.IncludeResolved, afterID, first)
	if err != nil {
		return nil, fmt.Errorf("listing sync failures: %w", err)
	}
	return out, nil
}

// ResolveFailures closes the open failures of records that have now synced,
// so they leave the admin's list and a later failure opens a new line. It
// returns how many it closed.
func ResolveFailures(ctx context.Context, q Queryer, orgID, connID int64, sourceSystem, module string, sourceIDs []string) (int64, error) {
	res, err := q.ExecContext(ctx, `
		UPDATE sync_failures SET resolved_at = now()
		WHERE org_id = $1 AND connection_id = $2 AND source_system = $3 AND module = $4
		  AND source_id = ANY($5) AND resolved_at IS NULL`,
		orgID, connID, sourceSystem, module, pq.Array(nonNil(sourceIDs)))
	if err != nil {
		return 0, classify("resolving sync failures", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("resolving sync failures: %w", err)
	}
	return n, nil
}

// FailuresForRetry marks open failures as retried and returns them, in one
// statement, for retrySyncFailures: the caller enqueues their records (origin
// RETRY) in the same transaction. ids nil means every open failure of the
// connection; ids of other orgs or connections, or already resolved, are
// skipped rather than reported, so a retry never reaches another org.
func FailuresForRetry(ctx context.Context, q Queryer, orgID, connID int64, ids []int64) ([]Failure, error) {
	var idArg any // NULL: all
	if ids != nil {
		idArg = pq.Array(ids)
	}
	out := []Failure{}
	err := q.SelectContext(ctx, &out, `
		UPDATE sync_failures SET retried_at = now()
		WHERE org_id = $1 AND connection_id = $2 AND resolved_at IS NULL
		  AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
		RETURNING `+failureColumns, orgID, connID, idArg)
	if err != nil {
		return nil, classify("marking sync failures for retry", err)
	}
	sortFailures(out)
	return out, nil
}

// sortFailures puts failures in list order; RETURNING promises none.
func sortFailures(fs []Failure) {
	slices.SortFunc(fs, func(a, b Failure) int {
		return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.ID, b.ID))
	})
}
