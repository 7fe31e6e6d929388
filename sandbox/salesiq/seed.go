package salesiq

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/seed"
)

// Seeded department names. The first three also exist in the seeded desk,
// so the gateway's same-name auto-mapping (SPEC F3) has work to do; the
// others match nothing and must end up CHOOSE_EACH_TIME.
var (
	MatchingDepartments   = []string{"Support", "Sales", "サポート"}
	UnmatchedDepartments  = []string{"Concierge", "パートナー窓口"}
	seededCategories      = []string{"Getting Started", "Billing & Plans", "よくある質問"}
	seededOperatorsLatin  = []string{"Patricia Hall", "Marco Rossi", "Sara Lee", "Tom Baker"}
	seededOperatorsJapan  = []string{"渡辺 健", "山田 花子"}
	seededOperatorsEmails = []string{"patricia", "marco", "sara", "tom", "ken.watanabe", "hanako.yamada"}
)

var questionsEN = []string{
	"Hi, I need some help with my order.",
	"Can I change the billing address on my invoice?",
	"The router keeps dropping the connection. Any ideas?",
	"Do you offer a discount for annual plans?",
	"How do I reset my password?",
	"Is the sensor compatible with the older hub?",
}

var questionsJA = []string{
	"注文について質問があります。",
	"請求書の宛先を変更できますか？",
	"ルーターの接続が頻繁に切れます。",
	"年間契約の割引はありますか？",
	"パスワードの再設定方法を教えてください。",
}

// seed fills the portal. Without a world only the portal, its owner and one
// app exist. Times are relative to the server's clock so recent chats are
// recent whenever the sandbox runs; ids and contents depend only on the
// seed.
func (s *Server) seed(w *seed.World) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Truncate(time.Second)
	founded := now.AddDate(-2, 0, 0)

	s.apps = []App{{ID: s.newID(), Name: "Zylker Website", Type: "website"}}
	admin := &Operator{ID: s.newID(), Name: "Zylker Admin", EmailID: s.adminEmail, Role: "Administrator",
		Status: OperatorActive, DepartmentIDs: []string{}, CreatedTime: ms(founded), ModifiedTime: ms(founded)}
	s.operators = []*Operator{admin}
	s.portal = Portal{ID: s.newID(), ScreenName: s.screen, Name: "Zylker", Owner: ref(admin), CreatedTime: ms(founded)}
	if w == nil {
		return
	}
	rng := s.rng

	var depts []string
	for i, name := range slices.Concat(MatchingDepartments, UnmatchedDepartments) {
		at := ms(founded.Add(time.Duration(i) * time.Hour))
		d := &Department{ID: s.newID(), Name: name, DisplayName: name, Description: name + " chats",
			IsPublic: true, CreatedTime: at, ModifiedTime: at}
		s.departments = append(s.departments, d)
		depts = append(depts, d.ID)
	}
	admin.DepartmentIDs = slices.Clone(depts)

	domain := "zylker.example"
	if _, d, ok := strings.Cut(s.adminEmail, "@"); ok {
		domain = d
	}
	names := slices.Concat(seededOperatorsLatin, seededOperatorsJapan)
	for i, name := range names {
		at := ms(founded.Add(time.Duration(24*(i+1)) * time.Hour))
		o := &Operator{ID: s.newID(), Name: name, EmailID: seededOperatorsEmails[i] + "@" + domain,
			Role: "Associate", Status: OperatorActive, CreatedTime: at, ModifiedTime: at}
		switch {
		case i == 0:
			o.Role = "Supervisor"
		case name == "Tom Baker":
			o.Status, o.ModifiedTime = OperatorDeactivated, ms(now.AddDate(0, -1, 0)) // left the team a month ago
		}
		// Everyone serves one or two departments; the Japanese-speaking
		// operators serve サポート.
		o.DepartmentIDs = []string{depts[i%len(depts)]}
		if i >= len(seededOperatorsLatin) {
			o.DepartmentIDs = []string{depts[2]}
		}
		if rng.IntN(2) == 0 && !slices.Contains(o.DepartmentIDs, depts[0]) {
			o.DepartmentIDs = append(o.DepartmentIDs, depts[0])
		}
		s.operators = append(s.operators, o)
	}

	s.seedChats(w, now, depts)
	s.seedArticles(founded, depts)
}

// seedChats draws visitors from the world's people and gives each one to
// three chats over the last 60 days: mostly attended and ended, some
// missed, and two still open (one waiting, one live).
func (s *Server) seedChats(w *seed.World, now time.Time, depts []string) {
	rng := s.rng
	n := len(w.People) / 3
	n = max(n, min(len(w.People), 10))
	n = min(n, 1500)
	order := rng.Perm(len(w.People))[:n]
	slices.Sort(order)

	type plan struct {
		visitor  *Visitor
		japanese bool
		opened   time.Time
	}
	var plans []plan
	for i, key := range order {
		p := w.People[key]
		email := p.Email
		if p.Presence.InDesk() && p.Desk.Email != "" && rng.IntN(2) == 0 {
			email = p.Desk.Email // the address the desk knows them by
		}
		if rng.IntN(10) == 0 {
			email = "" // skipped the pre-chat form (SPEC F8)
		}
		name := p.FirstName + " " + p.LastName
		if p.Japanese {
			name = p.LastName + " " + p.FirstName
		}
		vtype := "lead"
		if p.Presence.InCRM() && email != "" {
			vtype = "contact"
		}
		phone := p.Phone
		if rng.IntN(3) == 0 {
			phone = ""
		}
		opened := make([]time.Time, 1+rng.IntN(3))
		for j := range opened {
			opened[j] = now.Add(-time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Second)
		}
		first := slices.MinFunc(opened, time.Time.Compare)
		v := &Visitor{ID: s.newID(), Type: vtype, Name: name, FirstName: p.FirstName, LastName: p.LastName,
			EmailID: email, Phone: phone, AppID: s.appID(), CreatedTime: ms(first), ModifiedTime: ms(first)}
		s.addVisitor(v)
		for _, at := range opened {
			plans = append(plans, plan{visitor: v, japanese: p.Japanese, opened: at})
		}
		if i < 2 { // anonymous visitors: no name given, no email
			anon := &Visitor{ID: s.newID(), Type: "lead", Name: fmt.Sprintf("Visitor %05d", rng.IntN(100000)),
				AppID: s.appID(), CreatedTime: ms(first), ModifiedTime: ms(first)}
			s.addVisitor(anon)
			plans = append(plans, plan{visitor: anon, opened: first})
		}
	}
	// Ids grow with time, as on the real service. The two newest chats are
	// still open, so they started minutes ago.
	slices.SortStableFunc(plans, func(a, b plan) int { return a.opened.Compare(b.opened) })
	for i := max(len(plans)-2, 0); i < len(plans); i++ {
		plans[i].opened = now.Add(-time.Duration(len(plans)-i) * 3 * time.Minute)
	}

	var active []*Operator
	for _, o := range s.operators {
		if o.Status == OperatorActive {
			active = append(active, o)
		}
	}
	for i, pl := range plans {
		question := questionsEN[rng.IntN(len(questionsEN))]
		if pl.japanese {
			question = questionsJA[rng.IntN(len(questionsJA))]
		}
		s.nextRef++
		c := &conversation{
			id: s.newID(), visitorConvID: s.token(), referenceID: fmt.Sprint(s.nextRef), appID: s.appID(),
			departmentID: depts[rng.IntN(len(depts))], question: question, visitorID: pl.visitor.ID,
			opened: pl.opened, updated: pl.opened,
		}
		if pl.japanese && rng.IntN(3) != 0 {
			c.departmentID = depts[2] // サポート
		}
		s.addConversation(c)
		s.say(c, SenderVisitor, question, c.opened)
		switch {
		case i == len(plans)-1:
			c.state = StateWaiting
		case i == len(plans)-2:
			c.state = StateConnected
			s.attend(c, s.pickOperator(c, active, now), pl.japanese, false)
		case rng.IntN(4) == 0:
			c.state = StateMissed
			c.missed = c.opened.Add(time.Duration(120+rng.IntN(180)) * time.Second)
			c.ended, c.updated = c.missed, c.missed
		default:
			c.state = StateEnded
			s.attend(c, s.pickOperator(c, active, now), pl.japanese, true)
		}
	}
}

// pickOperator chooses who attended a chat: someone from its department if
// possible; chats older than a month may have the operator who since left.
func (s *Server) pickOperator(c *conversation, active []*Operator, now time.Time) *Operator {
	var pool []*Operator
	for _, o := range s.operators {
		if !slices.Contains(o.DepartmentIDs, c.departmentID) {
			continue
		}
		if o.Status == OperatorActive || now.Sub(c.opened) > 31*24*time.Hour {
			pool = append(pool, o)
		}
	}
	if len(pool) == 0 {
		pool = active
	}
	return pool[s.rng.IntN(len(pool))]
}

// attend writes the operator's side of a transcript.
func (s *Server) attend(c *conversation, o *Operator, japanese, end bool) {
	rng := s.rng
	c.ownerID = o.ID
	c.attended = c.opened.Add(time.Duration(10+rng.IntN(80)) * time.Second)
	at := c.attended
	lines := []struct{ who, en, ja string }{
		{SenderOperator, "Hello! Thanks for reaching out. Let me look into that for you.", "お問い合わせありがとうございます。確認いたします。"},
		{SenderVisitor, "Thank you. My account email is the one I gave in the form.", "よろしくお願いします。フォームに入力したメールアドレスです。"},
		{SenderOperator, "I found it. I have updated your request; you will get an email shortly.", "確認できました。対応いたしましたので、まもなくメールが届きます。"},
		{SenderVisitor, "Great, that solves it. Thanks!", "解決しました。ありがとうございました！"},
	}
	count := len(lines)
	if !end {
		count = 1
	}
	for _, l := range lines[:count] {
		text := l.en
		if japanese {
			text = l.ja
		}
		at = at.Add(time.Duration(20+rng.IntN(100)) * time.Second)
		s.say(c, l.who, text, at)
	}
	if end {
		c.ended = at.Add(time.Duration(30+rng.IntN(120)) * time.Second)
		c.updated = c.ended
	}
}

// seedArticles writes the chat side's own articles; synced desk copies are
// the gateway's to create.
func (s *Server) seedArticles(founded time.Time, depts []string) {
	articles := [][]struct{ title, content, status string }{
		{
			{"Installing the chat widget", "Paste the widget code before the closing body tag.", StatusPublished},
			{"Setting your business hours", "Go to Settings > Business Hours and pick your time zone.", StatusDraft},
		},
		{
			{"Changing your plan", "Admins can upgrade or downgrade from Settings > Subscription.", StatusPublished},
			{"Invoices and receipts", "Invoices are emailed to the billing contact every month.", StatusPublished},
		},
		{
			{"ログインできない場合", "パスワードを再設定してから再度お試しください。", StatusPublished},
			{"営業時間について", "平日9時から18時まで対応しています。", StatusDraft},
		},
	}
	for i, name := range seededCategories {
		at := ms(founded.Add(time.Duration(48*(i+1)) * time.Hour))
		cat := &Category{ID: s.newID(), Name: name, DepartmentIDs: []string{depts[i]}, CreatedTime: at, ModifiedTime: at}
		s.categories = append(s.categories, cat)
		for _, a := range articles[i] {
			s.articles = append(s.articles, &article{Article: Article{
				ID: s.newID(), Title: a.title, Content: a.content, CategoryID: cat.ID, DepartmentIDs: []string{depts[i]},
				Status: a.status, Source: SourceSalesIQ, Tags: []string{}, CreatedTime: at, ModifiedTime: at,
			}})
		}
	}
}
