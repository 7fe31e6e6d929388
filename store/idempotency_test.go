package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// An idempotency key runs its action once: a second claim sees it under
// way, then done with the first answer; an unknown outcome stays unknown;
// another request under the same key is refused; a released key is free.
func TestIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	org, _, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	claim := func(key string, hash string) (store.IdempotencyKey, bool, error) {
		return store.ClaimIdempotencyKey(ctx, db, org.ID, key, "reply", []byte(hash))
	}
	if _, fresh, err := claim("a", "h1"); err != nil || !fresh {
		t.Fatalf("first claim: fresh %v, %v", fresh, err)
	}
	if k, fresh, err := claim("a", "h1"); err != nil || fresh || k.State != store.KeyPending {
		t.Fatalf("second claim while under way: %+v fresh %v, %v", k, fresh, err)
	}
	if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		return store.FinishIdempotencyKey(ctx, tx, org.ID, "a", map[string]string{"id": "thread-1"})
	}); err != nil {
		t.Fatal(err)
	}
	if k, fresh, err := claim("a", "h1"); err != nil || fresh || k.State != store.KeyDone || string(k.Result) != `{"id": "thread-1"}` {
		t.Fatalf("claim after done: %+v %s fresh %v, %v", k, k.Result, fresh, err)
	}
	if _, _, err := claim("a", "h2"); !errors.Is(err, store.ErrKeyReused) {
		t.Fatalf("another request under the key: %v", err)
	}

	if _, _, err := claim("b", "h1"); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkIdempotencyKeyUnknown(ctx, db, org.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if err := store.ReleaseIdempotencyKey(ctx, db, org.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if k, fresh, _ := claim("b", "h1"); fresh || k.State != store.KeyUnknown {
		t.Fatalf("an unknown outcome must stay unknown (not released): %+v fresh %v", k, fresh)
	}

	if _, _, err := claim("c", "h1"); err != nil {
		t.Fatal(err)
	}
	if err := store.ReleaseIdempotencyKey(ctx, db, org.ID, "c"); err != nil {
		t.Fatal(err)
	}
	if _, fresh, err := claim("c", "h1"); err != nil || !fresh {
		t.Fatalf("a released key is free again: fresh %v, %v", fresh, err)
	}
	// Another org's key of the same name is its own.
	other, _, _ := store.EnsureOrg(ctx, db, "globex", "Globex")
	if _, fresh, err := store.ClaimIdempotencyKey(ctx, db, other.ID, "a", "reply", []byte("zz")); err != nil || !fresh {
		t.Fatalf("another org's key: fresh %v, %v", fresh, err)
	}
}
