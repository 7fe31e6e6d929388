package pglocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// child is a started initdb or postgres process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // cmd.Wait's result; read only after done is closed
}

// spawn starts cmd from a goroutine locked to its OS thread and waits for it
// on that same goroutine, so the thread that the kernel considers the child's
// parent (for the parent-death signal) lives exactly as long as the child.
// See "Process lifetime" in the package documentation.
func spawn(cmd *exec.Cmd) (*child, error) {
	ch := &child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Unlocking after Wait hands the thread back to the scheduler once the
		// child is gone; while the child runs, nothing else can use (and
		// possibly end) this thread.
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return ch, nil
}

// exited reports whether the child has exited, without blocking.
func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// terminate stops postgres the way pg_ctl's "fast" mode does (SIGINT: roll
// back open transactions, disconnect clients, checkpoint), escalating to an
// immediate shutdown and finally SIGKILL if it does not exit in time, so that
// Stop always returns. It returns the child's exit error, if any.
func (ch *child) terminate() error {
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{
		{syscall.SIGINT, 30 * time.Second},
		{syscall.SIGQUIT, 10 * time.Second},
		{syscall.SIGKILL, time.Minute},
	}
	for _, s := range steps {
		if ch.exited() {
			break
		}
		if err := ch.cmd.Process.Signal(s.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("sending %v to postgres: %w", s.sig, err)
		}
		select {
		case <-ch.done:
		case <-time.After(s.wait):
		}
	}
	if !ch.exited() {
		return fmt.Errorf("postgres (pid %d) did not exit even after SIGKILL", ch.cmd.Process.Pid)
	}
	if ch.err != nil {
		return fmt.Errorf("postgres exited with %w", ch.err)
	}
	return nil
}

// tryFlock attempts a flock without blocking; false means another open file
// (in this or another process) holds a conflicting lock. Polling instead of
// blocking keeps every wait bounded and cancellable.
func tryFlock(f *os.File, how int) (bool, error) {
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		return false, nil
	default:
		return false, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
}

// unflock releases a lock taken with tryFlock while keeping the file open.
func unflock(f *os.File) {
	// Unlocking an open descriptor cannot meaningfully fail, and closing the
	// file would release the lock anyway.
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// openLockFile opens (creating if needed) a lock file. Read-only is enough
// for flock, and lets users other than the creator take locks on it.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	return f, nil
}

// pickPort returns a TCP port that is free on 127.0.0.1 right now. Another
// process may take it before postgres binds it; startServer retries then. A
// variable so tests can hand out a busy port first.
var pickPort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// maxTail bounds how much of postgres.log an error message quotes.
const maxTail = 4096

// logSince returns what was appended to the log at path after offset from,
// at most the last maxTail bytes of it, starting at a line boundary.
func logSince(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	start := max(from, fi.Size()-maxTail, 0)
	buf := make([]byte, fi.Size()-start)
	n, _ := f.ReadAt(buf, start)
	text := string(buf[:n])
	if start > from {
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	return strings.TrimSpace(text)
}

// withLog appends the log excerpt to an error, because the reason postgres
// or initdb failed is only ever in their output.
func withLog(err error, excerpt string) error {
	if excerpt == "" {
		return err
	}
	return fmt.Errorf("%w\npostgres.log:\n\t%s", err, strings.ReplaceAll(excerpt, "\n", "\n\t"))
}

// sleepCtx waits for d or until ctx is done, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
