package syncengine

import (
	"context"
	"errors"
	"fmt"
	"time"
	// The schedules follow the org's IANA time zone; embed the zone
	// database so a container without one still knows them.
	_ "time/tzdata"

	"github.com/go-co-op/gocron/v2"
	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
)

// Scheduling of the KB sync (SPEC F2, G4; docs/KB.md, "Schedules").
//
// Every schedule's next run is a row in Postgres (next_run_at), computed
// here from the interval. A gocron job on the cluster's leader ticks every
// minute: it claims the due schedules (next_run_at <= now, FOR UPDATE SKIP
// LOCKED, moved past now in the same transaction, with one run per slot
// enforced by a unique index) and carries out the queued runs. So a run
// happens once per cluster, and a run missed while every replica was down
// happens at the next start.

// KBRunHour is the early-morning hour, in the settings' time zone, at which
// scheduled runs happen (the vendor says "early morning"; 03:00 is quiet in
// most businesses and clear of most DST changes, which happen at 00:00-02:00
// local in most zones).
const KBRunHour = 3

// kbTickEvery is how often the leader looks for due schedules.
const kbTickEvery = time.Minute

// kbStaleAfter is how long a running run may go without a heartbeat before
// it counts as abandoned (its replica died) and is started again; a run
// beats at least once per page of articles.
const kbStaleAfter = 2 * time.Minute

// kbMaxAttempts bounds how often an abandoned run is started again.
const kbMaxAttempts = 3

// NextKBRun is the first scheduled run strictly after after, at KBRunHour
// in loc:
//   - DAILY: every day;
//   - WEEKLY: on the weekday of the first sync;
//   - MONTHLY: on the day of the month of the first sync, or the month's
//     last day when it is shorter (the 31st runs on April 30th, February
//     28th or 29th).
//
// Before the first sync (firstSync nil) every interval runs the next
// morning; that run is the first sync and fixes the weekday or day.
func NextKBRun(interval string, firstSync *time.Time, loc *time.Location, after time.Time) time.Time {
	local := after.In(loc)
	y, m, d := local.Date()
	var anchor time.Time
	if firstSync != nil {
		anchor = firstSync.In(loc)
	}
	// A schedule fires at most once a day, so the next run is within the
	// next 32 days for any interval; a few more are harmless.
	for i := 0; i < 70; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, loc) // normalised: d+i may overflow the month
		if firstSync != nil && !kbRunsOn(interval, anchor, day) {
			continue
		}
		at := kbAt(day, loc)
		if at.After(after) {
			return at
		}
	}
	// Unreachable for the intervals above; keep the schedule moving anyway.
	return after.Add(24 * time.Hour)
}

// kbRunsOn reports whether a schedule anchored at anchor runs on day.
func kbRunsOn(interval string, anchor, day time.Time) bool {
	switch interval {
	case store.KBWeekly:
		return day.Weekday() == anchor.Weekday()
	case store.KBMonthly:
		want := anchor.Day()
		if last := kbDaysIn(day.Year(), day.Month()); want > last {
			want = last
		}
		return day.Day() == want
	}
	return true // DAILY
}

func kbDaysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// kbAt is KBRunHour on the given local day. On a day when that wall-clock
// time does not exist (a DST jump across it) time.Date moves it forward by
// the jump; when it happens twice (the clock set back across it) the first
// is taken.
func kbAt(day time.Time, loc *time.Location) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, KBRunHour, 0, 0, 0, loc)
}

// Schedule registers the KB sync's tick on sched: every minute, on the
// leader only when sched has a distributed elector, and once at start, so
// a run missed while every replica was down happens right away. ctx bounds
// the ticks' work.
func (s *KBService) Schedule(ctx context.Context, sched gocron.Scheduler) error {
	_, err := sched.NewJob(gocron.DurationJob(kbTickEvery), gocron.NewTask(func() {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("kb sync tick; the next one tries again", "err", err)
		}
	}), gocron.WithName("kb-sync"), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()))
	if err != nil {
		return fmt.Errorf("scheduling the kb sync: %w", err)
	}
	return nil
}

// KBTick says what one tick did.
type KBTick struct {
	Scheduled int // runs queued for due schedules
	Ran       int // runs carried out
	Requeued  int // abandoned runs put back in the queue
}

// Tick is one pass of the leader's job: put abandoned runs back in the
// queue, turn due schedules into queued runs, prune old runs, then carry
// out every queued run. Tests call it directly with a fake clock.
func (s *KBService) Tick(ctx context.Context) (KBTick, error) {
	var t KBTick
	now := s.clock.Now()
	requeued, failed, err := store.RequeueStaleKBRuns(ctx, s.db, kbStaleAfter, kbMaxAttempts, now)
	if err != nil {
		return t, err
	}
	t.Requeued = int(requeued)
	if requeued+failed > 0 {
		s.log.Warn("kb sync runs abandoned by a stopped replica", "requeued", requeued, "failed", failed)
	}
	if t.Scheduled, err = s.claimDue(ctx, now); err != nil {
		return t, err
	}
	s.prune(ctx, now)
	for ctx.Err() == nil {
		ran, err := s.runQueued(ctx, 0)
		if err != nil {
			return t, err
		}
		if !ran {
			break
		}
		t.Ran++
	}
	return t, ctx.Err()
}

// claimDue queues a run for every due schedule and moves each schedule to
// its next slot, in one transaction per batch. A connection whose run is
// still going gets no second one: that run serves the slot.
func (s *KBService) claimDue(ctx context.Context, now time.Time) (int, error) {
	queued := 0
	for {
		n, claimed := 0, 0
		err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
			n, claimed = 0, 0
			due, err := store.DueKBSchedules(ctx, tx, now, 50)
			if err != nil {
				return err
			}
			claimed = len(due)
			for _, k := range due {
				ok, err := s.claimOne(ctx, tx, k, now)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return queued, fmt.Errorf("claiming due kb schedules: %w", err)
		}
		queued += n
		if claimed < 50 {
			return queued, nil
		}
	}
}

func (s *KBService) claimOne(ctx context.Context, tx *sqlx.Tx, k store.KBSettings, now time.Time) (bool, error) {
	loc, err := loadKBZone(k.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	slot := *k.NextRunAt
	next := NextKBRun(k.Interval, k.FirstSyncAt, loc, now)
	if _, err := store.SetKBSchedule(ctx, tx, k.OrgID, k.ConnectionID, &next, nil); err != nil {
		return false, err
	}
	if _, err := store.ActiveKBRun(ctx, tx, k.OrgID, k.ConnectionID); err == nil {
		s.log.Info("kb sync slot served by the run already going", "connection_id", k.ConnectionID, "slot", slot)
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	run, err := store.InsertKBRun(ctx, tx, store.NewKBRun{OrgID: k.OrgID, ConnectionID: k.ConnectionID,
		Trigger: store.KBTriggerScheduled, ScheduledFor: &slot, CreatedAt: now})
	if err != nil {
		// Within this transaction the row lock makes a conflict impossible
		// unless the database is already inconsistent: fail the batch.
		return false, err
	}
	s.log.Info("kb sync scheduled run queued", "connection_id", k.ConnectionID, "run_id", run.ID, "slot", slot,
		"late_by", now.Sub(slot).Round(time.Second), "next_run_at", next)
	return true, nil
}

// prune drops finished runs older than the retention, at most hourly.
func (s *KBService) prune(ctx context.Context, now time.Time) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if now.Sub(s.prunedAt) < time.Hour && !s.prunedAt.IsZero() {
		return
	}
	s.prunedAt = now
	if n, err := store.PruneKBRuns(ctx, s.db, now.Add(-s.retention)); err != nil {
		s.log.Warn("pruning kb sync runs", "err", err)
	} else if n > 0 {
		s.log.Info("pruned kb sync runs", "runs", n, "older_than", s.retention)
	}
}

// kick starts a queued run in this process at once, when it runs KB work;
// otherwise the leader's next tick starts it. The claim makes it run once
// whoever asks first.
func (s *KBService) kick(runID int64) {
	if !s.runHere {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if _, err := s.runQueued(s.base, runID); err != nil && s.base.Err() == nil {
			s.log.Warn("kb sync run; the leader's next tick tries again", "run_id", runID, "err", err)
		}
	}()
}

// runQueued claims a queued run (runID, or the oldest when 0) and carries
// it out; false when none was queued.
func (s *KBService) runQueued(ctx context.Context, runID int64) (bool, error) {
	run, err := store.ClaimKBRun(ctx, s.db, runID, s.name, s.clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.execute(ctx, run)
	return true, nil
}
