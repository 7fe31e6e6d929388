package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/store"
)

const sidebarTruthQuery = `query($id: String!) { ticket(deskId: $id) {
	number status contact { email }
	customer {
		crmContact { name }
		deals(first: 10) { edges { node { id name } } }
		ticketCounts { total open onHold resolved overdue }
	}
} }`

// The example agent sidebar (server/examples, GET /examples/sidebar) in
// headless Chromium against a synced world: it shows the customer's CRM
// contact, deals and tickets; the ticket's status changes made through the
// API and in the desk appear without a reload; after its WebSocket is cut
// it reconnects and resumes with `after`, so a change made while it was
// offline still arrives as an event; markup in a subject is shown as text;
// a restricted agent sees the deals panel as hidden by the permission
// profile; the page opened by email shows the same customer and follows it
// live; no page breaks its CSP; and the token reaches the server only in
// Authorization headers, never in a URL, and is never stored in
// localStorage. With DESKBRIDGE_SCREENSHOTS=DIR it saves what each tab shows
// at the end as PNGs there, for a person to look at.
func TestExampleSidebar(t *testing.T) {
	t.Parallel()
	chromium, jsDir := browserTools(t)

	w, admin, pick := startCustomerWorld(t)
	restricted := w.ts.token("acme", auth.RoleRestrictedAgent)
	desk := w.sb.Desk("us")

	truth := func() map[string]any {
		t.Helper()
		r := w.ts.query(admin, sidebarTruthQuery, map[string]any{"id": pick.TicketID})
		if len(r.Errors) > 0 {
			t.Fatalf("sidebar truth: %+v", r.Errors)
		}
		return dig(r.Data, "ticket").(map[string]any)
	}
	want := truth()
	crmName, _ := dig(want, "customer", "crmContact", "name").(string)
	var dealIDs, dealNames []string
	for _, e := range dig(want, "customer", "deals", "edges").([]any) {
		node := e.(map[string]any)["node"].(map[string]any)
		dealIDs = append(dealIDs, node["id"].(string))
		if name, _ := node["name"].(string); len(name) >= 6 {
			dealNames = append(dealNames, name)
		}
	}
	if crmName == "" || len(dealIDs) == 0 {
		t.Fatalf("the picked ticket %s has no CRM contact name or no deals: %+v", pick.TicketID, want)
	}

	// The browser reaches the gateway through a proxy the test can cut,
	// and that records what the browser sent.
	proxy := startCutProxy(t, strings.TrimPrefix(w.ts.url, "http://"))
	b := startSidebarBrowser(t, jsDir, chromium, "http://"+proxy.addr())

	// The first look: the CRM contact's name, every deal, the ticket.
	s := b.open("admin", "token="+admin+"&ticket="+pick.TicketID)
	if s.State != "loaded" || s.Name != crmName {
		t.Fatalf("the sidebar shows %q (state %s, status %q), want the CRM contact %q", s.Name, s.State, s.Status, crmName)
	}
	var shownDeals []string
	for _, it := range s.Panels["deals"].Items {
		shownDeals = append(shownDeals, it.ID)
	}
	slices.Sort(shownDeals)
	slices.Sort(dealIDs)
	if s.Panels["deals"].State != "shown" || !slices.Equal(shownDeals, dealIDs) {
		t.Fatalf("deals panel %s shows %v, want %v", s.Panels["deals"].State, shownDeals, dealIDs)
	}
	for _, p := range []string{"notes", "activities", "tickets"} {
		if s.Panels[p].State != "shown" {
			t.Fatalf("%s panel is %s (%q), want shown", p, s.Panels[p].State, s.Panels[p].Note)
		}
	}
	if s.ticketRow(pick.TicketID) == nil || s.Ticket.DeskID != pick.TicketID || s.Ticket.Status != want["status"] {
		t.Fatalf("the ticket %s (%v) is not shown as it is: %+v, rows %+v", pick.TicketID, want["status"], s.Ticket, s.Panels["tickets"].Items)
	}
	if strings.Contains(s.URL, admin) {
		t.Fatalf("the token is still in the address bar: %s", s.URL)
	}
	waitPage(t, b, "admin", "the sidebar to go live", func(s sidebarSnapshot) bool { return s.Live.State == "live" })
	waitFor(t, "the sidebar's subscription", func() bool { return w.ts.srv.bus.Subscribers() > 0 })

	// A change through the API (setTicketStatus) arrives live.
	status := "Closed"
	if want["status"] == "Closed" {
		status = "On Hold"
	}
	r := w.ts.query(admin, `mutation($id: String!, $s: String!) { setTicketStatus(input: {ticketDeskId: $id, status: $s}) { status } }`,
		map[string]any{"id": pick.TicketID, "s": status})
	if len(r.Errors) > 0 {
		t.Fatalf("setTicketStatus: %+v", r.Errors)
	}
	s = waitLive(t, b, "admin", pick.TicketID, status, "status changed to "+status+" (in ") // deskbridge, or the desk when polling recorded it first
	counts := dig(truth(), "customer", "ticketCounts").(map[string]any)
	s = waitPage(t, b, "admin", "the counts to follow", func(s sidebarSnapshot) bool { return s.countsMatch(counts) })
	firstEvent := s.Live.LastEventID

	// A change in the desk arrives by its webhook, and live too.
	if _, err := desk.SetTicketStatus(pick.TicketID, "Open"); err != nil {
		t.Fatal(err)
	}
	s = waitLive(t, b, "admin", pick.TicketID, "Open", "status changed to Open (in the desk)")
	if s.Live.LastEventID == firstEvent {
		t.Fatalf("the last event id did not move past %s", firstEvent)
	}

	// Cut the WebSocket and refuse new connections; change the ticket
	// while the page cannot be subscribed, then let it back in. Only a
	// resume with `after` brings that change as an event (a fresh
	// subscription is live only), and only an event writes a log line.
	beforeCut := s.Live.LastEventID
	proxy.cut(true)
	waitPage(t, b, "admin", "the sidebar to notice the cut", func(s sidebarSnapshot) bool { return s.Live.State != "live" })
	r = w.ts.query(admin, `mutation($id: String!) { setTicketStatus(input: {ticketDeskId: $id, status: "On Hold"}) { status } }`,
		map[string]any{"id": pick.TicketID})
	if len(r.Errors) > 0 {
		t.Fatalf("setTicketStatus while the page is offline: %+v", r.Errors)
	}
	if got := b.snapshot("admin"); got.ticketRow(pick.TicketID).Status == "On Hold" {
		t.Fatalf("the page shows a change it cannot have heard of: %+v", got.Panels["tickets"])
	}
	proxy.cut(false)
	s = waitLive(t, b, "admin", pick.TicketID, "On Hold", "status changed to On Hold (in ") // deskbridge, or the desk when polling recorded it first
	s = waitPage(t, b, "admin", "the sidebar to be live again", func(s sidebarSnapshot) bool { return s.Live.State == "live" })
	if s.Live.LastEventID == beforeCut {
		t.Fatalf("the last event id stayed %s across the reconnect", beforeCut)
	}
	t.Logf("live log after the reconnect: %q", s.Live.Log)

	// Data is rendered as text: a subject made of markup arrives (an
	// UPDATED event from the desk) and shows as the characters it is.
	evil := `<img src="x" alt="injected"> & "Invoice" <b>now</b>`
	if _, err := desk.UpdateTicket(pick.TicketID, map[string]any{"subject": evil}); err != nil {
		t.Fatal(err)
	}
	s = waitPage(t, b, "admin", "the new subject", func(s sidebarSnapshot) bool { return s.Ticket.Subject == evil })
	if s.Images != 0 || !s.SameDocument {
		t.Fatalf("a subject became markup (%d images) or the page reloaded (%v)", s.Images, !s.SameDocument)
	}

	// A restricted agent: the same customer, the deals hidden by the
	// profile (not a failure), everything else shown, and no deal name
	// anywhere on the page.
	rs := b.open("restricted", "token="+restricted+"&ticket="+pick.TicketID)
	deals := rs.Panels["deals"]
	if rs.State != "loaded" || rs.Name != crmName || deals.State != "hidden" || len(deals.Items) > 0 ||
		!strings.Contains(strings.ToLower(deals.Note), "hidden by your permission profile") {
		t.Fatalf("a restricted agent's sidebar: state %s, name %q, deals %+v", rs.State, rs.Name, deals)
	}
	for _, p := range []string{"notes", "activities", "tickets"} {
		if rs.Panels[p].State != "shown" {
			t.Fatalf("a restricted agent's %s panel is %s (%q), want shown", p, rs.Panels[p].State, rs.Panels[p].Note)
		}
	}
	for _, name := range dealNames {
		if strings.Contains(rs.BodyText, name) {
			t.Fatalf("the deal %q reached a restricted agent's page", name)
		}
	}
	waitPage(t, b, "restricted", "the restricted agent's sidebar to go live", func(s sidebarSnapshot) bool { return s.Live.State == "live" })

	// By email (customerByEmail): the same picture, and live updates follow
	// the desk contact of the customer's tickets.
	email, _ := dig(want, "contact", "email").(string)
	es := b.open("email", "token="+admin+"&email="+url.QueryEscape(email))
	var emailDeals []string
	for _, it := range es.Panels["deals"].Items {
		emailDeals = append(emailDeals, it.ID)
	}
	slices.Sort(emailDeals)
	if email == "" || es.State != "loaded" || es.Name != crmName || !slices.Equal(emailDeals, dealIDs) || es.ticketRow(pick.TicketID) == nil {
		t.Fatalf("the sidebar by email %q: state %s (%q), name %q, deals %v, tickets %+v", email, es.State, es.Status, es.Name, emailDeals, es.Panels["tickets"].Items)
	}
	waitPage(t, b, "email", "the sidebar by email to go live", func(s sidebarSnapshot) bool { return s.Live.State == "live" })

	// One more change in the desk reaches all three tabs.
	if _, err := desk.SetTicketStatus(pick.TicketID, "Closed"); err != nil {
		t.Fatal(err)
	}
	waitLive(t, b, "admin", pick.TicketID, "Closed", "status changed to Closed (in the desk)")
	waitLive(t, b, "restricted", pick.TicketID, "Closed", "status changed to Closed (in the desk)")
	s = waitPage(t, b, "email", "the sidebar by email to show the change", func(s sidebarSnapshot) bool {
		row := s.ticketRow(pick.TicketID)
		return row != nil && row.Status == "Closed" &&
			slices.ContainsFunc(s.Live.Log, func(l string) bool { return strings.Contains(l, "status changed to Closed (in the desk)") })
	})
	if !s.SameDocument {
		t.Fatalf("the sidebar by email was reloaded to show the change")
	}

	// The token's path: in sessionStorage at most, never in localStorage,
	// a cookie or the address bar; on the wire only in Authorization
	// headers (the WebSocket's connection_init travels masked).
	for _, name := range []string{"admin", "restricted", "email"} {
		s := b.snapshot(name)
		token := map[string]string{"admin": admin, "restricted": restricted, "email": admin}[name]
		local, _ := json.Marshal(s.LocalStorage)
		if strings.Contains(string(local), token) || strings.Contains(s.Cookies, token) || strings.Contains(s.URL, token) {
			t.Errorf("%s: the token is kept where it should not be: url %q, localStorage %s, cookies %q", name, s.URL, local, s.Cookies)
		}
		for _, p := range s.Problems {
			if !strings.Contains(p, "WebSocket connection to") && !strings.Contains(p, "net::ERR_") {
				t.Errorf("%s: the page reported a problem: %s", name, p)
			}
		}
		sent := bytes.ToLower(proxy.sentBytes())
		lower := strings.ToLower(token)
		if all, inHeader := bytes.Count(sent, []byte(lower)), bytes.Count(sent, []byte("authorization: bearer "+lower)); all == 0 || all != inHeader {
			t.Errorf("%s: the token went over the wire %d times, %d of them in an Authorization header", name, all, inHeader)
		}
	}
	if strings.Contains(w.log.String(), admin) {
		t.Errorf("the gateway logged the admin token")
	}
	if dir := os.Getenv("DESKBRIDGE_SCREENSHOTS"); dir != "" {
		for _, tab := range []string{"admin", "restricted", "email"} {
			path, _ := filepath.Abs(filepath.Join(dir, "sidebar-"+tab+".png"))
			b.do(map[string]any{"cmd": "screenshot", "name": tab, "path": path})
			t.Logf("screenshot: %s", path)
		}
	}
	b.quit()
}

// The sidebar link `make run` prints carries the token in the fragment and
// a sample ticket whose customer has deals; without the sandbox it carries
// only the token.
func TestDemoPrintsSidebarLink(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, DCs: []string{"us"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	var out bytes.Buffer
	printDemo(&out, "http://127.0.0.1:8080", "dbk_secret", sb, store.Connection{ID: 1})
	m := regexp.MustCompile(`(?m)^  Sidebar:\s+http://127\.0\.0\.1:8080/examples/sidebar#token=dbk_secret&ticket=(\d+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no sidebar link with a ticket:\n%s", out.String())
	}
	if _, ok := sb.Desk("us").Ticket(m[1]); !ok {
		t.Fatalf("the sidebar link's ticket %s is not in the desk", m[1])
	}
	out.Reset()
	printDemo(&out, "http://127.0.0.1:8080", "dbk_secret", nil, store.Connection{})
	if !strings.Contains(out.String(), "  Sidebar:      http://127.0.0.1:8080/examples/sidebar#token=dbk_secret\n") {
		t.Fatalf("without the sandbox:\n%s", out.String())
	}
}

// browserTools is what the browser tests drive: Chromium, and test/js with
// puppeteer-core. The test is skipped without Chromium or node (.ci/run
// installs both), and fails when the npm packages are missing.
func browserTools(t *testing.T) (chromium, jsDir string) {
	t.Helper()
	if chromium = findChromium(); chromium == "" {
		t.Skip("no Chromium (set CHROMIUM, or put chromium or chromium-browser on PATH; .ci/run installs it): this test drives a browser")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH: the browser is driven with puppeteer-core from test/js")
	}
	jsDir, err := filepath.Abs("../test/js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "puppeteer-core")); err != nil {
		t.Fatalf("test/js/node_modules/puppeteer-core is missing: run `make js-deps` (or `npm ci` in test/js)")
	}
	return chromium, jsDir
}

// findChromium returns the browser to drive, or "" when there is none.
func findChromium() string {
	if c := os.Getenv("CHROMIUM"); c != "" {
		return c
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// sidebarSnapshot is what test/js/browser/sidebar.browser.mjs reports of a
// tab.
type sidebarSnapshot struct {
	URL          string `json:"url"`
	SameDocument bool   `json:"sameDocument"`
	State        string `json:"state"`
	Status       string `json:"status"`
	Refreshes    int    `json:"refreshes"`
	Name         string `json:"name"`
	Ticket       struct {
		DeskID  string `json:"deskId"`
		Status  string `json:"status"`
		Subject string `json:"subject"`
	} `json:"ticket"`
	Images int                `json:"images"`
	Counts map[string]float64 `json:"counts"`
	Panels map[string]struct {
		State string `json:"state"`
		Note  string `json:"note"`
		Items []struct {
			ID     string `json:"id"`
			Text   string `json:"text"`
			Status string `json:"status"`
		} `json:"items"`
	} `json:"panels"`
	Live struct {
		State       string   `json:"state"`
		Text        string   `json:"text"`
		LastEventID string   `json:"lastEventId"`
		Log         []string `json:"log"`
	} `json:"live"`
	BodyText     string            `json:"bodyText"`
	LocalStorage map[string]string `json:"localStorage"`
	Cookies      string            `json:"cookies"`
	Problems     []string          `json:"problems"`
}

// ticketRow returns the tickets panel's row of a ticket, or nil.
func (s sidebarSnapshot) ticketRow(deskID string) *struct {
	ID     string `json:"id"`
	Text   string `json:"text"`
	Status string `json:"status"`
} {
	for i, it := range s.Panels["tickets"].Items {
		if it.ID == deskID {
			return &s.Panels["tickets"].Items[i]
		}
	}
	return nil
}

func (s sidebarSnapshot) countsMatch(want map[string]any) bool {
	for k, v := range want {
		if s.Counts[k] != v.(float64) {
			return false
		}
	}
	return true
}

// waitLive waits until a tab shows the ticket in status, in the tickets
// panel and as the current ticket, with a log line containing logLine,
// still in the document it first loaded: the change arrived live.
func waitLive(t *testing.T, b *sidebarBrowser, tab, ticketID, status, logLine string) sidebarSnapshot {
	t.Helper()
	s := waitPage(t, b, tab, fmt.Sprintf("ticket %s to show %q live", ticketID, status), func(s sidebarSnapshot) bool {
		row := s.ticketRow(ticketID)
		return row != nil && row.Status == status && s.Ticket.Status == status &&
			slices.ContainsFunc(s.Live.Log, func(l string) bool { return strings.Contains(l, logLine) })
	})
	if !s.SameDocument {
		t.Fatalf("the page was reloaded to show the change")
	}
	return s
}

// waitPage polls a tab until cond holds, failing with the last snapshot
// after a generous deadline (a hang, not a speed check).
func waitPage(t *testing.T, b *sidebarBrowser, tab, what string, cond func(sidebarSnapshot) bool) sidebarSnapshot {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := b.snapshot(tab)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			s.BodyText = ""
			raw, _ := json.MarshalIndent(s, "", "  ")
			t.Fatalf("timed out waiting for %s; the %s tab shows:\n%s", what, tab, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sidebarBrowser runs test/js/browser/sidebar.browser.mjs: headless
// Chromium under puppeteer-core, driven one JSON line at a time.
type sidebarBrowser struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    chan string
	stderr *lockedBuffer
}

func startSidebarBrowser(t *testing.T, jsDir, chromium, baseURL string) *sidebarBrowser {
	t.Helper()
	b := &sidebarBrowser{t: t, out: make(chan string, 1), stderr: &lockedBuffer{}}
	b.cmd = exec.Command("node", filepath.Join("browser", "sidebar.browser.mjs"))
	b.cmd.Dir = jsDir
	b.cmd.Env = append(os.Environ(), "DESKBRIDGE_URL="+baseURL, "CHROMIUM="+chromium)
	b.cmd.Stderr = b.stderr
	var err error
	if b.in, err = b.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting the browser script: %v", err)
	}
	go func() {
		defer close(b.out)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			b.out <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		// Closing stdin makes the script close Chromium and exit; kill it
		// if it does not.
		_ = b.in.Close()
		done := make(chan struct{})
		go func() { _ = b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = b.cmd.Process.Kill()
			<-done
		}
	})
	return b
}

func (b *sidebarBrowser) do(cmd map[string]any) map[string]json.RawMessage {
	b.t.Helper()
	line, _ := json.Marshal(cmd)
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		b.t.Fatalf("browser script: %v\n%s", err, b.stderr.String())
	}
	var reply string
	select {
	case l, ok := <-b.out:
		if !ok {
			b.t.Fatalf("the browser script exited:\n%s", b.stderr.String())
		}
		reply = l
	case <-time.After(3 * time.Minute):
		b.t.Fatalf("the browser script did not answer %s:\n%s", cmd["cmd"], b.stderr.String())
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal([]byte(reply), &out); err != nil {
		b.t.Fatalf("browser script answered %q: %v", reply, err)
	}
	if string(out["ok"]) != "true" {
		b.t.Fatalf("browser script, %s: %s\n%s", cmd["cmd"], out["error"], b.stderr.String())
	}
	return out
}

func (b *sidebarBrowser) snapshotOf(cmd map[string]any) sidebarSnapshot {
	b.t.Helper()
	var s sidebarSnapshot
	if err := json.Unmarshal(b.do(cmd)["snapshot"], &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *sidebarBrowser) open(tab, fragment string) sidebarSnapshot {
	b.t.Helper()
	return b.snapshotOf(map[string]any{"cmd": "open", "name": tab, "fragment": fragment})
}

func (b *sidebarBrowser) snapshot(tab string) sidebarSnapshot {
	b.t.Helper()
	return b.snapshotOf(map[string]any{"cmd": "snapshot", "name": tab})
}

func (b *sidebarBrowser) quit() {
	b.t.Helper()
	b.do(map[string]any{"cmd": "quit"})
	if err := b.cmd.Wait(); err != nil {
		b.t.Fatalf("the browser script exited with %v:\n%s", err, b.stderr.String())
	}
}

// cutProxy forwards TCP connections to the gateway. cut(true) drops every
// open connection and refuses new ones until cut(false), which a browser
// sees as a lost network (WebSocket close 1006). It records what clients
// sent, to check where the token travelled.
type cutProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	conns    map[net.Conn]bool
	refusing bool
	sent     bytes.Buffer
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut(true)
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refusing {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *cutProxy) forward(client net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client) || !p.track(up) {
		_ = client.Close()
		_ = up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, io.TeeReader(client, writerFunc(p.record)))
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, up)
		done <- struct{}{}
	}()
	<-done
	_ = client.Close()
	_ = up.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cutProxy) record(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.Write(b)
}

// cut closes every open connection, and refuses new ones while refuse is
// set.
func (p *cutProxy) cut(refuse bool) {
	p.mu.Lock()
	p.refusing = refuse
	open := make([]net.Conn, 0, len(p.conns))
	if refuse {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

func (p *cutProxy) sentBytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.sent.Bytes())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
