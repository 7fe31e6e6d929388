package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
)

// BenchmarkChatToTicketSubscriber (issue 7 item 12): an attended chat ends in
// the SalesIQ sandbox; SalesIQ's signed webhook reaches the gateway, the
// automatic rule (ATTENDED, at chat end) makes the desk ticket with the
// transcript through the desk sandbox, and the CREATED event reaches the
// chat widget's visitorTickets subscription over WebSocket. One chat at a
// time; p50/p99 from the chat's end in SalesIQ to the widget's receipt
// (goal: p99 under 300 ms). The chat's start and pickup, and the widget's
// subscribe, happen off the clock.
func BenchmarkChatToTicketSubscriber(b *testing.B) {
	w, admin := startNotifiedWorld(b)
	cw := linkChat(b, w, admin)
	if r := w.ts.query(admin, `mutation { updateChatConversionRules(input: {chats: ATTENDED, timing: CHAT_END}) { id } }`, nil); len(r.Errors) > 0 {
		b.Fatalf("rules: %+v", r.Errors)
	}
	agent := w.ts.token("acme", auth.RoleAgent)
	widget := w.ts.dial(agent)
	widget.expect("connection_ack")
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.sb.Hooks().Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	support := cw.depts["Support"]
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		c, err := cw.siq.StartChat(salesiq.ChatStart{Name: fmt.Sprintf("Bench Visitor %d", i), Email: fmt.Sprintf("bench.%d@example.com", i),
			DepartmentID: support, Question: "How fast is this?"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cw.siq.PickUp(c.ID, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := cw.siq.OperatorReply(c.ID, "Let me check."); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("v%d", i)
		widget.subscribe(id, `subscription($id: String!) { visitorTickets(conversationId: $id) { type ticketDeskId ticket { deskId subject } } }`,
			map[string]any{"id": c.ID})
		waitFor(b, "the widget's subscription", func() bool { return w.ts.srv.bus.Subscribers() == 1 })
		flush()
		b.StartTimer()
		start := time.Now()
		if _, err := cw.siq.EndChat(c.ID); err != nil {
			b.Fatal(err)
		}
		msg, err := widget.next()
		if err != nil {
			b.Fatalf("chat %d: %v\n%s", i, err, grepLog(w.log.String(), "level=WARN")+grepLog(w.log.String(), "level=ERROR"))
		}
		latencies = append(latencies, time.Since(start))
		b.StopTimer()
		if msg["id"] != id || dig(msg, "payload", "data", "visitorTickets", "type") != "CREATED" {
			b.Fatalf("chat %d: %+v", i, msg)
		}
		widget.send(map[string]any{"id": id, "type": "complete"})
		waitFor(b, "the widget's subscription to end", func() bool { return w.ts.srv.bus.Subscribers() == 0 })
		b.StartTimer()
	}
	b.StopTimer()
	reportLatencies(b, latencies)
}
