package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestConnectionsAreScopedToTheirOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme")
	other := newOrg(t, db, "other")

	if got, err := store.ConnectionByID(ctx, db, acme.ID, conn.ID); err != nil || got.ID != conn.ID {
		t.Fatalf("ConnectionByID from its org = %+v, %v", got, err)
	}
	if _, err := store.ConnectionByID(ctx, db, other.ID, conn.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ConnectionByID from another org = %v, want ErrNotFound", err)
	}
	if list, err := store.ListConnections(ctx, db, other.ID, true); err != nil || len(list) != 0 {
		t.Fatalf("ListConnections of another org = %v, %v; want none", list, err)
	}
	if _, err := store.SetConnectionStatus(ctx, db, other.ID, conn.ID, []string{store.ConnectionActive}, store.ConnectionPaused); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetConnectionStatus from another org = %v, want ErrNotFound", err)
	}
	if _, err := store.UpdateConnection(ctx, db, other.ID, conn.ID, store.ConnectionUpdate{Language: ptr("fr")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateConnection from another org = %v, want ErrNotFound", err)
	}
	// Webhooks know only the id; the org comes from the row.
	if got, err := store.ConnectionForWebhook(ctx, db, conn.ID); err != nil || got.OrgID != acme.ID || got.WebhookToken != conn.WebhookToken {
		t.Fatalf("ConnectionForWebhook = %+v, %v", got, err)
	}
	if _, err := store.ConnectionForWebhook(ctx, db, conn.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ConnectionForWebhook(unknown) = %v, want ErrNotFound", err)
	}
}

func TestSecretsAreScopedAndOnlyMoveBytes(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")

	if _, err := store.GetSecret(ctx, db, acme.ID, conn.ID, store.SecretCRMRefreshToken); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSecret before any = %v, want ErrNotFound", err)
	}
	if err := store.PutSecret(ctx, db, acme.ID, conn.ID, store.SecretCRMRefreshToken, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutSecret(ctx, db, acme.ID, conn.ID, store.SecretCRMRefreshToken, []byte{4, 5}); err != nil {
		t.Fatalf("replacing a secret: %v", err)
	}
	if err := store.PutSecret(ctx, db, acme.ID, conn.ID, store.SecretDeskRefreshToken, []byte{6}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetSecret(ctx, db, acme.ID, conn.ID, store.SecretCRMRefreshToken); err != nil || !bytes.Equal(got, []byte{4, 5}) {
		t.Fatalf("GetSecret = %v, %v; want the replacement", got, err)
	}
	if names, err := store.SecretNames(ctx, db, acme.ID, conn.ID); err != nil || strings.Join(names, ",") != "crm_refresh_token,desk_refresh_token" {
		t.Fatalf("SecretNames = %v, %v", names, err)
	}

	// Another org can neither read, overwrite, list nor delete them, even
	// with the right connection id.
	if _, err := store.GetSecret(ctx, db, other.ID, conn.ID, store.SecretCRMRefreshToken); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSecret from another org = %v, want ErrNotFound", err)
	}
	if err := store.PutSecret(ctx, db, other.ID, conn.ID, store.SecretCRMRefreshToken, []byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutSecret over another org's secret = %v, want ErrNotFound", err)
	}
	if err := store.PutSecret(ctx, db, other.ID, conn.ID, store.SecretServiceKey, []byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutSecret on another org's connection = %v, want ErrNotFound", err)
	}
	if names, err := store.SecretNames(ctx, db, other.ID, conn.ID); err != nil || len(names) != 0 {
		t.Fatalf("SecretNames from another org = %v, %v", names, err)
	}
	if err := store.DeleteSecret(ctx, db, other.ID, conn.ID, store.SecretCRMRefreshToken); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteSecret from another org = %v, want ErrNotFound", err)
	}
	if n, err := store.DeleteSecrets(ctx, db, other.ID, conn.ID); err != nil || n != 0 {
		t.Fatalf("DeleteSecrets from another org = %d, %v", n, err)
	}
	if got, err := store.GetSecret(ctx, db, acme.ID, conn.ID, store.SecretCRMRefreshToken); err != nil || !bytes.Equal(got, []byte{4, 5}) {
		t.Fatalf("secret after another org's attempts = %v, %v", got, err)
	}
	if err := store.PutSecret(ctx, db, other.ID, otherConn.ID, store.SecretServiceKey, []byte{7}); err != nil {
		t.Fatal(err)
	}

	if err := store.DeleteSecret(ctx, db, acme.ID, conn.ID, store.SecretDeskRefreshToken); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteSecret(ctx, db, acme.ID, conn.ID, store.SecretDeskRefreshToken); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteSecret = %v, want ErrNotFound", err)
	}
	if n, err := store.DeleteSecrets(ctx, db, acme.ID, conn.ID); err != nil || n != 1 {
		t.Fatalf("DeleteSecrets = %d, %v; want 1", n, err)
	}
	if got, err := store.GetSecret(ctx, db, other.ID, otherConn.ID, store.SecretServiceKey); err != nil || !bytes.Equal(got, []byte{7}) {
		t.Fatalf("other org's secret after acme's deletion = %v, %v", got, err)
	}
}

func TestOneLiveConnectionPerCRMOrgAndPerOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme") // CRM org "crm-acme"
	other := newOrg(t, db, "other")

	// A CRM org joins one portal: another org cannot take it, whether the
	// existing connection is ACTIVE, PAUSED or PENDING_APPROVAL.
	for _, status := range []string{store.ConnectionActive, store.ConnectionPaused, store.ConnectionPendingApproval} {
		if _, err := store.SetConnectionStatus(ctx, db, acme.ID, conn.ID, []string{store.ConnectionActive, store.ConnectionPaused, store.ConnectionPendingApproval}, status); err != nil {
			t.Fatal(err)
		}
		_, err := store.InsertConnection(ctx, db, connectionFor(other.ID, "crm-acme", store.ConnectionActive))
		if !errors.Is(err, store.ErrCRMOrgTaken) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second live connection for a CRM org held %s = %v, want ErrCRMOrgTaken", status, err)
		}
	}
	// The org already has its one live connection.
	if _, err := store.InsertConnection(ctx, db, connectionFor(acme.ID, "crm-elsewhere", store.ConnectionActive)); !errors.Is(err, store.ErrOrgHasConnection) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second live connection in one org = %v, want ErrOrgHasConnection", err)
	}
	// Connections still waiting for their CRM org do not collide on it.
	pending, err := store.InsertConnection(ctx, db, connectionFor(other.ID, "", store.ConnectionPendingApproval))
	if err != nil {
		t.Fatalf("pending connection without a CRM org: %v", err)
	}

	// Once removed (or deactivated), the CRM org is free again, and the old
	// connection cannot come back while the new one holds it.
	if _, err := store.SetConnectionStatus(ctx, db, acme.ID, conn.ID, []string{store.ConnectionPendingApproval}, store.ConnectionRemoved); err != nil {
		t.Fatal(err)
	}
	third := newOrg(t, db, "third")
	if _, err := store.InsertConnection(ctx, db, connectionFor(third.ID, "crm-acme", store.ConnectionActive)); err != nil {
		t.Fatalf("connection for a CRM org freed by removal: %v", err)
	}
	// Picking a held CRM org later (A1: the org is chosen after OAuth) is
	// refused the same way.
	if _, err := store.UpdateConnection(ctx, db, other.ID, pending.ID, store.ConnectionUpdate{CRMOrgID: ptr("crm-acme")}); !errors.Is(err, store.ErrCRMOrgTaken) {
		t.Fatalf("picking a held CRM org = %v, want ErrCRMOrgTaken", err)
	}
	again, err := store.InsertConnection(ctx, db, connectionFor(acme.ID, "crm-acme-2", store.ConnectionActive))
	if err != nil {
		t.Fatalf("new connection in an org whose connection was removed: %v", err)
	}
	if _, err := store.SetConnectionStatus(ctx, db, acme.ID, again.ID, []string{store.ConnectionActive}, store.ConnectionInactive); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetConnectionStatus(ctx, db, acme.ID, conn.ID, []string{store.ConnectionRemoved}, store.ConnectionActive); !errors.Is(err, store.ErrCRMOrgTaken) {
		t.Fatalf("reviving a connection whose CRM org was taken = %v, want ErrCRMOrgTaken", err)
	}

	list, err := store.ListConnections(ctx, db, acme.ID, false)
	if err != nil || len(list) != 1 || list[0].ID != again.ID {
		t.Fatalf("ListConnections without removed = %+v, %v; want only the new one", list, err)
	}
	if list, err := store.ListConnections(ctx, db, acme.ID, true); err != nil || len(list) != 2 {
		t.Fatalf("ListConnections with removed = %d, %v; want 2", len(list), err)
	}
}

func TestSetConnectionStatusIsConditional(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org := newOrg(t, db, "acme")
	conn, err := store.InsertConnection(ctx, db, connectionFor(org.ID, "crm-1", store.ConnectionPendingApproval))
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.SetConnectionStatus(ctx, db, org.ID, conn.ID, []string{store.ConnectionActive}, store.ConnectionPaused)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "PENDING_APPROVAL") {
		t.Fatalf("pausing a pending connection = %v, want ErrConflict naming PENDING_APPROVAL", err)
	}
	if _, err := store.SetConnectionStatus(ctx, db, org.ID, conn.ID, nil, store.ConnectionActive); err == nil {
		t.Fatal("SetConnectionStatus without from statuses succeeded")
	}

	// Approval races (two admins, or an admin and a timeout): one wins.
	const racers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.SetConnectionStatus(ctx, db, org.ID, conn.ID, []string{store.ConnectionPendingApproval}, store.ConnectionActive)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict):
				lost++
			default:
				t.Errorf("racing approval: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != racers-1 {
		t.Fatalf("racing approvals: %d won, %d lost; want exactly one winner", won, lost)
	}
	got, err := store.ConnectionByID(ctx, db, org.ID, conn.ID)
	if err != nil || got.Status != store.ConnectionActive || !got.UpdatedAt.After(conn.UpdatedAt) {
		t.Fatalf("after approval: %+v, %v", got, err)
	}
}

func TestUpdateConnectionChangesOnlyWhatItIsGiven(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org := newOrg(t, db, "acme")
	nc := connectionFor(org.ID, "", store.ConnectionPendingApproval)
	nc.AuthMethod = "OTHER_USER"
	nc.ApproverEmail = ptr("admin@crm.example")
	nc.Language = ptr("en")
	conn, err := store.InsertConnection(ctx, db, nc)
	if err != nil {
		t.Fatal(err)
	}

	// A2: the request is re-sent twice.
	for range 2 {
		if conn, err = store.UpdateConnection(ctx, db, org.ID, conn.ID, store.ConnectionUpdate{RequestSent: true}); err != nil {
			t.Fatal(err)
		}
	}
	if conn.RequestSentCount != 2 || conn.Language == nil || *conn.Language != "en" {
		t.Fatalf("after re-sends: count %d, language %v", conn.RequestSentCount, conn.Language)
	}
	// Approval lands only while pending.
	up := store.ConnectionUpdate{
		IfStatus:     []string{store.ConnectionPendingApproval},
		CRMOrgID:     ptr("crm-9"),
		CRMOrgName:   ptr("Nine"),
		AuthorizedBy: ptr(int64(42)),
	}
	conn, err = store.UpdateConnection(ctx, db, org.ID, conn.ID, up)
	if err != nil || *conn.CRMOrgID != "crm-9" || *conn.CRMOrgName != "Nine" || *conn.AuthorizedBy != 42 || *conn.ApproverEmail != "admin@crm.example" {
		t.Fatalf("approval update = %+v, %v", conn, err)
	}
	if _, err := store.SetConnectionStatus(ctx, db, org.ID, conn.ID, []string{store.ConnectionPendingApproval}, store.ConnectionRemoved); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateConnection(ctx, db, org.ID, conn.ID, up); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("approval of a removed connection = %v, want ErrConflict", err)
	}
	// A portal switch (A3) changes the desk side only.
	conn, err = store.UpdateConnection(ctx, db, org.ID, conn.ID, store.ConnectionUpdate{DeskOrgID: ptr("desk-2"), DeskPortal: ptr("help2"), TimeZone: ptr("Europe/Paris")})
	if err != nil || conn.DeskOrgID != "desk-2" || *conn.DeskPortal != "help2" || *conn.TimeZone != "Europe/Paris" || *conn.CRMOrgID != "crm-9" {
		t.Fatalf("portal switch = %+v, %v", conn, err)
	}
}

func TestConnectionsInStatusSpanOrgs(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	a, ca := orgWithConnection(t, db, "a")
	_, cb := orgWithConnection(t, db, "b")
	c := newOrg(t, db, "c")
	if _, err := store.SetConnectionStatus(ctx, db, a.ID, ca.ID, []string{store.ConnectionActive}, store.ConnectionPaused); err != nil {
		t.Fatal(err)
	}
	if _, err := store.InsertConnection(ctx, db, connectionFor(c.ID, "crm-c", store.ConnectionRemoved)); err != nil {
		t.Fatal(err)
	}
	active, err := store.ActiveConnections(ctx, db)
	if err != nil || len(active) != 1 || active[0].ID != cb.ID {
		t.Fatalf("ActiveConnections = %+v, %v; want only b's", active, err)
	}
	polled, err := store.ConnectionsInStatus(ctx, db, store.ConnectionActive, store.ConnectionPaused)
	if err != nil || len(polled) != 2 || polled[0].ID != ca.ID || polled[1].ID != cb.ID {
		t.Fatalf("ConnectionsInStatus(ACTIVE, PAUSED) = %+v, %v", polled, err)
	}
}
