package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func newOrgUser(t *testing.T, db *sqlx.DB, slug string) (store.Org, store.User) {
	t.Helper()
	ctx := context.Background()
	org, created, err := store.EnsureOrg(ctx, db, slug, slug)
	if err != nil || !created {
		t.Fatalf("EnsureOrg(%s) = %v, created %v", slug, err, created)
	}
	u, err := store.EnsureUser(ctx, db, org.ID, "alice", nil)
	if err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	return org, u
}

func TestEnsureOrgIsIdempotent(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	a, created, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil || !created {
		t.Fatalf("first EnsureOrg: %v created=%v", err, created)
	}
	b, created, err := store.EnsureOrg(ctx, db, "acme", "Other name")
	if err != nil || created {
		t.Fatalf("second EnsureOrg: %v created=%v", err, created)
	}
	if a.ID != b.ID || b.Name != "Acme" {
		t.Fatalf("second EnsureOrg returned %+v, want the first org %+v", b, a)
	}
	if _, _, err := store.EnsureOrg(ctx, db, "Not A Slug", "x"); err == nil {
		t.Fatal("EnsureOrg accepted an invalid slug")
	}
}

func TestTokensAreScopedToTheirOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, alice := newOrgUser(t, db, "acme")
	other, _ := newOrgUser(t, db, "other")
	tok, err := store.InsertAPIToken(ctx, db, store.NewAPIToken{OrgID: acme.ID, UserID: alice.ID, Name: "t", Role: "agent", SecretHash: []byte("h1"), Prefix: "dbk_x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.APITokenByID(ctx, db, other.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("APITokenByID from another org = %v, want ErrNotFound", err)
	}
	if _, _, err := store.RevokeAPIToken(ctx, db, other.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeAPIToken from another org = %v, want ErrNotFound", err)
	}
	// A token cannot belong to a user of another org: the composite key refuses it.
	if _, err := store.InsertAPIToken(ctx, db, store.NewAPIToken{OrgID: other.ID, UserID: alice.ID, Name: "t", Role: "agent", SecretHash: []byte("h2"), Prefix: "dbk_y"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("InsertAPIToken with a user of another org = %v, want ErrNotFound", err)
	}
	if _, err := store.InsertAPIToken(ctx, db, store.NewAPIToken{OrgID: acme.ID, UserID: alice.ID, Name: "dup", Role: "agent", SecretHash: []byte("h1"), Prefix: "dbk_x"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertAPIToken with a duplicate hash = %v, want ErrConflict", err)
	}
}

func TestRevokeAPITokenReportsChangeOnce(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, u := newOrgUser(t, db, "acme")
	tok, err := store.InsertAPIToken(ctx, db, store.NewAPIToken{OrgID: org.ID, UserID: u.ID, Name: "t", Role: "agent", SecretHash: []byte("h"), Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	first, changed, err := store.RevokeAPIToken(ctx, db, org.ID, tok.ID)
	if err != nil || !changed || first.RevokedAt == nil {
		t.Fatalf("first revoke: %v changed=%v revokedAt=%v", err, changed, first.RevokedAt)
	}
	second, changed, err := store.RevokeAPIToken(ctx, db, org.ID, tok.ID)
	if err != nil || changed || !second.RevokedAt.Equal(*first.RevokedAt) {
		t.Fatalf("second revoke: %v changed=%v revokedAt=%v (first %v)", err, changed, second.RevokedAt, first.RevokedAt)
	}
}

func TestListAPITokensPagesNewestFirst(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, u := newOrgUser(t, db, "acme")
	var ids []int64
	for i := range 5 {
		tok, err := store.InsertAPIToken(ctx, db, store.NewAPIToken{OrgID: org.ID, UserID: u.ID, Name: "t", Role: "agent", SecretHash: []byte{byte(i)}, Prefix: "p"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	if _, _, err := store.RevokeAPIToken(ctx, db, org.ID, ids[1]); err != nil {
		t.Fatal(err)
	}
	page1, err := store.ListAPITokens(ctx, db, org.ID, false, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	page2, err := store.ListAPITokens(ctx, db, org.ID, false, page1[len(page1)-1].ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := []int64{}
	for _, tk := range append(page1, page2...) {
		got = append(got, tk.ID)
	}
	want := []int64{ids[4], ids[3], ids[2], ids[0]}
	if len(got) != len(want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pages = %v, want %v", got, want)
		}
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, _, err := store.EnsureOrg(ctx, tx, "ghost", "ghost"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM orgs WHERE slug = 'ghost'`); err != nil || n != 0 {
		t.Fatalf("org written by a rolled-back transaction: n=%d err=%v", n, err)
	}
}

// TestEventIDsBecomeVisibleInOrder is the property the whole stream rests on:
// a reader that only ever asks for "id > the last I saw" misses nothing, even
// while many writers commit concurrently and slowly.
func TestEventIDsBecomeVisibleInOrder(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, _ := newOrgUser(t, db, "acme")
	const writers, perWriter = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range perWriter {
				err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
					if _, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: org.ID, Type: "TEST", Permission: "p"}); err != nil {
						return err
					}
					// Commit late, so without the per-org lock a higher id
					// would often commit before a lower one.
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[int64]bool{}
	var cursor int64
	filter := store.EventFilter{OrgID: org.ID, Permissions: []string{"p"}}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := store.EventsAfter(ctx, db, filter, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page {
			seen[ev.ID] = true
			cursor = ev.ID
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int
	if err := db.Get(&total, `SELECT count(*) FROM events WHERE org_id = $1`, org.ID); err != nil {
		t.Fatal(err)
	}
	if total != writers*perWriter || len(seen) != total {
		t.Fatalf("reader following the cursor saw %d of %d events", len(seen), total)
	}
}

func TestEventsAfterFiltersByPermissionAndType(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, _ := newOrgUser(t, db, "acme")
	other, _ := newOrgUser(t, db, "other")
	write := func(orgID int64, typ, perm string) {
		t.Helper()
		if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
			_, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: orgID, Type: typ, Permission: perm, Payload: map[string]int{"n": 1}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	write(org.ID, "A", "admin.only")
	write(org.ID, "B", "everyone")
	write(org.ID, "A", "everyone")
	write(other.ID, "A", "everyone")
	got, err := store.EventsAfter(ctx, db, store.EventFilter{OrgID: org.ID, Permissions: []string{"everyone"}}, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("permission filter: %d events, err %v; want 2", len(got), err)
	}
	got, err = store.EventsAfter(ctx, db, store.EventFilter{OrgID: org.ID, Permissions: []string{"everyone", "admin.only"}, Types: []string{"A"}}, 0, 10)
	if err != nil || len(got) != 2 || got[0].Type != "A" || got[1].Type != "A" {
		t.Fatalf("type filter: %+v, err %v; want the two A events", got, err)
	}
	if string(got[0].Payload) != `{"n": 1}` {
		t.Fatalf("payload = %s", got[0].Payload)
	}
}

// Pruning removes events older than the cutoff in batches, and an org's
// horizon follows what was pruned: resuming after a pruned event is an
// ExpiredPositionError, resuming at or after the horizon is not, and other
// orgs keep theirs.
func TestPruneEventsKeepsAHorizonPerOrg(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org, _ := newOrgUser(t, db, "acme")
	other, _ := newOrgUser(t, db, "other")
	write := func(orgID int64) int64 {
		t.Helper()
		var id int64
		if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
			e, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: orgID, Type: "T", Permission: "p"})
			id = e.ID
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	var old []int64
	for range 5 {
		old = append(old, write(org.ID))
	}
	otherOld := write(other.ID)
	// Age what was written so far by ten days.
	if _, err := db.Exec(`UPDATE events SET occurred_at = occurred_at - interval '10 days'`); err != nil {
		t.Fatal(err)
	}
	fresh := write(org.ID)

	cutoff := time.Now().Add(-7 * 24 * time.Hour)
	var pruned int64
	for { // batches of 2, as the engine repeats full batches
		n, err := store.PruneEvents(ctx, db, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		pruned += n
		if n < 2 {
			break
		}
	}
	if pruned != 6 {
		t.Fatalf("pruned %d events, want the 6 older than the cutoff", pruned)
	}
	left, err := store.EventsAfter(ctx, db, store.EventFilter{OrgID: org.ID, Permissions: []string{"p"}}, 0, 10)
	if err != nil || len(left) != 1 || left[0].ID != fresh {
		t.Fatalf("events left = %+v, %v; want only %d", left, err, fresh)
	}

	var expired *store.ExpiredPositionError
	if err := store.CheckEventPosition(ctx, db, org.ID, old[2]); !errors.As(err, &expired) || expired.PrunedThrough != old[4] {
		t.Fatalf("resuming after %d: %v; want expired through %d", old[2], err, old[4])
	}
	if err := store.CheckEventPosition(ctx, db, org.ID, old[4]); err != nil {
		t.Fatalf("resuming after the last pruned event: %v", err)
	}
	if err := store.CheckEventPosition(ctx, db, other.ID, otherOld-1); !errors.As(err, &expired) || expired.PrunedThrough != otherOld {
		t.Fatalf("the other org's horizon: %v", err)
	}
	third, _ := newOrgUser(t, db, "third")
	if err := store.CheckEventPosition(ctx, db, third.ID, 1); err != nil {
		t.Fatalf("an org that never pruned: %v", err)
	}
}
