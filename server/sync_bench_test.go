package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

// BenchmarkCRMChangeToDeskLatency measures, per edit, the time from a
// contact changed in the CRM to the change visible on the desk record: the
// CRM's watch callback to /webhooks, the queue, a woken worker, a fresh read,
// reconcile, the desk write. Polling is off, so only notifications carry it.
// It reports p50, p99 and max in milliseconds (everything on one machine:
// sandbox, gateway, PostgreSQL).
func BenchmarkCRMChangeToDeskLatency(b *testing.B) {
	w, _ := startNotifiedWorld(b)
	crmSide, deskSide := w.sb.CRM("us"), w.sb.Desk("us")
	crmID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Bench", "Email": "bench@new.example"})
	if err != nil {
		b.Fatal(err)
	}
	waitFor(b, "the first sync of the contact", func() bool {
		_, ok := deskSide.ContactByEmail("bench@new.example")
		return ok
	})
	rec, _ := deskSide.ContactByEmail("bench@new.example")
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		want := fmt.Sprintf("title %d", i)
		start := time.Now()
		if err := crmSide.Edit("Contacts", crmID, map[string]any{"Title": want}); err != nil {
			b.Fatal(err)
		}
		for {
			got, _ := deskSide.Contact(rec.ID())
			if got["title"] == want {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("edit %d never reached the desk", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, latencies)
}

// BenchmarkDeskTicketChangeToSubscriber (issue 6 item 11): a ticket changed
// in the desk sandbox, to the desk's webhook, to the ticket event at a
// subscribed WebSocket client, one change at a time: p50/p99 from the
// change in the desk to the client's receipt.
func BenchmarkDeskTicketChangeToSubscriber(b *testing.B) {
	w, admin := startNotifiedWorld(b)
	deskSide := w.sb.Desk("us")
	ticketID := deskSide.IDs("tickets")[0]
	sub := w.ts.dial(admin)
	sub.expect("connection_ack")
	sub.subscribe("t", `subscription($f: TicketEventFilter, $after: ID) { ticketEvents(filter: $f, after: $after) { id type ticket { deskId subject } } }`,
		map[string]any{"f": map[string]any{"ticketDeskId": ticketID}, "after": w.ts.streamPosition(admin)})
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		want := fmt.Sprintf("subject %d", i)
		start := time.Now()
		if _, err := deskSide.UpdateTicket(ticketID, map[string]any{"subject": want}); err != nil {
			b.Fatal(err)
		}
		msg := sub.expect("next")
		if got := dig(msg, "payload", "data", "ticketEvents", "ticket", "subject"); got != want {
			b.Fatalf("change %d: the event shows %v, want %q", i, got, want)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, latencies)
}

// startNotifiedWorld is a connected world whose changes travel by the
// vendors' notifications only (polling off), once both subscriptions are
// in place, and an admin token of its org.
func startNotifiedWorld(b *testing.B) (*connectionWorld, string) {
	b.Helper()
	w := startConnectionWorld(b, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "1h", "DESKBRIDGE_WATCH_INTERVAL": "100ms", "DESKBRIDGE_LOG_LEVEL": "warn"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	crmOrgID := w.crmOrgID(b, admin)
	if r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(crmOrgID)}); len(r.Errors) > 0 {
		b.Fatalf("connectCrm: %+v", r.Errors)
	}
	waitFor(b, "the vendor subscriptions", func() bool {
		var n int
		_ = w.ts.srv.db.DB.Get(&n, `SELECT count(*) FROM connection_watches`)
		return n == 2
	})
	return w, admin
}

// reportLatencies reports p50, p99 and max of latencies in milliseconds.
func reportLatencies(b *testing.B, latencies []time.Duration) {
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	n := len(latencies)
	b.ReportMetric(ms(latencies[n/2]), "p50-ms")
	b.ReportMetric(ms(latencies[min(n-1, n*99/100)]), "p99-ms")
	b.ReportMetric(ms(latencies[n-1]), "max-ms")
}
