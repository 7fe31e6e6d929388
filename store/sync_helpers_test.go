package store_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
)

func ptr[T any](v T) *T { return &v }

// newOrg creates an org for sync tests.
func newOrg(t *testing.T, db *sqlx.DB, slug string) store.Org {
	t.Helper()
	org, _, err := store.EnsureOrg(context.Background(), db, slug, slug)
	if err != nil {
		t.Fatalf("EnsureOrg(%s): %v", slug, err)
	}
	return org
}

// newConnection inserts an ACTIVE connection of the org to CRM org crmOrg.
func newConnection(t *testing.T, db *sqlx.DB, orgID int64, crmOrg string) store.Connection {
	t.Helper()
	c, err := store.InsertConnection(context.Background(), db, connectionFor(orgID, crmOrg, store.ConnectionActive))
	if err != nil {
		t.Fatalf("InsertConnection(org %d, crm org %s): %v", orgID, crmOrg, err)
	}
	return c
}

func connectionFor(orgID int64, crmOrg, status string) store.NewConnection {
	c := store.NewConnection{
		OrgID:        orgID,
		CRMSystem:    "zoho_crm",
		Status:       status,
		AuthMethod:   "OAUTH",
		CRMDC:        "eu",
		DeskDC:       "eu",
		DeskOrgID:    "desk-" + crmOrg,
		WebhookToken: "token-" + crmOrg,
	}
	if crmOrg != "" {
		c.CRMOrgID = ptr(crmOrg)
	}
	return c
}

// orgWithConnection is the usual fixture: an org and its active connection.
func orgWithConnection(t *testing.T, db *sqlx.DB, slug string) (store.Org, store.Connection) {
	t.Helper()
	org := newOrg(t, db, slug)
	return org, newConnection(t, db, org.ID, "crm-"+slug)
}
