package syncengine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/faults"
	"github.com/deskbridge/deskbridge/sandbox/seed"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// sandboxConnectors builds real connectors to the sandbox for any connection.
type sandboxConnectors struct{ desk, crm connector.Connector }

func (s sandboxConnectors) For(context.Context, store.Connection) (connector.Connector, connector.Connector, error) {
	return s.desk, s.crm, nil
}

type engineFixture struct {
	db   *sqlx.DB
	sb   *sandbox.Sandbox
	conn store.Connection
	w    *syncengine.Worker
	ctx  context.Context
}

func newEngineFixture(t *testing.T) *engineFixture {
	t.Helper()
	ctx := context.Background()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, People: 40, Accounts: 8, Products: 5, DCs: []string{"us"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	ep, cr := sb.Endpoints()["us"], sb.Credentials()
	build := func(sys connector.System, product string) connector.Connector {
		c, err := zoho.Factory(sys)(zoho.Settings{System: sys, DC: "us", AccountsURL: ep.AccountsURL, APIDomain: ep.APIDomain,
			DeskURL: ep.DeskURL, DeskOrgID: ep.DeskOrgID, ClientID: cr.ClientID, ClientSecret: cr.ClientSecret,
			RefreshToken: cr.RefreshTokens["us"][product]})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	db := storetest.New(t)
	org, _, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := store.InsertConnection(ctx, db, store.NewConnection{OrgID: org.ID, CRMSystem: "zoho_crm", Status: "ACTIVE",
		AuthMethod: "OAUTH", CRMDC: "us", DeskDC: "us", DeskOrgID: ep.DeskOrgID, WebhookToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{store.GroupContactsAccounts, store.GroupProducts} {
		if _, err := store.InsertSettings(ctx, db, store.Settings{OrgID: org.ID, ConnectionID: conn.ID, ModuleGroup: g,
			SyncType: "TWO_WAY", MatchEmail: "PRIMARY", CRMDeletePolicy: "NEVER", DeskDeletePolicy: "NEVER",
			FirstSyncWindowDays: 365, EffectiveFrom: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	w := &syncengine.Worker{DB: db, Name: "test-worker", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Connectors: sandboxConnectors{desk: build(connector.Desk, "desk"), crm: build(connector.CRM, "crm")}}
	return &engineFixture{db: db, sb: sb, conn: conn, w: w, ctx: ctx}
}

func (f *engineFixture) enqueue(t *testing.T, system connector.System, module, id string) {
	t.Helper()
	if err := store.Enqueue(f.ctx, f.db, f.conn.OrgID, f.conn.ID, []store.NewQueueItem{{
		System: string(system), Module: module, ExtID: id, Kind: store.KindUpsert, Origin: store.OriginWebhook,
	}}); err != nil {
		t.Fatal(err)
	}
}

// drain runs the worker until the queue is empty.
func (f *engineFixture) drain(t *testing.T) {
	t.Helper()
	for range 20 {
		n, err := f.w.RunOnce(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("queue never drained")
}

func TestWorkerSyncsBothWaysAndSuppressesEchoes(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")

	// A contact created in the CRM reaches the desk, linked.
	crmID, err := crmSide.Create("Contacts", map[string]any{"First_Name": "Hina", "Last_Name": "Sato", "Email": "hina.sato@new.example", "Phone": "03-1111-2222"})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	deskRec, ok := deskSide.ContactByEmail("hina.sato@new.example")
	if !ok || deskRec.Str("lastName") != "Sato" || deskRec.Str("phone") != "03-1111-2222" {
		t.Fatalf("desk contact after sync: %v (found %v)", deskRec, ok)
	}
	link, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", crmID)
	if err != nil || link.DeskID != deskRec.ID() {
		t.Fatalf("link = %+v, %v", link, err)
	}

	// The desk's notification of our own write is an echo: the CRM record
	// is not written again.
	before, _ := crmSide.Record("Contacts", crmID)
	f.enqueue(t, connector.Desk, "contacts", deskRec.ID())
	f.drain(t)
	after, _ := crmSide.Record("Contacts", crmID)
	if before["Modified_Time"] != after["Modified_Time"] {
		t.Fatalf("echo rewrote the CRM record: %v -> %v", before["Modified_Time"], after["Modified_Time"])
	}

	// An agent edits the phone in the desk: the CRM gets it.
	if _, err := deskSide.UpdateContact(deskRec.ID(), map[string]any{"phone": "090-9999-0000"}); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.Desk, "contacts", deskRec.ID())
	f.drain(t)
	if rec, _ := crmSide.Record("Contacts", crmID); rec["Phone"] != "090-9999-0000" {
		t.Fatalf("CRM phone after a desk edit = %v", rec["Phone"])
	}

	history, err := store.History(f.ctx, f.db, f.conn.OrgID, f.conn.ID, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var added, updated int64
	for _, h := range history {
		added += h.Added
		updated += h.Updated
	}
	if added != 1 || updated != 1 {
		t.Fatalf("history counted %d added, %d updated; want 1 and 1", added, updated)
	}
}

func TestWorkerMatchesByEmailInsteadOfDuplicating(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")
	// Someone the seed put on both sides with the same email.
	var person seed.Person
	for _, p := range seed.Generate(seed.Options{Seed: 1, People: 40, Accounts: 8, Products: 5}).People {
		if p.Presence == seed.Both && p.Email != "" && p.Desk.Email == p.Email {
			person = p
			break
		}
	}
	if person.Email == "" {
		t.Skip("no shared person in this world")
	}
	var crmID string
	for _, id := range crmSide.IDs("Contacts") {
		if rec, _ := crmSide.Record("Contacts", id); rec["Email"] != nil && strings.EqualFold(rec["Email"].(string), person.Email) {
			crmID = id
		}
	}
	deskRec, ok := deskSide.ContactByEmail(person.Email)
	if crmID == "" || !ok {
		t.Fatalf("seeded person %s not on both sides", person.Email)
	}
	contactsBefore := deskSide.Counts().Contacts
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	if n := deskSide.Counts().Contacts; n != contactsBefore {
		t.Fatalf("desk contacts %d -> %d: matched record duplicated", contactsBefore, n)
	}
	link, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "contacts", crmID)
	if err != nil || link.DeskID != deskRec.ID() {
		t.Fatalf("matched link = %+v, %v (desk %s)", link, err, deskRec.ID())
	}
}

func TestWorkerRecordsPermanentFailures(t *testing.T) {
	f := newEngineFixture(t)
	// The CRM's Mailing_City holds 100 characters, the desk's city 50.
	crmID, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Long", "Email": "long.city@new.example",
		"Mailing_City": strings.Repeat("x", 70)})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	failures, err := store.ListFailures(f.ctx, f.db, store.FailureFilter{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID}, 10, 0)
	if err != nil || len(failures) != 1 {
		t.Fatalf("failures = %+v, %v", failures, err)
	}
	if got := failures[0]; got.Reason != string(connector.ReasonTooLong) || got.SourceID != crmID || len(got.Fields) != 1 || got.Fields[0] != "city" {
		t.Fatalf("failure = %+v; want too_long on city for %s", got, crmID)
	}
	if _, ok := f.sb.Desk("us").ContactByEmail("long.city@new.example"); ok {
		t.Fatal("a failed record was written anyway")
	}
}

// While another worker applies a connection's module, this one leaves the
// module's rows for later (without spending an attempt) instead of racing it.
func TestWorkerWaitsForTheModuleLock(t *testing.T) {
	f := newEngineFixture(t)
	crmID, err := f.sb.CRM("us").Create("Contacts", map[string]any{"Last_Name": "Locked", "Email": "locked@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	holder, err := f.db.Conn(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	key := fmt.Sprintf("deskbridge.apply:%d:contacts", f.conn.ID)
	if _, err := holder.ExecContext(f.ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatal(err)
	}
	if n, err := f.w.RunOnce(f.ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if _, ok := f.sb.Desk("us").ContactByEmail("locked@new.example"); ok {
		t.Fatal("applied while another worker held the module")
	}
	var attempts int
	var due bool
	if err := f.db.QueryRow(`SELECT attempts, available_at > now() FROM change_queue WHERE ext_id = $1`, crmID).Scan(&attempts, &due); err != nil || attempts != 0 || !due {
		t.Fatalf("postponed row: attempts %d, later %v, %v", attempts, due, err)
	}
	if _, err := holder.ExecContext(f.ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := f.w.RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.sb.Desk("us").ContactByEmail("locked@new.example"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never applied after the lock was free")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A contact's account lookup is carried over through the accounts' link.
func TestWorkerCarriesLookupsThroughLinks(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")
	accID, err := crmSide.Create("Accounts", map[string]any{"Account_Name": "Lookup Works Inc."})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "accounts", accID)
	f.drain(t)
	accLink, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "accounts", accID)
	if err != nil {
		t.Fatalf("account not linked: %v", err)
	}
	contactID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Looked", "Email": "looked.up@new.example",
		"Account_Name": map[string]any{"id": accID}})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", contactID)
	f.drain(t)
	rec, ok := deskSide.ContactByEmail("looked.up@new.example")
	if !ok || rec.Str("accountId") != accLink.DeskID {
		t.Fatalf("desk contact accountId = %q (found %v), want the linked desk account %s", rec.Str("accountId"), ok, accLink.DeskID)
	}
}

// A conflict the source loses writes nothing, yet is recorded, and the
// winning target is applied again at once: its value reaches the source
// without waiting for its next edit (the edit storm's stuck case).
func TestWorkerCarriesTheWinnerBackAfterALostConflict(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")
	crmID, err := crmSide.Create("Contacts", map[string]any{"Last_Name": "Mori", "Email": "mori@conflict.example", "Phone": "03-0000-0000"})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	deskRec, ok := deskSide.ContactByEmail("mori@conflict.example")
	if !ok {
		t.Fatal("the contact never reached the desk")
	}
	// Both sides change the phone; the desk's edit is the newer one. Only
	// the CRM's change is queued.
	if err := crmSide.Edit("Contacts", crmID, map[string]any{"Phone": "03-1111-1111"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // CRM modified times have second precision
	if _, err := deskSide.UpdateContact(deskRec.ID(), map[string]any{"phone": "090-2222-2222"}); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "contacts", crmID)
	f.drain(t)
	if rec, _ := crmSide.Record("Contacts", crmID); rec["Phone"] != "090-2222-2222" {
		t.Fatalf("CRM phone = %v, want the desk's winning 090-2222-2222", rec["Phone"])
	}
	if got, _ := deskSide.Contact(deskRec.ID()); got.Str("phone") != "090-2222-2222" {
		t.Fatalf("desk phone = %v", got.Str("phone"))
	}
	conflicts, err := store.ListConflicts(f.ctx, f.db, f.conn.OrgID, f.conn.ID, 10, 0)
	if err != nil || len(conflicts) != 1 || conflicts[0].Winner != "DESK" {
		t.Fatalf("conflicts = %+v, %v; want one, won by the desk", conflicts, err)
	}
}

// B14: a record that matches a counterpart linked to another record is a
// failure with the reason already_linked. Nothing is written to the
// counterpart, no second link is made, and the failure is counted in the
// history and stays open for an admin. Two records of one batch matching
// the same counterpart: the first links, the second is refused. (The desk
// lets accounts share a name; the CRM's account names are unique.)
func TestWorkerRefusesAMatchLinkedElsewhere(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")
	createDesk := func(fields desk.Fields) string {
		t.Helper()
		rec, err := deskSide.CreateAccount(fields)
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID()
	}
	openFailures := func() []store.Failure {
		t.Helper()
		failures, err := store.ListFailures(f.ctx, f.db, store.FailureFilter{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID}, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		return failures
	}
	crmAccount := func(name string) (string, map[string]any) {
		t.Helper()
		for _, id := range crmSide.IDs("Accounts") {
			if rec, _ := crmSide.Record("Accounts", id); rec["Account_Name"] == name {
				return id, rec
			}
		}
		return "", nil
	}

	first := createDesk(desk.Fields{"accountName": "Twin Works", "phone": "011-1111"})
	f.enqueue(t, connector.Desk, "accounts", first)
	f.drain(t)
	crmID, _ := crmAccount("Twin Works")
	if crmID == "" {
		t.Fatal("the first account did not reach the CRM")
	}

	second := createDesk(desk.Fields{"accountName": "Twin Works", "phone": "022-2222"})
	f.enqueue(t, connector.Desk, "accounts", second)
	f.drain(t)
	if _, rec := crmAccount("Twin Works"); rec["Phone"] != "011-1111" {
		t.Fatalf("the CRM account linked to the first took the second's values: %v", rec)
	}
	if _, err := store.LinkByDesk(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "accounts", second); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the second account got a link: %v", err)
	}
	failures := openFailures()
	if len(failures) != 1 {
		t.Fatalf("failures = %+v, want one", failures)
	}
	if got := failures[0]; got.Reason != string(connector.ReasonAlreadyLinked) || got.SourceID != second ||
		got.TargetID == nil || *got.TargetID != crmID || got.ResolvedAt != nil {
		t.Fatalf("failure = %+v; want an open already_linked of %s on CRM %s", got, second, crmID)
	}

	// Two desk accounts in one batch, both matching one unlinked CRM account.
	pairCRM, err := crmSide.Create("Accounts", map[string]any{"Account_Name": "Pair Works"})
	if err != nil {
		t.Fatal(err)
	}
	a := createDesk(desk.Fields{"accountName": "Pair Works"})
	b := createDesk(desk.Fields{"accountName": "Pair Works"})
	if err := store.Enqueue(f.ctx, f.db, f.conn.OrgID, f.conn.ID, []store.NewQueueItem{
		{System: string(connector.Desk), Module: "accounts", ExtID: a, Kind: store.KindUpsert, Origin: store.OriginWebhook},
		{System: string(connector.Desk), Module: "accounts", ExtID: b, Kind: store.KindUpsert, Origin: store.OriginWebhook},
	}); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	linked := 0
	for _, id := range []string{a, b} {
		if l, err := store.LinkByDesk(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "accounts", id); err == nil {
			linked++
			if l.CRMID != pairCRM {
				t.Fatalf("%s linked to %s, want %s", id, l.CRMID, pairCRM)
			}
		}
	}
	if linked != 1 {
		t.Fatalf("%d of the two desk accounts linked to the one CRM account, want 1", linked)
	}
	if n := len(openFailures()); n != 2 {
		t.Fatalf("%d open failures, want 2 (one already_linked per refused account)", n)
	}

	history, err := store.History(f.ctx, f.db, f.conn.OrgID, f.conn.ID, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var failed int64
	for _, h := range history {
		failed += h.Failed
	}
	if failed != 2 {
		t.Fatalf("history counted %d failed, want 2", failed)
	}
}

// B5: a CRM product is created on the desk in the department the settings
// name, and in the portal's default department while none is named (the
// desk refuses a product without one).
func TestWorkerCreatesProductsInTheirDepartment(t *testing.T) {
	f := newEngineFixture(t)
	crmSide, deskSide := f.sb.CRM("us"), f.sb.Desk("us")
	var defaultDept, otherDept string
	for _, d := range deskSide.Departments() {
		switch {
		case d["isDefault"] == true:
			defaultDept = d.ID()
		case d["isEnabled"] == true && otherDept == "":
			otherDept = d.ID()
		}
	}
	if defaultDept == "" || otherDept == "" {
		t.Fatalf("the sandbox desk needs a default and another enabled department: %v", deskSide.Departments())
	}
	syncProduct := func(name string) desk.Record {
		t.Helper()
		id, err := crmSide.Create("Products", map[string]any{"Product_Name": name})
		if err != nil {
			t.Fatal(err)
		}
		f.enqueue(t, connector.CRM, "products", id)
		f.drain(t)
		link, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "products", id)
		if err != nil {
			failures, _ := store.ListFailures(f.ctx, f.db, store.FailureFilter{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID}, 10, 0)
			t.Fatalf("product %s not linked: %v; failures %+v", name, err, failures)
		}
		rec, ok := deskSide.Product(link.DeskID)
		if !ok {
			t.Fatalf("desk product %s missing", link.DeskID)
		}
		return rec
	}
	departmentsOf := func(rec desk.Record) []string {
		var out []string
		ids, _ := rec["departmentIds"].([]any)
		for _, id := range ids {
			out = append(out, fmt.Sprint(id))
		}
		return out
	}

	// While the desk cannot list its departments, the product waits in the
	// queue rather than being created without one (a permanent failure).
	f.sb.Injector("desk").SetRules(faults.Rule{Kind: faults.ServerError, Rate: 1, Path: "/api/v1/departments"})
	waiting, err := crmSide.Create("Products", map[string]any{"Product_Name": "Waiting Widget"})
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, connector.CRM, "products", waiting)
	if _, err := f.w.RunOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	var queued int
	if err := f.db.Get(&queued, `SELECT count(*) FROM change_queue WHERE ext_id = $1`, waiting); err != nil || queued != 1 {
		t.Fatalf("the product's change: %d queued (%v), want it kept while the departments cannot be read", queued, err)
	}
	if failures, _ := store.ListFailures(f.ctx, f.db, store.FailureFilter{OrgID: f.conn.OrgID, ConnectionID: f.conn.ID}, 10, 0); len(failures) != 0 {
		t.Fatalf("failures while the departments cannot be read: %+v", failures)
	}
	f.sb.Injector("desk").SetRules()

	if got := departmentsOf(syncProduct("Default Department Widget")); len(got) != 1 || got[0] != defaultDept {
		t.Fatalf("without a department setting the product went to %v, want the default %s", got, defaultDept)
	}
	if l, err := store.LinkByCRM(f.ctx, f.db, f.conn.OrgID, f.conn.ID, "products", waiting); err != nil {
		t.Fatalf("the product that waited is not linked: %v", err)
	} else if rec, _ := deskSide.Product(l.DeskID); len(departmentsOf(rec)) != 1 {
		t.Fatalf("the product that waited went to %v", departmentsOf(rec))
	}

	current, err := store.CurrentSettings(f.ctx, f.db, f.conn.OrgID, f.conn.ID, store.GroupProducts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	current.DeskDepartmentID, current.EffectiveFrom = &otherDept, time.Time{}
	if _, err := store.InsertSettings(f.ctx, f.db, current); err != nil {
		t.Fatal(err)
	}
	if got := departmentsOf(syncProduct("Chosen Department Widget")); len(got) != 1 || got[0] != otherDept {
		t.Fatalf("with department %s set the product went to %v", otherDept, got)
	}
}
