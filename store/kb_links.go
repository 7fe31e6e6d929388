package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// KBArticleLink is one desk article and its SalesIQ copy: where the copy
// was written (department, category, status), a SHA-256 of everything last
// written, the desk's modified time then, and the last run that found the
// article in scope. SalesIQArticleID is nil while a create's outcome is not
// known (PendKBLinks).
type KBArticleLink struct {
	OrgID             int64      `db:"org_id"`
	ConnectionID      int64      `db:"connection_id"`
	DeskArticleID     string     `db:"desk_article_id"`
	SalesIQArticleID  *string    `db:"salesiq_article_id"`
	DeskCategoryID    string     `db:"desk_category_id"`
	ChatDepartmentID  string     `db:"chat_department_id"`
	SalesIQCategoryID string     `db:"salesiq_category_id"`
	Status            string     `db:"status"`
	ContentHash       []byte     `db:"content_hash"`
	DeskModifiedAt    *time.Time `db:"desk_modified_at"`
	SeenRun           *int64     `db:"seen_run"`
	SyncedAt          time.Time  `db:"synced_at"`
}

const kbLinkColumns = `org_id, connection_id, desk_article_id, salesiq_article_id, desk_category_id, chat_department_id,
	salesiq_category_id, status, content_hash, desk_modified_at, seen_run, synced_at`

// GetKBLinks returns the links of the given desk articles (those that have
// one), in no particular order.
func GetKBLinks(ctx context.Context, q Queryer, orgID, connID int64, deskIDs []string) ([]KBArticleLink, error) {
	out := []KBArticleLink{}
	if len(deskIDs) == 0 {
		return out, nil
	}
	err := q.SelectContext(ctx, &out, `SELECT `+kbLinkColumns+` FROM kb_article_links
		WHERE org_id = $1 AND connection_id = $2 AND desk_article_id = ANY($3)`, orgID, connID, pq.Array(deskIDs))
	if err != nil {
		return nil, fmt.Errorf("loading kb article links: %w", err)
	}
	return out, nil
}

// kbLinkRow ships a link to jsonb_to_recordset.
type kbLinkRow struct {
	DeskArticleID     string     `json:"desk_article_id"`
	SalesIQArticleID  *string    `json:"salesiq_article_id"`
	DeskCategoryID    string     `json:"desk_category_id"`
	ChatDepartmentID  string     `json:"chat_department_id"`
	SalesIQCategoryID string     `json:"salesiq_category_id"`
	Status            string     `json:"status"`
	ContentHash       *string    `json:"content_hash"` // hex
	DeskModifiedAt    *time.Time `json:"desk_modified_at"`
}

func kbLinkRows(links []KBArticleLink) ([]byte, error) {
	rows := make([]kbLinkRow, len(links))
	for i, l := range links {
		rows[i] = kbLinkRow{DeskArticleID: l.DeskArticleID, SalesIQArticleID: l.SalesIQArticleID,
			DeskCategoryID: l.DeskCategoryID, ChatDepartmentID: l.ChatDepartmentID, SalesIQCategoryID: l.SalesIQCategoryID,
			Status: l.Status, DeskModifiedAt: l.DeskModifiedAt}
		if l.ContentHash != nil {
			h := fmt.Sprintf("%x", l.ContentHash)
			rows[i].ContentHash = &h
		}
	}
	return json.Marshal(rows)
}

const kbLinkRecordset = `jsonb_to_recordset($3::jsonb) AS r(desk_article_id text, salesiq_article_id text,
	desk_category_id text, chat_department_id text, salesiq_category_id text, status text, content_hash text,
	desk_modified_at timestamptz)`

// PendKBLinks records, before the creates are sent, the articles a run is
// about to create, with no SalesIQ id: if the process dies before their
// answers are stored, the next run finds these rows and looks the copies up
// instead of creating them again. Articles that already have a link keep it.
func PendKBLinks(ctx context.Context, q Queryer, orgID, connID int64, links []KBArticleLink) error {
	if len(links) == 0 {
		return nil
	}
	batch, err := kbLinkRows(links)
	if err != nil {
		return fmt.Errorf("recording pending kb creates: %w", err)
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO kb_article_links (org_id, connection_id, desk_article_id, salesiq_article_id, desk_category_id,
			chat_department_id, salesiq_category_id, status)
		SELECT $1, $2, r.desk_article_id, NULL, r.desk_category_id, r.chat_department_id, r.salesiq_category_id, r.status
		FROM `+kbLinkRecordset+`
		ON CONFLICT (connection_id, desk_article_id) DO NOTHING`, orgID, connID, batch)
	return classify("recording pending kb creates", err)
}

// SaveKBLinks writes links as a run leaves them, marked seen by runID. A
// SalesIQ id already linked to another desk article of the connection is
// ErrConflict.
func SaveKBLinks(ctx context.Context, q Queryer, orgID, connID, runID int64, at time.Time, links []KBArticleLink) error {
	if len(links) == 0 {
		return nil
	}
	batch, err := kbLinkRows(links)
	if err != nil {
		return fmt.Errorf("saving kb article links: %w", err)
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO kb_article_links AS l (org_id, connection_id, desk_article_id, salesiq_article_id, desk_category_id,
			chat_department_id, salesiq_category_id, status, content_hash, desk_modified_at, seen_run, synced_at)
		SELECT $1, $2, r.desk_article_id, r.salesiq_article_id, r.desk_category_id, r.chat_department_id,
			r.salesiq_category_id, r.status, decode(r.content_hash, 'hex'), r.desk_modified_at, $4, $5
		FROM `+kbLinkRecordset+`
		ON CONFLICT (connection_id, desk_article_id) DO UPDATE SET
			salesiq_article_id = EXCLUDED.salesiq_article_id, desk_category_id = EXCLUDED.desk_category_id,
			chat_department_id = EXCLUDED.chat_department_id, salesiq_category_id = EXCLUDED.salesiq_category_id,
			status = EXCLUDED.status, content_hash = EXCLUDED.content_hash, desk_modified_at = EXCLUDED.desk_modified_at,
			seen_run = EXCLUDED.seen_run, synced_at = EXCLUDED.synced_at
		WHERE l.org_id = EXCLUDED.org_id`, orgID, connID, batch, runID, at)
	return classify("saving kb article links", err)
}

// MarkKBLinksSeen records that runID found these articles in scope and
// unchanged, so the end of the run does not take them for removed.
func MarkKBLinksSeen(ctx context.Context, q Queryer, orgID, connID, runID int64, deskIDs []string) error {
	if len(deskIDs) == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `UPDATE kb_article_links SET seen_run = $3
		WHERE org_id = $1 AND connection_id = $2 AND desk_article_id = ANY($4)`, orgID, connID, runID, pq.Array(deskIDs))
	return classify("marking kb article links seen", err)
}

// UnseenKBLinks pages through the links runID did not see (by desk article
// id, after after): the candidates for removal at the end of a full run.
func UnseenKBLinks(ctx context.Context, q Queryer, orgID, connID, runID int64, after string, limit int) ([]KBArticleLink, error) {
	out := []KBArticleLink{}
	err := q.SelectContext(ctx, &out, `SELECT `+kbLinkColumns+` FROM kb_article_links
		WHERE org_id = $1 AND connection_id = $2 AND seen_run IS DISTINCT FROM $3 AND desk_article_id > $4
		ORDER BY desk_article_id LIMIT $5`, orgID, connID, runID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing unseen kb article links: %w", err)
	}
	return out, nil
}

// DeleteKBLinks removes the links of desk articles whose copies were
// deleted.
func DeleteKBLinks(ctx context.Context, q Queryer, orgID, connID int64, deskIDs []string) error {
	if len(deskIDs) == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `DELETE FROM kb_article_links WHERE org_id = $1 AND connection_id = $2
		AND desk_article_id = ANY($3)`, orgID, connID, pq.Array(deskIDs))
	return classify("deleting kb article links", err)
}

// CountKBLinks counts a connection's article links: all of them, and those
// whose create outcome is still unknown.
func CountKBLinks(ctx context.Context, q Queryer, orgID, connID int64) (total, pending int64, err error) {
	var row struct {
		Total   int64 `db:"total"`
		Pending int64 `db:"pending"`
	}
	err = q.GetContext(ctx, &row, `SELECT count(*) AS total, count(*) FILTER (WHERE salesiq_article_id IS NULL) AS pending
		FROM kb_article_links WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return 0, 0, fmt.Errorf("counting kb article links: %w", err)
	}
	return row.Total, row.Pending, nil
}

// GetKBCategoryLinks returns desk category id -> SalesIQ category id.
func GetKBCategoryLinks(ctx context.Context, q Queryer, orgID, connID int64) (map[string]string, error) {
	var rows []struct {
		Desk    string `db:"desk_category_id"`
		SalesIQ string `db:"salesiq_category_id"`
	}
	err := q.SelectContext(ctx, &rows, `SELECT desk_category_id, salesiq_category_id FROM kb_category_links
		WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return nil, fmt.Errorf("loading kb category links: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Desk] = r.SalesIQ
	}
	return out, nil
}

// PutKBCategoryLink records the SalesIQ category a desk category's
// articles go into.
func PutKBCategoryLink(ctx context.Context, q Queryer, orgID, connID int64, deskID, salesIQID, name string) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO kb_category_links AS l (org_id, connection_id, desk_category_id, salesiq_category_id, name)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (connection_id, desk_category_id) DO UPDATE SET salesiq_category_id = EXCLUDED.salesiq_category_id,
			name = EXCLUDED.name
		WHERE l.org_id = EXCLUDED.org_id`, orgID, connID, deskID, salesIQID, name)
	return classify("storing kb category link", err)
}
