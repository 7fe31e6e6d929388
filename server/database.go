package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/migrations"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/pglocal"
)

// embeddedDatabase is the database name inside the embedded cluster.
const embeddedDatabase = "deskbridge"

// database is an open pool plus what it takes to release it: for the
// embedded default, the cluster this process started or attached to.
type database struct {
	DB      *sqlx.DB
	DSN     string
	cluster *pglocal.Cluster
}

// openDatabase connects to DATABASE_URL, or else to the embedded cluster
// under the data dir (starting it, or attaching to the one `serve` runs).
// serve asks to own the cluster; short-lived commands attach when they can.
func openDatabase(ctx context.Context, cfg Config, log *slog.Logger, serve bool) (*database, error) {
	pool := store.PoolOptions{MaxOpen: cfg.DBMaxConns, MaxIdle: cfg.DBMaxConns, MaxLifetime: 30 * time.Minute}
	if !cfg.Embedded() {
		db, err := store.Open(ctx, cfg.DatabaseURL, pool)
		if err != nil {
			return nil, err
		}
		return &database{DB: db, DSN: cfg.DatabaseURL}, nil
	}
	opts := pglocal.Options{
		DataDir:   filepath.Join(cfg.DataDir, "postgres"),
		BinDir:    cfg.PGBin,
		OSUser:    cfg.PGUser,
		OwnerWait: time.Minute, // a CLI command that owns the cluster right now finishes soon
		Logger:    log,
	}
	open := pglocal.Open
	if serve {
		// serve owns the cluster: a long-lived server must not depend on one
		// that a short command stops when it exits.
		open = pglocal.Start
	}
	cluster, err := open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded PostgreSQL: %w", err)
	}
	if err := cluster.CreateDatabase(ctx, embeddedDatabase); err != nil {
		cluster.Close()
		return nil, err
	}
	dsn := cluster.URL(embeddedDatabase)
	db, err := store.Open(ctx, dsn, pool)
	if err != nil {
		cluster.Close()
		return nil, err
	}
	return &database{DB: db, DSN: dsn, cluster: cluster}, nil
}

// migrate applies pending migrations; safe to run from several processes.
func (d *database) migrate(ctx context.Context, log *slog.Logger) error {
	applied, err := migrations.Apply(ctx, d.DB.DB, log)
	if err != nil {
		return fmt.Errorf("migrating database: %w", err)
	}
	if len(applied) == 0 {
		log.Debug("database schema is up to date")
	}
	return nil
}

// Close closes the pool, then stops or detaches from the embedded cluster.
func (d *database) Close() {
	d.DB.Close()
	if d.cluster != nil {
		d.cluster.Close()
	}
}
