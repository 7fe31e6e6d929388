package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// EventsChannel is the NOTIFY channel that carries new event ids.
const EventsChannel = "deskbridge_events"

// Event is one row of the org's outbox.
type Event struct {
	ID         int64           `db:"id"`
	OrgID      int64           `db:"org_id"`
	Type       string          `db:"type"`
	Permission string          `db:"permission"`
	SubjectID  *string         `db:"subject_id"`
	Payload    json.RawMessage `db:"payload"`
	OccurredAt time.Time       `db:"occurred_at"`
	EventRefs
}

// EventRefs are what a subscriber can narrow ticket and sync events to:
// the desk ids of the ticket, its contact, account and department, and the
// connection. Empty means the event is not about one.
type EventRefs struct {
	Ticket     string `db:"ticket_ref"`
	Contact    string `db:"contact_ref"`
	Account    string `db:"account_ref"`
	Department string `db:"department_ref"`
	Connection int64  `db:"connection_ref"`
	// User is set on an event for one user only (a signal): no one else
	// sees it. A filter's User is the reader.
	User int64 `db:"user_ref"`
}

// Matches reports whether an event with refs e passes the filter's ref
// conditions (every non-empty one must be equal); EventsAfter applies the
// same conditions in SQL.
func (f EventFilter) Matches(e EventRefs) bool {
	r := f.Refs
	return (r.Ticket == "" || r.Ticket == e.Ticket) && (r.Contact == "" || r.Contact == e.Contact) &&
		(r.Account == "" || r.Account == e.Account) && (r.Department == "" || r.Department == e.Department) &&
		(r.Connection == 0 || r.Connection == e.Connection) && (e.User == 0 || e.User == r.User)
}

// NewEvent is what InsertEvent needs. Permission names what a subscriber must
// be allowed to see the event at all.
type NewEvent struct {
	OrgID      int64
	Type       string
	Permission string
	SubjectID  *string
	Payload    any
	Refs       EventRefs
}

const eventColumns = `id, org_id, type, permission, subject_id, payload, occurred_at,
	COALESCE(ticket_ref, '') AS ticket_ref, COALESCE(contact_ref, '') AS contact_ref, COALESCE(account_ref, '') AS account_ref,
	COALESCE(department_ref, '') AS department_ref, COALESCE(connection_ref, 0) AS connection_ref, COALESCE(user_ref, 0) AS user_ref`

// InsertEvent appends an event to the outbox inside the caller's transaction
// and queues a NOTIFY with its id, delivered when the transaction commits.
//
// It first takes a transaction-scoped advisory lock for the org. Without it,
// two transactions could take ids 10 and 11 and commit 11 first; a subscriber
// resuming "after 11" would then never see 10. Holding the lock until commit
// makes ids visible in order within an org. Call InsertEvent as the last write
// of the transaction so the lock is held briefly.
func InsertEvent(ctx context.Context, tx *sqlx.Tx, e NewEvent) (Event, error) {
	payload, err := json.Marshal(e.Payload)
	if err != nil {
		return Event{}, fmt.Errorf("encoding %s event payload: %w", e.Type, err)
	}
	if e.Payload == nil {
		payload = []byte("{}")
	}
	// One statement, one round trip: the lock is taken by the row source,
	// so before the row (and its id) exists, and the NOTIFY reads the
	// inserted id.
	var out Event
	err = tx.GetContext(ctx, &out, `
		WITH inserted AS (
			INSERT INTO events (org_id, type, permission, subject_id, payload, ticket_ref, contact_ref, account_ref,
				department_ref, connection_ref, user_ref)
			SELECT $1::bigint, $2::text, $3::text, $4::text, $5::jsonb, NULLIF($6::text, ''), NULLIF($7::text, ''),
				NULLIF($8::text, ''), NULLIF($9::text, ''), NULLIF($10::bigint, 0), NULLIF($11::bigint, 0)
			FROM (SELECT pg_advisory_xact_lock(hashtextextended('deskbridge.events', $1::bigint))) AS org_stream_lock
			RETURNING `+eventColumns+`)
		SELECT inserted.* FROM inserted, LATERAL (SELECT pg_notify($12, inserted.id::text)) AS notified`,
		e.OrgID, e.Type, e.Permission, e.SubjectID, payload,
		e.Refs.Ticket, e.Refs.Contact, e.Refs.Account, e.Refs.Department, e.Refs.Connection, e.Refs.User, EventsChannel)
	if err != nil {
		return Event{}, classify("inserting event", err)
	}
	return out, nil
}

// EventFilter selects an org's events for a reader.
type EventFilter struct {
	OrgID       int64
	Permissions []string  // events whose permission is one of these
	Types       []string  // empty = all types
	Refs        EventRefs // non-empty refs must match (see Matches)
}

// EventsAfter returns up to limit events of the filter with ids above afterID,
// oldest first.
func EventsAfter(ctx context.Context, q Queryer, f EventFilter, afterID int64, limit int) ([]Event, error) {
	var out []Event
	err := q.SelectContext(ctx, &out, `
		SELECT `+eventColumns+` FROM events
		WHERE org_id = $1 AND id > $2 AND permission = ANY($3)
		  AND (cardinality($4::text[]) = 0 OR type = ANY($4))
		  AND ($6 = '' OR ticket_ref = $6) AND ($7 = '' OR contact_ref = $7) AND ($8 = '' OR account_ref = $8)
		  AND ($9 = '' OR department_ref = $9) AND ($10 = 0 OR connection_ref = $10) AND (user_ref IS NULL OR user_ref = $11)
		ORDER BY id LIMIT $5`,
		f.OrgID, afterID, pq.Array(f.Permissions), pq.Array(nonNil(f.Types)), limit,
		f.Refs.Ticket, f.Refs.Contact, f.Refs.Account, f.Refs.Department, f.Refs.Connection, f.Refs.User)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return out, nil
}

// LatestEventID returns the org's newest event id, 0 when it has none.
func LatestEventID(ctx context.Context, q Queryer, orgID int64) (int64, error) {
	var id int64
	err := q.GetContext(ctx, &id, `SELECT COALESCE(max(id), 0) FROM events WHERE org_id = $1`, orgID)
	return id, classify("reading latest event id", err)
}

// EventsByIDs returns the events with these ids (any org), in id order.
func EventsByIDs(ctx context.Context, q Queryer, ids []int64) ([]Event, error) {
	var out []Event
	err := q.SelectContext(ctx, &out, `
		SELECT `+eventColumns+` FROM events WHERE id = ANY($1) ORDER BY id`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("reading events by id: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// PruneEvents deletes up to limit of the oldest events, those below the
// first event (in id order) that occurred at or after before, and raises
// each affected org's horizon to the highest id it deleted, in one
// statement. It returns how many it deleted; the caller repeats while that
// is limit.
//
// Deleting a prefix of the ids keeps each horizon exact (every event at or
// below it is gone) and costs a walk of the old events only, through the
// primary key: ids follow time but for a transaction that inserted late,
// whose event then waits for the next pass.
func PruneEvents(ctx context.Context, q Queryer, before time.Time, limit int) (int64, error) {
	var n int64
	err := q.GetContext(ctx, &n, `
		WITH young AS (
			SELECT id FROM events WHERE occurred_at >= $1 ORDER BY id LIMIT 1
		), gone AS (
			DELETE FROM events WHERE id IN (
				SELECT id FROM events WHERE id < COALESCE((SELECT id FROM young), 9223372036854775807)
				ORDER BY id LIMIT $2)
			RETURNING org_id, id
		), horizon AS (
			INSERT INTO event_horizons AS h (org_id, pruned_through)
			SELECT org_id, max(id) FROM gone GROUP BY org_id
			ON CONFLICT (org_id) DO UPDATE SET pruned_through = GREATEST(h.pruned_through, EXCLUDED.pruned_through)
		)
		SELECT count(*) FROM gone`, before, limit)
	return n, classify("pruning events", err)
}

// ExpiredPositionError is a read that resumes after an event position the
// retention has passed: events after it were pruned, so the reader would
// miss them. Its code is EVENTS_EXPIRED.
type ExpiredPositionError struct {
	After, PrunedThrough int64
}

func (e *ExpiredPositionError) Error() string {
	return fmt.Sprintf("events after %d expired: pruned through %d", e.After, e.PrunedThrough)
}

// PublicMessage tells the reader what to do.
func (e *ExpiredPositionError) PublicMessage() string {
	return "events after this position are no longer kept (older events are pruned): " +
		"read eventStreamPosition, reload what you show, and resume after that position"
}

// ErrorCode is the GraphQL error code.
func (e *ExpiredPositionError) ErrorCode() string { return "EVENTS_EXPIRED" }

// CheckEventPosition returns an *ExpiredPositionError when events of the
// org after position after have been pruned.
func CheckEventPosition(ctx context.Context, q Queryer, orgID, after int64) error {
	var through int64
	err := q.GetContext(ctx, &through, `
		SELECT COALESCE((SELECT pruned_through FROM event_horizons WHERE org_id = $1), 0)`, orgID)
	if err != nil {
		return classify("checking an event position", err)
	}
	if after < through {
		return &ExpiredPositionError{After: after, PrunedThrough: through}
	}
	return nil
}
