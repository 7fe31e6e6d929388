package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// APIToken is a stored bearer credential; the secret itself is never stored.
type APIToken struct {
	ID         int64      `db:"id"`
	OrgID      int64      `db:"org_id"`
	UserID     int64      `db:"user_id"`
	Name       string     `db:"name"`
	Role       string     `db:"role"`
	Prefix     string     `db:"prefix"`
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

// NewAPIToken is what InsertAPIToken needs.
type NewAPIToken struct {
	OrgID      int64
	UserID     int64
	Name       string
	Role       string
	SecretHash []byte
	Prefix     string
	ExpiresAt  *time.Time
}

const tokenColumns = `id, org_id, user_id, name, role, prefix, created_at, expires_at, last_used_at, revoked_at`

// InsertAPIToken stores a new token.
func InsertAPIToken(ctx context.Context, q Queryer, t NewAPIToken) (APIToken, error) {
	var out APIToken
	err := q.GetContext(ctx, &out, `
		INSERT INTO api_tokens (org_id, user_id, name, role, secret_hash, prefix, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+tokenColumns,
		t.OrgID, t.UserID, t.Name, t.Role, t.SecretHash, t.Prefix, t.ExpiresAt)
	return out, classify("inserting api token", err)
}

// APITokenBySecretHash finds a token by the hash of its secret, whatever its
// state; the caller decides whether a revoked or expired token counts.
func APITokenBySecretHash(ctx context.Context, q Queryer, hash []byte) (APIToken, error) {
	var out APIToken
	err := q.GetContext(ctx, &out, `SELECT `+tokenColumns+` FROM api_tokens WHERE secret_hash = $1`, hash)
	return out, classify("looking up api token", err)
}

// APITokenByID returns one token of the org.
func APITokenByID(ctx context.Context, q Queryer, orgID, id int64) (APIToken, error) {
	var out APIToken
	err := q.GetContext(ctx, &out, `SELECT `+tokenColumns+` FROM api_tokens WHERE org_id = $1 AND id = $2`, orgID, id)
	return out, classify("loading api token", err)
}

// ListAPITokens returns up to limit tokens of the org, newest first, with ids
// below beforeID (0 = from the newest).
func ListAPITokens(ctx context.Context, q Queryer, orgID int64, includeRevoked bool, beforeID int64, limit int) ([]APIToken, error) {
	var out []APIToken
	err := q.SelectContext(ctx, &out, `
		SELECT `+tokenColumns+` FROM api_tokens
		WHERE org_id = $1 AND ($2 OR revoked_at IS NULL) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, orgID, includeRevoked, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken marks the token revoked; changed is false when it already was.
func RevokeAPIToken(ctx context.Context, q Queryer, orgID, id int64) (tok APIToken, changed bool, err error) {
	err = q.GetContext(ctx, &tok, `
		UPDATE api_tokens SET revoked_at = now()
		WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL
		RETURNING `+tokenColumns, orgID, id)
	if err == nil {
		return tok, true, nil
	}
	if err = classify("revoking api token", err); !errors.Is(err, ErrNotFound) {
		return tok, false, err
	}
	tok, err = APITokenByID(ctx, q, orgID, id)
	return tok, false, err
}

// TouchAPIToken records that the token was used. It writes at most once a
// minute per token so authentication does not turn every read into a write.
func TouchAPIToken(ctx context.Context, q Queryer, id int64) error {
	_, err := q.ExecContext(ctx, `
		UPDATE api_tokens SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	return classify("touching api token", err)
}
