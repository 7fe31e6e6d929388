package zoho

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The conformance suite: every connector runs the same checks against the
// sandbox over HTTP, once as is and once with the sandbox misbehaving.

// badRecord is a write that must fail with a classified reason.
type badRecord struct {
	fields map[string]any
	reason connector.Reason
	field  string
}

// suiteCase describes one system for the suite.
type suiteCase struct {
	sys    connector.System
	vendor string // fault injector name
	module connector.Module

	// Vendor-side truth, read through the sandbox's Go API.
	count     func(sb *sandbox.Sandbox) int
	liveIDs   func(sb *sandbox.Sandbox) []string
	massTouch func(sb *sandbox.Sandbox, ids []string) error // many records, one modified time
	uiEdit    func(sb *sandbox.Sandbox, id string) error    // a person's edit in the product
	tagged    func(sb *sandbox.Sandbox, tag string) int     // live records carrying tag

	newRecord   func(tag string, i int) map[string]any // a valid record carrying tag
	updateField string
	emailField  string
	nameField   string // Find by name
	dupCheck    []string
	bad         []badRecord
	related     []string // related lists of a seeded record that must answer
	types       map[string]connector.FieldType
	watchable   bool
}

func crmCase(sys connector.System) suiteCase {
	srv := func(sb *sandbox.Sandbox) crmSide {
		if sys == connector.Bigin {
			return crmSide{sb.Bigin(sb.DCs()[0])}
		}
		return crmSide{sb.CRM(sb.DCs()[0])}
	}
	related := []string{"Notes", "Deals", "Calls", "Events", "Tasks"}
	vendor := "crm"
	if sys == connector.Bigin {
		related = []string{"Notes", "Pipelines", "Calls", "Tasks"}
		vendor = "bigin"
	}
	return suiteCase{
		sys: sys, vendor: vendor, module: "Contacts",
		count:   func(sb *sandbox.Sandbox) int { return srv(sb).Count("Contacts") },
		liveIDs: func(sb *sandbox.Sandbox) []string { return srv(sb).IDs("Contacts") },
		massTouch: func(sb *sandbox.Sandbox, ids []string) error {
			return srv(sb).MassUpdate("Contacts", ids, map[string]any{"Title": "Bulk"})
		},
		uiEdit: func(sb *sandbox.Sandbox, id string) error {
			return srv(sb).Edit("Contacts", id, map[string]any{"Title": "Edited in UI"})
		},
		tagged: func(sb *sandbox.Sandbox, tag string) int { return srv(sb).countWhere("Contacts", "Last_Name", tag) },
		newRecord: func(tag string, i int) map[string]any {
			return map[string]any{"Last_Name": tag, "First_Name": fmt.Sprint("N", i), "Email": fmt.Sprintf("%s.%d@conf.example", strings.ToLower(tag), i)}
		},
		updateField: "Title", emailField: "Email", nameField: "Last_Name", dupCheck: []string{"Email"},
		bad: []badRecord{
			{map[string]any{"First_Name": "NoLast"}, connector.ReasonMandatoryMissing, "Last_Name"},
			{map[string]any{"Last_Name": "T", "Loyalty_Points__c": "many"}, connector.ReasonTypeMismatch, "Loyalty_Points__c"},
			{map[string]any{"Last_Name": strings.Repeat("x", 200)}, connector.ReasonTooLong, "Last_Name"},
		},
		related: related,
		types: map[string]connector.FieldType{"Email": connector.TypeEmail, "Last_Name": connector.TypeText,
			"Loyalty_Points__c": connector.TypeInteger, "Account_Name": connector.TypeLookup, "Owner": connector.TypeOwner,
			"Customer_Type": connector.TypePicklist, "Email_Opt_Out": connector.TypeBoolean, "Date_of_Birth": connector.TypeDate,
			"Modified_Time": connector.TypeDateTime},
		watchable: true,
	}
}

func runConformance(t *testing.T, withFaults bool) {
	cases := []suiteCase{crmCase(connector.CRM), crmCase(connector.Bigin), deskCase()}
	// A stopped clock, moved by the suite: every write between two moves
	// shares one modified time, the hard case for cursors.
	clk := clock.NewManual(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	cfg := sandbox.Config{People: 700, Accounts: 60, Products: 20, Clock: clk}
	if withFaults {
		cfg.Faults = map[string][]faults.Rule{}
		for _, v := range []string{"crm", "bigin", "desk", "salesiq"} {
			cfg.Faults[v] = []faults.Rule{
				{Kind: faults.RateLimit, Rate: 0.08},
				{Kind: faults.ServerError, Rate: 0.08},
				{Kind: faults.Drop, Rate: 0.05},
				{Kind: faults.Slow, Rate: 0.1, Delay: 30 * time.Millisecond},
				{Kind: faults.Timeout, Rate: 0.01, Delay: 3 * time.Second},
			}
		}
	}
	sb := startSandbox(t, cfg)
	for _, c := range cases {
		t.Run(string(c.sys), func(t *testing.T) {
			sl := newSleeps()
			s := settingsFor(sb, c.sys, sl)
			s.Clock = clk
			if withFaults {
				s.RequestTimeout = time.Second
			}
			conn, err := Factory(c.sys)(s)
			if err != nil {
				t.Fatal(err)
			}
			runSuite(t, sb, clk, c, conn, s, withFaults)
			if withFaults {
				st := sb.Injector(c.vendor).Stats()
				t.Logf("faults injected into %s: %v; connector waits: %d", c.vendor, st, len(sl.all()))
				if st[faults.RateLimit]+st[faults.ServerError]+st[faults.Drop] == 0 {
					t.Errorf("no faults were injected: the run proves nothing")
				}
			}
		})
	}
}

func TestConformance(t *testing.T) { runConformance(t, false) }

func TestConformanceWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault run skipped in -short mode")
	}
	runConformance(t, true)
}

func runSuite(t *testing.T, sb *sandbox.Sandbox, clk *clock.Manual, c suiteCase, conn connector.Connector, s Settings, withFaults bool) {
	ctx := ctxT(t)
	tag := fmt.Sprintf("Conf%s%d", strings.ToUpper(string(c.sys[:2])), time.Now().UnixNano()%100000)

	t.Run("list all", func(t *testing.T) {
		ids, _ := listAll(t, ctx, conn, c.module, "", 83, nil)
		if want := c.count(sb); len(ids) != want {
			t.Fatalf("listed %d records, the sandbox holds %d", len(ids), want)
		}
	})

	t.Run("resume after every page", func(t *testing.T) {
		live := c.liveIDs(sb)
		clk.Advance(time.Minute)
		before := clk.Now()
		touched := live[:min(len(live), 260)] // more than a page share one modified time
		if err := c.massTouch(sb, touched); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		start := conn.StartAt(c.module, before)
		restart := func() connector.Connector {
			fresh, err := Factory(c.sys)(s) // a new process: nothing but the cursor survives
			if err != nil {
				t.Fatal(err)
			}
			return fresh
		}
		ids, _ := listAll(t, ctx, conn, c.module, start, 37, restart)
		got := map[string]bool{}
		for _, id := range ids {
			got[id] = true
		}
		for _, id := range touched {
			if !got[id] {
				t.Fatalf("record %s, modified with %d others at one time, was skipped", id, len(touched)-1)
			}
		}
	})

	t.Run("field metadata", func(t *testing.T) {
		fs, err := conn.Fields(ctx, c.module)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]connector.Field{}
		for _, f := range fs {
			byName[f.Name] = f
		}
		for name, typ := range c.types {
			if f, ok := byName[name]; !ok || f.Type != typ {
				t.Errorf("field %s: got %+v, want type %s", name, f, typ)
			}
		}
	})

	var created []string
	t.Run("create update upsert delete", func(t *testing.T) {
		var ws []connector.Write
		for i := range 3 {
			ws = append(ws, connector.Write{Op: connector.Create, Fields: c.newRecord(tag, i)})
		}
		res, err := conn.Write(ctx, c.module, ws)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.ID == "" || !r.Created {
				t.Fatalf("create %d: %+v", i, r)
			}
			created = append(created, r.ID)
		}
		res, err = conn.Write(ctx, c.module, []connector.Write{
			{Op: connector.Update, ID: created[0], Fields: map[string]any{c.updateField: "Updated"}},
			{Op: connector.Upsert, DuplicateCheck: c.dupCheck, Fields: withField(c.newRecord(tag, 1), c.updateField, "Upserted")},
			{Op: connector.Upsert, DuplicateCheck: c.dupCheck, Fields: c.newRecord(tag, 3)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[0].ID != created[0] || res[0].Created {
			t.Errorf("update: %+v", res[0])
		}
		if res[1].Err != nil || res[1].ID != created[1] || res[1].Created {
			t.Errorf("upsert of an existing record: %+v (want id %s, not created)", res[1], created[1])
		}
		if res[2].Err != nil || res[2].ID == "" || !res[2].Created {
			t.Errorf("upsert of a new record: %+v", res[2])
		}
		created = append(created, res[2].ID)
		got, err := conn.Get(ctx, c.module, created[0])
		if err != nil || got.Fields[c.updateField] != "Updated" {
			t.Errorf("read back %v: %v", got.Fields[c.updateField], err)
		}
		many, err := conn.GetMany(ctx, c.module, append([]string{"1234567890123456"}, created...))
		if err != nil || len(many) != len(created) {
			t.Errorf("GetMany: %d records, %v (want %d, missing id left out)", len(many), err, len(created))
		}
		if n := c.tagged(sb, tag); n != 4 {
			t.Errorf("the sandbox holds %d records tagged %s, want 4: a write was lost or made twice", n, tag)
		}

		clk.Advance(time.Second)
		since := clk.Now()
		del, err := conn.Delete(ctx, c.module, created[2:])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range del {
			if r.Err != nil {
				t.Errorf("delete %s: %v", r.ID, r.Err)
			}
		}
		if _, err := conn.Get(ctx, c.module, created[2]); !isReason(err, connector.ReasonNotFound) {
			t.Errorf("a deleted record still reads: %v", err)
		}
		dels, err := conn.Deleted(ctx, c.module, since)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range dels {
			seen[d.ID] = true
		}
		for _, id := range created[2:] {
			if !seen[id] {
				t.Errorf("deleted record %s is not in the deleted feed (%d entries)", id, len(dels))
			}
		}
		if n := c.tagged(sb, tag); n != 2 {
			t.Errorf("after deleting two, %d records tagged %s remain, want 2", n, tag)
		}
	})

	t.Run("per-record errors", func(t *testing.T) {
		var ws []connector.Write
		for _, b := range c.bad {
			ws = append(ws, connector.Write{Op: connector.Create, Fields: b.fields})
		}
		ws = append(ws, connector.Write{Op: connector.Update, ID: "1234567890123456", Fields: map[string]any{c.updateField: "x"}})
		if c.sys != connector.Desk {
			ws = append(ws, connector.Write{Op: connector.Create, Fields: c.newRecord(tag, 0)}) // a duplicate email
		}
		res, err := conn.Write(ctx, c.module, ws)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range c.bad {
			class, reason, field := reasonOf(res[i].Err)
			if class != connector.Permanent || reason != b.reason || field != b.field {
				t.Errorf("bad record %d: got %v (class %v reason %q field %q), want %s on %s", i, res[i].Err, class, reason, field, b.reason, b.field)
			}
		}
		n := len(c.bad)
		if _, reason, _ := reasonOf(res[n].Err); reason != connector.ReasonNotFound {
			t.Errorf("update of an unknown id: %v", res[n].Err)
		}
		if c.sys != connector.Desk {
			e := asError(res[n+1].Err)
			if e == nil || e.Reason != connector.ReasonDuplicate || e.DuplicateID != created[0] || e.Field != c.emailField {
				t.Errorf("duplicate email: %v, want duplicate of %s", res[n+1].Err, created[0])
			}
		}
	})

	t.Run("find", func(t *testing.T) {
		rec := c.newRecord(tag, 1)
		found, err := findEventually(ctx, conn, c.module, connector.Query{Field: c.emailField, Value: fmt.Sprint(rec[c.emailField])})
		if err != nil || len(found) != 1 || found[0].ID != created[1] {
			t.Errorf("find by email: %d found, %v", len(found), err)
		}
		byName, err := findEventually(ctx, conn, c.module, connector.Query{Field: c.nameField, Value: tag})
		if err != nil || len(byName) != 2 {
			t.Errorf("find by name %s: %d found (want 2), %v", tag, len(byName), err)
		}
	})

	t.Run("related lists", func(t *testing.T) {
		rl, ok := conn.(connector.RelatedLister)
		if !ok {
			t.Skip("no related lists")
		}
		id := c.liveIDs(sb)[0]
		for _, list := range c.related {
			if _, err := rl.Related(ctx, c.module, id, list, 20); err != nil {
				t.Errorf("related %s of %s: %v", list, id, err)
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		w, ok := conn.(connector.Watcher)
		if !ok || !c.watchable {
			t.Skip("not watchable")
		}
		rcv := newReceiver(t)
		sub, err := w.Watch(ctx, connector.WatchRequest{URL: rcv.url + "/hooks?tenant=1", Modules: []connector.Module{c.module}, Token: "tok-" + tag})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := w.Unwatch(context.Background(), sub.ID); err != nil {
				t.Errorf("unwatch: %v", err)
			}
		}()
		target := c.liveIDs(sb)[1]
		if err := c.uiEdit(sb, target); err != nil {
			t.Fatal(err)
		}
		ch := rcv.next(t, func(h http.Header, body []byte) (connector.Change, bool) {
			changes, err := w.ParseNotification(h, body)
			if err != nil {
				t.Errorf("parse %s: %v", body, err)
				return connector.Change{}, false
			}
			for _, ch := range changes {
				if slices.Contains(ch.IDs, target) {
					return ch, true
				}
			}
			return connector.Change{}, false
		})
		if ch.Kind != connector.Updated || ch.Module != c.module {
			t.Errorf("change %+v", ch)
		}
		if c.sys == connector.Desk {
			if len(ch.Records) != 1 || ch.Records[0].ID != target || ch.Previous == nil {
				t.Errorf("desk change lacks the record or its previous values: %+v", ch)
			}
		} else {
			if ch.Token != "tok-"+tag || !slices.Contains(ch.AffectedFields[target], "Title") {
				t.Errorf("CRM change token %q affected %v", ch.Token, ch.AffectedFields)
			}
		}
	})

	if withFaults {
		t.Run("bulk writes under faults", func(t *testing.T) {
			bulk := tag + "Bulk"
			var ws []connector.Write
			for i := range 120 {
				ws = append(ws, connector.Write{Op: connector.Create, Fields: c.newRecord(bulk, i)})
			}
			var ids []string
			for part := range slices.Chunk(ws, conn.BatchSize()) {
				res, err := writeUntilDone(ctx, conn, c.module, part)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res {
					ids = append(ids, r.ID)
				}
			}
			if n := c.tagged(sb, bulk); n != len(ws) {
				t.Fatalf("the sandbox holds %d records of %d created: lost or written twice", n, len(ws))
			}
			slices.Sort(ids)
			if len(slices.Compact(ids)) != len(ws) {
				t.Fatalf("results name %d distinct ids for %d records", len(slices.Compact(ids)), len(ws))
			}
		})
	}
}

// writeUntilDone plays the engine: per-record transient failures are
// retried; anything permanent fails the test.
func writeUntilDone(ctx context.Context, conn connector.Connector, m connector.Module, ws []connector.Write) ([]connector.Result, error) {
	out := make([]connector.Result, len(ws))
	pending := make([]int, len(ws))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		if round > 10 {
			return nil, fmt.Errorf("writes still failing after %d rounds", round)
		}
		batch := make([]connector.Write, 0, len(pending))
		for _, i := range pending {
			batch = append(batch, ws[i])
		}
		res, err := conn.Write(ctx, m, batch)
		if err != nil {
			if connector.Retryable(err) {
				continue
			}
			return nil, err
		}
		var next []int
		for k, i := range pending {
			switch {
			case res[k].Err == nil:
				out[i] = res[k]
			case connector.Retryable(res[k].Err):
				next = append(next, i)
			default:
				return nil, fmt.Errorf("record %d: %w", i, res[k].Err)
			}
		}
		pending = next
	}
	return out, nil
}

func withField(f map[string]any, k string, v any) map[string]any {
	f[k] = v
	return f
}

func isReason(err error, r connector.Reason) bool {
	e := asError(err)
	return e != nil && e.Reason == r
}

// listAll reads a module's change stream to the end from cur, restarting
// the connector after every page when restart is set, and fails on a
// record delivered twice.
func listAll(t *testing.T, ctx context.Context, conn connector.Connector, m connector.Module, cur connector.Cursor, limit int,
	restart func() connector.Connector) ([]string, connector.Cursor) {
	t.Helper()
	seen := map[string]bool{}
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("the stream does not end")
		}
		p, err := conn.ListChanged(ctx, m, cur, limit)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(p.Records) > limit {
			t.Fatalf("page of %d records, limit %d", len(p.Records), limit)
		}
		var last time.Time
		for _, r := range p.Records {
			if seen[r.ID] {
				t.Fatalf("record %s delivered twice", r.ID)
			}
			if r.ModifiedAt.Before(last) {
				t.Fatalf("records out of order: %v after %v", r.ModifiedAt, last)
			}
			last = r.ModifiedAt
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		cur = p.Next
		if p.Done {
			return ids, cur
		}
		if restart != nil {
			conn = restart()
		}
	}
}

// findEventually retries Find while the search index catches up with our
// writes (Zoho's index trails them); the wait is bounded.
func findEventually(ctx context.Context, conn connector.Connector, m connector.Module, q connector.Query) ([]connector.Record, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		found, err := conn.Find(ctx, m, q)
		if (err == nil && len(found) > 0) || time.Now().After(deadline) {
			return found, err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// receiver collects webhook deliveries.
type receiver struct {
	url string
	got chan delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivery, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		select {
		case r.got <- delivery{header: req.Header.Clone(), body: body}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// next waits (bounded) for a delivery that match accepts.
func (r *receiver) next(t *testing.T, match func(http.Header, []byte) (connector.Change, bool)) connector.Change {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case d := <-r.got:
			if ch, ok := match(d.header, d.body); ok {
				return ch
			}
		case <-timeout:
			t.Fatal("no matching notification arrived")
			return connector.Change{}
		}
	}
}
