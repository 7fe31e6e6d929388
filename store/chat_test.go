package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func newChatLink(t *testing.T, db *sqlx.DB, org store.Org, conn store.Connection, screen string) (store.ChatLink, error) {
	t.Helper()
	return store.InsertChatLink(context.Background(), db, store.NewChatLink{OrgID: org.ID, ConnectionID: conn.ID, DataCenter: "us",
		ScreenName: screen, DeskOrgID: conn.DeskOrgID, DeskUserID: "5001", AccountEmail: "admin@example.com", WebhookToken: "tok-" + screen})
}

// A link, its secret and its mappings belong to their org; one live link
// per org and per chat portal.
func TestChatLinksAreScopedAndUnique(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")

	link, err := newChatLink(t, db, acme, conn, "zylker")
	if err != nil {
		t.Fatal(err)
	}
	if link.Status != store.ChatLinkActive || link.ConvertChats != "NONE" || link.ConvertAt != "CHAT_END" || link.TicketStatus != "OPEN" {
		t.Fatalf("a new link: %+v", link)
	}
	if _, err := newChatLink(t, db, acme, conn, "second"); !errors.Is(err, store.ErrOrgHasChatLink) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second live link in the org: %v", err)
	}
	if _, err := newChatLink(t, db, other, otherConn, "zylker"); !errors.Is(err, store.ErrChatPortalTaken) {
		t.Fatalf("another org linking the same portal: %v", err)
	}
	if _, err := store.ChatLinkByID(ctx, db, other.ID, link.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org's link by id: %v", err)
	}
	if _, err := store.UpdateChatLink(ctx, db, other.ID, link.ID, store.ChatLinkUpdate{ConvertChats: ptr("ALL")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org updating the link: %v", err)
	}
	if err := store.SetChatLinkSecret(ctx, db, other.ID, link.ID, []byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org storing the secret: %v", err)
	}
	if err := store.SetChatLinkSecret(ctx, db, acme.ID, link.ID, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ChatLinkSecret(ctx, db, other.ID, link.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org reading the secret: %v", err)
	}
	// A conditional status change names the current status.
	if _, err := store.UpdateChatLink(ctx, db, acme.ID, link.ID, store.ChatLinkUpdate{IfStatus: []string{store.ChatLinkDisabled},
		Status: ptr(store.ChatLinkActive)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("enabling an active link: %v", err)
	}
	reason := "the linked desk user was deleted"
	got, err := store.UpdateChatLink(ctx, db, acme.ID, link.ID, store.ChatLinkUpdate{Status: ptr(store.ChatLinkRelinkRequired), RelinkReason: &reason})
	if err != nil || got.Status != store.ChatLinkRelinkRequired || *got.RelinkReason != reason {
		t.Fatalf("asking for a re-link: %+v %v", got, err)
	}
	got, err = store.UpdateChatLink(ctx, db, acme.ID, link.ID, store.ChatLinkUpdate{Status: ptr(store.ChatLinkRemoved), RelinkReason: ptr(""), ClearSecret: true})
	if err != nil || got.RelinkReason != nil {
		t.Fatalf("removing: %+v %v", got, err)
	}
	if _, err := store.ChatLinkSecret(ctx, db, acme.ID, link.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a removed link's secret: %v", err)
	}
	if _, err := newChatLink(t, db, acme, conn, "zylker"); err != nil {
		t.Fatalf("linking again after removing: %v", err)
	}

	// Mappings: new departments are added once; the org guard holds.
	m := store.ChatDepartmentMapping{OrgID: acme.ID, LinkID: link.ID, ChatDepartmentID: "701", ChatDepartmentName: "Support",
		Mode: store.ChatModeChooseEachTime}
	for i, want := range []bool{true, false} {
		if added, err := store.InsertChatDepartmentMapping(ctx, db, m); err != nil || added != want {
			t.Fatalf("insert %d: %v %v", i, added, err)
		}
	}
	m.OrgID = other.ID
	if _, err := store.SetChatDepartmentMapping(ctx, db, m); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org setting a mapping: %v", err)
	}
	m.OrgID, m.Mode = acme.ID, store.ChatModeDeskDepartment
	if _, err := store.SetChatDepartmentMapping(ctx, db, m); err == nil {
		t.Fatal("a DESK_DEPARTMENT mapping without a desk department was stored")
	}
}

// Exactly one of many concurrent claims of a conversation wins; the others
// see the claim; a stale or deferred one can be taken over once.
func TestChatTicketClaims(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme")
	other, _ := orgWithConnection(t, db, "other")
	link, err := newChatLink(t, db, acme, conn, "zylker")
	if err != nil {
		t.Fatal(err)
	}
	claim := store.ChatTicket{OrgID: acme.ID, LinkID: link.ID, ConversationID: "c1", Origin: store.ChatOriginAutomatic,
		Request: json.RawMessage(`{"departmentId":"601"}`)}
	var wins sync.Map
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			won, row, err := store.ClaimChatTicket(ctx, db, claim)
			if err != nil {
				t.Error(err)
				return
			}
			if won {
				wins.Store(i, row)
			}
		})
	}
	wg.Wait()
	n := 0
	wins.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d concurrent claims won", n)
	}
	// The same conversation id in another org is another chat.
	if won, _, err := store.ClaimChatTicket(ctx, db, store.ChatTicket{OrgID: other.ID, LinkID: link.ID, ConversationID: "c1", Origin: store.ChatOriginManual}); err == nil || won {
		t.Fatalf("a claim naming another org's link: %v %v", won, err)
	}
	// A fresh PENDING claim cannot be taken over; a deferred one can, once.
	if took, _, err := store.TakeOverChatTicket(ctx, db, acme.ID, "c1", time.Now().Add(-time.Minute)); err != nil || took {
		t.Fatalf("taking over a fresh claim: %v %v", took, err)
	}
	next := time.Now().Add(-time.Second)
	// A long reason is cut to 500 bytes at a character boundary (a cut
	// inside "é" is text Postgres refuses).
	if err := store.DeferChatTicket(ctx, db, acme.ID, "c1", store.ChatTicketRetry, "x"+strings.Repeat("é", 300), next); err != nil {
		t.Fatalf("deferring with a long reason: %v", err)
	}
	if err := store.DeferChatTicket(ctx, db, acme.ID, "c1", store.ChatTicketUnknown, "lost", next); err != nil {
		t.Fatal(err)
	}
	due, err := store.ChatTicketsDue(ctx, db, time.Now(), time.Now().Add(-time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].State != store.ChatTicketUnknown || *due[0].LastError != "lost" {
		t.Fatalf("due: %+v %v", due, err)
	}
	took, row, err := store.TakeOverChatTicket(ctx, db, acme.ID, "c1", time.Now().Add(-time.Minute))
	if err != nil || !took || row.State != store.ChatTicketPending || row.Attempts != 2 {
		t.Fatalf("taking over a deferred claim: %v %+v %v", took, row, err)
	}
	if took, _, _ := store.TakeOverChatTicket(ctx, db, acme.ID, "c1", time.Now().Add(-time.Minute)); took {
		t.Fatal("taken over twice")
	}
	if err := store.FinishChatTicket(ctx, db, acme.ID, "c1", "9001", store.ChatOriginAutomatic, false); err != nil {
		t.Fatal(err)
	}
	if won, row, err := store.ClaimChatTicket(ctx, db, claim); err != nil || won || row.State != store.ChatTicketDone || *row.TicketID != "9001" {
		t.Fatalf("claiming a done conversation: %v %+v %v", won, row, err)
	}
	// The transcript is claimed once; a merge moves the chat onto the
	// ticket that stays.
	if _, claimed, err := store.ClaimChatTranscript(ctx, db, acme.ID, "c1"); err != nil || !claimed {
		t.Fatalf("transcript claim: %v %v", claimed, err)
	}
	if _, claimed, _ := store.ClaimChatTranscript(ctx, db, acme.ID, "c1"); claimed {
		t.Fatal("the transcript was claimed twice")
	}
	if err := store.RepointChatTickets(ctx, db, other.ID, []string{"9001"}, "9999"); err != nil {
		t.Fatal(err)
	}
	if err := store.RepointChatTickets(ctx, db, acme.ID, []string{"9001"}, "9002"); err != nil {
		t.Fatal(err)
	}
	convs, err := store.ChatConversationsOfTickets(ctx, db, acme.ID, []string{"9001", "9002"})
	if err != nil || convs["9002"] != "c1" || convs["9001"] != "" {
		t.Fatalf("after the merge: %v %v", convs, err)
	}
	if convs, _ := store.ChatConversationsOfTickets(ctx, db, other.ID, []string{"9002"}); len(convs) != 0 {
		t.Fatalf("another org sees the chat's ticket: %v", convs)
	}
}

// The chat window's search matches subject, number, email and contact
// name, treats LIKE's wildcards as text, and keeps to the departments and
// the org asked for.
func TestSearchChatTickets(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	acme, conn := orgWithConnection(t, db, "acme")
	other, otherConn := orgWithConnection(t, db, "other")
	mirror := func(orgID, connID int64, module, id string, f map[string]any, email, name, title, contact, dept string) {
		t.Helper()
		raw, _ := json.Marshal(f)
		rec := store.MirrorRecord{System: "zoho_desk", Module: module, ExtID: id, Fields: raw}
		if email != "" {
			rec.Email = &email
		}
		if name != "" {
			rec.Name = &name
		}
		rec.Refs.Title, rec.Refs.ContactID, rec.Refs.DepartmentID = title, contact, dept
		if _, err := store.UpsertMirror(ctx, db, orgID, connID, []store.MirrorRecord{rec}); err != nil {
			t.Fatal(err)
		}
	}
	mirror(acme.ID, conn.ID, "contacts", "c1", map[string]any{}, "rita@example.com", "Rita Returns", "", "", "")
	mirror(acme.ID, conn.ID, "tickets", "t1", map[string]any{"ticketNumber": "101", "email": "rita@example.com"}, "", "", "100% broken_sensor", "c1", "d1")
	mirror(acme.ID, conn.ID, "tickets", "t2", map[string]any{"ticketNumber": "102"}, "", "", "Invoice", "c2", "d2")
	mirror(other.ID, otherConn.ID, "tickets", "t9", map[string]any{"ticketNumber": "101"}, "", "", "100% broken_sensor", "c1", "d1")
	search := func(text string, depts []string) []string {
		t.Helper()
		recs, err := store.SearchChatTickets(ctx, db, store.ChatTicketSearch{OrgID: acme.ID, ConnectionID: conn.ID, DeskSystem: "zoho_desk",
			Text: text, Departments: depts, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.ExtID)
		}
		return ids
	}
	for text, want := range map[string]int{"broken": 1, "100%": 1, "100_": 0, "#101": 1, "101": 1, "RITA@example.com": 1, "returns": 1,
		"invoice": 1, "nothing": 0, "%": 1, "_": 1, "": 2} {
		if got := search(text, nil); len(got) != want {
			t.Fatalf("search %q: %v, want %d", text, got, want)
		}
	}
	if got := search("", []string{"d2"}); len(got) != 1 || got[0] != "t2" {
		t.Fatalf("department d2: %v", got)
	}
	if got := search("", []string{}); len(got) != 0 {
		t.Fatalf("no departments: %v", got)
	}
}
