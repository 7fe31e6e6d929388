package desk

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A page's sort (keep set) puts the same records first, in the same order,
// as sorting everything, and loses none of the others.
func TestSortKeyedKeepMatchesFullSort(t *testing.T) {
	type rec struct{ id, k int64 }
	rng := rand.New(rand.NewPCG(7, 11))
	for _, n := range []int{0, 1, 5, 99, 1000, 5000} {
		for _, keep := range []int{0, 1, 10, 100, n} {
			for _, desc := range []bool{false, true} {
				recs := make([]*rec, n)
				for i := range recs {
					recs[i] = &rec{id: int64(i + 1), k: rng.Int64N(50)} // many ties: the id decides
				}
				rng.Shuffle(n, func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
				full, part := slices.Clone(recs), slices.Clone(recs)
				key, id := func(r *rec) int64 { return r.k }, func(r *rec) int64 { return r.id }
				sortByInt(full, key, id, desc, 0)
				sortByInt(part, key, id, desc, keep)
				for i := 1; i < n; i++ {
					a, b := full[i-1], full[i]
					inOrder := a.k < b.k || (a.k == b.k && a.id < b.id)
					if desc {
						inOrder = a.k > b.k || (a.k == b.k && a.id > b.id)
					}
					if !inOrder {
						t.Fatalf("n=%d desc=%v: full sort out of order at %d: %+v then %+v", n, desc, i, *a, *b)
					}
				}
				upTo := min(keep, n)
				if keep == 0 {
					upTo = n
				}
				if !slices.Equal(full[:upTo], part[:upTo]) {
					t.Fatalf("n=%d keep=%d desc=%v: the first %d differ from the full sort's", n, keep, desc, upTo)
				}
				seen := map[int64]bool{}
				for _, r := range part {
					seen[r.id] = true
				}
				if len(seen) != n || len(part) != n {
					t.Fatalf("n=%d keep=%d: %d distinct records after the sort, want %d", n, keep, len(seen), n)
				}
			}
		}
	}
}
