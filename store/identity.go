package store

import (
	"context"
	"time"
)

// Org is a tenant.
type Org struct {
	ID        int64     `db:"id"`
	Slug      string    `db:"slug"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

// User is a person or service in an org that holds tokens.
type User struct {
	ID        int64     `db:"id"`
	OrgID     int64     `db:"org_id"`
	Name      string    `db:"name"`
	Email     *string   `db:"email"`
	CreatedAt time.Time `db:"created_at"`
}

// EnsureOrg returns the org with this slug, creating it with name when it is
// new; created reports which happened.
func EnsureOrg(ctx context.Context, q Queryer, slug, name string) (org Org, created bool, err error) {
	err = q.GetContext(ctx, &org, `
		INSERT INTO orgs (slug, name) VALUES ($1, $2)
		ON CONFLICT (slug) DO NOTHING
		RETURNING id, slug, name, created_at`, slug, name)
	if err == nil {
		return org, true, nil
	}
	err = q.GetContext(ctx, &org, `SELECT id, slug, name, created_at FROM orgs WHERE slug = $1`, slug)
	return org, false, classify("ensuring org "+slug, err)
}

// OrgByID returns one org.
func OrgByID(ctx context.Context, q Queryer, id int64) (Org, error) {
	var org Org
	err := q.GetContext(ctx, &org, `SELECT id, slug, name, created_at FROM orgs WHERE id = $1`, id)
	return org, classify("loading org", err)
}

// EnsureUser returns the org's user with this name, creating it when new.
// An email given for an existing user without one is recorded.
func EnsureUser(ctx context.Context, q Queryer, orgID int64, name string, email *string) (User, error) {
	var u User
	err := q.GetContext(ctx, &u, `
		INSERT INTO users (org_id, name, email) VALUES ($1, $2, $3)
		ON CONFLICT (org_id, name) DO UPDATE SET email = COALESCE(users.email, EXCLUDED.email)
		RETURNING id, org_id, name, email, created_at`, orgID, name, email)
	return u, classify("ensuring user", err)
}

// UserByID returns one user of the org.
func UserByID(ctx context.Context, q Queryer, orgID, id int64) (User, error) {
	var u User
	err := q.GetContext(ctx, &u, `
		SELECT id, org_id, name, email, created_at FROM users WHERE org_id = $1 AND id = $2`, orgID, id)
	return u, classify("loading user", err)
}
