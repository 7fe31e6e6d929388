package syncengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Poller is the capture path that does not depend on webhooks: for each
// module and side of a connection it walks the records modified since its
// stored cursor and enqueues them. Webhooks are faster; polling is the
// safety net for the notifications a vendor never sends or the gateway
// never receives (docs/SYNC.md, "Capture is cheap and always on").
type Poller struct {
	DB         *sqlx.DB
	Connectors Connectors
	Log        *slog.Logger
	PageSize   int // records per request; default 200
	MaxPages   int // pages per module per run, so one busy module cannot starve the rest; default 50
}

// PollConnection captures one connection's changes. A module polled for the
// first time starts now: older records are the first sync's job.
func (p *Poller) PollConnection(ctx context.Context, conn store.Connection) (enqueued int, err error) {
	desk, crm, err := p.Connectors.For(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("polling connection %d: %w", conn.ID, err)
	}
	for _, m := range mapping.Modules {
		for _, side := range []struct {
			c      connector.Connector
			module connector.Module
		}{{crm, m.CRMModule()}, {desk, m.DeskModule()}} {
			n, err := p.pollModule(ctx, conn, side.c, m, side.module)
			enqueued += n
			if err != nil {
				return enqueued, err
			}
			n, err = p.pollDeleted(ctx, conn, side.c, m, side.module)
			enqueued += n
			if err != nil {
				return enqueued, err
			}
		}
	}
	return enqueued, nil
}

func (p *Poller) pollModule(ctx context.Context, conn store.Connection, c connector.Connector, m mapping.Module, vm connector.Module) (int, error) {
	system := string(c.System())
	raw, err := store.GetCursor(ctx, p.DB, conn.OrgID, conn.ID, system, string(m), store.CursorPoll)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if raw == "" {
		// A module polled for the first time starts now, older records
		// being the first sync's job; or when its first sync started, if
		// that was earlier: the walk leaves the records created after its
		// start to capture (FirstSync.walk).
		start := time.Now()
		if began, ok, err := store.LatestRunStart(ctx, p.DB, conn.OrgID, conn.ID, string(m)); err != nil {
			return 0, err
		} else if ok && began.Before(start) {
			start = began
		}
		return 0, store.PutCursor(ctx, p.DB, conn.OrgID, conn.ID, system, string(m), store.CursorPoll, string(c.StartAt(vm, start)))
	}
	return walkChanges(ctx, p.DB, c, vm, connector.Cursor(raw), p.PageSize, p.MaxPages, func(tx *sqlx.Tx, page connector.ChangePage) error {
		items := make([]store.NewQueueItem, len(page.Records))
		for i, r := range page.Records {
			items[i] = store.NewQueueItem{System: system, Module: string(m), ExtID: r.ID, Kind: store.KindUpsert, Origin: store.OriginPoll}
		}
		if len(items) > 0 {
			if err := store.Enqueue(ctx, tx, conn.OrgID, conn.ID, items); err != nil {
				return err
			}
		}
		return store.PutCursor(ctx, tx, conn.OrgID, conn.ID, system, string(m), store.CursorPoll, string(page.Next))
	})
}

// walkChanges reads up to pages pages (default 50) of size records
// (default 200) of a module's changes from cursor, and hands each page to
// save in a transaction of its own, which must store the page's records
// with the cursor past them (page.Next): a crash between pages re-reads a
// page, never skips one. It returns how many records it read.
func walkChanges(ctx context.Context, db *sqlx.DB, c connector.Connector, vm connector.Module, cursor connector.Cursor, size, pages int,
	save func(tx *sqlx.Tx, page connector.ChangePage) error) (int, error) {
	if size <= 0 {
		size = 200
	}
	if pages <= 0 {
		pages = 50
	}
	total := 0
	for range pages {
		page, err := c.ListChanged(ctx, vm, cursor, size)
		if err != nil {
			return total, fmt.Errorf("reading %s %s changes: %w", c.System(), vm, err)
		}
		if err := store.InTx(ctx, db, func(tx *sqlx.Tx) error { return save(tx, page) }); err != nil {
			return total, err
		}
		total += len(page.Records)
		cursor = page.Next
		if page.Done {
			break
		}
	}
	return total, nil
}

// deletedOverlap re-reads a little of the deleted feed before the stored
// point: feeds have second precision and may compare strictly, and a
// deletion seen twice is harmless (the second finds no link).
const deletedOverlap = 2 * time.Second

// pollDeleted reads a module's deleted-records feed since the stored point
// and enqueues the deletions, the safety net for deletions whose
// notification never arrived.
func (p *Poller) pollDeleted(ctx context.Context, conn store.Connection, c connector.Connector, m mapping.Module, vm connector.Module) (int, error) {
	system := string(c.System())
	n := 0
	err := readDeletedFeed(ctx, p.DB, conn, c, string(m), vm, func(tx *sqlx.Tx, dels []connector.Deletion) error {
		items := make([]store.NewQueueItem, len(dels))
		for i, d := range dels {
			items[i] = store.NewQueueItem{System: system, Module: string(m), ExtID: d.ID, Kind: store.KindDelete, Origin: store.OriginDeletedFeed}
		}
		n = len(items)
		if n == 0 {
			return nil
		}
		return store.Enqueue(ctx, tx, conn.OrgID, conn.ID, items)
	})
	return n, err
}

// readDeletedFeed reads a module's deleted-records feed since the point
// stored under key and hands the deletions to save, in the transaction
// that stores the new point. A first call only records "now": what was
// deleted before it is not the caller's concern.
func readDeletedFeed(ctx context.Context, db *sqlx.DB, conn store.Connection, c connector.Connector, key string, vm connector.Module,
	save func(tx *sqlx.Tx, dels []connector.Deletion) error) error {
	system := string(c.System())
	raw, err := store.GetCursor(ctx, db, conn.OrgID, conn.ID, system, key, store.CursorDeletedFeed)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	since, perr := time.Parse(time.RFC3339Nano, raw)
	if raw == "" || perr != nil {
		now := time.Now().UTC().Format(time.RFC3339Nano)
		return store.PutCursor(ctx, db, conn.OrgID, conn.ID, system, key, store.CursorDeletedFeed, now)
	}
	dels, err := c.Deleted(ctx, vm, since.Add(-deletedOverlap))
	if err != nil {
		return fmt.Errorf("reading %s %s deleted feed: %w", system, vm, err)
	}
	newest := since
	for _, d := range dels {
		if d.DeletedAt.After(newest) {
			newest = d.DeletedAt
		}
	}
	return store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := save(tx, dels); err != nil {
			return err
		}
		return store.PutCursor(ctx, tx, conn.OrgID, conn.ID, system, key, store.CursorDeletedFeed, newest.UTC().Format(time.RFC3339Nano))
	})
}
