// Package leader elects one gateway replica as the leader of a cluster that
// shares one PostgreSQL database, so scheduled work (polling, retention, KB
// sync, overdue detection) runs once per cluster (SPEC G4). It implements
// gocron v2's Elector.
//
// The leader is whoever holds a session-level advisory lock, taken on a
// connection kept out of the pool for as long as leadership lasts. If the
// leader dies or loses its connection, PostgreSQL ends the session and drops
// the lock, and the next replica to ask becomes leader: no lease to expire,
// no clock to trust.
package leader

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// ErrNotLeader means another replica leads; gocron then skips the run.
var ErrNotLeader = errors.New("not the cluster leader")

// Elector is one replica's claim on leadership under one lock key.
type Elector struct {
	db  *sql.DB
	key int64
	log *slog.Logger

	mu   sync.Mutex
	conn *sql.Conn // non-nil while this replica leads
}

// New returns an elector for the lock key; every replica must use the same
// key, and different clusters sharing a server different keys.
func New(db *sql.DB, key int64, log *slog.Logger) *Elector {
	return &Elector{db: db, key: key, log: log}
}

// IsLeader returns nil when this replica leads, taking leadership if it is
// free. It checks that a held lock's session is still alive first, so a
// replica whose connection broke stops acting as leader at once.
func (e *Elector) IsLeader(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		if err := e.conn.PingContext(ctx); err == nil {
			return nil
		}
		e.log.Warn("lost the leader lock's connection; giving up leadership")
		_ = e.conn.Close()
		e.conn = nil
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("electing leader: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, e.key).Scan(&got); err != nil {
		_ = conn.Close()
		return fmt.Errorf("electing leader: %w", err)
	}
	if !got {
		_ = conn.Close() // holds nothing, safe back in the pool
		return ErrNotLeader
	}
	e.conn = conn
	e.log.Info("this replica is now the cluster leader")
	return nil
}

// Leading reports whether this replica held leadership at its last check.
func (e *Elector) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conn != nil
}

// Resign gives up leadership, if held, so another replica can take over
// without waiting for this one's session to end.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil
	}
	_, err := e.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, e.key)
	// Close even if the unlock failed: a broken session releases the lock
	// on its own, and a pooled connection must never keep it.
	if err != nil {
		// driver.ErrBadConn from Raw makes database/sql discard it.
		_ = e.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = e.conn.Close()
	e.conn = nil
	if err != nil {
		return fmt.Errorf("resigning leadership: %w", err)
	}
	return nil
}
