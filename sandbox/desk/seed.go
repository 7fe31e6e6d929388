package desk

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// Seeding turns the shared world into the desk's own records: the people,
// companies and products present in the desk (with the desk's own values
// for those also in the CRM), 0-5 tickets per contact, their related
// records and a knowledge base. Everything is drawn from named streams of
// seed.RNG, so the same world and seed always give the same desk, ids
// included.

var ticketsPerContact = [10]int{0, 0, 0, 1, 1, 2, 2, 3, 4, 5}

var (
	subjectsEN = []string{
		"Cannot log in after password reset", "Device does not power on", "Invoice shows the wrong amount",
		"Request for a product demo", "How do I export my data?", "Shipping delayed for order",
		"Firmware update failed", "Need to change billing address", "Error 503 when syncing",
		"Printer keeps dropping off the network", "Question about the warranty", "Refund request",
		"Feature request: dark mode", "Sensor readings look wrong", "Cannot add a new user",
		"Integration with CRM stopped working", "Slow response from the dashboard", "Upgrade to the Pro plan",
	}
	subjectsJA = []string{
		"ログインできません", "請求書の金額が違います", "製品のデモを希望します", "ファームウェアの更新に失敗しました",
		"保証について質問があります", "返金をお願いします", "注文の配送が遅れています", "ユーザーを追加できません",
	}
	descriptionsEN = []string{
		"<div>Hello, this started this morning. Could you take a look?</div>",
		"<div>We have tried restarting twice. The problem is still there.</div>",
		"<div>Please advise on the next steps. Thanks!</div>",
	}
	descriptionsJA = []string{
		"<div>お世話になっております。今朝から発生しています。確認をお願いします。</div>",
		"<div>再起動を試しましたが改善しません。</div>",
	}
	repliesEN   = []string{"<div>Thanks for reaching out. We are looking into it.</div>", "<div>Could you send us a screenshot?</div>", "<div>This should be fixed now. Please confirm.</div>"}
	repliesJA   = []string{"<div>お問い合わせありがとうございます。確認いたします。</div>", "<div>スクリーンショットをお送りいただけますか。</div>"}
	followUps   = []string{"<div>Here is the screenshot you asked for.</div>", "<div>Still happening on our side.</div>", "<div>Works now, thank you!</div>"}
	commentsEN  = []string{"Customer is on the enterprise plan; prioritise.", "Reproduced on staging.", "Waiting for engineering.", "Called the customer, no answer."}
	ticketChans = []struct {
		name   string
		weight int
	}{{"Email", 40}, {"Phone", 12}, {"Web", 14}, {"Chat", 20}, {"Twitter", 4}, {"Facebook", 4}, {"Forums", 3}, {"Customer Portal", 3}}
)

// threadChannel maps a ticket channel to the channel of its threads.
func threadChannel(ticketChannel string) string {
	switch ticketChannel {
	case "Chat":
		return "ONLINE_CHAT"
	case "Phone":
		return "PHONE"
	case "Web":
		return "WEB"
	case "Twitter":
		return "TWITTER"
	case "Facebook":
		return "FACEBOOK"
	case "Forums":
		return "FORUMS"
	case "Customer Portal":
		return "CUSTOMERPORTAL"
	case "Feedback Widget":
		return "FEEDBACK_WIDGET"
	}
	return "EMAIL"
}

func pickWeighted[T any](rng *rand.Rand, items []T, weight func(T) int) T {
	total := 0
	for _, it := range items {
		total += weight(it)
	}
	n := rng.IntN(total)
	for _, it := range items {
		n -= weight(it)
		if n < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

func between(rng *rand.Rand, from, to int64) int64 {
	if to <= from {
		return from
	}
	return from + rng.Int64N(to-from)
}

const (
	hourMS = int64(time.Hour / time.Millisecond)
	dayMS  = 24 * hourMS
)

// seedCtx carries what the seeding steps share.
type seedCtx struct {
	c        *core
	o        *org
	w        *seed.World
	seed     uint64
	now      int64
	depts    []int64           // Support, Sales, サポート
	workers  map[int64][]int64 // department -> agents that can own tickets
	typeCF   map[string]map[string]any
	accounts []int64 // world account key -> desk id (0 when not in the desk)
}

func seedWorld(c *core, o *org, w *seed.World, s uint64) {
	now := w.Options.Now
	if now.IsZero() {
		now = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	}
	sc := &seedCtx{c: c, o: o, w: w, seed: s, now: ms(now), workers: map[int64][]int64{}, typeCF: map[string]map[string]any{}}
	o.departments.each(func(d *department) bool {
		if d.enabled {
			sc.depts = append(sc.depts, d.id)
		}
		return true
	})
	o.agents.each(func(a *agent) bool {
		if a.status == "ACTIVE" && o.permissionType(a) != "Light" {
			for _, d := range a.deptIDs {
				sc.workers[d] = append(sc.workers[d], a.id)
			}
		}
		return true
	})
	for _, t := range customerTypes {
		sc.typeCF[t] = map[string]any{"cf_customer_type": t}
	}
	sc.seedAccounts()
	sc.seedProducts()
	contacts := sc.seedContacts()
	sc.seedTickets(contacts)
	sc.seedRelated(contacts)
	sc.seedKB()
}

func (sc *seedCtx) owner(rng *rand.Rand) int64 {
	list := sc.workers[sc.depts[0]]
	return list[rng.IntN(len(list))]
}

func (sc *seedCtx) seedAccounts() {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.accounts")
	sc.accounts = make([]int64, len(sc.w.Accounts))
	var keys []int
	for i, a := range sc.w.Accounts {
		if a.Presence.InDesk() {
			keys = append(keys, i)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return sc.w.Accounts[keys[i]].CreatedAt.Before(sc.w.Accounts[keys[j]].CreatedAt) })
	slab := make([]account, len(keys))
	tiers := []map[string]any{{"cf_tier": "Gold"}, {"cf_tier": "Silver"}, {"cf_tier": "Bronze"}}
	for i, k := range keys {
		wa := sc.w.Accounts[k]
		a := &slab[i]
		a.id = o.newID()
		a.name, a.phone, a.website, a.industry = wa.DeskName, wa.Phone, wa.Website, wa.Industry
		a.more = map[string]any{"city": wa.City}
		if wa.Japanese {
			a.more["country"] = "Japan"
		}
		a.createdTime = ms(wa.CreatedAt)
		a.modifiedTime = between(rng, a.createdTime, sc.now)
		a.ownerID = sc.owner(rng)
		a.createdBy, a.modifiedBy = a.ownerID, a.ownerID
		if rng.IntN(3) == 0 {
			a.cf = tiers[rng.IntN(len(tiers))]
		}
		o.accounts.put(a.id, a)
		sc.accounts[k] = a.id
	}
}

func (sc *seedCtx) seedProducts() {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.products")
	var keys []int
	for i, p := range sc.w.Products {
		if p.Presence.InDesk() {
			keys = append(keys, i)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return sc.w.Products[keys[i]].CreatedAt.Before(sc.w.Products[keys[j]].CreatedAt) })
	slab := make([]product, len(keys))
	for i, k := range keys {
		wp := sc.w.Products[k]
		p := &slab[i]
		p.id = o.newID()
		p.name, p.code, p.unitPrice, p.category = wp.Name, wp.Code, wp.UnitPrice, wp.Category
		switch wp.Category {
		case "Hardware":
			p.deptIDs = []int64{sc.depts[0]}
		case "Software":
			p.deptIDs = []int64{sc.depts[0], sc.depts[1]}
		case "Service":
			p.deptIDs = []int64{sc.depts[1]}
		default:
			p.deptIDs = []int64{sc.depts[0], sc.depts[2]}
		}
		p.createdTime = ms(wp.CreatedAt)
		p.modifiedTime = between(rng, p.createdTime, sc.now)
		p.ownerID = sc.owner(rng)
		p.createdBy, p.modifiedBy = p.ownerID, p.ownerID
		o.products.put(p.id, p)
	}
}

// seedContacts creates the desk's contacts in creation-time order, with
// the desk's own values (SPEC B2: some carry the CRM's secondary email as
// their primary one). The CRM customer type is filled in for people known
// to both sides.
func (sc *seedCtx) seedContacts() []*contact {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.contacts")
	var keys []int
	for i := range sc.w.People {
		if sc.w.People[i].Presence.InDesk() {
			keys = append(keys, i)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return sc.w.People[keys[i]].CreatedAt.Before(sc.w.People[keys[j]].CreatedAt) })
	slab := make([]contact, len(keys))
	out := make([]*contact, len(keys))
	o.contacts = newTable[contact](len(keys))
	for i, k := range keys {
		wp := &sc.w.People[k]
		ct := &slab[i]
		ct.id = o.newID()
		ct.firstName, ct.lastName = wp.FirstName, wp.LastName
		ct.email, ct.phone, ct.mobile, ct.title = wp.Desk.Email, wp.Desk.Phone, wp.Mobile, wp.Desk.Title
		if wp.SecondaryEmail != "" && wp.Desk.Email != wp.SecondaryEmail {
			ct.secondaryEmail = wp.SecondaryEmail
		}
		if wp.AccountKey >= 0 && wp.AccountKey < len(sc.accounts) {
			ct.accountID = sc.accounts[wp.AccountKey]
		}
		ct.createdTime = ms(wp.CreatedAt)
		ct.modifiedTime = between(rng, ct.createdTime, sc.now)
		ct.ownerID = sc.owner(rng)
		ct.createdBy, ct.modifiedBy = ct.ownerID, ct.ownerID
		if wp.Presence == seed.Both {
			ct.cf = sc.typeCF[wp.CustomerType]
		}
		o.contacts.put(ct.id, ct)
		o.contactsOf.add(ct.accountID, ct.id)
		o.reindexEmail(ct.id, "", ct.email)
		out[i] = ct
	}
	return out
}

// seedTickets draws 0-5 tickets per contact, then numbers them in
// creation-time order so ticket numbers and ids grow with time.
func (sc *seedCtx) seedTickets(contacts []*contact) {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.tickets")
	var products []int64
	o.products.each(func(p *product) bool {
		products = append(products, p.id)
		return true
	})
	total := 0
	counts := make([]uint8, len(contacts))
	for i := range contacts {
		counts[i] = uint8(ticketsPerContact[rng.IntN(len(ticketsPerContact))])
		total += int(counts[i])
	}
	slab := make([]ticket, 0, total)
	for i, ct := range contacts {
		japanese := isJapanese(ct.lastName)
		for range counts[i] {
			slab = append(slab, sc.drawTicket(rng, ct, japanese, products))
		}
	}
	sort.SliceStable(slab, func(i, j int) bool { return slab[i].createdTime < slab[j].createdTime })
	o.tickets = newTable[ticket](total)
	for i := range slab {
		t := &slab[i]
		t.id = o.newID()
		o.seq += int64(t.seedThreads) + int64(t.seedComments) // ids for the lazily generated threads and comments
		o.ticket++
		t.number = o.ticket
		o.tickets.put(t.id, t)
		o.ticketsOf.add(t.contactID, t.id)
		o.ticketsOf.add(t.accountID, t.id)
		o.ticketsOf.add(t.productID, t.id)
	}
}

func isJapanese(s string) bool {
	for _, r := range s {
		if r >= 0x3040 {
			return true
		}
	}
	return false
}

func (sc *seedCtx) drawTicket(rng *rand.Rand, ct *contact, japanese bool, products []int64) ticket {
	t := ticket{contactID: ct.id, accountID: ct.accountID, email: ct.email, phone: ct.phone, cf: ct.cf}
	switch {
	case japanese && rng.IntN(10) < 7:
		t.departmentID = sc.depts[2]
	case rng.IntN(100) < 65:
		t.departmentID = sc.depts[0]
	default:
		t.departmentID = sc.depts[1]
	}
	if japanese {
		t.subject = subjectsJA[rng.IntN(len(subjectsJA))]
		t.description = descriptionsJA[rng.IntN(len(descriptionsJA))]
	} else {
		t.subject = subjectsEN[rng.IntN(len(subjectsEN))]
		t.description = descriptionsEN[rng.IntN(len(descriptionsEN))]
	}
	t.channel = pickWeighted(rng, ticketChans, func(c struct {
		name   string
		weight int
	}) int {
		return c.weight
	}).name
	t.createdTime = between(rng, ct.createdTime, sc.now)
	age := sc.now - t.createdTime
	n := rng.IntN(100)
	switch {
	case age > 30*dayMS && n < 75:
		t.status = "Closed"
	case age > 30*dayMS && n < 85:
		t.status = "Resolved"
	case n < 35:
		t.status = "Open"
	case n < 50:
		t.status = "In Progress"
	case n < 60:
		t.status = "On Hold"
	case n < 70:
		t.status = "Waiting on Customer"
	case n < 95:
		t.status = "Closed"
	default:
		t.status = "Resolved"
	}
	if p := rng.IntN(10); p > 0 {
		t.priority = []string{"Low", "Low", "Medium", "Medium", "Medium", "High", "High", "Urgent", "Medium"}[p-1]
	}
	if c := rng.IntN(5); c < 4 {
		t.classification = classifications[c]
	}
	if rng.IntN(10) != 0 {
		t.dueDate = t.createdTime + between(rng, 4*hourMS, 5*dayMS)
	}
	t.customerResponseTime = t.createdTime
	switch typ := sc.o.statusType(t.status); typ {
	case "Closed":
		t.closedTime = between(rng, t.createdTime+hourMS, min(sc.now, t.createdTime+10*dayMS))
		t.modifiedTime = t.closedTime
	case "On Hold":
		t.onholdTime = between(rng, t.createdTime, sc.now)
		t.modifiedTime = t.onholdTime
	default:
		t.modifiedTime = between(rng, t.createdTime, sc.now)
	}
	t.escalated = sc.o.statusType(t.status) != "Closed" && rng.IntN(20) == 0
	if workers := sc.workers[t.departmentID]; len(workers) > 0 && rng.IntN(5) != 0 {
		t.assigneeID = workers[rng.IntN(len(workers))]
	}
	if len(products) > 0 && rng.IntN(10) < 3 {
		t.productID = products[rng.IntN(len(products))]
	}
	t.createdBy, t.modifiedBy = sc.o.owner, sc.o.owner
	if t.assigneeID != 0 {
		t.modifiedBy = t.assigneeID
	}
	t.seedThreads = uint8(1 + rng.IntN(4))
	if t.channel == "Chat" {
		t.seedThreads = uint8(2 + rng.IntN(5))
	}
	if c := rng.IntN(10); c >= 6 {
		t.seedComments = uint8(c - 5) // 1-4 for four tickets in ten
	}
	return t
}

// materialize generates a seeded ticket's threads and comments the first
// time they are needed, from the ticket's own stream and with the ids
// reserved for them at seeding.
func (c *core) materialize(o *org, t *ticket) {
	if t.materialized {
		return
	}
	t.materialized = true
	rng := seed.RNG(c.seed, "desk.threads."+strconv.FormatInt(t.id, 10))
	ct := o.contacts.get(t.contactID)
	japanese := ct != nil && isJapanese(ct.lastName)
	from := o.defaultReplyAddress(t.departmentID)
	agentID := t.assigneeID
	if agentID == 0 {
		agentID = o.owner
	}
	agent := o.agents.get(agentID)
	n := int(t.seedThreads)
	end := t.modifiedTime
	if end <= t.createdTime {
		end = t.createdTime + hourMS
	}
	step := (end - t.createdTime) / int64(n+1)
	next := t.id
	channel := threadChannel(t.channel)
	for i := range n {
		next++
		th := &thread{id: next, ticketID: t.id, channel: channel, visibility: "public", status: "SUCCESS",
			contentType: "text/html", createdTime: t.createdTime + int64(i)*step}
		switch {
		case i == 0:
			th.direction, th.isDesc, th.content = "in", true, t.description
		case i%2 == 1:
			th.direction = "out"
			if japanese {
				th.content = repliesJA[rng.IntN(len(repliesJA))]
			} else {
				th.content = repliesEN[rng.IntN(len(repliesEN))]
			}
		default:
			th.direction, th.content = "in", followUps[rng.IntN(len(followUps))]
		}
		if th.direction == "in" {
			th.authorType = "END_USER"
			if ct != nil {
				th.authorID, th.authorName, th.authorEmail, th.from = ct.id, ct.fullName(), ct.email, ct.email
			}
			th.to = from
		} else {
			th.authorType, th.authorID, th.authorName, th.authorEmail = "AGENT", agent.id, agent.name(), agent.email
			th.from = from
			if ct != nil {
				th.to = ct.email
			}
		}
		t.threads = append(t.threads, th)
	}
	workers := c.workersOf(o, t.departmentID)
	for i := range int(t.seedComments) {
		next++
		author := workers[rng.IntN(len(workers))]
		content := commentsEN[rng.IntN(len(commentsEN))]
		if rng.IntN(3) == 0 {
			other := workers[rng.IntN(len(workers))]
			content = MentionMarkup(strconv.FormatInt(o.agents.get(other).zuid, 10)) + " " + content
		}
		t.comments = append(t.comments, &comment{id: next, ticketID: t.id, content: content, contentType: "plainText",
			public: rng.IntN(4) == 0, commenterID: author, commentedTime: t.createdTime + int64(i+1)*step/2})
	}
}

func (c *core) workersOf(o *org, deptID int64) []int64 {
	var out []int64
	o.agents.each(func(a *agent) bool {
		if a.status == "ACTIVE" && !a.deleted && o.permissionType(a) != "Light" && contains64(a.deptIDs, deptID) {
			out = append(out, a.id)
		}
		return true
	})
	if len(out) == 0 {
		out = []int64{o.owner}
	}
	return out
}

// seedRelated adds the related lists: ratings on closed tickets, time
// entries, activities, attachments and contracts, each on a minority of
// records so "has related records" is true for some and false for others.
func (sc *seedCtx) seedRelated(contacts []*contact) {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.related")
	blob := []byte("seeded attachment\n")
	o.tickets.each(func(t *ticket) bool {
		if sc.o.statusType(t.status) == "Closed" && rng.IntN(4) == 0 {
			r := &rating{id: o.newID(), ticketID: t.id, contactID: t.contactID, deptID: t.departmentID, agentID: t.assigneeID,
				value: []string{"GOOD", "GOOD", "GOOD", "GOOD", "OKAY", "OKAY", "BAD"}[rng.IntN(7)], ratedTime: t.closedTime + hourMS}
			o.ratings.put(r.id, r)
			o.ratingsOf.add(t.id, r.id)
		}
		if t.assigneeID != 0 && rng.IntN(12) == 0 {
			for range 1 + rng.IntN(3) {
				te := &timeEntry{id: o.newID(), ticketID: t.id, ownerID: t.assigneeID, hours: rng.IntN(3), minutes: rng.IntN(60),
					billable: rng.IntN(2) == 0, executedTime: between(rng, t.createdTime, max(t.modifiedTime, t.createdTime+1)),
					description: "Investigation"}
				te.createdTime, te.modifiedTime = te.executedTime, te.executedTime
				o.timeEntries.put(te.id, te)
				o.timeEntriesOf.add(t.id, te.id)
			}
		}
		if rng.IntN(20) == 0 {
			a := &attachment{id: o.newID(), parentID: t.id, parentKind: modTickets, name: "screenshot.png", content: blob,
				size: len(blob), creatorID: t.createdBy, createdTime: t.createdTime, public: true}
			o.attachments.put(a.id, a)
			o.attachmentsOf.add(t.id, a.id)
		}
		return true
	})
	kinds := []string{"Tasks", "Calls", "Events"}
	for _, ct := range contacts {
		if rng.IntN(16) == 0 {
			for range 1 + rng.IntN(2) {
				a := &activity{id: o.newID(), kind: kinds[rng.IntN(3)], contactID: ct.id, deptID: sc.depts[0],
					ownerID: ct.ownerID, createdTime: between(rng, ct.createdTime, sc.now)}
				a.modifiedTime, a.dueDate = a.createdTime, a.createdTime+2*dayMS
				a.subject, a.status = "Follow up with "+ct.fullName(), "Not Started"
				if a.kind != "Tasks" {
					a.status = "Completed"
				}
				if ids := o.ticketsOf[ct.id]; len(ids) > 0 {
					a.ticketID = ids[rng.IntN(len(ids))]
					a.deptID = o.tickets.get(a.ticketID).departmentID
				}
				sc.c.storeActivity(o, a)
			}
		}
		if rng.IntN(25) == 0 {
			sc.attach(ct.id, modContacts, "id-card.pdf", blob, ct.createdTime)
		}
	}
	o.accounts.each(func(a *account) bool {
		if rng.IntN(10) == 0 {
			sc.attach(a.id, modAccounts, "master-agreement.pdf", blob, a.createdTime)
		}
		if rng.IntN(4) == 0 {
			for range 1 + rng.IntN(2) {
				start := time.UnixMilli(between(rng, a.createdTime, sc.now)).UTC()
				k := &contract{id: o.newID(), name: "Support contract " + a.name, accountID: a.id, deptID: sc.depts[0],
					ownerID: a.ownerID, startDate: start.Format(dateLayout), endDate: start.AddDate(1, 0, 0).Format(dateLayout),
					createdTime: ms(start), modifiedTime: ms(start)}
				k.number = fmt.Sprintf("C-%06d", k.id%1_000_000)
				o.contracts.put(k.id, k)
				o.contractsOf.add(a.id, k.id)
			}
		}
		return true
	})
	o.products.each(func(p *product) bool {
		if rng.IntN(7) == 0 {
			sc.attach(p.id, modProducts, "datasheet.pdf", blob, p.createdTime)
		}
		return true
	})
}

func (sc *seedCtx) attach(parent int64, kind, name string, data []byte, at int64) {
	a := &attachment{id: sc.o.newID(), parentID: parent, parentKind: kind, name: name, content: data, size: len(data),
		creatorID: sc.o.owner, createdTime: at}
	sc.o.attachments.put(a.id, a)
	sc.o.attachmentsOf.add(parent, a.id)
}

var (
	kbTopics   = []string{"Setup", "Accounts", "Integrations", "Billing", "Security", "Mobile", "Reports", "Networking", "Hardware", "API"}
	kbTopicsJA = []string{"初期設定", "アカウント", "連携", "請求", "セキュリティ", "モバイル"}
	kbVerbsEN  = []string{"How to configure", "Troubleshooting", "Getting started with", "Best practices for", "Fixing errors in", "Understanding"}
	kbVerbsJA  = []string{"の設定方法", "のトラブルシューティング", "を始めるには", "のベストプラクティス"}
	kbParas    = []string{
		"<p>This article explains the steps in order. Follow them one by one and check the result after each step.</p>",
		"<p>If the problem persists, collect the logs from the device and attach them to a ticket.</p>",
		"<p>Administrators can change this setting for the whole organisation under Setup.</p>",
		"<p>Note: changes can take up to five minutes to appear on every device.</p>",
	}
	kbParasJA = []string{"<p>この記事では手順を順番に説明します。</p>", "<p>問題が解決しない場合は、ログを添付してお問い合わせください。</p>"}
)

// seedKB builds the knowledge base: five root categories (each owned by
// one department) and sections below them, max(6, people/500) categories
// and max(24, people/10) articles in all, so a 100,000-person world has
// 200 categories and 10,000 articles.
func (sc *seedCtx) seedKB() {
	o, rng := sc.o, seed.RNG(sc.seed, "desk.kb")
	people := len(sc.w.People)
	nCats, nArticles := max(6, people/500), max(24, people/10)
	start := sc.now - 2*365*dayMS
	roots := []struct {
		name, vis, locale string
		dept              int64
	}{
		{"Getting Started", "ALL_USERS", "en", sc.depts[0]},
		{"Troubleshooting", "ALL_USERS", "en", sc.depts[0]},
		{"Billing & Plans", "REGISTERED_USERS", "en", sc.depts[1]},
		{"よくある質問", "ALL_USERS", "ja", sc.depts[2]},
		{"Internal Playbooks", "AGENTS", "en", sc.depts[0]},
	}
	var all []*category
	for i, r := range roots {
		k := &category{id: o.newID(), name: r.name, visibility: r.vis, locale: r.locale, deptID: r.dept, order: i + 1,
			createdTime: start, modifiedTime: start, description: r.name + " articles"}
		k.rootID, k.permalink = k.id, slugify(k.name)
		o.categories.put(k.id, k)
		all = append(all, k)
	}
	for i := 0; i < nCats-len(roots); i++ {
		root := all[i%len(roots)]
		parent := root
		if i >= 2*len(roots) && i%7 == 0 {
			// A few sections nest under an earlier section: all[i] is
			// section i-len(roots), which has the same root.
			parent = all[i]
		}
		topic := kbTopics[i%len(kbTopics)]
		if root.locale == "ja" {
			topic = kbTopicsJA[i%len(kbTopicsJA)]
		}
		k := &category{id: o.newID(), parentID: parent.id, rootID: root.id, name: fmt.Sprintf("%s %d", topic, i/len(kbTopics)+1),
			visibility: root.visibility, locale: root.locale, deptID: root.deptID, order: i/len(roots) + 1,
			createdTime: start, modifiedTime: start}
		k.permalink = slugify(k.name) + "-" + strconv.Itoa(i)
		o.categories.put(k.id, k)
		all = append(all, k)
	}
	writers := sc.workers[sc.depts[0]]
	o.articles = newTable[article](nArticles)
	slab := make([]article, nArticles)
	span := sc.now - start
	for i := range nArticles {
		k := all[len(roots)%len(all)]
		if len(all) > len(roots) {
			k = all[len(roots)+i%(len(all)-len(roots))]
		}
		if i%11 == 0 {
			k = all[i%len(roots)]
		}
		a := &slab[i]
		a.id = o.newID()
		a.categoryID, a.rootID, a.deptID, a.locale = k.id, k.rootID, k.deptID, k.locale
		noun := kbTopics[rng.IntN(len(kbTopics))]
		if k.locale == "ja" {
			noun = kbTopicsJA[rng.IntN(len(kbTopicsJA))]
			a.title = fmt.Sprintf("%s%s (%d)", noun, kbVerbsJA[rng.IntN(len(kbVerbsJA))], i+1)
			a.answer = kbParasJA[0] + kbParasJA[rng.IntN(len(kbParasJA))]
		} else {
			a.title = fmt.Sprintf("%s %s (%d)", kbVerbsEN[rng.IntN(len(kbVerbsEN))], noun, i+1)
			a.answer = kbParas[rng.IntN(len(kbParas))] + kbParas[rng.IntN(len(kbParas))] + kbParas[rng.IntN(len(kbParas))]
		}
		a.permalink = slugify(a.title)
		switch n := rng.IntN(100); {
		case n < 70:
			a.status = "Published"
		case n < 82:
			a.status = "Draft"
		case n < 88:
			a.status = "Review"
		case n < 94:
			a.status = "Expired"
		default:
			a.status = "Unpublished"
		}
		switch k.visibility {
		case "AGENTS":
			a.permission = "AGENTS"
		case "REGISTERED_USERS":
			a.permission = "REGISTEREDUSERS"
		default:
			a.permission = []string{"ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "ALL", "REGISTEREDUSERS", "REGISTEREDUSERS", "REGISTEREDUSERS", "REGISTEREDUSERS", "AGENTS"}[rng.IntN(20)]
		}
		a.createdTime = start + span*int64(i)/int64(nArticles)
		a.modifiedTime = between(rng, a.createdTime, sc.now)
		a.version = 1 + rng.IntN(4)
		switch {
		case a.status == "Published":
			a.published = a.version
		case a.version > 1:
			a.published = a.version - 1
		}
		a.authorID = writers[rng.IntN(len(writers))]
		a.ownerID = a.authorID
		a.viewCount, a.likeCount, a.dislikeCount = rng.IntN(5000), rng.IntN(200), rng.IntN(30)
		if rng.IntN(3) == 0 {
			a.tags = []string{noun}
		}
		if a.status == "Expired" {
			a.expiryDate = between(rng, a.createdTime, sc.now)
		}
		o.articles.put(a.id, a)
	}
}
