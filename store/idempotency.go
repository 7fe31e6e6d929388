package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Idempotency key states (migration 0008).
const (
	KeyPending = "pending" // the action is under way, or its process died
	KeyDone    = "done"    // the action happened; Result is its answer
	KeyUnknown = "unknown" // the vendor may or may not have acted
)

// ErrKeyReused is returned when an idempotency key comes back with another
// operation or other arguments than it was first used with.
var ErrKeyReused = errors.New("idempotency key already used for another request")

// IdempotencyKey is the stored state of one client key.
type IdempotencyKey struct {
	State     string    `db:"state"`
	Result    []byte    `db:"result"` // JSON; nil until done
	CreatedAt time.Time `db:"created_at"`
}

// ClaimIdempotencyKey starts an action under a client's key. fresh is true
// when the key was new: the caller goes on and ends with FinishIdempotencyKey
// or ReleaseIdempotencyKey. Otherwise the stored state says what became of
// the first attempt. A key seen before with another operation or request
// hash is ErrKeyReused.
func ClaimIdempotencyKey(ctx context.Context, db *sqlx.DB, orgID int64, key, operation string, requestHash []byte) (IdempotencyKey, bool, error) {
	const action = "claiming idempotency key"
	var k IdempotencyKey
	err := db.GetContext(ctx, &k, `
		INSERT INTO idempotency_keys (org_id, key, operation, request_hash, state)
		VALUES ($1, $2, $3, $4, 'pending')
		ON CONFLICT (org_id, key) DO NOTHING
		RETURNING state, result, created_at`, orgID, key, operation, requestHash)
	if err == nil {
		return k, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return k, false, classify(action, err)
	}
	var stored struct {
		IdempotencyKey
		Operation   string `db:"operation"`
		RequestHash []byte `db:"request_hash"`
	}
	if err := db.GetContext(ctx, &stored, `
		SELECT state, result, created_at, operation, request_hash FROM idempotency_keys
		WHERE org_id = $1 AND key = $2`, orgID, key); err != nil {
		return k, false, classify(action, err)
	}
	if stored.Operation != operation || !bytes.Equal(stored.RequestHash, requestHash) {
		return k, false, fmt.Errorf("%s %q: %w", action, key, ErrKeyReused)
	}
	return stored.IdempotencyKey, false, nil
}

// FinishIdempotencyKey records the answer of a claimed key's action inside
// the transaction that records the action itself, so the key is done exactly
// when the rest is.
func FinishIdempotencyKey(ctx context.Context, tx *sqlx.Tx, orgID int64, key string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encoding the answer of idempotency key %q: %w", key, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE idempotency_keys SET state = 'done', result = $3, updated_at = now()
		WHERE org_id = $1 AND key = $2`, orgID, key, raw)
	return classify("finishing idempotency key", err)
}

// MarkIdempotencyKeyUnknown records that a claimed key's action may or may
// not have happened at the vendor; the key then refuses to run it again.
func MarkIdempotencyKeyUnknown(ctx context.Context, db *sqlx.DB, orgID int64, key string) error {
	_, err := db.ExecContext(ctx, `UPDATE idempotency_keys SET state = 'unknown', updated_at = now()
		WHERE org_id = $1 AND key = $2 AND state = 'pending'`, orgID, key)
	return classify("marking idempotency key unknown", err)
}

// ReleaseIdempotencyKey forgets a claimed key whose action certainly did
// not happen (the vendor refused it), so the client may send it again.
func ReleaseIdempotencyKey(ctx context.Context, db *sqlx.DB, orgID int64, key string) error {
	_, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2 AND state = 'pending'`, orgID, key)
	return classify("releasing idempotency key", err)
}

// PruneIdempotencyKeys deletes keys older than before; a client retries
// within minutes, not weeks.
func PruneIdempotencyKeys(ctx context.Context, db *sqlx.DB, before time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, before)
	if err != nil {
		return 0, classify("pruning idempotency keys", err)
	}
	return res.RowsAffected()
}
