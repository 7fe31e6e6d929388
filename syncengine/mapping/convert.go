package mapping

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Formats of dates and times on the wire: the CRM renders instants in the
// org's offset at second precision, the desk in UTC with milliseconds
// (reference/zoho-api.md §6).
const (
	crmDateTime  = "2006-01-02T15:04:05-07:00"
	deskDateTime = "2006-01-02T15:04:05.000Z"
	dateLayout   = "2006-01-02"
)

// Target describes where a converted value goes.
type Target struct {
	Field    connector.Field
	System   connector.System
	Location *time.Location // the CRM org's time zone, for CRM datetimes and for dates cut from instants
}

// Convert turns v, a value of field from as its system sends it, into the
// value to write into the target field, or explains with a permanent
// *connector.Error (reason type_mismatch, too_long or param_invalid) why it
// cannot. valueMap translates picklist values in this direction. Lookups
// are not converted here: the engine resolves them through links (see
// LookupID and LookupValue).
func Convert(v any, from connector.Field, to Target, valueMap map[string]string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch to.Field.Type {
	case connector.TypeLookup, connector.TypeOwner:
		return nil, invalid(to, connector.ReasonParamInvalid, "lookups are resolved by the engine, not converted")
	case connector.TypeInteger:
		n, ok := toInt(v)
		if !ok {
			return nil, invalid(to, connector.ReasonTypeMismatch, fmt.Sprintf("%v is not a whole number", v))
		}
		return n, nil
	case connector.TypeDecimal, connector.TypeCurrency:
		f, ok := toNumber(v)
		if !ok {
			return nil, invalid(to, connector.ReasonTypeMismatch, fmt.Sprintf("%v is not a number", v))
		}
		return f, nil
	case connector.TypeBoolean:
		b, ok := toBool(v)
		if !ok {
			return nil, invalid(to, connector.ReasonTypeMismatch, fmt.Sprintf("%v is not true or false", v))
		}
		return b, nil
	case connector.TypeDate:
		t, ok := toTime(v, to.Location)
		if !ok {
			return nil, invalid(to, connector.ReasonTypeMismatch, fmt.Sprintf("%v is not a date", v))
		}
		return t.In(location(to.Location)).Format(dateLayout), nil
	case connector.TypeDateTime:
		t, ok := toTime(v, to.Location)
		if !ok {
			return nil, invalid(to, connector.ReasonTypeMismatch, fmt.Sprintf("%v is not a date and time", v))
		}
		if to.System == connector.Desk {
			return t.UTC().Format(deskDateTime), nil
		}
		return t.In(location(to.Location)).Format(crmDateTime), nil
	case connector.TypePicklist:
		s := mapValue(toText(v), valueMap)
		if len(to.Field.Picklist) > 0 && !slices.Contains(to.Field.Picklist, s) {
			return nil, invalid(to, connector.ReasonParamInvalid, fmt.Sprintf("%q is not one of the picklist values", s))
		}
		return s, nil
	case connector.TypeMultiPicklist:
		var out []string
		for _, s := range toList(v) {
			s = mapValue(s, valueMap)
			if len(to.Field.Picklist) > 0 && !slices.Contains(to.Field.Picklist, s) {
				return nil, invalid(to, connector.ReasonParamInvalid, fmt.Sprintf("%q is not one of the picklist values", s))
			}
			out = append(out, s)
		}
		return out, nil
	}
	// Text-like targets: text, textarea, email, phone, url.
	s := toText(v)
	if from.Type == connector.TypePicklist || from.Type == connector.TypeMultiPicklist {
		s = mapValue(s, valueMap)
	}
	if to.Field.MaxLength > 0 && utf8.RuneCountInString(s) > to.Field.MaxLength {
		return nil, invalid(to, connector.ReasonTooLong, fmt.Sprintf("%d characters, the field holds %d", utf8.RuneCountInString(s), to.Field.MaxLength))
	}
	if to.Field.Type == connector.TypeEmail && s != "" && !looksLikeEmail(s) {
		return nil, invalid(to, connector.ReasonParamInvalid, fmt.Sprintf("%q is not an email address", s))
	}
	return s, nil
}

// Invert returns the value map for the other direction.
func Invert(valueMap map[string]string) map[string]string {
	out := make(map[string]string, len(valueMap))
	for k, v := range valueMap {
		out[v] = k
	}
	return out
}

// LookupID returns the record id a lookup value points at: the CRM sends
// {"name": ..., "id": ...}, the desk a bare id.
func LookupID(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case map[string]any:
		id, ok := x["id"].(string)
		return id, ok && id != ""
	}
	return "", false
}

// LookupValue is how system expects a lookup to id to be written.
func LookupValue(system connector.System, id string) any {
	if system == connector.Desk {
		return id
	}
	return map[string]any{"id": id}
}

func invalid(to Target, reason connector.Reason, msg string) error {
	return &connector.Error{Class: connector.Permanent, Reason: reason, Field: to.Field.Name, Code: "MAPPING", Message: msg}
}

func location(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

func mapValue(s string, valueMap map[string]string) string {
	if m, ok := valueMap[s]; ok {
		return m
	}
	return s
}

func toText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case map[string]any: // a lookup rendered as text: its name
		if name, ok := x["name"].(string); ok {
			return name
		}
	case []any:
		return strings.Join(toList(x), "; ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func toList(v any) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, toText(e))
		}
		return out
	case []string:
		return x
	case string:
		var out []string
		for _, p := range strings.Split(x, ";") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	return []string{toText(v)}
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		f, err := x.Float64()
		return int64(f), err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53
	case float64:
		return int64(x), x == math.Trunc(x) && math.Abs(x) < 1<<53
	case int:
		return int64(x), true
	case int64:
		return x, true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// toNumber keeps decimals as json.Number, so no float rounding creeps into
// currency values on the way through.
func toNumber(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		_, err := x.Float64()
		return x, err == nil
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), true
	case int:
		return json.Number(strconv.Itoa(x)), true
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), true
	case string:
		s := strings.TrimSpace(x)
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(s), true
		}
	}
	return "", false
}

func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}

// toTime reads a date ("2026-09-30", taken as midnight in loc) or an instant
// in any RFC 3339 form both vendors use.
func toTime(v any, loc *time.Location) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	if t, err := time.ParseInLocation(dateLayout, s, location(loc)); err == nil {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func looksLikeEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n")
}
