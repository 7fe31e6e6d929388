package zoho

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// peakHeap samples the heap while a benchmark runs; the sandbox shares the
// process, so the figure bounds connector and sandbox together.
type peakHeap struct {
	stop chan struct{}
	wg   sync.WaitGroup
	base uint64
	peak atomic.Uint64
}

func watchHeap() *peakHeap {
	p := &peakHeap{stop: make(chan struct{})}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.base = ms.HeapAlloc
	p.peak.Store(ms.HeapAlloc)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > p.peak.Load() {
					p.peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	return p
}

// report stops sampling and reports the peak heap and its growth over the
// heap at the start (the seeded sandbox): the growth is what the run cost.
func (p *peakHeap) report(b *testing.B) {
	close(p.stop)
	p.wg.Wait()
	b.ReportMetric(float64(p.peak.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(p.peak.Load()-p.base)/(1<<20), "heap-growth-MB")
}

// BenchmarkCRMListContacts lists 100,000 contacts through the CRM
// connector, 200 per page as the engine's poller asks.
func BenchmarkCRMListContacts(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 100,000 contacts")
	}
	sb := startSandbox(b, sandbox.Config{People: 100_000, Accounts: 2000, Products: 50})
	conn, err := NewCRM(settingsFor(sb, connector.CRM, nil))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	want := sb.CRM("us").Count("Contacts")
	// Warm the sandbox's sorted listing and our field cache outside the timer.
	if _, err := conn.ListChanged(ctx, "Contacts", "", 200); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	heap := watchHeap()
	b.ResetTimer()
	total := 0
	for range b.N {
		var cur connector.Cursor
		n := 0
		for {
			p, err := conn.ListChanged(ctx, "Contacts", cur, 200)
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Records)
			cur = p.Next
			if p.Done {
				break
			}
		}
		if n != want {
			b.Fatalf("listed %d contacts, the sandbox holds %d", n, want)
		}
		total += n
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
	heap.report(b)
}

// BenchmarkDeskWriteContacts creates 10,000 contacts in the desk in
// batches of BatchSize (one request per record, concurrent within the
// connection's limit).
func BenchmarkDeskWriteContacts(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 10,000 contacts")
	}
	sb := startSandbox(b, sandbox.Config{People: 10, Accounts: 2, Products: 2})
	s := settingsFor(sb, connector.Desk, nil)
	s.MaxConcurrency = 16
	conn, err := NewDesk(s)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const n = 10_000
	runtime.GC()
	heap := watchHeap()
	b.ResetTimer()
	total := 0
	for iter := range b.N {
		ws := make([]connector.Write, n)
		for i := range ws {
			ws[i] = connector.Write{Op: connector.Create, Fields: map[string]any{
				"lastName": fmt.Sprintf("Bench%d", iter), "firstName": fmt.Sprint("P", i),
				"email": fmt.Sprintf("bench%d.%d@bench.example", iter, i)}}
		}
		for part := range slices.Chunk(ws, conn.BatchSize()) {
			res, err := conn.Write(ctx, "contacts", part)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		total += n
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
	heap.report(b)
}
