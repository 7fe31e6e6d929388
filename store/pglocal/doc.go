// Package pglocal runs a PostgreSQL cluster that deskbridge starts itself, so
// the project works without anyone installing and configuring a database
// server first. It needs only the PostgreSQL server binaries (initdb and
// postgres), which FindBinaries locates.
//
// It has three kinds of users:
//
//   - `deskbridge serve` without DATABASE_URL (the "embedded default") calls
//     Start on a persistent data directory. initdb runs once; later starts reuse
//     the data.
//   - CLI subcommands such as `deskbridge migrate` or `deskbridge token create`
//     call Open, which attaches to the cluster that a running serve owns, or
//     starts the cluster for the duration of the command when nobody does. So
//     they see the same data whether or not serve is running.
//   - Tests (through package storetest) call Start with Options.Ephemeral on a
//     temporary directory: one throwaway cluster per test process.
//
// # Layout of Options.DataDir
//
//	pgdata/        the cluster itself, created by initdb on first use
//	postgres.log   initdb and server output, appended across runs
//	owner.lock     flock held exclusively by the process running the server
//	users.lock     flock held shared by every process attached to it
//	cluster.json   port and pids of the running server, written by the owner
//
// # Sharing one DataDir between processes
//
// Exactly one process, the owner, runs the server: the process holding an
// exclusive flock on owner.lock. The kernel drops a flock when its process
// dies, however it dies, so ownership can never be stuck with a dead process.
// For the same reason cluster.json is only trusted while another process holds
// owner.lock, and even then only after connecting to the port it names and
// checking that the server there serves this very pgdata directory. A file
// left behind by an owner that crashed is therefore never used.
//
// Any other process attaches: it keeps a shared flock on users.lock for as
// long as it uses the cluster (until Close). Before stopping the server the
// owner takes an exclusive flock on users.lock, so it waits, for at most
// Options.StopWait, for attached processes to finish rather than pulling the
// database out from under a running migration. The owner deletes cluster.json
// when it begins to stop, so processes arriving meanwhile wait and then start
// the cluster themselves instead of attaching to a server that is going away.
//
// Start insists on owning: when another process owns the cluster it waits up
// to Options.OwnerWait for that process to finish, then fails with ErrInUse.
// serve uses Start, because a long-lived server must not depend on a cluster
// that a short CLI command stops when it exits; if a CLI command happens to
// own the cluster when serve starts, serve waits for it and then takes over.
// Open owns the cluster if nobody else does and attaches otherwise; CLI
// commands use it.
//
// # Process lifetime
//
// postgres is started directly, not through pg_ctl, so it is a child of the
// owning process. It runs in its own process group, so a Ctrl-C in a terminal
// reaches only deskbridge, which then shuts postgres down in order. It also
// gets a parent-death signal of SIGQUIT (immediate shutdown), so a deskbridge
// killed with SIGKILL never leaves a server behind; postgres recovers from
// that on the next start like after any crash.
//
// Linux sends the parent-death signal when the thread that started the child
// exits, not when the process does, and the Go runtime does end threads: a
// goroutine that exits while locked to its thread takes the thread with it
// (go.dev/issue/27505), and an unlocked goroutine may have used that thread to
// start the child earlier. So each child is started from a goroutine that
// locks its OS thread and stays blocked in Wait for the child's whole life.
// That thread cannot exit while the child runs. It costs one idle OS thread
// per running child. Operating systems other than Linux have no parent-death
// signal, so there a SIGKILLed owner does leave postgres running.
//
// # Security and running as root
//
// The cluster's superuser is "postgres" with trust authentication. It listens
// on 127.0.0.1 only, plus a unix socket in DataDir. Any local user can
// therefore connect as superuser. That is acceptable for local development and
// tests, which is all this package is for; deployments set DATABASE_URL.
//
// initdb and postgres refuse to run as root. When this process is root (as in
// containers and CI) both run as Options.OSUser, "postgres" by default, and
// DataDir and its pgdata are chowned to that user. Every parent directory of
// DataDir must then be traversable by that user; Start and Open check this
// and say so, rather than changing permissions outside DataDir.
package pglocal
