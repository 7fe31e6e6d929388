package syncengine_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

// Changes made on either side without any webhook are captured by polling
// and then applied by the worker; a poll with nothing new enqueues nothing.
func TestPollingCapturesChangesWithoutWebhooks(t *testing.T) {
	f := newEngineFixture(t)
	p := &syncengine.Poller{DB: f.db, Connectors: f.w.Connectors, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PageSize: 50}
	// The first poll only places the cursors at "now".
	if n, err := p.PollConnection(f.ctx, f.conn); err != nil || n != 0 {
		t.Fatalf("first poll enqueued %d, %v", n, err)
	}
	// Modified times have second precision: make the edit land later.
	time.Sleep(1100 * time.Millisecond)
	crmID, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Polled", "Email": "polled@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.PollConnection(f.ctx, f.conn)
	if err != nil || n < 1 {
		t.Fatalf("poll after a CRM create enqueued %d, %v", n, err)
	}
	f.drain(t)
	if _, ok := f.sb.Desk("us").ContactByEmail("polled@new.example"); !ok {
		t.Fatal("polled CRM contact did not reach the desk")
	}
	if _, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", crmID); err != nil {
		t.Fatalf("no link for the polled contact: %v", err)
	}
	// Our own write to the desk is polled too, found to be an echo, and the
	// queue drains without writing back; after that, polls are quiet.
	time.Sleep(1100 * time.Millisecond)
	for range 3 {
		if _, err := p.PollConnection(f.ctx, f.conn); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
	}
	if n, err := p.PollConnection(f.ctx, f.conn); err != nil || n != 0 {
		t.Fatalf("poll with nothing new enqueued %d, %v", n, err)
	}
}

// A deletion whose notification never came is found in the deleted feed.
func TestPollingReadsTheDeletedFeed(t *testing.T) {
	f := newEngineFixture(t)
	p := &syncengine.Poller{DB: f.db, Connectors: f.w.Connectors, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PageSize: 50}
	crmID, _ := f.linkedContact(t, "feed@del.example")
	if _, err := p.PollConnection(f.ctx, f.conn); err != nil { // places the feed cursors
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := f.sb.CRM("us").Delete("Contacts", crmID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollConnection(f.ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if !f.unlinked(t, crmID) {
		t.Fatal("a deletion in the CRM's deleted feed did not unlink the record (policy NEVER)")
	}
}
