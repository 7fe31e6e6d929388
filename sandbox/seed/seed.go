// Package seed generates the sandbox's sample data: one deterministic
// "world" of companies, people and products from which every fake vendor
// draws its records, so the same customer can exist in the CRM and in the
// help desk (same email, different field values), only in one of them, with
// or without an email, or as a near-duplicate of someone else. It scales
// from a handful of records to 100,000+ people; the same Options always give
// the same world.
package seed

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"
)

// Options size the world.
type Options struct {
	Seed     uint64
	People   int
	Accounts int
	Products int
	// Now is the reference time: records are created over the two years
	// before it, so a first sync that takes "the last year" takes about half.
	Now time.Time
	// CreatedWithin, when set, replaces those two years: a benchmark that
	// wants every record inside a first sync's window sets less than one.
	CreatedWithin time.Duration
}

// Demo is the size `make run` uses: small enough to read in GraphiQL.
func Demo(now time.Time) Options {
	return Options{Seed: 1, People: 60, Accounts: 12, Products: 10, Now: now}
}

// Presence says which systems hold a record.
type Presence uint8

// Where a record lives.
const (
	OnlyCRM Presence = iota + 1
	OnlyDesk
	Both
)

// InCRM reports whether the CRM side holds the record.
func (p Presence) InCRM() bool { return p == OnlyCRM || p == Both }

// InDesk reports whether the help desk holds the record.
func (p Presence) InDesk() bool { return p == OnlyDesk || p == Both }

// Account is a company.
type Account struct {
	Key       int
	Name      string
	DeskName  string // the desk's spelling: usually Name, sometimes a near variant
	Website   string
	Phone     string
	Industry  string
	City      string
	Japanese  bool
	CreatedAt time.Time
	Presence  Presence
}

// Person is a contact.
type Person struct {
	Key            int
	FirstName      string
	LastName       string
	Japanese       bool
	Email          string // "" for people without an email
	SecondaryEmail string // "" for most
	Phone          string
	Mobile         string
	Title          string
	AccountKey     int // -1 when the person has no company
	CustomerType   string
	CreatedAt      time.Time
	Presence       Presence
	// Desk holds the help desk's own values for a person present on both
	// sides: deliberately not always equal to the CRM's.
	Desk DeskVariant
	// NearDuplicateOf is the key of a person with the same name and company
	// but a slightly different email, or -1.
	NearDuplicateOf int
}

// DeskVariant is how the help desk's copy of a person differs.
type DeskVariant struct {
	Email string // usually the CRM Email; for some, the CRM's SecondaryEmail (SPEC B2)
	Phone string
	Title string
}

// Product is something the company sells.
type Product struct {
	Key       int
	Name      string
	Code      string
	Category  string
	UnitPrice float64
	Active    bool
	CreatedAt time.Time
	Presence  Presence
}

// World is the generated data set.
type World struct {
	Options  Options
	Accounts []Account
	People   []Person
	Products []Product
}

// Generate builds the world for o.
func Generate(o Options) *World {
	if o.Now.IsZero() {
		o.Now = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	}
	span := o.CreatedWithin
	if span <= 0 {
		span = 2 * 365 * 24 * time.Hour
	}
	created := func(rng *rand.Rand, now time.Time) time.Time { return createdWithin(rng, now, span) }
	w := &World{Options: o}
	rng := RNG(o.Seed, "accounts")
	for i := range o.Accounts {
		jp := rng.IntN(3) == 0
		name := companyName(rng, jp, i)
		a := Account{
			Key: i, Name: name, DeskName: name, Japanese: jp,
			Website:  "https://www." + slug(name, i) + ".example",
			Phone:    phone(rng, jp),
			Industry: pick(rng, industries), City: cityOf(rng, jp),
			CreatedAt: created(rng, o.Now), Presence: presence(rng),
		}
		if a.Presence == Both && rng.IntN(15) == 0 {
			a.DeskName = nearVariant(name) // "Acme Inc." vs "Acme, Inc."
		}
		w.Accounts = append(w.Accounts, a)
	}
	rng = RNG(o.Seed, "people")
	for i := range o.People {
		jp := rng.IntN(3) == 0
		first, last := personName(rng, jp)
		p := Person{
			Key: i, FirstName: first, LastName: last, Japanese: jp,
			Phone: phone(rng, jp), Mobile: phone(rng, jp), Title: pick(rng, titles),
			AccountKey: -1, CustomerType: pick(rng, customerTypes),
			CreatedAt: created(rng, o.Now), Presence: presence(rng), NearDuplicateOf: -1,
		}
		if o.Accounts > 0 && rng.IntN(5) != 0 {
			p.AccountKey = rng.IntN(o.Accounts)
		}
		domain := "mail.example"
		if p.AccountKey >= 0 {
			domain = slug(w.Accounts[p.AccountKey].Name, p.AccountKey) + ".example"
		}
		if rng.IntN(12) != 0 { // about one in twelve has no email
			p.Email = fmt.Sprintf("%s.%s%d@%s", ascii(first), ascii(last), i, domain)
		}
		if p.Email != "" && rng.IntN(4) == 0 {
			p.SecondaryEmail = fmt.Sprintf("%s%d@personal.example", ascii(first), i)
		}
		if i > 0 && rng.IntN(40) == 0 { // a near-duplicate of the previous person
			prev := w.People[i-1]
			p.FirstName, p.LastName, p.AccountKey, p.Japanese = prev.FirstName, prev.LastName, prev.AccountKey, prev.Japanese
			if prev.Email != "" {
				p.Email = strings.Replace(prev.Email, "@", "1@", 1)
			}
			p.NearDuplicateOf = prev.Key
		}
		p.Desk = DeskVariant{Email: p.Email, Phone: p.Phone, Title: p.Title}
		if p.Presence == Both {
			if p.SecondaryEmail != "" && rng.IntN(3) == 0 {
				p.Desk.Email = p.SecondaryEmail // matched only on the secondary email
			}
			if rng.IntN(2) == 0 {
				p.Desk.Phone = phone(rng, jp) // same person, different field values
			}
			if rng.IntN(3) == 0 {
				p.Desk.Title = pick(rng, titles)
			}
		}
		w.People = append(w.People, p)
	}
	rng = RNG(o.Seed, "products")
	for i := range o.Products {
		name := fmt.Sprintf("%s %s %d", pick(rng, productAdjectives), pick(rng, productNouns), 100+i)
		w.Products = append(w.Products, Product{
			Key: i, Name: name, Code: fmt.Sprintf("P-%05d", i), Category: pick(rng, productCategories),
			UnitPrice: float64(rng.IntN(200000)+500) / 100, Active: rng.IntN(10) != 0,
			CreatedAt: created(rng, o.Now), Presence: presence(rng),
		})
	}
	return w
}

// RNG returns a generator for one named stream of the world, so each
// vendor's extra data (deals, tickets, chats...) is deterministic and
// independent of how much the others draw.
func RNG(seed uint64, stream string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// presence: 50% on both sides, 30% only in the CRM, 20% only in the desk.
func presence(rng *rand.Rand) Presence {
	switch n := rng.IntN(10); {
	case n < 5:
		return Both
	case n < 8:
		return OnlyCRM
	default:
		return OnlyDesk
	}
}

// createdWithin spreads creation times over the span before now.
func createdWithin(rng *rand.Rand, now time.Time, span time.Duration) time.Time {
	return now.Add(-time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second)
}

func pick(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

func personName(rng *rand.Rand, jp bool) (first, last string) {
	if jp {
		return pick(rng, japaneseGiven), pick(rng, japaneseFamily)
	}
	return pick(rng, latinGiven), pick(rng, latinFamily)
}

func companyName(rng *rand.Rand, jp bool, i int) string {
	if jp {
		return fmt.Sprintf("%s%s", pick(rng, japaneseCompanyStems), pick(rng, japaneseCompanySuffixes))
	}
	return fmt.Sprintf("%s %s", pick(rng, latinCompanyStems), pick(rng, latinCompanySuffixes))
}

func nearVariant(name string) string {
	switch {
	case strings.HasSuffix(name, " Inc."):
		return strings.TrimSuffix(name, " Inc.") + ", Inc."
	case strings.HasPrefix(name, "株式会社"):
		return strings.TrimPrefix(name, "株式会社") + "（株）"
	}
	return name + " "
}

func phone(rng *rand.Rand, jp bool) string {
	if jp {
		return fmt.Sprintf("03-%04d-%04d", rng.IntN(10000), rng.IntN(10000))
	}
	return fmt.Sprintf("+1 555 %03d %04d", rng.IntN(1000), rng.IntN(10000))
}

func cityOf(rng *rand.Rand, jp bool) string {
	if jp {
		return pick(rng, japaneseCities)
	}
	return pick(rng, latinCities)
}

// ascii makes a name usable in an email local part; Japanese names map to
// their romanisation in the name tables.
func ascii(s string) string {
	if r, ok := romaji[s]; ok {
		return r
	}
	return strings.ToLower(s)
}

// slug turns a company name into a domain label; i keeps it unique.
func slug(name string, i int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("kaisha")
	}
	return fmt.Sprintf("%s%d", b.String(), i)
}
