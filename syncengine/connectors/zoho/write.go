package zoho

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Writes and "nothing written twice".
//
// Updates (by id), deletes (to the trash) and upserts keyed on a duplicate
// check are idempotent: the HTTP core repeats them after any transient
// failure. A delete repeated after an attempt that may have gone through
// reports "not found" for a record it had itself deleted; that counts as
// success.
//
// Creates are not idempotent, and no Zoho API takes an idempotency key. A
// create is repeated freely when the vendor provably did not act on it (the
// request never left, or the answer was 429/503/401). When the outcome is
// unknown (a timeout or dropped connection after the request was sent, a
// 500), the connector reconciles before sending again: it reads the
// module's records modified since shortly before the first attempt, newest
// first, from the list endpoint (never search, which lags), and matches
// them against the values it sent. A match is reported as the created
// record; only unmatched records are sent again. If even that read fails,
// the record's Result carries a Permanent OUTCOME_UNKNOWN error: the engine
// must not retry it blindly (it goes to the failure history, where a human
// can look before pressing retry).
//
// The remaining risk is a vendor still processing the first attempt while
// the reconcile read runs; on CRM modules with a unique field (Contacts by
// Email, Accounts by name…) the resend then fails with DUPLICATE_DATA
// pointing at the record, which the engine links instead of duplicating.

// reconcileSkew widens the reconcile window for clock differences between
// us and the vendor.
const reconcileSkew = 2 * time.Minute

// errOutcomeUnknown is the per-record error when a create could not be
// confirmed either way.
func errOutcomeUnknown(action string, cause error) *connector.Error {
	return &connector.Error{Class: connector.Permanent, Reason: connector.ReasonOther, Code: "OUTCOME_UNKNOWN",
		Message: fmt.Sprintf("%s: the vendor may or may not have created the record, and looking for it failed (%v); check before retrying", action, cause)}
}

// matcher pairs records we sent with candidates read back.
type matcher struct {
	used map[string]bool
}

// match returns the id of an unused candidate holding every value of sent
// (keys in skip are ignored), or "".
func (mt *matcher) match(sent map[string]any, cands []connector.Record, skip func(string) bool) string {
	if mt.used == nil {
		mt.used = map[string]bool{}
	}
	for _, c := range cands {
		if mt.used[c.ID] || !sameValues(sent, c.Fields, skip) {
			continue
		}
		mt.used[c.ID] = true
		return c.ID
	}
	return ""
}

// sameValues reports whether got holds every value of sent. Values are
// compared loosely: numbers by value, times by instant, lookups by id,
// lists as sets, text trimmed.
func sameValues(sent, got map[string]any, skip func(string) bool) bool {
	compared := 0
	for k, v := range sent {
		if v == nil || strings.HasPrefix(k, "$") || (skip != nil && skip(k)) {
			continue
		}
		g, ok := got[k]
		if !ok {
			continue
		}
		if !sameValue(v, g) {
			return false
		}
		compared++
	}
	return compared > 0
}

func sameValue(a, b any) bool {
	if ida, ok := refOf(a); ok {
		idb, ok := refOf(b)
		return ok && ida == idb
	}
	switch av := a.(type) {
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		as, bs := make([]string, 0, len(av)), make([]string, 0, len(bv))
		for i := range av {
			as, bs = append(as, fmt.Sprint(av[i])), append(bs, fmt.Sprint(bv[i]))
		}
		slices.Sort(as)
		slices.Sort(bs)
		return slices.Equal(as, bs)
	case []string:
		conv := make([]any, len(av))
		for i, s := range av {
			conv[i] = s
		}
		return sameValue(conv, b)
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return false
		}
		return sameValues(av, bv, nil) || len(av) == 0
	}
	sa, sb := scalar(a), scalar(b)
	if sa == sb {
		return true
	}
	if x, ok := new(big.Rat).SetString(sa); ok {
		if y, ok := new(big.Rat).SetString(sb); ok {
			return x.Cmp(y) == 0
		}
	}
	if ta, err := time.Parse(time.RFC3339Nano, sa); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, sb); err == nil {
			return ta.Equal(tb)
		}
	}
	return false
}

// refOf reads a lookup value's id: {"id":…}.
func refOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	id, ok := m["id"]
	if !ok {
		return "", false
	}
	return str(id), true
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int:
		return fmt.Sprint(x)
	case int64:
		return fmt.Sprint(x)
	case float64:
		return fmt.Sprint(x)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

// copyFields returns a shallow copy, so the caller's map is not changed.
func copyFields(in map[string]any) map[string]any {
	out := make(map[string]any, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	return out
}
