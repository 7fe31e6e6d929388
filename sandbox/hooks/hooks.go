// Package hooks delivers the sandbox vendors' outbound webhooks and change
// notifications: queued, in order per target URL, retried with backoff when
// the receiver fails, as the real services do. A receiver's status can be
// observed (Desk drops a subscription that answers 410 Gone).
package hooks

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Delivery is one POST to make.
type Delivery struct {
	URL    string
	Body   []byte
	Header http.Header
	// Done, if set, is told the final status (0 when every attempt failed
	// to connect); it runs on the delivery goroutine.
	Done func(status int)
}

// Deliverer posts deliveries, one worker per target URL so each receiver
// sees its events in order.
type Deliverer struct {
	client   *http.Client
	log      *slog.Logger
	attempts int
	backoff  time.Duration

	mu     sync.Mutex
	queues map[string][]Delivery
	busy   map[string]bool
	// pending counts deliveries not yet attempted to the end; idle is
	// closed whenever it drops to zero. (A WaitGroup cannot serve: Send
	// may Add while Flush Waits.)
	pending int
	idle    chan struct{}
	sent    int
	failed  int
}

// New returns a deliverer that tries each delivery up to attempts times.
func New(log *slog.Logger, attempts int) *Deliverer {
	if attempts < 1 {
		attempts = 1
	}
	return &Deliverer{
		client:   &http.Client{Timeout: 10 * time.Second},
		log:      log,
		attempts: attempts,
		backoff:  100 * time.Millisecond,
		queues:   map[string][]Delivery{},
		busy:     map[string]bool{},
	}
}

// Send queues a delivery and returns at once.
func (d *Deliverer) Send(del Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == 0 {
		d.idle = make(chan struct{})
	}
	d.pending++
	d.queues[del.URL] = append(d.queues[del.URL], del)
	if !d.busy[del.URL] {
		d.busy[del.URL] = true
		go d.drain(del.URL)
	}
}

// Flush waits until every queued delivery has been attempted, or ctx ends.
func (d *Deliverer) Flush(ctx context.Context) error {
	d.mu.Lock()
	if d.pending == 0 {
		d.mu.Unlock()
		return nil
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts returns how many deliveries succeeded and how many gave up.
func (d *Deliverer) Counts() (sent, failed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sent, d.failed
}

func (d *Deliverer) drain(url string) {
	for {
		d.mu.Lock()
		q := d.queues[url]
		if len(q) == 0 {
			d.busy[url] = false
			delete(d.queues, url)
			d.mu.Unlock()
			return
		}
		del := q[0]
		d.queues[url] = q[1:]
		d.mu.Unlock()

		status := d.post(del)
		d.mu.Lock()
		if status >= 200 && status < 300 {
			d.sent++
		} else {
			d.failed++
		}
		d.mu.Unlock()
		if del.Done != nil {
			del.Done(status)
		}
		d.mu.Lock()
		if d.pending--; d.pending == 0 {
			close(d.idle)
		}
		d.mu.Unlock()
	}
}

// post tries a delivery until it succeeds, the receiver says 410 Gone, or
// the attempts run out; it returns the last status.
func (d *Deliverer) post(del Delivery) int {
	wait := d.backoff
	status := 0
	for attempt := 1; attempt <= d.attempts; attempt++ {
		req, err := http.NewRequest(http.MethodPost, del.URL, bytes.NewReader(del.Body))
		if err != nil {
			d.log.Warn("webhook url is invalid", "url", del.URL, "err", err)
			return 0
		}
		for k, vs := range del.Header {
			req.Header[k] = vs
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := d.client.Do(req)
		if err == nil {
			resp.Body.Close()
			status = resp.StatusCode
			if status < 300 || status == http.StatusGone {
				return status
			}
		}
		if attempt < d.attempts {
			time.Sleep(wait)
			wait *= 2
		}
	}
	d.log.Warn("webhook delivery gave up", "url", del.URL, "status", status, "attempts", d.attempts)
	return status
}
