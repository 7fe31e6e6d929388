package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// PreparedReads is a pool that runs every distinct read it is given as a
// prepared statement: PostgreSQL parses and plans it once per connection
// (then reuses a generic plan when it is as good), and lib/pq sends each
// execution in one round trip instead of two. Customer 360's reads are a
// few statement shapes run very often, whose planning cost more than their
// execution. Writes (ExecContext) and transactions are not prepared.
//
// Up to maxPrepared distinct statements are kept; later ones run
// unprepared. A statement is prepared on each pool connection the first
// time it runs there (database/sql does that), and is gone with the pool.
// A pooler in transaction mode in front of PostgreSQL must support
// protocol-level prepared statements (PgBouncer 1.21 and later do).
type PreparedReads struct {
	*sqlx.DB
	mu    sync.RWMutex
	stmts map[string]*sqlx.Stmt
}

const maxPrepared = 512

// NewPreparedReads wraps a pool.
func NewPreparedReads(db *sqlx.DB) *PreparedReads {
	return &PreparedReads{DB: db, stmts: map[string]*sqlx.Stmt{}}
}

// stmt is query prepared, or nil when the cache is full.
func (p *PreparedReads) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	p.mu.RLock()
	st, ok := p.stmts[query]
	full := len(p.stmts) >= maxPrepared
	p.mu.RUnlock()
	if ok || full {
		return st, nil
	}
	st, err := p.DB.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if have, ok := p.stmts[query]; ok {
		_ = st.Close() // prepared meanwhile by another caller
		return have, nil
	}
	p.stmts[query] = st
	return st, nil
}

// stalePlan reports the error PostgreSQL gives a prepared statement whose
// result columns a migration changed ("cached plan must not change result
// type"): the statement is dropped and the query run unprepared, and the
// next run prepares it afresh.
func (p *PreparedReads) stalePlan(query string, err error) bool {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "0A000" || !strings.Contains(pqErr.Message, "cached plan") {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts[query]; ok {
		delete(p.stmts, query)
		_ = st.Close()
	}
	return true
}

// QueryContext runs query prepared.
func (p *PreparedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st != nil {
		rows, err := st.QueryContext(ctx, args...)
		if !p.stalePlan(query, err) {
			return rows, err
		}
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryxContext runs query prepared.
func (p *PreparedReads) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st != nil {
		rows, err := st.QueryxContext(ctx, args...)
		if !p.stalePlan(query, err) {
			return rows, err
		}
	}
	return p.DB.QueryxContext(ctx, query, args...)
}

// QueryRowxContext runs query prepared.
func (p *PreparedReads) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	st, err := p.stmt(ctx, query)
	if err != nil || st == nil {
		// A failed prepare is the query's own failure: running it unprepared
		// reports it as the row's error.
		return p.DB.QueryRowxContext(ctx, query, args...)
	}
	return st.QueryRowxContext(ctx, args...)
}

// GetContext reads one row, prepared.
func (p *PreparedReads) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, p, dest, query, args...)
	if p.stalePlan(query, err) {
		return sqlx.GetContext(ctx, p.DB, dest, query, args...)
	}
	return err
}

// SelectContext reads rows, prepared.
func (p *PreparedReads) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, p, dest, query, args...)
}

// CustomerRecord is a mirrored record as customer-360 reads it: the
// record, its typed columns (MirrorRefs) and its row id.
type CustomerRecord struct {
	ID           int64           `db:"id"`
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
	MirroredAt   time.Time       `db:"mirrored_at"`
	Title        *string         `db:"title"`
	ContactRef   *string         `db:"contact_ref"`
	AccountRef   *string         `db:"account_ref"`
	DealRef      *string         `db:"deal_ref"`
	LeadRef      *string         `db:"lead_ref"`
	Status       *string         `db:"status"`
	StatusType   *string         `db:"status_type"`
	OwnerID      *string         `db:"owner_id"`
	OwnerName    *string         `db:"owner_name"`
	DepartmentID *string         `db:"department_id"`
	Amount       *float64        `db:"amount"`
	At           *time.Time      `db:"at"`
	Closed       *bool           `db:"closed"`
}

const customerColumns = `id, org_id, connection_id, system, module, ext_id, fields, email, name, created_at,
	modified_at, mirrored_at, title, contact_ref, account_ref, deal_ref, lead_ref, status, status_type, owner_id,
	owner_name, department_id, amount, at, closed`

// scanDest is where a row of customerColumns goes, column by column: the
// hot lists scan with it, row after row, instead of sqlx's and
// database/sql's reflection (a sidebar scans some 5,000 values).
func (r *CustomerRecord) scanDest() []any {
	return []any{int64Col{&r.ID}, int64Col{&r.OrgID}, int64Col{&r.ConnectionID}, &r.System, &r.Module, &r.ExtID,
		jsonCol{&r.Fields}, textCol{&r.Email}, textCol{&r.Name}, nullCol[time.Time]{&r.CreatedAt}, nullCol[time.Time]{&r.ModifiedAt}, timeValCol{&r.MirroredAt},
		textCol{&r.Title}, textCol{&r.ContactRef}, textCol{&r.AccountRef}, textCol{&r.DealRef}, textCol{&r.LeadRef},
		textCol{&r.Status}, textCol{&r.StatusType}, textCol{&r.OwnerID}, textCol{&r.OwnerName}, textCol{&r.DepartmentID},
		numericCol{&r.Amount}, nullCol[time.Time]{&r.At}, nullCol[bool]{&r.Closed}}
}

// Column scanners for the values lib/pq hands over (text as string,
// integers as int64, timestamps as time.Time, booleans as bool, json and
// numeric as bytes it reuses); NULL leaves a nil pointer.
type (
	int64Col   struct{ p *int64 }
	timeValCol struct{ p *time.Time } // NULL: the zero time
	textCol    struct{ p **string }
	numericCol struct{ p **float64 }
	jsonCol    struct{ p *json.RawMessage }
)

func (c int64Col) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("scanning %T into an integer", v)
	}
	*c.p = n
	return nil
}

func (c textCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.p = nil
	case string:
		*c.p = &x
	case []byte:
		s := string(x)
		*c.p = &s
	default:
		return fmt.Errorf("scanning %T into text", v)
	}
	return nil
}

func (c timeValCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.p = time.Time{}
	case time.Time:
		*c.p = x
	default:
		return fmt.Errorf("scanning %T into a time", v)
	}
	return nil
}

// nullCol scans a nullable column whose driver value is already a T
// (timestamps as time.Time, booleans as bool).
type nullCol[T any] struct{ p **T }

func (c nullCol[T]) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.p = nil
	case T:
		*c.p = &x
	default:
		var want T
		return fmt.Errorf("scanning %T into %T", v, want)
	}
	return nil
}

func (c numericCol) Scan(v any) error {
	var f float64
	var err error
	switch x := v.(type) {
	case nil:
		*c.p = nil
		return nil
	case []byte:
		f, err = strconv.ParseFloat(string(x), 64)
	case string:
		f, err = strconv.ParseFloat(x, 64)
	case float64:
		f = x
	case int64:
		f = float64(x)
	default:
		return fmt.Errorf("scanning %T into a number", v)
	}
	if err != nil {
		return err
	}
	*c.p = &f
	return nil
}

func (c jsonCol) Scan(v any) error {
	switch x := v.(type) {
	case []byte:
		*c.p = bytes.Clone(x)
	case string:
		*c.p = json.RawMessage(x)
	default:
		return fmt.Errorf("scanning %T into json", v)
	}
	return nil
}

// queryCustomerRows runs a query whose columns are before..., then
// customerColumns, then after...; row is called after each row is scanned
// into rec and the before and after destinations.
func queryCustomerRows(ctx context.Context, q Queryer, query string, args []any, before, after []any, rec *CustomerRecord, row func()) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := append(append(append([]any{}, before...), rec.scanDest()...), after...)
	for rows.Next() {
		*rec = CustomerRecord{}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row()
	}
	return rows.Err()
}

// CustomerRecordByID returns a live (not deleted) record of the org by row
// id; ErrNotFound for another org's, whatever the id.
func CustomerRecordByID(ctx context.Context, q Queryer, orgID, id int64) (CustomerRecord, error) {
	var out CustomerRecord
	err := q.GetContext(ctx, &out, `SELECT `+customerColumns+` FROM mirror_records
		WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL`, orgID, id)
	return out, classify("loading customer record", err)
}

// CustomerRecordsByExtIDs returns the live records of one system and
// module by their vendor ids, keyed by id, in one query (a dataloader's
// batch).
func CustomerRecordsByExtIDs(ctx context.Context, q Queryer, orgID, connID int64, system, module string, extIDs []string) (map[string]CustomerRecord, error) {
	out := make(map[string]CustomerRecord, len(extIDs))
	if len(extIDs) == 0 {
		return out, nil
	}
	var rows []CustomerRecord
	err := q.SelectContext(ctx, &rows, `SELECT `+customerColumns+` FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4 AND ext_id = ANY($5)
			AND deleted_at IS NULL`, orgID, connID, system, module, pq.Array(extIDs))
	if err != nil {
		return nil, fmt.Errorf("loading customer records by id: %w", err)
	}
	for _, r := range rows {
		out[r.ExtID] = r
	}
	return out, nil
}

// NeighbourRecord is a record of a customer's neighbourhood; for a desk
// contact or account, LinkedID is the CRM record it is linked to (nil: not
// linked).
type NeighbourRecord struct {
	CustomerRecord
	LinkedID *string `db:"linked_id"`
}

// CustomerNeighbourhood reads, in one statement, what the customer
// pictures of some desk records are made of: the live tickets with these
// ids; the desk contacts with these ids or of those tickets; the desk
// accounts with these ids or of those tickets and contacts, each contact
// and account with the CRM id it is linked to; and the live CRM contacts
// and accounts at the other end of those links, with the accounts of those
// CRM contacts. Without it, a ticket's picture costs a round trip per
// step.
func CustomerNeighbourhood(ctx context.Context, q Queryer, orgID, connID int64, deskSystem, crmSystem string, tickets, contacts, accounts []string) ([]NeighbourRecord, error) {
	if len(tickets)+len(contacts)+len(accounts) == 0 {
		return nil, nil
	}
	const live = `org_id = $1 AND connection_id = $2 AND deleted_at IS NULL`
	args := []any{orgID, connID, deskSystem, crmSystem}
	// Seeds are compared with = when one, = ANY when more, and left out
	// when none (see customerListSQL: the generic plan then costs what a
	// custom one does, and a prepared run is not planned again).
	seed := func(ids []string, one, many string) string {
		switch len(ids) {
		case 0:
			return ""
		case 1:
			args = append(args, ids[0])
			return fmt.Sprintf(one, len(args))
		}
		args = append(args, pq.Array(ids))
		return fmt.Sprintf(many, len(args))
	}
	ticketCond := cmp.Or(seed(tickets, "ext_id = $%d", "ext_id = ANY($%d)"), "false")
	contactSeeds := seed(contacts, " UNION ALL SELECT $%d::text", " UNION ALL SELECT unnest($%d::text[])")
	accountSeeds := seed(accounts, " UNION ALL SELECT $%d::text", " UNION ALL SELECT unnest($%d::text[])")
	var out []NeighbourRecord
	var row NeighbourRecord
	err := queryCustomerRows(ctx, q, `
		WITH t AS (
			SELECT `+customerColumns+` FROM mirror_records
			WHERE `+live+` AND system = $3 AND module = 'tickets' AND `+ticketCond+`
		), dc AS (
			SELECT `+customerColumns+` FROM mirror_records
			WHERE `+live+` AND system = $3 AND module = 'contacts'
				AND ext_id IN (SELECT contact_ref FROM t`+contactSeeds+`)
		), da AS (
			SELECT `+customerColumns+` FROM mirror_records
			WHERE `+live+` AND system = $3 AND module = 'accounts'
				AND ext_id IN (SELECT account_ref FROM t UNION ALL SELECT account_ref FROM dc`+accountSeeds+`)
		), l AS (
			SELECT module, desk_id, crm_id FROM links
			WHERE org_id = $1 AND connection_id = $2 AND module = 'contacts' AND desk_id IN (SELECT ext_id FROM dc)
			UNION ALL
			SELECT module, desk_id, crm_id FROM links
			WHERE org_id = $1 AND connection_id = $2 AND module = 'accounts' AND desk_id IN (SELECT ext_id FROM da)
		), cc AS (
			SELECT `+customerColumns+` FROM mirror_records
			WHERE `+live+` AND system = $4 AND module = 'contacts'
				AND ext_id IN (SELECT crm_id FROM l WHERE module = 'contacts')
		), ca AS (
			SELECT `+customerColumns+` FROM mirror_records
			WHERE `+live+` AND system = $4 AND module = 'accounts'
				AND ext_id IN (SELECT crm_id FROM l WHERE module = 'accounts' UNION ALL SELECT account_ref FROM cc)
		)
		SELECT t.*, NULL::text AS linked_id FROM t
		UNION ALL SELECT dc.*, l.crm_id FROM dc LEFT JOIN l ON l.module = 'contacts' AND l.desk_id = dc.ext_id
		UNION ALL SELECT da.*, l.crm_id FROM da LEFT JOIN l ON l.module = 'accounts' AND l.desk_id = da.ext_id
		UNION ALL SELECT cc.*, NULL FROM cc
		UNION ALL SELECT ca.*, NULL FROM ca`,
		args, nil, []any{textCol{&row.LinkedID}}, &row.CustomerRecord, func() { out = append(out, row) })
	if err != nil {
		return nil, fmt.Errorf("loading customer neighbourhood: %w", err)
	}
	return out, nil
}

// CustomerRecordsByEmail returns the live records of one system and module
// with this email (case-insensitive), oldest first.
func CustomerRecordsByEmail(ctx context.Context, q Queryer, orgID, connID int64, system, module, email string, limit int) ([]CustomerRecord, error) {
	var out []CustomerRecord
	err := q.SelectContext(ctx, &out, `SELECT `+customerColumns+` FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = $4 AND email = lower($5)
			AND deleted_at IS NULL
		ORDER BY id LIMIT $6`, orgID, connID, system, module, email, limit)
	if err != nil {
		return nil, fmt.Errorf("loading customer records by email: %w", err)
	}
	return out, nil
}

// CustomerOrder is how ListCustomerRecords sorts. Every order ends with the
// row id, so pages are stable under inserts.
type CustomerOrder string

// The orders of customer lists.
const (
	OrderCreatedDesc CustomerOrder = "CREATED_DESC"
	OrderCreatedAsc  CustomerOrder = "CREATED_ASC"
	OrderAtAsc       CustomerOrder = "AT_ASC"  // soonest first, undated last
	OrderAtDesc      CustomerOrder = "AT_DESC" // latest first, undated last
	OrderAmountDesc  CustomerOrder = "AMOUNT_DESC"
	OrderID          CustomerOrder = "ID"       // BI: row id order
	OrderMirrored    CustomerOrder = "MIRRORED" // BI incremental: mirrored_at, then id
)

// customerOrders are each order's sort key (NULLs mapped to the end) and
// direction. The key is compared as text in the cursor, so it is rendered
// by SQL itself.
var customerOrders = map[CustomerOrder]struct {
	key  string // an SQL expression
	desc bool
}{
	OrderCreatedDesc: {"COALESCE(created_at, '-infinity')", true},
	OrderCreatedAsc:  {"COALESCE(created_at, 'infinity')", false},
	OrderAtAsc:       {"COALESCE(at, 'infinity')", false},
	OrderAtDesc:      {"COALESCE(at, '-infinity')", true},
	OrderAmountDesc:  {"COALESCE(amount, '-infinity'::numeric)", true},
	OrderID:          {"id", false},
	// Qualified: a list may read mirrored_at as NULL under the same name
	// (CustomerListQuery.Fields), and ORDER BY takes a bare name for the
	// output column.
	OrderMirrored: {"mirror_records.mirrored_at", false},
}

// CustomerListQuery selects records of one system and one or more modules
// of a connection. Ref filters match any of the ids given; an empty filter
// is not applied. After is a cursor from a previous page (Cursor).
type CustomerListQuery struct {
	OrgID        int64
	ConnectionID int64
	System       string
	Modules      []string

	// The related-record filters are ORed with each other: "records of this
	// contact or of this account".
	ContactRefs []string
	AccountRefs []string
	DealRefs    []string
	LeadRefs    []string
	// RefsGiven says the ref filters apply even when all are empty: a
	// customer with no ids has no records (instead of every record).
	RefsGiven bool

	StatusTypes  []string
	Status       string
	DepartmentID string
	OwnerID      string
	Closed       *bool
	Overdue      *bool
	CreatedFrom  *time.Time
	CreatedTo    *time.Time
	AtFrom       *time.Time
	AtTo         *time.Time
	MirroredFrom *time.Time // BI: changed since

	Order CustomerOrder
	After string
	Limit int

	// Fields, when not nil, reads only these top-level keys of each
	// record's fields (missing keys read as null; empty: none), and leaves
	// out the times no list shows: MirroredAt (zero) and, but for tickets,
	// ModifiedAt (nil). A list whose records are shown through a few fields
	// reads those, not whole vendor records: a sidebar's 200 records cost
	// PostgreSQL and lib/pq a good part of their time in formatting and
	// parsing timestamps.
	Fields []string
}

// CustomerPage is one page of records and each one's cursor.
type CustomerPage struct {
	Records []CustomerRecord
	Cursors []string
	HasNext bool
}

// ListCustomerRecords returns one page of q, with keyset pagination: the
// cursor holds the last row's sort key and id, so a page never skips or
// repeats rows when others are added before it.
func ListCustomerRecords(ctx context.Context, db Queryer, q CustomerListQuery) (CustomerPage, error) {
	const action = "listing customer records"
	var args []any
	query, ok, err := customerListSQL(q, &args)
	if err != nil || !ok {
		return CustomerPage{}, err
	}
	var rows []customerListRow
	var row customerListRow
	if err := queryCustomerRows(ctx, db, query, args, nil, []any{textCol{&row.SortKey}}, &row.CustomerRecord, func() {
		rows = append(rows, row)
	}); err != nil {
		return CustomerPage{}, fmt.Errorf("%s: %w", action, err)
	}
	return customerPageOf(rows, q.Limit), nil
}

// customerListRow is a listed record with its sort key, for its cursor.
type customerListRow struct {
	CustomerRecord
	SortKey *string `db:"sort_key"`
}

// customerPageOf makes a page of rows read with limit+1.
func customerPageOf(rows []customerListRow, limit int) CustomerPage {
	page := CustomerPage{HasNext: len(rows) > limit}
	if page.HasNext {
		rows = rows[:limit]
	}
	page.Records = make([]CustomerRecord, 0, len(rows))
	page.Cursors = make([]string, 0, len(rows))
	for _, r := range rows {
		page.Records = append(page.Records, r.CustomerRecord)
		key := ""
		if r.SortKey != nil {
			key = *r.SortKey
		}
		page.Cursors = append(page.Cursors, customerCursor(key, r.ID))
	}
	return page
}

// customerListSQL renders q as one SELECT with its ORDER BY and LIMIT (of
// q.Limit+1 rows, to tell whether a next page exists), appending its
// parameters to args. ok is false when q selects nothing by construction
// (RefsGiven without any ref): no SQL is needed.
func customerListSQL(q CustomerListQuery, args *[]any) (query string, ok bool, err error) {
	const action = "listing customer records"
	ord, known := customerOrders[q.Order]
	if !known {
		return "", false, fmt.Errorf("%s: unknown order %q", action, q.Order)
	}
	if q.Limit <= 0 {
		return "", false, fmt.Errorf("%s: limit must be positive", action)
	}
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	// One value is compared with =, not = ANY: PostgreSQL estimates a
	// parameter array's length blindly, which makes the generic plan of a
	// prepared statement look dearer than a custom one, and then plans it
	// again on every run (PreparedReads).
	anyOf := func(col string, vals []string) string {
		if len(vals) == 1 {
			return col + " = " + arg(vals[0])
		}
		return col + " = ANY(" + arg(pq.Array(vals)) + ")"
	}
	where := []string{"org_id = " + arg(q.OrgID), "connection_id = " + arg(q.ConnectionID), "system = " + arg(q.System),
		anyOf("module", q.Modules), "deleted_at IS NULL"}
	var refs []string
	for _, r := range []struct {
		col string
		ids []string
	}{{"contact_ref", q.ContactRefs}, {"account_ref", q.AccountRefs}, {"deal_ref", q.DealRefs}, {"lead_ref", q.LeadRefs}} {
		if len(r.ids) > 0 {
			refs = append(refs, anyOf(r.col, r.ids))
		}
	}
	switch {
	case len(refs) > 0:
		where = append(where, "("+strings.Join(refs, " OR ")+")")
	case q.RefsGiven:
		return "", false, nil
	}
	if len(q.StatusTypes) > 0 {
		where = append(where, "status_type = ANY("+arg(pq.Array(q.StatusTypes))+")")
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(q.Status))
	}
	if q.DepartmentID != "" {
		where = append(where, "department_id = "+arg(q.DepartmentID))
	}
	if q.OwnerID != "" {
		where = append(where, "owner_id = "+arg(q.OwnerID))
	}
	if q.Closed != nil {
		where = append(where, "COALESCE(closed, false) = "+arg(*q.Closed))
	}
	if q.Overdue != nil {
		cond := "(NOT COALESCE(closed, false) AND at < now())"
		if !*q.Overdue {
			cond = "NOT " + cond
		}
		where = append(where, cond)
	}
	for _, r := range []struct {
		col string
		op  string
		t   *time.Time
	}{{"created_at", ">=", q.CreatedFrom}, {"created_at", "<", q.CreatedTo}, {"at", ">=", q.AtFrom},
		{"at", "<", q.AtTo}, {"mirrored_at", ">=", q.MirroredFrom}} {
		if r.t != nil {
			where = append(where, r.col+" "+r.op+" "+arg(*r.t))
		}
	}
	dir, cmp := "ASC", ">"
	if ord.desc {
		dir, cmp = "DESC", "<"
	}
	if q.After != "" {
		key, id, err := parseCustomerCursor(q.After)
		if err != nil {
			return "", false, err
		}
		// Compare in the key's own type: the cursor's text is cast back
		// to whatever the expression yields.
		where = append(where, fmt.Sprintf("(%s, id) %s (%s::text::%s, %s)", ord.key, cmp, arg(key), keyType(q.Order), arg(id)))
	}
	columns := customerColumns
	if q.Fields != nil {
		pairs := make([]string, 0, 2*len(q.Fields))
		for _, k := range q.Fields {
			pairs = append(pairs, pq.QuoteLiteral(k), "fields -> "+pq.QuoteLiteral(k))
		}
		columns = strings.Replace(columns, "fields,", "jsonb_build_object("+strings.Join(pairs, ", ")+") AS fields,", 1)
		columns = strings.Replace(columns, "mirrored_at,", "NULL::timestamptz AS mirrored_at,", 1)
		if !slices.Contains(q.Modules, "tickets") {
			columns = strings.Replace(columns, "modified_at,", "NULL::timestamptz AS modified_at,", 1)
		}
	}
	return fmt.Sprintf(`SELECT %s, (%s)::text AS sort_key FROM mirror_records WHERE %s ORDER BY %s %s, id %s LIMIT %s`,
		columns, ord.key, strings.Join(where, " AND "), ord.key, dir, dir, arg(q.Limit+1)), true, nil
}

// TicketCountQuery says whose tickets CountTickets counts: the live
// tickets of any of these desk contacts or accounts.
type TicketCountQuery struct {
	OrgID        int64
	ConnectionID int64
	DeskSystem   string
	ContactRefs  []string
	AccountRefs  []string
}

// ticketCountSQL renders the counts of q as one aggregate row with the
// columns given, appending its parameters to args; ok is false when q has
// no ids (zero counts, no query).
func ticketCountSQL(q TicketCountQuery, columns string, args *[]any) (query string, ok bool) {
	if len(q.ContactRefs) == 0 && len(q.AccountRefs) == 0 {
		return "", false
	}
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	return `SELECT ` + columns + ` FROM mirror_records
		WHERE org_id = ` + arg(q.OrgID) + ` AND connection_id = ` + arg(q.ConnectionID) + ` AND system = ` + arg(q.DeskSystem) + `
			AND module = 'tickets' AND deleted_at IS NULL
			AND (contact_ref = ANY(` + arg(pq.Array(q.ContactRefs)) + `) OR account_ref = ANY(` + arg(pq.Array(q.AccountRefs)) + `))`, true
}

// The aggregates of TicketCounts, by column name.
const (
	ticketCountTotal      = `count(*)`
	ticketCountOpen       = `count(*) FILTER (WHERE status_type = 'Open')`
	ticketCountOnHold     = `count(*) FILTER (WHERE status_type = 'On Hold')`
	ticketCountResolved   = `count(*) FILTER (WHERE status_type = 'Closed')`
	ticketCountUnresolved = `count(*) FILTER (WHERE status_type IS DISTINCT FROM 'Closed')`
	ticketCountOverdue    = `count(*) FILTER (WHERE status_type IS DISTINCT FROM 'Closed' AND at < now())`
)

// CustomerBatch is several lists and ticket counts to read together.
type CustomerBatch struct {
	Lists  []CustomerListQuery
	Counts []TicketCountQuery
}

// ReadCustomerBatch reads every list and count of b in one statement, so a
// customer picture's lists cost one round trip instead of one each. The
// answers are in b's order and equal what ListCustomerRecords and
// CountTickets answer for each query alone (the same SQL, unioned).
func ReadCustomerBatch(ctx context.Context, db Queryer, b CustomerBatch) ([]CustomerPage, []TicketCounts, error) {
	const action = "reading customer lists"
	pages := make([]CustomerPage, len(b.Lists))
	counts := make([]TicketCounts, len(b.Counts))
	var args []any
	var parts []string
	// Each part is numbered; row_number() keeps each list's own order
	// through the union, and the outer ORDER BY restores it.
	for i, q := range b.Lists {
		query, ok, err := customerListSQL(q, &args)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			parts = append(parts, fmt.Sprintf(`SELECT %d AS batch_part, row_number() OVER () AS batch_pos, s.* FROM (%s) s`, i, query))
		}
	}
	// A count is a row of the same shape: its numbers travel in fields.
	const countRow = `0::bigint AS id, 0::bigint AS org_id, 0::bigint AS connection_id, ''::text AS system, ''::text AS module,
		''::text AS ext_id, jsonb_build_object('total', ` + ticketCountTotal + `, 'open', ` + ticketCountOpen + `,
			'onHold', ` + ticketCountOnHold + `, 'resolved', ` + ticketCountResolved + `, 'unresolved', ` + ticketCountUnresolved + `,
			'overdue', ` + ticketCountOverdue + `) AS fields,
		NULL::text AS email, NULL::text AS name, NULL::timestamptz AS created_at, NULL::timestamptz AS modified_at,
		now() AS mirrored_at, NULL::text AS title, NULL::text AS contact_ref, NULL::text AS account_ref, NULL::text AS deal_ref,
		NULL::text AS lead_ref, NULL::text AS status, NULL::text AS status_type, NULL::text AS owner_id, NULL::text AS owner_name,
		NULL::text AS department_id, NULL::numeric AS amount, NULL::timestamptz AS at, NULL::boolean AS closed, NULL::text AS sort_key`
	for i, q := range b.Counts {
		if query, ok := ticketCountSQL(q, countRow, &args); ok {
			parts = append(parts, fmt.Sprintf(`SELECT %d AS batch_part, 1::bigint AS batch_pos, s.* FROM (%s) s`, len(b.Lists)+i, query))
		}
	}
	if len(parts) == 0 {
		return pages, counts, nil
	}
	// Rows come part after part; each list's rows go straight to its
	// page, the counts' row to its counts.
	var part, pos int64
	var row customerListRow
	var listed []customerListRow
	current := int64(-1)
	settle := func() error {
		switch i := int(current); {
		case current < 0:
		case i < len(b.Lists):
			pages[i] = customerPageOf(listed, b.Lists[i].Limit)
		case i < len(b.Lists)+len(b.Counts) && len(listed) > 0:
			var c struct {
				Total, Open, OnHold, Resolved, Unresolved, Overdue int
			}
			if err := json.Unmarshal(listed[0].Fields, &c); err != nil {
				return fmt.Errorf("%s: decoding counts: %w", action, err)
			}
			counts[i-len(b.Lists)] = TicketCounts{Total: c.Total, Open: c.Open, OnHold: c.OnHold, Resolved: c.Resolved,
				Unresolved: c.Unresolved, Overdue: c.Overdue}
		}
		listed = listed[:0] // customerPageOf copied what it keeps
		return nil
	}
	var settleErr error
	query := strings.Join(parts, "\nUNION ALL\n") + "\nORDER BY batch_part, batch_pos"
	if err := queryCustomerRows(ctx, db, query, args, []any{int64Col{&part}, int64Col{&pos}}, []any{textCol{&row.SortKey}}, &row.CustomerRecord, func() {
		if part != current {
			settleErr = cmp.Or(settleErr, settle())
			current = part
		}
		listed = append(listed, row)
	}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", action, err)
	}
	if err := cmp.Or(settleErr, settle()); err != nil {
		return nil, nil, err
	}
	return pages, counts, nil
}

func keyType(o CustomerOrder) string {
	switch o {
	case OrderAmountDesc:
		return "numeric"
	case OrderID:
		return "bigint"
	}
	return "timestamptz"
}

// customerCursor is "<sort key>\x00<row id>"; the resolvers wrap it.
func customerCursor(key string, id int64) string {
	return key + "\x00" + strconv.FormatInt(id, 10)
}

// ErrBadCursor is a cursor that no list of this kind produced.
var ErrBadCursor = errors.New("not a cursor of this list")

func parseCustomerCursor(c string) (string, int64, error) {
	key, idText, ok := strings.Cut(c, "\x00")
	if !ok {
		return "", 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return "", 0, ErrBadCursor
	}
	return key, id, nil
}

// TicketCounts are a customer's tickets by state (E3).
type TicketCounts struct {
	Total      int `db:"total"`
	Open       int `db:"open"`
	OnHold     int `db:"on_hold"`
	Resolved   int `db:"resolved"`
	Unresolved int `db:"unresolved"`
	Overdue    int `db:"overdue"`
}

// CountTickets counts the live tickets of the given desk contacts or
// accounts in one aggregate. No ids: zero counts, no query.
func CountTickets(ctx context.Context, q Queryer, orgID, connID int64, deskSystem string, contactRefs, accountRefs []string) (TicketCounts, error) {
	var out TicketCounts
	var args []any
	query, ok := ticketCountSQL(TicketCountQuery{OrgID: orgID, ConnectionID: connID, DeskSystem: deskSystem,
		ContactRefs: contactRefs, AccountRefs: accountRefs},
		ticketCountTotal+` AS total, `+ticketCountOpen+` AS open, `+ticketCountOnHold+` AS on_hold, `+
			ticketCountResolved+` AS resolved, `+ticketCountUnresolved+` AS unresolved, `+ticketCountOverdue+` AS overdue`, &args)
	if !ok {
		return out, nil
	}
	err := q.GetContext(ctx, &out, query, args...)
	return out, classify("counting tickets", err)
}

// CustomerKey says whose customer picture is meant: the connection and the
// record ids on each side (vendor ids; "" = none), and which CRM record
// leads the picture ("CONTACT", "ACCOUNT" or "LEAD"): its deals, notes and
// activities are the ones listed.
type CustomerKey struct {
	ConnectionID  int64
	CRMSystem     string
	Lead          string
	DeskContactID string
	DeskAccountID string
	CRMContactID  string
	CRMAccountID  string
	CRMLeadID     string
	Email         string // a lead's email, to find its desk tickets
}

// CurrentConnection is the connection customer 360 reads for an org: the
// newest one not removed (an org has at most one live connection; a
// deactivated one still shows what was mirrored). ErrNotFound when there
// is none.
func CurrentConnection(ctx context.Context, q Queryer, orgID int64) (Connection, error) {
	var out Connection
	err := q.GetContext(ctx, &out, `SELECT `+connectionColumns+` FROM connections
		WHERE org_id = $1 AND status IN ('ACTIVE', 'PAUSED', 'INACTIVE') ORDER BY id DESC LIMIT 1`, orgID)
	return out, classify("loading the org's connection", err)
}

// CustomerTypeRanks is the order the classification view serves customer
// types in (D3): the sandbox's and a typical CRM's Customer_Type values,
// then the Account_Type values that mean a paying relationship. Types not
// listed come after, untyped last.
var CustomerTypeRanks = []string{"Enterprise", "Mid-Market", "SMB", "Customer", "Partner", "Reseller", "Trial", "Prospect"}

// ClassifiedTickets is one page of the classification view: unresolved
// tickets of a department ("" = all), by the rank of their CRM customer
// type (the linked contact's Customer_Type, else its account's
// Account_Type), then overdue first, priority, due date, age. The page
// starts at offset.
func ClassifiedTickets(ctx context.Context, q Queryer, orgID, connID int64, crmSystem, deskSystem, departmentID string, offset, limit int) ([]CustomerRecord, bool, error) {
	var rows []CustomerRecord
	err := q.SelectContext(ctx, &rows, `
		SELECT `+prefixColumns("t.", customerColumns)+`
		FROM mirror_records t
		LEFT JOIN links l ON l.connection_id = t.connection_id AND l.module = 'contacts' AND l.desk_id = t.contact_ref
		LEFT JOIN mirror_records c ON c.connection_id = t.connection_id AND c.system = $3 AND c.module = 'contacts'
			AND c.ext_id = l.crm_id
		LEFT JOIN mirror_records a ON a.connection_id = t.connection_id AND a.system = $3 AND a.module = 'accounts'
			AND a.ext_id = c.account_ref
		WHERE t.org_id = $1 AND t.connection_id = $2 AND t.system = $4 AND t.module = 'tickets'
			AND t.deleted_at IS NULL AND NOT COALESCE(t.closed, false) AND ($5 = '' OR t.department_id = $5)
		ORDER BY COALESCE(array_position($6::text[], COALESCE(c.fields->>'Customer_Type', a.fields->>'Account_Type')),
				CASE WHEN COALESCE(c.fields->>'Customer_Type', a.fields->>'Account_Type') IS NULL THEN 1000 ELSE 999 END),
			(t.at < now()) DESC NULLS LAST,
			array_position(ARRAY['High', 'Medium', 'Low'], t.fields->>'priority') NULLS LAST,
			t.at NULLS LAST, t.created_at, t.id
		OFFSET $7 LIMIT $8`,
		orgID, connID, crmSystem, deskSystem, departmentID, pq.Array(CustomerTypeRanks), offset, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("listing classified tickets: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	return rows, more, nil
}

// TicketStat is one group of TicketStats.
type TicketStat struct {
	AccountID    *string `db:"account_id"`
	Status       *string `db:"status"`
	DepartmentID *string `db:"department_id"`
	Count        int     `db:"count"`
}

// TicketStats counts a connection's live tickets grouped by any of
// "account", "status" and "department".
func TicketStats(ctx context.Context, q Queryer, orgID, connID int64, deskSystem string, groupBy []string) ([]TicketStat, error) {
	cols := map[string]string{"account": "account_ref", "status": "status", "department": "department_id"}
	selects := []string{"NULL::text AS account_id", "NULL::text AS status", "NULL::text AS department_id"}
	var groups []string
	for _, g := range groupBy {
		col, ok := cols[g]
		if !ok {
			return nil, fmt.Errorf("counting tickets: unknown group %q", g)
		}
		switch g {
		case "account":
			selects[0] = col + " AS account_id"
		case "status":
			selects[1] = col + " AS status"
		case "department":
			selects[2] = col + " AS department_id"
		}
		groups = append(groups, col)
	}
	group := ""
	if len(groups) > 0 {
		group = " GROUP BY " + strings.Join(groups, ", ") + " ORDER BY " + strings.Join(groups, ", ")
	}
	var out []TicketStat
	err := q.SelectContext(ctx, &out, `SELECT `+strings.Join(selects, ", ")+`, count(*) AS count FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = 'tickets' AND deleted_at IS NULL`+group,
		orgID, connID, deskSystem)
	if err != nil {
		return nil, fmt.Errorf("counting tickets: %w", err)
	}
	return out, nil
}

// DealStat is the deals of one stage.
type DealStat struct {
	Stage  *string `db:"stage"`
	Count  int     `db:"count"`
	Amount float64 `db:"amount"`
}

// DealStats sums a connection's live deals per stage.
func DealStats(ctx context.Context, q Queryer, orgID, connID int64, crmSystem string) ([]DealStat, error) {
	var out []DealStat
	err := q.SelectContext(ctx, &out, `SELECT status AS stage, count(*) AS count, COALESCE(sum(amount), 0)::float8 AS amount
		FROM mirror_records WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = 'deals' AND deleted_at IS NULL
		GROUP BY status ORDER BY status`, orgID, connID, crmSystem)
	if err != nil {
		return nil, fmt.Errorf("summing deals: %w", err)
	}
	return out, nil
}

// ActivityStat is one activity module's counts.
type ActivityStat struct {
	Module string `db:"module"`
	Open   int    `db:"open"`
	Closed int    `db:"closed"`
}

// ActivityStats counts a connection's live activities per module.
func ActivityStats(ctx context.Context, q Queryer, orgID, connID int64, crmSystem string, modules []string) ([]ActivityStat, error) {
	var out []ActivityStat
	err := q.SelectContext(ctx, &out, `SELECT module, count(*) FILTER (WHERE NOT COALESCE(closed, false)) AS open,
			count(*) FILTER (WHERE closed) AS closed
		FROM mirror_records WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = ANY($4) AND deleted_at IS NULL
		GROUP BY module ORDER BY module`, orgID, connID, crmSystem, pq.Array(modules))
	if err != nil {
		return nil, fmt.Errorf("counting activities: %w", err)
	}
	return out, nil
}
