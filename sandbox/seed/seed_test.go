package seed_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/seed"
)

func TestWorldIsDeterministicAndVaried(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	o := seed.Options{Seed: 7, People: 2000, Accounts: 200, Products: 50, Now: now}
	a, b := seed.Generate(o), seed.Generate(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options gave different worlds")
	}
	if c := seed.Generate(seed.Options{Seed: 8, People: 2000, Accounts: 200, Products: 50, Now: now}); reflect.DeepEqual(a.People, c.People) {
		t.Fatal("a different seed gave the same people")
	}
	var noEmail, secondary, both, crmOnly, deskOnly, nearDup, jp, lastYear, deskOnSecondary, deskDiffers int
	emails := map[string]bool{}
	for _, p := range a.People {
		if p.Email == "" {
			noEmail++
		} else {
			key := strings.ToLower(p.Email)
			if emails[key] {
				t.Fatalf("email %s used twice", p.Email)
			}
			emails[key] = true
		}
		if p.SecondaryEmail != "" {
			secondary++
		}
		switch p.Presence {
		case seed.Both:
			both++
			if p.Desk.Email != p.Email {
				deskOnSecondary++
			}
			if p.Desk.Phone != p.Phone || p.Desk.Title != p.Title {
				deskDiffers++
			}
		case seed.OnlyCRM:
			crmOnly++
		case seed.OnlyDesk:
			deskOnly++
		}
		if p.NearDuplicateOf >= 0 {
			nearDup++
		}
		if p.Japanese {
			jp++
		}
		if p.CreatedAt.After(now.AddDate(-1, 0, 0)) {
			lastYear++
		}
		if p.CreatedAt.After(now) || p.CreatedAt.Before(now.AddDate(-2, 0, -1)) {
			t.Fatalf("created %v outside the two years before %v", p.CreatedAt, now)
		}
	}
	for name, n := range map[string]int{"without email": noEmail, "with a secondary email": secondary, "on both sides": both,
		"only in the CRM": crmOnly, "only in the desk": deskOnly, "near-duplicates": nearDup, "Japanese": jp,
		"matched on the secondary email": deskOnSecondary, "with differing desk values": deskDiffers} {
		if n == 0 {
			t.Errorf("no people %s", name)
		}
	}
	if lastYear < 800 || lastYear > 1200 {
		t.Errorf("%d of 2000 created in the last year, want about half", lastYear)
	}
}

func TestScalesToALargeOrg(t *testing.T) {
	w := seed.Generate(seed.Options{Seed: 1, People: 100_000, Accounts: 20_000, Products: 5_000})
	if len(w.People) != 100_000 || len(w.Accounts) != 20_000 || len(w.Products) != 5_000 {
		t.Fatalf("sizes %d/%d/%d", len(w.People), len(w.Accounts), len(w.Products))
	}
}
