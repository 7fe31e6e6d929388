package desk_test

import (
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

func TestSeedIsDeterministicAndUsesDeskValues(t *testing.T) {
	world := seed.Generate(seed.Options{Seed: 3, People: 400, Accounts: 50, Products: 15, Now: worldNow})
	mk := func() *desk.Server {
		reg := oauth.NewRegistry(clock.NewManual(worldNow))
		return desk.New(desk.Options{DC: "us", Registry: reg, Clock: clock.NewManual(worldNow), World: world, Seed: 3})
	}
	a, b := mk(), mk()
	if a.OrgID() != b.OrgID() {
		t.Fatal("org ids differ")
	}
	ta, tb := a.IDs("tickets"), b.IDs("tickets")
	if !reflect.DeepEqual(ta, tb) || len(ta) == 0 {
		t.Fatalf("ticket ids differ or empty: %d vs %d", len(ta), len(tb))
	}
	last := ta[len(ta)-1]
	x, _ := a.Ticket(last)
	y, _ := b.Ticket(last)
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("tickets differ:\n%v\n%v", x, y)
	}
	// Lazily generated threads are the same whichever order they are read in.
	first := ta[0]
	a.Threads(first)
	thA := a.Threads(last)
	thB := b.Threads(last)
	if !reflect.DeepEqual(thA, thB) || len(thA) == 0 {
		t.Fatalf("threads differ")
	}

	inDesk, deskEmails := 0, map[string]bool{}
	for _, p := range world.People {
		if p.Presence.InDesk() {
			inDesk++
			deskEmails[p.Desk.Email] = true
		}
	}
	if n := a.Counts().Contacts; n != inDesk {
		t.Fatalf("%d contacts for %d people present in the desk", n, inDesk)
	}
	var differs, typed int
	for _, p := range world.People {
		if p.Presence != seed.Both || p.Email == "" || p.Desk.Email == p.Email {
			continue
		}
		c, ok := a.ContactByEmail(p.Desk.Email)
		if !ok {
			t.Fatalf("desk variant email %s not found", p.Desk.Email)
		}
		differs++
		if c.Str("phone") != p.Desk.Phone || c.Str("title") != p.Desk.Title {
			t.Fatalf("contact %v does not carry the desk values of %+v", c, p.Desk)
		}
		if c["cf"].(map[string]any)["cf_customer_type"] == p.CustomerType {
			typed++
		}
	}
	if differs == 0 || typed != differs {
		t.Fatalf("%d contacts use the CRM secondary email, %d carry the customer type", differs, typed)
	}
	for _, p := range world.People {
		if p.Presence == seed.OnlyCRM && p.Email != "" && !deskEmails[p.Email] {
			if _, ok := a.ContactByEmail(p.Email); ok {
				t.Fatalf("CRM-only person %s is in the desk", p.Email)
			}
		}
	}
}

// TestSeedScale seeds the 100,000-person world and reports the time and
// heap it takes. It is skipped with -short; under the race detector it
// only checks the sizes, as timings mean little there.
func TestSeedScale(t *testing.T) {
	if testing.Short() {
		t.Skip("large seed")
	}
	world := seed.Generate(seed.Options{Seed: 1, People: 100_000, Accounts: 20_000, Products: 2_000, Now: worldNow})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	s := desk.New(desk.Options{DC: "us", Registry: oauth.NewRegistry(clock.Real{}), Clock: clock.NewManual(worldNow), World: world, Seed: 1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := s.Counts()
	if n.Contacts < 60_000 || n.Articles != 10_000 || n.Categories != 200 || n.Tickets < 100_000 {
		t.Fatalf("sizes %+v", n)
	}
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("seeded %d contacts, %d accounts, %d tickets, %d articles in %d categories in %v; live heap +%d MB",
		n.Contacts, n.Accounts, n.Tickets, n.Articles, n.Categories, took.Round(time.Millisecond), heap>>20)
	if os.Getenv("DESK_SCALE_STRICT") != "" && took > 5*time.Second {
		t.Fatalf("seeding took %v", took)
	}
	runtime.KeepAlive(s)
}
