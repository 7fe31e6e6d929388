package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// fieldsFromSandbox reads both systems' field metadata the way the engine
// will: through the real connectors, from the sandbox over HTTP.
func fieldsFromSandbox(t *testing.T) (desk, crm map[mapping.Module][]connector.Field) {
	t.Helper()
	ctx := context.Background()
	sb, err := sandbox.Start(ctx, sandbox.Config{People: 10, Accounts: 3, Products: 3, DCs: []string{"us"}})
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
	deskConn, crmConn := build(connector.Desk, "desk"), build(connector.CRM, "crm")
	desk, crm = map[mapping.Module][]connector.Field{}, map[mapping.Module][]connector.Field{}
	for _, m := range mapping.Modules {
		if desk[m], err = deskConn.Fields(ctx, m.DeskModule()); err != nil {
			t.Fatal(err)
		}
		if crm[m], err = crmConn.Fields(ctx, m.CRMModule()); err != nil {
			t.Fatal(err)
		}
	}
	return desk, crm
}

var both = []mapping.Direction{mapping.CRMToDesk, mapping.DeskToCRM}

func TestStandardMappingsAreValidOnTheVendorsMetadata(t *testing.T) {
	desk, crm := fieldsFromSandbox(t)
	for _, m := range mapping.Modules {
		std := mapping.Standard(m, desk[m], crm[m])
		if len(std) < 4 {
			t.Errorf("%s: only %d standard mappings", m, len(std))
		}
		if problems := mapping.Validate(m, std, desk[m], crm[m], both); len(problems) > 0 {
			t.Errorf("%s: standard mappings refused: %v", m, problems)
		}
	}
	// A custom field pair of matching types is mappable both ways.
	withCustom := append(mapping.Standard(mapping.Contacts, desk[mapping.Contacts], crm[mapping.Contacts]),
		mapping.Mapping{DeskField: "cf_loyalty_points", CRMField: "Loyalty_Points__c"},
		mapping.Mapping{DeskField: "cf_customer_type", CRMField: "Customer_Type"})
	if problems := mapping.Validate(mapping.Contacts, withCustom, desk[mapping.Contacts], crm[mapping.Contacts], both); len(problems) > 0 {
		t.Errorf("custom fields refused: %v", problems)
	}

	contacts := func(extra ...mapping.Mapping) []mapping.Mapping {
		return append(mapping.Standard(mapping.Contacts, desk[mapping.Contacts], crm[mapping.Contacts]), extra...)
	}
	cases := []struct {
		name     string
		maps     []mapping.Mapping
		dirs     []mapping.Direction
		contains []string
	}{
		{"text into an integer", contacts(mapping.Mapping{DeskField: "twitter", CRMField: "Loyalty_Points__c"}), both,
			[]string{`desk field "twitter" (text)`, `CRM field "Loyalty_Points__c" (integer)`}},
		{"a field mapped twice", contacts(mapping.Mapping{DeskField: "email", CRMField: "Department"}), both,
			[]string{`desk field "email" is mapped more than once`}},
		{"into a read-only field", contacts(mapping.Mapping{DeskField: "facebook", CRMField: "Full_Name"}), both,
			[]string{`CRM field "Full_Name" is read-only`}},
		{"unknown field", contacts(mapping.Mapping{DeskField: "nope", CRMField: "Title"}), both,
			[]string{`desk contacts has no field "nope"`}},
		{"owner fields", contacts(mapping.Mapping{DeskField: "ownerId", CRMField: "Owner"}), both,
			[]string{`"ownerId"`, `"Owner"`}},
	}
	for _, c := range cases {
		problems := mapping.Validate(mapping.Contacts, c.maps, desk[mapping.Contacts], crm[mapping.Contacts], c.dirs)
		joined := ""
		for _, p := range problems {
			joined += p.Message + "\n"
		}
		for _, want := range c.contains {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: problems %q lack %q", c.name, joined, want)
			}
		}
	}

	// Without lastName, desk contacts cannot be created from the CRM.
	var noLast []mapping.Mapping
	for _, mp := range contacts() {
		if mp.DeskField != "lastName" {
			noLast = append(noLast, mp)
		}
	}
	problems := mapping.Validate(mapping.Contacts, noLast, desk[mapping.Contacts], crm[mapping.Contacts], both)
	var desks, crms bool
	for _, p := range problems {
		desks = desks || p.DeskField == "lastName"
		crms = crms || p.CRMField == "Last_Name"
	}
	if !desks || !crms {
		t.Fatalf("missing mandatory fields not reported on both sides: %v", problems)
	}
	// An integer may flow into text one way: fine for ONE_WAY (CRM to desk).
	oneWay := contacts(mapping.Mapping{DeskField: "twitter", CRMField: "Loyalty_Points__c"})
	if p := mapping.Validate(mapping.Contacts, oneWay, desk[mapping.Contacts], crm[mapping.Contacts], []mapping.Direction{mapping.CRMToDesk}); len(p) > 0 {
		t.Fatalf("integer into text, CRM to desk only: %v", p)
	}
}

func TestConvert(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	f := func(typ connector.FieldType) connector.Field { return connector.Field{Name: "F", Type: typ} }
	crm := func(field connector.Field) mapping.Target {
		return mapping.Target{Field: field, System: connector.CRM, Location: tokyo}
	}
	desk := func(field connector.Field) mapping.Target {
		return mapping.Target{Field: field, System: connector.Desk}
	}
	pick := connector.Field{Name: "Customer_Type", Type: connector.TypePicklist, Picklist: []string{"Enterprise", "SMB"}}
	short := connector.Field{Name: "Zip", Type: connector.TypeText, MaxLength: 5}

	ok := []struct {
		name string
		v    any
		from connector.Field
		to   mapping.Target
		vm   map[string]string
		want any
	}{
		{"integer from json", json.Number("42"), f(connector.TypeInteger), crm(f(connector.TypeInteger)), nil, int64(42)},
		{"integer from integral float", 7.0, f(connector.TypeInteger), desk(f(connector.TypeInteger)), nil, int64(7)},
		{"integer into text", json.Number("42"), f(connector.TypeInteger), desk(f(connector.TypeText)), nil, "42"},
		{"currency keeps digits", json.Number("1234.50"), f(connector.TypeCurrency), crm(f(connector.TypeCurrency)), nil, json.Number("1234.50")},
		{"boolean", true, f(connector.TypeBoolean), desk(f(connector.TypeBoolean)), nil, true},
		{"date", "2026-09-30", f(connector.TypeDate), desk(f(connector.TypeDate)), nil, "2026-09-30"},
		{"CRM datetime into desk", "2026-05-10T01:10:47-07:00", f(connector.TypeDateTime), desk(f(connector.TypeDateTime)), nil, "2026-05-10T08:10:47.000Z"},
		{"desk datetime into CRM, org zone", "2026-05-10T08:10:47.000Z", f(connector.TypeDateTime), crm(f(connector.TypeDateTime)), nil, "2026-05-10T17:10:47+09:00"},
		{"picklist through the value map", "Large", f(connector.TypeText), crm(pick), map[string]string{"Large": "Enterprise"}, "Enterprise"},
		{"picklist into text", "SMB", pick, desk(f(connector.TypeText)), nil, "SMB"},
		{"lookup as text is its name", map[string]any{"name": "Zylker", "id": "1"}, f(connector.TypeLookup), desk(f(connector.TypeText)), nil, "Zylker"},
		{"japanese text", "佐藤", f(connector.TypeText), crm(short), nil, "佐藤"},
		{"null stays null", nil, f(connector.TypeText), crm(f(connector.TypeInteger)), nil, nil},
	}
	for _, c := range ok {
		got, err := mapping.Convert(c.v, c.from, c.to, c.vm)
		if err != nil || !equal(got, c.want) {
			t.Errorf("%s: Convert(%v) = %#v, %v; want %#v", c.name, c.v, got, err, c.want)
		}
	}
	bad := []struct {
		name   string
		v      any
		to     mapping.Target
		reason connector.Reason
	}{
		{"text into an integer", "forty-two", crm(f(connector.TypeInteger)), connector.ReasonTypeMismatch},
		{"fraction into an integer", json.Number("4.5"), crm(f(connector.TypeInteger)), connector.ReasonTypeMismatch},
		{"not a date", "someday", crm(f(connector.TypeDate)), connector.ReasonTypeMismatch},
		{"too long", "1234567", crm(short), connector.ReasonTooLong},
		{"not in the picklist", "Gigantic", crm(pick), connector.ReasonParamInvalid},
		{"not an email", "carol at zylker", desk(f(connector.TypeEmail)), connector.ReasonParamInvalid},
		{"lookups are the engine's", "123", desk(f(connector.TypeLookup)), connector.ReasonParamInvalid},
	}
	for _, c := range bad {
		_, err := mapping.Convert(c.v, f(connector.TypeText), c.to, nil)
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Class != connector.Permanent || ce.Reason != c.reason || ce.Field != c.to.Field.Name {
			t.Errorf("%s: got %v, want a permanent %s error on %s", c.name, err, c.reason, c.to.Field.Name)
		}
	}
	if inv := mapping.Invert(map[string]string{"Large": "Enterprise"}); inv["Enterprise"] != "Large" {
		t.Fatalf("Invert = %v", inv)
	}
	if id, ok := mapping.LookupID(map[string]any{"name": "Zylker", "id": "77"}); !ok || id != "77" {
		t.Fatalf("LookupID(CRM) = %q %v", id, ok)
	}
	if v := mapping.LookupValue(connector.CRM, "77"); !equal(v, map[string]any{"id": "77"}) {
		t.Fatalf("LookupValue(CRM) = %#v", v)
	}
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
