package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/auth"
)

const sidebarQuery = `query($deskId: String!) {
  ticket(deskId: $deskId) {
    id subject statusType overdue
    contact { deskId name email }
    customer {
      crmContact { crmId name }
      customerType
      deals(first: 100) { edges { node { crmId name stage amount } } pageInfo { hasNextPage } }
      notes(first: 100) { edges { node { crmId title } } }
      activities(first: 100) { edges { node { crmId kind subject } } }
      tickets(first: 100) { edges { node { deskId } } }
      ticketCounts { total open onHold resolved unresolved overdue }
    }
  }
}`

// The customer picture next to a ticket (D1) holds exactly what the vendors
// hold for that customer, and each role sees what its profile opens: the
// rest of the answer comes back beside a FORBIDDEN error at the hidden
// field's path.
func TestCustomerSidebarOverGraphQL(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	agent := w.ts.token("acme", auth.RoleAgent)
	restricted := w.ts.token("acme", auth.RoleRestrictedAgent)
	stranger := w.ts.token("globex", auth.RoleAdmin)
	t.Logf("ticket %s: desk contact %s = CRM contact %s with %d deals, %d notes, %d activities, %d tickets",
		pick.TicketID, pick.DeskID, pick.CRMID, pick.Deals, pick.Notes, pick.Acts, pick.Tickets)

	// The truth, from the CRM sandbox itself.
	crmSide := w.sb.CRM("us")
	related := func(module, field string) map[string]bool {
		out := map[string]bool{}
		for _, id := range crmSide.IDs(module) {
			rec, _ := crmSide.Record(module, id)
			if ref, _ := rec[field].(map[string]any); ref != nil && fmt.Sprint(ref["id"]) == pick.CRMID {
				out[id] = true
			}
		}
		return out
	}
	wantDeals, wantNotes := related("Deals", "Contact_Name"), related("Notes", "Parent_Id")
	wantActs := related("Calls", "Who_Id")
	for id := range related("Events", "Who_Id") {
		wantActs[id] = true
	}
	for id := range related("Tasks", "Who_Id") {
		wantActs[id] = true
	}

	ids := func(conn any) map[string]bool {
		out := map[string]bool{}
		edges, _ := dig(conn.(map[string]any), "edges").([]any)
		for _, e := range edges {
			node := e.(map[string]any)["node"].(map[string]any)
			id, _ := node["crmId"].(string)
			if id == "" {
				id, _ = node["deskId"].(string)
			}
			out[id] = true
		}
		return out
	}
	same := func(what string, got, want map[string]bool) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %d, want %d (%v vs %v)", what, len(got), len(want), got, want)
		}
		for id := range want {
			if !got[id] {
				t.Fatalf("%s: %s missing", what, id)
			}
		}
	}

	r := w.ts.query(agent, sidebarQuery, map[string]any{"deskId": pick.TicketID})
	if len(r.Errors) > 0 {
		t.Fatalf("agent sidebar: %+v", r.Errors)
	}
	cust := dig(r.Data, "ticket", "customer").(map[string]any)
	if dig(cust, "crmContact", "crmId") != pick.CRMID || dig(r.Data, "ticket", "contact", "deskId") != pick.DeskID {
		t.Fatalf("sidebar people: %+v", r.Data)
	}
	same("deals", ids(cust["deals"]), wantDeals)
	same("notes", ids(cust["notes"]), wantNotes)
	same("activities", ids(cust["activities"]), wantActs)
	if got := ids(cust["tickets"]); len(got) != pick.Tickets || !got[pick.TicketID] {
		t.Fatalf("tickets: %v, want %d including %s", got, pick.Tickets, pick.TicketID)
	}
	// What a list's nodes read from the records' JSON (a note's content, a
	// ticket's number) comes back when asked for, through a fragment too.
	r = w.ts.query(agent, `query($deskId: String!) { ticket(deskId: $deskId) { customer {
		notes(first: 100) { edges { node { crmId content } } }
		tickets(first: 100) { edges { node { ... on Ticket { deskId number } } } } } } }`, map[string]any{"deskId": pick.TicketID})
	if len(r.Errors) > 0 {
		t.Fatalf("notes' content and tickets' numbers: %+v", r.Errors)
	}
	for _, e := range dig(r.Data, "ticket", "customer", "notes", "edges").([]any) {
		node := e.(map[string]any)["node"].(map[string]any)
		rec, _ := crmSide.Record("Notes", node["crmId"].(string))
		if want, _ := rec["Note_Content"].(string); want == "" || node["content"] != want {
			t.Fatalf("note %v: content %q, the CRM holds %q", node["crmId"], node["content"], want)
		}
	}
	for _, e := range dig(r.Data, "ticket", "customer", "tickets", "edges").([]any) {
		if node := e.(map[string]any)["node"].(map[string]any); node["number"] == nil || node["number"] == "" {
			t.Fatalf("ticket %v without its number", node["deskId"])
		}
	}
	counts := cust["ticketCounts"].(map[string]any)
	if int(counts["total"].(float64)) != pick.Tickets || counts["open"].(float64)+counts["onHold"].(float64) != counts["unresolved"].(float64) ||
		counts["unresolved"].(float64)+counts["resolved"].(float64) != counts["total"].(float64) {
		t.Fatalf("ticketCounts: %+v (want total %d)", counts, pick.Tickets)
	}

	// A restricted agent gets everything but the deals: an empty list and a
	// FORBIDDEN error at customer.deals.
	r = w.ts.query(restricted, sidebarQuery, map[string]any{"deskId": pick.TicketID})
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != codeForbidden || fmt.Sprint(r.Errors[0].Path) != "[ticket customer deals]" {
		t.Fatalf("restricted agent errors: %+v", r.Errors)
	}
	rcust := dig(r.Data, "ticket", "customer").(map[string]any)
	if len(ids(rcust["deals"])) != 0 || len(ids(rcust["notes"])) != len(wantNotes) || len(ids(rcust["activities"])) != len(wantActs) {
		t.Fatalf("restricted agent picture: %+v", rcust)
	}
	raw, _ := json.Marshal(r.Data)
	for id := range wantDeals {
		if strings.Contains(string(raw), id) {
			t.Fatalf("a deal id reached a restricted agent: %s", id)
		}
	}

	// An admin hides the calls from agents: the calls leave the list, the
	// events and tasks stay, and the error names what was hidden.
	in := map[string]any{"crmPanels": true, "panelRecord": "CONTACT", "contactInfo": "FULL", "deals": "FULL", "notes": "FULL",
		"calls": "NONE", "events": "FULL", "tasks": "FULL", "crmTickets": true, "ticketActions": true}
	if r := w.ts.query(admin, `mutation($in: PermissionProfileInput!) { updatePermissionProfile(role: AGENT, input: $in) { calls } }`, map[string]any{"in": in}); len(r.Errors) > 0 {
		t.Fatalf("updatePermissionProfile: %+v", r.Errors)
	}
	r = w.ts.query(agent, sidebarQuery, map[string]any{"deskId": pick.TicketID})
	if len(r.Errors) != 1 || fmt.Sprint(r.Errors[0].Path) != "[ticket customer activities]" {
		t.Fatalf("agent without calls: %+v", r.Errors)
	}
	wantNoCalls := related("Events", "Who_Id")
	for id := range related("Tasks", "Who_Id") {
		wantNoCalls[id] = true
	}
	same("activities without calls", ids(dig(r.Data, "ticket", "customer").(map[string]any)["activities"]), wantNoCalls)

	// The same customer from the CRM side (D4) and by email.
	r = w.ts.query(admin, `query($id: String!) { crmRecord(module: CONTACTS, crmId: $id) { name ticketCounts { total } tickets(first: 100) { edges { node { deskId } } } } }`,
		map[string]any{"id": pick.CRMID})
	if len(r.Errors) > 0 || int(dig(r.Data, "crmRecord", "ticketCounts", "total").(float64)) != pick.Tickets {
		t.Fatalf("crmRecord: %+v %+v", r.Errors, r.Data)
	}
	email, _ := dig(w.ts.query(admin, sidebarQuery, map[string]any{"deskId": pick.TicketID}).Data, "ticket", "contact", "email").(string)
	if email != "" {
		r = w.ts.query(admin, `query($e: String!) { customerByEmail(email: $e) { crmContact { crmId } } }`, map[string]any{"e": email})
		if len(r.Errors) > 0 || dig(r.Data, "customerByEmail", "crmContact", "crmId") != pick.CRMID {
			t.Fatalf("customerByEmail(%s): %+v %+v", email, r.Errors, r.Data)
		}
	}

	// Another org reaches none of it, by desk id or by global id.
	ticketID := dig(w.ts.query(admin, sidebarQuery, map[string]any{"deskId": pick.TicketID}).Data, "ticket", "id").(string)
	if r := w.ts.query(stranger, sidebarQuery, map[string]any{"deskId": pick.TicketID}); r.code(0) != "NOT_FOUND" || dig(r.Data, "ticket") != nil {
		t.Fatalf("another org's ticket by desk id: %+v", r)
	}
	if r := w.ts.query(stranger, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": ticketID}); r.code(0) != "NOT_FOUND" {
		t.Fatalf("another org's ticket by global id: %+v", r)
	}
	if r := w.ts.query(agent, `query($id: ID!) { node(id: $id) { ... on Ticket { deskId } } }`, map[string]any{"id": ticketID}); len(r.Errors) > 0 || dig(r.Data, "node", "deskId") != pick.TicketID {
		t.Fatalf("node(ticket): %+v", r)
	}
}

// customerPick is a ticket whose desk contact is linked to a CRM contact
// with deals, notes and activities, and what the mirror holds around it.
type customerPick struct {
	TicketID  string `db:"ticket_id"`
	DeskID    string `db:"desk_id"`
	CRMID     string `db:"crm_id"`
	Deals     int    `db:"deals"`
	Notes     int    `db:"notes"`
	Acts      int    `db:"acts"`
	Tickets   int    `db:"tickets"`
	AccountID string `db:"account_id"`
}

// startCustomerWorld connects the acme org and waits until the first sync
// linked the people and the mirror read both sides' records, then picks the
// ticket with the richest CRM picture. It returns an admin token of acme.
// extraEnv adds to or overrides the gateway's environment.
func startCustomerWorld(t *testing.T, extraEnv ...map[string]string) (*connectionWorld, string, customerPick) {
	t.Helper()
	w := startConnectionWorld(t, append([]map[string]string{{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"}}, extraEnv...)...)
	admin := w.ts.token("acme", auth.RoleAdmin)
	if r := w.ts.query(admin, connectMutation, map[string]any{"in": w.connectInput(w.crmOrgID(t, admin))}); len(r.Errors) > 0 {
		t.Fatalf("connectCrm: %+v", r.Errors)
	}

	// A ticket whose contact is linked to a CRM contact with deals, notes
	// and activities, once the first sync linked them and the mirror read
	// the CRM's and the desk's records.
	var pick customerPick
	waitFor(t, "a linked ticket contact with deals, notes and activities in the mirror", func() bool {
		err := w.ts.srv.db.DB.Get(&pick, `
			SELECT t.ext_id AS ticket_id, l.desk_id, l.crm_id,
				(SELECT count(*) FROM mirror_records d WHERE d.system = 'zoho_crm' AND d.module = 'deals' AND d.contact_ref = l.crm_id AND d.deleted_at IS NULL) AS deals,
				(SELECT count(*) FROM mirror_records d WHERE d.system = 'zoho_crm' AND d.module = 'notes' AND d.contact_ref = l.crm_id AND d.deleted_at IS NULL) AS notes,
				(SELECT count(*) FROM mirror_records d WHERE d.system = 'zoho_crm' AND d.module IN ('calls', 'events', 'tasks') AND d.contact_ref = l.crm_id AND d.deleted_at IS NULL) AS acts,
				(SELECT count(*) FROM mirror_records d WHERE d.system = 'zoho_desk' AND d.module = 'tickets' AND d.contact_ref = l.desk_id AND d.deleted_at IS NULL) AS tickets,
				COALESCE(c.account_ref, '') AS account_id
			FROM mirror_records t
			JOIN links l ON l.module = 'contacts' AND l.desk_id = t.contact_ref
			JOIN mirror_records c ON c.system = 'zoho_crm' AND c.module = 'contacts' AND c.ext_id = l.crm_id
			WHERE t.system = 'zoho_desk' AND t.module = 'tickets'
			ORDER BY 4 DESC, 5 DESC, 6 DESC LIMIT 1`)
		return err == nil && pick.Deals > 0 && pick.Notes > 0 && pick.Acts > 0
	})

	return w, admin, pick
}

// The other entry points of the picture: a deal (its contact leads), a
// desk contact or account by desk id or global id; and the owner filter
// on a customer's deals. A Bigin pipeline record leads the same way
// (TestBiginPipelineRecordEntry).
func TestCustomerEntryPointsByDealAndDeskRecord(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	restricted := w.ts.token("acme", auth.RoleRestrictedAgent)
	stranger := w.ts.token("globex", auth.RoleAdmin)
	db := w.ts.srv.db.DB
	var deal struct {
		ID    string `db:"ext_id"`
		Title string `db:"title"`
		Owner string `db:"owner_id"`
	}
	if err := db.Get(&deal, `SELECT ext_id, COALESCE(title, '') AS title, COALESCE(owner_id, '') AS owner_id FROM mirror_records
		WHERE system = 'zoho_crm' AND module = 'deals' AND contact_ref = $1 AND deleted_at IS NULL ORDER BY ext_id LIMIT 1`, pick.CRMID); err != nil {
		t.Fatal(err)
	}

	const byDeal = `query($id: String!) { crmRecord(module: DEALS, crmId: $id) { crmId module name
		customer { crmContact { crmId } deals(first: 100) { edges { node { crmId } } } }
		ticketCounts { total } tickets(first: 100) { edges { node { deskId } } } } }`
	r := w.ts.query(admin, byDeal, map[string]any{"id": deal.ID})
	if len(r.Errors) > 0 {
		t.Fatalf("crmRecord(DEALS): %+v", r.Errors)
	}
	rec := r.Data["crmRecord"].(map[string]any)
	if rec["module"] != "DEALS" || rec["name"] != deal.Title || dig(rec, "customer", "crmContact", "crmId") != pick.CRMID ||
		int(dig(rec, "ticketCounts", "total").(float64)) != pick.Tickets || len(dig(rec, "tickets", "edges").([]any)) != pick.Tickets {
		t.Fatalf("the deal's picture: %+v (want contact %s, %d tickets)", rec, pick.CRMID, pick.Tickets)
	}
	if got := len(dig(rec, "customer", "deals", "edges").([]any)); got != pick.Deals {
		t.Fatalf("the deal's customer lists %d deals, want %d", got, pick.Deals)
	}
	if r := w.ts.query(restricted, byDeal, map[string]any{"id": deal.ID}); r.code(0) != codeForbidden || r.Data["crmRecord"] != nil {
		t.Fatalf("a restricted agent reached a deal as a CRM record: %+v", r)
	}
	if r := w.ts.query(stranger, byDeal, map[string]any{"id": deal.ID}); r.code(0) != "NOT_FOUND" {
		t.Fatalf("another org reached the deal: %+v", r)
	}

	// The owner filter keeps exactly the owner's deals.
	var owned int
	if err := db.Get(&owned, `SELECT count(*) FROM mirror_records WHERE system = 'zoho_crm' AND module = 'deals'
		AND contact_ref = $1 AND owner_id = $2 AND deleted_at IS NULL`, pick.CRMID, deal.Owner); err != nil {
		t.Fatal(err)
	}
	r = w.ts.query(admin, `query($id: String!, $owner: String!) { crmRecord(module: CONTACTS, crmId: $id) {
		customer { deals(first: 100, filter: {ownerId: $owner}) { edges { node { crmId } } } nobody: deals(filter: {ownerId: "no-such-user"}) { edges { node { crmId } } } } } }`,
		map[string]any{"id": pick.CRMID, "owner": deal.Owner})
	if len(r.Errors) > 0 || owned == 0 || len(dig(r.Data, "crmRecord", "customer", "deals", "edges").([]any)) != owned ||
		len(dig(r.Data, "crmRecord", "customer", "nobody", "edges").([]any)) != 0 {
		t.Fatalf("deals of owner %s: %+v %+v (want %d)", deal.Owner, r.Errors, r.Data, owned)
	}

	// A desk contact and account by desk id and by global id.
	const byDesk = `query($c: String!, $a: String!) { deskContact(deskId: $c) { id deskId customer { crmContact { crmId } deskContact { deskId } } ticketCounts { total } }
		deskAccount(deskId: $a) { id deskId name } }`
	var account string
	if err := db.Get(&account, `SELECT ext_id FROM mirror_records WHERE system = 'zoho_desk' AND module = 'accounts' AND deleted_at IS NULL ORDER BY ext_id LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	r = w.ts.query(admin, byDesk, map[string]any{"c": pick.DeskID, "a": account})
	if len(r.Errors) > 0 || dig(r.Data, "deskContact", "customer", "crmContact", "crmId") != pick.CRMID ||
		dig(r.Data, "deskContact", "customer", "deskContact", "deskId") != pick.DeskID ||
		int(dig(r.Data, "deskContact", "ticketCounts", "total").(float64)) != pick.Tickets {
		t.Fatalf("deskContact(deskId): %+v %+v", r.Errors, r.Data)
	}
	contactID, accountID := dig(r.Data, "deskContact", "id"), dig(r.Data, "deskAccount", "id")
	r = w.ts.query(admin, `query($c: ID!, $a: ID!) { deskContact(id: $c) { deskId } deskAccount(id: $a) { deskId } wrong: deskAccount(id: $c) { deskId } }`,
		map[string]any{"c": contactID, "a": accountID})
	if dig(r.Data, "deskContact", "deskId") != pick.DeskID || dig(r.Data, "deskAccount", "deskId") == nil || r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("by global id: %+v %+v", r.Errors, r.Data)
	}
	if r := w.ts.query(stranger, byDesk, map[string]any{"c": pick.DeskID, "a": "x"}); r.code(0) != "NOT_FOUND" || dig(r.Data, "deskContact") != nil {
		t.Fatalf("another org's desk contact: %+v", r)
	}
	if r := w.ts.query(admin, `{ deskContact { deskId } }`, nil); r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("deskContact without an id: %+v", r)
	}
}

// A Bigin pipeline record is an entry point like a CRM deal (D4): its
// picture is led by its contact, and its tickets are that contact's.
func TestBiginPipelineRecordEntry(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	orgs := w.ts.query(admin, `query($c: ZohoCredentialsInput!) { reachableCrmOrgs(crmSystem: BIGIN, dataCenter: US, credentials: $c) { id } }`,
		map[string]any{"c": map[string]any{"refreshToken": w.bigRT}})
	in := w.connectInput(dig(orgs.Data, "reachableCrmOrgs").([]any)[0].(map[string]any)["id"].(string))
	in["crmSystem"], in["crmCredentials"] = "BIGIN", map[string]any{"refreshToken": w.bigRT}
	if r := w.ts.query(admin, connectMutation, map[string]any{"in": in}); len(r.Errors) > 0 {
		t.Fatalf("connectCrm(BIGIN): %+v", r.Errors)
	}
	var pick struct {
		Pipeline string `db:"pipeline"`
		Contact  string `db:"contact"`
		Tickets  int    `db:"tickets"`
	}
	db := w.ts.srv.db.DB
	waitFor(t, "a pipeline record whose contact is linked and has tickets, in the mirror", func() bool {
		err := db.Get(&pick, `SELECT p.ext_id AS pipeline, p.contact_ref AS contact,
				(SELECT count(*) FROM mirror_records t WHERE t.system = 'zoho_desk' AND t.module = 'tickets' AND t.contact_ref = l.desk_id AND t.deleted_at IS NULL) AS tickets
			FROM mirror_records p JOIN links l ON l.module = 'contacts' AND l.crm_id = p.contact_ref
			WHERE p.system = 'bigin' AND p.module = 'deals' AND p.deleted_at IS NULL ORDER BY 3 DESC, 1 LIMIT 1`)
		return err == nil && pick.Tickets > 0
	})
	r := w.ts.query(admin, `query($id: String!) { crmRecord(module: DEALS, crmId: $id) { name customer { crmContact { crmId } }
		ticketCounts { total } tickets(first: 100) { edges { node { deskId } } } } }`, map[string]any{"id": pick.Pipeline})
	if len(r.Errors) > 0 || dig(r.Data, "crmRecord", "customer", "crmContact", "crmId") != pick.Contact ||
		int(dig(r.Data, "crmRecord", "ticketCounts", "total").(float64)) != pick.Tickets ||
		len(dig(r.Data, "crmRecord", "tickets", "edges").([]any)) != pick.Tickets || dig(r.Data, "crmRecord", "name") == nil {
		t.Fatalf("pipeline record %s: %+v %+v (want contact %s, %d tickets)", pick.Pipeline, r.Errors, r.Data, pick.Contact, pick.Tickets)
	}
	if r := w.ts.query(admin, `{ crmRecord(module: LEADS, crmId: "1") { crmId } }`, nil); r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("Bigin leads: %+v", r)
	}
}
