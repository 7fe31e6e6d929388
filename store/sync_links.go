package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// The two sides of a link. The values match sync_conflicts.winner.
const (
	SideDesk = "DESK"
	SideCRM  = "CRM"
)

// Link joins one desk record to one CRM record of a module, and remembers
// per side the mapped values last synced: a later change equal to them is
// our own echo, and a field differing from them is the side that changed it.
type Link struct {
	ID             int64           `db:"id"`
	OrgID          int64           `db:"org_id"`
	ConnectionID   int64           `db:"connection_id"`
	Module         string          `db:"module"`
	DeskID         string          `db:"desk_id"`
	CRMID          string          `db:"crm_id"`
	DeskValues     json.RawMessage `db:"desk_values"`
	CRMValues      json.RawMessage `db:"crm_values"`
	DeskModifiedAt *time.Time      `db:"desk_modified_at"`
	CRMModifiedAt  *time.Time      `db:"crm_modified_at"`
	SyncedAt       time.Time       `db:"synced_at"`
}

// NewLink is what InsertLink needs. Nil values are stored as {}.
type NewLink struct {
	OrgID          int64
	ConnectionID   int64
	Module         string
	DeskID         string
	CRMID          string
	DeskValues     json.RawMessage
	CRMValues      json.RawMessage
	DeskModifiedAt *time.Time
	CRMModifiedAt  *time.Time
}

// LinkConflict is InsertLink's answer when one of the records is already
// linked (B14 already_linked): Side names the side whose id is taken (SideCRM
// when both are), and the Existing fields describe the link holding it, so
// the failure can say "CRM record X is linked to desk record Y". When
// ExistingDeskID and ExistingCRMID equal the ids asked for, the pair was
// already linked, which a caller may treat as success. It wraps ErrConflict.
type LinkConflict struct {
	Side           string
	ExistingLinkID int64
	ExistingDeskID string
	ExistingCRMID  string
}

// Error names the record and the link that holds it, for logs; the API
// builds its own message from the fields.
func (e *LinkConflict) Error() string {
	id := e.ExistingCRMID
	if e.Side == SideDesk {
		id = e.ExistingDeskID
	}
	return fmt.Sprintf("%s record %s is already linked (link %d, desk %s, crm %s): %v",
		e.Side, id, e.ExistingLinkID, e.ExistingDeskID, e.ExistingCRMID, ErrConflict)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *LinkConflict) Unwrap() error { return ErrConflict }

const linkColumns = `id, org_id, connection_id, module, desk_id, crm_id, desk_values, crm_values,
	desk_modified_at, crm_modified_at, synced_at`

// jsonArg passes a JSON document as a parameter: an empty one becomes NULL
// (lib/pq would send an empty []byte as "", which is not JSON).
func jsonArg(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// InsertLink links two records. When either is already linked it returns a
// *LinkConflict. It uses ON CONFLICT DO NOTHING rather than letting the
// unique key fail, so a collision does not abort the caller's transaction
// (the engine links inside the transaction that writes the batch), and a
// concurrent link of the same record is waited for and then reported.
func InsertLink(ctx context.Context, q Queryer, l NewLink) (Link, error) {
	const action = "inserting link"
	for range 3 {
		var out []Link
		err := q.SelectContext(ctx, &out, `
			INSERT INTO links (org_id, connection_id, module, desk_id, crm_id, desk_values, crm_values,
				desk_modified_at, crm_modified_at)
			VALUES ($1, $2, $3, $4, $5, COALESCE($6::jsonb, '{}'), COALESCE($7::jsonb, '{}'), $8, $9)
			ON CONFLICT DO NOTHING
			RETURNING `+linkColumns,
			l.OrgID, l.ConnectionID, l.Module, l.DeskID, l.CRMID, jsonArg(l.DeskValues), jsonArg(l.CRMValues),
			l.DeskModifiedAt, l.CRMModifiedAt)
		if err != nil {
			return Link{}, classify(action, err)
		}
		if len(out) == 1 {
			return out[0], nil
		}
		// Which side collided? The holder may be another org's link only if
		// the caller passed another org's connection id; report that as not
		// found, like the foreign key would have.
		var holder []Link
		err = q.SelectContext(ctx, &holder, `
			SELECT `+linkColumns+` FROM links
			WHERE connection_id = $1 AND module = $2 AND (crm_id = $3 OR desk_id = $4)
			ORDER BY (crm_id = $3) DESC LIMIT 1`, l.ConnectionID, l.Module, l.CRMID, l.DeskID)
		if err != nil {
			return Link{}, classify(action, err)
		}
		if len(holder) == 0 {
			continue // unlinked between the two statements: try again
		}
		h := holder[0]
		if h.OrgID != l.OrgID {
			return Link{}, fmt.Errorf("%s: %w", action, ErrNotFound)
		}
		side := SideDesk
		if h.CRMID == l.CRMID {
			side = SideCRM
		}
		return Link{}, fmt.Errorf("%s: %w", action, &LinkConflict{
			Side: side, ExistingLinkID: h.ID, ExistingDeskID: h.DeskID, ExistingCRMID: h.CRMID,
		})
	}
	return Link{}, fmt.Errorf("%s: %w (links kept changing)", action, ErrConflict)
}

// linkRow is how InsertLinks and UpdateLinksValues ship a link to
// jsonb_to_recordset.
type linkRow struct {
	ID             int64           `json:"id,omitempty"`
	DeskID         string          `json:"desk_id,omitempty"`
	CRMID          string          `json:"crm_id,omitempty"`
	DeskValues     json.RawMessage `json:"desk_values,omitempty"`
	CRMValues      json.RawMessage `json:"crm_values,omitempty"`
	DeskModifiedAt *time.Time      `json:"desk_modified_at,omitempty"`
	CRMModifiedAt  *time.Time      `json:"crm_modified_at,omitempty"`
}

// LinkPair names a link by its two records.
type LinkPair struct{ DeskID, CRMID string }

// InsertLinks links a batch of record pairs of one connection and module in
// one statement (a first sync links thousands; one round trip each would
// be most of a batch's database time). It returns the links it inserted,
// by pair. A pair missing from the answer was not linked because one of its
// records already was (or the batch repeats it): ask InsertLink about that
// pair for the *LinkConflict, which is rare. Each NewLink's OrgID,
// ConnectionID and Module are ignored; nil values are stored as {}. Rows go
// in in CRM id order, so concurrent batches lock the same keys alike.
func InsertLinks(ctx context.Context, q Queryer, orgID, connID int64, module string, links []NewLink) (map[LinkPair]Link, error) {
	const action = "inserting links"
	out := map[LinkPair]Link{}
	if len(links) == 0 {
		return out, nil
	}
	rows := make([]linkRow, len(links))
	for i, l := range links {
		rows[i] = linkRow{DeskID: l.DeskID, CRMID: l.CRMID, DeskValues: l.DeskValues, CRMValues: l.CRMValues,
			DeskModifiedAt: l.DeskModifiedAt, CRMModifiedAt: l.CRMModifiedAt}
	}
	slices.SortFunc(rows, func(a, b linkRow) int { return cmp.Or(cmp.Compare(a.CRMID, b.CRMID), cmp.Compare(a.DeskID, b.DeskID)) })
	batch, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding: %w", action, err)
	}
	var inserted []Link
	err = q.SelectContext(ctx, &inserted, `
		INSERT INTO links (org_id, connection_id, module, desk_id, crm_id, desk_values, crm_values,
			desk_modified_at, crm_modified_at)
		SELECT c.org_id, c.id, $3, r.desk_id, r.crm_id, COALESCE(r.desk_values, '{}'), COALESCE(r.crm_values, '{}'),
			r.desk_modified_at, r.crm_modified_at
		FROM connections c, jsonb_to_recordset($4::jsonb) AS r(desk_id text, crm_id text, desk_values jsonb,
			crm_values jsonb, desk_modified_at timestamptz, crm_modified_at timestamptz)
		WHERE c.org_id = $1 AND c.id = $2
		ON CONFLICT DO NOTHING
		RETURNING `+linkColumns, orgID, connID, module, batch)
	if err != nil {
		return nil, classify(action, err)
	}
	for _, l := range inserted {
		out[LinkPair{l.DeskID, l.CRMID}] = l
	}
	return out, nil
}

// LinkUpdate is one link's new values for UpdateLinksValues.
type LinkUpdate struct {
	LinkID int64
	LinkValues
}

// UpdateLinksValues is UpdateLinkValues for a batch of links of the org, in
// one statement. It is ErrNotFound when any of them is gone (or not the
// org's), like UpdateLinkValues; the caller's transaction should then roll
// back, as the others were updated.
func UpdateLinksValues(ctx context.Context, q Queryer, orgID int64, updates []LinkUpdate) error {
	const action = "updating link values"
	if len(updates) == 0 {
		return nil
	}
	rows := make([]linkRow, len(updates))
	want := map[int64]bool{}
	for i, u := range updates {
		rows[i] = linkRow{ID: u.LinkID, DeskValues: u.DeskValues, CRMValues: u.CRMValues,
			DeskModifiedAt: u.DeskModifiedAt, CRMModifiedAt: u.CRMModifiedAt}
		want[u.LinkID] = true
	}
	slices.SortFunc(rows, func(a, b linkRow) int { return cmp.Compare(a.ID, b.ID) })
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("%s: encoding: %w", action, err)
	}
	// A link repeated in the batch is updated once, with its last values,
	// as one UpdateLinkValues after another would leave it.
	var n int
	err = q.GetContext(ctx, &n, `
		WITH up AS (
			UPDATE links l SET
				desk_values = COALESCE(r.desk_values, l.desk_values),
				crm_values = COALESCE(r.crm_values, l.crm_values),
				desk_modified_at = COALESCE(r.desk_modified_at, l.desk_modified_at),
				crm_modified_at = COALESCE(r.crm_modified_at, l.crm_modified_at),
				synced_at = now()
			FROM (
				SELECT DISTINCT ON (id) * FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (id bigint, desk_values jsonb,
					crm_values jsonb, desk_modified_at timestamptz, crm_modified_at timestamptz)) WITH ORDINALITY
					AS x(id, desk_values, crm_values, desk_modified_at, crm_modified_at, ord)
				ORDER BY id, ord DESC
			) r
			WHERE l.org_id = $1 AND l.id = r.id
			RETURNING 1
		)
		SELECT count(*) FROM up`, orgID, batch)
	if err != nil {
		return classify(action, err)
	}
	if n != len(want) {
		return fmt.Errorf("%s: %d of %d links: %w", action, len(want)-n, len(want), ErrNotFound)
	}
	return nil
}

// LinkByID returns one link of the org.
func LinkByID(ctx context.Context, q Queryer, orgID, id int64) (Link, error) {
	var out Link
	err := q.GetContext(ctx, &out, `SELECT `+linkColumns+` FROM links WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading link", err)
}

// LinkByDesk returns the link of a desk record.
func LinkByDesk(ctx context.Context, q Queryer, orgID, connID int64, module, deskID string) (Link, error) {
	var out Link
	err := q.GetContext(ctx, &out, `
		SELECT `+linkColumns+` FROM links
		WHERE org_id = $1 AND connection_id = $2 AND module = $3 AND desk_id = $4`, orgID, connID, module, deskID)
	return out, classify("loading link by desk id", err)
}

// LinkByCRM returns the link of a CRM record.
func LinkByCRM(ctx context.Context, q Queryer, orgID, connID int64, module, crmID string) (Link, error) {
	var out Link
	err := q.GetContext(ctx, &out, `
		SELECT `+linkColumns+` FROM links
		WHERE org_id = $1 AND connection_id = $2 AND module = $3 AND crm_id = $4`, orgID, connID, module, crmID)
	return out, classify("loading link by crm id", err)
}

// LinksByDeskIDs returns the links of a batch of desk records, keyed by desk
// id; ids without a link are absent. One query per batch, for the engine's
// batched apply.
func LinksByDeskIDs(ctx context.Context, q Queryer, orgID, connID int64, module string, ids []string) (map[string]Link, error) {
	var rows []Link
	err := q.SelectContext(ctx, &rows, `
		SELECT `+linkColumns+` FROM links
		WHERE org_id = $1 AND connection_id = $2 AND module = $3 AND desk_id = ANY($4)`,
		orgID, connID, module, pq.Array(nonNil(ids)))
	if err != nil {
		return nil, fmt.Errorf("loading links by desk ids: %w", err)
	}
	out := make(map[string]Link, len(rows))
	for _, l := range rows {
		out[l.DeskID] = l
	}
	return out, nil
}

// LinksByCRMIDs is LinksByDeskIDs for CRM ids.
func LinksByCRMIDs(ctx context.Context, q Queryer, orgID, connID int64, module string, ids []string) (map[string]Link, error) {
	var rows []Link
	err := q.SelectContext(ctx, &rows, `
		SELECT `+linkColumns+` FROM links
		WHERE org_id = $1 AND connection_id = $2 AND module = $3 AND crm_id = ANY($4)`,
		orgID, connID, module, pq.Array(nonNil(ids)))
	if err != nil {
		return nil, fmt.Errorf("loading links by crm ids: %w", err)
	}
	out := make(map[string]Link, len(rows))
	for _, l := range rows {
		out[l.CRMID] = l
	}
	return out, nil
}

// LinkValues is what a sync writes back to a link: the mapped values now on
// each side and the records' modified times. A nil field keeps what the link
// has, so a one-way write can leave the other side alone.
type LinkValues struct {
	DeskValues     json.RawMessage
	CRMValues      json.RawMessage
	DeskModifiedAt *time.Time
	CRMModifiedAt  *time.Time
}

// UpdateLinkValues records a sync of the link, stamping synced_at.
func UpdateLinkValues(ctx context.Context, q Queryer, orgID, linkID int64, v LinkValues) (Link, error) {
	var out Link
	err := q.GetContext(ctx, &out, `
		UPDATE links SET
			desk_values = COALESCE($3::jsonb, desk_values),
			crm_values = COALESCE($4::jsonb, crm_values),
			desk_modified_at = COALESCE($5, desk_modified_at),
			crm_modified_at = COALESCE($6, crm_modified_at),
			synced_at = now()
		WHERE org_id = $1 AND id = $2
		RETURNING `+linkColumns,
		orgID, linkID, jsonArg(v.DeskValues), jsonArg(v.CRMValues), v.DeskModifiedAt, v.CRMModifiedAt)
	return out, classify("updating link values", err)
}

// DeleteLink unlinks two records (a deletion under the NEVER policy, or an
// unlink because related lists are not empty). The records themselves are
// untouched.
func DeleteLink(ctx context.Context, q Queryer, orgID, linkID int64) error {
	var n int
	err := q.GetContext(ctx, &n, `DELETE FROM links WHERE org_id = $1 AND id = $2 RETURNING 1`, orgID, linkID)
	return classify("deleting link", err)
}
