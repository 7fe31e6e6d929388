package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/deskbridge/deskbridge/store/storetest"
)

// The end-to-end tests run the real binary, built once with the race
// detector, as separate processes.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deskbridge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "deskbridge")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building deskbridge:", err)
		os.Exit(1)
	}
	code := storetest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type process struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
	url            string
}

var servingLine = regexp.MustCompile(`graphql=(http://\S+)/graphql`)

// serve starts `deskbridge serve` with env and waits until it listens.
func serve(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("serve stderr:\n%s", p.stderr.String())
		}
	})
	deadline := time.After(90 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("serve exited early: %s", p.stderr.String())
		case <-deadline:
			t.Fatalf("serve did not start: %s", p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.t.Fatal("serve did not stop on SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("serve exited %d after SIGTERM: %s", code, p.stderr.String())
	}
}

// ready waits (up to a generous deadline) for /readyz to answer 200:
// readiness (database, migrations, the LISTEN connection) may lag the
// "serving" log line by a moment, which is what /readyz is for.
func (p *process) ready() bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// run executes a short subcommand and returns its stdout.
func run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return strings.TrimSpace(stdout.String()), stderr.String(), code
}

func mustToken(t *testing.T, env []string, org, role string) string {
	t.Helper()
	out, errOut, code := run(t, env, "token", "create", "--org", org, "--role", role)
	if code != 0 || !strings.HasPrefix(out, "dbk_") {
		t.Fatalf("token create exited %d: %q %s", code, out, errOut)
	}
	return out
}

func viewerOrg(t *testing.T, url, token string) (string, error) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/graphql", strings.NewReader(`{"query":"{ viewer { org { slug } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Viewer struct{ Org struct{ Slug string } }
		}
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if len(body.Errors) > 0 {
		return "", fmt.Errorf("%s", body.Errors[0].Message)
	}
	return body.Data.Viewer.Org.Slug, nil
}

// dataDir is a folder the postgres OS user can reach (t.TempDir is 0700).
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "deskbridge-e2e-data-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func postmasterAlive(dir string) (pid int, alive bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "postgres", "pgdata", "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	if _, err := fmt.Sscan(line, &pid); err != nil {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

// The embedded default end to end: serve prints a working token, CLI
// commands work beside it and without it, data survives a restart, and
// stopping serve stops its PostgreSQL.
func TestEmbeddedDefault(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	env := []string{"DATABASE_URL=", "DESKBRIDGE_DATA_DIR=" + dir}

	first := serve(t, env, "--demo")
	demoToken := regexp.MustCompile(`Admin token:\s+(dbk_\S+)`).FindStringSubmatch(first.stdout.String())
	if demoToken == nil {
		t.Fatalf("serve --demo printed no token: %s", first.stdout.String())
	}
	if slug, err := viewerOrg(t, first.url, demoToken[1]); err != nil || slug != "demo" {
		t.Fatalf("viewer with the printed token: %q %v", slug, err)
	}
	// The demo org is connected to the in-process sandbox and syncing.
	if status := graphqlString(t, first.url, demoToken[1], `{ connections { status } }`, "connections", "0", "status"); status != "ACTIVE" {
		t.Fatalf("demo connection status %q, want ACTIVE", status)
	}
	// And its SalesIQ is linked, converting attended chats.
	if status := graphqlString(t, first.url, demoToken[1], `{ chatLink { status } }`, "chatLink", "status"); status != "ACTIVE" {
		t.Fatalf("demo chat link status %q, want ACTIVE", status)
	}
	// A CLI command while serve runs uses the same cluster.
	acme := mustToken(t, env, "acme", "admin")
	if slug, err := viewerOrg(t, first.url, acme); err != nil || slug != "acme" {
		t.Fatalf("token made beside serve: %q %v", slug, err)
	}
	pid, alive := postmasterAlive(dir)
	if !alive {
		t.Fatal("no postmaster while serve runs")
	}
	first.stop()
	waitGone(t, pid)

	// Without serve, the command starts the cluster for itself and stops it.
	globex := mustToken(t, env, "globex", "agent")
	if _, alive := postmasterAlive(dir); alive {
		t.Fatal("token create left PostgreSQL running")
	}
	if _, _, code := run(t, env, "migrate"); code != 0 {
		t.Fatal("migrate against the embedded default failed")
	}

	second := serve(t, env)
	for token, want := range map[string]string{acme: "acme", globex: "globex", demoToken[1]: "demo"} {
		if slug, err := viewerOrg(t, second.url, token); err != nil || slug != want {
			t.Fatalf("after restart, token of %s: %q %v", want, slug, err)
		}
	}
	second.stop()

	// The demo again on the same data: a new sandbox, so the demo org is
	// connected and linked anew (the earlier connection and link removed).
	third := serve(t, env, "--demo")
	token := regexp.MustCompile(`Admin token:\s+(dbk_\S+)`).FindStringSubmatch(third.stdout.String())
	if token == nil {
		t.Fatalf("serve --demo printed no token: %s", third.stdout.String())
	}
	if status := graphqlString(t, third.url, token[1], `{ chatLink { status } }`, "chatLink", "status"); status != "ACTIVE" {
		t.Fatalf("demo chat link after a second demo start: %q, want ACTIVE", status)
	}
	third.stop()
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("postgres %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A gateway killed with SIGKILL must not leave its PostgreSQL orphaned.
func TestKilledServeLeavesNoPostgres(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	p := serve(t, []string{"DATABASE_URL=", "DESKBRIDGE_DATA_DIR=" + dir})
	pid, alive := postmasterAlive(dir)
	if !alive {
		t.Fatal("no postmaster while serve runs")
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	waitGone(t, pid)
}

func TestMissingPostgresBinariesIsOneClearLine(t *testing.T) {
	t.Parallel()
	_, errOut, code := run(t, []string{"DATABASE_URL=", "DESKBRIDGE_DATA_DIR=" + dataDir(t), "DESKBRIDGE_PG_BIN=/nonexistent/bin", "PATH=/nonexistent"}, "migrate")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.Contains(last, "postgresql") || !strings.Contains(last, "DATABASE_URL") {
		t.Fatalf("exit %d, stderr:\n%s\nwant one line naming what to install or DATABASE_URL", code, errOut)
	}
}

// Two gateways starting at once on one empty database both come up, and
// every migration is applied exactly once.
func TestTwoServesShareOneDatabase(t *testing.T) {
	t.Parallel()
	dsn := storetest.EmptyURL(t)
	env := []string{"DATABASE_URL=" + dsn}
	var wg sync.WaitGroup
	procs := make([]*process, 2)
	for i := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); procs[i] = serve(t, env) }()
	}
	wg.Wait()
	for i, p := range procs {
		if p == nil || !p.ready() {
			t.Fatalf("serve %d not ready", i)
		}
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, distinct int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct {
		t.Fatalf("schema_migrations has %d rows for %d versions", rows, distinct)
	}
	// Both see the same data.
	token := mustToken(t, env, "acme", "admin")
	for _, p := range procs {
		if slug, err := viewerOrg(t, p.url, token); err != nil || slug != "acme" {
			t.Fatalf("%s: %q %v", p.url, slug, err)
		}
	}
}

func TestTokenCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + storetest.URL(t)}
	for _, args := range [][]string{
		{"token", "create", "--org", "Not A Slug", "--role", "admin"},
		{"token", "create", "--org", "acme", "--role", "owner"},
		{"token", "create", "--org", "acme"},
	} {
		out, errOut, code := run(t, env, args...)
		if code == 0 || out != "" || !strings.Contains(errOut, "--") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if out, _, code := run(t, nil, "version"); code != 0 || out == "" {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// The npm clients (graphql-ws, subscriptions-transport-ws, Apollo Client,
// graphql-http's audit) against a real gateway: node --test runs every
// test/js/*.test.mjs.
func TestNodeClients(t *testing.T) {
	t.Parallel()
	if os.Getenv("DESKBRIDGE_SKIP_NODE") == "1" {
		t.Skip("DESKBRIDGE_SKIP_NODE=1")
	}
	jsDir, err := filepath.Abs("../../test/js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules")); err != nil {
		t.Fatalf("test/js/node_modules is missing: run `make test` (or `npm ci` in test/js)")
	}
	env := []string{"DATABASE_URL=" + storetest.URL(t)}
	p := serve(t, env)
	admin := mustToken(t, env, "acme", "admin")
	agent := mustToken(t, env, "acme", "agent")
	other := mustToken(t, env, "globex", "admin")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "--test-concurrency=1")
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "DESKBRIDGE_URL="+p.url, "DESKBRIDGE_ADMIN_TOKEN="+admin,
		"DESKBRIDGE_AGENT_TOKEN="+agent, "DESKBRIDGE_OTHER_ADMIN_TOKEN="+other)
	out, err := cmd.CombinedOutput()
	summary := lastLines(out, 12)
	if err != nil {
		t.Fatalf("node --test failed: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", summary)
}

func lastLines(b []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// graphqlString runs a query and returns the string at path (map keys and
// list indexes), or "" when it is not there.
func graphqlString(t *testing.T, url, token, query string, path ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest("POST", url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Data any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	cur := out.Data
	for _, p := range path {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return ""
			}
			cur = x[i]
		default:
			return ""
		}
	}
	s, _ := cur.(string)
	return s
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func newRequest(url string, body []byte, token string) (*http.Request, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}
