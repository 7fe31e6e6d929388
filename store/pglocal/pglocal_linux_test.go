package pglocal

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a process that owns a cluster
// until it is killed, for TestKilledOwnerLeavesNoServer.
const helperEnv = "PGLOCAL_TEST_HELPER_DATADIR"

func TestHelperOwner(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKilledOwnerLeavesNoServer")
	}
	c, err := Start(t.Context(), Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("postmaster %d %d\n", c.server.cmd.Process.Pid, c.port)
	select {} // until SIGKILL
}

// A SIGKILLed owner cannot stop its server, so the parent-death signal must.
func TestKilledOwnerLeavesNoServer(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "postmaster ") || strings.HasPrefix(sc.Text(), "error ") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	var pid, port int
	select {
	case line, ok := <-lines:
		if _, err := fmt.Sscanf(line, "postmaster %d %d", &pid, &port); !ok || err != nil {
			t.Fatalf("helper did not start a cluster: %q\n%s", line, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("helper did not start a cluster in time")
	}
	if !alive(pid) {
		t.Fatalf("postmaster %d not running before the kill", pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	began := time.Now()
	eventually(t, 10*time.Second, "postmaster exit after its owner was killed", func() bool { return !alive(pid) })
	t.Logf("postmaster gone %v after the owner was killed", time.Since(began).Round(time.Millisecond))
	eventually(t, 10*time.Second, "port closing", func() bool { return !reachable(port) })

	// The crash left a stale cluster.json and postmaster.pid; a new owner
	// must cope with both.
	c := start(t, Options{DataDir: dir, Ephemeral: true})
	if !c.Owned() {
		t.Fatal("new Start does not own the cluster")
	}
}

// alive reports whether pid runs. A zombie counts as dead: it has exited, and
// in a container nobody may ever reap it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may contain spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
