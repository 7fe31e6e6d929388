// Package mapping pairs help-desk fields with CRM fields (SPEC B4): the
// standard pairs deskbridge pre-maps, the checks a mapping must pass when an
// admin saves it, and the conversion of values between the two systems'
// types at sync time. It works on the connectors' field metadata
// (connector.Field) and knows nothing of storage or HTTP.
package mapping

import (
	"fmt"
	"slices"
	"strings"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Module is a synced module group member, named the desk's way.
type Module string

// The synced modules.
const (
	Contacts Module = "contacts"
	Accounts Module = "accounts"
	Products Module = "products"
)

// Modules lists the synced modules.
var Modules = []Module{Contacts, Accounts, Products}

// CRMModule is the module's name in the CRM and in Bigin (Companies are
// "Accounts" in Bigin's API too).
func (m Module) CRMModule() connector.Module {
	switch m {
	case Contacts:
		return "Contacts"
	case Accounts:
		return "Accounts"
	case Products:
		return "Products"
	}
	return connector.Module(m)
}

// DeskModule is the module's name in the desk.
func (m Module) DeskModule() connector.Module { return connector.Module(m) }

// Direction is which way values flow through a mapping.
type Direction int

// Directions. TWO_WAY sync uses both; ONE_WAY only CRMToDesk.
const (
	CRMToDesk Direction = iota + 1
	DeskToCRM
)

func (d Direction) String() string {
	if d == DeskToCRM {
		return "desk to CRM"
	}
	return "CRM to desk"
}

// Mapping pairs one desk field with one CRM field.
type Mapping struct {
	DeskField string
	CRMField  string
	// ValueMap translates picklist values, desk value -> CRM value; the
	// reverse direction uses it inverted. Values not in it pass unchanged.
	ValueMap map[string]string
	Standard bool // pre-mapped by deskbridge
}

// standardPairs are the fields deskbridge maps by itself, as the vendor's
// own integration pre-maps the standard fields of each tab (seed 000).
var standardPairs = map[Module][][2]string{
	Contacts: {
		{"firstName", "First_Name"}, {"lastName", "Last_Name"}, {"email", "Email"},
		{"secondaryEmail", "Secondary_Email"}, {"phone", "Phone"}, {"mobile", "Mobile"},
		{"title", "Title"}, {"accountId", "Account_Name"}, {"description", "Description"},
		{"street", "Mailing_Street"}, {"city", "Mailing_City"}, {"state", "Mailing_State"},
		{"zip", "Mailing_Zip"}, {"country", "Mailing_Country"},
	},
	Accounts: {
		{"accountName", "Account_Name"}, {"website", "Website"}, {"phone", "Phone"},
		{"industry", "Industry"}, {"annualrevenue", "Annual_Revenue"}, {"description", "Description"},
		{"street", "Billing_Street"}, {"city", "Billing_City"}, {"state", "Billing_State"},
		{"zip", "Billing_Code"}, {"country", "Billing_Country"},
	},
	Products: {
		{"productName", "Product_Name"}, {"productCode", "Product_Code"}, {"unitPrice", "Unit_Price"},
		{"productCategory", "Product_Category"}, {"description", "Description"},
	},
}

// StandardPairs are a module's pre-mapped pairs (desk field, CRM field)
// before any metadata is consulted, for readers that show both sides of a
// record without calling the vendors.
func StandardPairs(m Module) [][2]string {
	return slices.Clone(standardPairs[m])
}

// Standard returns the standard mappings of a module that both systems'
// metadata actually have (an org may have removed or renamed a field).
func Standard(m Module, desk, crm []connector.Field) []Mapping {
	var out []Mapping
	for _, p := range standardPairs[m] {
		if field(desk, p[0]) != nil && field(crm, p[1]) != nil {
			out = append(out, Mapping{DeskField: p[0], CRMField: p[1], Standard: true})
		}
	}
	return out
}

// EngineFilled names target fields the engine sets itself rather than
// through a mapping: a desk product's department comes from the settings
// (SPEC B5). They count as mapped for the mandatory check.
var EngineFilled = map[Module][]string{
	Products: {"departmentIds"},
}

// Problem is one reason a mapping set is refused; it names both fields
// where there are two.
type Problem struct {
	DeskField string
	CRMField  string
	Message   string
}

func (p Problem) String() string { return p.Message }

// Validate checks a module's mappings for the given directions and returns
// every problem found (none means it may be saved):
//   - both fields exist, and no field is mapped twice on either side;
//   - for each direction, the source type can be written into the target
//     type (text into an integer field is refused), and the target is not
//     read-only;
//   - for each direction, every mandatory field of the target is mapped
//     (or filled by the engine).
func Validate(m Module, maps []Mapping, desk, crm []connector.Field, dirs []Direction) []Problem {
	var problems []Problem
	seenDesk, seenCRM := map[string]bool{}, map[string]bool{}
	for _, mp := range maps {
		df, cf := field(desk, mp.DeskField), field(crm, mp.CRMField)
		switch {
		case df == nil:
			problems = append(problems, Problem{mp.DeskField, mp.CRMField, fmt.Sprintf("desk %s has no field %q", m, mp.DeskField)})
			continue
		case cf == nil:
			problems = append(problems, Problem{mp.DeskField, mp.CRMField, fmt.Sprintf("CRM %s has no field %q", m.CRMModule(), mp.CRMField)})
			continue
		}
		if seenDesk[mp.DeskField] {
			problems = append(problems, Problem{mp.DeskField, mp.CRMField, fmt.Sprintf("desk field %q is mapped more than once", mp.DeskField)})
		}
		if seenCRM[mp.CRMField] {
			problems = append(problems, Problem{mp.DeskField, mp.CRMField, fmt.Sprintf("CRM field %q is mapped more than once", mp.CRMField)})
		}
		seenDesk[mp.DeskField], seenCRM[mp.CRMField] = true, true
		for _, d := range dirs {
			from, to, fromSide, toSide := *cf, *df, "CRM", "desk"
			if d == DeskToCRM {
				from, to, fromSide, toSide = *df, *cf, "desk", "CRM"
			}
			if to.ReadOnly {
				problems = append(problems, Problem{mp.DeskField, mp.CRMField,
					fmt.Sprintf("%s field %q is read-only, so %s field %q cannot be synced into it", toSide, to.Name, fromSide, from.Name)})
				continue
			}
			if !Compatible(from, to) {
				problems = append(problems, Problem{mp.DeskField, mp.CRMField,
					fmt.Sprintf("%s field %q (%s) cannot be written into %s field %q (%s)", fromSide, from.Name, from.Type, toSide, to.Name, to.Type)})
			}
		}
	}
	for _, d := range dirs {
		target, mapped, side := desk, seenDesk, "desk"
		if d == DeskToCRM {
			target, mapped, side = crm, seenCRM, "CRM"
		}
		for _, f := range target {
			if f.Mandatory && !f.ReadOnly && !mapped[f.Name] && !slices.Contains(EngineFilled[m], f.Name) {
				p := Problem{Message: fmt.Sprintf("mandatory %s field %q is not mapped (needed to sync %s)", side, f.Name, d)}
				if side == "desk" {
					p.DeskField = f.Name
				} else {
					p.CRMField = f.Name
				}
				problems = append(problems, p)
			}
		}
	}
	return problems
}

// Compatible reports whether values of from can be written into to.
// Narrowing that can lose or invent meaning is refused: text into a number,
// a boolean or a date; a decimal into an integer; a datetime into a date.
func Compatible(from, to connector.Field) bool {
	if to.Type == connector.TypeLookup || from.Type == connector.TypeLookup {
		return from.Type == to.Type && sameModule(from.LookupModule, to.LookupModule)
	}
	if from.Type == connector.TypeOwner || to.Type == connector.TypeOwner {
		return false // desk agents and CRM users are different people spaces
	}
	switch to.Type {
	case connector.TypeText, connector.TypeTextArea:
		return true // anything can be written as text
	case connector.TypeEmail, connector.TypePhone, connector.TypeURL:
		return from.Type == to.Type || isText(from.Type)
	case connector.TypeInteger:
		return from.Type == connector.TypeInteger
	case connector.TypeDecimal, connector.TypeCurrency:
		return from.Type == connector.TypeInteger || from.Type == connector.TypeDecimal || from.Type == connector.TypeCurrency
	case connector.TypeBoolean:
		return from.Type == connector.TypeBoolean
	case connector.TypeDate:
		return from.Type == connector.TypeDate
	case connector.TypeDateTime:
		return from.Type == connector.TypeDateTime || from.Type == connector.TypeDate
	case connector.TypePicklist, connector.TypeMultiPicklist:
		// Checked value by value at sync time, through the value map.
		return from.Type == connector.TypePicklist || from.Type == connector.TypeMultiPicklist || isText(from.Type)
	}
	return from.Type == to.Type
}

func isText(t connector.FieldType) bool {
	return t == connector.TypeText || t == connector.TypeTextArea
}

func sameModule(a, b connector.Module) bool { return strings.EqualFold(string(a), string(b)) }

func field(fs []connector.Field, name string) *connector.Field {
	for i := range fs {
		if fs[i].Name == name {
			return &fs[i]
		}
	}
	return nil
}
