package syncengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// ReadModules are what customer 360 reads from the mirror, per system:
// mirror module name -> the vendor's module. The synced modules (contacts,
// accounts) are here too: the sync engine mirrors only what it syncs, and
// the picture needs every contact and account, whatever the first sync's
// window or the sync type.
var ReadModules = map[connector.System]map[string]connector.Module{
	connector.CRM: {"leads": "Leads", "contacts": "Contacts", "accounts": "Accounts", "deals": "Deals",
		"notes": "Notes", "calls": "Calls", "events": "Events", "tasks": "Tasks"},
	// Bigin has no leads; its deals are pipeline records.
	connector.Bigin: {"contacts": "Contacts", "accounts": "Accounts", "deals": "Pipelines", "notes": "Notes",
		"calls": "Calls", "events": "Events", "tasks": "Tasks"},
	connector.Desk: {"contacts": "contacts", "accounts": "accounts", "tickets": "tickets"},
}

// mirrorCursorPrefix keeps the read mirror's cursors apart from the sync
// poller's, which share the table and track the same vendor modules.
const mirrorCursorPrefix = "mirror:"

// Mirror keeps the read modules of each connection in the mirror: it walks
// every module from the beginning once, then what changed since its cursor,
// and marks what the deleted feeds report. It writes the mirror only; it
// never queues a change for the other side.
type Mirror struct {
	DB         *sqlx.DB
	Connectors Connectors
	Log        *slog.Logger
	PageSize   int // default 200
	MaxPages   int // pages per module per pass; default 50
}

// MirrorConnection brings one connection's read modules up to date and
// returns how many records it wrote.
func (m *Mirror) MirrorConnection(ctx context.Context, conn store.Connection) (int, error) {
	desk, crm, err := m.Connectors.For(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("mirroring connection %d: %w", conn.ID, err)
	}
	total := 0
	for _, c := range []connector.Connector{crm, desk} {
		modules := ReadModules[c.System()]
		names := make([]string, 0, len(modules))
		for name := range modules {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			n, err := m.mirrorModule(ctx, conn, c, name, modules[name])
			total += n
			if err != nil {
				return total, err
			}
			if err := m.mirrorDeleted(ctx, conn, c, name, modules[name]); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (m *Mirror) mirrorModule(ctx context.Context, conn store.Connection, c connector.Connector, name string, vm connector.Module) (int, error) {
	system := string(c.System())
	cursor, save, err := m.moduleCursor(ctx, conn, system, name)
	if err != nil {
		return 0, err
	}
	if cursor == "" {
		cursor = c.StartAt(vm, time.Time{}) // the picture needs every record, however old
	}
	return walkChanges(ctx, m.DB, c, vm, cursor, m.PageSize, m.MaxPages, func(tx *sqlx.Tx, page connector.ChangePage) error {
		if c.System() == connector.Desk && name == "tickets" {
			if err := notePolledTickets(ctx, tx, conn, page.Records); err != nil {
				return err
			}
		}
		records, err := mirrorRecords(c.System(), name, page.Records)
		if err != nil {
			return err
		}
		if _, err := store.UpsertMirror(ctx, tx, conn.OrgID, conn.ID, records); err != nil {
			return err
		}
		return save(tx, page)
	})
}

// moduleCursor is where a module's whole-module read stands, and how a page
// read moves it. The synced modules (contacts, accounts) keep it in their
// first-sync match index: that index is the same read of the same module
// into the same rows (matchindex.go), so whichever of the two jobs reads a
// page, the other goes on from there and the module is read once.
func (m *Mirror) moduleCursor(ctx context.Context, conn store.Connection, system, name string) (connector.Cursor, func(*sqlx.Tx, connector.ChangePage) error, error) {
	if slices.Contains(mapping.Modules, mapping.Module(name)) {
		idx, err := store.GetMatchIndex(ctx, m.DB, conn.OrgID, conn.ID, system, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", nil, err
		}
		return connector.Cursor(idx.Cursor), func(tx *sqlx.Tx, page connector.ChangePage) error {
			return store.PutMatchIndex(ctx, tx, conn.OrgID, conn.ID, system, name, string(page.Next), page.Done)
		}, nil
	}
	key := mirrorCursorPrefix + name
	raw, err := store.GetCursor(ctx, m.DB, conn.OrgID, conn.ID, system, key, store.CursorPoll)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	return connector.Cursor(raw), func(tx *sqlx.Tx, page connector.ChangePage) error {
		return store.PutCursor(ctx, tx, conn.OrgID, conn.ID, system, key, store.CursorPoll, string(page.Next))
	}, nil
}

// mirrorDeleted marks what a module's deleted feed reports since its
// stored point (the walk from the beginning saw only live records).
func (m *Mirror) mirrorDeleted(ctx context.Context, conn store.Connection, c connector.Connector, name string, vm connector.Module) error {
	system := string(c.System())
	return readDeletedFeed(ctx, m.DB, conn, c, mirrorCursorPrefix+name, vm, func(tx *sqlx.Tx, dels []connector.Deletion) error {
		byTime := map[time.Time][]string{}
		for _, d := range dels {
			byTime[d.DeletedAt] = append(byTime[d.DeletedAt], d.ID)
		}
		for at, ids := range byTime {
			if _, err := store.MarkMirrorDeleted(ctx, tx, conn.OrgID, conn.ID, system, name, ids, at); err != nil {
				return err
			}
		}
		return nil
	})
}

// mirrorRecords turns vendor records of a read module into mirror rows
// with their typed columns.
func mirrorRecords(system connector.System, module string, recs []connector.Record) ([]store.MirrorRecord, error) {
	out := make([]store.MirrorRecord, 0, len(recs))
	for _, r := range recs {
		raw, err := json.Marshal(r.Fields)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %s %s for the mirror: %w", system, module, r.ID, err)
		}
		rec := store.MirrorRecord{System: string(system), Module: module, ExtID: r.ID, Fields: raw,
			CreatedAt: timePtr(r.CreatedAt), ModifiedAt: timePtr(r.ModifiedAt), Refs: describeRecord(system, module, r)}
		if email := str(r.Fields[emailFieldOf(system)]); email != "" {
			e := strings.ToLower(email)
			rec.Email = &e
		}
		if name := displayName(system, module, r.Fields); name != "" {
			rec.Name = &name
		}
		out = append(out, rec)
	}
	return out, nil
}

func emailFieldOf(system connector.System) string {
	if system == connector.Desk {
		return "email"
	}
	return "Email"
}

// displayName is the mirror's name column: what the sync engine stores
// for the same modules (last names, account and product names), so
// matching by name sees one convention; resolvers build full names from
// the fields.
func displayName(system connector.System, module string, f map[string]any) string {
	if system == connector.Desk {
		switch module {
		case "contacts":
			return str(f["lastName"])
		case "accounts":
			return str(f["accountName"])
		}
		return str(f["subject"])
	}
	switch module {
	case "accounts":
		return str(f["Account_Name"])
	case "deals":
		return str(f["Deal_Name"])
	case "contacts", "leads":
		return str(f["Last_Name"])
	}
	return ""
}

// mirrorAll keeps the read modules of every ACTIVE or PAUSED connection
// current (pausing stops applying changes, not reading them).
func (e *Engine) mirrorAll(ctx context.Context, m *Mirror) {
	conns, err := store.ConnectionsInStatus(ctx, e.DB, store.ConnectionActive, store.ConnectionPaused)
	if err != nil {
		e.Log.Error("listing connections to mirror", "err", err)
		return
	}
	for _, c := range conns {
		if n, err := m.MirrorConnection(ctx, c); err != nil {
			e.Log.Warn("mirroring a connection's read modules; the next run tries again", "connection", c.ID, "err", err)
		} else if n > 0 {
			e.Log.Debug("mirrored records", "connection", c.ID, "records", n)
		}
	}
}
