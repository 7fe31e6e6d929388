// Package store is deskbridge's only door to PostgreSQL: hand-written SQL
// beside the method that runs it, over sqlx and lib/pq. Methods take a
// context and a Queryer (the pool or a transaction), return sentinel errors
// (ErrNotFound, ErrConflict) wrapped with the action that failed, and never
// return a nil error with a missing value.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ErrNotFound means the row does not exist, or not in the caller's org.
var ErrNotFound = errors.New("not found")

// ErrConflict means the write clashes with existing data (a unique key).
var ErrConflict = errors.New("conflict")

// Queryer is what store methods run SQL on: *sqlx.DB or *sqlx.Tx.
type Queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// PoolOptions sizes the connection pool.
type PoolOptions struct {
	MaxOpen     int
	MaxIdle     int
	MaxLifetime time.Duration
}

// Open connects to PostgreSQL and checks the connection. The application
// name makes deskbridge's sessions recognisable in pg_stat_activity.
func Open(ctx context.Context, url string, o PoolOptions) (*sqlx.DB, error) {
	connector, err := pq.NewConnector(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	if o.MaxOpen > 0 {
		db.SetMaxOpenConns(o.MaxOpen)
	}
	if o.MaxIdle > 0 {
		db.SetMaxIdleConns(o.MaxIdle)
	}
	if o.MaxLifetime > 0 {
		db.SetConnMaxLifetime(o.MaxLifetime)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	return db, nil
}

// InTx runs fn in a transaction and commits when fn returns nil. Any error
// or panic rolls back, so nothing is ever half written.
func InTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// classify maps driver errors onto the sentinels once, so callers test with
// errors.Is instead of inspecting SQLSTATEs.
func classify(action string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", action, ErrNotFound)
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w (%s)", action, ErrConflict, pqErr.Constraint)
		case "23503": // foreign_key_violation: the referenced row is not in this org
			return fmt.Errorf("%s: %w", action, ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}

// classifyUnique is classify, with the unique indexes in sentinels answered
// by their own sentinel: a violation of one means something to a user.
func classifyUnique(action string, err error, sentinels map[string]error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		if sentinel, ok := sentinels[pqErr.Constraint]; ok {
			return fmt.Errorf("%s: %w", action, sentinel)
		}
	}
	return classify(action, err)
}
