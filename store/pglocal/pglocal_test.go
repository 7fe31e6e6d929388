package pglocal

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dataDir returns a fresh directory for a cluster. t.TempDir's parent is
// created with mode 0700; when running as root it is opened up so the
// postgres user can traverse it (pglocal itself refuses to touch parents).
func dataDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chmod(filepath.Dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// requireBinaries fails early with the package's own advice when PostgreSQL
// is not installed, instead of an obscure error from deep inside a test.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(os.Getenv("DESKBRIDGE_PG_BIN")); err != nil {
		t.Fatal(err)
	}
}

// recorder is a slog.Handler that remembers messages, so tests can wait for
// a cluster to reach a state it only announces in its log.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

// has reports whether some message so far contains substr.
func (r *recorder) has(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.msgs, func(m string) bool { return strings.Contains(m, substr) })
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, o Options) *Cluster {
	t.Helper()
	began := time.Now()
	c, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { c.Close() })
	return c
}

func connect(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// reachable reports whether anything accepts TCP connections on port.
func reachable(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func TestStartConnectStop(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	c := start(t, Options{DataDir: dir, Ephemeral: true})
	if !c.Owned() {
		t.Fatal("Start returned a cluster it does not own")
	}
	if _, err := os.Stat(filepath.Join(dir, stateName)); err != nil {
		t.Fatalf("cluster.json not written: %v", err)
	}

	for range 2 { // CreateDatabase is idempotent
		if err := c.CreateDatabase(t.Context(), "app"); err != nil {
			t.Fatal(err)
		}
	}
	db := connect(t, c.URL("app"))
	mustExec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO t VALUES (1)`)
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
	db.Close()

	began := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(began).Round(time.Millisecond))
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if reachable(c.port) {
		t.Errorf("port %d still accepts connections after Stop", c.port)
	}
	if _, err := os.Stat(filepath.Join(dir, stateName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster.json left behind after Stop: %v", err)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	// Durable on purpose: this is what serve's persistent cluster does.
	c := start(t, Options{DataDir: dir})
	if err := c.CreateDatabase(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	db := connect(t, c.URL("app"))
	mustExec(t, db, `CREATE TABLE notes (body text)`)
	mustExec(t, db, `INSERT INTO notes VALUES ('kept')`)
	db.Close()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	c = start(t, Options{DataDir: dir, Logger: slog.New(rec)})
	if rec.has("initializing") {
		t.Error("second start ran initdb again")
	}
	var body string
	if err := connect(t, c.URL("app")).QueryRowContext(t.Context(), `SELECT body FROM notes`).Scan(&body); err != nil || body != "kept" {
		t.Fatalf("after restart: body = %q, %v; want %q", body, err, "kept")
	}
}

func TestOpenAttachesAndOwnerWaitsForIt(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	rec := &recorder{}
	owner, err := Open(t.Context(), Options{DataDir: dir, Ephemeral: true, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if !owner.Owned() {
		t.Fatal("first Open does not own the cluster")
	}

	began := time.Now()
	user, err := Open(t.Context(), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("attaching took %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { user.Close() })
	if user.Owned() {
		t.Fatal("second Open claims to own the cluster")
	}
	if user.URL("postgres") != owner.URL("postgres") {
		t.Fatalf("attached URL %s, owner URL %s", user.URL("postgres"), owner.URL("postgres"))
	}

	stopped := make(chan error, 1)
	go func() { stopped <- owner.Stop() }()
	eventually(t, 10*time.Second, "owner waiting for the attached process", func() bool {
		return rec.has("waiting for attached processes")
	})
	// The owner is stopping, yet the attached process still has its database.
	db := connect(t, user.URL("postgres"))
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("attached process lost the server while the owner waits: %v", err)
	}
	db.Close()
	select {
	case err := <-stopped:
		t.Fatalf("owner stopped with a process attached (err %v)", err)
	default:
	}

	if err := user.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("owner did not stop after the attached process closed")
	}
	if reachable(owner.port) {
		t.Error("server still running after the owner stopped")
	}

	// With the owner gone, the next Open owns the cluster and finds the data.
	next, err := Open(t.Context(), Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if !next.Owned() {
		t.Error("Open after the owner stopped did not become the owner")
	}
}

func TestOwnerStopsAnywayAfterStopWait(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	owner := start(t, Options{DataDir: dir, Ephemeral: true, StopWait: 200 * time.Millisecond})
	user, err := Open(t.Context(), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	if user.Owned() {
		t.Fatal("Open should have attached")
	}
	done := make(chan error, 1)
	go func() { done <- owner.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop waited far longer than StopWait for an attached process")
	}
}

func TestStartWaitsForOwner(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	cli, err := Open(t.Context(), Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	if _, err := Start(t.Context(), Options{DataDir: dir}); !errors.Is(err, ErrInUse) {
		t.Fatalf("Start on an owned cluster without OwnerWait: err = %v, want ErrInUse", err)
	}
	if err := Remove(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("Remove of an owned cluster: err = %v, want ErrInUse", err)
	}

	rec := &recorder{}
	type result struct {
		c   *Cluster
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := Start(t.Context(), Options{DataDir: dir, Ephemeral: true, OwnerWait: time.Minute, Logger: slog.New(rec)})
		got <- result{c, err}
	}()
	eventually(t, 10*time.Second, "Start waiting for the owner", func() bool {
		return rec.has("waiting for another process")
	})
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.c.Owned() {
		t.Error("Start returned a cluster it does not own")
	}
	if err := r.c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s behind", dir)
	}
}

// A cluster.json naming the wrong server must not be trusted, even while the
// owner lock is held: the attaching process checks the data directory.
func TestAttachVerifiesServer(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	other := start(t, Options{DataDir: dataDir(t), Ephemeral: true})

	dir := dataDir(t)
	if err := os.WriteFile(filepath.Join(dir, stateName), []byte(`{"port": `+strconv.Itoa(other.port)+`}`), 0o644); err != nil {
		t.Fatal(err)
	}
	lock, err := openLockFile(filepath.Join(dir, ownerLockName))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := tryFlock(lock, syscall.LOCK_EX); !ok || err != nil {
		t.Fatalf("taking the owner lock: %v %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if c, err := Open(ctx, Options{DataDir: dir}); err == nil {
		c.Close()
		t.Fatal("Open attached to a server that serves another data directory")
	}

	lock.Close() // the "owner" dies; now the stale file must be ignored
	c, err := Open(t.Context(), Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Owned() || c.port == other.port {
		t.Errorf("Open with a stale cluster.json: owned=%v port=%d (other cluster's port %d)", c.Owned(), c.port, other.port)
	}
}

// Losing the free port to another process before postgres binds it is
// retried with a new port. The thief here accepts connections and never
// answers, the worst case for the readiness probe (it must time out rather
// than hang), so this test takes a couple of seconds.
func TestStartRetriesBusyPort(t *testing.T) {
	requireBinaries(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	orig := pickPort
	t.Cleanup(func() { pickPort = orig })
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return busy.Addr().(*net.TCPAddr).Port, nil
		}
		return orig()
	}
	c := start(t, Options{DataDir: dataDir(t), Ephemeral: true})
	if calls < 2 || c.port == busy.Addr().(*net.TCPAddr).Port {
		t.Fatalf("pickPort called %d times, port %d", calls, c.port)
	}
}

func TestFindBinaries(t *testing.T) {
	t.Run("bogus hint", func(t *testing.T) {
		t.Setenv("PATH", "")
		_, err := FindBinaries(filepath.Join(t.TempDir(), "nope"))
		checkNotFound(t, err)
	})
	t.Run("nothing anywhere", func(t *testing.T) {
		t.Setenv("PATH", "")
		orig := searchPatterns
		t.Cleanup(func() { searchPatterns = orig })
		searchPatterns = []string{filepath.Join(t.TempDir(), "*", "bin")}
		_, err := FindBinaries("")
		checkNotFound(t, err)
	})
	t.Run("highest version wins", func(t *testing.T) {
		t.Setenv("PATH", "")
		root := t.TempDir()
		for _, v := range []string{"9.6", "15", "12"} {
			fakeBinaries(t, filepath.Join(root, v, "bin"))
		}
		orig := searchPatterns
		t.Cleanup(func() { searchPatterns = orig })
		searchPatterns = []string{filepath.Join(root, "*", "bin")}
		got, err := FindBinaries("")
		if want := filepath.Join(root, "15", "bin"); got != want || err != nil {
			t.Fatalf("FindBinaries = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("hint", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "bin")
		fakeBinaries(t, dir)
		if got, err := FindBinaries(dir); got != dir || err != nil {
			t.Fatalf("FindBinaries(%q) = %q, %v", dir, got, err)
		}
	})
}

func checkNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("err = %v, want ErrBinariesNotFound", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error message spans several lines: %q", err)
	}
}

func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to another OS user")
	}
	requireBinaries(t)
	t.Parallel()
	closed := filepath.Join(dataDir(t), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{DataDir: filepath.Join(closed, "data")})
	if !errors.Is(err, ErrDataDirUnreachable) {
		t.Fatalf("err = %v, want ErrDataDirUnreachable", err)
	}
	if !strings.Contains(err.Error(), "DESKBRIDGE_DATA_DIR") {
		t.Errorf("error does not suggest DESKBRIDGE_DATA_DIR: %v", err)
	}
	if fi, err := os.Stat(closed); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("permissions of the parent were changed: %v %v", fi.Mode(), err)
	}
}
