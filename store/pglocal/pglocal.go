package pglocal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// ErrInUse means another process owns the cluster in DataDir, so Start (which
// must own it) or Remove cannot proceed.
var ErrInUse = errors.New("local PostgreSQL cluster is in use by another process")

// Superuser is the cluster's superuser role, created by initdb. It is the
// conventional name, so psql and other tools work without extra flags.
const Superuser = "postgres"

const (
	// defaultStopWait is how long an owner waits for attached processes when
	// Options.StopWait is zero: long enough for a migration or a CLI command,
	// short enough that a stuck client cannot block a shutdown for good.
	defaultStopWait = 30 * time.Second
	// startTimeout bounds initdb plus server start-up, including crash
	// recovery after an unclean stop. The caller's context can shorten it.
	startTimeout = 2 * time.Minute
	// attachTimeout bounds how long Open waits for a starting or stopping
	// owner before giving up.
	attachTimeout = 2 * time.Minute
	// readyPoll is how often start-up is checked; a fresh cluster is usually
	// ready within 50-100 ms, so polling finely saves real time in tests.
	readyPoll = 20 * time.Millisecond
	// lockPoll is how often a lock held by another process is retried.
	lockPoll = 50 * time.Millisecond
	// maxPortAttempts bounds retries after losing a free port to another
	// process between picking it and postgres binding it.
	maxPortAttempts = 5
	// maxSocketDirLen keeps the unix socket path (dir + "/.s.PGSQL.NNNNN")
	// under the smallest sun_path limit (104 bytes on macOS, 108 on Linux).
	maxSocketDirLen = 100 - len("/.s.PGSQL.65535")
)

// File names inside Options.DataDir; see the package documentation.
const (
	pgdataName    = "pgdata"
	logName       = "postgres.log"
	ownerLockName = "owner.lock"
	usersLockName = "users.lock"
	stateName     = "cluster.json"
)

// These mark start-up failures worth retrying; they are found in the log.
var (
	errPortInUse = errors.New("port already in use")
	errOldServer = errors.New("previous server on this data directory still shutting down")
)

// Options configures Start and Open.
type Options struct {
	// DataDir holds the cluster (DataDir/pgdata) and the lock, state and log
	// files through which processes share it. Required. It is created if
	// missing.
	DataDir string
	// BinDir is the directory with initdb and postgres, passed to
	// FindBinaries as its hint; "" searches the usual places.
	BinDir string
	// OSUser is the account initdb and postgres run as when this process is
	// root, because they refuse to run as root. "" means "postgres". Ignored
	// when not root: they then run as the current user.
	OSUser string
	// Port is the TCP port on 127.0.0.1 when starting the server. 0 picks a
	// free port at every start, so clusters of parallel test processes never
	// collide. Attaching processes ignore it and use the owner's port, which
	// they read from cluster.json.
	Port int
	// Ephemeral turns off every form of durability (initdb --no-sync,
	// fsync, synchronous_commit and full_page_writes off) for speed. Only for
	// throwaway clusters: after a crash the data may be corrupt.
	Ephemeral bool
	// OwnerWait is how long Start waits for another process to give up
	// ownership before failing with ErrInUse; 0 fails at once. serve sets it
	// so that, when it starts while a CLI command owns the cluster, it takes
	// over once the command finishes instead of failing. Open ignores it,
	// because it attaches instead.
	OwnerWait time.Duration
	// StopWait bounds how long the owner's Close waits for attached
	// processes to finish before stopping the server anyway; 0 means 30s.
	StopWait time.Duration
	// Logger receives progress messages and warnings; nil discards them.
	Logger *slog.Logger
}

// Cluster is a local PostgreSQL server that this process either owns (it
// started the server and stops it on Close) or is attached to (another
// process owns it; Close only lets go). Its methods are safe for concurrent
// use.
type Cluster struct {
	dataDir   string // absolute
	pgdata    string
	binHint   string
	fixedPort int
	ephemeral bool
	stopWait  time.Duration
	user      *runAs // nil unless we are root
	log       *slog.Logger

	owned     bool
	port      int
	ownerLock *os.File // exclusive while owned
	usersLock *os.File // shared while attached; exclusive while the owner stops
	logFile   *os.File // owner only: postgres's stdout and stderr
	server    *child   // owner only
	stopping  atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// state is the content of cluster.json: what an attaching process needs to
// find the owner's server, plus pids to help a human who is debugging.
type state struct {
	Port      int    `json:"port"`
	PID       int    `json:"pid"`       // the postmaster
	OwnerPID  int    `json:"owner_pid"` // the deskbridge process that started it
	Superuser string `json:"superuser"`
}

// Start makes this process the owner of the cluster in o.DataDir and starts
// its server, running initdb first if DataDir/pgdata does not exist yet. If
// another process owns the cluster, Start waits up to o.OwnerWait for it to
// finish, then returns an error wrapping ErrInUse. serve and tests use Start;
// see the package documentation for why serve does not attach.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	if err := c.acquireOwnership(ctx, o.OwnerWait); err != nil {
		c.closeFiles()
		return nil, err
	}
	if err := c.startServer(ctx); err != nil {
		c.closeFiles()
		return nil, err
	}
	return c, nil
}

// Open returns the cluster in o.DataDir for a process that needs it only for
// a while, such as a CLI command. If another process owns the cluster, Open
// attaches to its server; otherwise it becomes the owner and starts the
// server as Start does. Owned tells which happened. Either way, call Close
// when done.
func Open(ctx context.Context, o Options) (*Cluster, error) {
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	attachCtx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	for logged := false; ; {
		ok, err := tryFlock(c.ownerLock, syscall.LOCK_EX)
		if err != nil {
			c.closeFiles()
			return nil, err
		}
		if ok {
			c.owned = true
			if err := c.startServer(ctx); err != nil {
				c.closeFiles()
				return nil, err
			}
			return c, nil
		}
		attachErr := c.attach(attachCtx)
		if attachErr == nil {
			return c, nil
		}
		// The owner is still starting (no cluster.json yet) or is stopping;
		// either way the situation resolves by itself shortly.
		if !logged {
			c.log.Info("waiting for the local postgres cluster's owner", "data_dir", c.dataDir, "reason", attachErr)
			logged = true
		}
		if err := sleepCtx(attachCtx, lockPoll); err != nil {
			c.closeFiles()
			return nil, fmt.Errorf("attaching to the local postgres cluster in %s: %w (last attempt: %v)", c.dataDir, err, attachErr)
		}
	}
}

// Remove deletes dataDir unless a process owns the cluster in it, in which
// case the error wraps ErrInUse. storetest uses it to clean up after test
// processes that died.
func Remove(dataDir string) error {
	f, err := os.Open(filepath.Join(dataDir, ownerLockName))
	if errors.Is(err, fs.ErrNotExist) {
		// Never used by Start or Open, so nobody can own it.
		if err := os.RemoveAll(dataDir); err != nil {
			return fmt.Errorf("removing %s: %w", dataDir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", dataDir, err)
	}
	defer f.Close()
	ok, err := tryFlock(f, syscall.LOCK_EX)
	if err != nil {
		return fmt.Errorf("removing %s: %w", dataDir, err)
	}
	if !ok {
		return fmt.Errorf("removing %s: %w", dataDir, ErrInUse)
	}
	// Holding the owner lock while deleting keeps Start and Open in other
	// processes from starting a server in the directory meanwhile.
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("removing %s: %w", dataDir, err)
	}
	return nil
}

// Owned reports whether this process runs the server (and will stop it on
// Close), as opposed to being attached to another process's server.
func (c *Cluster) Owned() bool { return c.owned }

// URL returns a connection URL for database on this cluster, as the
// superuser over TCP. Loopback traffic needs no TLS, hence sslmode=disable.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// probeURL is URL("postgres") with a connect timeout. Start-up and attach
// checks need one: a port can be held by something that accepts connections
// and never answers (another program, or a stale cluster.json), and lib/pq
// does not apply the context's deadline to its start-up handshake.
func (c *Cluster) probeURL() string {
	return c.URL("postgres") + "&connect_timeout=2"
}

// CreateDatabase creates the named database unless it already exists, so
// callers can run it on every start.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	if err != nil && pq.As(err, pqerror.DuplicateDatabase) == nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// Close ends this process's use of the cluster. The owner waits (up to
// Options.StopWait) for attached processes to finish, then shuts the server
// down (fast mode: open transactions roll back) and waits for it to exit. An
// attached process just lets go. Close is idempotent: later calls return the
// first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.owned {
			c.closeErr = c.stopServer()
		}
		// Only now, with the server gone, may another process become owner.
		c.closeFiles()
	})
	return c.closeErr
}

// Stop is Close under the name that reads naturally where a process started
// the cluster itself.
func (c *Cluster) Stop() error { return c.Close() }

// newCluster prepares DataDir and opens the lock files, without locking yet.
func newCluster(o Options) (*Cluster, error) {
	if o.DataDir == "" {
		return nil, errors.New("pglocal: Options.DataDir is required")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving data directory: %w", err)
	}
	user, err := lookupRunAs(o.OSUser)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		dataDir:   dir,
		pgdata:    filepath.Join(dir, pgdataName),
		binHint:   o.BinDir,
		fixedPort: o.Port,
		ephemeral: o.Ephemeral,
		stopWait:  o.StopWait,
		user:      user,
		log:       o.Logger,
	}
	if c.stopWait <= 0 {
		c.stopWait = defaultStopWait
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	// Parents get 0755 so the postgres user can traverse any we create; the
	// directory itself need not be open to others.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if err := user.chown(dir); err != nil {
		return nil, err
	}
	if err := user.checkTraversable(dir); err != nil {
		return nil, err
	}
	if c.ownerLock, err = c.openLock(ownerLockName); err != nil {
		return nil, err
	}
	if c.usersLock, err = c.openLock(usersLockName); err != nil {
		c.closeFiles()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) openLock(name string) (*os.File, error) {
	f, err := openLockFile(filepath.Join(c.dataDir, name))
	if err != nil {
		return nil, err
	}
	if err := c.user.chown(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// closeFiles releases every lock this process holds by closing the files.
func (c *Cluster) closeFiles() {
	for _, f := range []*os.File{c.ownerLock, c.usersLock, c.logFile} {
		if f != nil {
			f.Close()
		}
	}
}

// acquireOwnership takes the owner lock, waiting up to wait for the current
// owner, if any, to let go.
func (c *Cluster) acquireOwnership(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for logged := false; ; {
		ok, err := tryFlock(c.ownerLock, syscall.LOCK_EX)
		if err != nil {
			return err
		}
		if ok {
			c.owned = true
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("starting postgres in %s: %w (%s)", c.dataDir, ErrInUse, c.describeOwner())
		}
		if !logged {
			c.log.Info("waiting for another process to release the local postgres cluster",
				"data_dir", c.dataDir, "owner", c.describeOwner(), "timeout", wait)
			logged = true
		}
		if err := sleepCtx(ctx, lockPoll); err != nil {
			return fmt.Errorf("waiting to own the postgres cluster in %s: %w", c.dataDir, err)
		}
	}
}

// describeOwner names the owning process for messages, as far as known.
func (c *Cluster) describeOwner() string {
	if st, err := readState(c.statePath()); err == nil && st.OwnerPID != 0 {
		return fmt.Sprintf("owner pid %d", st.OwnerPID)
	}
	return "owner pid unknown"
}

// attach joins the server of the process holding the owner lock. The shared
// users lock is taken before anything else, so that once the server is
// verified the owner cannot stop it until Close.
func (c *Cluster) attach(ctx context.Context) error {
	ok, err := tryFlock(c.usersLock, syscall.LOCK_SH)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the owner is stopping the server")
	}
	st, err := readState(c.statePath())
	if err != nil {
		unflock(c.usersLock)
		return fmt.Errorf("the owner has not published the server yet: %w", err)
	}
	c.port = st.Port
	if err := c.checkServer(ctx, nil); err != nil {
		unflock(c.usersLock)
		return err
	}
	c.log.Debug("attached to local postgres", "data_dir", c.dataDir, "port", c.port, "owner_pid", st.OwnerPID)
	return nil
}

// checkServer verifies that the server at c.port is up and serves c.pgdata.
// Being up is not enough: a stale cluster.json or a lost port race could
// point at some other PostgreSQL server on this machine. db may be nil.
func (c *Cluster) checkServer(ctx context.Context, db *sql.DB) error {
	if db == nil {
		var err error
		if db, err = sql.Open("postgres", c.probeURL()); err != nil {
			return err
		}
		defer db.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var dir string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return fmt.Errorf("connecting to postgres on port %d: %w", c.port, err)
	}
	theirs, err1 := os.Stat(dir)
	ours, err2 := os.Stat(c.pgdata)
	if err1 != nil || err2 != nil || !os.SameFile(theirs, ours) {
		return fmt.Errorf("the server on port %d serves %s, not %s", c.port, dir, c.pgdata)
	}
	return nil
}

// startServer runs initdb if needed and starts postgres; the caller owns the
// cluster.
func (c *Cluster) startServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// Whatever cluster.json says was written by an owner that has died, since
	// we hold the owner lock now. Nobody must act on it any more.
	if err := os.Remove(c.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", stateName, err)
	}
	binDir, err := FindBinaries(c.binHint)
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dataDir, logName)
	c.logFile, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("opening postgres log: %w", err)
	}
	if err := c.user.chown(logPath); err != nil {
		return err
	}
	if err := c.initdb(ctx, binDir); err != nil {
		return err
	}
	if err := c.user.chownTree(c.pgdata); err != nil {
		return err
	}
	for portTries := 1; ; {
		port := c.fixedPort
		if port == 0 {
			if port, err = pickPort(); err != nil {
				return err
			}
		}
		err = c.launch(ctx, binDir, port)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, errPortInUse) && c.fixedPort == 0 && portTries < maxPortAttempts:
			portTries++
		case errors.Is(err, errOldServer) && ctx.Err() == nil:
			// Our predecessor died moments ago and its server, told to quit
			// by the parent-death signal, is still exiting.
		default:
			return err
		}
		c.log.Debug("retrying postgres start", "reason", err)
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("starting postgres: %w", err)
		}
	}
	st := state{Port: c.port, PID: c.server.cmd.Process.Pid, OwnerPID: os.Getpid(), Superuser: Superuser}
	if err := c.writeState(st); err != nil {
		c.stopping.Store(true)
		_ = c.server.terminate() // reporting the write error matters more
		return err
	}
	go c.watch()
	return nil
}

// initdb creates pgdata unless it exists. It writes into a temporary
// directory and renames it into place, so an interrupted first start leaves
// no half-made cluster that later starts would trip over.
func (c *Cluster) initdb(ctx context.Context, binDir string) error {
	if _, err := os.Stat(filepath.Join(c.pgdata, "PG_VERSION")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", c.pgdata, err)
	}
	if entries, err := os.ReadDir(c.pgdata); err == nil {
		if len(entries) > 0 {
			return fmt.Errorf("%s is not empty but has no PG_VERSION, so it is not a PostgreSQL data directory; move it away", c.pgdata)
		}
		if err := os.Remove(c.pgdata); err != nil {
			return fmt.Errorf("removing empty %s: %w", c.pgdata, err)
		}
	}
	tmp := c.pgdata + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing leftover %s: %w", tmp, err)
	}
	c.log.Info("initializing local postgres cluster", "pgdata", c.pgdata)
	began := time.Now()
	args := []string{"-D", tmp, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C"}
	if c.ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = c.dataDir // the inherited working directory may be closed to the postgres user
	cmd.Stdout, cmd.Stderr = c.logFile, c.logFile
	// initdb traps SIGQUIT to clean up; a dying parent wants it gone at once.
	cmd.SysProcAttr = sysProcAttr(c.user.credential(), syscall.SIGKILL)
	from := c.logSize()
	ch, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("running initdb: %w", err)
	}
	<-ch.done
	if ch.err != nil {
		return withLog(fmt.Errorf("running initdb: %w", ch.err), logSince(c.logFile.Name(), from))
	}
	if err := os.Rename(tmp, c.pgdata); err != nil {
		return fmt.Errorf("moving new cluster into place: %w", err)
	}
	if !c.ephemeral {
		if err := syncDir(c.dataDir); err != nil {
			return err
		}
	}
	c.log.Info("initialized local postgres cluster", "pgdata", c.pgdata, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// launch starts postgres on port and waits until it serves pgdata. On
// failure the server is stopped again and the error carries its log.
func (c *Cluster) launch(ctx context.Context, binDir string, port int) error {
	args := []string{
		"-D", c.pgdata,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		// Never Debian's /var/run/postgresql: it may not exist or be ours.
		"-c", "unix_socket_directories=" + c.socketDir(),
	}
	if c.ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Dir = c.dataDir
	cmd.Stdout, cmd.Stderr = c.logFile, c.logFile
	// SIGQUIT is postgres's immediate shutdown: it takes its backends down
	// with it, which SIGKILL would not.
	cmd.SysProcAttr = sysProcAttr(c.user.credential(), syscall.SIGQUIT)
	c.log.Debug("starting postgres", "port", port, "pgdata", c.pgdata)
	began := time.Now()
	from := c.logSize()
	ch, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	c.port = port
	if err := c.waitReady(ctx, ch); err != nil {
		_ = ch.terminate() // the start-up failure is the error worth reporting
		excerpt := logSince(c.logFile.Name(), from)
		err = fmt.Errorf("starting postgres on port %d: %w", port, err)
		switch {
		case strings.Contains(excerpt, "could not bind") || strings.Contains(excerpt, "Address already in use"):
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		case strings.Contains(excerpt, `lock file "postmaster.pid" already exists`) ||
			strings.Contains(excerpt, "pre-existing shared memory block"):
			err = fmt.Errorf("%w: %w", errOldServer, err)
		}
		return withLog(err, excerpt)
	}
	c.server = ch
	c.log.Info("local postgres ready", "port", port, "data_dir", c.dataDir,
		"took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitReady polls until the server accepts connections for pgdata, exits,
// or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, ch *child) error {
	db, err := sql.Open("postgres", c.probeURL())
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		lastErr := c.checkServer(ctx, db)
		if lastErr == nil {
			return nil
		}
		if ch.exited() { // checked first: select picks among ready cases at random
			return fmt.Errorf("postgres exited during start-up (%v)", ch.err)
		}
		select {
		case <-ch.done:
			return fmt.Errorf("postgres exited during start-up (%v)", ch.err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for postgres to accept connections: %w (last error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// watch reports a server that dies on its own, which would otherwise only
// show up as connection errors somewhere else.
func (c *Cluster) watch() {
	<-c.server.done
	if !c.stopping.Load() {
		c.log.Error("local postgres exited unexpectedly; see its log",
			"err", c.server.err, "log", c.logFile.Name())
	}
}

// stopServer waits for attached processes (bounded), then shuts postgres
// down.
func (c *Cluster) stopServer() error {
	c.stopping.Store(true)
	// Processes arriving from now on must not attach to a server that is
	// going away; without cluster.json they wait, then start it themselves.
	if err := os.Remove(c.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("could not remove cluster.json", "err", err)
	}
	c.waitForUsers()
	began := time.Now()
	if err := c.server.terminate(); err != nil {
		return fmt.Errorf("stopping postgres: %w", err)
	}
	c.log.Info("local postgres stopped", "data_dir", c.dataDir, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitForUsers takes the users lock exclusively, which succeeds once every
// attached process has closed, or gives up after c.stopWait.
func (c *Cluster) waitForUsers() {
	deadline := time.Now().Add(c.stopWait)
	for logged := false; ; {
		ok, err := tryFlock(c.usersLock, syscall.LOCK_EX)
		if err != nil {
			c.log.Warn("cannot check for attached processes; stopping postgres anyway", "err", err)
			return
		}
		if ok {
			return
		}
		if !time.Now().Before(deadline) {
			c.log.Warn("attached processes still use the local postgres cluster; stopping it anyway",
				"data_dir", c.dataDir, "waited", c.stopWait)
			return
		}
		if !logged {
			c.log.Info("waiting for attached processes to finish before stopping the local postgres cluster",
				"data_dir", c.dataDir, "timeout", c.stopWait)
			logged = true
		}
		time.Sleep(lockPoll)
	}
}

func (c *Cluster) statePath() string { return filepath.Join(c.dataDir, stateName) }

// socketDir is DataDir, or "" (no unix socket; TCP only) when DataDir is too
// long for a socket path. Nothing here needs the socket; it is a convenience
// for psql -h DataDir.
func (c *Cluster) socketDir() string {
	if len(c.dataDir) > maxSocketDirLen {
		return ""
	}
	return c.dataDir
}

// logSize is the current length of postgres.log, so a failure can quote just
// what this attempt wrote.
func (c *Cluster) logSize() int64 {
	fi, err := c.logFile.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// writeState publishes cluster.json atomically (write, then rename), so an
// attaching process never reads half a file.
func (c *Cluster) writeState(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", stateName, err)
	}
	tmp := c.statePath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", stateName, err)
	}
	if err := c.user.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.statePath()); err != nil {
		return fmt.Errorf("writing %s: %w", stateName, err)
	}
	return nil
}

func readState(path string) (state, error) {
	var st state
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parsing %s: %w", path, err)
	}
	if st.Port <= 0 {
		return st, fmt.Errorf("parsing %s: no port", path)
	}
	return st, nil
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
