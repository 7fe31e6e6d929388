package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

// customerFields asks for every field group of a customer picture.
const customerFields = `crmContact { crmId } customerType mergedFields { deskField }
  deals(first: 5) { edges { node { crmId } } } notes(first: 5) { edges { node { crmId } } }
  activities(first: 5) { edges { node { crmId } } } tickets(first: 5) { edges { node { deskId } } } ticketCounts { total }`

// matrixQuery reaches the picture from every entry point, and the BI
// lists and aggregates, in one document.
const matrixQuery = `query($ticket: String!, $contact: ID!, $deskContact: String!, $crm: String!, $deal: String!, $email: String!) {
  ticket(deskId: $ticket) { deskId customer { ` + customerFields + ` } }
  node(id: $contact) { ... on DeskContact { deskId customer { ` + customerFields + ` } } }
  deskContact(deskId: $deskContact) { deskId customer { ` + customerFields + ` } }
  dealRecord: crmRecord(module: DEALS, crmId: $deal) { crmId customer { crmContact { crmId } } }
  crmRecord(module: CONTACTS, crmId: $crm) { crmId fields customer { ` + customerFields + ` } tickets(first: 5) { edges { node { deskId } } } ticketCounts { total } }
  customerByEmail(email: $email) { ` + customerFields + ` }
  crmRecords(module: CONTACTS, first: 5) { edges { node { crmId } } }
  deals(first: 5) { edges { node { crmId } } }
  notes(first: 5) { edges { node { crmId } } }
  activities(first: 5) { edges { node { crmId kind } } }
  dealStats { stage count }
  activityStats { kind open }
  classifiedTickets(first: 5) { edges { node { deskId } } }
  tickets(first: 5) { edges { node { deskId } } }
  ticketStats(groupBy: [STATUS]) { count }
}`

// Every role against every entry point and field group, with the default
// profiles and with edited ones: the exact set of FORBIDDEN paths, and
// data everywhere else; another org reaches nothing (SPEC C1, C2, G5).
func TestCustomerPermissionMatrix(t *testing.T) {
	t.Parallel()
	w, admin, pick := startCustomerWorld(t)
	tokens := map[auth.Role]string{auth.RoleAdmin: admin}
	for _, role := range []auth.Role{auth.RoleAgent, auth.RoleRestrictedAgent, auth.RoleLightAgent} {
		tokens[role] = w.ts.token("acme", role)
	}
	contact := dig(w.ts.query(admin, `query($t: String!) { ticket(deskId: $t) { contact { id email } } }`, map[string]any{"t": pick.TicketID}).Data, "ticket", "contact").(map[string]any)
	var deal string
	if err := w.ts.srv.db.DB.Get(&deal, `SELECT ext_id FROM mirror_records WHERE module = 'deals' AND contact_ref = $1 LIMIT 1`, pick.CRMID); err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"ticket": pick.TicketID, "contact": contact["id"], "deskContact": pick.DeskID, "crm": pick.CRMID, "deal": deal, "email": contact["email"]}

	// The paths a hidden deals area yields, from every entry point.
	dealPaths := []string{"[ticket customer deals]", "[node customer deals]", "[deskContact customer deals]", "[crmRecord customer deals]",
		"[customerByEmail deals]", "[deals]", "[dealStats]", "[dealRecord]"}
	check := func(what string, role auth.Role, want []string) {
		t.Helper()
		r := w.ts.query(tokens[role], matrixQuery, vars)
		var got []string
		for _, e := range r.Errors {
			if e.Extensions["code"] != codeForbidden {
				t.Fatalf("%s, %s: unexpected error %+v", what, role, e)
			}
			got = append(got, fmt.Sprint(e.Path))
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Fatalf("%s, %s: FORBIDDEN at %v, want %v", what, role, got, want)
		}
		// Whatever is not forbidden answered with data.
		for _, path := range [][]string{{"ticket", "customer", "crmContact"}, {"ticket", "customer", "deals"}, {"ticket", "customer", "notes"},
			{"ticket", "customer", "activities"}, {"ticket", "customer", "tickets"}, {"crmRecord", "tickets"}, {"deals"}, {"notes"}, {"classifiedTickets"}} {
			forbiddenHere := slices.ContainsFunc(want, func(p string) bool {
				return strings.HasPrefix(strings.Trim(p, "[]"), strings.Join(path, " "))
			})
			v := dig(r.Data, path...)
			if forbiddenHere {
				if edges, _ := dig(r.Data, append(path, "edges")...).([]any); len(edges) > 0 {
					t.Fatalf("%s, %s: forbidden %v still returned items", what, role, path)
				}
				continue
			}
			if v == nil || (strings.HasSuffix(strings.Join(path, " "), "deals") || strings.HasSuffix(strings.Join(path, " "), "notes")) && len(dig(r.Data, append(path, "edges")...).([]any)) == 0 {
				t.Fatalf("%s, %s: %v came back empty: %+v", what, role, path, r.Data)
			}
		}
	}
	check("defaults", auth.RoleAdmin, nil)
	check("defaults", auth.RoleAgent, nil)
	check("defaults", auth.RoleLightAgent, nil)
	check("defaults", auth.RoleRestrictedAgent, dealPaths)

	// Edited profiles: the light agent loses notes and the tickets on CRM
	// records (C2); the agent loses the CRM panels altogether.
	set := func(role string, in map[string]any) {
		t.Helper()
		base := map[string]any{"crmPanels": true, "panelRecord": "CONTACT", "contactInfo": "READ", "deals": "READ", "notes": "READ",
			"calls": "READ", "events": "READ", "tasks": "READ", "crmTickets": true, "ticketActions": false}
		for k, v := range in {
			base[k] = v
		}
		if r := w.ts.query(admin, `mutation($r: Role!, $in: PermissionProfileInput!) { updatePermissionProfile(role: $r, input: $in) { role } }`,
			map[string]any{"r": role, "in": base}); len(r.Errors) > 0 {
			t.Fatalf("updatePermissionProfile: %+v", r.Errors)
		}
	}
	set("LIGHT_AGENT", map[string]any{"notes": "NONE", "crmTickets": false})
	check("no notes, no CRM tickets", auth.RoleLightAgent, []string{"[ticket customer notes]", "[node customer notes]", "[deskContact customer notes]",
		"[crmRecord customer notes]", "[customerByEmail notes]", "[notes]", "[crmRecord tickets]", "[crmRecord ticketCounts]"})
	set("AGENT", map[string]any{"crmPanels": false})
	r := w.ts.query(tokens[auth.RoleAgent], matrixQuery, vars)
	var got []string
	for _, e := range r.Errors {
		got = append(got, fmt.Sprint(e.Path))
	}
	slices.Sort(got)
	want := []string{"[activities]", "[classifiedTickets]", "[crmRecord]", "[crmRecords]", "[customerByEmail]", "[dealStats]",
		"[deals]", "[node customer]", "[deskContact customer]", "[dealRecord]", "[notes]", "[ticket customer]", "[activityStats]"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("agent without CRM panels: FORBIDDEN at %v, want %v", got, want)
	}
	if dig(r.Data, "ticket", "deskId") != pick.TicketID || dig(r.Data, "tickets") == nil {
		t.Fatalf("agent without CRM panels lost the desk data: %+v", r.Data)
	}

	// Another org, with valid ids of this one.
	stranger := w.ts.token("globex", auth.RoleAdmin)
	r = w.ts.query(stranger, matrixQuery, vars)
	for _, e := range r.Errors {
		if e.Extensions["code"] != "NOT_FOUND" {
			t.Fatalf("another org: %+v", e)
		}
	}
	if r.Data != nil && (dig(r.Data, "ticket") != nil || dig(r.Data, "node") != nil || dig(r.Data, "crmRecord") != nil ||
		dig(r.Data, "deskContact") != nil || dig(r.Data, "dealRecord") != nil) {
		t.Fatalf("another org read acme's records: %+v", r.Data)
	}
}

// BI reads (G3): every ticket exactly once over stable cursors, then only
// what changed since; aggregates add up.
func TestBIReadsOverGraphQL(t *testing.T) {
	t.Parallel()
	w, admin, _ := startCustomerWorld(t)
	all := func(since *time.Time) map[string]int {
		t.Helper()
		seen := map[string]int{}
		var after any
		for pages := 0; ; pages++ {
			vars := map[string]any{"after": after}
			if since != nil {
				vars["since"] = since.Format(time.RFC3339Nano)
			}
			r := w.ts.query(admin, `query($after: String, $since: DateTime) { tickets(first: 7, after: $after, updatedSince: $since) { edges { cursor node { deskId } } pageInfo { hasNextPage endCursor } } }`, vars)
			if len(r.Errors) > 0 || pages > 1000 {
				t.Fatalf("tickets page %d: %+v", pages, r.Errors)
			}
			for _, e := range dig(r.Data, "tickets", "edges").([]any) {
				seen[dig(e.(map[string]any), "node", "deskId").(string)]++
			}
			if dig(r.Data, "tickets", "pageInfo", "hasNextPage") != true {
				return seen
			}
			after = dig(r.Data, "tickets", "pageInfo", "endCursor")
		}
	}
	waitFor(t, "every desk ticket in the mirror", func() bool { return len(all(nil)) == w.sb.Desk("us").Counts().Tickets })
	for id, n := range all(nil) {
		if n != 1 {
			t.Fatalf("ticket %s listed %d times", id, n)
		}
	}

	// A change in the desk shows up in the incremental read, alone.
	since := time.Now()
	var ticketID string
	for id := range all(nil) {
		ticketID = id
		break
	}
	if _, err := w.sb.Desk("us").UpdateTicket(ticketID, map[string]any{"subject": "Changed for the BI test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed ticket in the incremental read", func() bool {
		got := all(&since)
		return got[ticketID] == 1
	})
	if got := all(&since); len(got) > 3 {
		t.Fatalf("the incremental read returned %d tickets for one change", len(got))
	}

	// A ticket deleted in the desk leaves the listing (the deleted feed
	// marks its mirror row).
	if err := w.sb.Desk("us").DeleteTicket(ticketID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted ticket to leave the listing", func() bool { return all(nil)[ticketID] == 0 })

	r := w.ts.query(admin, `{ ticketStats(groupBy: [STATUS]) { status count } total: ticketStats(groupBy: []) { count } dealStats { stage count amount } activityStats { kind open closed } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("stats: %+v", r.Errors)
	}
	sum := 0
	for _, s := range r.Data["ticketStats"].([]any) {
		sum += int(s.(map[string]any)["count"].(float64))
	}
	total := int(r.Data["total"].([]any)[0].(map[string]any)["count"].(float64))
	if sum != total || total != w.sb.Desk("us").Counts().Tickets {
		t.Fatalf("ticketStats by status add up to %d, total %d, desk has %d", sum, total, w.sb.Desk("us").Counts().Tickets)
	}
	deals := 0
	for _, s := range r.Data["dealStats"].([]any) {
		deals += int(s.(map[string]any)["count"].(float64))
	}
	if deals != w.sb.CRM("us").Count("Deals") || len(r.Data["activityStats"].([]any)) != 3 {
		t.Fatalf("dealStats count %d, CRM has %d; activityStats %+v", deals, w.sb.CRM("us").Count("Deals"), r.Data["activityStats"])
	}
	// A page of 500 whose items each open a page of 100 costs their
	// product, and is refused before it runs.
	r = w.ts.query(admin, `{ deskContacts(first: 500) { edges { node { customer { deals(first: 100) { edges { node { name stage amount } } } } } } } }`, nil)
	if r.code(0) != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("a 500 x 100 read: %+v", r.Errors)
	}
}
