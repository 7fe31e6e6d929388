package store

import (
	"context"
	"fmt"
)

// Secret names of connection_secrets.
const (
	SecretCRMRefreshToken  = "crm_refresh_token"
	SecretDeskRefreshToken = "desk_refresh_token"
	SecretServiceKey       = "service_key"
)

// PutSecret stores (or replaces) a connection's sealed secret. Sealing, with
// associated data binding the ciphertext to this row, is the caller's job
// (store/crypt); the store only moves bytes, so it never holds a key.
//
// The org guard is in the ON CONFLICT branch as well as in the foreign key:
// an update does not re-check the foreign key, and without the guard an org
// naming another org's connection id could overwrite its secret.
func PutSecret(ctx context.Context, q Queryer, orgID, connID int64, name string, sealed []byte) error {
	var n int
	err := q.GetContext(ctx, &n, `
		INSERT INTO connection_secrets (org_id, connection_id, name, sealed)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (connection_id, name) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()
		WHERE connection_secrets.org_id = EXCLUDED.org_id
		RETURNING 1`, orgID, connID, name, sealed)
	return classify("storing connection secret "+name, err)
}

// GetSecret returns a connection's sealed secret, ErrNotFound when it has
// none by that name.
func GetSecret(ctx context.Context, q Queryer, orgID, connID int64, name string) ([]byte, error) {
	var sealed []byte
	err := q.GetContext(ctx, &sealed, `
		SELECT sealed FROM connection_secrets WHERE org_id = $1 AND connection_id = $2 AND name = $3`,
		orgID, connID, name)
	if err != nil {
		return nil, classify("loading connection secret "+name, err)
	}
	return sealed, nil
}

// SecretNames lists which secrets a connection holds, so the API and logs
// can say "hasSecret" without loading a ciphertext.
func SecretNames(ctx context.Context, q Queryer, orgID, connID int64) ([]string, error) {
	out := []string{}
	err := q.SelectContext(ctx, &out, `
		SELECT name FROM connection_secrets WHERE org_id = $1 AND connection_id = $2 ORDER BY name`,
		orgID, connID)
	if err != nil {
		return nil, fmt.Errorf("listing connection secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret removes one secret, for example a service key replaced by
// OAuth. ErrNotFound when there was none.
func DeleteSecret(ctx context.Context, q Queryer, orgID, connID int64, name string) error {
	var n int
	err := q.GetContext(ctx, &n, `
		DELETE FROM connection_secrets WHERE org_id = $1 AND connection_id = $2 AND name = $3
		RETURNING 1`, orgID, connID, name)
	return classify("deleting connection secret "+name, err)
}

// DeleteSecrets removes every secret of the connection, as removing a
// connection must (A6: kept for history, but no longer able to act). It
// returns how many were deleted; none is not an error.
func DeleteSecrets(ctx context.Context, q Queryer, orgID, connID int64) (int64, error) {
	res, err := q.ExecContext(ctx, `
		DELETE FROM connection_secrets WHERE org_id = $1 AND connection_id = $2`, orgID, connID)
	if err != nil {
		return 0, classify("deleting connection secrets", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("deleting connection secrets: %w", err)
	}
	return n, nil
}
