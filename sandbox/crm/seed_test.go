package crm_test

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/clock"
	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/sandbox/seed"
)

func TestSeedIsFaithfulToTheWorld(t *testing.T) {
	w := seed.Generate(seed.Options{Seed: 5, People: 300, Accounts: 30, Products: 20, Now: worldNow})
	clk := clock.NewManual(worldNow)
	a := crm.New(crm.Options{DC: "us", Registry: oauth.NewRegistry(clk), Clock: clk, World: w, Seed: 5})
	b := crm.New(crm.Options{DC: "us", Registry: oauth.NewRegistry(clk), Clock: clk, World: w, Seed: 5})
	for _, m := range []string{"Leads", "Contacts", "Accounts", "Deals", "Products", "Notes", "Calls", "Events", "Tasks"} {
		ia, ib := a.IDs(m), b.IDs(m)
		if !reflect.DeepEqual(ia, ib) || len(ia) == 0 {
			t.Fatalf("%s: ids differ between two seedings (%d vs %d)", m, len(ia), len(ib))
		}
		ra, _ := a.Record(m, ia[len(ia)/2])
		rb, _ := b.Record(m, ib[len(ib)/2])
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("%s: records differ: %v vs %v", m, ra, rb)
		}
	}

	inCRM := map[string]seed.Person{}
	want := 0
	for _, p := range w.People {
		if p.Presence.InCRM() {
			inCRM[strings.ToLower(p.FirstName+"|"+p.LastName+"|"+p.Email+"|"+p.Mobile)] = p
			want++
		}
	}
	if a.Count("Contacts") != want {
		t.Fatalf("%d contacts, want %d people in the CRM", a.Count("Contacts"), want)
	}
	var prevID string
	var prevCreated time.Time
	withAccount, withSecondary := 0, 0
	for _, id := range a.IDs("Contacts") {
		rec, _ := a.Record("Contacts", id)
		p, ok := inCRM[strings.ToLower(str(rec["First_Name"])+"|"+str(rec["Last_Name"])+"|"+str(rec["Email"])+"|"+str(rec["Mobile"]))]
		if !ok {
			t.Fatalf("contact %v is not a world person", rec)
		}
		if str(rec["Secondary_Email"]) != p.SecondaryEmail || str(rec["Customer_Type"]) != p.CustomerType || str(rec["Phone"]) != p.Phone {
			t.Fatalf("contact %v differs from %+v", rec, p)
		}
		created, _ := time.Parse(time.RFC3339, str(rec["Created_Time"]))
		modified, _ := time.Parse(time.RFC3339, str(rec["Modified_Time"]))
		if !created.Equal(p.CreatedAt) || modified.Before(created) || modified.After(worldNow) {
			t.Fatalf("times %v / %v for a person created %v", created, modified, p.CreatedAt)
		}
		if id <= prevID || created.Before(prevCreated) {
			t.Fatalf("ids should follow creation time: %s (%v) after %s (%v)", id, created, prevID, prevCreated)
		}
		prevID, prevCreated = id, created
		if rec["Account_Name"] != nil {
			withAccount++
			acc := w.Accounts[p.AccountKey]
			if obj(rec["Account_Name"])["name"] != acc.Name || !acc.Presence.InCRM() {
				t.Fatalf("account lookup %v for %+v", rec["Account_Name"], acc)
			}
		}
		if p.SecondaryEmail != "" {
			withSecondary++
		}
	}
	if withAccount == 0 || withSecondary == 0 {
		t.Fatalf("%d contacts with accounts, %d with secondary emails", withAccount, withSecondary)
	}
	// Bigin draws the same people, with Pipelines and no Leads.
	bg := crm.New(crm.Options{Flavor: crm.Bigin, DC: "us", Registry: oauth.NewRegistry(clk), Clock: clk, World: w, Seed: 5})
	if bg.Count("Contacts") != want || bg.Count("Pipelines") == 0 || bg.Count("Leads") != 0 {
		t.Fatalf("Bigin: %d contacts, %d pipelines, %d leads", bg.Count("Contacts"), bg.Count("Pipelines"), bg.Count("Leads"))
	}
}

func TestSeedsALargeOrgQuickly(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 people")
	}
	people := 100_000
	if raceEnabled {
		people = 20_000 // the race detector makes allocation-heavy code ~10x slower
	}
	w := seed.Generate(seed.Options{Seed: 1, People: people, Accounts: people / 5, Products: people / 20, Now: worldNow})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	clk := clock.NewManual(worldNow)
	start := time.Now()
	s := crm.New(crm.Options{DC: "us", Registry: oauth.NewRegistry(clk), Clock: clk, World: w, Seed: 1})
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	total := 0
	for _, m := range []string{"Leads", "Contacts", "Accounts", "Deals", "Products", "Notes", "Calls", "Events", "Tasks"} {
		total += s.Count(m)
	}
	t.Logf("seeded %d people: %d contacts, %d records in all, in %v; heap grew %d MiB",
		people, s.Count("Contacts"), total, took.Round(time.Millisecond), (after.HeapAlloc-before.HeapAlloc)>>20)
	if !raceEnabled && took > 30*time.Second {
		t.Fatalf("seeding took %v", took)
	}
	runtime.KeepAlive(w)
	runtime.KeepAlive(s)
}
