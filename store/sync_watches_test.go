package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestWatchesRoundTripAndStayInTheirOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, conn := orgWithConnection(t, db, "acme")
	other, _ := orgWithConnection(t, db, "globex")
	exp := time.Now().Add(6 * 24 * time.Hour).Truncate(time.Second)
	if err := store.PutWatch(ctx, db, store.Watch{OrgID: org.ID, ConnectionID: conn.ID, System: "zoho_crm", SubscriptionID: "ch1", TargetURL: "u", ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutWatch(ctx, db, store.Watch{OrgID: org.ID, ConnectionID: conn.ID, System: "zoho_crm", SubscriptionID: "ch2", TargetURL: "u"}); err != nil {
		t.Fatal(err)
	}
	// Another org cannot attach a watch to acme's connection.
	if err := store.PutWatch(ctx, db, store.Watch{OrgID: other.ID, ConnectionID: conn.ID, System: "zoho_desk", SubscriptionID: "x", TargetURL: "u"}); err != nil {
		t.Fatal(err)
	}
	ws, err := store.Watches(ctx, db, org.ID, conn.ID)
	if err != nil || len(ws) != 1 || ws["zoho_crm"].SubscriptionID != "ch2" || ws["zoho_crm"].ExpiresAt != nil {
		t.Fatalf("watches = %+v, %v", ws, err)
	}
	if ws, _ := store.Watches(ctx, db, other.ID, conn.ID); len(ws) != 0 {
		t.Fatalf("another org sees %v", ws)
	}
	if err := store.DeleteWatch(ctx, db, org.ID, conn.ID, "zoho_crm"); err != nil {
		t.Fatal(err)
	}
	if ws, err := store.Watches(ctx, db, org.ID, conn.ID); err != nil || len(ws) != 0 {
		t.Fatalf("after delete: %v, %v", ws, err)
	}
}
