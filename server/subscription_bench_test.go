//go:build linux

// The fanout benchmark reads server memory from /proc and raises
// RLIMIT_NOFILE, both Linux-specific; the gateway's deployments are Linux.

package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// Issue 6 item 10: ticket events fanned out to many WebSocket subscribers,
// measured against a bare gorilla/websocket broadcast on the same machine.
//
// The event type the writer produces and the clients subscribe to, with
// the permission it carries and the role of the clients' tokens (which must
// have that permission). TOKEN_CREATED stands in for ticket events until
// their type lands; change these three together.
const (
	fanoutEventType       = auth.EventTokenCreated
	fanoutEventPermission = auth.PermManageTokens
	fanoutClientRole      = auth.RoleAdmin
)

// fanoutSubscription is what each client runs: the org's events of one type
// after a known position (see fanoutRun.connect for why after is given).
const fanoutSubscription = `subscription($after: ID, $types: [EventType!]) {
  events(after: $after, types: $types) { id type occurredAt subjectId payload }
}`

// fanoutConfig sizes a run. The defaults are the issue's: 5,000 clients in
// 50 orgs of 100, 1,000 events/s round-robin over the orgs for 10 s, so
// each event reaches 100 clients: 100,000 deliveries/s, 1M in all. Every
// size can be changed through DESKBRIDGE_FANOUT_* variables, to develop
// with a small run (e.g. CLIENTS=200 ORGS=10 RATE=200 DURATION=3s).
type fanoutConfig struct {
	clients, orgs, rate, writers int
	duration                     time.Duration
	// profileDir, when set, receives each server's CPU profile over the
	// stream and its heap profile once every client has subscribed and
	// again after the stream.
	profileDir string
}

func fanoutConfigFromEnv(tb testing.TB) fanoutConfig {
	tb.Helper()
	c := fanoutConfig{clients: 5000, orgs: 50, rate: 1000, writers: 8, duration: 10 * time.Second,
		profileDir: os.Getenv("DESKBRIDGE_FANOUT_PROFILE")}
	for name, p := range map[string]*int{"CLIENTS": &c.clients, "ORGS": &c.orgs, "RATE": &c.rate, "WRITERS": &c.writers} {
		if v := os.Getenv("DESKBRIDGE_FANOUT_" + name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				tb.Fatalf("DESKBRIDGE_FANOUT_%s=%q: want a positive number", name, v)
			}
			*p = n
		}
	}
	if v := os.Getenv("DESKBRIDGE_FANOUT_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			tb.Fatalf("DESKBRIDGE_FANOUT_DURATION=%q: want a duration such as 10s", v)
		}
		c.duration = d
	}
	if c.orgs > c.clients {
		tb.Fatalf("%d orgs for %d clients: every org needs a client", c.orgs, c.clients)
	}
	return c
}

// events is how many events a run writes; event seq goes to org seq % orgs.
func (c fanoutConfig) events() int { return int(float64(c.rate) * c.duration.Seconds()) }

// expected is how many events the clients of org o must each receive.
func (c fanoutConfig) expected(o int) int {
	n := c.events() / c.orgs
	if o < c.events()%c.orgs {
		n++
	}
	return n
}

// fanoutPayload is the event payload: the event's number and the time it
// was written (µs since the epoch: the gateway decodes JSON numbers to
// float64, exact below 2^53, which µs are and ns are not), plus ticket-like
// fields so the frame has a realistic size.
type fanoutPayload struct {
	Seq      int    `json:"seq"`
	Sent     int64  `json:"sent"`
	TicketID string `json:"ticketId"`
	Status   string `json:"status"`
	Subject  string `json:"subject"`
}

func newFanoutPayload(seq int, sent time.Time) fanoutPayload {
	return fanoutPayload{Seq: seq, Sent: sent.UnixMicro(), TicketID: "t-" + strconv.Itoa(100000+seq),
		Status: "Open", Subject: "Cannot sync invoices since the last update"}
}

// BenchmarkSubscriptionFanout (issue 6 item 10) streams ticket events to
// 5,000 WebSocket clients and measures, on this machine:
//
//   - gateway: the real thing. A writer commits 1,000 events/s, one per
//     transaction through store.InsertEvent (advisory lock, outbox row,
//     NOTIFY), round-robin over 50 orgs; 100 clients per org each hold one
//     graphql-transport-ws subscription, authenticated with a Bearer token
//     in connection_init. Latency runs from the writer's clock just before
//     InsertEvent (carried in the payload, so it includes the commit) to
//     the client's receipt of the "next" message.
//   - bare: the ceiling. A gorilla/websocket server with no GraphQL and no
//     database: an in-process hub that generates the same events at the
//     same rate and writes a frame shaped like the gateway's (one encoding
//     per event, gorilla's PreparedMessage) to the same number of clients,
//     spread the same way, with the same client code.
//
// Each server runs in a child process (this test binary re-executed as
// TestSubscriptionFanoutChild), and the clients and the writer in this one,
// so the server's memory is its own: kb/conn is the child's RSS after every
// client subscribed minus before any connected, over the clients;
// live-kb/conn is the same for Go heap plus goroutine stacks after a GC.
// All processes (and PostgreSQL) share the machine's cores, as the anchors
// in the GraphQL notes did; server-, client- and db-cores say who used them.
//
// Every client must receive exactly the events of its org, once each;
// otherwise the benchmark fails. The gateway's line also reports the bare
// server's numbers and the ratios gateway/bare of throughput and p99.
//
// It is heavy (10,000 sockets, 1M deliveries per server): run it alone,
// once (make bench-fanout, or -benchtime 1x).
func BenchmarkSubscriptionFanout(b *testing.B) {
	cfg := fanoutConfigFromEnv(b)
	// This process holds a socket per client (the servers are children
	// and hold theirs), plus the database pool and the children's pipes.
	raiseFileLimit(b, uint64(cfg.clients)+1024)
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	dsn := storetest.URL(b)
	db := sqlx.MustConnect("postgres", dsn)
	defer db.Close()
	// Every writer keeps its connection: with database/sql's default of two
	// idle connections, the others would reconnect for each event.
	db.SetMaxOpenConns(cfg.writers + 2)
	db.SetMaxIdleConns(cfg.writers + 2)
	clock := newCPUClock(db)

	var bare fanoutResult
	b.Run("bare", func(b *testing.B) {
		for range b.N {
			bare.add(runFanout(b, cfg, "bare", nil, "", clock))
		}
		bare.report(b, "")
	})
	b.Run("gateway", func(b *testing.B) {
		var r fanoutResult
		for range b.N {
			r.add(runFanout(b, cfg, "gateway", db, dsn, clock))
		}
		r.report(b, "")
		if bare.deliveries > 0 && r.deliveries > 0 {
			b.ReportMetric(bare.perSecond(), "bare-deliveries/s")
			b.ReportMetric(bare.percentile(50), "bare-p50-ms")
			b.ReportMetric(bare.percentile(99), "bare-p99-ms")
			b.ReportMetric(bare.kbPerConn(), "bare-kb/conn")
			b.ReportMetric(r.perSecond()/bare.perSecond(), "ratio-throughput")
			b.ReportMetric(r.percentile(99)/bare.percentile(99), "ratio-p99")
		}
	})
}

// raiseFileLimit makes sure this process (and the children it starts) may
// hold want file descriptors.
func raiseFileLimit(tb testing.TB, want uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		tb.Fatalf("RLIMIT_NOFILE hard limit is %d, the benchmark needs %d: raise it (ulimit -Hn) or lower DESKBRIDGE_FANOUT_CLIENTS", lim.Max, want)
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
}

// fanoutResult is what one or more runs of one server measured.
type fanoutResult struct {
	clients    int
	deliveries int
	window     time.Duration // first event written to last delivery received
	latencies  []int64       // µs, sorted by report
	memRSS     int64         // bytes the server grew by for its clients
	memLive    int64         // heap + stacks after GC, ditto
	goroutines int           // the server's goroutines for its clients
	events     int
	writeTime  time.Duration // first event to last commit (gateway) or send (bare)
	commits    []int64       // µs from the payload's clock to Commit's return (gateway)
	serverCPU  time.Duration
	clientCPU  time.Duration // this process: clients and writer
	dbCPU      time.Duration
	otherCPU   time.Duration // everything else the machine ran meanwhile
	runs       int
}

func (r *fanoutResult) add(o fanoutResult) {
	r.clients = o.clients
	r.deliveries += o.deliveries
	r.window += o.window
	r.latencies = append(r.latencies, o.latencies...)
	r.memRSS += o.memRSS
	r.memLive += o.memLive
	r.goroutines += o.goroutines
	r.events += o.events
	r.writeTime += o.writeTime
	r.commits = append(r.commits, o.commits...)
	r.serverCPU += o.serverCPU
	r.clientCPU += o.clientCPU
	r.dbCPU += o.dbCPU
	r.otherCPU += o.otherCPU
	r.runs++
}

func (r *fanoutResult) perSecond() float64 { return float64(r.deliveries) / r.window.Seconds() }

func (r *fanoutResult) kbPerConn() float64 {
	return float64(r.memRSS) / float64(r.runs) / float64(r.clients) / 1024
}

func (r *fanoutResult) percentile(p float64) float64 { return percentileMs(r.latencies, p) }

// percentileMs returns the p-th percentile of µs values in ms, sorting them.
func percentileMs(us []int64, p float64) float64 {
	if len(us) == 0 {
		return 0
	}
	slices.Sort(us)
	i := min(len(us)-1, int(float64(len(us))*p/100))
	return float64(us[i]) / 1000
}

func (r *fanoutResult) report(b *testing.B, prefix string) {
	if r.runs == 0 || r.deliveries == 0 {
		return
	}
	runs := float64(r.runs)
	b.ReportMetric(r.perSecond(), prefix+"deliveries/s")
	b.ReportMetric(r.percentile(50), prefix+"p50-ms")
	b.ReportMetric(r.percentile(99), prefix+"p99-ms")
	b.ReportMetric(r.percentile(100), prefix+"max-ms")
	b.ReportMetric(r.kbPerConn(), prefix+"kb/conn")
	b.ReportMetric(float64(r.memLive)/runs/float64(r.clients)/1024, prefix+"live-kb/conn")
	b.ReportMetric(float64(r.goroutines)/runs/float64(r.clients), prefix+"goroutines/conn")
	b.ReportMetric(float64(r.events)/r.writeTime.Seconds(), prefix+"events/s")
	if len(r.commits) > 0 {
		b.ReportMetric(percentileMs(r.commits, 99), prefix+"commit-p99-ms")
	}
	// CPU over the delivery window, in cores (the machine has 2), and the
	// server's CPU per delivery: what a delivery costs, however loaded.
	b.ReportMetric(r.serverCPU.Seconds()/r.window.Seconds(), prefix+"server-cores")
	b.ReportMetric(r.clientCPU.Seconds()/r.window.Seconds(), prefix+"client-cores")
	b.ReportMetric(r.dbCPU.Seconds()/r.window.Seconds(), prefix+"db-cores")
	b.ReportMetric(r.otherCPU.Seconds()/r.window.Seconds(), prefix+"other-cores")
	b.ReportMetric(float64(r.serverCPU.Microseconds())/float64(r.deliveries), prefix+"server-us/delivery")
}

// runFanout is one measured run against a fresh server of the given mode:
// start it, connect and subscribe every client, read its memory, stream
// the events, check every client's events, stop it. db and dsn are the
// benchmark's database (gateway mode only).
func runFanout(b *testing.B, cfg fanoutConfig, mode string, db *sqlx.DB, dsn string, clock cpuClock) fanoutResult {
	b.StopTimer()
	ctx := context.Background()
	run := &fanoutRun{cfg: cfg, mode: mode}
	var env []string
	if mode == "gateway" {
		// Each run gets its own orgs, so counts never mix across runs.
		run.tokens, run.orgIDs = fanoutOrgs(b, db, cfg.orgs)
		if err := db.Get(&run.after, `SELECT COALESCE(max(id), 0) FROM events`); err != nil {
			b.Fatal(err)
		}
		env = append(env, "DESKBRIDGE_FANOUT_DSN="+dsn)
	}
	child := startFanoutChild(b, mode, env)
	before := child.mem(b)

	start := time.Now()
	run.connect(b, child.wsURL)
	child.waitSubscribed(b, cfg.clients)
	time.Sleep(time.Second) // let connection setup's garbage and goroutines settle
	after := child.mem(b)
	perConn := func(after, before int64) float64 { return float64(after-before) / float64(cfg.clients) / 1024 }
	b.Logf("%s: %d clients connected and subscribed in %s; server RSS %d → %d MB, heap %d → %d MB, stacks %d → %d MB, goroutines %d → %d; "+
		"per connection: RSS %.1f KB; after a GC, heap %.1f KB and stacks %.1f KB",
		mode, cfg.clients, time.Since(start).Round(time.Millisecond), before.RSS>>20, after.RSS>>20, before.Heap>>20, after.Heap>>20,
		before.Stack>>20, after.Stack>>20, before.Goroutines, after.Goroutines,
		perConn(after.RSS, before.RSS), perConn(after.Heap, before.Heap), perConn(after.Stack, before.Stack))
	if cfg.profileDir != "" {
		child.saveProfile(b, "heap", filepath.Join(cfg.profileDir, mode+"-heap.pprof"))
	}

	// The stream.
	var profile sync.WaitGroup
	if cfg.profileDir != "" {
		profile.Go(func() {
			secs := max(1, int(cfg.duration.Seconds()))
			child.saveProfile(b, "profile?seconds="+strconv.Itoa(secs), filepath.Join(cfg.profileDir, mode+"-cpu.pprof"))
		})
	}
	all0, db0 := clock.now()
	srv0, machine0 := pidCPU(child.cmd.Process.Pid), machineCPU()
	b.StartTimer()
	streamStart := time.Now()
	var w fanoutWrite
	switch mode {
	case "gateway":
		w = writeFanoutEvents(ctx, db, run.orgIDs, cfg)
	case "bare":
		w = child.bareRun(b, cfg)
	}
	run.waitDelivered(b)
	b.StopTimer()
	all1, db1 := clock.now()
	srv1, machine1 := pidCPU(child.cmd.Process.Pid), machineCPU()
	profile.Wait()
	if cfg.profileDir != "" {
		// Its alloc_space minus the first heap profile's is what the stream
		// allocated (go tool pprof -sample_index=alloc_space -diff_base).
		child.saveProfile(b, "heap", filepath.Join(cfg.profileDir, mode+"-heap-after.pprof"))
	}

	res := run.close(b)
	child.stop(b)
	res.memRSS, res.memLive = after.RSS-before.RSS, after.Live-before.Live
	res.goroutines = after.Goroutines - before.Goroutines
	res.events, res.writeTime, res.commits = w.events, w.end.Sub(streamStart), w.commits
	res.window = res.lastReceipt.Sub(streamStart)
	res.serverCPU, res.dbCPU = srv1-srv0, db1-db0
	res.clientCPU = (all1 - all0) - res.dbCPU
	res.otherCPU = max(0, (machine1-machine0)-res.serverCPU-res.clientCPU-res.dbCPU)
	// The headline numbers, also for a run that fails (a failed benchmark
	// prints no metrics).
	b.Logf("%s: %d deliveries in %s = %.0f/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d events in %s",
		mode, res.deliveries, res.window.Round(time.Millisecond), res.perSecond(), percentileMs(res.latencies, 50),
		percentileMs(res.latencies, 99), percentileMs(res.latencies, 100), res.events, res.writeTime.Round(time.Millisecond))
	if w.err != nil {
		b.Errorf("%s: writing the events: %v", mode, w.err)
	}
	if w.events != cfg.events() {
		b.Errorf("%s: %d events written, want %d", mode, w.events, cfg.events())
	}
	return res.fanoutResult
}

// fanoutOrgs creates n orgs with one token each, of a role that may see the
// benchmark's events. Tokens are shared by an org's clients: a widget
// deployment embeds one.
func fanoutOrgs(tb testing.TB, db *sqlx.DB, n int) (tokens []string, orgIDs []int64) {
	tb.Helper()
	ctx := context.Background()
	prefix := "fanout-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	for i := range n {
		org, _, err := store.EnsureOrg(ctx, db, prefix+strconv.Itoa(i), "Fanout "+strconv.Itoa(i))
		if err != nil {
			tb.Fatal(err)
		}
		issued, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "widget", Name: "fanout", Role: fanoutClientRole})
		if err != nil {
			tb.Fatal(err)
		}
		tokens, orgIDs = append(tokens, issued.Secret), append(orgIDs, org.ID)
	}
	return tokens, orgIDs
}

// fanoutWrite is what the event source did.
type fanoutWrite struct {
	events  int
	end     time.Time // last commit (gateway) or send (bare)
	commits []int64   // µs, gateway only
	err     error
}

// writeFanoutEvents commits cfg.events() events at cfg.rate per second,
// each in its own transaction, from cfg.writers concurrent writers (one
// would cap the rate at one commit round trip per event). Event seq is due
// at start + seq/rate; a writer that falls behind writes it late, and the
// achieved rate is reported as events/s.
func writeFanoutEvents(ctx context.Context, db *sqlx.DB, orgIDs []int64, cfg fanoutConfig) fanoutWrite {
	total := cfg.events()
	due := make(chan int, total)
	start := time.Now()
	go func() {
		defer close(due)
		for seq := range total {
			if d := time.Until(start.Add(time.Duration(float64(seq) * float64(time.Second) / float64(cfg.rate)))); d > 0 {
				time.Sleep(d)
			}
			due <- seq
		}
	}()
	var (
		mu      sync.Mutex
		out     fanoutWrite
		writers sync.WaitGroup
	)
	for range cfg.writers {
		writers.Go(func() {
			var commits []int64
			var last time.Time
			var failed error
			for seq := range due {
				if failed != nil {
					continue
				}
				subject := "Ticket:" + strconv.Itoa(100000+seq)
				err := func() error {
					tx, err := db.BeginTxx(ctx, nil)
					if err != nil {
						return err
					}
					defer func() { _ = tx.Rollback() }()
					sent := time.Now()
					if _, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: orgIDs[seq%len(orgIDs)], Type: fanoutEventType,
						Permission: string(fanoutEventPermission), SubjectID: &subject, Payload: newFanoutPayload(seq, sent)}); err != nil {
						return err
					}
					if err := tx.Commit(); err != nil {
						return err
					}
					last = time.Now()
					commits = append(commits, last.Sub(sent).Microseconds())
					return nil
				}()
				if err != nil {
					failed = fmt.Errorf("event %d: %w", seq, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.events += len(commits)
			out.commits = append(out.commits, commits...)
			if last.After(out.end) {
				out.end = last
			}
			if failed != nil && out.err == nil {
				out.err = failed
			}
		})
	}
	writers.Wait()
	return out
}

// fanoutRun is the client side of one run.
type fanoutRun struct {
	cfg     fanoutConfig
	mode    string
	tokens  []string // by org (gateway)
	orgIDs  []int64  // by org (gateway)
	after   int64    // the stream's head before the run (gateway)
	clients []*fanoutClient
	readers sync.WaitGroup
	got     atomic.Int64 // deliveries so far, all clients
	ended   atomic.Int64 // clients whose connection ended
}

// fanoutClient is one subscriber. Its reader goroutine owns every field
// but conn until the reader ends.
type fanoutClient struct {
	org       int
	conn      *websocket.Conn
	seen      []bool  // by seq / orgs
	got       int     // distinct events received
	latencies []int64 // µs, one per event
	last      time.Time
	sample    []byte // the first event frame, logged to compare the servers' frames
	problem   string // the first thing that went wrong, if any
	end       error  // why the connection ended
}

type fanoutRunResult struct {
	fanoutResult
	lastReceipt time.Time
}

// connect dials every client, 64 at a time (a burst of 5,000 SYNs would
// overflow the listen backlog), and subscribes it. Each client is org
// i % orgs. Gateway clients subscribe after the stream's head as it was
// before the run: a subscription is live once the server has registered it,
// which the protocol does not acknowledge, and with a position nothing can
// be missed; the benchmark still waits for every registration before
// writing, so no event is served from the catch-up path.
func (r *fanoutRun) connect(tb testing.TB, wsURL string) {
	tb.Helper()
	r.clients = make([]*fanoutClient, r.cfg.clients)
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: 4096, WriteBufferSize: 1024}
	next := atomic.Int64{}
	errs := make(chan error, 64)
	var dialers sync.WaitGroup
	for range 64 {
		dialers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= r.cfg.clients {
					return
				}
				c := &fanoutClient{org: i % r.cfg.orgs}
				c.seen = make([]bool, r.cfg.expected(c.org))
				c.latencies = make([]int64, 0, len(c.seen))
				if err := r.handshake(&dialer, wsURL, c); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				r.clients[i] = c
				r.readers.Go(func() { r.read(c) })
			}
		})
	}
	dialers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}

func (r *fanoutRun) handshake(dialer *websocket.Dialer, wsURL string, c *fanoutClient) error {
	u := wsURL
	initPayload := map[string]any{}
	if r.mode == "gateway" {
		initPayload["Authorization"] = "Bearer " + r.tokens[c.org]
	} else {
		u += "?org=" + strconv.Itoa(c.org) // the bare server has no auth: the org comes with the URL
	}
	conn, resp, err := dialer.Dial(u, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	resp.Body.Close()
	c.conn = conn
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.WriteJSON(map[string]any{"type": "connection_init", "payload": initPayload}); err != nil {
		return err
	}
	var ack struct{ Type string }
	if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		return fmt.Errorf("connection_init answered %q, %v", ack.Type, err)
	}
	vars := map[string]any{"after": strconv.FormatInt(r.after, 10), "types": []string{fanoutEventType}}
	if err := conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": fanoutSubscription, "variables": vars}}); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return nil
}

// read receives until the connection ends, checking each event: the right
// org, not seen before. It parses only the two numbers it needs, by hand,
// so the clients cost this process (which shares the cores) little.
func (r *fanoutRun) read(c *fanoutClient) {
	defer r.ended.Add(1)
	var buf bytes.Buffer
	for {
		_, msg, err := c.conn.NextReader()
		if err != nil {
			c.end = err
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(msg); err != nil {
			c.end = err
			return
		}
		now := time.Now()
		frame := buf.Bytes()
		if !bytes.Contains(frame, []byte(`"type":"next"`)) {
			if bytes.Contains(frame, []byte(`"type":"ping"`)) {
				_ = c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
				continue
			}
			c.fail("unexpected message %.200s", frame)
			continue
		}
		seq, ok1 := jsonIntAfter(frame, `"seq":`)
		sent, ok2 := jsonIntAfter(frame, `"sent":`)
		if !ok1 || !ok2 {
			c.fail("event without seq/sent: %.300s", frame)
			continue
		}
		i := int(seq) / r.cfg.orgs
		switch {
		case int(seq)%r.cfg.orgs != c.org:
			c.fail("event %d of org %d reached a client of org %d", seq, int(seq)%r.cfg.orgs, c.org)
		case i >= len(c.seen):
			c.fail("event %d is past the %d events written", seq, r.cfg.events())
		case c.seen[i]:
			c.fail("event %d delivered twice", seq)
		default:
			if c.sample == nil {
				c.sample = bytes.Clone(frame)
			}
			c.seen[i] = true
			c.got++
			c.latencies = append(c.latencies, now.UnixMicro()-sent)
			c.last = now
			r.got.Add(1)
		}
	}
}

func (c *fanoutClient) fail(format string, args ...any) {
	if c.problem == "" {
		c.problem = fmt.Sprintf(format, args...)
	}
}

// jsonIntAfter reads the non-negative integer that follows key (PostgreSQL's
// jsonb text puts a space after the colon; the gateway re-encodes without).
func jsonIntAfter(frame []byte, key string) (int64, bool) {
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return 0, false
	}
	i += len(key)
	for i < len(frame) && frame[i] == ' ' {
		i++
	}
	j := i
	for j < len(frame) && frame[j] >= '0' && frame[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(frame[i:j]), 10, 64)
	return n, err == nil && j > i
}

// waitDelivered waits until every client has every event of its org, or
// every connection has ended, or nothing has arrived for 5 seconds. A
// server that falls behind is waited for as long as it makes progress, so
// its sustained throughput and its real latencies are what gets reported;
// only events that never come fail the run.
func (r *fanoutRun) waitDelivered(tb testing.TB) {
	want := int64(0)
	for o := range r.cfg.clients {
		want += int64(r.cfg.expected(o % r.cfg.orgs))
	}
	last, progress := r.got.Load(), time.Now()
	for r.got.Load() < want && r.ended.Load() < int64(r.cfg.clients) && time.Since(progress) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
		if got := r.got.Load(); got != last {
			last, progress = got, time.Now()
		}
	}
	if got := r.got.Load(); got < want {
		tb.Logf("%s: %d of %d deliveries arrived; none for 5s", r.mode, got, want)
	}
}

// close ends every connection, waits for the readers and checks that each
// client got exactly its org's events.
func (r *fanoutRun) close(tb testing.TB) fanoutRunResult {
	tb.Helper()
	for _, c := range r.clients {
		_ = c.conn.Close()
	}
	r.readers.Wait()
	if s := r.clients[0].sample; s != nil {
		tb.Logf("%s: a frame as received (%d bytes): %s", r.mode, len(s), s)
	}
	res := fanoutRunResult{fanoutResult: fanoutResult{clients: r.cfg.clients}}
	short, bad := 0, 0
	var examples []string
	for i, c := range r.clients {
		res.deliveries += c.got
		res.latencies = append(res.latencies, c.latencies...)
		if c.last.After(res.lastReceipt) {
			res.lastReceipt = c.last
		}
		want := r.cfg.expected(c.org)
		if c.got != want || c.problem != "" {
			if c.got != want {
				short++
			}
			if c.problem != "" {
				bad++
			}
			if len(examples) < 5 {
				end := "open until the end"
				if c.end != nil && !errors.Is(c.end, net.ErrClosed) {
					end = "ended with " + c.end.Error()
				}
				examples = append(examples, fmt.Sprintf("client %d (org %d): %d of %d events, %s; %s", i, c.org, c.got, want, end, c.problem))
			}
		}
	}
	if short > 0 || bad > 0 {
		tb.Errorf("%s: %d of %d clients did not get every event of their org (about %d each), %d got wrong or repeated ones:\n%s",
			r.mode, short, r.cfg.clients, r.cfg.expected(0), bad, strings.Join(examples, "\n"))
	}
	return res
}

// fanoutChild is a server process of the benchmark.
type fanoutChild struct {
	mode     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{}
	logPath  string
	wsURL    string
	adminURL string
}

const (
	fanoutChildEnv   = "DESKBRIDGE_FANOUT_CHILD" // the child's mode: gateway or bare
	fanoutReadyLine  = "fanout-child-ready"
	fanoutChildAdmin = "/fanout/"
)

// startFanoutChild re-executes this test binary as TestSubscriptionFanoutChild
// in the given mode and waits for it to listen. Closing its stdin stops it
// (so does this process's death, which closes the pipe).
func startFanoutChild(b *testing.B, mode string, env []string) *fanoutChild {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	c := &fanoutChild{mode: mode, exited: make(chan struct{}), logPath: filepath.Join(b.TempDir(), mode+".log")}
	log, err := os.Create(c.logPath)
	if err != nil {
		b.Fatal(err)
	}
	c.cmd = exec.Command(exe, "-test.run=^TestSubscriptionFanoutChild$", "-test.count=1")
	c.cmd.Env = append(append(os.Environ(), fanoutChildEnv+"="+mode), env...)
	c.cmd.Stderr = log
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), fanoutReadyLine+" ") {
				ready <- sc.Text()
			} else {
				fmt.Fprintln(log, sc.Text())
			}
		}
	}()
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	b.Cleanup(func() {
		c.stop(b)
		log.Close()
	})
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "ws":
				c.wsURL = v
			case "admin":
				c.adminURL = v
			}
		}
	case <-c.exited:
		b.Fatalf("%s server exited before listening:\n%s", mode, tailFile(c.logPath, 40))
	case <-time.After(2 * time.Minute):
		b.Fatalf("%s server did not start:\n%s", mode, tailFile(c.logPath, 40))
	}
	return c
}

// stop closes the child's stdin and waits for it to shut down; it kills a
// child that does not. Safe to call twice.
func (c *fanoutChild) stop(tb testing.TB) {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		tb.Errorf("the %s server did not stop within 30s of its stdin closing", c.mode)
	}
	if tb.Failed() {
		tb.Logf("server log (last lines):\n%s", tailFile(c.logPath, 40))
	}
}

func tailFile(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// fanoutMem is the child's memory as /fanout/mem reports it.
type fanoutMem struct {
	RSS         int64 // VmRSS, as it is
	Live        int64 // Heap + Stacks
	Heap, Stack int64 // HeapAlloc and StackInuse right after a GC
	Goroutines  int
}

func (c *fanoutChild) get(tb testing.TB, path string, out any) {
	tb.Helper()
	resp, err := http.Get(c.adminURL + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %s %s", path, resp.Status, raw)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
}

func (c *fanoutChild) mem(tb testing.TB) fanoutMem {
	var m fanoutMem
	c.get(tb, fanoutChildAdmin+"mem", &m)
	return m
}

// waitSubscribed waits until the server has registered n subscriptions
// (the gateway's event bus count, the bare hub's).
func (c *fanoutChild) waitSubscribed(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var got int
		c.get(tb, fanoutChildAdmin+"subscribers", &got)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d subscriptions registered after 2 minutes", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bareRun makes the bare server broadcast the run's events and waits for it.
func (c *fanoutChild) bareRun(tb testing.TB, cfg fanoutConfig) fanoutWrite {
	tb.Helper()
	q := url.Values{"rate": {strconv.Itoa(cfg.rate)}, "events": {strconv.Itoa(cfg.events())}, "orgs": {strconv.Itoa(cfg.orgs)}}
	var out struct {
		Events, Drops int
		EndMicros     int64
	}
	c.get(tb, fanoutChildAdmin+"run?"+q.Encode(), &out)
	if out.Drops > 0 {
		tb.Errorf("bare: %d frames dropped on full send queues", out.Drops)
	}
	return fanoutWrite{events: out.Events, end: time.UnixMicro(out.EndMicros)}
}

func (c *fanoutChild) saveProfile(tb testing.TB, profile, path string) {
	resp, err := http.Get(c.adminURL + "/debug/pprof/" + profile)
	if err != nil {
		tb.Errorf("profile %s: %v", profile, err)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, raw, 0o644)
	}
	if err != nil {
		tb.Errorf("profile %s: %v", profile, err)
		return
	}
	tb.Logf("wrote %s", path)
}

// pidCPU is a process's CPU time so far (user + system).
func pidCPU(pid int) time.Duration {
	cpu, _, _ := procStat(pid)
	return cpu
}

// machineCPU is the CPU time every core has spent busy so far (user, nice,
// system, irq, softirq, steal): with the processes' own times it tells how
// much of the machine something else took during a run.
func machineCPU() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, f := range fields {
		if i == 1 || i == 2 || i == 3 || i == 6 || i == 7 || i == 8 {
			n, _ := strconv.ParseInt(f, 10, 64)
			busy += n
		}
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(busy) * tick
}

// TestSubscriptionFanoutChild is the server process of
// BenchmarkSubscriptionFanout, which starts this binary with
// DESKBRIDGE_FANOUT_CHILD set; on its own it skips. It serves WebSockets
// (the gateway on DESKBRIDGE_FANOUT_DSN, or the bare hub) plus an admin
// listener with pprof and the benchmark's endpoints (memory, registered
// subscriptions, the bare hub's run), prints where they listen, and stops
// when its stdin closes.
func TestSubscriptionFanoutChild(t *testing.T) {
	mode := os.Getenv(fanoutChildEnv)
	if mode == "" {
		t.Skip("the server process of BenchmarkSubscriptionFanout; it runs only as that benchmark's child")
	}
	admin := http.NewServeMux()
	admin.HandleFunc("/debug/pprof/", pprof.Index)
	admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
	admin.HandleFunc(fanoutChildAdmin+"mem", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, readFanoutMem())
	})

	var wsURL string
	var subscribers func() int
	switch mode {
	case "gateway":
		ts := startServerLog(t, os.Getenv("DESKBRIDGE_FANOUT_DSN"), benchEnv(nil), os.Stderr)
		wsURL = strings.Replace(ts.url, "http://", "ws://", 1) + "/graphql"
		subscribers = ts.srv.bus.Subscribers
	case "bare":
		hub := newBareHub()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: hub, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		wsURL = "ws://" + ln.Addr().String() + "/ws"
		subscribers = hub.subscribers
		admin.HandleFunc(fanoutChildAdmin+"run", hub.run)
	default:
		t.Fatalf("%s=%q: want gateway or bare", fanoutChildEnv, mode)
	}
	admin.HandleFunc(fanoutChildAdmin+"subscribers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, subscribers())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := &http.Server{Handler: admin, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = adminSrv.Serve(ln) }()
	defer adminSrv.Close()

	fmt.Printf("%s ws=%s admin=http://%s\n", fanoutReadyLine, wsURL, ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it, or dies
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// readFanoutMem reads RSS as the OS sees it first, then collects garbage and
// reads what Go holds live: heap objects and goroutine stacks.
func readFanoutMem() fanoutMem {
	var m fanoutMem
	if raw, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.RSS = kb << 10
			}
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.Heap, m.Stack = int64(ms.HeapAlloc), int64(ms.StackInuse)
	m.Live = m.Heap + m.Stack
	m.Goroutines = runtime.NumGoroutine()
	return m
}

// bareHub is the ceiling: gorilla/websocket with the gateway's upgrader
// settings (4 KiB buffers, pooled write buffers, no compression) and the
// usual broadcast design: a reader and a writer goroutine per connection, a
// 256-frame send queue (the gateway's default), and each event encoded once
// and shared by every connection of its org (PreparedMessage). It speaks
// just enough graphql-transport-ws for the benchmark's client: ack the
// connection_init, register the connection on subscribe.
type bareHub struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	orgs     map[int]map[*bareConn]struct{}
	count    int
}

type bareConn struct {
	ws   *websocket.Conn
	org  int
	send chan *websocket.PreparedMessage
	done chan struct{}
}

func newBareHub() *bareHub {
	return &bareHub{orgs: map[int]map[*bareConn]struct{}{}, upgrader: websocket.Upgrader{
		ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
		Subprotocols: []string{"graphql-transport-ws"},
	}}
}

func (h *bareHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *bareHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	org, err := strconv.Atoi(r.URL.Query().Get("org"))
	if err != nil {
		http.Error(w, "org", http.StatusBadRequest)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &bareConn{ws: ws, org: org, send: make(chan *websocket.PreparedMessage, 256), done: make(chan struct{})}
	go c.write()
	defer close(c.done)
	registered := false
	defer func() {
		if registered {
			h.mu.Lock()
			delete(h.orgs[org], c)
			h.count--
			h.mu.Unlock()
		}
		_ = ws.Close()
	}()
	ack, _ := websocket.NewPreparedMessage(websocket.TextMessage, []byte(`{"type":"connection_ack"}`))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct{ Type string }
		_ = json.Unmarshal(msg, &m)
		switch {
		case m.Type == "connection_init":
			c.send <- ack
		case m.Type == "subscribe" && !registered:
			registered = true
			h.mu.Lock()
			if h.orgs[org] == nil {
				h.orgs[org] = map[*bareConn]struct{}{}
			}
			h.orgs[org][c] = struct{}{}
			h.count++
			h.mu.Unlock()
		}
	}
}

func (c *bareConn) write() {
	for {
		select {
		case pm := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.ws.WritePreparedMessage(pm); err != nil {
				_ = c.ws.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// run broadcasts events (seq % orgs picks the org) at rate per second and
// answers with how many it sent and dropped on full queues.
func (h *bareHub) run(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rate, _ := strconv.Atoi(q.Get("rate"))
	events, _ := strconv.Atoi(q.Get("events"))
	orgs, _ := strconv.Atoi(q.Get("orgs"))
	if rate <= 0 || events <= 0 || orgs <= 0 {
		http.Error(w, "rate, events and orgs must be positive", http.StatusBadRequest)
		return
	}
	drops := 0
	start := time.Now()
	var last time.Time
	for seq := range events {
		if d := time.Until(start.Add(time.Duration(float64(seq) * float64(time.Second) / float64(rate)))); d > 0 {
			time.Sleep(d)
		}
		last = time.Now()
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, bareFrame(seq, last))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.mu.Lock()
		for c := range h.orgs[seq%orgs] {
			select {
			case c.send <- pm:
			default:
				drops++
			}
		}
		h.mu.Unlock()
	}
	writeJSON(w, map[string]any{"events": events, "drops": drops, "endMicros": last.UnixMicro()})
}

// bareFrame is the gateway's "next" message for event seq, byte for byte
// but for the values: the same field order (the gateway decodes the
// payload into a map, so its keys come out sorted) and PostgreSQL's
// microsecond timestamps.
func bareFrame(seq int, sent time.Time) []byte {
	p := newFanoutPayload(seq, sent)
	subject := base64.RawURLEncoding.EncodeToString([]byte("Ticket:" + strconv.Itoa(100000+seq)))
	return fmt.Appendf(nil, `{"type":"next","id":"1","payload":{"data":{"events":{"id":"%d","type":"%s","occurredAt":"%s","subjectId":"%s",`+
		`"payload":{"sent":%d,"seq":%d,"status":"%s","subject":"%s","ticketId":"%s"}}}}}`,
		seq+1, fanoutEventType, sent.UTC().Format("2006-01-02T15:04:05.999999Z07:00"), subject, p.Sent, p.Seq, p.Status, p.Subject, p.TicketID)
}
