// Package storetest gives each test its own fresh, migrated, empty
// PostgreSQL database, so tests can run in parallel and never see each
// other's rows.
//
// The server is TEST_DATABASE_URL when set (a postgres:// URL of a server on
// which the role may CREATE DATABASE), and otherwise one throwaway pglocal
// cluster per test process, started on first use in a temporary directory.
// Either way, the migrations are applied once per process to a template
// database, and each New or URL copies it with CREATE DATABASE ... TEMPLATE,
// which takes a few tens of milliseconds instead of re-running migrations
// for every test. EmptyURL gives a database without migrations, for testing
// the migrations themselves.
//
// Packages using storetest should call Main from TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// Main stops the throwaway cluster, deletes its directory and drops the
// template database. Without it, the cluster still dies with the test process
// (pglocal arranges that) and a later run deletes the directory, but the
// template is left behind on a TEST_DATABASE_URL server.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/deskbridge/deskbridge/migrations"
	"github.com/deskbridge/deskbridge/store/pglocal"
)

// EnvURL names the environment variable that points the tests at an existing
// server instead of a throwaway cluster.
const EnvURL = "TEST_DATABASE_URL"

// dirPrefix names the temporary directories of throwaway clusters, so that a
// later run can find and delete those of test processes that were killed.
const dirPrefix = "deskbridge-storetest-"

// setupTimeout bounds starting the cluster and migrating the template.
const setupTimeout = 2 * time.Minute

// server is the per-process state: where to create databases, and what to
// copy them from.
type server struct {
	base     *url.URL // DSN of the server; the path is replaced per database
	admin    *sql.DB  // creates and drops databases
	template string
	cluster  *pglocal.Cluster // nil with TEST_DATABASE_URL
	dir      string           // the cluster's DataDir
	log      *slog.Logger
}

var (
	setupOnce sync.Once
	shared    *server
	setupErr  error
)

// get returns the process's server, setting it up on first use. A failed
// setup fails every test that needs a database, with the same message.
func get(t testing.TB) *server {
	t.Helper()
	setupOnce.Do(func() { shared, setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("storetest: %v", setupErr)
	}
	return shared
}

// New returns a connection pool to a fresh, migrated, empty database that
// belongs to this test alone. The pool is closed and the database dropped
// when the test ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn := URL(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("storetest: opening test database: %v", err)
	}
	// Registered after URL's cleanup, so it runs first: the pool must be
	// closed before the database is dropped.
	t.Cleanup(func() { db.Close() })
	return db
}

// URL is New for tests that need a connection string rather than a pool,
// for example to start a whole server. The database is dropped when the test
// ends, even if something is still connected to it.
func URL(t testing.TB) string {
	t.Helper()
	s := get(t)
	return s.createDatabase(t, s.template)
}

// EmptyURL is URL without the migrations: a database as fresh as a new one
// on a production server, for tests of the migrations themselves. It is
// copied from template0, which nobody can connect to, so concurrent creations
// never fail because the source database is in use.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return get(t).createDatabase(t, "template0")
}

// createDatabase copies template into a new database for t, dropped at the
// end of t, and returns its DSN.
func (s *server) createDatabase(t testing.TB, template string) string {
	t.Helper()
	name := "test_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+
		" TEMPLATE "+pq.QuoteIdentifier(template)); err != nil {
		t.Fatalf("storetest: creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.dropDatabase(ctx, name); err != nil {
			t.Errorf("storetest: %v", err)
		}
	})
	return s.dsn(name)
}

// Run runs the package's tests and then stops the throwaway cluster, if
// this process started one, returning the exit code. Use it from a TestMain
// that has its own cleanup; otherwise use Main.
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Main runs the tests, then releases what the package set up: it stops the
// throwaway cluster and deletes its directory, or drops the template
// database on a TEST_DATABASE_URL server. Call it from TestMain; it exits the
// process.
func Main(m *testing.M) { os.Exit(Run(m)) }

func setup() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	// Warnings only: test output is no place for progress messages.
	s := &server{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	adminDSN := os.Getenv(EnvURL)
	if adminDSN != "" {
		u, err := url.Parse(adminDSN)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvURL)
		}
		s.base = u
	} else {
		if err := s.startCluster(ctx); err != nil {
			return nil, err
		}
		adminDSN = s.cluster.URL("postgres")
		s.base, _ = url.Parse(adminDSN) // pglocal builds a valid URL
	}
	var err error
	if s.admin, err = sql.Open("postgres", adminDSN); err != nil {
		return nil, errors.Join(fmt.Errorf("connecting to the test server: %w", err), s.shutdown())
	}
	if err := s.makeTemplate(ctx); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	return s, nil
}

// startCluster starts this process's throwaway cluster, after deleting the
// directories of earlier test processes that died without cleaning up.
func (s *server) startCluster(ctx context.Context) error {
	removeAbandoned(s.log)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return fmt.Errorf("creating cluster directory: %w", err)
	}
	s.dir = dir
	c, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, Ephemeral: true, Logger: s.log})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("starting throwaway postgres (or set %s): %w", EnvURL, err)
	}
	s.cluster = c
	return nil
}

// makeTemplate creates and migrates this process's template database. The
// name is unique per process because test binaries of several packages may
// share one TEST_DATABASE_URL server at the same time.
func (s *server) makeTemplate(ctx context.Context) error {
	name := "deskbridge_tmpl_" + randomSuffix()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	s.template = name
	db, err := sql.Open("postgres", s.dsn(name))
	if err != nil {
		return fmt.Errorf("connecting to template database: %w", err)
	}
	// Closed before any copy is made: CREATE DATABASE refuses a template
	// that has other sessions.
	defer db.Close()
	if _, err := migrations.Apply(ctx, db, s.log); err != nil {
		return fmt.Errorf("migrating template database: %w", err)
	}
	return nil
}

// shutdown drops the template or stops the cluster; safe on a partly set up
// server.
func (s *server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if s.cluster == nil && s.template != "" && s.admin != nil {
		errs = append(errs, s.dropDatabase(ctx, s.template))
	}
	if s.admin != nil {
		errs = append(errs, s.admin.Close())
	}
	if s.cluster != nil {
		errs = append(errs, s.cluster.Close())
		errs = append(errs, pglocal.Remove(s.dir))
	}
	return errors.Join(errs...)
}

// dropDatabase drops name, disconnecting whoever is still connected (a test
// that leaked a connection must not leak its database too).
func (s *server) dropDatabase(ctx context.Context, name string) error {
	_, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// dsn is the server's URL with the database replaced by name.
func (s *server) dsn(name string) string {
	u := *s.base
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// removeAbandoned deletes cluster directories of test processes that were
// killed before Main could clean up. pglocal.Remove skips clusters still
// owned by a live process. Young directories are left alone, because their
// process may have created them and not yet started the cluster.
func removeAbandoned(log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if err := pglocal.Remove(d); err != nil && !errors.Is(err, pglocal.ErrInUse) {
			log.Warn("cannot remove abandoned test cluster", "dir", d, "err", err)
		}
	}
}

// randomSuffix makes database names unique across concurrent test processes.
func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToLower(hex.EncodeToString(b))
}
