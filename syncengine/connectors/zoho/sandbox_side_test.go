package zoho

import (
	"fmt"
	"strings"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/crm"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// crmSide reads the CRM sandbox's truth through its Go API.
type crmSide struct{ *crm.Server }

func (s crmSide) countWhere(module, field, value string) int {
	n := 0
	for _, id := range s.IDs(module) {
		if r, ok := s.Record(module, id); ok && r[field] == value {
			n++
		}
	}
	return n
}

func deskSrv(sb *sandbox.Sandbox) *desk.Server { return sb.Desk(sb.DCs()[0]) }

func deskCase() suiteCase {
	return suiteCase{
		sys: connector.Desk, vendor: "desk", module: "contacts",
		count:   func(sb *sandbox.Sandbox) int { return deskSrv(sb).Counts().Contacts },
		liveIDs: func(sb *sandbox.Sandbox) []string { return deskSrv(sb).IDs("contacts") },
		massTouch: func(sb *sandbox.Sandbox, ids []string) error {
			// The suite's sandbox runs on a stopped clock: every edit lands
			// at one modified time.
			for _, id := range ids {
				if _, err := deskSrv(sb).UpdateContact(id, desk.Fields{"title": "Bulk"}); err != nil {
					return err
				}
			}
			return nil
		},
		uiEdit: func(sb *sandbox.Sandbox, id string) error {
			_, err := deskSrv(sb).UpdateContact(id, desk.Fields{"title": "Edited in UI"})
			return err
		},
		tagged: func(sb *sandbox.Sandbox, tag string) int {
			n := 0
			for _, id := range deskSrv(sb).IDs("contacts") {
				if r, ok := deskSrv(sb).Contact(id); ok && r.Str("lastName") == tag {
					n++
				}
			}
			return n
		},
		newRecord: func(tag string, i int) map[string]any {
			return map[string]any{"lastName": tag, "firstName": fmt.Sprint("N", i), "email": fmt.Sprintf("%s.%d@conf.example", strings.ToLower(tag), i)}
		},
		updateField: "title", emailField: "email", nameField: "lastName", dupCheck: []string{"email"},
		bad: []badRecord{
			{map[string]any{"firstName": "NoLast"}, connector.ReasonMandatoryMissing, "lastName"},
			{map[string]any{"lastName": "T", "cf_loyalty_points": "many"}, connector.ReasonTypeMismatch, "cf_loyalty_points"},
			{map[string]any{"lastName": strings.Repeat("x", 200)}, connector.ReasonTooLong, "lastName"},
		},
		related: []string{"tickets", "activities", "timeEntry"},
		types: map[string]connector.FieldType{"email": connector.TypeEmail, "lastName": connector.TypeText,
			"cf_loyalty_points": connector.TypeInteger, "accountId": connector.TypeLookup, "cf_customer_type": connector.TypePicklist,
			"cf_newsletter": connector.TypeBoolean, "cf_last_contacted_on": connector.TypeDate},
		watchable: true,
	}
}
