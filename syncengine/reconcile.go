package syncengine

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Side is one of the two systems a connection joins.
type Side int

// The sides.
const (
	DeskSide Side = iota + 1
	CRMSide
)

// Other is the opposite side.
func (s Side) Other() Side {
	if s == DeskSide {
		return CRMSide
	}
	return DeskSide
}

func (s Side) String() string {
	if s == DeskSide {
		return "DESK"
	}
	return "CRM"
}

// Snapshot is one record as a side holds it now.
type Snapshot struct {
	ID         string
	Fields     map[string]any
	ModifiedAt time.Time
}

// Conflict is a field both sides changed since the last sync, and which
// side's value was kept (docs/SYNC.md, "Conflicts").
type Conflict struct {
	DeskField, CRMField           string
	DeskValue, CRMValue           any
	DeskModifiedAt, CRMModifiedAt time.Time
	Winner                        Side
}

// ReconcileInput is everything Reconcile needs about one changed record.
type ReconcileInput struct {
	Module     mapping.Module
	Mappings   []mapping.Mapping
	DeskFields map[string]connector.Field
	CRMFields  map[string]connector.Field
	// Source is the side the change happened on; Src its record now.
	Source Side
	Src    Snapshot
	// Tgt is the linked or matched record on the other side; nil when the
	// record is to be created there.
	Tgt *Snapshot
	// SrcLast and TgtLast are the values last synced, from the link, in
	// each side's own field names; both nil when there is no link yet.
	SrcLast, TgtLast map[string]any
	// TargetSystem and CRMLocation decide wire formats of converted values.
	TargetSystem connector.System
	CRMLocation  *time.Location
	// Resolve maps a lookup's record id from one side to the other through
	// links; ok is false when the referenced record is not linked (yet).
	Resolve func(m mapping.Module, from Side, id string) (string, bool)
	// TieWinner wins a conflict when both records have the same modified time.
	TieWinner Side
}

// Plan is what to do about one changed record.
type Plan struct {
	// Write holds the target fields to set; empty means nothing to write.
	Write map[string]any
	// Conflicts lists the fields both sides changed, with the decision.
	Conflicts []Conflict
	// SourceLast and TargetLast are the link's values once Write succeeds.
	SourceLast, TargetLast map[string]any
	// Echo is true when no mapped field differs from what was last synced:
	// the change is our own write coming back, or touched unmapped fields.
	Echo bool
	// Deferred lists source fields not synced now (a lookup to a record
	// that is not linked yet); they count as changed again next time.
	Deferred []string
	// RequeueTarget asks for the target record to be applied again: it won
	// a conflict, and its value has to travel back to the source.
	RequeueTarget bool
}

// Reconcile decides, field by field, what a change on one side means for
// the other (docs/SYNC.md):
//   - a field unchanged since the last sync is left alone (so our own
//     writes, coming back as notifications, are echoes and write nothing);
//   - a field changed only on the source is written to the target;
//   - a field changed on both sides to different values is a conflict: the
//     side whose record was modified later wins, and the decision is
//     returned for the record; a loser's value is not written;
//   - a value the target already holds is never written again, which keeps
//     two-way sync from ping-ponging when a vendor normalises values.
//
// A record seen for the first time on both sides (matched, not linked)
// counts as changed on both, so the newer record wins each differing field.
// A value that cannot be converted fails the whole record with a permanent
// *connector.Error naming the field.
func Reconcile(in ReconcileInput) (Plan, error) {
	p := Plan{Write: map[string]any{}, SourceLast: clone(in.SrcLast), TargetLast: clone(in.TgtLast)}
	firstLink := in.SrcLast == nil && in.TgtLast == nil
	changed := false
	for _, mp := range in.Mappings {
		sf, tf := mp.CRMField, mp.DeskField
		srcMeta, tgtMeta := in.CRMFields[sf], in.DeskFields[tf]
		valueMap := mapping.Invert(mp.ValueMap)
		if in.Source == DeskSide {
			sf, tf = mp.DeskField, mp.CRMField
			srcMeta, tgtMeta = in.DeskFields[sf], in.CRMFields[tf]
			valueMap = mp.ValueMap
		}
		sv := in.Src.Fields[sf]
		if !firstLink && Same(sv, in.SrcLast[sf]) {
			continue
		}
		changed = true
		tv, deferred, err := convertValue(in, sv, srcMeta, tgtMeta, valueMap)
		if err != nil {
			return Plan{}, err
		}
		if deferred {
			p.Deferred = append(p.Deferred, sf)
			continue
		}
		if in.Tgt != nil {
			cur := in.Tgt.Fields[tf]
			if Same(cur, tv) {
				p.SourceLast[sf], p.TargetLast[tf] = sv, cur
				continue
			}
			tgtChanged := firstLink || !Same(cur, in.TgtLast[tf])
			if tgtChanged {
				c := conflict(in, mp, sv, cur)
				p.Conflicts = append(p.Conflicts, c)
				if c.Winner != in.Source {
					// The target's value has to flow back to the source. The
					// link records the losing value as last synced on both
					// sides, so the target's value counts as its change
					// whenever the target is applied next, even if it was set
					// back meanwhile to what the link held for it; and the
					// target is queued, so that happens now, not at its next
					// edit. Recording only the source side left the link with
					// two "last synced" values, and a target set back to its
					// own stayed different for good (server/storm_test.go).
					p.SourceLast[sf], p.TargetLast[tf] = sv, tv
					p.RequeueTarget = true
					continue
				}
			}
		}
		p.Write[tf] = tv
		p.SourceLast[sf], p.TargetLast[tf] = sv, tv
	}
	p.Echo = !changed
	return p, nil
}

func convertValue(in ReconcileInput, v any, from, to connector.Field, valueMap map[string]string) (out any, deferred bool, err error) {
	if to.Type == connector.TypeLookup && from.Type == connector.TypeLookup {
		if v == nil {
			return nil, false, nil
		}
		id, ok := mapping.LookupID(v)
		if !ok {
			return nil, false, nil
		}
		other, ok := in.Resolve(lookupModule(to), in.Source, id)
		if !ok {
			return nil, true, nil
		}
		return mapping.LookupValue(in.TargetSystem, other), false, nil
	}
	out, err = mapping.Convert(v, from, mapping.Target{Field: to, System: in.TargetSystem, Location: in.CRMLocation}, valueMap)
	return out, false, err
}

// lookupModule names a lookup's target module in the desk's terms.
func lookupModule(f connector.Field) mapping.Module {
	for _, m := range mapping.Modules {
		if string(f.LookupModule) == string(m) || f.LookupModule == m.CRMModule() {
			return m
		}
	}
	return mapping.Module(f.LookupModule)
}

func conflict(in ReconcileInput, mp mapping.Mapping, sv, cur any) Conflict {
	c := Conflict{DeskField: mp.DeskField, CRMField: mp.CRMField}
	desk, crm := in.Src, *in.Tgt
	c.DeskValue, c.CRMValue = sv, cur
	if in.Source == CRMSide {
		desk, crm = *in.Tgt, in.Src
		c.DeskValue, c.CRMValue = cur, sv
	}
	c.DeskModifiedAt, c.CRMModifiedAt = desk.ModifiedAt, crm.ModifiedAt
	switch {
	case desk.ModifiedAt.After(crm.ModifiedAt):
		c.Winner = DeskSide
	case crm.ModifiedAt.After(desk.ModifiedAt):
		c.Winner = CRMSide
	default:
		c.Winner = in.TieWinner
	}
	return c
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

// Same compares two field values across their wire forms: numbers by value
// (42, 42.0 and "42" as json.Number are equal), instants by instant (the
// CRM's offset form and the desk's UTC form of one moment are equal),
// lookups by the id they point at, empty strings like null.
func Same(a, b any) bool {
	ca, cb := canonical(a), canonical(b)
	// One vendor sends a currency as "347.73", the other as 347.73: a
	// number equals a string that reads as the same number. Two strings are
	// still compared as text (a phone "0312" is not "312").
	if fa, ok := ca.(float64); ok {
		if sb, ok := cb.(string); ok {
			return numericString(sb, fa)
		}
	}
	if fb, ok := cb.(float64); ok {
		if sa, ok := ca.(string); ok {
			return numericString(sa, fb)
		}
	}
	return reflect.DeepEqual(ca, cb)
}

func numericString(s string, f float64) bool {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil && n == f
}

func canonical(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return nil
		}
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case bool:
		return x
	case map[string]any:
		if id, ok := x["id"].(string); ok {
			return "ref:" + id
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonical(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonical(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	}
	return fmt.Sprint(v)
}
