package syncengine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/leader"
	"github.com/deskbridge/deskbridge/syncengine"
)

// The leader prunes sync history older than the retention and keeps the rest.
func TestEngineKeepsHistoryForItsRetention(t *testing.T) {
	f := newEngineFixture(t)
	for _, at := range []time.Time{time.Now().Add(-8 * 24 * time.Hour), time.Now().Add(-time.Hour)} {
		if err := store.AddHistory(f.ctx, f.db, store.HistoryBucket{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID,
			Bucket: store.HistoryHour(at), Module: "contacts", Direction: store.DirectionCRMToDesk, Added: 1}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &syncengine.Engine{DB: f.db, Connectors: f.w.Connectors, Log: log, Elector: leader.New(f.db.DB, 4242, log),
		PollEvery: time.Hour, FirstSyncEvery: time.Hour, Workers: 1}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := store.History(f.ctx, f.db, f.conn.OrgID, f.conn.ID, time.Now().Add(-30*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(h) == 1 {
			if !h[0].Bucket.After(time.Now().Add(-2 * time.Hour)) {
				t.Fatalf("kept the wrong bucket: %v", h[0].Bucket)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history not pruned: %d buckets", len(h))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
