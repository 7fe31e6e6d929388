package syncengine_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// findCounter counts the vendor searches made through a connector.
type findCounter struct {
	connector.Connector
	finds atomic.Int64
}

func (c *findCounter) Find(ctx context.Context, m connector.Module, q connector.Query) ([]connector.Record, error) {
	c.finds.Add(1)
	return c.Connector.Find(ctx, m, q)
}

func listAll(t *testing.T, ctx context.Context, c connector.Connector, m connector.Module) []connector.Record {
	t.Helper()
	var out []connector.Record
	cur := c.StartAt(m, time.Time{})
	for {
		page, err := c.ListChanged(ctx, m, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Records...)
		if page.Done {
			return out
		}
		cur = page.Next
	}
}

// A first sync matches its records (B8) against the target's index in the
// mirror, without one vendor search per record, and a later run reads what
// the target gained since before it walks: a desk contact typed in between
// the two runs matches the CRM contact with its email. Changes captured
// outside a first sync still match through the vendor's search.
func TestFirstSyncMatchesThroughTheIndex(t *testing.T) {
	f := newEngineFixture(t)
	sc := f.w.Connectors.(sandboxConnectors)
	deskConn, crmConn := &findCounter{Connector: sc.desk}, &findCounter{Connector: sc.crm}
	conns := sandboxConnectors{desk: deskConn, crm: crmConn}
	f.w.Connectors = conns
	driver := &syncengine.FirstSync{DB: f.db, Connectors: conns, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PageSize: 5, MaxPages: 1}
	since := time.Now().AddDate(-1, 0, 0)
	runToEnd := func() store.Run {
		t.Helper()
		run, started, err := store.StartRun(f.ctx, f.db, store.NewRun{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID,
			Module: "contacts", Direction: store.DirectionCRMToDesk, Since: since})
		if err != nil || !started {
			t.Fatalf("StartRun = %v, %v", started, err)
		}
		for range 100 {
			if _, err := driver.Tick(f.ctx); err != nil {
				t.Fatal(err)
			}
			f.drain(t)
			if cur, _ := store.RunByID(f.ctx, f.db, f.conn.OrgID, run.ID); cur.Status == store.RunDone {
				return cur
			}
		}
		t.Fatal("the run never finished")
		return store.Run{}
	}
	deskBefore := listAll(t, f.ctx, sc.desk, "contacts")
	if run := runToEnd(); run.Failed != 0 || run.Enqueued == 0 {
		t.Fatalf("first run: %+v", run)
	}
	idx, err := store.GetMatchIndex(f.ctx, f.db, f.conn.OrgID, f.conn.ID, string(connector.Desk), "contacts")
	if err != nil || !idx.Complete || idx.CaughtUpAt == nil {
		t.Fatalf("desk contacts index: %+v, %v", idx, err)
	}
	if n := deskConn.finds.Load(); n != 0 {
		t.Fatalf("%d desk searches for first-sync records, want none", n)
	}
	// Every CRM contact of the window is on the desk once: matched, or
	// created when the desk had none with its email.
	deskEmails := map[string]bool{}
	for _, r := range deskBefore {
		if e, _ := r.Fields["email"].(string); e != "" {
			deskEmails[strings.ToLower(e)] = true
		}
	}
	created := 0
	for _, r := range listAll(t, f.ctx, sc.crm, "Contacts") {
		e, _ := r.Fields["Email"].(string)
		if !r.CreatedAt.Before(since) && (e == "" || !deskEmails[strings.ToLower(e)]) {
			created++
		}
	}
	deskAfter := listAll(t, f.ctx, sc.desk, "contacts")
	if len(deskAfter) != len(deskBefore)+created || created == 0 {
		t.Fatalf("desk contacts: %d, want %d before and %d created", len(deskAfter), len(deskBefore), created)
	}
	seen := map[string]bool{}
	for _, r := range deskAfter {
		if e, _ := r.Fields["email"].(string); e != "" {
			if seen[strings.ToLower(e)] {
				t.Fatalf("%s is on the desk twice", e)
			}
			seen[strings.ToLower(e)] = true
		}
	}

	// Typed into both systems between two runs, without a notification:
	// the second run's index reads the desk's before the walk meets the CRM's.
	late, err := f.sb.Desk("us").CreateContact(desk.Fields{"lastName": "Late", "email": "late@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	lateCRM, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Late", "Email": "LATE@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	if run := runToEnd(); run.Failed != 0 {
		t.Fatalf("second run: %+v", run)
	}
	if l, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", lateCRM); err != nil || l.DeskID != late.ID() {
		t.Fatalf("the late CRM contact's link: %+v, %v (desk %s)", l, err, late.ID())
	}
	if n := len(listAll(t, f.ctx, sc.desk, "contacts")); n != len(deskAfter)+1 || deskConn.finds.Load() != 0 {
		t.Fatalf("desk contacts after the second run: %d, want %d; %d searches", n, len(deskAfter)+1, deskConn.finds.Load())
	}

	// A change notified outside the first sync matches through the vendor.
	other, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Webhook", "Email": "webhook@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", other)
	f.drain(t)
	if n := deskConn.finds.Load(); n != 1 {
		t.Fatalf("%d desk searches for a notified change, want 1", n)
	}
}
