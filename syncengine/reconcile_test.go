package syncengine_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

var (
	deskFields = map[string]connector.Field{
		"lastName":          {Name: "lastName", Type: connector.TypeText, MaxLength: 80},
		"phone":             {Name: "phone", Type: connector.TypePhone},
		"cf_loyalty_points": {Name: "cf_loyalty_points", Type: connector.TypeInteger},
		"accountId":         {Name: "accountId", Type: connector.TypeLookup, LookupModule: "accounts"},
		"cf_renewal":        {Name: "cf_renewal", Type: connector.TypeDateTime},
	}
	crmFields = map[string]connector.Field{
		"Last_Name":         {Name: "Last_Name", Type: connector.TypeText, MaxLength: 80},
		"Phone":             {Name: "Phone", Type: connector.TypePhone},
		"Loyalty_Points__c": {Name: "Loyalty_Points__c", Type: connector.TypeInteger},
		"Account_Name":      {Name: "Account_Name", Type: connector.TypeLookup, LookupModule: "Accounts"},
		"Renewal__c":        {Name: "Renewal__c", Type: connector.TypeDateTime},
	}
	maps = []mapping.Mapping{
		{DeskField: "lastName", CRMField: "Last_Name"},
		{DeskField: "phone", CRMField: "Phone"},
		{DeskField: "cf_loyalty_points", CRMField: "Loyalty_Points__c"},
		{DeskField: "accountId", CRMField: "Account_Name"},
		{DeskField: "cf_renewal", CRMField: "Renewal__c"},
	}
	t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
)

// accounts links desk account "d-acc" with CRM account "c-acc".
func resolve(_ mapping.Module, from syncengine.Side, id string) (string, bool) {
	if from == syncengine.DeskSide && id == "d-acc" {
		return "c-acc", true
	}
	if from == syncengine.CRMSide && id == "c-acc" {
		return "d-acc", true
	}
	return "", false
}

func input(source syncengine.Side, src map[string]any, srcAt time.Time, tgt map[string]any, tgtAt time.Time, srcLast, tgtLast map[string]any) syncengine.ReconcileInput {
	in := syncengine.ReconcileInput{
		Module: mapping.Contacts, Mappings: maps, DeskFields: deskFields, CRMFields: crmFields,
		Source: source, Src: syncengine.Snapshot{ID: "s", Fields: src, ModifiedAt: srcAt},
		SrcLast: srcLast, TgtLast: tgtLast, Resolve: resolve, TieWinner: syncengine.CRMSide,
		CRMLocation: time.FixedZone("", -7*3600),
	}
	in.TargetSystem = connector.CRM
	if source == syncengine.CRMSide {
		in.TargetSystem = connector.Desk
	}
	if tgt != nil {
		in.Tgt = &syncengine.Snapshot{ID: "t", Fields: tgt, ModifiedAt: tgtAt}
	}
	return in
}

func mustPlan(t *testing.T, in syncengine.ReconcileInput) syncengine.Plan {
	t.Helper()
	p, err := syncengine.Reconcile(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writes(p syncengine.Plan) string {
	b, _ := json.Marshal(p.Write)
	return string(b)
}

func TestCreateWritesEveryMappedField(t *testing.T) {
	p := mustPlan(t, input(syncengine.DeskSide,
		map[string]any{"lastName": "Sato", "phone": "03-1111", "cf_loyalty_points": json.Number("12"), "accountId": "d-acc", "cf_renewal": "2026-05-10T08:10:47.000Z"},
		t0, nil, time.Time{}, nil, nil))
	want := `{"Account_Name":{"id":"c-acc"},"Last_Name":"Sato","Loyalty_Points__c":12,"Phone":"03-1111","Renewal__c":"2026-05-10T01:10:47-07:00"}`
	if got := writes(p); got != want || p.Echo {
		t.Fatalf("create wrote %s (echo %v), want %s", got, p.Echo, want)
	}
	if p.TargetLast["Last_Name"] != "Sato" || p.SourceLast["lastName"] != "Sato" {
		t.Fatalf("link values not recorded: %v / %v", p.SourceLast, p.TargetLast)
	}
}

func TestEchoWritesNothing(t *testing.T) {
	last := map[string]any{"lastName": "Sato", "phone": "03-1111"}
	p := mustPlan(t, input(syncengine.DeskSide, map[string]any{"lastName": "Sato", "phone": "03-1111"}, t0,
		map[string]any{"Last_Name": "Sato", "Phone": "03-1111"}, t0, last, map[string]any{"Last_Name": "Sato", "Phone": "03-1111"}))
	if !p.Echo || len(p.Write) != 0 {
		t.Fatalf("echo: %+v", p)
	}
}

func TestOneSidedChangeWritesOnlyThatField(t *testing.T) {
	p := mustPlan(t, input(syncengine.CRMSide,
		map[string]any{"Last_Name": "Sato", "Phone": "090-2222"}, t0.Add(time.Hour),
		map[string]any{"lastName": "Sato", "phone": "03-1111"}, t0,
		map[string]any{"Last_Name": "Sato", "Phone": "03-1111"}, map[string]any{"lastName": "Sato", "phone": "03-1111"}))
	if writes(p) != `{"phone":"090-2222"}` || len(p.Conflicts) != 0 {
		t.Fatalf("wrote %s, conflicts %v", writes(p), p.Conflicts)
	}
}

func TestConflictNewerWinsFieldByField(t *testing.T) {
	lastDesk := map[string]any{"lastName": "Sato", "phone": "03-1111"}
	lastCRM := map[string]any{"Last_Name": "Sato", "Phone": "03-1111"}
	// Both changed the phone; the CRM record is newer: it wins.
	p := mustPlan(t, input(syncengine.CRMSide,
		map[string]any{"Last_Name": "Sato", "Phone": "090-CRM"}, t0.Add(2*time.Hour),
		map[string]any{"lastName": "Sato", "phone": "080-DESK"}, t0.Add(time.Hour), lastCRM, lastDesk))
	if writes(p) != `{"phone":"090-CRM"}` || len(p.Conflicts) != 1 || p.Conflicts[0].Winner != syncengine.CRMSide ||
		p.Conflicts[0].DeskValue != "080-DESK" || p.Conflicts[0].CRMValue != "090-CRM" {
		t.Fatalf("CRM newer: wrote %s, conflicts %+v", writes(p), p.Conflicts)
	}
	// The same change seen from the desk side first: the CRM still wins, so
	// nothing is written to the CRM.
	p = mustPlan(t, input(syncengine.DeskSide,
		map[string]any{"lastName": "Sato", "phone": "080-DESK"}, t0.Add(time.Hour),
		map[string]any{"Last_Name": "Sato", "Phone": "090-CRM"}, t0.Add(2*time.Hour), lastDesk, lastCRM))
	if len(p.Write) != 0 || len(p.Conflicts) != 1 || p.Conflicts[0].Winner != syncengine.CRMSide || p.SourceLast["phone"] != "080-DESK" {
		t.Fatalf("desk older: wrote %s, conflicts %+v, source last %v", writes(p), p.Conflicts, p.SourceLast)
	}
	// The link then holds the losing value for both sides, and the CRM is
	// applied again: its 090-CRM differs from what the link holds for it, so
	// it flows to the desk, even if the CRM had been set back to its old
	// last-synced value meanwhile (the storm test's stuck case).
	if p.TargetLast["Phone"] != "080-DESK" || !p.RequeueTarget {
		t.Fatalf("desk older: target last %v, requeue %v", p.TargetLast, p.RequeueTarget)
	}
	back := mustPlan(t, input(syncengine.CRMSide,
		map[string]any{"Last_Name": "Sato", "Phone": "03-1111"}, t0.Add(3*time.Hour),
		map[string]any{"lastName": "Sato", "phone": "080-DESK"}, t0.Add(time.Hour),
		map[string]any{"Last_Name": "Sato", "Phone": "080-DESK"}, map[string]any{"lastName": "Sato", "phone": "080-DESK"}))
	if writes(back) != `{"phone":"03-1111"}` {
		t.Fatalf("the CRM set back after winning: wrote %s, want its value on the desk", writes(back))
	}
	// Both changed to the same value: nothing to write, no conflict.
	p = mustPlan(t, input(syncengine.DeskSide,
		map[string]any{"lastName": "Sato", "phone": "070-SAME"}, t0.Add(time.Hour),
		map[string]any{"Last_Name": "Sato", "Phone": "070-SAME"}, t0.Add(2*time.Hour), lastDesk, lastCRM))
	if len(p.Write) != 0 || len(p.Conflicts) != 0 {
		t.Fatalf("same value: wrote %s, conflicts %+v", writes(p), p.Conflicts)
	}
}

func TestMatchedRecordsNewerWins(t *testing.T) {
	// First link after matching by email: no last values on either side.
	p := mustPlan(t, input(syncengine.CRMSide,
		map[string]any{"Last_Name": "Sato", "Phone": "090-CRM"}, t0,
		map[string]any{"lastName": "Sato", "phone": "080-DESK"}, t0.Add(time.Hour), nil, nil))
	if len(p.Write) != 0 || len(p.Conflicts) != 1 || p.Conflicts[0].Winner != syncengine.DeskSide {
		t.Fatalf("desk newer on first link: wrote %s, conflicts %+v", writes(p), p.Conflicts)
	}
	if p.TargetLast["lastName"] != "Sato" || p.SourceLast["Last_Name"] != "Sato" {
		t.Fatalf("equal fields not recorded as synced: %v %v", p.SourceLast, p.TargetLast)
	}
}

func TestValuesTheTargetAlreadyHoldsAreNotRewritten(t *testing.T) {
	p := mustPlan(t, input(syncengine.CRMSide,
		map[string]any{"Loyalty_Points__c": json.Number("42"), "Renewal__c": "2026-05-10T01:10:47-07:00"}, t0,
		map[string]any{"cf_loyalty_points": 42.0, "cf_renewal": "2026-05-10T08:10:47.000Z"}, t0,
		map[string]any{"Loyalty_Points__c": json.Number("41")}, map[string]any{"cf_loyalty_points": 41.0}))
	if len(p.Write) != 0 {
		t.Fatalf("rewrote values the desk already had: %s", writes(p))
	}
}

func TestLookupsResolveThroughLinksOrWait(t *testing.T) {
	p := mustPlan(t, input(syncengine.CRMSide, map[string]any{"Account_Name": map[string]any{"name": "Zylker", "id": "c-acc"}}, t0, nil, time.Time{}, nil, nil))
	if p.Write["accountId"] != "d-acc" {
		t.Fatalf("lookup not resolved: %s", writes(p))
	}
	p = mustPlan(t, input(syncengine.CRMSide, map[string]any{"Account_Name": map[string]any{"name": "New Co", "id": "c-unlinked"}}, t0, nil, time.Time{}, nil, nil))
	if _, wrote := p.Write["accountId"]; wrote || len(p.Deferred) != 1 || p.Deferred[0] != "Account_Name" {
		t.Fatalf("unlinked lookup: wrote %s, deferred %v", writes(p), p.Deferred)
	}
	if _, seen := p.SourceLast["Account_Name"]; seen {
		t.Fatal("a deferred field must stay 'changed' for the next pass")
	}
}

func TestUnconvertibleValueFailsTheRecord(t *testing.T) {
	_, err := syncengine.Reconcile(input(syncengine.DeskSide, map[string]any{"lastName": strings.Repeat("x", 81)}, t0, nil, time.Time{}, nil, nil))
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Reason != connector.ReasonTooLong || ce.Field != "Last_Name" {
		t.Fatalf("got %v, want too_long on Last_Name", err)
	}
}

// Two-way sync against vendors that normalise values (the CRM strips
// spaces from phone numbers) settles after a bounded number of writes.
func TestTwoWaySyncConverges(t *testing.T) {
	desk := map[string]any{"lastName": "Sato", "phone": "03 1111"}
	crm := map[string]any{"Last_Name": "Sato", "Phone": "031111"}
	deskLast := map[string]any{"lastName": "Sato", "phone": "031111"}
	crmLast := map[string]any{"Last_Name": "Sato", "Phone": "031111"}
	// A user edits the desk phone; then notifications bounce until quiet.
	desk["phone"] = "03 2222"
	queue := []syncengine.Side{syncengine.DeskSide}
	writesMade := 0
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 10 {
			t.Fatalf("no convergence: desk %v crm %v", desk, crm)
		}
		side := queue[0]
		queue = queue[1:]
		var p syncengine.Plan
		if side == syncengine.DeskSide {
			p = mustPlan(t, input(side, desk, t0, crm, t0, deskLast, crmLast))
			deskLast, crmLast = p.SourceLast, p.TargetLast
			if len(p.Write) > 0 {
				writesMade++
				for k, v := range p.Write {
					crm[k] = strings.ReplaceAll(v.(string), " ", "") // the CRM normalises
				}
				queue = append(queue, syncengine.CRMSide)
			}
		} else {
			p = mustPlan(t, input(side, crm, t0, desk, t0, crmLast, deskLast))
			crmLast, deskLast = p.SourceLast, p.TargetLast
			if len(p.Write) > 0 {
				writesMade++
				for k, v := range p.Write {
					desk[k] = v
				}
				queue = append(queue, syncengine.DeskSide)
			}
		}
	}
	// The edit reaches the CRM, whose normalised form then settles on the
	// desk too: two writes, then only echoes.
	if crm["Phone"] != "032222" || desk["phone"] != "032222" || writesMade != 2 {
		t.Fatalf("ended desk %v, crm %v after %d writes; want both 032222 after 2", desk, crm, writesMade)
	}
}

func TestSame(t *testing.T) {
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{json.Number("42"), 42.0, true},
		{json.Number("1234.50"), json.Number("1234.5"), true},
		{"2026-05-10T01:10:47-07:00", "2026-05-10T08:10:47.000Z", true},
		{map[string]any{"name": "A", "id": "1"}, map[string]any{"id": "1"}, true},
		{"", nil, true},
		{"a", "A", false},
		// A currency the desk sends as text equals the CRM's number...
		{json.Number("347.73"), "347.73", true},
		{"347.73", 347.73, true},
		{json.Number("1"), "one", false},
		// ...but two strings stay text: phone numbers keep their zeros.
		{"0312", "312", false},
	} {
		if got := syncengine.Same(c.a, c.b); got != c.want {
			t.Errorf("Same(%#v, %#v) = %v", c.a, c.b, got)
		}
	}
}
