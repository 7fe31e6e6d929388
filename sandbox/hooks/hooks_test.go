package hooks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/hooks"
)

func TestDeliversInOrderAndRetries(t *testing.T) {
	var mu sync.Mutex
	var got []string
	failOnce := map[string]bool{"3": true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if failOnce[string(body)] {
			failOnce[string(body)] = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, string(body))
	}))
	defer srv.Close()
	d := hooks.New(slog.New(slog.NewTextHandler(io.Discard, nil)), 3)
	for i := range 6 {
		d.Send(hooks.Delivery{URL: srv.URL, Body: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if want := "0,1,2,3,4,5"; joined(got) != want {
		t.Fatalf("received %v, want %s in order", got, want)
	}
	if sent, failed := d.Counts(); sent != 6 || failed != 0 {
		t.Fatalf("counts %d sent %d failed", sent, failed)
	}
}

func TestGoneStopsRetrying(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusGone)
	}))
	defer srv.Close()
	d := hooks.New(slog.New(slog.NewTextHandler(io.Discard, nil)), 5)
	final := make(chan int, 1)
	d.Send(hooks.Delivery{URL: srv.URL, Body: []byte("{}"), Done: func(s int) { final <- s }})
	if s := <-final; s != http.StatusGone {
		t.Fatalf("final status %d", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("410 retried: %d calls", calls)
	}
}

func joined(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

// Flush may run while deliveries keep being sent (the fakes flush while
// their clients write): it returns once what was queued is attempted, and
// the race detector sees no misuse.
func TestFlushWhileSending(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	d := hooks.New(slog.New(slog.NewTextHandler(io.Discard, nil)), 1)
	var senders sync.WaitGroup
	for range 4 {
		senders.Go(func() {
			for range 50 {
				d.Send(hooks.Delivery{URL: srv.URL, Body: []byte("{}")})
			}
		})
	}
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	senders.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if sent, failed := d.Counts(); sent != 200 || failed != 0 || got.Load() != 200 {
		t.Fatalf("sent %d, failed %d, received %d; want 200, 0, 200", sent, failed, got.Load())
	}
}
