package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Knowledge-base sync settings (SPEC F2, docs/KB.md). The values of the
// enumerated columns are the GraphQL enum values.
const (
	KBPermissionAll        = "ALL"
	KBPermissionRegistered = "REGISTERED"
	KBPermissionBoth       = "BOTH"

	KBStatusPublished = "PUBLISHED"
	KBStatusDraft     = "DRAFT"

	KBDaily   = "DAILY"
	KBWeekly  = "WEEKLY"
	KBMonthly = "MONTHLY"
)

// SecretKBSalesIQRefreshToken names the sealed SalesIQ refresh token of a
// connection's KB sync in connection_secrets. It is its own name, not the
// chat link's, so the two never overwrite each other.
const SecretKBSalesIQRefreshToken = "kb_salesiq_refresh_token"

// KBSettings is a connection's KB sync: the SalesIQ portal it writes to,
// which articles go (permission), how they arrive (status), and when
// (interval in TimeZone, anchored on FirstSyncAt). NextRunAt is nil while
// the sync is disabled.
type KBSettings struct {
	OrgID         int64      `db:"org_id"`
	ConnectionID  int64      `db:"connection_id"`
	SalesIQDC     string     `db:"salesiq_dc"`
	SalesIQScreen string     `db:"salesiq_screen"`
	Permission    string     `db:"permission"`
	ArticleStatus string     `db:"article_status"`
	Interval      string     `db:"sync_interval"`
	TimeZone      string     `db:"time_zone"`
	Enabled       bool       `db:"enabled"`
	FirstSyncAt   *time.Time `db:"first_sync_at"`
	NextRunAt     *time.Time `db:"next_run_at"`
	UpdatedBy     *int64     `db:"updated_by"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

const kbSettingsColumns = `org_id, connection_id, salesiq_dc, salesiq_screen, permission, article_status,
	sync_interval, time_zone, enabled, first_sync_at, next_run_at, updated_by, created_at, updated_at`

// KBCategory gives one desk category to one chat department.
type KBCategory struct {
	DeskCategoryID   string `db:"desk_category_id"`
	ChatDepartmentID string `db:"chat_department_id"`
}

// GetKBSettings returns a connection's KB settings; ErrNotFound when it has
// none or is not the org's. forUpdate locks the row for the caller's
// transaction.
func GetKBSettings(ctx context.Context, q Queryer, orgID, connID int64, forUpdate bool) (KBSettings, error) {
	var out KBSettings
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	err := q.GetContext(ctx, &out, `SELECT `+kbSettingsColumns+` FROM kb_sync_settings
		WHERE org_id = $1 AND connection_id = $2`+lock, orgID, connID)
	return out, classify("loading kb sync settings", err)
}

// PutKBSettings stores a connection's KB settings, replacing earlier ones.
// ErrNotFound when the connection is not the org's (the foreign key, and
// the guard on the update branch).
func PutKBSettings(ctx context.Context, q Queryer, s KBSettings) (KBSettings, error) {
	var out KBSettings
	err := q.GetContext(ctx, &out, `
		INSERT INTO kb_sync_settings AS k (org_id, connection_id, salesiq_dc, salesiq_screen, permission, article_status,
			sync_interval, time_zone, enabled, first_sync_at, next_run_at, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (connection_id) DO UPDATE SET salesiq_dc = EXCLUDED.salesiq_dc,
			salesiq_screen = EXCLUDED.salesiq_screen, permission = EXCLUDED.permission,
			article_status = EXCLUDED.article_status, sync_interval = EXCLUDED.sync_interval,
			time_zone = EXCLUDED.time_zone, enabled = EXCLUDED.enabled, first_sync_at = EXCLUDED.first_sync_at,
			next_run_at = EXCLUDED.next_run_at, updated_by = EXCLUDED.updated_by, updated_at = now()
		WHERE k.org_id = EXCLUDED.org_id
		RETURNING `+kbSettingsColumns,
		s.OrgID, s.ConnectionID, s.SalesIQDC, s.SalesIQScreen, s.Permission, s.ArticleStatus, s.Interval,
		s.TimeZone, s.Enabled, s.FirstSyncAt, s.NextRunAt, s.UpdatedBy)
	return out, classify("storing kb sync settings", err)
}

// GetKBCategories returns which desk category syncs into which chat
// department, in the order the admin gave them.
func GetKBCategories(ctx context.Context, q Queryer, orgID, connID int64) ([]KBCategory, error) {
	out := []KBCategory{}
	err := q.SelectContext(ctx, &out, `SELECT desk_category_id, chat_department_id FROM kb_sync_categories
		WHERE org_id = $1 AND connection_id = $2 ORDER BY position, desk_category_id`, orgID, connID)
	if err != nil {
		return nil, fmt.Errorf("loading kb sync categories: %w", err)
	}
	return out, nil
}

// ReplaceKBCategories replaces the category assignment of a connection. A
// category given twice is ErrConflict (the primary key: a category belongs
// to at most one department); the caller checks first to say which.
func ReplaceKBCategories(ctx context.Context, q Queryer, orgID, connID int64, cats []KBCategory) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM kb_sync_categories WHERE org_id = $1 AND connection_id = $2`, orgID, connID); err != nil {
		return classify("replacing kb sync categories", err)
	}
	if len(cats) == 0 {
		return nil
	}
	desk, dept := make([]string, len(cats)), make([]string, len(cats))
	for i, c := range cats {
		desk[i], dept[i] = c.DeskCategoryID, c.ChatDepartmentID
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO kb_sync_categories (org_id, connection_id, desk_category_id, chat_department_id, position)
		SELECT $1, $2, d, c, p::int FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS u(d, c, p)`,
		orgID, connID, pq.Array(desk), pq.Array(dept))
	return classify("replacing kb sync categories", err)
}

// DueKBSchedules locks, for the caller's transaction, the enabled KB
// schedules of ACTIVE connections whose next run is at or before now,
// skipping rows another transaction holds: two leaders (or a leader and a
// settings change) never claim the same schedule. The caller moves
// next_run_at past now (SetKBSchedule) before committing.
func DueKBSchedules(ctx context.Context, q Queryer, now time.Time, limit int) ([]KBSettings, error) {
	out := []KBSettings{}
	err := q.SelectContext(ctx, &out, `
		SELECT `+kbSettingsColumns+` FROM kb_sync_settings k
		WHERE k.enabled AND k.next_run_at <= $1 AND EXISTS (SELECT 1 FROM connections c
			WHERE c.id = k.connection_id AND c.org_id = k.org_id AND c.status = 'ACTIVE')
		ORDER BY k.next_run_at, k.connection_id
		LIMIT $2
		FOR UPDATE OF k SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("claiming due kb schedules: %w", err)
	}
	return out, nil
}

// SetKBSchedule sets a connection's next run and, when it has none yet,
// the moment of its first sync. next must be nil when the sync is disabled
// (a check constraint holds it).
func SetKBSchedule(ctx context.Context, q Queryer, orgID, connID int64, next, firstSync *time.Time) (KBSettings, error) {
	var out KBSettings
	err := q.GetContext(ctx, &out, `
		UPDATE kb_sync_settings SET next_run_at = $3, first_sync_at = COALESCE(first_sync_at, $4)
		WHERE org_id = $1 AND connection_id = $2
		RETURNING `+kbSettingsColumns, orgID, connID, next, firstSync)
	return out, classify("scheduling kb sync", err)
}

// KBEnabled reports whether a connection's KB sync is still enabled; a run
// checks it page by page so that disabling stops it.
func KBEnabled(ctx context.Context, q Queryer, orgID, connID int64) (bool, error) {
	var on bool
	err := q.GetContext(ctx, &on, `SELECT enabled FROM kb_sync_settings WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return false, classify("checking kb sync", err)
	}
	return on, nil
}

// ForgetKBLinks drops a connection's article and category links, as
// switching to another SalesIQ portal must: the copies in the old portal
// stay there untouched, and the new portal gets its own.
func ForgetKBLinks(ctx context.Context, q Queryer, orgID, connID int64) error {
	for _, table := range []string{"kb_article_links", "kb_category_links"} {
		if _, err := q.ExecContext(ctx, `DELETE FROM `+table+` WHERE org_id = $1 AND connection_id = $2`, orgID, connID); err != nil {
			return classify("forgetting kb links", err)
		}
	}
	return nil
}
