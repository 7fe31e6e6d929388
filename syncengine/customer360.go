package syncengine

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// describeRecord lifts the fields customer-360 queries use out of a
// vendor record (the Zoho field names of reference/zoho-api.md). Modules it
// does not know give only what is common: nothing.
func describeRecord(system connector.System, module string, r connector.Record) store.MirrorRefs {
	f := r.Fields
	var d store.MirrorRefs
	if system == connector.Desk {
		switch module {
		case "tickets":
			d.Title = str(f["subject"])
			d.ContactID, d.AccountID = str(f["contactId"]), str(f["accountId"])
			d.Status, d.StatusType = str(f["status"]), str(f["statusType"])
			d.OwnerID, d.DepartmentID = str(f["assigneeId"]), str(f["departmentId"])
			d.At = instant(f["dueDate"])
			closed := strings.EqualFold(d.StatusType, "Closed")
			d.Closed = &closed
		case "contacts", "accounts":
			d.AccountID = str(f["accountId"])
			d.OwnerID = str(f["ownerId"])
		}
		return d
	}
	d.OwnerID, d.OwnerName = lookupID(f["Owner"]), lookupName(f["Owner"])
	switch module {
	case "deals":
		d.Title = str(f["Deal_Name"])
		d.ContactID, d.AccountID = lookupID(f["Contact_Name"]), lookupID(f["Account_Name"])
		d.Status = str(f["Stage"])
		d.Amount = number(f["Amount"])
		d.At = instant(f["Closing_Date"])
		closed := strings.HasPrefix(d.Status, "Closed")
		d.Closed = &closed
	case "notes":
		d.Title = firstNonEmptyStr(str(f["Note_Title"]), truncateRunes(str(f["Note_Content"]), 80))
		relateTo(&d, str(f["$se_module"]), lookupID(f["Parent_Id"]))
	case "calls", "events", "tasks":
		d.Title = firstNonEmptyStr(str(f["Subject"]), str(f["Event_Title"]))
		d.ContactID = lookupID(f["Who_Id"])
		relateTo(&d, str(f["$se_module"]), lookupID(f["What_Id"]))
		switch module {
		case "calls":
			d.At, d.Status = instant(f["Call_Start_Time"]), str(f["Call_Type"])
		case "events":
			d.At = instant(f["Start_DateTime"])
		case "tasks":
			d.At, d.Status = instant(f["Due_Date"]), str(f["Status"])
			closed := strings.EqualFold(d.Status, "Completed")
			d.Closed = &closed
		}
	case "leads":
		d.Title = firstNonEmptyStr(str(f["Full_Name"]), str(f["Last_Name"]))
		d.Status = str(f["Lead_Status"])
	case "contacts":
		d.AccountID = lookupID(f["Account_Name"])
	}
	return d
}

// relateTo files a multi-lookup's id (Parent_Id, What_Id) under the
// module its $se_module names.
func relateTo(d *store.MirrorRefs, module, id string) {
	if id == "" {
		return
	}
	switch module {
	case "Contacts":
		if d.ContactID == "" {
			d.ContactID = id
		}
	case "Accounts":
		d.AccountID = id
	case "Deals", "Pipelines":
		d.DealID = id
	case "Leads":
		d.LeadID = id
	}
}

// str is a field's text: strings as they are, numbers in their JSON form.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// lookupID is the id a lookup field points at ("" when none).
func lookupID(v any) string {
	id, _ := mapping.LookupID(v)
	return id
}

func lookupName(v any) string {
	if m, ok := v.(map[string]any); ok {
		return str(m["name"])
	}
	return ""
}

// number reads a numeric field; Zoho sends numbers, sometimes as strings.
func number(v any) *float64 {
	var n json.Number
	switch x := v.(type) {
	case json.Number:
		n = x
	case string:
		n = json.Number(x)
	case float64:
		return &x
	default:
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil
	}
	return &f
}

// instant reads a date ("2026-01-02", as midnight UTC) or a date-time.
func instant(v any) *time.Time {
	s := str(v)
	if s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t
		}
	}
	return nil
}

func firstNonEmptyStr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
