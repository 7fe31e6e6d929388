package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	_ "github.com/lib/pq"

	"github.com/deskbridge/deskbridge/migrations"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAllIsOrdered(t *testing.T) {
	all, err := migrations.All()
	if err != nil || len(all) == 0 {
		t.Fatalf("All() = %d migrations, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Version >= all[i].Version {
			t.Fatalf("migrations out of order: %s before %s", all[i-1].Name, all[i].Name)
		}
	}
}

// Two gateways starting together must not race: every concurrent Apply
// succeeds and each migration is applied exactly once.
func TestConcurrentApplyAppliesOnce(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("postgres", storetest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const runners = 6
	var wg sync.WaitGroup
	applied := make([][]string, runners)
	errs := make([]error, runners)
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = migrations.Apply(ctx, db, quiet())
		}()
	}
	wg.Wait()
	all, _ := migrations.All()
	total := 0
	for i := range runners {
		if errs[i] != nil {
			t.Fatalf("runner %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != len(all) {
		t.Fatalf("migrations applied %d times in all, want %d (once each)", total, len(all))
	}
	pending, err := migrations.Pending(ctx, db)
	if err != nil || len(pending) != 0 {
		t.Fatalf("Pending after Apply = %v, %v", pending, err)
	}
}

func TestEditedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("postgres", storetest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	pending, err := migrations.Pending(ctx, db)
	if err != nil || len(pending) == 0 {
		t.Fatalf("Pending on an empty database = %v, %v; want every migration", pending, err)
	}
	if _, err := migrations.Apply(ctx, db, quiet()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_migrations SET checksum = 'tampered' WHERE version = '0001'`); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(ctx, db, quiet()); !errors.Is(err, migrations.ErrChecksumMismatch) {
		t.Fatalf("Apply after an edit = %v, want ErrChecksumMismatch", err)
	}
}
