package leader_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/deskbridge/deskbridge/store/leader"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestOneLeaderAndFailover(t *testing.T) {
	t.Parallel()
	db := storetest.New(t).DB
	ctx := context.Background()
	a, b := leader.New(db, 42, quiet()), leader.New(db, 42, quiet())
	if err := a.IsLeader(ctx); err != nil {
		t.Fatalf("first replica: %v", err)
	}
	if err := b.IsLeader(ctx); !errors.Is(err, leader.ErrNotLeader) {
		t.Fatalf("second replica while the first leads: %v", err)
	}
	if err := a.IsLeader(ctx); err != nil {
		t.Fatalf("leader asked again: %v", err)
	}
	other := leader.New(db, 43, quiet())
	if err := other.IsLeader(ctx); err != nil {
		t.Fatalf("another key is another election: %v", err)
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.IsLeader(ctx); err != nil {
		t.Fatalf("after the leader resigned: %v", err)
	}
	if a.Leading() || !b.Leading() {
		t.Fatal("Leading disagrees with the election")
	}
}

// A leader whose session dies (a crashed replica, a cut connection) loses
// the lock to the others without anyone waiting for a timeout.
func TestLeaderSessionLossFailsOver(t *testing.T) {
	t.Parallel()
	db := storetest.New(t).DB
	ctx := context.Background()
	a, b := leader.New(db, 7, quiet()), leader.New(db, 7, quiet())
	if err := a.IsLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = 7 AND granted`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d lock holders: %v", killed, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.IsLeader(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no failover after the leader's session died")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.IsLeader(ctx); !errors.Is(err, leader.ErrNotLeader) {
		t.Fatalf("old leader after losing its session: %v", err)
	}
}

// Two schedulers with the same job: only the leader's runs.
func TestSchedulerRunsJobsOncePerCluster(t *testing.T) {
	t.Parallel()
	db := storetest.New(t).DB
	var runsA, runsB atomic.Int64
	start := func(counter *atomic.Int64) gocron.Scheduler {
		s, err := gocron.NewScheduler(gocron.WithDistributedElector(leader.New(db, 99, quiet())))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewJob(gocron.DurationJob(20*time.Millisecond), gocron.NewTask(func() { counter.Add(1) })); err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() { _ = s.Shutdown() })
		return s
	}
	start(&runsA)
	start(&runsB)
	deadline := time.Now().Add(10 * time.Second)
	for runsA.Load()+runsB.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatal("jobs never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if runsA.Load() > 0 && runsB.Load() > 0 {
		t.Fatalf("both replicas ran the job: %d and %d", runsA.Load(), runsB.Load())
	}
}
