package syncengine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// kbWorld is a sandbox with a knowledge base of ~100 articles in 20
// categories, a connected desk on a fresh database, and a KB service on a
// fake clock whose chat side is wrapped so tests can count and break
// writes.
type kbWorld struct {
	t     *testing.T
	sb    *sandbox.Sandbox
	db    *sqlx.DB
	conns *syncengine.ConnectionService
	kb    *syncengine.KBService
	clock *clockwork.FakeClock
	chat  *kbChatSpy
	admin auth.Viewer
	conn  store.Connection
	creds sandbox.Credentials
}

var kbStart = time.Date(2026, 1, 30, 10, 0, 0, 0, time.UTC)

func startKBWorld(t *testing.T) *kbWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 11, People: 1000, Accounts: 40, Products: 5, DCs: []string{"us"}})
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	db := storetest.New(t)
	org, _, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	user, err := store.EnsureUser(ctx, db, org.ID, "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	box, _ := crypt.New(bytes.Repeat([]byte{7}, 32))
	ep, cr := sb.Endpoints()["us"], sb.Credentials()
	conns := syncengine.NewConnectionService(syncengine.ConnectionServiceConfig{DB: db, Box: box,
		Vendor: zoho.NewVendor(zoho.VendorConfig{ClientID: cr.ClientID, ClientSecret: cr.ClientSecret,
			Endpoints: map[string]zoho.DataCenter{"us": {Name: "us", Accounts: ep.AccountsURL, API: ep.APIDomain, Desk: ep.DeskURL, SalesIQ: ep.SalesIQURL}}})})
	admin := auth.Viewer{OrgID: org.ID, UserID: user.ID, TokenID: 1, Role: auth.RoleAdmin}
	crmOrgs, err := conns.ReachableCRMOrgs(ctx, connector.CRM, "us", syncengine.ConnectionCredentials{RefreshToken: cr.RefreshTokens["us"]["crm"]})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := conns.Connect(ctx, admin, syncengine.ConnectionRequest{CRMSystem: connector.CRM, CRMDC: "us", CRMOrgID: crmOrgs[0].ID,
		CRMCredentials: syncengine.ConnectionCredentials{RefreshToken: cr.RefreshTokens["us"]["crm"]},
		DeskDC:         "us", DeskOrgID: ep.DeskOrgID, DeskCredentials: syncengine.ConnectionCredentials{RefreshToken: cr.RefreshTokens["us"]["desk"]}})
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	w := &kbWorld{t: t, sb: sb, db: db, conns: conns, clock: clockwork.NewFakeClockAt(kbStart), admin: admin, conn: conn, creds: cr}
	w.chat = &kbChatSpy{inner: syncengine.OwnKBPortal{Conns: conns}}
	w.kb = w.newService()
	t.Cleanup(w.kb.Close)
	return w
}

// newService is another KB service on the same database and clock, as
// another replica would have.
func (w *kbWorld) newService() *syncengine.KBService {
	return syncengine.NewKBService(syncengine.KBConfig{DB: w.db, Conns: w.conns, Chat: w.chat, Clock: w.clock})
}

func (w *kbWorld) portal() *syncengine.KBPortal {
	return &syncengine.KBPortal{DC: "us", Screen: w.sb.Endpoints()["us"].SalesIQScreenName,
		Credentials: syncengine.ConnectionCredentials{RefreshToken: w.creds.RefreshTokens["us"]["salesiq"]}}
}

func (w *kbWorld) desk() *desk.Server       { return w.sb.Desk("us") }
func (w *kbWorld) salesIQ() *salesiq.Server { return w.sb.SalesIQ("us") }

// update changes the KB settings and fails the test on an error.
func (w *kbWorld) update(ch syncengine.KBChange) syncengine.KBView {
	w.t.Helper()
	v, err := w.kb.Update(context.Background(), w.admin, w.conn.ID, ch)
	if err != nil {
		w.t.Fatalf("updating the kb sync: %v", err)
	}
	return v
}

// syncNow runs "sync now" to the end (the service runs nothing on its own:
// the tick carries the run out) and returns the finished run.
func (w *kbWorld) syncNow() store.KBRun {
	w.t.Helper()
	ctx := context.Background()
	run, err := w.kb.SyncNow(ctx, w.admin, w.conn.ID)
	if err != nil {
		w.t.Fatalf("sync now: %v", err)
	}
	if _, err := w.kb.Tick(ctx); err != nil {
		w.t.Fatalf("tick: %v", err)
	}
	return w.run(run.ID)
}

func (w *kbWorld) run(id int64) store.KBRun {
	w.t.Helper()
	r, err := store.GetKBRun(context.Background(), w.db, w.admin.OrgID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// kbSelection is the test's category assignment and what it predicts.
type kbSelection struct {
	deps    []syncengine.KBDepartment
	parent  map[string]string
	deptOf  map[string]string // selected category -> department
	deptIDs []string
}

// choose gives every root category but the agents-only one to the
// departments in turn, and one section of the first root to another
// department than its root (the nearest selected category wins).
func (w *kbWorld) choose() kbSelection {
	w.t.Helper()
	ctx := context.Background()
	cats, err := w.kb.DeskCategories(ctx, w.admin, w.conn.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	deps, err := w.kb.ChatDepartments(ctx, w.admin, w.conn.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	sel := kbSelection{parent: map[string]string{}, deptOf: map[string]string{}}
	for _, d := range deps {
		sel.deptIDs = append(sel.deptIDs, d.ID)
	}
	byDept := map[string][]string{}
	var roots []string
	for _, c := range cats {
		sel.parent[c.ID] = c.ParentID
		if c.ParentID == "" && c.Visibility != "AGENTS" {
			roots = append(roots, c.ID)
		}
	}
	for i, r := range roots {
		d := sel.deptIDs[i%len(sel.deptIDs)]
		byDept[d] = append(byDept[d], r)
		sel.deptOf[r] = d
	}
	for _, c := range cats {
		if c.ParentID == roots[0] {
			d := sel.deptIDs[len(sel.deptIDs)-1]
			byDept[d] = append(byDept[d], c.ID)
			sel.deptOf[c.ID] = d
			break
		}
	}
	for _, d := range sel.deptIDs {
		if len(byDept[d]) > 0 {
			sel.deps = append(sel.deps, syncengine.KBDepartment{ChatDepartmentID: d, DeskCategoryIDs: byDept[d]})
		}
	}
	return sel
}

// expected computes, from the desk's own data, which articles the sync
// should copy and into which department.
// setUpAll sets the KB sync up with the sandbox's SalesIQ portal and a
// chosen set of departments, and returns the articles a run must copy when
// they are open to all.
func (w *kbWorld) setUpAll() map[string]string {
	w.t.Helper()
	w.update(syncengine.KBChange{SalesIQ: w.portal()})
	sel := w.choose()
	w.update(syncengine.KBChange{Departments: &sel.deps})
	return w.expected(sel, "ALL")
}

func (w *kbWorld) expected(sel kbSelection, perms ...string) map[string]string {
	out := map[string]string{}
	for _, id := range w.desk().IDs("articles") {
		a, _ := w.desk().Article(id)
		if a["status"] != "Published" || !slices.Contains(perms, fmt.Sprint(a["permission"])) {
			continue
		}
		for c := fmt.Sprint(a["categoryId"]); c != ""; c = sel.parent[c] {
			if d, ok := sel.deptOf[c]; ok {
				out[id] = d
				break
			}
		}
	}
	return out
}

// copies are the SalesIQ articles that came from the desk, by desk id.
func (w *kbWorld) copies() map[string][]salesiq.Article {
	out := map[string][]salesiq.Article{}
	for _, a := range w.salesIQ().Articles() {
		if a.Source == salesiq.SourceZohoDesk {
			out[a.SourceID] = append(out[a.SourceID], a)
		}
	}
	return out
}

// checkCopies compares SalesIQ with the prediction: one read-only, tagged
// copy per expected article, in its department, with the desk's title and
// body and the chosen status.
func (w *kbWorld) checkCopies(want map[string]string, status string) {
	w.t.Helper()
	got := w.copies()
	for id, dept := range want {
		cs := got[id]
		if len(cs) != 1 {
			w.t.Errorf("desk article %s has %d copies in SalesIQ, want 1", id, len(cs))
			continue
		}
		c := cs[0]
		a, _ := w.desk().Article(id)
		if c.Title != a["title"] || c.Content != a["answer"] || !c.ReadOnly || !slices.Contains(c.Tags, salesiq.SourceZohoDesk) ||
			c.Status != status || !slices.Equal(c.DepartmentIDs, []string{dept}) || c.CategoryID == "" {
			w.t.Errorf("copy of %s = %+v; want title %q, department %s, status %s, read-only and tagged", id, c, a["title"], dept, status)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			w.t.Errorf("desk article %s has a copy in SalesIQ but should not", id)
		}
	}
}

// kbChatSpy wraps the chat side: it counts writes and deletes, and fails
// or "crashes" on demand.
type kbChatSpy struct {
	inner syncengine.KBChatSource
	mu    sync.Mutex
	// refuse makes writes of these desk articles fail permanently.
	refuse map[string]bool
	// crashAfterWrites makes the n-th Write call (counting from 1) return
	// an error after the vendor applied it, as if the process died before
	// storing the answers; 0 = never.
	crashAfterWrites int
	// hold makes writes wait until their context ends (a replica stopped
	// mid-run); held is closed when the first one waits.
	hold     bool
	held     chan struct{}
	heldOnce sync.Once
	// beforeWrite, when set, runs before each Write reaches SalesIQ.
	beforeWrite      func()
	creates          int
	updates, deletes int
	calls            int
}

func (s *kbChatSpy) OpenKBChat(ctx context.Context, c store.Connection, k store.KBSettings) (syncengine.KBChat, error) {
	chat, err := s.inner.OpenKBChat(ctx, c, k)
	if err != nil {
		return nil, err
	}
	return &spiedChat{KBChat: chat, spy: s}, nil
}

func (s *kbChatSpy) counts() (creates, updates, deletes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates, s.updates, s.deletes
}

func (s *kbChatSpy) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creates, s.updates, s.deletes = 0, 0, 0
}

type spiedChat struct {
	syncengine.KBChat
	spy *kbChatSpy
}

func (c *spiedChat) Write(ctx context.Context, m connector.Module, ws []connector.Write) ([]connector.Result, error) {
	c.spy.mu.Lock()
	refuse := map[int]bool{}
	var pass []connector.Write
	var at []int
	for i, w := range ws {
		if c.spy.refuse[fmt.Sprint(w.Fields["source_id"])] {
			refuse[i] = true
			continue
		}
		pass = append(pass, w)
		at = append(at, i)
		switch w.Op {
		case connector.Update:
			c.spy.updates++
		default:
			c.spy.creates++
		}
	}
	c.spy.calls++
	crash := c.spy.crashAfterWrites > 0 && c.spy.calls == c.spy.crashAfterWrites
	hold, before := c.spy.hold, c.spy.beforeWrite
	c.spy.mu.Unlock()
	if before != nil {
		before()
	}
	if hold {
		c.spy.heldOnce.Do(func() { close(c.spy.held) })
		<-ctx.Done()
		return nil, ctx.Err()
	}
	results := make([]connector.Result, len(ws))
	if len(pass) > 0 {
		res, err := c.KBChat.Write(ctx, m, pass)
		if err != nil {
			return nil, err
		}
		for j, r := range res {
			results[at[j]] = r
		}
	}
	if crash {
		return nil, errors.New("simulated crash after the vendor applied the writes")
	}
	for i := range refuse {
		results[i] = connector.Result{Err: &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
			Field: "content", Code: "1010", Message: "Invalid content (refused by the test)"}}
	}
	return results, nil
}

func (c *spiedChat) Delete(ctx context.Context, m connector.Module, ids []string) ([]connector.Result, error) {
	c.spy.mu.Lock()
	c.spy.deletes += len(ids)
	c.spy.mu.Unlock()
	return c.KBChat.Delete(ctx, m, ids)
}

// The KB sync end to end against the sandbox: the first run copies every
// published article of the chosen categories and permission into the
// right department, read-only and tagged; a second run writes nothing;
// articles changed, trashed, unpublished, hidden from visitors or moved
// out of the kbSelection in the desk are changed or deleted in SalesIQ; a
// new status rewrites every copy; disabling stops everything and leaves
// the copies alone.
func TestKBSyncMirrorsTheDeskIntoSalesIQ(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx := context.Background()
	native := len(w.salesIQ().Articles())

	w.update(syncengine.KBChange{SalesIQ: w.portal()})
	sel := w.choose()
	perm := store.KBPermissionAll
	view := w.update(syncengine.KBChange{Departments: &sel.deps, Permission: &perm})
	if !view.Settings.Enabled || view.Settings.Interval != store.KBDaily || view.Settings.TimeZone == "" || view.Settings.NextRunAt == nil || !view.HasToken {
		t.Fatalf("settings after the first update: %+v", view)
	}
	want := w.expected(sel, "ALL")
	if len(want) < 20 {
		t.Fatalf("the world predicts only %d articles to sync", len(want))
	}

	run := w.syncNow()
	if run.Status != store.KBRunDone || run.Added != int64(len(want)) || run.Failed != 0 || run.Deleted != 0 || run.Trigger != store.KBTriggerManual {
		t.Fatalf("first run = %+v (error %v), want DONE with %d added", run, kbDeref(run.Error), len(want))
	}
	w.checkCopies(want, "published")
	if n := len(w.salesIQ().Articles()) - len(w.copies()); n != native {
		t.Fatalf("native SalesIQ articles: %d, want %d untouched", n, native)
	}
	// The nearest selected category wins: the section given to another
	// department than its root has its articles there.
	var section string
	for c := range sel.deptOf {
		if sel.parent[c] != "" {
			section = c
		}
	}
	movedOne := false
	for id := range want {
		a, _ := w.desk().Article(id)
		if a["categoryId"] == section {
			movedOne = true
			if want[id] != sel.deptOf[section] || want[id] == sel.deptOf[sel.parent[section]] {
				t.Fatalf("the test's kbSelection does not exercise the nearest-category rule")
			}
		}
	}
	if !movedOne {
		t.Fatalf("no published article in section %s", section)
	}

	// Nothing changed: nothing is written.
	w.chat.reset()
	run = w.syncNow()
	if c, u, d := w.chat.counts(); c+u+d != 0 || run.Unchanged != int64(len(want)) || run.Added+run.Updated+run.Deleted+run.Failed != 0 {
		t.Fatalf("second run wrote %d/%d/%d; run = %+v", c, u, d, run)
	}

	// Desk changes.
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	edited, trashed, hidden, unpublished := ids[0], ids[1], ids[2], ids[3]
	if _, err := w.desk().UpdateArticle(edited, desk.Fields{"title": "Edited in the desk", "answer": "<p>New body</p>"}); err != nil {
		t.Fatal(err)
	}
	if err := w.desk().DeleteArticle(trashed); err != nil {
		t.Fatal(err)
	}
	if _, err := w.desk().UpdateArticle(hidden, desk.Fields{"permission": "AGENTS"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.desk().UpdateArticle(unpublished, desk.Fields{"status": "Draft"}); err != nil {
		t.Fatal(err)
	}
	rootOf := sel.deps[0].DeskCategoryIDs[0]
	added, err := w.desk().CreateArticle(desk.Fields{"title": "Brand new", "answer": "<p>Hello</p>", "categoryId": rootOf,
		"status": "Published", "locale": "en", "permission": "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	newID := fmt.Sprint(added["id"])
	delete(want, trashed)
	delete(want, hidden)
	delete(want, unpublished)
	want[newID] = sel.deptOf[rootOf]
	w.chat.reset()
	run = w.syncNow()
	if run.Added != 1 || run.Updated != 1 || run.Deleted != 3 || run.Failed != 0 {
		t.Fatalf("run after desk changes = %+v (error %v)", run, kbDeref(run.Error))
	}
	if c, u, d := w.chat.counts(); c != 1 || u != 1 || d != 3 {
		t.Fatalf("writes after desk changes: %d creates, %d updates, %d deletes", c, u, d)
	}
	w.checkCopies(want, "published")

	// A category leaves the kbSelection: its articles leave SalesIQ. A new
	// status rewrites every remaining copy.
	dropped := sel.deps[1] // a department with a root category of its own
	deps := slices.Delete(slices.Clone(sel.deps), 1, 2)
	for _, c := range dropped.DeskCategoryIDs {
		delete(sel.deptOf, c)
	}
	draft := store.KBStatusDraft
	w.update(syncengine.KBChange{Departments: &deps, ArticleStatus: &draft})
	want = w.expected(sel, "ALL")
	run = w.syncNow()
	if run.Failed != 0 || run.Deleted == 0 || run.Updated != int64(len(want)) || run.Added != 0 {
		t.Fatalf("run after dropping a department and going draft = %+v", run)
	}
	w.checkCopies(want, "draft")
	total, pending, err := store.CountKBLinks(ctx, w.db, w.admin.OrgID, w.conn.ID)
	if err != nil || total != int64(len(want)) || pending != 0 {
		t.Fatalf("links: %d (%d pending), want %d: %v", total, pending, len(want), err)
	}

	// Disabled: no schedule, "sync now" refused, copies untouched even when
	// the desk changes.
	off := false
	view = w.update(syncengine.KBChange{Enabled: &off})
	if view.Settings.NextRunAt != nil {
		t.Fatalf("disabled settings still scheduled: %+v", view.Settings)
	}
	if _, err := w.kb.SyncNow(ctx, w.admin, w.conn.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("sync now while disabled: %v", err)
	}
	if err := w.desk().DeleteArticle(ids[4]); err != nil {
		t.Fatal(err)
	}
	before := w.copies()
	w.clock.Advance(40 * 24 * time.Hour)
	if tick, err := w.kb.Tick(ctx); err != nil || tick.Scheduled+tick.Ran != 0 {
		t.Fatalf("tick while disabled: %+v %v", tick, err)
	}
	if after := w.copies(); len(after) != len(before) {
		t.Fatalf("disabling changed SalesIQ: %d copies, had %d", len(after), len(before))
	}
}

// Which articles sync follows their desk permission (F2): REGISTERED
// copies the registered users' articles only, BOTH adds the public ones,
// ALL goes back to the public ones; agent-only articles never sync.
func TestKBSyncFollowsThePermission(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	w.update(syncengine.KBChange{SalesIQ: w.portal()})
	sel := w.choose()
	if n := len(w.expected(sel, "AGENTS")); n == 0 {
		t.Fatal("the world has no agent-only published article in the selection")
	}
	registered := len(w.expected(sel, "REGISTEREDUSERS"))
	if registered == 0 || len(w.expected(sel, "ALL")) == 0 {
		t.Fatalf("the world does not tell the permissions apart: %d registered-only articles", registered)
	}
	for _, c := range []struct {
		perm string
		desk []string
	}{
		{store.KBPermissionRegistered, []string{"REGISTEREDUSERS"}},
		{store.KBPermissionBoth, []string{"ALL", "REGISTEREDUSERS"}},
		{store.KBPermissionAll, []string{"ALL"}},
	} {
		perm := c.perm
		w.update(syncengine.KBChange{Departments: &sel.deps, Permission: &perm})
		if run := w.syncNow(); run.Status != store.KBRunDone || run.Failed != 0 {
			t.Fatalf("%s: run = %+v (error %v)", perm, run, kbDeref(run.Error))
		}
		w.checkCopies(w.expected(sel, c.desk...), "published")
	}
}

// Disabling the sync while a run is going stops it after the page in hand
// (CANCELLED), and the copies made so far stay as they are (F2).
func TestKBDisablingStopsARunningRun(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx := context.Background()
	want := w.setUpAll()
	var once sync.Once
	w.chat.mu.Lock()
	w.chat.beforeWrite = func() {
		once.Do(func() {
			off := false
			if _, err := w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{Enabled: &off}); err != nil {
				t.Errorf("disabling mid-run: %v", err)
			}
		})
	}
	w.chat.mu.Unlock()
	run := w.syncNow()
	copies := w.copies()
	if run.Status != store.KBRunCancelled || run.Added == 0 || run.Added >= int64(len(want)) || run.Deleted != 0 ||
		int64(len(copies)) != run.Added {
		t.Fatalf("run disabled mid-way = %+v (error %v), %d copies of %d articles", run, kbDeref(run.Error), len(copies), len(want))
	}
	w.clock.Advance(40 * 24 * time.Hour)
	if tick, err := w.kb.Tick(ctx); err != nil || tick.Scheduled+tick.Ran != 0 {
		t.Fatalf("tick after disabling: %+v %v", tick, err)
	}
	if after := w.copies(); len(after) != len(copies) {
		t.Fatalf("disabled sync changed SalesIQ: %d copies, had %d", len(after), len(copies))
	}
}

// Each copy is made once, even when a run dies after SalesIQ created
// articles and before their ids were stored: the next run finds them by
// their source id instead of creating them again.
func TestKBSyncCreatesNothingTwiceAfterACrash(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	want := w.setUpAll()

	w.chat.mu.Lock()
	w.chat.crashAfterWrites = 2 // the second page's creates happen, their answers are lost
	w.chat.mu.Unlock()
	run := w.syncNow()
	if run.Status != store.KBRunFailed || run.Error == nil || !strings.Contains(*run.Error, "simulated crash") {
		t.Fatalf("crashed run = %+v", run)
	}
	_, pending, err := store.CountKBLinks(context.Background(), w.db, w.admin.OrgID, w.conn.ID)
	if err != nil || pending == 0 {
		t.Fatalf("after the crash: %d pending links, want some: %v", pending, err)
	}
	copiesAfterCrash := len(w.copies())

	w.chat.mu.Lock()
	w.chat.crashAfterWrites = 0
	w.chat.mu.Unlock()
	run = w.syncNow()
	if run.Status != store.KBRunDone || run.Failed != 0 || run.Added != int64(len(want)-copiesAfterCrash) {
		t.Fatalf("run after the crash = %+v, want %d added", run, len(want)-copiesAfterCrash)
	}
	w.checkCopies(want, "published")
	if _, pending, _ := store.CountKBLinks(context.Background(), w.db, w.admin.OrgID, w.conn.ID); pending != 0 {
		t.Fatalf("%d links still pending", pending)
	}
}

// A replica that stops in the middle of a run puts it back in the queue;
// another replica's tick carries it out, creating nothing twice.
func TestKBRunInterruptedByShutdownIsTakenOver(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx := context.Background()
	want := w.setUpAll()

	w.chat.mu.Lock()
	w.chat.hold, w.chat.held = true, make(chan struct{})
	w.chat.mu.Unlock()
	stopping := syncengine.NewKBService(syncengine.KBConfig{DB: w.db, Conns: w.conns, Chat: w.chat, Clock: w.clock, RunHere: true, Name: "stopping"})
	run, err := stopping.SyncNow(ctx, w.admin, w.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.chat.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reached SalesIQ")
	}
	if r := w.run(run.ID); r.Status != store.KBRunRunning || r.Runner == nil || *r.Runner != "stopping" {
		t.Fatalf("while held: %+v", r)
	}
	stopping.Close()
	if r := w.run(run.ID); r.Status != store.KBRunQueued {
		t.Fatalf("after the shutdown: %+v", r)
	}
	w.chat.mu.Lock()
	w.chat.hold = false
	w.chat.mu.Unlock()
	if tick, err := w.kb.Tick(ctx); err != nil || tick.Ran != 1 {
		t.Fatalf("the other replica's tick: %+v %v", tick, err)
	}
	if r := w.run(run.ID); r.Status != store.KBRunDone || r.Attempts != 2 || r.Added != int64(len(want)) {
		t.Fatalf("taken over = %+v", r)
	}
	w.checkCopies(want, "published")
}

// A refused article is a failure with the vendor's reason, listed once
// however often it fails; the others sync. Retrying after the cause is
// gone syncs it and resolves the failure.
func TestKBSyncFailuresAndRetry(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx := context.Background()
	want := w.setUpAll()
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	w.chat.mu.Lock()
	w.chat.refuse = map[string]bool{ids[0]: true, ids[1]: true}
	w.chat.mu.Unlock()

	run := w.syncNow()
	if run.Status != store.KBRunDone || run.Failed != 2 || run.Added != int64(len(want)-2) {
		t.Fatalf("run with refusals = %+v", run)
	}
	run = w.syncNow() // they fail again: still one line each
	if run.Failed != 2 {
		t.Fatalf("second run = %+v", run)
	}
	fs, err := w.kb.Failures(ctx, w.admin, w.conn.ID, false, 50, 0)
	if err != nil || len(fs) != 2 {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
	for _, f := range fs {
		if f.Reason != "param_invalid" || f.Operation != store.KBOpCreate || f.Attempts != 2 || f.VendorCode == nil ||
			*f.VendorCode != "1010" || f.Title == nil || (f.DeskArticleID != ids[0] && f.DeskArticleID != ids[1]) {
			t.Fatalf("failure = %+v", f)
		}
	}
	w.chat.mu.Lock()
	w.chat.refuse = nil
	w.chat.mu.Unlock()
	retry, err := w.kb.Retry(ctx, w.admin, w.conn.ID, []int64{fs[0].ID})
	if err != nil || retry == nil || !slices.Equal([]string(retry.ArticleIDs), []string{fs[0].DeskArticleID}) {
		t.Fatalf("retry = %+v, %v", retry, err)
	}
	if _, err := w.kb.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r := w.run(retry.ID); r.Status != store.KBRunDone || r.Added != 1 || r.Listed != 1 || r.Trigger != store.KBTriggerRetry {
		t.Fatalf("retry run = %+v", r)
	}
	fs, err = w.kb.Failures(ctx, w.admin, w.conn.ID, false, 50, 0)
	if err != nil || len(fs) != 1 {
		t.Fatalf("failures after one retry = %+v, %v", fs, err)
	}
	all, _ := w.kb.Failures(ctx, w.admin, w.conn.ID, true, 50, 0)
	if len(all) != 2 || all[0].ResolvedAt == nil && all[1].ResolvedAt == nil {
		t.Fatalf("resolved failures = %+v", all)
	}
	// Retry everything left; then nothing is left, and a retry with no
	// open failure queues nothing.
	if r, err := w.kb.Retry(ctx, w.admin, w.conn.ID, nil); err != nil || r == nil {
		t.Fatalf("retry all: %v %v", r, err)
	}
	if _, err := w.kb.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	w.checkCopies(want, "published")
	if r, err := w.kb.Retry(ctx, w.admin, w.conn.ID, nil); err != nil || r != nil {
		t.Fatalf("retry with nothing to retry: %+v %v", r, err)
	}
}

// Settings are checked against both vendors, with the field at fault.
func TestKBSettingsAreChecked(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ctx := context.Background()
	wantField := func(what string, err error, field, says string) {
		t.Helper()
		var ie *syncengine.ConnectionInputError
		if !errors.As(err, &ie) || ie.Field != field || !strings.Contains(ie.Reason, says) {
			t.Fatalf("%s: %v, want an input error on %s saying %q", what, err, field, says)
		}
	}
	_, err := w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{})
	wantField("no portal the first time", err, "salesIq", "needed")
	bad := w.portal()
	bad.Credentials.RefreshToken = "1000.nonsense"
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{SalesIQ: bad})
	wantField("refused token", err, "salesIq.credentials", "refused")
	bad = w.portal()
	bad.Screen = "nosuchportal"
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{SalesIQ: bad})
	wantField("unknown portal", err, "salesIq.screenName", "nosuchportal")
	tz := "Mars/Olympus"
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{SalesIQ: w.portal(), TimeZone: &tz})
	wantField("bad zone", err, "timeZone", "Mars/Olympus")

	w.update(syncengine.KBChange{SalesIQ: w.portal()})
	sel := w.choose()
	d0, d1 := sel.deps[0], sel.deps[1]
	cat := d0.DeskCategoryIDs[0]
	twice := []syncengine.KBDepartment{d0, {ChatDepartmentID: d1.ChatDepartmentID, DeskCategoryIDs: []string{cat}}}
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{Departments: &twice})
	wantField("a category in two departments", err, "departments[1].deskCategoryIds[0]", "already given to department")
	unknownCat := []syncengine.KBDepartment{{ChatDepartmentID: d0.ChatDepartmentID, DeskCategoryIDs: []string{"123456789"}}}
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{Departments: &unknownCat})
	wantField("unknown category", err, "departments[0].deskCategoryIds[0]", "no article category")
	unknownDep := []syncengine.KBDepartment{{ChatDepartmentID: "42", DeskCategoryIDs: []string{cat}}}
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{Departments: &unknownDep})
	wantField("unknown department", err, "departments[0].chatDepartmentId", "no department")
	depTwice := []syncengine.KBDepartment{d0, {ChatDepartmentID: d0.ChatDepartmentID}}
	_, err = w.kb.Update(ctx, w.admin, w.conn.ID, syncengine.KBChange{Departments: &depTwice})
	wantField("a department twice", err, "departments[1].chatDepartmentId", "already listed")
	// The same category given twice is also refused by the database.
	if err := store.ReplaceKBCategories(ctx, w.db, w.admin.OrgID, w.conn.ID, []store.KBCategory{
		{DeskCategoryID: cat, ChatDepartmentID: d0.ChatDepartmentID}, {DeskCategoryID: cat, ChatDepartmentID: d1.ChatDepartmentID}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the database accepted a category in two departments: %v", err)
	}

	agent := w.admin
	agent.Role = auth.RoleAgent
	if _, err := w.kb.Update(ctx, agent, w.conn.ID, syncengine.KBChange{}); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("agent: %v", err)
	}
	other := w.admin
	other.OrgID += 1000
	if _, err := w.kb.SyncNow(ctx, other, w.conn.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org: %v", err)
	}
	// Secrets are sealed, never in the view.
	sealed, err := store.GetSecret(ctx, w.db, w.admin.OrgID, w.conn.ID, store.SecretKBSalesIQRefreshToken)
	if err != nil || bytes.Contains(sealed, []byte(w.creds.RefreshTokens["us"]["salesiq"])) {
		t.Fatalf("sealed token: %v", err)
	}
}

func kbDeref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
