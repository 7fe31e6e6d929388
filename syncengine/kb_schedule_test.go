package syncengine_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

func kbZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The schedule rules, one slot at a time: DAILY at 03:00 local, WEEKLY on
// the first sync's weekday, MONTHLY on its day clamped to the month's end,
// across DST changes in the org's zone.
func TestNextKBRun(t *testing.T) {
	t.Parallel()
	tokyo, ny, chatham := kbZone(t, "Asia/Tokyo"), kbZone(t, "America/New_York"), kbZone(t, "Pacific/Chatham")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	ptr := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name     string
		interval string
		first    *time.Time
		loc      *time.Location
		after    time.Time
		want     time.Time
	}{
		{"daily, later today", store.KBDaily, nil, tokyo, at(tokyo, 2026, 1, 30, 1, 0), at(tokyo, 2026, 1, 30, 3, 0)},
		{"daily, after 03:00", store.KBDaily, nil, tokyo, at(tokyo, 2026, 1, 30, 10, 0), at(tokyo, 2026, 1, 31, 3, 0)},
		{"daily, exactly 03:00 is not after", store.KBDaily, nil, tokyo, at(tokyo, 2026, 1, 31, 3, 0), at(tokyo, 2026, 2, 1, 3, 0)},
		{"daily, year end", store.KBDaily, nil, tokyo, at(tokyo, 2026, 12, 31, 4, 0), at(tokyo, 2027, 1, 1, 3, 0)},
		{"weekly before the first sync runs next morning", store.KBWeekly, nil, tokyo, at(tokyo, 2026, 1, 30, 10, 0), at(tokyo, 2026, 1, 31, 3, 0)},
		{"monthly before the first sync runs next morning", store.KBMonthly, nil, tokyo, at(tokyo, 2026, 1, 30, 10, 0), at(tokyo, 2026, 1, 31, 3, 0)},
		// 2026-01-31 is a Saturday; 2026-02-02 a Monday.
		{"weekly on the first sync's weekday", store.KBWeekly, ptr(at(tokyo, 2026, 1, 31, 3, 0)), tokyo, at(tokyo, 2026, 1, 31, 3, 1), at(tokyo, 2026, 2, 7, 3, 0)},
		{"weekly after a sync now on Monday 10:00", store.KBWeekly, ptr(at(tokyo, 2026, 2, 2, 10, 0)), tokyo, at(tokyo, 2026, 2, 2, 10, 0), at(tokyo, 2026, 2, 9, 3, 0)},
		{"weekly, weekday taken in the org's zone", store.KBWeekly, ptr(time.Date(2026, 2, 1, 20, 0, 0, 0, time.UTC)), tokyo, at(tokyo, 2026, 2, 3, 0, 0), at(tokyo, 2026, 2, 9, 3, 0)},
		{"monthly on the 15th", store.KBMonthly, ptr(at(tokyo, 2026, 1, 15, 3, 0)), tokyo, at(tokyo, 2026, 1, 15, 3, 1), at(tokyo, 2026, 2, 15, 3, 0)},
		{"monthly on the 31st: February's last day", store.KBMonthly, ptr(at(tokyo, 2026, 1, 31, 3, 0)), tokyo, at(tokyo, 2026, 1, 31, 3, 1), at(tokyo, 2026, 2, 28, 3, 0)},
		{"monthly on the 31st: back to the 31st", store.KBMonthly, ptr(at(tokyo, 2026, 1, 31, 3, 0)), tokyo, at(tokyo, 2026, 2, 28, 3, 1), at(tokyo, 2026, 3, 31, 3, 0)},
		{"monthly on the 31st: April's 30th", store.KBMonthly, ptr(at(tokyo, 2026, 1, 31, 3, 0)), tokyo, at(tokyo, 2026, 3, 31, 3, 1), at(tokyo, 2026, 4, 30, 3, 0)},
		{"monthly on the 31st: leap February", store.KBMonthly, ptr(at(tokyo, 2026, 1, 31, 3, 0)), tokyo, at(tokyo, 2028, 2, 1, 0, 0), at(tokyo, 2028, 2, 29, 3, 0)},
		{"monthly on the 30th: February's last day", store.KBMonthly, ptr(at(tokyo, 2026, 1, 30, 11, 0)), tokyo, at(tokyo, 2026, 2, 1, 0, 0), at(tokyo, 2026, 2, 28, 3, 0)},
		{"monthly on the 29th in a leap year", store.KBMonthly, ptr(at(tokyo, 2026, 1, 29, 3, 0)), tokyo, at(tokyo, 2028, 2, 1, 0, 0), at(tokyo, 2028, 2, 29, 3, 0)},
		// New York: clocks go forward on 2026-03-08 at 02:00, back on
		// 2026-11-01 at 02:00. 03:00 local stays 03:00 local.
		{"dst forward: 03:00 EDT", store.KBDaily, nil, ny, at(ny, 2026, 3, 7, 3, 0), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},
		{"dst back: 03:00 EST", store.KBDaily, nil, ny, at(ny, 2026, 10, 31, 3, 0), time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		got := syncengine.NextKBRun(c.interval, c.first, c.loc, c.after)
		if !got.Equal(c.want) {
			t.Errorf("%s: NextKBRun(after %s) = %s, want %s", c.name, c.after, got.In(c.loc), c.want.In(c.loc))
		}
	}

	// Across both New York changes the daily slot stays at 03:00 local:
	// 23 hours apart in March, 25 in November, 24 otherwise.
	for _, span := range []struct {
		from, to time.Time
		short    bool
	}{{at(ny, 2026, 3, 1, 4, 0), at(ny, 2026, 3, 15, 0, 0), true}, {at(ny, 2026, 10, 25, 4, 0), at(ny, 2026, 11, 8, 0, 0), false}} {
		prev := syncengine.NextKBRun(store.KBDaily, nil, ny, span.from)
		changes := 0
		for prev.Before(span.to) {
			next := syncengine.NextKBRun(store.KBDaily, nil, ny, prev)
			if l := next.In(ny); l.Hour() != 3 || l.Minute() != 0 {
				t.Fatalf("daily slot at %s local", l)
			}
			switch gap := next.Sub(prev); gap {
			case 24 * time.Hour:
			case 23 * time.Hour, 25 * time.Hour:
				changes++
				if (gap == 23*time.Hour) != span.short {
					t.Fatalf("gap %s across the change at %s", gap, next)
				}
			default:
				t.Fatalf("gap %s between %s and %s", gap, prev, next)
			}
			prev = next
		}
		if changes != 1 {
			t.Fatalf("%d DST changes seen between %s and %s", changes, span.from, span.to)
		}
	}

	// Chatham's clocks jump from 02:45 to 03:45 on 2026-09-27: 03:00 does
	// not exist that day. The run still happens that morning, once, and
	// the schedule moves on to the 28th.
	slot := syncengine.NextKBRun(store.KBDaily, nil, chatham, at(chatham, 2026, 9, 26, 4, 0))
	if l := slot.In(chatham); l.Day() != 27 || l.Hour() < 3 || l.Hour() > 4 {
		t.Fatalf("the slot of the day without 03:00 is %s", l)
	}
	if next := syncengine.NextKBRun(store.KBDaily, nil, chatham, slot); next.In(chatham).Day() != 28 || next.In(chatham).Hour() != 3 {
		t.Fatalf("the slot after it is %s", next.In(chatham))
	}
	// Every interval moves strictly forward, whatever the input.
	for _, iv := range []string{store.KBDaily, store.KBWeekly, store.KBMonthly} {
		first := at(chatham, 2026, 1, 31, 9, 0)
		prev := at(chatham, 2026, 1, 1, 0, 0)
		for range 40 {
			next := syncengine.NextKBRun(iv, &first, chatham, prev)
			if !next.After(prev) || next.Sub(prev) > 32*24*time.Hour {
				t.Fatalf("%s: %s after %s", iv, next, prev)
			}
			prev = next
		}
	}
}

// advanceTo moves the world's fake clock to t.
func (w *kbWorld) advanceTo(t time.Time) {
	w.t.Helper()
	if d := t.Sub(w.clock.Now()); d > 0 {
		w.clock.Advance(d)
	} else if d < 0 {
		w.t.Fatalf("the clock cannot go back from %s to %s", w.clock.Now(), t)
	}
}

// tickAt moves the clock to t, ticks, and returns what the tick did.
func (w *kbWorld) tickAt(t time.Time) syncengine.KBTick {
	w.t.Helper()
	w.advanceTo(t)
	tick, err := w.kb.Tick(context.Background())
	if err != nil {
		w.t.Fatalf("tick at %s: %v", t, err)
	}
	return tick
}

func (w *kbWorld) settings() store.KBSettings {
	w.t.Helper()
	k, err := store.GetKBSettings(context.Background(), w.db, w.admin.OrgID, w.conn.ID, false)
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

// wantScheduledRun checks that the newest run is a DONE scheduled run for
// slot, and the only run of that slot. (Runs older than the retention, 90
// days, are pruned as the clock moves on.)
func (w *kbWorld) wantScheduledRun(slot time.Time) {
	w.t.Helper()
	rs, err := store.ListKBRuns(context.Background(), w.db, w.admin.OrgID, w.conn.ID, 100, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(rs) == 0 {
		w.t.Fatal("no runs")
	}
	r := rs[0]
	if r.Trigger != store.KBTriggerScheduled || r.Status != store.KBRunDone || r.ScheduledFor == nil || !r.ScheduledFor.Equal(slot) {
		w.t.Fatalf("latest run = %+v (slot %v), want a DONE scheduled run for %s", r, r.ScheduledFor, slot)
	}
	for _, o := range rs[1:] {
		if o.ScheduledFor != nil && o.ScheduledFor.Equal(slot) {
			w.t.Fatalf("slot %s has two runs: %d and %d", slot, r.ID, o.ID)
		}
	}
}

// The schedule driven by a fake clock against a real database and the
// sandbox: the first run fixes the weekday and day; a run missed while
// nothing ticked (every replica down for five weeks) happens once at the
// next tick; DAILY keeps 03:00 local across a DST change; MONTHLY on the
// 31st runs on April 30th; WEEKLY on the first sync's weekday.
func TestKBScheduleWithAFakeClock(t *testing.T) {
	t.Parallel()
	w := startKBWorld(t)
	ny := kbZone(t, "America/New_York")
	tz := "America/New_York"
	w.update(syncengine.KBChange{SalesIQ: w.portal(), TimeZone: &tz}) // DAILY, no departments: runs are quick
	slot := time.Date(2026, 1, 31, 3, 0, 0, 0, ny)                    // 08:00Z
	if k := w.settings(); k.NextRunAt == nil || !k.NextRunAt.Equal(slot) || k.FirstSyncAt != nil {
		t.Fatalf("first schedule = %+v, want next %s", k, slot)
	}
	if tick := w.tickAt(slot.Add(-time.Minute)); tick.Scheduled != 0 || tick.Ran != 0 {
		t.Fatalf("a minute early: %+v", tick)
	}
	if tick := w.tickAt(slot.Add(30 * time.Second)); tick.Scheduled != 1 || tick.Ran != 1 {
		t.Fatalf("at the slot: %+v", tick)
	}
	w.wantScheduledRun(slot)
	k := w.settings()
	if k.FirstSyncAt == nil || !k.FirstSyncAt.Equal(slot.Add(30*time.Second)) || !k.NextRunAt.Equal(slot.AddDate(0, 0, 1)) {
		t.Fatalf("after the first sync: %+v", k)
	}
	if tick := w.tickAt(slot.Add(90 * time.Second)); tick.Scheduled != 0 {
		t.Fatalf("the same slot twice: %+v", tick)
	}

	// Downtime: nothing ticks from Jan 31 to Mar 7. The missed slot runs
	// once, late, and the schedule moves to the next one.
	missed := slot.AddDate(0, 0, 1)
	if tick := w.tickAt(time.Date(2026, 3, 7, 9, 30, 0, 0, ny)); tick.Scheduled != 1 || tick.Ran != 1 {
		t.Fatalf("after downtime: %+v", tick)
	}
	w.wantScheduledRun(missed)
	dst := time.Date(2026, 3, 8, 3, 0, 0, 0, ny) // EDT: 07:00Z, 22.5 hours after the tick above
	if k := w.settings(); !k.NextRunAt.Equal(dst) || !dst.Equal(time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("next after downtime = %s, want %s", k.NextRunAt, dst)
	}
	if tick := w.tickAt(dst.Add(-30 * time.Second)); tick.Scheduled != 0 {
		t.Fatalf("before the DST slot: %+v", tick)
	}
	w.tickAt(dst.Add(30 * time.Second))
	w.wantScheduledRun(dst)
	if k := w.settings(); !k.NextRunAt.Equal(time.Date(2026, 3, 9, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("next after the DST slot = %s", k.NextRunAt)
	}

	// MONTHLY on the first sync's day, the 31st.
	monthly := store.KBMonthly
	w.update(syncengine.KBChange{Interval: &monthly})
	mar31 := time.Date(2026, 3, 31, 3, 0, 0, 0, ny)
	if k := w.settings(); !k.NextRunAt.Equal(mar31) {
		t.Fatalf("monthly next = %s, want %s", k.NextRunAt, mar31)
	}
	if tick := w.tickAt(time.Date(2026, 3, 30, 3, 0, 30, 0, ny)); tick.Scheduled != 0 {
		t.Fatalf("monthly on the 30th: %+v", tick)
	}
	w.tickAt(mar31.Add(30 * time.Second))
	w.wantScheduledRun(mar31)
	apr30 := time.Date(2026, 4, 30, 3, 0, 0, 0, ny)
	if k := w.settings(); !k.NextRunAt.Equal(apr30) {
		t.Fatalf("monthly after March 31st = %s, want April 30th", k.NextRunAt)
	}
	w.tickAt(apr30.Add(30 * time.Second))
	w.wantScheduledRun(apr30)

	// WEEKLY on the first sync's weekday: Saturday.
	weekly := store.KBWeekly
	w.update(syncengine.KBChange{Interval: &weekly})
	sat := time.Date(2026, 5, 2, 3, 0, 0, 0, ny)
	if k := w.settings(); !k.NextRunAt.Equal(sat) || sat.Weekday() != time.Saturday {
		t.Fatalf("weekly next = %s, want %s", k.NextRunAt, sat)
	}
	if tick := w.tickAt(sat.AddDate(0, 0, -1).Add(time.Minute)); tick.Scheduled != 0 { // Friday
		t.Fatalf("weekly ran on a Friday: %+v", tick)
	}
	if tick := w.tickAt(sat.Add(time.Minute)); tick.Scheduled != 1 || tick.Ran != 1 {
		t.Fatalf("weekly on Saturday: %+v, settings %+v", tick, w.settings())
	}
	w.wantScheduledRun(sat)
	if k := w.settings(); !k.NextRunAt.Equal(sat.AddDate(0, 0, 7)) {
		t.Fatalf("weekly after a run = %s", k.NextRunAt)
	}

	// A time zone change reschedules in the new zone, same weekday.
	tokyo := "Asia/Tokyo"
	w.update(syncengine.KBChange{TimeZone: &tokyo})
	want := time.Date(2026, 5, 9, 3, 0, 0, 0, kbZone(t, tokyo))
	if k := w.settings(); !k.NextRunAt.Equal(want) {
		t.Fatalf("after moving to Tokyo: %s, want %s", k.NextRunAt, want)
	}
}
