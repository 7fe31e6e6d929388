package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

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
	OrderMirrored:    {"mirrored_at", false},
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
	ord, ok := customerOrders[q.Order]
	if !ok {
		return CustomerPage{}, fmt.Errorf("%s: unknown order %q", action, q.Order)
	}
	if q.Limit <= 0 {
		return CustomerPage{}, fmt.Errorf("%s: limit must be positive", action)
	}
	args := []any{q.OrgID, q.ConnectionID, q.System, pq.Array(q.Modules)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := []string{"org_id = $1", "connection_id = $2", "system = $3", "module = ANY($4)", "deleted_at IS NULL"}
	var refs []string
	for col, ids := range map[string][]string{"contact_ref": q.ContactRefs, "account_ref": q.AccountRefs,
		"deal_ref": q.DealRefs, "lead_ref": q.LeadRefs} {
		if len(ids) > 0 {
			refs = append(refs, col+" = ANY("+arg(pq.Array(ids))+")")
		}
	}
	switch {
	case len(refs) > 0:
		where = append(where, "("+strings.Join(refs, " OR ")+")")
	case q.RefsGiven:
		return CustomerPage{}, nil
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
			return CustomerPage{}, err
		}
		// Compare in the key's own type: the cursor's text is cast back
		// to whatever the expression yields.
		where = append(where, fmt.Sprintf("(%s, id) %s (%s::text::%s, %s)", ord.key, cmp, arg(key), keyType(q.Order), arg(id)))
	}
	var rows []struct {
		CustomerRecord
		SortKey string `db:"sort_key"`
	}
	query := fmt.Sprintf(`SELECT %s, (%s)::text AS sort_key FROM mirror_records WHERE %s ORDER BY %s %s, id %s LIMIT %s`,
		customerColumns, ord.key, strings.Join(where, " AND "), ord.key, dir, dir, arg(q.Limit+1))
	if err := db.SelectContext(ctx, &rows, query, args...); err != nil {
		return CustomerPage{}, fmt.Errorf("%s: %w", action, err)
	}
	page := CustomerPage{HasNext: len(rows) > q.Limit}
	if page.HasNext {
		rows = rows[:q.Limit]
	}
	for _, r := range rows {
		page.Records = append(page.Records, r.CustomerRecord)
		page.Cursors = append(page.Cursors, customerCursor(r.SortKey, r.ID))
	}
	return page, nil
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
	if len(contactRefs) == 0 && len(accountRefs) == 0 {
		return out, nil
	}
	err := q.GetContext(ctx, &out, `
		SELECT count(*) AS total,
			count(*) FILTER (WHERE status_type = 'Open') AS open,
			count(*) FILTER (WHERE status_type = 'On Hold') AS on_hold,
			count(*) FILTER (WHERE status_type = 'Closed') AS resolved,
			count(*) FILTER (WHERE status_type IS DISTINCT FROM 'Closed') AS unresolved,
			count(*) FILTER (WHERE status_type IS DISTINCT FROM 'Closed' AND at < now()) AS overdue
		FROM mirror_records
		WHERE org_id = $1 AND connection_id = $2 AND system = $3 AND module = 'tickets' AND deleted_at IS NULL
			AND (contact_ref = ANY($4) OR account_ref = ANY($5))`,
		orgID, connID, deskSystem, pq.Array(contactRefs), pq.Array(accountRefs))
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
