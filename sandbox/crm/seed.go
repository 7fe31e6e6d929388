package crm

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// Sample values for the seeded activity data. They are shared strings, so
// 100,000 contacts' notes and calls cost pointers, not copies.
var (
	noteTitles   = []string{"Call summary", "Requirements", "Pricing discussion", "Renewal", "Support escalation", "Onboarding", "Meeting notes", "打ち合わせメモ"}
	noteContents = []string{
		"Discussed the rollout plan; they want a pilot in one department first.",
		"Asked for a quote for 25 more seats and an annual billing option.",
		"Reported slow sync between the help desk and the CRM; opened a ticket.",
		"Prefers email over phone. Decision maker is the CTO.",
		"Renewal due next quarter; budget approved.",
		"Requested a demo of the reporting module for their managers.",
		"担当者が変更になりました。次回は新しい担当者と打ち合わせ予定。",
		"Follow up after the trade show; interested in the hardware bundle.",
	}
	callSubjects  = []string{"Discovery call", "Follow-up call", "Support check-in", "Renewal discussion", "Demo call", "Pricing call"}
	callDurations = []string{"05:12", "12:40", "23:05", "31:00", "45:30", "08:15"}
	eventTitles   = []string{"Product demo", "Quarterly review", "Onsite visit", "Kickoff meeting", "Contract signing", "Training session"}
	venues        = []string{"Customer office", "Zoom", "Head office", "Tokyo office", "Trade show booth"}
	taskSubjects  = []string{"Send proposal", "Prepare quote", "Email follow-up", "Update contract", "Schedule demo", "Check renewal"}
	dealSuffixes  = []string{" - New seats", " - Renewal", " - Upgrade", " - Hardware bundle", " - Services", " - Pilot"}
	accountTypes  = []string{"Customer", "Prospect", "Partner", "Reseller"}
	tiers         = []string{"Gold", "Silver", "Bronze"}
	latinCities   = []string{"Austin", "Chicago", "Boston", "Denver", "Seattle", "London", "Berlin"}
	japanCities   = []string{"東京", "大阪", "名古屋", "福岡", "札幌", "横浜"}
	leadFirst     = []string{"Maya", "Jonas", "Priya", "Diego", "Hannah", "Omar", "Yuki", "Sven", "Lena", "Rafael"}
	leadLast      = []string{"Fischer", "Okafor", "Nakamura", "Rossi", "Novak", "Haddad", "Berg", "Costa", "Ivanova", "Park"}
	leadCompanies = []string{"Blue Harbor Ltd.", "Kite Analytics", "Granite Works", "Orchid Health", "Pine & Partners", "Quasar Retail", "Redwood Labs", "Summit Freight"}
	leadStatuses  = []string{"Attempted to Contact", "Contact in Future", "Contacted", "Not Contacted", "Pre-Qualified"}
	worldStages   = []string{"Qualification", "Needs Analysis", "Value Proposition", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost"}
	smallInts     = func() []string {
		out := make([]string, 1001)
		for i := range out {
			out[i] = strconv.Itoa(i)
		}
		return out
	}()
)

// seeder builds an org's initial records from a world.
type seeder struct {
	o    *Org
	now  int64
	all  []*record
	refs []pendingRef
}

// pendingRef is a lookup to fill in once ids are assigned.
type pendingRef struct {
	r      *record
	slot   int
	target *record
}

func (sd *seeder) rec(m *module, created int64, rng *rand.Rand) *record {
	if created > sd.now {
		created = sd.now
	}
	r := &record{mod: m, created: created, modified: created, vals: make([]string, m.slots)}
	if rng.IntN(2) == 0 {
		r.modified = created + rng.Int64N(sd.now-created+1)
	}
	owner := int32(rng.IntN(len(staff)))
	r.owner, r.createdBy, r.modifiedBy = owner, owner, owner
	if r.modified != r.created {
		r.modifiedBy = int32(rng.IntN(len(staff)))
	}
	sd.all = append(sd.all, r)
	return r
}

func (sd *seeder) set(r *record, api, v string) {
	r.vals[r.mod.byAPI[api].slot] = v
}

func (sd *seeder) link(r *record, api string, target *record) {
	if target == nil {
		return
	}
	f := r.mod.byAPI[api]
	sd.refs = append(sd.refs, pendingRef{r: r, slot: f.slot, target: target})
	if f.seSlot >= 0 {
		r.vals[f.seSlot] = target.mod.api
	}
}

func pick(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

func dateOf(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.DateOnly) }

// later returns a time between from and now.
func (sd *seeder) later(rng *rand.Rand, from int64) int64 {
	if from >= sd.now {
		return sd.now
	}
	return from + rng.Int64N(sd.now-from+1)
}

// seed loads the records of w that live in the CRM, adds deterministic deals,
// notes and activities per contact (and leads on CRM), then assigns ids in
// creation order so that sorting by id follows time, as on Zoho.
func (o *Org) seed(w *seed.World, seedVal uint64) {
	now := w.Options.Now
	if now.IsZero() {
		now = o.s.clock.Now()
	}
	fl := o.s.o.Flavor
	stream := fl.String() + "."
	mods := o.s.mods
	sd := &seeder{o: o, now: now.Unix()}

	rng := seed.RNG(seedVal, stream+"accounts")
	accounts := make([]*record, len(w.Accounts))
	for i, a := range w.Accounts {
		if !a.Presence.InCRM() {
			continue
		}
		r := sd.rec(mods["Accounts"], a.CreatedAt.Unix(), rng)
		sd.set(r, "Account_Name", a.Name)
		sd.set(r, "Website", a.Website)
		sd.set(r, "Phone", a.Phone)
		sd.set(r, "Industry", a.Industry)
		sd.set(r, "Billing_City", a.City)
		country := "United States"
		if a.Japanese {
			country = "Japan"
		}
		sd.set(r, "Billing_Country", country)
		sd.set(r, "Account_Type", pick(rng, accountTypes))
		sd.set(r, "Employees", smallInts[10+rng.IntN(990)])
		sd.set(r, "Annual_Revenue", strconv.Itoa((rng.IntN(500)+1)*10000))
		sd.set(r, "Tier__c", pick(rng, tiers))
		accounts[i] = r
	}

	rng = seed.RNG(seedVal, stream+"contacts")
	type person struct {
		r       *record
		account *record
	}
	var people []person
	for _, p := range w.People {
		if !p.Presence.InCRM() {
			continue
		}
		r := sd.rec(mods["Contacts"], p.CreatedAt.Unix(), rng)
		sd.set(r, "First_Name", p.FirstName)
		sd.set(r, "Last_Name", p.LastName)
		sd.set(r, "Email", p.Email)
		sd.set(r, "Secondary_Email", p.SecondaryEmail)
		sd.set(r, "Phone", p.Phone)
		sd.set(r, "Mobile", p.Mobile)
		sd.set(r, "Title", p.Title)
		sd.set(r, "Customer_Type", p.CustomerType)
		sd.set(r, "Lead_Source", pick(rng, leadSources))
		var acc *record
		if p.AccountKey >= 0 && p.AccountKey < len(accounts) {
			acc = accounts[p.AccountKey]
		}
		city, country := pick(rng, latinCities), "United States"
		if p.Japanese {
			city, country = pick(rng, japanCities), "Japan"
		}
		if acc != nil {
			city = acc.vals[mods["Accounts"].byAPI["Billing_City"].slot]
		}
		sd.set(r, "Mailing_City", city)
		sd.set(r, "Mailing_Country", country)
		sd.set(r, "Loyalty_Points__c", smallInts[rng.IntN(1001)])
		sd.set(r, "Email_Opt_Out", strconv.FormatBool(rng.IntN(10) == 0))
		if p.CustomerType == "Enterprise" || p.CustomerType == "Mid-Market" {
			sd.set(r, "Renewal_Date__c", dateOf(r.created+int64(365+rng.IntN(365))*86400))
		}
		sd.link(r, "Account_Name", acc)
		people = append(people, person{r, acc})
	}

	deals := mods["Deals"]
	if fl == Bigin {
		deals = mods["Pipelines"]
	}
	rng = seed.RNG(seedVal, stream+"deals")
	for _, p := range people {
		for range rng.IntN(4) {
			r := sd.rec(deals, sd.later(rng, p.r.created), rng)
			name := fullName(p.r)
			if p.account != nil {
				name = p.account.vals[mods["Accounts"].byAPI["Account_Name"].slot]
			}
			sd.set(r, "Deal_Name", name+pick(rng, dealSuffixes))
			sd.set(r, "Amount", strconv.Itoa((rng.IntN(500)+5)*100))
			sd.set(r, "Closing_Date", dateOf(r.created+int64(rng.IntN(180))*86400))
			if fl == Bigin {
				sub := pick(rng, subPipelineNames)
				sd.set(r, "Pipeline", "Sales Pipeline")
				sd.set(r, "Sub_Pipeline", sub)
				sd.set(r, "Stage", pick(rng, subPipelines[sub]))
			} else {
				sd.set(r, "Stage", pick(rng, worldStages))
				sd.set(r, "Probability", smallInts[rng.IntN(11)*10])
				sd.set(r, "Type", pick(rng, []string{"New Business", "Existing Business"}))
			}
			sd.link(r, "Contact_Name", p.r)
			sd.link(r, "Account_Name", p.account)
		}
	}

	rng = seed.RNG(seedVal, stream+"notes")
	for _, p := range people {
		for range rng.IntN(5) {
			r := sd.rec(mods["Notes"], sd.later(rng, p.r.created), rng)
			sd.set(r, "Note_Title", pick(rng, noteTitles))
			sd.set(r, "Note_Content", pick(rng, noteContents))
			sd.link(r, "Parent_Id", p.r)
		}
	}

	rng = seed.RNG(seedVal, stream+"activities")
	for _, p := range people {
		for range rng.IntN(4) {
			r := sd.rec(mods["Calls"], sd.later(rng, p.r.created), rng)
			sd.set(r, "Subject", pick(rng, callSubjects))
			sd.set(r, "Call_Type", pick(rng, callTypes))
			sd.set(r, "Call_Purpose", pick(rng, callPurposes))
			sd.set(r, "Call_Start_Time", strconv.FormatInt(r.created, 10))
			sd.set(r, "Call_Duration", pick(rng, callDurations))
			sd.link(r, "Who_Id", p.r)
			sd.link(r, "What_Id", p.account)
		}
		for range rng.IntN(4) {
			r := sd.rec(mods["Events"], sd.later(rng, p.r.created), rng)
			start := r.created + int64(rng.IntN(30))*86400
			sd.set(r, "Event_Title", pick(rng, eventTitles))
			sd.set(r, "Start_DateTime", strconv.FormatInt(start, 10))
			sd.set(r, "End_DateTime", strconv.FormatInt(start+3600, 10))
			sd.set(r, "Venue", pick(rng, venues))
			sd.set(r, "All_day", "false")
			sd.link(r, "Who_Id", p.r)
			sd.link(r, "What_Id", p.account)
		}
		for range rng.IntN(4) {
			r := sd.rec(mods["Tasks"], sd.later(rng, p.r.created), rng)
			sd.set(r, "Subject", pick(rng, taskSubjects))
			sd.set(r, "Due_Date", dateOf(r.created+int64(rng.IntN(21))*86400))
			sd.set(r, "Status", pick(rng, taskStatuses))
			sd.set(r, "Priority", pick(rng, taskPriorities))
			sd.link(r, "Who_Id", p.r)
			sd.link(r, "What_Id", p.account)
		}
	}

	rng = seed.RNG(seedVal, stream+"products")
	for _, p := range w.Products {
		if !p.Presence.InCRM() {
			continue
		}
		r := sd.rec(mods["Products"], p.CreatedAt.Unix(), rng)
		sd.set(r, "Product_Name", p.Name)
		sd.set(r, "Product_Code", p.Code)
		sd.set(r, "Unit_Price", strconv.FormatFloat(p.UnitPrice, 'f', -1, 64))
		sd.set(r, "Product_Category", p.Category)
		sd.set(r, "Product_Active", strconv.FormatBool(p.Active))
		sd.set(r, "Taxable", "true")
		sd.set(r, "Warranty_Months__c", smallInts[12*(1+rng.IntN(3))])
	}

	if fl == CRM && len(w.People) > 0 {
		rng = seed.RNG(seedVal, stream+"leads")
		twoYears := int64(2 * 365 * 86400)
		for i := range max(3, len(w.People)/10) {
			r := sd.rec(mods["Leads"], sd.now-rng.Int64N(twoYears), rng)
			first, last := pick(rng, leadFirst), pick(rng, leadLast)
			company := pick(rng, leadCompanies)
			sd.set(r, "First_Name", first)
			sd.set(r, "Last_Name", last)
			sd.set(r, "Company", company)
			sd.set(r, "Email", "lead"+strconv.Itoa(i)+"."+smallLower(last)+"@prospect.example")
			sd.set(r, "Phone", "+1 555 "+smallInts[100+rng.IntN(900)]+" "+strconv.Itoa(1000+rng.IntN(9000)))
			sd.set(r, "Lead_Source", pick(rng, leadSources))
			sd.set(r, "Lead_Status", pick(rng, leadStatuses))
			sd.set(r, "Industry", pick(rng, industries))
			sd.set(r, "City", pick(rng, latinCities))
			sd.set(r, "Email_Opt_Out", "false")
		}
	}

	// Sort by creation time, ties in generation order, without a slow
	// stable sort.
	type key struct {
		created int64
		i       int
	}
	keys := make([]key, len(sd.all))
	for i, r := range sd.all {
		keys[i] = key{r.created, i}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.created, b.created); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	sorted := make([]*record, len(sd.all))
	for i, k := range keys {
		sorted[i] = sd.all[k.i]
	}
	sd.all = sorted
	counts := map[string]int{}
	for _, r := range sd.all {
		r.id = o.newID()
		counts[r.mod.api]++
	}
	for _, p := range sd.refs {
		p.r.vals[p.slot] = p.target.id
	}
	for api, n := range counts {
		st := o.stores[api]
		st.byID = make(map[string]*record, n)
		st.order = make([]*record, 0, n)
	}
	for _, r := range sd.all {
		o.stores[r.mod.api].add(r)
	}
}

func smallLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
