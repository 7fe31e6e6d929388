package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// MirrorRecord is the latest copy of one upstream record that a connection
// has seen. Fields is the record as the connector returned it; Email (stored
// lower-cased) and Name are lifted out because matching and Customer 360
// filter on them.
type MirrorRecord struct {
	OrgID        int64           `db:"org_id"`
	ConnectionID int64           `db:"connection_id"`
	System       string          `db:"system"`
	Module       string          `db:"module"`
	ExtID        string          `db:"ext_id"`
	Fields       json.RawMessage `db:"fields"`
	Email        *string         `db:"email"`
	Name         *string         `db:"name"`
	CreatedAt    *time.Time      `db:"created_at"`
	ModifiedAt   *time.Time      `db:"modified_at"`
	DeletedAt    *time.Time      `db:"deleted_at"`
	MirroredAt   time.Time       `db:"mirrored_at"`
	// Refs are the typed columns customer 360 reads (written by
	// UpsertMirror; readers load them through CustomerRecord).
	Refs MirrorRefs `db:"-"`
}

const mirrorColumns = `org_id, connection_id, system, module, ext_id, fields, email, name,
	created_at, modified_at, deleted_at, mirrored_at`

// mirrorRow is how UpsertMirror ships a record to jsonb_to_recordset.
type mirrorRow struct {
	System     string          `json:"system"`
	Module     string          `json:"module"`
	ExtID      string          `json:"ext_id"`
	Fields     json.RawMessage `json:"fields"`
	Email      *string         `json:"email"`
	Name       *string         `json:"name"`
	CreatedAt  *time.Time      `json:"created_at"`
	ModifiedAt *time.Time      `json:"modified_at"`
	DeletedAt  *time.Time      `json:"deleted_at"`

	Title        string     `json:"title"`
	ContactRef   string     `json:"contact_ref"`
	AccountRef   string     `json:"account_ref"`
	DealRef      string     `json:"deal_ref"`
	LeadRef      string     `json:"lead_ref"`
	Status       string     `json:"status"`
	StatusType   string     `json:"status_type"`
	OwnerID      string     `json:"owner_id"`
	OwnerName    string     `json:"owner_name"`
	DepartmentID string     `json:"department_id"`
	Amount       *float64   `json:"amount"`
	At           *time.Time `json:"at"`
	Closed       *bool      `json:"closed"`
}

// UpsertMirror writes a batch of one connection's records in one statement:
// the batch travels as a single JSON document unpacked by
// jsonb_to_recordset, so 200 records are one round trip and one plan. The
// records' OrgID, ConnectionID and MirroredAt are ignored (the arguments and
// the database clock decide them); an empty email becomes NULL so contacts
// without one never match each other.
//
// A row whose stored modified time is newer than the incoming one is kept:
// two workers may mirror the same record from reads taken at different
// moments, and the older read must not win. A copy equal to the stored one
// (same modified time, fields and deletion) is not written again: the sync
// reads most records more than once (the first sync's index, the fresh
// read before applying), and every update of a row rewrites all of the
// mirror's indexes. A record repeated in the batch counts once (the last
// copy). It returns how many rows were written, and ErrNotFound when the
// connection is not the org's.
func UpsertMirror(ctx context.Context, q Queryer, orgID, connID int64, records []MirrorRecord) (int64, error) {
	const action = "upserting mirror records"
	if len(records) == 0 {
		return 0, nil
	}
	// One row per key (ON CONFLICT cannot touch a row twice in a statement),
	// in key order so concurrent batches lock rows in the same order and
	// cannot deadlock.
	type key struct{ system, module, extID string }
	last := map[key]int{}
	for i, r := range records {
		last[key{r.System, r.Module, r.ExtID}] = i
	}
	rows := make([]mirrorRow, 0, len(last))
	for i, r := range records {
		if last[key{r.System, r.Module, r.ExtID}] != i {
			continue
		}
		fields := r.Fields
		if len(fields) == 0 {
			fields = json.RawMessage(`{}`)
		}
		ref := r.Refs
		rows = append(rows, mirrorRow{System: r.System, Module: r.Module, ExtID: r.ExtID, Fields: fields,
			Email: r.Email, Name: r.Name, CreatedAt: r.CreatedAt, ModifiedAt: r.ModifiedAt, DeletedAt: r.DeletedAt,
			Title: ref.Title, ContactRef: ref.ContactID, AccountRef: ref.AccountID, DealRef: ref.DealID, LeadRef: ref.LeadID,
			Status: ref.Status, StatusType: ref.StatusType, OwnerID: ref.OwnerID, OwnerName: ref.OwnerName,
			DepartmentID: ref.DepartmentID, Amount: ref.Amount, At: ref.At, Closed: ref.Closed})
	}
	slices.SortFunc(rows, func(a, b mirrorRow) int {
		return cmp.Or(cmp.Compare(a.System, b.System), cmp.Compare(a.Module, b.Module), cmp.Compare(a.ExtID, b.ExtID))
	})
	batch, err := json.Marshal(rows)
	if err != nil {
		return 0, fmt.Errorf("%s: encoding: %w", action, err)
	}
	var res struct {
		Found   bool  `db:"found"`
		Written int64 `db:"written"`
	}
	err = q.GetContext(ctx, &res, `
		WITH conn AS (
			SELECT org_id, id FROM connections WHERE org_id = $1 AND id = $2
		), up AS (
			INSERT INTO mirror_records AS m (org_id, connection_id, system, module, ext_id, fields, email, name,
				created_at, modified_at, deleted_at, title, contact_ref, account_ref, deal_ref, lead_ref, status,
				status_type, owner_id, owner_name, department_id, amount, at, closed)
			SELECT conn.org_id, conn.id, r.system, r.module, r.ext_id, r.fields,
				NULLIF(lower(btrim(r.email)), ''), r.name, r.created_at, r.modified_at, r.deleted_at,
				NULLIF(r.title, ''), NULLIF(r.contact_ref, ''), NULLIF(r.account_ref, ''), NULLIF(r.deal_ref, ''),
				NULLIF(r.lead_ref, ''), NULLIF(r.status, ''), NULLIF(r.status_type, ''), NULLIF(r.owner_id, ''),
				NULLIF(r.owner_name, ''), NULLIF(r.department_id, ''), r.amount, r.at, r.closed
			FROM conn, jsonb_to_recordset($3::jsonb) AS r(system text, module text, ext_id text,
				fields jsonb, email text, name text, created_at timestamptz, modified_at timestamptz,
				deleted_at timestamptz, title text, contact_ref text, account_ref text, deal_ref text,
				lead_ref text, status text, status_type text, owner_id text, owner_name text,
				department_id text, amount numeric, at timestamptz, closed boolean)
			ON CONFLICT (connection_id, system, module, ext_id) DO UPDATE SET
				fields = EXCLUDED.fields,
				email = EXCLUDED.email,
				name = EXCLUDED.name,
				title = EXCLUDED.title, contact_ref = EXCLUDED.contact_ref, account_ref = EXCLUDED.account_ref,
				deal_ref = EXCLUDED.deal_ref, lead_ref = EXCLUDED.lead_ref, status = EXCLUDED.status,
				status_type = EXCLUDED.status_type, owner_id = EXCLUDED.owner_id, owner_name = EXCLUDED.owner_name,
				department_id = EXCLUDED.department_id, amount = EXCLUDED.amount, at = EXCLUDED.at,
				closed = EXCLUDED.closed,
				created_at = COALESCE(EXCLUDED.created_at, m.created_at),
				modified_at = EXCLUDED.modified_at,
				deleted_at = EXCLUDED.deleted_at,
				mirrored_at = now()
			WHERE m.modified_at IS NULL OR EXCLUDED.modified_at IS NULL OR EXCLUDED.modified_at > m.modified_at
				OR (EXCLUDED.modified_at = m.modified_at AND (EXCLUDED.fields IS DISTINCT FROM m.fields
					OR EXCLUDED.deleted_at IS DISTINCT FROM m.deleted_at))
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM conn) AS found, (SELECT count(*) FROM up) AS written`,
		orgID, connID, batch)
	if err != nil {
		return 0, classify(action, err)
	}
	if !res.Found {
		return 0, fmt.Errorf("%s: connection: %w", action, ErrNotFound)
	}
	return res.Written, nil
}

// MarkMirrorDeleted records that upstream records were deleted (a deleted
// feed or a delete webhook). The rows stay, so Customer 360 can show what
// was there; it returns how many rows it marked.
func MarkMirrorDeleted(ctx context.Context, q Queryer, orgID, connID int64, system, module string, ids []string, at time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `
		UPDATE mirror_records SET deleted_at = $6, mirrored_at = now()
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4 AND ext_id = ANY($5)`,
		orgID, connID, system, module, pq.Array(nonNil(ids)), at)
	if err != nil {
		return 0, classify("marking mirror records deleted", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("marking mirror records deleted: %w", err)
	}
	return n, nil
}

// MirrorByIDs returns the mirrored copies of a batch of records, deleted
// ones included, keyed by ext id; unknown ids are absent.
func MirrorByIDs(ctx context.Context, q Queryer, orgID, connID int64, system, module string, ids []string) (map[string]MirrorRecord, error) {
	var rows []MirrorRecord
	err := q.SelectContext(ctx, &rows, `
		SELECT `+mirrorColumns+` FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4 AND ext_id = ANY($5)`,
		orgID, connID, system, module, pq.Array(nonNil(ids)))
	if err != nil {
		return nil, fmt.Errorf("loading mirror records: %w", err)
	}
	out := make(map[string]MirrorRecord, len(rows))
	for _, r := range rows {
		out[r.ExtID] = r
	}
	return out, nil
}

// MirrorFindByEmail returns up to limit live (not deleted) records with this
// email, compared case-insensitively, oldest created first: matching (B8)
// needs to tell none, one and several apart, not to list them all.
func MirrorFindByEmail(ctx context.Context, q Queryer, orgID, connID int64, system, module, email string, limit int) ([]MirrorRecord, error) {
	out := []MirrorRecord{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+mirrorColumns+` FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4
		  AND email = lower(btrim($5)) AND deleted_at IS NULL
		ORDER BY created_at NULLS LAST, ext_id LIMIT $6`,
		orgID, connID, system, module, email, limit)
	if err != nil {
		return nil, fmt.Errorf("finding mirror records by email: %w", err)
	}
	return out, nil
}

// MirrorFindByName is MirrorFindByEmail for names (accounts and products
// match by name, B8), also case-insensitive.
func MirrorFindByName(ctx context.Context, q Queryer, orgID, connID int64, system, module, name string, limit int) ([]MirrorRecord, error) {
	out := []MirrorRecord{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+mirrorColumns+` FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4
		  AND lower(name) = lower($5) AND deleted_at IS NULL
		ORDER BY created_at NULLS LAST, ext_id LIMIT $6`,
		orgID, connID, system, module, name, limit)
	if err != nil {
		return nil, fmt.Errorf("finding mirror records by name: %w", err)
	}
	return out, nil
}

// AnalyzeMirror refreshes the planner's statistics of the mirror. A first
// sync's match index loads a whole module at once, usually into a table
// that had few rows when autovacuum last looked at it: with those
// statistics the planner takes any index of the connection for
// MirrorMatches and filters thousands of rows per value.
func AnalyzeMirror(ctx context.Context, db *sqlx.DB) error {
	return analyzeQuickly(ctx, db, "mirror_records")
}

// syncTables are the tables a first sync grows from nothing, whose lookups
// (links by ids, the queue's claim, mirror matches) the planner gets wrong
// on statistics taken when they were small.
var syncTables = []string{"change_queue", "links", "mirror_records"}

// AnalyzeGrowing refreshes the statistics of the sync tables that changed
// by more than a fifth (and 1,000 rows) since they were last analyzed. A
// first sync outgrows autovacuum, which looks once a minute: meanwhile a
// links lookup by 100 ids walks every link of the module. It returns the
// tables it analyzed.
func AnalyzeGrowing(ctx context.Context, db *sqlx.DB) ([]string, error) {
	var stale []string
	err := db.SelectContext(ctx, &stale, `
		SELECT relname FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname = ANY($1)
		  AND n_mod_since_analyze > GREATEST(1000, n_live_tup / 5)
		ORDER BY relname`, pq.Array(syncTables))
	if err != nil {
		return nil, fmt.Errorf("finding sync tables to analyze: %w", err)
	}
	for _, t := range stale {
		if err := analyzeQuickly(ctx, db, t); err != nil {
			return nil, err
		}
	}
	return stale, nil
}

// analyzeQuickly analyzes a table from a small sample (3,000 rows instead
// of 30,000): enough to know how many rows a connection and module has and
// that emails and ids are distinct, at a tenth of the cost on wide jsonb
// rows. Autovacuum's next analyze takes the full sample again.
func analyzeQuickly(ctx context.Context, db *sqlx.DB, table string) error {
	err := InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL default_statistics_target = 10`); err != nil {
			return err
		}
		// The name is one of ours, never input.
		_, err := tx.ExecContext(ctx, `ANALYZE `+pq.QuoteIdentifier(table))
		return err
	})
	if err != nil {
		return fmt.Errorf("analyzing %s: %w", table, err)
	}
	return nil
}

// MatchKey is how MirrorMatches compares: a record's email (lower-cased and
// trimmed, as the mirror stores it) or its name (case-insensitively).
type MatchKey int

// Match keys.
const (
	MatchByEmail MatchKey = iota + 1
	MatchByName
)

// MirrorMatches finds, for each of a batch of values, the live mirrored
// records of one system and module holding it: up to perValue record ids
// per value, oldest created first, keyed by the value exactly as given.
// Values without a match are absent. One statement for the whole batch,
// each value an index lookup: the first sync matches (B8) thousands of
// records against the target side's index this way.
func MirrorMatches(ctx context.Context, q Queryer, orgID, connID int64, system, module string, key MatchKey, values []string, perValue int) (map[string][]string, error) {
	const action = "matching mirror records"
	out := map[string][]string{}
	if len(values) == 0 {
		return out, nil
	}
	var cond string
	switch key {
	case MatchByEmail:
		cond = `m.email IS NOT NULL AND m.email = lower(btrim(v.value))` // the email index is partial
	case MatchByName:
		cond = `lower(m.name) = lower(v.value)`
	default:
		return nil, fmt.Errorf("%s: unknown key %d", action, key)
	}
	var rows []struct {
		Value string `db:"value"`
		ExtID string `db:"ext_id"`
	}
	err := q.SelectContext(ctx, &rows, `
		SELECT v.value, m.ext_id
		FROM (SELECT DISTINCT value FROM unnest($5::text[]) AS u(value)) v
		CROSS JOIN LATERAL (
			SELECT m.ext_id, m.created_at FROM mirror_records m
			WHERE m.connection_id = $2 AND m.system = $3 AND m.module = $4 AND m.org_id = $1
			  AND m.deleted_at IS NULL AND `+cond+`
			ORDER BY m.created_at NULLS LAST, m.ext_id
			LIMIT $6
		) m
		ORDER BY v.value, m.created_at NULLS LAST, m.ext_id`,
		orgID, connID, system, module, pq.Array(values), perValue)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	for _, r := range rows {
		out[r.Value] = append(out[r.Value], r.ExtID)
	}
	return out, nil
}
