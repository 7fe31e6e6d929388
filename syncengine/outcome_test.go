package syncengine

import (
	"testing"

	"github.com/deskbridge/deskbridge/store"
)

// A link refused after the write (a counterpart linked meanwhile) turns
// the item's success into a failure everywhere it was counted.
func TestRefuseTurnsAnAppliedItemIntoAFailure(t *testing.T) {
	for _, applied := range []string{resultAdded, resultUpdated} {
		out := &outcome{}
		it := store.QueueItem{ID: 7, ExtID: "src-1"}
		if applied == resultAdded {
			out.added++
		} else {
			out.updated++
		}
		out.result(it, applied)
		out.resolved = []string{"src-0", "src-1"}
		out.refuse(it, store.NewFailure{SourceID: "src-1", Reason: "already_linked"})
		if out.added != 0 || out.updated != 0 || out.failed != 1 || out.results[7] != resultFailed {
			t.Errorf("%s: added %d updated %d failed %d result %q; want 0, 0, 1, failed", applied,
				out.added, out.updated, out.failed, out.results[7])
		}
		if len(out.failures) != 1 || len(out.resolved) != 1 || out.resolved[0] != "src-0" {
			t.Errorf("%s: failures %+v, resolved %v; want the failure kept open and src-0 still resolved", applied, out.failures, out.resolved)
		}
	}
}
