package salesiq_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
)

func TestErrorsAnswerHTTP200(t *testing.T) {
	e := newEnv(t, smallWorld())
	departments := e.path("/departments")

	e.fails("GET", departments, "", nil, salesiq.CodeInvalidHeader)
	r := e.call("GET", departments, "", nil)
	if r.Error == nil || r.Error.Message != "Invalid authorization header." {
		t.Errorf("missing header: %+v", r.Error)
	}
	// The Bearer scheme is not Zoho's.
	req, _ := http.NewRequest("GET", e.api.URL+departments, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error struct{ Code int } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Error.Code != salesiq.CodeInvalidHeader {
		t.Errorf("Bearer scheme: HTTP %d code %d", resp.StatusCode, body.Error.Code)
	}

	e.fails("GET", departments, "1000.nottoken.nottoken", nil, salesiq.CodeInvalidToken)
	euToken := e.accessToken("eu", gatewayClient, e.siq.AdminEmail(), salesiq.AllScopes)
	e.fails("GET", departments, euToken, nil, salesiq.CodeInvalidToken) // a token works only on its own DC
	narrow := e.accessToken("us", gatewayClient, e.siq.AdminEmail(), []string{"SalesIQ.conversations.READ"})
	if r := e.fails("GET", departments, narrow, nil, salesiq.CodeScope); r.Error != nil && r.Error.Message == "" {
		t.Error("scope error without a message")
	}
	e.fails("GET", "/api/v2/nosuchportal/departments", e.token, nil, salesiq.CodeInvalidPortal)
	e.fails("GET", "/api/v2/"+e.siq.ScreenName()+"/nothing", e.token, nil, salesiq.CodeInvalidURL)
	e.fails("GET", "/api/", e.token, nil, salesiq.CodeInvalidURL)
	e.fails("DELETE", departments, e.token, nil, salesiq.CodeInvalidMethod)
	e.fails("GET", e.path("/conversations?limit=100"), e.token, nil, salesiq.CodeInvalidValue)
	e.fails("GET", e.path("/conversations?status=happy"), e.token, nil, salesiq.CodeInvalidValue)
	e.fails("GET", e.path("/conversations/123"), e.token, nil, salesiq.CodeNotFound)

	// Bad JSON and a body field of the wrong type.
	req, _ = http.NewRequest("POST", e.api.URL+e.path("/visitors"), strings.NewReader("{not json"))
	req.Header.Set("Authorization", "Zoho-oauthtoken "+e.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Error.Code != salesiq.CodeInvalidJSON {
		t.Errorf("bad JSON: HTTP %d code %d", resp.StatusCode, body.Error.Code)
	}
	if r := e.fails("POST", e.path("/departments"), e.token, map[string]any{"name": 12}, salesiq.CodeInvalidValue); r.Error != nil && r.Error.JSONKey != "name" {
		t.Errorf("wrong type: json_key %q", r.Error.JSONKey)
	}

	// An hour later the token has expired.
	e.clk.Advance(time.Hour)
	e.fails("GET", departments, e.token, nil, salesiq.CodeInvalidToken)
}

func TestPortalsListTheUsersPortal(t *testing.T) {
	e := newEnv(t, smallWorld())
	var portals []salesiq.Portal
	r := e.ok("GET", "/api/v2/portals", nil, &portals)
	if r.Object != "list" || r.URL != "/api/v2/portals" || r.Sync == nil {
		t.Errorf("envelope: object %q url %q sync_time %v", r.Object, r.URL, r.Sync)
	}
	if len(portals) != 1 {
		t.Fatalf("portals = %+v", portals)
	}
	p := portals[0]
	if p.ScreenName != "zylker" || p.Owner.EmailID != e.siq.AdminEmail() || !numericIDs([]string{p.ID, p.Owner.ID}, 14, 18) {
		t.Errorf("portal = %+v", p)
	}
	found := false
	for _, a := range p.Admins {
		found = found || a.EmailID == e.siq.AdminEmail()
	}
	if !found {
		t.Errorf("admin emails %+v lack the owner", p.Admins)
	}

	// Someone who is no operator of the portal sees none.
	stranger := e.accessToken("us", gatewayClient, "stranger@elsewhere.example", salesiq.AllScopes)
	r = e.call("GET", "/api/v2/portals", stranger, nil)
	if r.Error != nil || string(r.Data) != "[]" {
		t.Errorf("stranger's portals: %s %+v", r.Data, r.Error)
	}
	var apps []salesiq.App
	e.ok("GET", e.path("/apps"), nil, &apps)
	if len(apps) != 1 || apps[0].Name == "" {
		t.Errorf("apps = %+v", apps)
	}
}

func TestDepartmentsAndOperators(t *testing.T) {
	e := newEnv(t, smallWorld())
	var depts []salesiq.Department
	e.ok("GET", e.path("/departments"), nil, &depts)
	names := map[string]string{}
	for _, d := range depts {
		names[d.Name] = d.ID
	}
	for _, want := range append(salesiq.MatchingDepartments, salesiq.UnmatchedDepartments...) {
		if names[want] == "" {
			t.Errorf("department %q missing from %v", want, names)
		}
	}

	// An admin adds one in the product, another comes through the API.
	created, err := e.siq.CreateDepartment("Billing", "money")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.CreateDepartment("billing", ""); !errors.Is(err, salesiq.ErrDuplicate) {
		t.Errorf("duplicate name: %v", err)
	}
	var posted salesiq.Department
	e.ok("POST", e.path("/departments"), map[string]any{"name": "Partners"}, &posted)
	e.fails("POST", e.path("/departments"), e.token, map[string]any{"name": "Partners"}, salesiq.CodeDuplicate)
	e.fails("POST", e.path("/departments"), e.token, map[string]any{}, salesiq.CodeInvalidValue)
	if _, err := e.siq.RenameDepartment(created.ID, "Accounts Receivable"); err != nil {
		t.Fatal(err)
	}
	var got salesiq.Department
	e.ok("GET", e.path("/departments/"+created.ID), nil, &got)
	if got.Name != "Accounts Receivable" {
		t.Errorf("renamed department = %+v", got)
	}
	e.ok("PUT", e.path("/departments/"+posted.ID), map[string]any{"name": "Partner Desk"}, &got)
	if got.Name != "Partner Desk" || len(e.siq.Departments()) != len(depts)+2 {
		t.Errorf("after PUT: %+v, %d departments", got, len(e.siq.Departments()))
	}

	var all, active, deactivated []salesiq.Operator
	e.ok("GET", e.path("/operators"), nil, &all)
	e.ok("GET", e.path("/operators?status=active"), nil, &active)
	e.ok("GET", e.path("/operators?status=deactivated"), nil, &deactivated)
	if len(deactivated) != 1 || len(active)+len(deactivated) != len(all) {
		t.Errorf("operators: %d all, %d active, %d deactivated", len(all), len(active), len(deactivated))
	}
	adminID := ""
	for _, o := range all {
		if o.EmailID == "" || (o.Status != salesiq.OperatorActive && o.Status != salesiq.OperatorDeactivated) {
			t.Errorf("operator %+v", o)
		}
		if o.EmailID == e.siq.AdminEmail() {
			adminID = o.ID
		}
	}
	if adminID == "" {
		t.Fatal("no operator has the admin's email")
	}
	if _, err := e.siq.DeactivateOperator(adminID); err != nil {
		t.Fatal(err)
	}
	var one salesiq.Operator
	e.ok("GET", e.path("/operators/"+adminID), nil, &one)
	if one.Status != salesiq.OperatorDeactivated {
		t.Errorf("deactivated admin = %+v", one)
	}
	// A deactivated operator no longer belongs to the portal.
	var portals []salesiq.Portal
	e.ok("GET", "/api/v2/portals", nil, &portals)
	if len(portals) != 0 {
		t.Errorf("portals of a deactivated operator = %+v", portals)
	}
}

func TestConversationFiltersAndPaging(t *testing.T) {
	e := newEnv(t, smallWorld())
	all := e.siq.Conversations()
	if len(all) < 20 {
		t.Fatalf("only %d seeded conversations", len(all))
	}
	states := map[string]int{}
	noEmail := 0
	for _, c := range all {
		states[c.Status]++
		if c.Visitor.EmailID == "" {
			noEmail++
		}
		if !numericIDs([]string{c.ID, c.Visitor.ID, c.DepartmentID, c.AppID}, 14, 18) {
			t.Errorf("ids of %+v", c)
		}
		if _, err := strconv.ParseInt(c.OpenedTime, 10, 64); err != nil {
			t.Errorf("opened_time %q is not epoch ms", c.OpenedTime)
		}
		switch c.Status {
		case salesiq.StateEnded:
			if c.AttendedTime == "" || c.EndTime == "" || c.MissedTime != "" || c.Owner == nil {
				t.Errorf("ended chat %+v", c)
			}
		case salesiq.StateMissed:
			if c.AttendedTime != "" || c.MissedTime == "" || c.Owner != nil {
				t.Errorf("missed chat %+v", c)
			}
		}
	}
	for _, s := range []string{salesiq.StateWaiting, salesiq.StateConnected, salesiq.StateMissed, salesiq.StateEnded} {
		if states[s] == 0 {
			t.Errorf("no %s chat seeded: %v", s, states)
		}
	}
	if noEmail == 0 {
		t.Error("every seeded visitor has an email; SPEC F8 needs some without")
	}

	// Paging: 7 at a time until a short page, newest first, no repeats.
	seen := map[string]bool{}
	var last int64 = 1 << 62
	for page := 1; ; page++ {
		var got []salesiq.Conversation
		e.ok("GET", e.path(fmt.Sprintf("/conversations?limit=7&page=%d", page)), nil, &got)
		for _, c := range got {
			if seen[c.ID] {
				t.Fatalf("conversation %s on two pages", c.ID)
			}
			seen[c.ID] = true
			opened, _ := strconv.ParseInt(c.OpenedTime, 10, 64)
			if opened > last {
				t.Fatalf("page %d not newest first", page)
			}
			last = opened
		}
		if len(got) < 7 {
			break
		}
	}
	if len(seen) != len(all) {
		t.Errorf("paged %d of %d conversations", len(seen), len(all))
	}
	var def []salesiq.Conversation
	e.ok("GET", e.path("/conversations"), nil, &def)
	if len(def) != 20 {
		t.Errorf("default page size %d, want 20", len(def))
	}

	count := func(query string, keep func(salesiq.Conversation) bool) {
		t.Helper()
		want := 0
		for _, c := range all {
			if keep(c) {
				want++
			}
		}
		got := 0
		for page := 1; ; page++ {
			var batch []salesiq.Conversation
			e.ok("GET", e.path(fmt.Sprintf("/conversations?limit=99&page=%d&%s", page, query)), nil, &batch)
			for _, c := range batch {
				if !keep(c) {
					t.Errorf("%s returned %+v", query, c)
				}
			}
			got += len(batch)
			if len(batch) < 99 {
				break
			}
		}
		if got != want || want == 0 {
			t.Errorf("%s: %d conversations, want %d (> 0)", query, got, want)
		}
	}
	count("status=missed", func(c salesiq.Conversation) bool { return c.Status == salesiq.StateMissed })
	count("status=end", func(c salesiq.Conversation) bool { return c.Status == salesiq.StateEnded })
	count("status=open", func(c salesiq.Conversation) bool {
		return c.Status == salesiq.StateWaiting || c.Status == salesiq.StateConnected
	})
	count("status=closed", func(c salesiq.Conversation) bool {
		return c.Status == salesiq.StateMissed || c.Status == salesiq.StateEnded
	})
	dept := all[0].DepartmentID
	count("department_id="+dept, func(c salesiq.Conversation) bool { return c.DepartmentID == dept })
	email := ""
	for _, c := range all {
		if c.Visitor.EmailID != "" {
			email = c.Visitor.EmailID
			break
		}
	}
	count("email="+email, func(c salesiq.Conversation) bool { return c.Visitor.EmailID == email })
	mid := all[len(all)/2].OpenedTime
	midMS, _ := strconv.ParseInt(mid, 10, 64)
	count("from_time="+mid, func(c salesiq.Conversation) bool { o, _ := strconv.ParseInt(c.OpenedTime, 10, 64); return o >= midMS })
	count("to_time="+mid, func(c salesiq.Conversation) bool { o, _ := strconv.ParseInt(c.OpenedTime, 10, 64); return o <= midMS })

	// A change moves a chat past updated_from_time; sort_by=updated_time
	// puts it first.
	e.clk.Advance(time.Minute)
	since := strconv.FormatInt(e.clk.Now().UnixMilli(), 10)
	waiting := ""
	for _, c := range all {
		if c.Status == salesiq.StateWaiting {
			waiting = c.ID
		}
	}
	e.clk.Advance(time.Second)
	if _, err := e.siq.PickUp(waiting, ""); err != nil {
		t.Fatal(err)
	}
	var updated []salesiq.Conversation
	e.ok("GET", e.path("/conversations?updated_from_time="+since+"&sort_by=updated_time"), nil, &updated)
	if len(updated) != 1 || updated[0].ID != waiting || updated[0].Status != salesiq.StateConnected {
		t.Errorf("updated since pickup: %+v", updated)
	}
	e.fails("GET", e.path("/conversations?from_time=yesterday"), e.token, nil, salesiq.CodeInvalidValue)
	e.fails("GET", e.path("/conversations?sort_by=name"), e.token, nil, salesiq.CodeInvalidValue)
}

func TestTranscript(t *testing.T) {
	e := newEnv(t, smallWorld())
	var ended salesiq.Conversation
	for _, c := range e.siq.Conversations() {
		if c.Status == salesiq.StateEnded {
			ended = c
			break
		}
	}
	var one salesiq.Conversation
	r := e.ok("GET", e.path("/conversations/"+ended.ID), nil, &one)
	if r.Object != "conversation" || one.ID != ended.ID || one.Question == "" || r.Sync != nil {
		t.Errorf("get conversation: %q %+v", r.Object, one)
	}
	var msgs []salesiq.Message
	e.ok("GET", e.path("/conversations/"+ended.ID+"/messages"), nil, &msgs)
	if len(msgs) < 3 {
		t.Fatalf("transcript %+v", msgs)
	}
	if msgs[0].Sender.Type != salesiq.SenderVisitor || msgs[0].Message.Text != one.Question || msgs[0].Sender.ID != one.Visitor.ID {
		t.Errorf("first line %+v, question %q", msgs[0], one.Question)
	}
	sawOperator := false
	var prev int64
	for _, m := range msgs {
		if m.Sender.Type == salesiq.SenderOperator {
			sawOperator = true
			if m.Sender.ID != one.Owner.ID || m.Sender.Name == "" {
				t.Errorf("operator line %+v, owner %+v", m, one.Owner)
			}
		}
		at, err := strconv.ParseInt(m.Time, 10, 64)
		if err != nil || at < prev {
			t.Errorf("transcript time %q out of order or not epoch ms", m.Time)
		}
		prev = at
	}
	if !sawOperator {
		t.Error("attended chat without an operator line")
	}
	var page []salesiq.Message
	e.ok("GET", e.path("/conversations/"+ended.ID+"/messages?limit=2&page=2"), nil, &page)
	if len(page) == 0 || page[0].ID != msgs[2].ID {
		t.Errorf("second page of 2: %+v", page)
	}
}

func TestVisitorEdit(t *testing.T) {
	e := newEnv(t, smallWorld())
	rec := newReceiver(t)
	var hook salesiq.Webhook
	e.ok("POST", e.path("/webhooks"), map[string]any{"type": "data", "url": rec.srv.URL, "events": []string{salesiq.EventVisitorUpdated}, "version": "1"}, &hook)

	// A visitor without an email chats; nothing can be ticketed yet (F8).
	conv, err := e.siq.StartChat(salesiq.ChatStart{Name: "Ren Ito", Question: "Is my order shipped?"})
	if err != nil {
		t.Fatal(err)
	}
	if conv.Visitor.EmailID != "" || conv.Status != salesiq.StateWaiting {
		t.Fatalf("started chat %+v", conv)
	}
	var v salesiq.Visitor
	e.ok("PUT", "/api/visitor/v1/"+e.siq.ScreenName()+"/conversations/"+conv.ID+"/visitor",
		map[string]any{"email": "ren.ito@example.com", "phone": "03-1234-5678", "first_name": "Ren", "last_name": "Ito"}, &v)
	if v.EmailID != "ren.ito@example.com" || v.Phone != "03-1234-5678" || v.ID != conv.Visitor.ID {
		t.Errorf("edited visitor %+v", v)
	}
	var after salesiq.Conversation
	e.ok("GET", e.path("/conversations/"+conv.ID), nil, &after)
	if after.Visitor.EmailID != "ren.ito@example.com" {
		t.Errorf("conversation still shows %+v", after.Visitor)
	}
	e.fails("PUT", "/api/visitor/v1/"+e.siq.ScreenName()+"/conversations/999999999999999/visitor", e.token,
		map[string]any{"email": "a@b.example"}, salesiq.CodeNoConvVisitor)
	e.fails("PUT", "/api/visitor/v1/"+e.siq.ScreenName()+"/conversations/"+conv.ID+"/visitor", e.token,
		map[string]any{"email": "not-an-email"}, salesiq.CodeInvalidValue)

	// The operator's pencil icon does the same.
	if _, err := e.siq.EditVisitor(conv.ID, salesiq.VisitorUpdate{Name: "伊藤 蓮"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.EditVisitor(conv.ID, salesiq.VisitorUpdate{Email: "nope"}); !errors.Is(err, salesiq.ErrInvalid) {
		t.Errorf("bad email edit: %v", err)
	}

	// Visitors through the API: create, get, an email that exists again.
	var created, again, got salesiq.Visitor
	e.ok("POST", e.path("/visitors"), map[string]any{"name": "Mia King", "email": "mia@example.com"}, &created)
	e.ok("POST", e.path("/visitors"), map[string]any{"email": "mia@example.com", "phone": "+1 555 000 1111"}, &again)
	if again.ID != created.ID || again.Phone != "+1 555 000 1111" {
		t.Errorf("second POST with the same email: %+v vs %+v", again, created)
	}
	e.ok("GET", e.path("/visitors/"+created.ID), nil, &got)
	if got.Name != "Mia King" {
		t.Errorf("get visitor %+v", got)
	}
	e.fails("GET", e.path("/visitors/123456789012345"), e.token, nil, salesiq.CodeNoVisitor)
	var found []salesiq.Visitor
	e.ok("GET", e.path("/visitors?email=mia@example.com"), nil, &found)
	if len(found) != 1 || found[0].ID != created.ID {
		t.Errorf("visitors by email: %+v", found)
	}

	got2 := rec.wait(t, e, 3)
	for _, d := range got2 {
		if d.body.Event != salesiq.EventVisitorUpdated || d.body.EntityType != "visitor" {
			t.Errorf("delivery %+v", d.body)
		}
	}
	var first salesiq.Visitor
	if err := json.Unmarshal(got2[0].body.Entity, &first); err != nil || first.EmailID != "ren.ito@example.com" {
		t.Errorf("first visitor.updated entity %s: %v", got2[0].body.Entity, err)
	}
}

func TestSyncedArticlesAreReadOnly(t *testing.T) {
	e := newEnv(t, smallWorld())
	var cats []salesiq.Category
	e.ok("GET", e.path("/articlecategories?index=1&limit=20"), nil, &cats)
	if len(cats) < 3 {
		t.Fatalf("categories %+v", cats)
	}
	dept := e.siq.Departments()[0].ID
	var cat salesiq.Category
	e.ok("POST", e.path("/articlecategories"), map[string]any{"name": "Desk: FAQ", "department_ids": []string{dept}}, &cat)
	e.fails("POST", e.path("/articlecategories"), e.token, map[string]any{"name": "desk: faq"}, salesiq.CodeDuplicate)

	var synced salesiq.Article
	e.ok("POST", e.path("/articles"), map[string]any{
		"title": "Resetting a router", "content": "<p>Hold the button 10 s.</p>", "category_id": cat.ID,
		"department_ids": []string{dept}, "status": "draft", "source": "zoho_desk", "source_id": "1892000000042034",
	}, &synced)
	if !synced.ReadOnly || synced.Source != salesiq.SourceZohoDesk || !contains(synced.Tags, "zoho_desk") || synced.Status != salesiq.StatusDraft {
		t.Errorf("synced article %+v", synced)
	}
	var native salesiq.Article
	e.ok("POST", e.path("/articles"), map[string]any{"title": "Our hours", "content": "9 to 5", "status": "published"}, &native)
	if native.ReadOnly || native.Source != salesiq.SourceSalesIQ {
		t.Errorf("native article %+v", native)
	}
	e.fails("POST", e.path("/articles"), e.token, map[string]any{"title": "x", "content": "y", "status": "live"}, salesiq.CodeInvalidValue)
	e.fails("POST", e.path("/articles"), e.token, map[string]any{"content": "y"}, salesiq.CodeInvalidValue)

	// Another app (or a person's own token) may not touch the synced copy.
	other := e.accessToken("us", otherClient, e.siq.AdminEmail(), salesiq.AllScopes)
	e.fails("PUT", e.path("/articles/"+synced.ID), other, map[string]any{"title": "hacked"}, salesiq.CodeNotPermitted)
	e.fails("DELETE", e.path("/articles/"+synced.ID), other, nil, salesiq.CodeNotPermitted)
	if _, err := e.siq.EditArticle(synced.ID, "hacked", ""); !errors.Is(err, salesiq.ErrReadOnly) {
		t.Errorf("operator edit of a synced article: %v", err)
	}
	// ...but may edit native articles.
	r := e.call("PUT", e.path("/articles/"+native.ID), other, map[string]any{"content": "9 to 6"})
	if r.Error != nil {
		t.Errorf("other client editing a native article: %+v", r.Error)
	}

	// The integration re-syncs its own copy.
	var resynced salesiq.Article
	e.ok("PUT", e.path("/articles/"+synced.ID), map[string]any{"title": "Resetting a router (v2)", "status": "published"}, &resynced)
	if resynced.Title != "Resetting a router (v2)" || resynced.Status != salesiq.StatusPublished || !resynced.ReadOnly {
		t.Errorf("re-synced %+v", resynced)
	}
	e.fails("PUT", e.path("/articles/"+synced.ID), e.token, map[string]any{"read_only": false}, salesiq.CodeInvalidValue)
	var fromDesk []salesiq.Article
	e.ok("GET", e.path("/articles?source=zoho_desk&source_id=1892000000042034"), nil, &fromDesk)
	if len(fromDesk) != 1 || fromDesk[0].ID != synced.ID {
		t.Errorf("lookup by source id: %+v", fromDesk)
	}
	var inCat []salesiq.Category
	e.ok("GET", e.path("/articlecategories?department_id="+dept), nil, &inCat)
	counted := false
	for _, c := range inCat {
		counted = counted || (c.ID == cat.ID && c.ArticlesCount == 1)
	}
	if !counted {
		t.Errorf("category counts: %+v", inCat)
	}
	e.ok("DELETE", e.path("/articles/"+synced.ID), nil, nil)
	e.fails("GET", e.path("/articles/"+synced.ID), e.token, nil, salesiq.CodeNotFound)
}

func TestWebhookDeliveriesAreSigned(t *testing.T) {
	e := newEnv(t, smallWorld())
	rec := newReceiver(t)
	events := []string{salesiq.EventConversationCreated, salesiq.EventAttenderUpdated, salesiq.EventConversationMissed,
		salesiq.EventConversationComplete, salesiq.EventOperatorReplied, salesiq.EventVisitorReplied}
	var hook salesiq.Webhook
	e.ok("POST", e.path("/webhooks"), map[string]any{"type": "data", "url": rec.srv.URL, "events": events, "version": "1",
		"app_ids": []string{e.siq.Apps()[0].ID}}, &hook)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	e.ok("POST", e.path("/webhooks/"+hook.ID+"/keys"), nil, &key)
	pub := parsePublicKey(t, key.PublicKey)
	e.fails("POST", e.path("/webhooks"), e.token, map[string]any{"url": "ftp://x", "events": events}, salesiq.CodeInvalidValue)
	e.fails("POST", e.path("/webhooks"), e.token, map[string]any{"url": rec.srv.URL, "events": []string{"chat.exploded"}}, salesiq.CodeInvalidValue)
	var hooksList []salesiq.Webhook
	e.ok("GET", e.path("/webhooks"), nil, &hooksList)
	if len(hooksList) != 1 || !hooksList[0].Signed {
		t.Errorf("webhooks %+v", hooksList)
	}

	// One attended chat and one missed.
	conv, err := e.siq.StartChat(salesiq.ChatStart{Name: "Grace Lewis", Email: "grace@example.com", Question: "Hello?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.PickUp(conv.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.OperatorReply(conv.ID, "Hi Grace!"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.VisitorReply(conv.ID, "Thanks"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.EndChat(conv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.EndChat(conv.ID); !errors.Is(err, salesiq.ErrState) {
		t.Errorf("ending twice: %v", err)
	}
	missed, err := e.siq.StartChat(salesiq.ChatStart{Name: "Nobody Home", Question: "Anyone?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.Miss(missed.ID); err != nil {
		t.Fatal(err)
	}

	got := rec.wait(t, e, 7)
	want := []struct{ event, id string }{
		{salesiq.EventConversationCreated, conv.ID}, {salesiq.EventAttenderUpdated, conv.ID},
		{salesiq.EventOperatorReplied, conv.ID}, {salesiq.EventVisitorReplied, conv.ID},
		{salesiq.EventConversationComplete, conv.ID}, {salesiq.EventConversationCreated, missed.ID},
		{salesiq.EventConversationMissed, missed.ID},
	}
	for i, d := range got {
		if d.body.Event != want[i].event || d.body.EntityID != want[i].id || d.body.EntityType != "conversation" {
			t.Errorf("delivery %d = %s %s, want %s %s", i, d.body.Event, d.body.EntityID, want[i].event, want[i].id)
		}
		if _, err := strconv.ParseInt(d.body.EventTime, 10, 64); err != nil {
			t.Errorf("event_time %q", d.body.EventTime)
		}
		sig, err := base64.StdEncoding.DecodeString(d.signature)
		if err != nil {
			t.Fatalf("signature %q: %v", d.signature, err)
		}
		sum := sha256.Sum256(d.raw)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			t.Errorf("delivery %d: bad signature: %v", i, err)
		}
		if err := salesiq.VerifySignature(key.PublicKey, d.raw, d.signature); err != nil {
			t.Errorf("VerifySignature: %v", err)
		}
	}
	var entity salesiq.Conversation
	if err := json.Unmarshal(got[1].body.Entity, &entity); err != nil || entity.Owner == nil || entity.AttendedTime == "" {
		t.Errorf("attender.updated entity %s: %v", got[1].body.Entity, err)
	}
	tampered := append([]byte(nil), got[0].raw...)
	tampered[len(tampered)-2] ^= 1
	if salesiq.VerifySignature(key.PublicKey, tampered, got[0].signature) == nil {
		t.Error("a changed body still verifies")
	}

	// After DELETE nothing more arrives.
	e.ok("DELETE", e.path("/webhooks/"+hook.ID), nil, nil)
	if _, err := e.siq.StartChat(salesiq.ChatStart{Name: "Late", Question: "?"}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.wait(t, e, 0)); n != 7 {
		t.Errorf("%d deliveries after delete, want 7", n)
	}
}

func TestFaultsAnswerInSalesIQFormat(t *testing.T) {
	e := newEnv(t, smallWorld())
	e.faults.SetRules(faults.Rule{Kind: faults.RateLimit, Rate: 1, Path: e.path("/conversations")})
	r := e.call("GET", e.path("/conversations"), e.token, nil)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Error == nil || r.Error.Code != salesiq.CodeRateLimited || r.Error.Message == "" {
		t.Errorf("rate limited: HTTP %d Retry-After %q error %+v", r.Status, r.Header.Get("Retry-After"), r.Error)
	}
	e.ok("GET", e.path("/departments"), nil, nil) // other paths unaffected

	e.faults.SetRules(faults.Rule{Kind: faults.ServerError, Rate: 1})
	e.fails("GET", e.path("/departments"), e.token, nil, salesiq.CodeUnknownAuth)
	e.faults.SetRules(faults.Rule{Kind: faults.ExpiredToken, Rate: 1})
	e.fails("GET", e.path("/departments"), e.token, nil, salesiq.CodeInvalidToken)
	e.faults.SetRules()
	e.faults.SetLimits(faults.Limits{DailyCredits: 2})
	e.ok("GET", e.path("/departments"), nil, nil)
	e.ok("GET", e.path("/departments"), nil, nil)
	r = e.call("GET", e.path("/departments"), e.token, nil)
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("over the daily budget: HTTP %d", r.Status)
	}
	if secs, _ := strconv.Atoi(r.Header.Get("Retry-After")); secs < 3600 {
		t.Errorf("Retry-After %q for a daily budget", r.Header.Get("Retry-After"))
	}
	stats := e.faults.Stats()
	if stats[faults.RateLimit] != 2 || stats[faults.ServerError] != 1 || stats[faults.ExpiredToken] != 1 {
		t.Errorf("stats %v", stats)
	}
}

func TestSeedIsDeterministicAndOtherDCsAreEmpty(t *testing.T) {
	w := smallWorld()
	a, b := newEnv(t, w), newEnv(t, w)
	ca, cb := a.siq.Conversations(), b.siq.Conversations()
	if len(ca) != len(cb) {
		t.Fatalf("%d vs %d conversations", len(ca), len(cb))
	}
	for i := range ca {
		if ca[i].ID != cb[i].ID || ca[i].Visitor.EmailID != cb[i].Visitor.EmailID || ca[i].Status != cb[i].Status {
			t.Fatalf("conversation %d differs: %+v vs %+v", i, ca[i], cb[i])
		}
	}
	empty := newEnv(t, nil)
	var convs []salesiq.Conversation
	empty.ok("GET", empty.path("/conversations"), nil, &convs)
	var depts []salesiq.Department
	empty.ok("GET", empty.path("/departments"), nil, &depts)
	var portals []salesiq.Portal
	empty.ok("GET", "/api/v2/portals", nil, &portals)
	if len(convs) != 0 || len(depts) != 0 || len(portals) != 1 {
		t.Errorf("empty org: %d conversations, %d departments, %d portals", len(convs), len(depts), len(portals))
	}
}

// receiver is a webhook endpoint that keeps what it got.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivered
}

type delivered struct {
	raw       []byte
	signature string
	body      struct {
		EntityID   string          `json:"entity_id"`
		EventTime  string          `json:"event_time"`
		Event      string          `json:"event"`
		EntityType string          `json:"entity_type"`
		Entity     json.RawMessage `json:"entity"`
	}
}

func newReceiver(t *testing.T) *receiver {
	rec := &receiver{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		d := delivered{raw: raw, signature: r.Header.Get("x-siqsignature")}
		if err := json.Unmarshal(raw, &d.body); err != nil {
			t.Errorf("delivery is not JSON: %q", raw)
		}
		rec.mu.Lock()
		rec.got = append(rec.got, d)
		rec.mu.Unlock()
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// wait flushes the deliverer and checks n deliveries arrived (n = 0: any
// number).
func (rec *receiver) wait(t *testing.T, e *env, n int) []delivered {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hooks.Flush(ctx); err != nil {
		t.Fatalf("flush webhooks: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n > 0 && len(rec.got) != n {
		t.Fatalf("%d deliveries, want %d", len(rec.got), n)
	}
	return append([]delivered(nil), rec.got...)
}

func parsePublicKey(t *testing.T, p string) *rsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM %q", p)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("key is %T", k)
	}
	return pub
}

// An invited operator is active at once: the portal lists for their token,
// and they show in the operator list; deactivating them takes the portal
// away again (SPEC A5's re-link case).
func TestAddedOperatorSeesThePortal(t *testing.T) {
	e := newEnv(t, smallWorld())
	op, err := e.siq.AddOperator(salesiq.OperatorSpec{Name: "Chat Admin", Email: "Chat.Admin@zylker.example", Role: "Administrator"})
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != salesiq.OperatorActive || op.EmailID != "chat.admin@zylker.example" || len(op.DepartmentIDs) != len(e.siq.Departments()) {
		t.Fatalf("added operator %+v", op)
	}
	if _, err := e.siq.AddOperator(salesiq.OperatorSpec{Email: "chat.admin@zylker.example"}); !errors.Is(err, salesiq.ErrDuplicate) {
		t.Fatalf("a second operator with the same email: %v", err)
	}
	if _, err := e.siq.AddOperator(salesiq.OperatorSpec{Email: "x@zylker.example", Role: "Owner"}); !errors.Is(err, salesiq.ErrInvalid) {
		t.Fatalf("an unknown role: %v", err)
	}
	tok := e.accessToken("us", gatewayClient, "chat.admin@zylker.example", salesiq.AllScopes)
	var portals []salesiq.Portal
	r := e.call("GET", "/api/v2/portals", tok, nil)
	if r.Error != nil || json.Unmarshal(r.Data, &portals) != nil || len(portals) != 1 {
		t.Fatalf("the new operator's portals: %s %+v", r.Data, r.Error)
	}
	if _, err := e.siq.DeactivateOperator(op.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.call("GET", "/api/v2/portals", tok, nil); r.Error != nil || string(r.Data) != "[]" {
		t.Fatalf("a deactivated operator's portals: %s %+v", r.Data, r.Error)
	}
}

// A webhook remembers what it was sent, and a redelivery posts it again
// byte for byte, signature included, as the service's retries do.
func TestRedeliveryIsVerbatim(t *testing.T) {
	e := newEnv(t, smallWorld())
	rec := newReceiver(t)
	var hook salesiq.Webhook
	e.ok("POST", e.path("/webhooks"), map[string]any{"url": rec.srv.URL,
		"events": []string{salesiq.EventConversationCreated, salesiq.EventConversationMissed}}, &hook)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	e.ok("POST", e.path("/webhooks/"+hook.ID+"/keys"), nil, &key)
	conv, err := e.siq.StartChat(salesiq.ChatStart{Name: "Ada", Question: "?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.siq.Miss(conv.ID); err != nil {
		t.Fatal(err)
	}
	first := rec.wait(t, e, 2)
	sent := e.siq.Sent(hook.ID)
	if len(sent) != 2 || sent[1].Event != salesiq.EventConversationMissed || string(sent[1].Body) != string(first[1].raw) ||
		sent[1].Header.Get(salesiq.SignatureHeader) != first[1].signature {
		t.Fatalf("sent %+v", sent)
	}
	if n := e.siq.Redeliver(hook.ID, salesiq.EventConversationMissed); n != 1 {
		t.Fatalf("redelivered %d", n)
	}
	again := rec.wait(t, e, 3)
	if string(again[2].raw) != string(first[1].raw) || again[2].signature != first[1].signature {
		t.Fatalf("the redelivery differs: %q", again[2].raw)
	}
	if err := salesiq.VerifySignature(key.PublicKey, again[2].raw, again[2].signature); err != nil {
		t.Fatal(err)
	}
	if e.siq.Sent("404") != nil || e.siq.Redeliver("404", salesiq.EventConversationMissed) != 0 {
		t.Fatal("an unknown webhook has deliveries")
	}
}
