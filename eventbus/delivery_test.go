package eventbus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/store"
)

// conversions counts calls of countingID, a package-level converter.
var conversions atomic.Int64

func countingID(e store.Event) int64 {
	conversions.Add(1)
	return e.ID
}

// One converter is called once per event however many subscribers want it;
// closures that capture different values are different converters.
func TestConversionsAreShared(t *testing.T) {
	f := newFixture(t) // not parallel: conversions is global
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var shared []<-chan int64
	for range 10 {
		ch, err := eventbus.Subscribe(ctx, f.bus, eventbus.Filter{OrgID: f.org, Permissions: []string{"p"}}, -1, countingID)
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, ch)
	}
	tagged := func(tag int64) <-chan int64 {
		ch, err := eventbus.Subscribe(ctx, f.bus, eventbus.Filter{OrgID: f.org, Permissions: []string{"p"}}, -1,
			func(e store.Event) int64 { return e.ID*1000 + tag })
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	one, two := tagged(1), tagged(2)
	conversions.Store(0)
	var want []int64
	for range 5 {
		want = append(want, f.emit(t, "E", "p"))
	}
	for _, ch := range shared {
		assertExactly(t, receive(t, ch, len(want)), want)
	}
	for tag, ch := range map[int64]<-chan int64{1: one, 2: two} {
		var tagged []int64
		for _, id := range want {
			tagged = append(tagged, id*1000+tag)
		}
		assertExactly(t, receive(t, ch, len(want)), tagged)
	}
	// Live delivery converts once per event; a subscriber that fell behind
	// (none should here) would convert on its own.
	if n := conversions.Load(); n != int64(len(want)) {
		t.Fatalf("%d conversions for %d events and 10 subscribers", n, len(want))
	}
}

// Subscribers that come and go while events stream, some reading slowly
// (so they fall behind and catch up, over and over), each get exactly the
// events after their start, in order.
func TestSubscribersCatchingUpWhileEventsStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	head := f.emit(t, "HEAD", "p")
	const n = 400
	emitted := make(chan []int64, 1)
	var last atomic.Int64 // the last event's id, once written
	go func() {
		var ids []int64
		for range n {
			ids = append(ids, f.emit(t, "E", "p"))
			// Paced, so the stream outlasts the staggered starts: a
			// live-only subscriber starting after the last event rightly
			// gets none.
			time.Sleep(2 * time.Millisecond)
		}
		last.Store(ids[len(ids)-1])
		emitted <- ids
	}()
	type result struct {
		after int64
		got   []int64
	}
	results := make([]result, 24)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			// Staggered starts: some from the head before the stream,
			// some live-only from wherever the stream is by then.
			time.Sleep(time.Duration(i) * 15 * time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			after := head
			if i%2 == 1 {
				after = -1
			}
			ch, err := eventbus.Subscribe(ctx, f.bus, eventbus.Filter{OrgID: f.org, Permissions: []string{"p"}}, after,
				func(e store.Event) int64 { return e.ID })
			if err != nil {
				t.Error(err)
				return
			}
			r := result{after: after}
			defer func() { results[i] = r }()
			deadline := time.After(60 * time.Second)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case id := <-ch:
					r.got = append(r.got, id)
					if i%3 == 0 && len(r.got)%40 == 0 {
						time.Sleep(100 * time.Millisecond) // fall behind
					}
				case <-tick.C:
				case <-deadline:
					return
				}
				if end := last.Load(); end != 0 && len(r.got) > 0 && r.got[len(r.got)-1] == end {
					return
				}
			}
		})
	}
	ids := <-emitted
	wg.Wait()
	end := ids[len(ids)-1]
	for i, r := range results {
		if len(r.got) == 0 || r.got[len(r.got)-1] != end {
			t.Fatalf("subscriber %d (after %d) ended at %v, want every event up to %d", i, r.after, r.got[max(0, len(r.got)-3):], end)
		}
		want := ids
		if r.after < 0 {
			// Live only: from its first event on, none missing.
			for len(want) > 0 && want[0] < r.got[0] {
				want = want[1:]
			}
		}
		assertExactly(t, r.got, want)
	}
}
