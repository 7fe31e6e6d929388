package storetest_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store/pglocal"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func countOrgs(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	if err := db.GetContext(t.Context(), &n, `SELECT count(*) FROM orgs`); err != nil {
		t.Fatalf("counting orgs (is the database migrated?): %v", err)
	}
	return n
}

func TestEachDatabaseIsFreshAndSeparate(t *testing.T) {
	began := time.Now()
	a := storetest.New(t)
	t.Logf("first New (cluster start + template) took %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	b := storetest.New(t)
	t.Logf("second New took %v", time.Since(began).Round(time.Millisecond))

	if n := countOrgs(t, a); n != 0 {
		t.Fatalf("new database has %d orgs", n)
	}
	if _, err := a.ExecContext(t.Context(), `INSERT INTO orgs (slug, name) VALUES ('acme', 'Acme')`); err != nil {
		t.Fatal(err)
	}
	if n := countOrgs(t, a); n != 1 {
		t.Fatalf("after insert: %d orgs, want 1", n)
	}
	if n := countOrgs(t, b); n != 0 {
		t.Fatalf("a write in one test database shows in another: %d orgs", n)
	}
	var applied int
	if err := b.GetContext(t.Context(), &applied, `SELECT count(*) FROM schema_migrations`); err != nil || applied == 0 {
		t.Fatalf("schema_migrations: %d rows, %v", applied, err)
	}
}

func TestParallelTestsGetTheirOwnDatabase(t *testing.T) {
	var mu sync.Mutex
	names := map[string]bool{}
	t.Run("group", func(t *testing.T) {
		for _, slug := range []string{"one", "two", "three"} {
			t.Run(slug, func(t *testing.T) {
				t.Parallel()
				db := storetest.New(t)
				if n := countOrgs(t, db); n != 0 {
					t.Fatalf("new database has %d orgs", n)
				}
				if _, err := db.ExecContext(t.Context(), `INSERT INTO orgs (slug, name) VALUES ($1, $1)`, slug); err != nil {
					t.Fatal(err)
				}
				var got []string
				if err := db.SelectContext(t.Context(), &got, `SELECT slug FROM orgs`); err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0] != slug {
					t.Fatalf("orgs = %v, want only %q", got, slug)
				}
				var name string
				if err := db.GetContext(t.Context(), &name, `SELECT current_database()`); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names[name] = true
				mu.Unlock()
			})
		}
	})
	if len(names) != 3 {
		t.Fatalf("three parallel tests used %d distinct databases: %v", len(names), names)
	}
}

func TestURLIsDroppedAfterTest(t *testing.T) {
	var dsn string
	t.Run("user", func(t *testing.T) {
		dsn = storetest.URL(t)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		// Deliberately left open: cleanup must drop the database anyway.
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(t.Context()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("database still reachable after its test ended (err %v)", err)
	}
}

func TestEmptyURLIsUnmigrated(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("postgres", storetest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("EmptyURL database has %d tables, want none", tables)
	}
}

// TestHelperPrintURL shows TestExternalServer which server the child used.
func TestHelperPrintURL(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for TestExternalServer")
	}
	fmt.Printf("url=%s\n", storetest.URL(t))
}

// helperEnv makes the test binary run TestEachDatabaseIsFreshAndSeparate
// against TEST_DATABASE_URL, for TestExternalServer.
const helperEnv = "STORETEST_HELPER"

// With TEST_DATABASE_URL set, storetest must use that server and leave no
// databases behind on it. The sync.Once setup is per process, so this runs
// the test binary again as a child.
func TestExternalServer(t *testing.T) {
	if os.Getenv(helperEnv) != "" || os.Getenv(storetest.EnvURL) != "" {
		t.Skip("already running against an external server")
	}
	dir := t.TempDir()
	if os.Geteuid() == 0 { // the postgres user must be able to enter t.TempDir's 0700 parent
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pglocal.Start(t.Context(), pglocal.Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.v",
		"-test.run=^(TestEachDatabaseIsFreshAndSeparate|TestParallelTestsGetTheirOwnDatabase|TestHelperPrintURL)$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", storetest.EnvURL+"="+c.URL("postgres"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestEachDatabaseIsFreshAndSeparate") {
		t.Fatalf("tests against %s failed: %v\n%s", storetest.EnvURL, err, out)
	}
	if want := "url=" + strings.TrimSuffix(c.URL(""), "/?sslmode=disable") + "/test_"; !strings.Contains(string(out), want) {
		t.Fatalf("child did not use %s (no %q in its output):\n%s", storetest.EnvURL, want, out)
	}

	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var left []string
	rows, err := db.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		left = append(left, name)
	}
	if len(left) != 0 {
		t.Errorf("databases left on the external server: %v", left)
	}
}
