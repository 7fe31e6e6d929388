package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Signal scopes (migration 0009): whose tickets a user hears about.
const (
	SignalScopeOwned = "OWNED" // customers the user owns in the CRM (the default)
	SignalScopeAll   = "ALL"
)

// SignalSetting is a user's switch for one kind of signal. Channels empty
// means every desk channel.
type SignalSetting struct {
	Kind     string         `db:"kind"`
	Enabled  bool           `db:"enabled"`
	Channels pq.StringArray `db:"channels"`
}

// SignalSettings returns a user's scope and the kinds the user has set
// (a kind left out is on, for every channel).
func SignalSettings(ctx context.Context, q Queryer, orgID, userID int64) (string, []SignalSetting, error) {
	scope := SignalScopeOwned
	err := q.GetContext(ctx, &scope, `SELECT scope FROM signal_scopes WHERE org_id = $1 AND user_id = $2`, orgID, userID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", nil, classify("reading signal scope", err)
	}
	var out []SignalSetting
	err = q.SelectContext(ctx, &out, `SELECT kind, enabled, channels FROM signal_settings WHERE org_id = $1 AND user_id = $2 ORDER BY kind`,
		orgID, userID)
	return scope, out, classify("reading signal settings", err)
}

// PutSignalSettings replaces the given kinds' switches and, when scope is
// not empty, the scope, in the caller's transaction.
func PutSignalSettings(ctx context.Context, tx *sqlx.Tx, orgID, userID int64, scope string, settings []SignalSetting) error {
	if scope != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signal_scopes (org_id, user_id, scope) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET scope = EXCLUDED.scope`, orgID, userID, scope); err != nil {
			return classify("saving signal scope", err)
		}
	}
	for _, s := range settings {
		channels := s.Channels
		if channels == nil {
			channels = pq.StringArray{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signal_settings (org_id, user_id, kind, enabled, channels) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, kind) DO UPDATE SET enabled = EXCLUDED.enabled, channels = EXCLUDED.channels`,
			orgID, userID, s.Kind, s.Enabled, channels); err != nil {
			return classify("saving signal setting", err)
		}
	}
	return nil
}

// SignalAudience says who may receive a signal: users of the org with the
// kind on for the channel, whose scope is ALL or whose email is among
// Owners. Named (mentions) instead reaches exactly the users with those
// emails, whatever their scope.
type SignalAudience struct {
	OrgID   int64
	Kind    string
	Channel string
	Owners  []string // lower-case emails
	Named   []string // lower-case emails
	Except  int64    // the user who caused it, 0 = none
}

// SignalRecipients lists the users an audience reaches.
func SignalRecipients(ctx context.Context, q Queryer, a SignalAudience) ([]int64, error) {
	var ids []int64
	err := q.SelectContext(ctx, &ids, `
		SELECT u.id FROM users u
		LEFT JOIN signal_settings s ON s.user_id = u.id AND s.kind = $2
		LEFT JOIN signal_scopes sc ON sc.user_id = u.id
		WHERE u.org_id = $1 AND u.id <> $6
		  AND COALESCE(s.enabled, true)
		  AND (s.channels IS NULL OR cardinality(s.channels) = 0 OR $3 = ANY(s.channels))
		  AND CASE WHEN cardinality($5::text[]) > 0 THEN lower(u.email) = ANY($5)
		      ELSE COALESCE(sc.scope, 'OWNED') = 'ALL' OR lower(u.email) = ANY($4) END
		ORDER BY u.id`,
		a.OrgID, a.Kind, a.Channel, pq.Array(nonNil(a.Owners)), pq.Array(nonNil(a.Named)), a.Except)
	return ids, classify("finding signal recipients", err)
}

// Signal is one notification of one user.
type Signal struct {
	ID        int64      `db:"id"`
	OrgID     int64      `db:"org_id"`
	UserID    int64      `db:"user_id"`
	Kind      string     `db:"kind"`
	TicketRef string     `db:"ticket_ref"`
	Channel   *string    `db:"channel"`
	Title     string     `db:"title"`
	Cause     string     `db:"cause"`
	CreatedAt time.Time  `db:"created_at"`
	ReadAt    *time.Time `db:"read_at"`
}

const signalColumns = `id, org_id, user_id, kind, ticket_ref, channel, title, cause, created_at, read_at`

// NewSignal is a signal to record for each of Users.
type NewSignal struct {
	OrgID     int64
	Users     []int64
	Kind      string
	TicketRef string
	Channel   string
	Title     string
	Cause     string // what caused it, unique per user and kind
}

// InsertSignals records a signal for each user that has none for the same
// cause yet, and returns those recorded.
func InsertSignals(ctx context.Context, tx *sqlx.Tx, s NewSignal) ([]Signal, error) {
	if len(s.Users) == 0 {
		return nil, nil
	}
	var out []Signal
	err := tx.SelectContext(ctx, &out, `
		INSERT INTO signals (org_id, user_id, kind, ticket_ref, channel, title, cause)
		SELECT $1, u, $3, $4, NULLIF($5, ''), $6, $7 FROM unnest($2::bigint[]) AS u
		ON CONFLICT (user_id, kind, cause) DO NOTHING
		RETURNING `+signalColumns,
		s.OrgID, pq.Array(s.Users), s.Kind, s.TicketRef, s.Channel, s.Title, s.Cause)
	return out, classify("recording signals", err)
}

// ListSignals pages a user's signals, newest first, after the signal id
// afterID (0: from the newest).
func ListSignals(ctx context.Context, q Queryer, orgID, userID, afterID int64, limit int, unreadOnly bool) ([]Signal, error) {
	var out []Signal
	err := q.SelectContext(ctx, &out, `SELECT `+signalColumns+` FROM signals
		WHERE org_id = $1 AND user_id = $2 AND ($3 = 0 OR id < $3) AND (NOT $4 OR read_at IS NULL)
		ORDER BY id DESC LIMIT $5`, orgID, userID, afterID, unreadOnly, limit)
	return out, classify("listing signals", err)
}

// SignalByID returns one of a user's signals.
func SignalByID(ctx context.Context, q Queryer, orgID, userID, id int64) (Signal, error) {
	var out Signal
	err := q.GetContext(ctx, &out, `SELECT `+signalColumns+` FROM signals WHERE org_id = $1 AND user_id = $2 AND id = $3`, orgID, userID, id)
	return out, classify("reading signal", err)
}

// UnreadSignals counts a user's unread signals.
func UnreadSignals(ctx context.Context, q Queryer, orgID, userID int64) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM signals WHERE org_id = $1 AND user_id = $2 AND read_at IS NULL`, orgID, userID)
	return n, classify("counting unread signals", err)
}

// MarkSignalsRead marks the given signals of a user read (all of them when
// all is true) and returns how many changed.
func MarkSignalsRead(ctx context.Context, q Queryer, orgID, userID int64, ids []int64, all bool) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE signals SET read_at = now()
		WHERE org_id = $1 AND user_id = $2 AND read_at IS NULL AND ($4 OR id = ANY($3))`, orgID, userID, pq.Array(ids), all)
	if err != nil {
		return 0, classify("marking signals read", err)
	}
	return res.RowsAffected()
}

// TicketOwnerEmails returns the lower-case emails of the CRM owners of a
// desk contact's and account's linked CRM records: whose customers they
// are.
func TicketOwnerEmails(ctx context.Context, q Queryer, orgID, connID int64, crmSystem, deskContact, deskAccount string) ([]string, error) {
	var out []string
	err := q.SelectContext(ctx, &out, `
		SELECT DISTINCT lower(c.fields->'Owner'->>'email') FROM links l
		JOIN mirror_records c ON c.connection_id = l.connection_id AND c.system = $3 AND c.module = l.module AND c.ext_id = l.crm_id
		WHERE l.org_id = $1 AND l.connection_id = $2
		  AND ((l.module = 'contacts' AND l.desk_id = $4) OR (l.module = 'accounts' AND l.desk_id = $5))
		  AND c.fields->'Owner'->>'email' IS NOT NULL`, orgID, connID, crmSystem, deskContact, deskAccount)
	return out, classify("reading ticket owners", err)
}

// OverdueTicket is a ticket that just became overdue.
type OverdueTicket struct {
	OrgID        int64     `db:"org_id"`
	ConnectionID int64     `db:"connection_id"`
	TicketRef    string    `db:"ticket_ref"`
	DueAt        time.Time `db:"due_at"`
}

// MarkOverdueTickets marks, once per ticket and due date, the mirrored
// unresolved tickets of active connections whose due date passed within
// the window before now, and returns those newly marked. A lapse older than
// the window (when deskbridge first sees a desk) is not news.
func MarkOverdueTickets(ctx context.Context, tx *sqlx.Tx, now time.Time, window time.Duration, limit int) ([]OverdueTicket, error) {
	var out []OverdueTicket
	err := tx.SelectContext(ctx, &out, `
		WITH lapsed AS (
			SELECT m.org_id, m.connection_id, m.ext_id, m.at FROM mirror_records m
			JOIN connections c ON c.id = m.connection_id AND c.status IN ('ACTIVE', 'PAUSED')
			WHERE m.system = 'zoho_desk' AND m.module = 'tickets' AND m.deleted_at IS NULL
			  AND NOT COALESCE(m.closed, false) AND m.at < $1 AND m.at >= $2
			ORDER BY m.at LIMIT $3
		), marked AS (
			INSERT INTO overdue_marks (connection_id, ticket_ref, due_at)
			SELECT connection_id, ext_id, at FROM lapsed
			ON CONFLICT DO NOTHING
			RETURNING connection_id, ticket_ref, due_at
		)
		SELECT l.org_id, mk.connection_id, mk.ticket_ref, mk.due_at FROM marked mk
		JOIN lapsed l ON l.connection_id = mk.connection_id AND l.ext_id = mk.ticket_ref`,
		now, now.Add(-window), limit)
	return out, classify("marking overdue tickets", err)
}
