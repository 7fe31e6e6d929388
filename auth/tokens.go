package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/store"
)

// secretPrefix marks deskbridge secrets so they are recognisable in logs and
// by secret scanners.
const secretPrefix = "dbk_"

// prefixLen is how much of a secret is kept in clear, to tell tokens apart.
const prefixLen = len(secretPrefix) + 8

// maxSecretLen bounds what is hashed from an untrusted header.
const maxSecretLen = 256

// NewSecret returns a fresh bearer secret, its hash for storage and its
// displayable prefix. 32 random bytes make guessing hopeless, so a fast hash
// (SHA-256) is the right choice: no password-style stretching needed.
func NewSecret() (secret string, hash []byte, prefix string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, "", fmt.Errorf("generating token secret: %w", err)
	}
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret), secret[:prefixLen], nil
}

// HashSecret is the stored form of a secret.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// BearerToken extracts the credential from an Authorization header value
// ("Bearer <secret>"); a bare secret is accepted too, for clients that put
// only the token in a WebSocket connection_init payload.
func BearerToken(header string) string {
	header = strings.TrimSpace(header)
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:])
	}
	return header
}

// Authenticator resolves bearer secrets to viewers.
type Authenticator struct {
	DB  store.Queryer
	Now func() time.Time
}

// Authenticate returns the viewer of a secret. Unknown, revoked and expired
// secrets are all ErrUnauthenticated; the message says which, never echoing
// the secret.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Viewer, error) {
	if secret == "" {
		return Viewer{}, fmt.Errorf("no bearer token: %w", ErrUnauthenticated)
	}
	if len(secret) > maxSecretLen || !strings.HasPrefix(secret, secretPrefix) {
		return Viewer{}, fmt.Errorf("malformed bearer token: %w", ErrUnauthenticated)
	}
	tok, err := store.APITokenBySecretHash(ctx, a.DB, HashSecret(secret))
	if errors.Is(err, store.ErrNotFound) {
		return Viewer{}, fmt.Errorf("unknown bearer token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Viewer{}, fmt.Errorf("authenticating: %w", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	switch {
	case tok.RevokedAt != nil:
		return Viewer{}, fmt.Errorf("bearer token revoked: %w", ErrUnauthenticated)
	case tok.ExpiresAt != nil && !tok.ExpiresAt.After(now()):
		return Viewer{}, fmt.Errorf("bearer token expired: %w", ErrUnauthenticated)
	}
	role, err := ParseRole(tok.Role)
	if err != nil {
		return Viewer{}, fmt.Errorf("authenticating token %d: %w", tok.ID, err)
	}
	// The row just read says whether last_used_at is stale; only then pay for
	// the write (store.TouchAPIToken re-checks, so racing requests write once).
	if tok.LastUsedAt == nil || now().Sub(*tok.LastUsedAt) > time.Minute {
		if err := store.TouchAPIToken(ctx, a.DB, tok.ID); err != nil {
			return Viewer{}, fmt.Errorf("authenticating: %w", err)
		}
	}
	v := Viewer{OrgID: tok.OrgID, UserID: tok.UserID, TokenID: tok.ID, Role: role}
	if tok.Profile != nil {
		p := ProfileFromStore(*tok.Profile)
		v.Profile = &p
	}
	return v, nil
}
