package store

import (
	"context"
	"encoding/json"
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

// AuthenticatedToken is a token with its role's stored permission profile,
// nil when the org never edited that role's profile.
type AuthenticatedToken struct {
	APIToken
	Profile *PermissionProfile
}

// APITokenBySecretHash finds a token by the hash of its secret, whatever its
// state (the caller decides whether a revoked or expired token counts),
// with its role's permission profile in the same round trip: every request
// needs both, and reading the profile fresh means an admin's edit applies
// to the very next request.
func APITokenBySecretHash(ctx context.Context, q Queryer, hash []byte) (AuthenticatedToken, error) {
	var row struct {
		APIToken
		ProfileJSON []byte `db:"profile"`
	}
	err := q.GetContext(ctx, &row, `
		SELECT `+prefixColumns("t.", tokenColumns)+`, to_jsonb(p) AS profile
		FROM api_tokens t LEFT JOIN permission_profiles p ON p.org_id = t.org_id AND p.role = t.role
		WHERE t.secret_hash = $1`, hash)
	if err != nil {
		return AuthenticatedToken{}, classify("looking up api token", err)
	}
	out := AuthenticatedToken{APIToken: row.APIToken}
	if len(row.ProfileJSON) > 0 && string(row.ProfileJSON) != "null" {
		var p PermissionProfile
		if err := json.Unmarshal(row.ProfileJSON, &p); err != nil {
			return AuthenticatedToken{}, fmt.Errorf("looking up api token: decoding profile: %w", err)
		}
		out.Profile = &p
	}
	return out, nil
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
