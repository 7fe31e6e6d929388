package crm

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// parentRef is the record a request is nested under: the parent of a note
// created with POST /{module}/{id}/Notes, or of a related list.
type parentRef struct {
	module *module
	id     string
	via    string // the child's field pointing at the parent (related lists)
}

// parse validates a record body against the module's fields. Unknown api
// names are rejected; read-only fields and $-keys are ignored, as Zoho does.
func (o *Org) parse(m *module, in map[string]any, idx int, parent *parentRef) (*change, []*Error) {
	ch := &change{vals: map[int]string{}}
	var errs []*Error
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in[k]
		if k == "id" || k == "se_module" || strings.HasPrefix(k, "$") {
			continue
		}
		f := m.field(k)
		if f == nil {
			errs = append(errs, errf(400, "INVALID_DATA", "the field api name given seems to be invalid",
				map[string]any{"api_name": k, "json_path": jsonPath(idx, k)}))
			continue
		}
		if f.readOnly {
			continue
		}
		if f.kind == kindOwner {
			u, e := o.parseOwner(f, v, idx)
			if e != nil {
				errs = append(errs, e)
			} else if u != nil {
				ch.owner = u
				ch.set = append(ch.set, f.api)
			}
			continue
		}
		val, se, e := o.parseValue(f, v, in, idx)
		if e != nil {
			errs = append(errs, e)
			continue
		}
		ch.vals[f.slot] = val
		if f.seSlot >= 0 {
			ch.vals[f.seSlot] = se
		}
		ch.set = append(ch.set, f.api)
	}
	if parent != nil {
		if f := m.field("Parent_Id"); f != nil {
			ch.vals[f.slot] = parent.id
			ch.vals[f.seSlot] = parent.module.api
		}
	}
	return ch, errs
}

func invalidType(f *field, idx int) *Error {
	return errf(400, "INVALID_DATA", "invalid data", map[string]any{
		"expected_data_type": f.typ, "api_name": f.api, "json_path": jsonPath(idx, f.api)})
}

func tooLong(f *field, idx int) *Error {
	return errf(400, "INVALID_DATA", "invalid data", map[string]any{
		"maximum_length": f.length, "api_name": f.api, "json_path": jsonPath(idx, f.api)})
}

func (o *Org) parseOwner(f *field, v any, idx int) (*user, *Error) {
	id := refID(v)
	if id == "" {
		if v == nil {
			return nil, nil
		}
		return nil, invalidType(f, idx)
	}
	for _, u := range o.users {
		if u.id == id {
			return u, nil
		}
	}
	return nil, errf(400, "INVALID_DATA", "the id given seems to be invalid",
		map[string]any{"api_name": f.api, "json_path": jsonPath(idx, f.api), "id": id})
}

// refID reads a lookup value: {"id": "…"} or a bare id.
func refID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case map[string]any:
		switch id := x["id"].(type) {
		case string:
			return id
		case json.Number:
			return id.String()
		}
	}
	return ""
}

// parseValue converts one input value to its stored form. se is the target
// module of a multi-module lookup.
func (o *Org) parseValue(f *field, v any, in map[string]any, idx int) (val, se string, e *Error) {
	if v == nil {
		return "", "", nil
	}
	switch f.typ {
	case typeText, typeTextarea, typePhone, typeWebsite, typeEmail, typePicklist:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			if f.typ == typeEmail || f.typ == typePicklist {
				return "", "", invalidType(f, idx)
			}
			s = x.String() // Zoho coerces numbers into text fields
		case bool:
			if f.typ == typeEmail || f.typ == typePicklist {
				return "", "", invalidType(f, idx)
			}
			s = strconv.FormatBool(x)
		default:
			return "", "", invalidType(f, idx)
		}
		if utf8.RuneCountInString(s) > f.length {
			return "", "", tooLong(f, idx)
		}
		if s == "" {
			return "", "", nil
		}
		if f.typ == typeEmail && !validEmail(s) {
			return "", "", invalidType(f, idx)
		}
		if f.typ == typePicklist {
			for _, p := range f.picks {
				if strings.EqualFold(p, s) {
					return p, "", nil
				}
			}
			return "", "", errf(400, "INVALID_DATA", "invalid data", map[string]any{
				"expected_data_type": typePicklist, "api_name": f.api, "json_path": jsonPath(idx, f.api),
				"supported_values": f.picks})
		}
		return s, "", nil
	case typeInteger:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = strings.TrimSpace(x)
			if s == "" {
				return "", "", nil
			}
		default:
			return "", "", invalidType(f, idx)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", "", invalidType(f, idx)
		}
		if len(strings.TrimPrefix(strconv.FormatInt(n, 10), "-")) > f.length {
			return "", "", tooLong(f, idx)
		}
		return strconv.FormatInt(n, 10), "", nil
	case typeDouble, typeCurrency:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = strings.TrimSpace(x)
			if s == "" {
				return "", "", nil
			}
		default:
			return "", "", invalidType(f, idx)
		}
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return "", "", invalidType(f, idx)
		}
		if math.Abs(n) >= math.Pow10(f.length) {
			return "", "", tooLong(f, idx)
		}
		if f.typ == typeCurrency {
			n = math.Round(n*100) / 100
		}
		return strconv.FormatFloat(n, 'f', -1, 64), "", nil
	case typeBoolean:
		b, ok := v.(bool)
		if !ok {
			return "", "", invalidType(f, idx)
		}
		return strconv.FormatBool(b), "", nil
	case typeDate:
		s, ok := v.(string)
		if !ok {
			return "", "", invalidType(f, idx)
		}
		if s == "" {
			return "", "", nil
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return "", "", invalidType(f, idx)
		}
		return s, "", nil
	case typeDatetime:
		s, ok := v.(string)
		if !ok {
			return "", "", invalidType(f, idx)
		}
		if s == "" {
			return "", "", nil
		}
		t, ok := parseTime(s)
		if !ok {
			return "", "", invalidType(f, idx)
		}
		return strconv.FormatInt(t.Unix(), 10), "", nil
	case typeLookup:
		id := refID(v)
		if id == "" {
			return "", "", invalidType(f, idx)
		}
		target := o.lookupRecord(id, f.lookup)
		if target == nil {
			return "", "", badRef(f, idx, id)
		}
		return target.id, "", nil
	case typeMultiLook:
		id := refID(v)
		if id == "" {
			return "", "", invalidType(f, idx)
		}
		want := ""
		if mm, ok := v.(map[string]any); ok {
			if mod, ok := mm["module"].(map[string]any); ok {
				want, _ = mod["api_name"].(string)
			}
		}
		if want == "" {
			want, _ = in["$se_module"].(string)
		}
		if want == "" {
			want, _ = in["se_module"].(string)
		}
		mods := f.lookups
		if want != "" {
			mods = nil
			for _, m := range f.lookups {
				if strings.EqualFold(m, want) {
					mods = []string{m}
				}
			}
		}
		target := o.lookupRecord(id, mods...)
		if target == nil {
			return "", "", badRef(f, idx, id)
		}
		return target.id, target.mod.api, nil
	}
	return "", "", invalidType(f, idx)
}

func badRef(f *field, idx int, id string) *Error {
	return errf(400, "INVALID_DATA", "the related id given seems to be invalid",
		map[string]any{"api_name": f.api, "json_path": jsonPath(idx, f.api), "id": id})
}

func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t\r\n") &&
		!strings.Contains(domain, "@") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// render turns a record into its API form: id plus the given fields (every
// field when fields is nil).
func (o *Org) render(r *record, fields []*field) map[string]any {
	if fields == nil {
		fields = r.mod.fields
	}
	out := make(map[string]any, len(fields)+1)
	out["id"] = r.id
	for _, f := range fields {
		out[f.api] = o.value(r, f)
		if f.seSlot >= 0 {
			out["$se_module"] = nilIfEmpty(r.vals[f.seSlot])
		}
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// value renders one field of a record.
func (o *Org) value(r *record, f *field) any {
	switch f.kind {
	case kindOwner:
		return o.users[r.owner].ref()
	case kindCreatedBy:
		return o.users[r.createdBy].ref()
	case kindModifiedBy:
		return o.users[r.modifiedBy].ref()
	case kindCreatedTime:
		return o.s.renderTime(r.created)
	case kindModifiedTime:
		return o.s.renderTime(r.modified)
	case kindFullName:
		return nilIfEmpty(fullName(r))
	}
	v := r.vals[f.slot]
	if v == "" {
		if f.typ == typeBoolean {
			return false
		}
		return nil
	}
	switch f.typ {
	case typeInteger, typeDouble, typeCurrency:
		return json.Number(v)
	case typeBoolean:
		return v == "true"
	case typeDatetime:
		n, _ := strconv.ParseInt(v, 10, 64)
		return o.s.renderTime(n)
	case typeLookup:
		target := o.lookupRecord(v, f.lookup)
		if target == nil {
			return nil
		}
		return map[string]any{"name": nilIfEmpty(o.displayName(target)), "id": v}
	case typeMultiLook:
		target := o.lookupRecord(v, r.vals[f.seSlot])
		if target == nil {
			return nil
		}
		ref := map[string]any{"name": nilIfEmpty(o.displayName(target)), "id": v}
		if f.api == "Parent_Id" {
			ref["module"] = map[string]any{"api_name": target.mod.api, "id": target.mod.id}
		}
		return ref
	}
	return v
}
