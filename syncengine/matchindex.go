package syncengine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// The match index of the first sync (docs/SYNC.md, "First sync"). Matching
// an unlinked record (B8) through the vendor's search costs a request per
// record: for a first sync of 100,000 contacts, 100,000 searches, each
// scanning the vendor's records and spending its API credits. Instead, a
// run first reads the whole target module, page by page, into the mirror
// (mirror_records keeps emails and names indexed), and its records are then
// matched against that with one query per batch (Worker.indexedMatches).
//
// The read is done once per connection and module; a later run first reads
// what changed since, from the stored cursor (match_indexes), and its walk
// starts once the index caught up after the run started. From then on the
// mirror follows the target through the engine itself: its own writes are
// mirrored when they commit, and the changes capture brings in (webhooks,
// polling, deleted feeds) when they are applied. A record someone creates
// on the target while the run goes on is matched once its own notification
// was applied; before that, as with the vendor's search index, which
// trails writes, it is not found.

// indexTarget reads the run's target module into the match index, the
// whole module the first time and what changed since later, as far as
// walkBudget allows. It reports whether the index caught up after the run
// started: its walk waits for that.
func (f *FirstSync) indexTarget(ctx context.Context, c store.Connection, r store.Run) (bool, error) {
	desk, crm, err := f.Connectors.For(ctx, c)
	if err != nil {
		return false, err
	}
	m := mapping.Module(r.Module)
	tgt, side, vm := desk, DeskSide, m.DeskModule()
	if r.Direction == store.DirectionDeskToCRM {
		tgt, side, vm = crm, CRMSide, m.CRMModule()
	}
	system := string(tgt.System())
	var cursor connector.Cursor
	idx, err := store.GetMatchIndex(ctx, f.DB, c.OrgID, c.ID, system, r.Module)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cursor = tgt.StartAt(vm, time.Time{}) // every record, not only the run's window
	case err != nil:
		return false, err
	case idx.Complete && idx.CaughtUpAt != nil && !idx.CaughtUpAt.Before(r.StartedAt):
		return true, nil
	default:
		cursor = connector.Cursor(idx.Cursor)
	}
	size := f.PageSize
	if size <= 0 {
		size = 200
	}
	deadline := time.Now().Add(walkBudget)
	for {
		page, err := tgt.ListChanged(ctx, vm, cursor, size)
		if err != nil {
			return false, fmt.Errorf("indexing %s %s for matching: %w", system, vm, err)
		}
		recs := make([]store.MirrorRecord, len(page.Records))
		for i, rec := range page.Records {
			recs[i] = mirrorRecord(c.OrgID, c.ID, m, tgt.System(), side, rec)
		}
		// The records and the cursor past them commit together, so a
		// restarted leader resumes without a gap.
		err = store.InTx(ctx, f.DB, func(tx *sqlx.Tx) error {
			if _, err := store.UpsertMirror(ctx, tx, c.OrgID, c.ID, recs); err != nil {
				return err
			}
			return store.PutMatchIndex(ctx, tx, c.OrgID, c.ID, system, r.Module, string(page.Next), page.Done)
		})
		if err != nil {
			return false, err
		}
		if page.Done {
			if !idx.Complete {
				// The first complete read: matching starts now, on
				// statistics that know the rows just loaded.
				return true, store.AnalyzeMirror(ctx, f.DB)
			}
			return true, nil
		}
		cursor = page.Next
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}

// indexedMatches matches (B8) the batch's unlinked first-sync records
// against the target's match index, one query for the batch, when the index
// is complete and the target field is one the mirror keeps (emails, names):
// it returns, per source record id, the ids of up to two target records
// holding its value (none: no counterpart). The records it leaves out are
// matched through the vendor's search (Worker.match): changes captured by
// webhooks and polling, which the index may not have followed, and the
// CRM's secondary email.
func (w *Worker) indexedMatches(ctx context.Context, g *group, work []*pending) (map[string][]string, error) {
	srcField, tgtField := matchFields(g)
	var key store.MatchKey
	switch tgtField {
	case "email", "Email":
		key = store.MatchByEmail
	case "accountName", "Account_Name", "productName", "Product_Name":
		key = store.MatchByName
	default:
		return nil, nil
	}
	var values []string
	var asking []*pending
	for _, p := range work {
		if p.link != nil || p.item.RunID == nil {
			continue
		}
		if v, _ := p.rec.Fields[srcField].(string); isMatchValue(v) {
			values = append(values, v)
			asking = append(asking, p)
		}
	}
	if len(asking) == 0 {
		return nil, nil
	}
	idx, err := store.GetMatchIndex(ctx, w.DB, g.conn.OrgID, g.conn.ID, string(g.tgt.System()), string(g.module))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !idx.Complete) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	found, err := store.MirrorMatches(ctx, w.DB, g.conn.OrgID, g.conn.ID, string(g.tgt.System()), string(g.module), key, values, 2)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(asking))
	for i, p := range asking {
		out[p.rec.ID] = found[values[i]]
	}
	return out, nil
}
