package store

import (
	"context"
	"encoding/json"
	"fmt"
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
