package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// Who a signal reaches: owners by email, scope ALL, per-kind switches and
// channels, mentions whatever the scope, never the actor, never another org.
func TestSignalRecipients(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	org, _, _ := store.EnsureOrg(ctx, db, "acme", "Acme")
	other, _, _ := store.EnsureOrg(ctx, db, "globex", "Globex")
	user := func(orgID int64, name, email string) int64 {
		u, err := store.EnsureUser(ctx, db, orgID, name, &email)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	owner, phoneOnly, off, all, actor := user(org.ID, "owner", "Owner@acme.example"), user(org.ID, "phone", "phone@acme.example"),
		user(org.ID, "off", "off@acme.example"), user(org.ID, "all", "all@acme.example"), user(org.ID, "actor", "actor@acme.example")
	user(other.ID, "owner", "owner@acme.example") // same email, another org
	put := func(u int64, scope string, s ...store.SignalSetting) {
		if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error { return store.PutSignalSettings(ctx, tx, org.ID, u, scope, s) }); err != nil {
			t.Fatal(err)
		}
	}
	put(phoneOnly, "", store.SignalSetting{Kind: "NEW_REPLY", Enabled: true, Channels: pq.StringArray{"Phone"}})
	put(off, "", store.SignalSetting{Kind: "NEW_REPLY", Enabled: false})
	put(all, store.SignalScopeAll)
	put(actor, store.SignalScopeAll)
	owners := []string{"owner@acme.example", "phone@acme.example", "off@acme.example"}
	check := func(a store.SignalAudience, want ...int64) {
		t.Helper()
		a.OrgID = org.ID
		got, err := store.SignalRecipients(ctx, db, a)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v reached %v, want %v", a, got, want)
		}
	}
	check(store.SignalAudience{Kind: "NEW_REPLY", Channel: "Email", Owners: owners, Except: actor}, owner, all)
	check(store.SignalAudience{Kind: "NEW_REPLY", Channel: "Phone", Owners: owners, Except: actor}, owner, phoneOnly, all)
	check(store.SignalAudience{Kind: "NEW_TICKET", Channel: "Email", Owners: owners}, owner, phoneOnly, off, all, actor)
	check(store.SignalAudience{Kind: "MENTION", Channel: "Email", Owners: owners, Named: []string{"phone@acme.example"}}, phoneOnly)

	// One signal per user and cause.
	for range 2 {
		if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
			_, err := store.InsertSignals(ctx, tx, store.NewSignal{OrgID: org.ID, Users: []int64{owner, all}, Kind: "NEW_REPLY",
				TicketRef: "1", Title: "New reply", Cause: "thread:9"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := store.UnreadSignals(ctx, db, org.ID, owner); n != 1 {
		t.Fatalf("owner has %d unread signals for one cause delivered twice", n)
	}
	list, err := store.ListSignals(ctx, db, org.ID, owner, 0, 10, true)
	if err != nil || len(list) != 1 || time.Since(list[0].CreatedAt) > time.Minute {
		t.Fatalf("listing: %+v %v", list, err)
	}
}
