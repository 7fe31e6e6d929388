package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// BenchmarkFirstSync measures SPEC B7's first sync end to end, as an admin
// gets it: the sandbox in its own process (its memory and CPU are not the
// gateway's), the gateway binary in another on a storetest PostgreSQL, the
// connection made over GraphQL with connectCrm, and the clock running from
// that mutation until every run of Connection.syncRuns is DONE. All
// modules, both directions, mapping and matching included, through the
// HTTP connectors. Every record of the world is created within the
// first-sync window, so the window keeps them all.
//
// It reports records/s (the runs' done counters summed, over wall time; a
// walk also meets the records the other direction creates meanwhile, and
// counts them), world-records/s (the records both sides held before, each
// the source of one run, over wall time: comparable however far the walks
// chased), wall-s, the gateway's peak RSS (VmHWM, read just before it
// stops) in MB, and the CPU seconds the gateway, the sandbox and
// PostgreSQL spent, so a slow run says where to look.
//
// The result is checked before it is reported: contacts and products on
// both sides must be what matching predicts (each matched record linked,
// each unmatched one created once, no email or product name twice), and
// nothing may fail but what the world makes fail: accounts sharing a name
// (already_linked), and CRM products the desk refuses without a department
// (B5; connectCrm starts the sync before one can be set).
//
// The gateway runs with its default settings; DESKBRIDGE_* variables in
// the environment reach it: `DESKBRIDGE_POLL_INTERVAL=1h make
// bench-firstsync` leaves out polling and the customer-360 mirror, which
// share its interval. The 100k world takes minutes: run it with -benchtime
// 1x (make bench-firstsync does).
func BenchmarkFirstSync(b *testing.B) {
	worlds := []struct {
		name                       string
		people, accounts, products int
	}{
		{"10k", 10_000, 2_000, 500},
		{"100k", 100_000, 20_000, 5_000},
	}
	for _, w := range worlds {
		b.Run(w.name, func(b *testing.B) {
			bin := benchBinary(b)
			var records, world, wall float64
			var used benchUsage
			b.ResetTimer()
			for range b.N {
				r := firstSyncOnce(b, bin, w.people, w.accounts, w.products)
				records += float64(r.records)
				world += float64(r.world)
				wall += r.wall.Seconds()
				used.add(r.benchUsage)
			}
			n := float64(b.N)
			b.ReportMetric(records/wall, "records/s")
			b.ReportMetric(records/n, "records")
			b.ReportMetric(world/wall, "world-records/s")
			b.ReportMetric(wall/n, "wall-s")
			used.report(b)
		})
	}
}

var (
	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
)

// benchBinary builds the gateway without the race detector (TestMain's
// binary has it, which would measure the detector): built once per process.
func benchBinary(b *testing.B) string {
	b.Helper()
	benchBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deskbridge-bench-bin-")
		if err != nil {
			benchBinErr = err
			return
		}
		benchBin = filepath.Join(dir, "deskbridge")
		out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput()
		if err != nil {
			benchBinErr = fmt.Errorf("building deskbridge: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	return benchBin
}

type firstSyncResult struct {
	records int64 // the runs' done counters, summed
	world   int64 // the records on both sides before, each a source of one run
	wall    time.Duration
	benchUsage
}

// benchWindow is how far back the world's records are created: inside the
// default first-sync window of 365 days, with room for the minutes between
// the sandbox's start and connectCrm.
const benchWindow = "8400h" // 350 days

// firstSyncOnce runs one first sync of a fresh world on a fresh database
// and checks it; only the sync itself is timed.
func firstSyncOnce(b *testing.B, bin string, people, accounts, products int) firstSyncResult {
	b.StopTimer()
	dir := b.TempDir()
	sb := startBenchSandbox(b, bin, dir, people, accounts, products)
	ep, cr := sb.sum.Endpoints["us"], sb.sum.Credentials
	ctx := context.Background()
	crmConn, deskConn := benchConnector(b, connector.CRM, ep, cr, "crm"), benchConnector(b, connector.Desk, ep, cr, "desk")

	// The world before connecting, through the vendors' own APIs.
	before := map[string][]connector.Record{}
	for _, m := range []struct {
		c connector.Connector
		m connector.Module
	}{{crmConn, "Contacts"}, {deskConn, "contacts"}, {crmConn, "Accounts"}, {deskConn, "accounts"}, {crmConn, "Products"}, {deskConn, "products"}} {
		before[string(m.m)] = listAll(b, ctx, m.c, m.m)
	}
	world := 0 // every record of the world is in the window: each is a source once
	for _, recs := range before {
		world += len(recs)
	}

	gw, admin, pg := startBenchGatewayOn(b, bin, dir, sb)
	crmRT := cr.RefreshTokens["us"]["crm"]
	orgs := benchGraphQL(b, gw.url, admin, `{ reachableCrmOrgs(crmSystem: ZOHO_CRM, dataCenter: US, credentials: {refreshToken: "`+crmRT+`"}) { id } }`, nil)
	orgList, _ := orgs["reachableCrmOrgs"].([]any)
	if len(orgList) == 0 {
		b.Fatalf("no reachable CRM org: %v", orgs)
	}
	orgID, _ := orgList[0].(map[string]any)["id"].(string)
	connect := `mutation { connectCrm(input: {crmSystem: ZOHO_CRM, crmDataCenter: US, crmOrgId: "` + orgID +
		`", crmCredentials: {refreshToken: "` + crmRT + `"}, deskDataCenter: US, deskOrgId: "` + ep.DeskOrgID +
		`", deskCredentials: {refreshToken: "` + cr.RefreshTokens["us"]["desk"] + `"}}) { id } }`

	meter := startBenchMeter(b, gw.cmd.Process.Pid, sb.cmd.Process.Pid, pg)
	b.StartTimer()
	start := time.Now()
	if data := benchGraphQL(b, gw.url, admin, connect, nil); data["connectCrm"] == nil {
		b.Fatalf("connectCrm failed: %v", data)
	}
	var runs []benchRun
	lastLog := start
	for {
		runs = benchRuns(b, gw.url, admin)
		if allDone(runs) {
			break
		}
		if time.Since(start) > 50*time.Minute {
			b.Fatalf("the first sync did not finish in 50 minutes: %+v", runs)
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			b.Logf("%s: %s", time.Since(start).Round(time.Second), summarize(runs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	b.StopTimer()
	res := firstSyncResult{world: int64(world), wall: wall, benchUsage: meter.usage(b)}
	for _, r := range runs {
		res.records += r.Done
	}
	b.Logf("%d people, %d accounts, %d products: %s", people, accounts, products, summarize(runs))
	logFailures(b, gw.url, admin)
	gw.stop(b)

	checkFirstSync(b, ctx, crmConn, deskConn, before, runs)
	return res
}

// checkFirstSync compares both sides after the sync with what matching
// predicts from the world before it, so a broken run cannot report numbers.
func checkFirstSync(b *testing.B, ctx context.Context, crmConn, deskConn connector.Connector, before map[string][]connector.Record, runs []benchRun) {
	b.Helper()
	failed := map[string]int64{}
	for _, r := range runs {
		failed[r.Module+" "+r.Direction] += r.Failed
	}
	// predicted counts the source records matching cannot pair with a
	// target record that existed before: those are created.
	predicted := func(src, tgtBefore []connector.Record, srcKey, tgtKey string, keyless bool) int {
		keys := map[string]bool{}
		for _, r := range tgtBefore {
			if k := recordKey(r, tgtKey); k != "" {
				keys[k] = true
			}
		}
		created := 0
		for _, r := range src {
			k := recordKey(r, srcKey)
			if (k == "" && keyless) || (k != "" && !keys[k]) {
				created++
			}
		}
		return created
	}
	check := func(what string, tgtBefore, tgtAfter []connector.Record, created int, tgtKey string) {
		b.Helper()
		if len(tgtAfter) != len(tgtBefore)+created {
			b.Errorf("%s: %d after the sync, want %d before + %d created", what, len(tgtAfter), len(tgtBefore), created)
		}
		seen := map[string]int{}
		for _, r := range tgtAfter {
			if k := recordKey(r, tgtKey); k != "" {
				if seen[k]++; seen[k] == 2 {
					b.Errorf("%s: %q is there twice", what, k)
				}
			}
		}
	}
	crmContacts, deskContacts := listAll(b, ctx, crmConn, "Contacts"), listAll(b, ctx, deskConn, "contacts")
	crmProducts, deskProducts := listAll(b, ctx, crmConn, "Products"), listAll(b, ctx, deskConn, "products")
	// Contacts without an email are created, never matched (B8).
	check("desk contacts", before["contacts"], deskContacts, predicted(before["Contacts"], before["contacts"], "Email", "email", true), "email")
	check("CRM contacts", before["Contacts"], crmContacts, predicted(before["contacts"], before["Contacts"], "email", "Email", true), "Email")
	check("CRM products", before["Products"], crmProducts, predicted(before["products"], before["Products"], "productName", "Product_Name", false), "Product_Name")
	// No desk department is set for products (B5): they go to the portal's
	// default department.
	check("desk products", before["products"], deskProducts, predicted(before["Products"], before["products"], "Product_Name", "productName", false), "productName")
	// Accounts may fail: the world has companies sharing a name, and a
	// name matches one of them only (already_linked, duplicate).
	for _, k := range []string{"CONTACTS CRM_TO_DESK", "CONTACTS DESK_TO_CRM", "PRODUCTS DESK_TO_CRM", "PRODUCTS CRM_TO_DESK"} {
		if failed[k] != 0 {
			b.Errorf("%s failed %d records", k, failed[k])
		}
	}
}

func recordKey(r connector.Record, field string) string {
	s, _ := r.Fields[field].(string)
	return strings.ToLower(strings.TrimSpace(s))
}

type benchSandbox struct {
	cmd *exec.Cmd
	sum sandbox.Summary
}

func startBenchSandbox(b *testing.B, bin, dir string, people, accounts, products int) benchSandbox {
	b.Helper()
	summaryPath := filepath.Join(dir, "sandbox.json")
	log, err := os.Create(filepath.Join(dir, "sandbox.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "sandbox", "-people", strconv.Itoa(people), "-accounts", strconv.Itoa(accounts),
		"-products", strconv.Itoa(products), "-dcs", "us", "-created-within", benchWindow, "-json", summaryPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); log.Close() })
	var sum sandbox.Summary
	deadline := time.Now().Add(2 * time.Minute)
	for {
		raw, err := os.ReadFile(summaryPath)
		if err == nil && json.Unmarshal(raw, &sum) == nil && sum.Endpoints["us"].APIDomain != "" {
			return benchSandbox{cmd: cmd, sum: sum}
		}
		if time.Now().After(deadline) {
			b.Fatal("the sandbox never wrote its summary")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func benchConnector(b *testing.B, sys connector.System, ep sandbox.DCEndpoints, cr sandbox.Credentials, product string) connector.Connector {
	b.Helper()
	c, err := zoho.Factory(sys)(zoho.Settings{System: sys, DC: "us", AccountsURL: ep.AccountsURL, APIDomain: ep.APIDomain,
		DeskURL: ep.DeskURL, DeskOrgID: ep.DeskOrgID, ClientID: cr.ClientID, ClientSecret: cr.ClientSecret,
		RefreshToken: cr.RefreshTokens["us"][product]})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func listAll(b *testing.B, ctx context.Context, c connector.Connector, m connector.Module) []connector.Record {
	b.Helper()
	var out []connector.Record
	cur := c.StartAt(m, time.Time{})
	for {
		page, err := c.ListChanged(ctx, m, cur, 200)
		if err != nil {
			b.Fatalf("listing %s: %v", m, err)
		}
		out = append(out, page.Records...)
		cur = page.Next
		if page.Done {
			return out
		}
	}
}

type benchGateway struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	url     string
	logPath string
}

// startBenchGatewayOn starts the gateway on a fresh storetest database,
// against the sandbox's "us" data center, with extraEnv added to its
// environment. It returns the gateway, an admin token, and the pid of the
// PostgreSQL server (for clusterCPU).
func startBenchGatewayOn(b *testing.B, bin, dir string, sb benchSandbox, extraEnv ...string) (*benchGateway, string, int) {
	b.Helper()
	ep, cr := sb.sum.Endpoints["us"], sb.sum.Credentials
	endpoints, _ := json.Marshal(map[string]map[string]string{"us": {"accounts": ep.AccountsURL, "api": ep.APIDomain, "desk": ep.DeskURL, "salesiq": ep.SalesIQURL}})
	endpointsPath := filepath.Join(dir, "endpoints.json")
	if err := os.WriteFile(endpointsPath, endpoints, 0o600); err != nil {
		b.Fatal(err)
	}
	dsn := storetest.URL(b)
	env := append([]string{"DATABASE_URL=" + dsn, "DESKBRIDGE_ZOHO_CLIENT_ID=" + cr.ClientID,
		"DESKBRIDGE_ZOHO_CLIENT_SECRET=" + cr.ClientSecret, "DESKBRIDGE_ZOHO_ENDPOINTS=" + endpointsPath,
		"DESKBRIDGE_SECRET_KEY=" + hex.EncodeToString(make([]byte, 32))}, extraEnv...)
	gw := startBenchGateway(b, bin, dir, env)
	return gw, benchToken(b, bin, env), postmasterOf(b, dsn)
}

// startBenchGateway starts `deskbridge serve` with its log in a file (a
// long sync logs more than a test buffer should hold) and waits until it
// listens.
func startBenchGateway(b *testing.B, bin, dir string, env []string) *benchGateway {
	b.Helper()
	g := &benchGateway{exited: make(chan struct{}), logPath: filepath.Join(dir, "gateway.log")}
	log, err := os.Create(g.logPath)
	if err != nil {
		b.Fatal(err)
	}
	g.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stdout, g.cmd.Stderr = log, log
	if err := g.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); log.Close(); close(g.exited) }()
	b.Cleanup(func() {
		_ = g.cmd.Process.Kill()
		<-g.exited
		if b.Failed() {
			b.Logf("gateway log (last lines):\n%s", tailFile(g.logPath, 40))
		}
	})
	deadline := time.After(90 * time.Second)
	for {
		raw, _ := os.ReadFile(g.logPath)
		if m := servingLine.FindSubmatch(raw); m != nil {
			g.url = string(m[1])
			return g
		}
		select {
		case <-g.exited:
			b.Fatalf("serve exited early:\n%s", raw)
		case <-deadline:
			b.Fatalf("serve did not start:\n%s", raw)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (g *benchGateway) stop(b *testing.B) {
	b.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(60 * time.Second):
		b.Fatal("serve did not stop on SIGTERM")
	}
}

func tailFile(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func benchToken(b *testing.B, bin string, env []string) string {
	b.Helper()
	cmd := exec.Command(bin, "token", "create", "--org", "acme", "--role", "admin")
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.HasPrefix(stdout.String(), "dbk_") {
		b.Fatalf("token create: %v %s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// benchGraphQL runs a query with its variables (nil for none) and returns
// its data, failing on errors.
func benchGraphQL(b *testing.B, url, token, query string, vars map[string]any) map[string]any {
	b.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		b.Fatal(err)
	}
	if len(out.Errors) > 0 {
		b.Fatalf("%s: %+v", query, out.Errors)
	}
	return out.Data
}

type benchRun struct {
	Module, Direction, Status                     string
	Total, Enqueued, Done, Added, Updated, Failed int64
}

func benchRuns(b *testing.B, url, token string) []benchRun {
	b.Helper()
	data := benchGraphQL(b, url, token, `{ connections { syncRuns { module direction status total enqueued done added updated failed } } }`, nil)
	raw, _ := json.Marshal(data["connections"])
	var conns []struct{ SyncRuns []benchRun }
	if err := json.Unmarshal(raw, &conns); err != nil {
		b.Fatal(err)
	}
	if len(conns) == 0 {
		return nil
	}
	return conns[0].SyncRuns
}

func allDone(runs []benchRun) bool {
	for _, r := range runs {
		if r.Status != "DONE" {
			return false
		}
	}
	return len(runs) > 0
}

func summarize(runs []benchRun) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s/%s %s done %d/%d (+%d ~%d !%d)", r.Module, r.Direction, r.Status,
			r.Done, r.Enqueued, r.Added, r.Updated, r.Failed))
	}
	return strings.Join(parts, "; ")
}

// logFailures logs a few of the sync's failures by reason, to tell a
// broken run from an expected refusal (duplicate account names).
func logFailures(b *testing.B, url, token string) {
	b.Helper()
	data := benchGraphQL(b, url, token, `{ connections { syncFailures(first: 200) { edges { node { module direction reason message } } } } }`, nil)
	raw, _ := json.Marshal(data["connections"])
	var conns []struct {
		SyncFailures struct {
			Edges []struct {
				Node struct{ Module, Direction, Reason, Message string }
			}
		}
	}
	if err := json.Unmarshal(raw, &conns); err != nil || len(conns) == 0 {
		return
	}
	byReason := map[string]int{}
	example := map[string]string{}
	for _, e := range conns[0].SyncFailures.Edges {
		k := e.Node.Module + " " + e.Node.Direction + " " + e.Node.Reason
		byReason[k]++
		example[k] = e.Node.Message
	}
	for k, n := range byReason {
		b.Logf("failures (of the first 200): %s x%d, e.g. %s", k, n, example[k])
	}
}

// benchUsage is what a measured stretch cost: the gateway's peak RSS
// (VmHWM) and the CPU time of the gateway, the sandbox and PostgreSQL.
type benchUsage struct {
	peakRSS     int64 // bytes
	gatewayCPU  time.Duration
	sandboxCPU  time.Duration
	postgresCPU time.Duration // the whole cluster's, other tests' databases included
}

// add sums the CPU times of o into u and keeps the higher peak.
func (u *benchUsage) add(o benchUsage) {
	u.peakRSS = max(u.peakRSS, o.peakRSS)
	u.gatewayCPU += o.gatewayCPU
	u.sandboxCPU += o.sandboxCPU
	u.postgresCPU += o.postgresCPU
}

// report reports u, summed over b.N iterations, as per-iteration metrics.
func (u benchUsage) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(u.peakRSS)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(u.gatewayCPU.Seconds()/n, "gateway-cpu-s")
	b.ReportMetric(u.sandboxCPU.Seconds()/n, "sandbox-cpu-s")
	b.ReportMetric(u.postgresCPU.Seconds()/n, "postgres-cpu-s")
}

// benchMeter measures a benchUsage from when it starts.
type benchMeter struct {
	gateway, sandbox, postmaster int        // pids
	start                        benchUsage // CPU times at the start
}

func startBenchMeter(b *testing.B, gateway, sandbox, postmaster int) benchMeter {
	b.Helper()
	return benchMeter{gateway: gateway, sandbox: sandbox, postmaster: postmaster, start: benchUsage{
		gatewayCPU: procCPU(b, gateway), sandboxCPU: procCPU(b, sandbox), postgresCPU: clusterCPU(b, postmaster)}}
}

// usage is what was used since the start; the peak is the gateway's
// VmHWM (since it started, or since resetHWM).
func (m benchMeter) usage(b *testing.B) benchUsage {
	b.Helper()
	return benchUsage{peakRSS: procHWM(b, m.gateway), gatewayCPU: procCPU(b, m.gateway) - m.start.gatewayCPU,
		sandboxCPU: procCPU(b, m.sandbox) - m.start.sandboxCPU, postgresCPU: clusterCPU(b, m.postmaster) - m.start.postgresCPU}
}

// resetHWM resets a process's peak RSS (VmHWM), so the peak read later
// is what came after, not the start-up's.
func resetHWM(b *testing.B, pid int) {
	b.Helper()
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v); it includes the start-up", err)
	}
}

// procHWM is a process's peak resident set size (VmHWM), in bytes.
func procHWM(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// procCPU is the user and system time a process has used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	fields, err := procStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	return ticks(fields[11]) + ticks(fields[12]) // utime, stime: fields 14 and 15 of the file
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (field 3 of the file is the first).
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name may hold spaces; the fields after it are plain.
	s := string(raw)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:]), nil
}

func ticks(field string) time.Duration {
	n, _ := strconv.ParseInt(field, 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(n) * time.Second / hz
}

// postmasterOf finds the PostgreSQL server behind dsn: the parent of the
// backend serving a connection.
func postmasterOf(b *testing.B, dsn string) int {
	b.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var backend int
	if err := db.QueryRow(`SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	fields, err := procStat(backend)
	if err != nil {
		b.Fatal(err)
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// clusterCPU is the CPU time of a PostgreSQL server so far: its own, its
// finished children's (reaped into cutime and cstime) and its live ones'.
func clusterCPU(b *testing.B, postmaster int) time.Duration {
	b.Helper()
	fields, err := procStat(postmaster)
	if err != nil {
		b.Fatal(err)
	}
	total := ticks(fields[11]) + ticks(fields[12]) + ticks(fields[13]) + ticks(fields[14])
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", postmaster, postmaster))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range strings.Fields(string(raw)) {
		pid, _ := strconv.Atoi(c)
		if f, err := procStat(pid); err == nil {
			total += ticks(f[11]) + ticks(f[12])
		}
	}
	return total
}
