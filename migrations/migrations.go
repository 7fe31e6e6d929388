// Package migrations holds deskbridge's forward-only SQL migrations and the
// runner that applies them. Files are embedded, named NNNN_name.sql, applied in
// order, each in its own transaction, and recorded with a checksum so an edited
// migration is refused instead of silently diverging between databases.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
)

//go:embed *.sql
var files embed.FS

// advisoryLockKey serialises migration runs across processes sharing one
// database, so two gateways starting together never race. The value is an
// arbitrary constant private to deskbridge ("dbmigr" in ASCII).
const advisoryLockKey int64 = 0x64626d69_6772

// ErrChecksumMismatch means an applied migration file was edited afterwards.
var ErrChecksumMismatch = errors.New("migration changed after it was applied")

var namePattern = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// Migration is one embedded SQL file.
type Migration struct {
	Version  string // "0001"
	Name     string // file name
	SQL      string
	Checksum string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := namePattern.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q does not match NNNN_name.sql", e.Name())
		}
		body, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: m[1], Name: e.Name(), SQL: string(body), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations share version %s", out[i].Version)
		}
	}
	return out, nil
}

const createLedger = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    text PRIMARY KEY,
	name       text NOT NULL,
	checksum   text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Apply brings the database up to date and returns the names of the
// migrations it applied (empty when there was nothing to do). It holds a
// session advisory lock for the whole run, so concurrent callers wait and then
// find nothing left to apply.
func Apply(ctx context.Context, db *sql.DB, log *slog.Logger) ([]string, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening migration connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, advisoryLockKey); err != nil {
		return nil, fmt.Errorf("taking migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must happen even when ctx is cancelled,
		// or the pooled connection would keep the lock.
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, advisoryLockKey)
	}()
	if _, err := conn.ExecContext(ctx, createLedger); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied, err := appliedChecksums(ctx, conn)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, m := range all {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, fmt.Errorf("checking %s: %w", m.Name, ErrChecksumMismatch)
			}
			continue
		}
		if err := applyOne(ctx, conn, m); err != nil {
			return done, err
		}
		log.Info("migration applied", "migration", m.Name)
		done = append(done, m.Name)
	}
	return done, nil
}

func applyOne(ctx context.Context, conn *sql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning %s: %w", m.Name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("applying %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
		m.Version, m.Name, m.Checksum); err != nil {
		return fmt.Errorf("recording %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing %s: %w", m.Name, err)
	}
	return nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func appliedChecksums(ctx context.Context, q queryer) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, checksum FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var v, sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("scanning schema_migrations: %w", err)
		}
		out[v] = sum
	}
	return out, rows.Err()
}

// Pending returns the names of embedded migrations not yet applied. /readyz
// uses it: a gateway whose database lags its binary is not ready.
func Pending(ctx context.Context, db *sql.DB) ([]string, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("checking schema_migrations: %w", err)
	}
	applied := map[string]string{}
	if exists {
		if applied, err = appliedChecksums(ctx, db); err != nil {
			return nil, err
		}
	}
	var pending []string
	for _, m := range all {
		if _, ok := applied[m.Version]; !ok {
			pending = append(pending, m.Name)
		}
	}
	return pending, nil
}
