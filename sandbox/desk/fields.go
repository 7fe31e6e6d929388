package desk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Field types as GET /organizationFields names them.
const (
	ftText     = "Text"
	ftTextarea = "Textarea"
	ftEmail    = "Email"
	ftPhone    = "Phone"
	ftURL      = "URL"
	ftNumber   = "Number"
	ftDecimal  = "Decimal"
	ftCurrency = "Currency"
	ftBoolean  = "Boolean"
	ftDate     = "Date"
	ftDateTime = "DateTime"
	ftPicklist = "Picklist"
	ftLookUp   = "LookUp"
)

var fieldTypes = []string{ftText, ftTextarea, ftEmail, ftPhone, ftURL, ftNumber, ftDecimal, ftCurrency, ftBoolean, ftDate, ftDateTime, ftPicklist, ftLookUp}

// field is one entry of a module's layout. Writes are validated against
// it, so a connector mapping a text value into a Number field gets the
// same 422 it would get from Desk.
type field struct {
	id        int64
	apiName   string
	label     string
	typ       string
	mandatory bool
	custom    bool
	maxLength int
	allowed   []string
	lookup    string // module a LookUp points into
	multi     bool   // a list of lookups (products' departmentIds)
}

// The modules organizationFields knows.
const (
	modContacts = "contacts"
	modAccounts = "accounts"
	modProducts = "products"
	modTickets  = "tickets"
)

// Value sets of the standard ticket picklists.
var (
	priorities      = []string{"Low", "Medium", "High", "Urgent"}
	classifications = []string{"Problem", "Request", "Question", "Others"}
	channels        = []string{"Email", "Phone", "Web", "Chat", "Forums", "Twitter", "Facebook", "Feedback Widget", "Customer Portal"}
	customerTypes   = []string{"Enterprise", "Mid-Market", "SMB", "Trial"}
)

// standardFields lists each module's built-in fields in layout order.
func standardFields() map[string][]*field {
	text := func(name, label string, max int) *field {
		return &field{apiName: name, label: label, typ: ftText, maxLength: max}
	}
	typed := func(name, label, typ string, max int) *field {
		return &field{apiName: name, label: label, typ: typ, maxLength: max}
	}
	lookup := func(name, label, module string) *field {
		return &field{apiName: name, label: label, typ: ftLookUp, lookup: module}
	}
	address := func() []*field {
		return []*field{text("street", "Street", 250), text("city", "City", 50), text("state", "State", 50),
			text("zip", "Zip", 20), text("country", "Country", 50)}
	}
	contacts := []*field{
		text("firstName", "First Name", 80),
		{apiName: "lastName", label: "Last Name", typ: ftText, maxLength: 80, mandatory: true},
		typed("email", "Email", ftEmail, 100),
		typed("secondaryEmail", "Secondary Email", ftEmail, 100),
		typed("phone", "Phone", ftPhone, 50),
		typed("mobile", "Mobile", ftPhone, 50),
		text("title", "Title", 100),
		text("type", "Contact Type", 120),
		lookup("accountId", "Account Name", modAccounts),
		lookup("ownerId", "Contact Owner", "agents"),
		typed("description", "Description", ftTextarea, 32000),
		text("twitter", "Twitter", 100),
		text("facebook", "Facebook", 100),
	}
	contacts = append(contacts, address()...)
	accounts := []*field{
		{apiName: "accountName", label: "Account Name", typ: ftText, maxLength: 200, mandatory: true},
		typed("email", "Email", ftEmail, 100),
		typed("phone", "Phone", ftPhone, 50),
		typed("website", "Website", ftURL, 200),
		text("industry", "Industry", 120),
		typed("fax", "Fax", ftPhone, 50),
		typed("annualrevenue", "Annual Revenue", ftCurrency, 16),
		text("code", "Account Number", 40),
		lookup("ownerId", "Account Owner", "agents"),
		typed("description", "Description", ftTextarea, 32000),
	}
	accounts = append(accounts, address()...)
	products := []*field{
		{apiName: "productName", label: "Product Name", typ: ftText, maxLength: 200, mandatory: true},
		text("productCode", "Product Code", 100),
		typed("unitPrice", "Unit Price", ftCurrency, 16),
		text("productCategory", "Product Category", 120),
		{apiName: "departmentIds", label: "Departments", typ: ftLookUp, lookup: "departments", multi: true, mandatory: true},
		lookup("ownerId", "Product Owner", "agents"),
		typed("description", "Description", ftTextarea, 32000),
	}
	tickets := []*field{
		{apiName: "subject", label: "Subject", typ: ftText, maxLength: 255, mandatory: true},
		{apiName: "departmentId", label: "Department", typ: ftLookUp, lookup: "departments", mandatory: true},
		lookup("contactId", "Contact Name", modContacts),
		typed("email", "Email", ftEmail, 100),
		typed("phone", "Phone", ftPhone, 50),
		typed("description", "Description", ftTextarea, 65535),
		{apiName: "status", label: "Status", typ: ftPicklist, maxLength: 120},
		{apiName: "priority", label: "Priority", typ: ftPicklist, maxLength: 120, allowed: priorities},
		{apiName: "classification", label: "Classification", typ: ftPicklist, maxLength: 120, allowed: classifications},
		{apiName: "channel", label: "Channel", typ: ftPicklist, maxLength: 120, allowed: channels},
		text("category", "Category", 120),
		text("subCategory", "Sub Category", 120),
		typed("dueDate", "Due Date", ftDateTime, 0),
		typed("responseDueDate", "Response Due Date", ftDateTime, 0),
		lookup("assigneeId", "Ticket Owner", "agents"),
		lookup("teamId", "Team", "teams"),
		lookup("productId", "Product Name", modProducts),
		lookup("accountId", "Account Name", modAccounts),
		text("language", "Language", 50),
		typed("resolution", "Resolution", ftTextarea, 32000),
	}
	return map[string][]*field{modContacts: contacts, modAccounts: accounts, modProducts: products, modTickets: tickets}
}

// seedCustomFields are the custom fields every fake org starts with.
// cf_customer_type carries the CRM customer type the classification view
// (SPEC D3) sorts by; cf_chat_id holds the SalesIQ conversation a chat
// ticket came from.
func seedCustomFields() map[string][]*field {
	cf := func(name, label, typ string, max int, allowed ...string) *field {
		return &field{apiName: name, label: label, typ: typ, custom: true, maxLength: max, allowed: allowed}
	}
	return map[string][]*field{
		modContacts: {
			cf("cf_customer_type", "Customer Type", ftPicklist, 120, customerTypes...),
			cf("cf_loyalty_points", "Loyalty Points", ftNumber, 9),
			cf("cf_last_contacted_on", "Last Contacted On", ftDate, 0),
			cf("cf_newsletter", "Newsletter", ftBoolean, 0),
		},
		modAccounts: {
			cf("cf_tier", "Tier", ftPicklist, 120, "Gold", "Silver", "Bronze"),
			cf("cf_employee_count", "Employee Count", ftNumber, 9),
		},
		modProducts: {
			cf("cf_warranty_months", "Warranty Months", ftNumber, 4),
		},
		modTickets: {
			cf("cf_customer_type", "Customer Type", ftPicklist, 120, customerTypes...),
			cf("cf_model_name", "Model Name", ftText, 100),
			cf("cf_severity_percentage", "Severity Percentage", ftDecimal, 6),
			cf("cf_chat_id", "SalesIQ Chat ID", ftText, 100),
		},
	}
}

// readOnlyKeys are keys of Desk's own responses. A client that echoes a
// record back in a PATCH gets them ignored, as Desk does, instead of an
// "extra parameter" error.
var readOnlyKeys = map[string]bool{
	"id": true, "createdTime": true, "modifiedTime": true, "webUrl": true, "isTrashed": true, "isDeleted": true,
	"isSpam": true, "isAnonymous": true, "photoURL": true, "customerHappiness": true, "zohoCRMContact": true,
	"zohoCRMAccount": true, "owner": true, "account": true, "createdBy": true, "modifiedBy": true,
	"ticketNumber": true, "statusType": true, "threadCount": true, "commentCount": true, "taskCount": true,
	"attachmentCount": true, "approvalCount": true, "timeEntryCount": true, "isOverDue": true, "isEscalated": true,
	"source": true, "sharedDepartments": true, "closedTime": true, "onholdTime": true, "customerResponseTime": true,
	"channelCode": true, "isArchived": true, "layoutId": true, "isFollowing": true, "isEndUser": true,
	"contact": true, "assignee": true, "department": true, "product": true, "team": true, "sharedCount": true,
	"isRead": true,
}

func (o *org) fieldByName(module, name string, custom bool) *field {
	for _, f := range o.fields[module] {
		if f.apiName == name && f.custom == custom {
			return f
		}
	}
	return nil
}

// allowedValues gives a picklist's values; ticket statuses are the org's
// status list, custom statuses included.
func (o *org) allowedValues(module string, f *field) []string {
	if module == modTickets && f.apiName == "status" {
		out := make([]string, 0, len(o.statuses))
		for _, s := range o.statuses {
			out = append(out, s.name)
		}
		return out
	}
	return f.allowed
}

func (o *org) fieldJSON(module string, f *field) map[string]any {
	out := map[string]any{
		"id": idStr(f.id), "apiName": f.apiName, "name": f.apiName, "displayLabel": f.label, "i18NLabel": f.label,
		"type": f.typ, "isCustomField": f.custom, "isMandatory": f.mandatory, "isEncryptedField": false,
		"maxLength": f.maxLength,
	}
	if f.typ == ftPicklist {
		out["allowedValues"] = append([]string{}, o.allowedValues(module, f)...)
	}
	if f.typ == ftLookUp {
		out["lookupModule"] = f.lookup
		out["isMultiple"] = f.multi
	}
	if module == modTickets && f.apiName == "status" {
		types := map[string]string{}
		for _, s := range o.statuses {
			types[s.name] = s.typ
		}
		out["statusTypes"] = types
	}
	return out
}

// writeSet is a validated write: standard values by apiName, custom values
// by cf key, and the module-specific keys the caller asked to see raw.
type writeSet struct {
	std map[string]any
	cf  map[string]any
	raw map[string]json.RawMessage
}

func (ws writeSet) has(name string) bool { _, ok := ws.std[name]; return ok }

func errEmptyPayload() *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "EMPTY_PAYLOAD", Message: "The request payload is empty."}
}

func errMalformed() *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: "The request body is not a valid JSON object."}
}

// decodeObject reads a JSON object body keeping each value raw, so the
// validator can tell a number from a string.
func decodeObject(body []byte) (map[string]json.RawMessage, *APIError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errEmptyPayload()
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errMalformed()
	}
	return m, nil
}

// parseWrite validates a create or update body against the module's
// fields. extras are keys the module handles itself (a ticket's "contact"
// object); they come back raw.
func (o *org) parseWrite(module string, body []byte, create bool, extras ...string) (writeSet, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return writeSet{}, e
	}
	return o.validateWrite(module, m, create, extras...)
}

func (o *org) validateWrite(module string, m map[string]json.RawMessage, create bool, extras ...string) (writeSet, *APIError) {
	ws := writeSet{std: map[string]any{}, cf: map[string]any{}, raw: map[string]json.RawMessage{}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []FieldError
	for _, k := range keys {
		raw := m[k]
		switch {
		case contains(extras, k):
			ws.raw[k] = raw
		case k == "cf":
			var cfm map[string]json.RawMessage
			if string(raw) == "null" {
				continue
			}
			if err := json.Unmarshal(raw, &cfm); err != nil {
				errs = append(errs, invalid("cf"))
				continue
			}
			cfKeys := make([]string, 0, len(cfm))
			for ck := range cfm {
				cfKeys = append(cfKeys, ck)
			}
			sort.Strings(cfKeys)
			for _, ck := range cfKeys {
				f := o.fieldByName(module, ck, true)
				if f == nil {
					errs = append(errs, invalid("cf/"+ck))
					continue
				}
				v, ok := o.checkValue(module, f, cfm[ck])
				if !ok || (!create && f.mandatory && isBlank(v)) {
					errs = append(errs, invalid("cf/"+ck))
					continue
				}
				ws.cf[ck] = v
			}
		case readOnlyKeys[k]:
			continue
		default:
			f := o.fieldByName(module, k, false)
			if f == nil {
				return writeSet{}, errUnprocessable(fmt.Sprintf("An extra parameter '%s' is found", k))
			}
			v, ok := o.checkValue(module, f, raw)
			if !ok || (!create && f.mandatory && isBlank(v)) {
				errs = append(errs, invalid(k))
				continue
			}
			ws.std[k] = v
		}
	}
	if create {
		for _, f := range o.fields[module] {
			if !f.mandatory {
				continue
			}
			if f.custom {
				if isBlank(ws.cf[f.apiName]) {
					errs = append(errs, missing("cf/"+f.apiName))
				}
				continue
			}
			if v, ok := ws.std[f.apiName]; (!ok || isBlank(v)) && !hasError(errs, "/"+f.apiName) {
				errs = append(errs, missing(f.apiName))
			}
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return writeSet{}, errInvalidData(errs...)
	}
	return ws, nil
}

func hasError(errs []FieldError, name string) bool {
	for _, e := range errs {
		if e.FieldName == name {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isBlank(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []int64:
		return len(x) == 0
	}
	return false
}

var (
	emailRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_+\-.'&]*@([A-Za-z0-9]+([\-_]*[A-Za-z0-9])*\.)+[A-Za-z]{2,22}$`)
	phoneRe = regexp.MustCompile(`^[0-9+\-(). /#*xX]{1,50}$`)
	urlRe   = regexp.MustCompile(`^(https?://)?[^\s/]+\.[^\s]+$`)
)

// checkValue converts one JSON value to its stored form, or reports that
// it does not fit the field.
func (o *org) checkValue(module string, f *field, raw json.RawMessage) (any, bool) {
	if string(raw) == "null" {
		return nil, true
	}
	switch f.typ {
	case ftText, ftTextarea, ftEmail, ftPhone, ftURL, ftPicklist:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false
		}
		if f.maxLength > 0 && utf8.RuneCountInString(s) > f.maxLength {
			return nil, false
		}
		if s == "" {
			return "", true
		}
		switch f.typ {
		case ftEmail:
			return s, emailRe.MatchString(s)
		case ftPhone:
			return s, phoneRe.MatchString(s)
		case ftURL:
			return s, urlRe.MatchString(s)
		case ftPicklist:
			for _, a := range o.allowedValues(module, f) {
				if strings.EqualFold(a, s) {
					return a, true
				}
			}
			return nil, false
		}
		return s, true
	case ftNumber:
		return parseInteger(raw)
	case ftDecimal, ftCurrency:
		return parseDecimal(raw)
	case ftBoolean:
		var b bool
		if err := json.Unmarshal(raw, &b); err == nil {
			return b, true
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil && (s == "true" || s == "false") {
			return s == "true", true
		}
		return nil, false
	case ftDate:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false
		}
		if s == "" {
			return "", true
		}
		if _, err := time.Parse(dateLayout, s); err != nil {
			return nil, false
		}
		return s, true
	case ftDateTime:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false
		}
		if s == "" {
			return nil, true
		}
		t, ok := parseTime(s)
		return t, ok
	case ftLookUp:
		if f.multi {
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, false
			}
			ids := make([]int64, 0, len(list))
			for _, item := range list {
				id, ok := parseLookup(item)
				if !ok || !o.lookupExists(f.lookup, id) {
					return nil, false
				}
				ids = append(ids, id)
			}
			return ids, true
		}
		id, ok := parseLookup(raw)
		if !ok {
			if s := strings.TrimSpace(string(raw)); s == `""` {
				return nil, true
			}
			return nil, false
		}
		return id, o.lookupExists(f.lookup, id)
	}
	return nil, false
}

func parseLookup(raw json.RawMessage) (int64, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return parseID(s)
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return 0, false
	}
	return parseID(n.String())
}

func parseInteger(raw json.RawMessage) (any, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return nil, true
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1e15 {
		return nil, false
	}
	return int64(f), true
}

func parseDecimal(raw json.RawMessage) (any, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return nil, true
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, false
	}
	return f, true
}

// lookupExists checks a LookUp target: trashed records and disabled or
// deleted agents do not count.
func (o *org) lookupExists(module string, id int64) bool {
	switch module {
	case modContacts:
		c := o.contacts.get(id)
		return c != nil && !c.trashed
	case modAccounts:
		a := o.accounts.get(id)
		return a != nil && !a.trashed
	case modProducts:
		p := o.products.get(id)
		return p != nil && !p.trashed
	case "departments":
		d := o.departments.get(id)
		return d != nil && d.enabled
	case "agents":
		a := o.agents.get(id)
		return a != nil && !a.deleted && a.status == "ACTIVE"
	case "teams":
		return o.teams.get(id) != nil
	}
	return false
}

// renderValue writes a stored value the way Desk does: numbers of Number,
// Decimal and Currency fields as strings, lookups as id strings, empty
// text as null.
func renderValue(f *field, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return nil
		}
		return x
	case int64:
		switch f.typ {
		case ftLookUp:
			return idStr(x)
		case ftDateTime:
			return timeStr(x)
		}
		return strconv.FormatInt(x, 10)
	case float64:
		return decimalStr(x)
	case []int64:
		return idList(x)
	}
	return v
}

func decimalStr(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// renderCF writes every custom field of the module, null when unset, as
// Desk does.
func (o *org) renderCF(module string, cf map[string]any) map[string]any {
	out := map[string]any{}
	for _, f := range o.fields[module] {
		if f.custom {
			out[f.apiName] = renderValue(f, cf[f.apiName])
		}
	}
	return out
}

// applyCF merges validated custom values into a copy of cf; clearing a
// value removes it. Copying lets seeded records share one map per value.
func applyCF(cf map[string]any, values map[string]any) map[string]any {
	if len(values) == 0 {
		return cf
	}
	out := make(map[string]any, len(cf)+len(values))
	for k, v := range cf {
		out[k] = v
	}
	for k, v := range values {
		if isBlank(v) {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// FieldSpec describes a custom field to add with AddCustomField.
type FieldSpec struct {
	APIName       string // must start with "cf_"
	Label         string
	Type          string // Text, Textarea, Email, Phone, URL, Number, Decimal, Currency, Boolean, Date, DateTime, Picklist
	Mandatory     bool
	MaxLength     int
	AllowedValues []string // Picklist only
}

func (o *org) addCustomField(module string, spec FieldSpec) (*field, *APIError) {
	if _, ok := o.fields[module]; !ok {
		return nil, errInvalidData(invalid("module"))
	}
	if !strings.HasPrefix(spec.APIName, "cf_") || o.fieldByName(module, spec.APIName, true) != nil {
		return nil, errInvalidData(FieldError{FieldName: "/apiName", ErrorType: "duplicate", ErrorMessage: "The api name is taken or lacks the cf_ prefix."})
	}
	if !contains(fieldTypes, spec.Type) || spec.Type == ftLookUp {
		return nil, errInvalidData(invalid("type"))
	}
	if spec.Type == ftPicklist && len(spec.AllowedValues) == 0 {
		return nil, errInvalidData(missing("allowedValues"))
	}
	f := &field{id: o.newID(), apiName: spec.APIName, label: spec.Label, typ: spec.Type, custom: true,
		mandatory: spec.Mandatory, maxLength: spec.MaxLength, allowed: append([]string(nil), spec.AllowedValues...)}
	if f.label == "" {
		f.label = spec.APIName
	}
	o.fields[module] = append(o.fields[module], f)
	return f, nil
}
