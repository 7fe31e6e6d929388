package syncengine

import (
	"cmp"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Connectors hands the worker the two connectors of a connection (built from
// its sealed credentials by the composition root).
type Connectors interface {
	For(ctx context.Context, c store.Connection) (desk, crm connector.Connector, err error)
}

// Worker applies queued changes: it claims rows from the shared queue,
// reads the changed records fresh from their system, reconciles them with
// their linked (or matched) records on the other side, writes the other side
// in batches, and then records links, mirror rows, history, conflicts and
// failures and completes the rows in one transaction (docs/SYNC.md, "Flow").
// Any number of workers on any number of replicas may run at once.
type Worker struct {
	DB         *sqlx.DB
	Name       string // unique per worker: it signs queue leases
	Connectors Connectors
	Log        *slog.Logger
	Batch      int           // rows per claim; default defaultBatch
	Lease      time.Duration // how long a claim is held; default 30s (a crashed worker's rows wait at most this long)

	fieldsMu           sync.Mutex // guards the two caches below
	fields             map[fieldsKey]cachedFields
	defaultDepartments map[int64]cachedDepartment // by connection
}

// defaultBatch is how many queue rows a worker claims at once. A batch's
// fixed costs (the claim, the module lock, the match and link queries, the
// commit) are shared by its rows, and the vendor calls are chunked to each
// API's limit and bounded by the connection's concurrency whatever the
// batch: single runs of the 100k first sync took 143 s at 100 rows, 115 s
// at 250 and 107 s at 500 (runs on the 2-core bench box vary by some 15%).
// 250 keeps most of that while a live change waits behind a shorter batch
// under the module lock.
const defaultBatch = 250

// fieldsTTL is how long field metadata is trusted: an admin who adds a
// custom field sees it mappable and synced within this time.
const fieldsTTL = 10 * time.Minute

type cachedFields struct {
	fields []connector.Field
	at     time.Time
}

// cachedDepartment is a desk's default department, read with its time
// (trusted for fieldsTTL too).
type cachedDepartment struct {
	id string
	at time.Time
}

type fieldsKey struct {
	conn   int64
	system connector.System
	module mapping.Module
}

// RunOnce claims one batch and applies it; it returns how many rows it
// claimed, so a caller loops while there is work.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	batch, lease := w.Batch, w.Lease
	if batch <= 0 {
		batch = defaultBatch
	}
	if lease <= 0 {
		lease = 30 * time.Second
	}
	items, err := store.Claim(ctx, w.DB, store.ClaimOptions{Worker: w.Name, Limit: batch, Lease: lease})
	if err != nil {
		return 0, err
	}
	groups := map[string][]store.QueueItem{}
	var order []string
	for _, it := range items {
		k := fmt.Sprintf("%d/%s/%s", it.ConnectionID, it.System, it.Module)
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	for _, k := range order {
		if err := w.applyGroup(ctx, groups[k]); err != nil {
			w.Log.Error("applying changes; they stay queued", "group", k, "err", err)
			_ = store.Release(context.WithoutCancel(ctx), w.DB, groups[k])
		}
	}
	return len(items), nil
}

// group is one claimed batch of one connection, side and module, with what
// applying it needs.
type group struct {
	conn       store.Connection
	settings   store.Settings
	module     mapping.Module
	source     Side
	src, tgt   connector.Connector
	maps       []mapping.Mapping
	deskFields map[string]connector.Field
	crmFields  map[string]connector.Field
	items      []store.QueueItem
	// lookups holds, per referenced module, the links of the ids the batch's
	// lookup fields point at, read in one query per module before reconciling.
	lookups map[mapping.Module]map[string]store.Link
	// productDepartment is where CRM products are created on the desk
	// (Worker.productDepartment); set for those groups only.
	productDepartment string
}

func (g *group) direction() string {
	if g.source == CRMSide {
		return store.DirectionCRMToDesk
	}
	return store.DirectionDeskToCRM
}

func (g *group) sourceSystem() string { return string(g.src.System()) }

// moduleBusyDelay is how long rows wait when another worker kept applying
// their connection and module for all of moduleLockWait (lockModule).
const (
	moduleBusyDelay = 200 * time.Millisecond
	moduleLockWait  = 5 * time.Second
)

func (w *Worker) applyGroup(ctx context.Context, items []store.QueueItem) error {
	first := items[0]
	conn, err := store.ConnectionByID(ctx, w.DB, first.OrgID, first.ConnectionID)
	if err != nil {
		return err
	}
	desk, crm, err := w.Connectors.For(ctx, conn)
	if err != nil {
		return fmt.Errorf("connecting to connection %d's systems: %w", conn.ID, err)
	}
	g := &group{conn: conn, module: mapping.Module(first.Module), items: items, source: CRMSide, src: crm, tgt: desk}
	if first.System == string(connector.Desk) {
		g.source, g.src, g.tgt = DeskSide, desk, crm
	}
	moduleGroup := store.GroupContactsAccounts
	if g.module == mapping.Products {
		moduleGroup = store.GroupProducts
	}
	if g.settings, err = store.CurrentSettings(ctx, w.DB, conn.OrgID, conn.ID, moduleGroup, time.Now()); err != nil {
		return err
	}
	// NONE (Bigin) syncs nothing; ONE_WAY carries CRM changes only.
	if g.settings.SyncType == "NONE" || (g.settings.SyncType == "ONE_WAY" && g.source == DeskSide) {
		return store.InTx(ctx, w.DB, func(tx *sqlx.Tx) error {
			requeued, err := store.Complete(ctx, tx, items)
			if err != nil {
				return err
			}
			return addRunProgress(ctx, tx, items, requeued, nil)
		})
	}
	if err := w.loadMappings(ctx, g, desk, crm); err != nil {
		return err
	}
	if g.module == mapping.Products && g.source == CRMSide {
		if g.productDepartment, err = w.productDepartment(ctx, g); err != nil {
			return err // the rows stay queued: a product created without a department would fail for good
		}
	}
	var upserts, deletes []store.QueueItem
	for _, it := range items {
		if it.Kind == store.KindDelete {
			deletes = append(deletes, it)
		} else {
			upserts = append(upserts, it)
		}
	}
	// The fresh read of the changed records needs no lock (a record that
	// changes after it is captured again), so it overlaps the apply of
	// another worker holding the module.
	out := &outcome{gone: map[string][]string{}}
	recs := w.readSources(ctx, g, out, upserts)
	// One worker at a time per connection and module, across replicas:
	// otherwise the echo of a record this worker is creating could be
	// applied by another worker before the link is committed, and a record
	// without a matching key (a contact without email) created twice.
	unlock, ok, err := w.lockModule(ctx, first.ConnectionID, first.Module)
	if err != nil {
		return err
	}
	if !ok {
		return store.Postpone(ctx, w.DB, items, moduleBusyDelay)
	}
	defer unlock()
	if err := w.applyUpserts(ctx, g, out, recs); err != nil {
		return err
	}
	if err := w.applyDeletes(ctx, g, deletes, out); err != nil {
		return err
	}
	return w.commit(ctx, g, out)
}

// loadMappings reads the connection's mappings for the module, or, before an
// admin saved any, the standard ones; and both sides' field metadata, which
// is cached per worker: metadata changes rarely and costs a request.
func (w *Worker) loadMappings(ctx context.Context, g *group, desk, crm connector.Connector) error {
	deskFields, err := w.fieldsOf(ctx, g.conn.ID, desk, g.module, g.module.DeskModule())
	if err != nil {
		return err
	}
	crmFields, err := w.fieldsOf(ctx, g.conn.ID, crm, g.module, g.module.CRMModule())
	if err != nil {
		return err
	}
	g.deskFields, g.crmFields = byName(deskFields), byName(crmFields)
	stored, err := store.Mappings(ctx, w.DB, g.conn.OrgID, g.conn.ID, string(g.module))
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		g.maps = mapping.Standard(g.module, deskFields, crmFields)
		return nil
	}
	for _, m := range stored {
		mp := mapping.Mapping{DeskField: m.DeskField, CRMField: m.CRMField, Standard: m.Standard}
		if err := json.Unmarshal(m.ValueMap, &mp.ValueMap); err != nil {
			return fmt.Errorf("reading value map of %s/%s: %w", m.DeskField, m.CRMField, err)
		}
		g.maps = append(g.maps, mp)
	}
	return nil
}

func (w *Worker) fieldsOf(ctx context.Context, connID int64, c connector.Connector, m mapping.Module, vm connector.Module) ([]connector.Field, error) {
	key := fieldsKey{connID, c.System(), m}
	w.fieldsMu.Lock()
	cached, ok := w.fields[key]
	w.fieldsMu.Unlock()
	if ok && time.Since(cached.at) < fieldsTTL {
		return cached.fields, nil
	}
	fs, err := c.Fields(ctx, vm)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s fields: %w", c.System(), vm, err)
	}
	w.fieldsMu.Lock()
	if w.fields == nil {
		w.fields = map[fieldsKey]cachedFields{}
	}
	w.fields[key] = cachedFields{fields: fs, at: time.Now()}
	w.fieldsMu.Unlock()
	return fs, nil
}

func byName(fs []connector.Field) map[string]connector.Field {
	out := make(map[string]connector.Field, len(fs))
	for _, f := range fs {
		out[f.Name] = f
	}
	return out
}

// outcome collects what applying a batch decided, for the transaction.
type outcome struct {
	done      []store.QueueItem
	retry     []retryItem
	links     []linkWrite
	failures  []store.NewFailure
	conflicts []conflictWrite
	mirror    []store.MirrorRecord
	added     int64
	updated   int64
	deleted   int64
	failed    int64
	unlinks   []int64             // links removed by a deletion
	gone      map[string][]string // ids deleted, by system, for the mirror
	resolved  []string            // source ids that synced: their open failures are resolved
	results   map[int64]string    // queue item id -> resultAdded, resultUpdated or resultFailed
	// requeue are target records to apply again: they won a conflict and
	// their values have to travel back (Plan.RequeueTarget).
	requeue []store.NewQueueItem
}

// What applying a queue item did, for the progress of its first-sync run.
const (
	resultAdded   = "added"
	resultUpdated = "updated"
	resultFailed  = "failed"
)

func (o *outcome) result(it store.QueueItem, r string) {
	if o.results == nil {
		o.results = map[int64]string{}
	}
	o.results[it.ID] = r
}

// refuse turns an item already counted as applied into a failure, before
// the outcome is committed: it counts as failed in the history and its
// run, and its source's open failures stay open.
func (o *outcome) refuse(it store.QueueItem, f store.NewFailure) {
	switch o.results[it.ID] {
	case resultAdded:
		o.added--
	case resultUpdated:
		o.updated--
	}
	o.result(it, resultFailed)
	o.failed++
	o.failures = append(o.failures, f)
	o.resolved = slices.DeleteFunc(o.resolved, func(id string) bool { return id == f.SourceID })
}

type retryItem struct {
	item  store.QueueItem
	delay time.Duration
	err   string
}

type linkWrite struct {
	existing *store.Link
	deskID   string
	crmID    string
	plan     Plan
	source   Side
	srcAt    time.Time
	tgtAt    time.Time
	item     store.QueueItem
}

type conflictWrite struct {
	link int // index into outcome.links
	c    Conflict
}

// pending is one source record on its way to the target.
type pending struct {
	item   store.QueueItem
	rec    connector.Record
	link   *store.Link
	target *connector.Record
	plan   Plan
	// settled is set once the record's outcome is decided before planning
	// (done, or failed).
	settled bool
}

// readSources reads the changed records fresh from their source (the
// queue is a hint, the vendor is truth) and mirrors them. Items whose
// record is gone are done (its deletion arrives through the deleted feed
// or a webhook); a failed read is sorted into out for every item.
func (w *Worker) readSources(ctx context.Context, g *group, out *outcome, items []store.QueueItem) []connector.Record {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ExtID
	}
	recs, err := g.src.GetMany(ctx, w.vendorModule(g, g.source), ids)
	if err != nil {
		w.failAll(g, out, items, err)
		return nil
	}
	found := map[string]bool{}
	for _, r := range recs {
		found[r.ID] = true
		out.mirror = append(out.mirror, mirrorOf(g, g.source, r))
	}
	for _, it := range items {
		if !found[it.ExtID] {
			out.done = append(out.done, it)
		}
	}
	return recs
}

// applyUpserts reconciles the records read with their linked or matched
// counterparts and writes the other side.
func (w *Worker) applyUpserts(ctx context.Context, g *group, out *outcome, recs []connector.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, len(recs))
	byID := map[string]store.QueueItem{}
	for _, it := range g.items {
		byID[it.ExtID] = it
	}
	for i, r := range recs {
		ids[i] = r.ID
	}
	links, err := w.links(ctx, g, g.module, g.source, ids)
	if err != nil {
		return err
	}
	if err := w.prefetchLookups(ctx, g, recs); err != nil {
		return err
	}
	var work []*pending
	var targetIDs []string
	for _, r := range recs {
		p := &pending{item: byID[r.ID], rec: r}
		if l, ok := links[r.ID]; ok {
			p.link = &l
			targetIDs = append(targetIDs, otherID(l, g.source))
		}
		work = append(work, p)
	}
	// Matched counterparts are read fresh with the linked ones: the index
	// says which record, the vendor what it holds (and whether it is gone).
	indexed, err := w.indexedMatches(ctx, g, work)
	if err != nil {
		return err
	}
	for _, candidates := range indexed {
		targetIDs = append(targetIDs, candidates...)
	}
	slices.Sort(targetIDs)
	targetIDs = slices.Compact(targetIDs)
	targets := map[string]connector.Record{}
	if len(targetIDs) > 0 {
		trecs, err := g.tgt.GetMany(ctx, w.vendorModule(g, g.source.Other()), targetIDs)
		if err != nil {
			for _, p := range work { // the items not already settled above
				w.fail(g, out, p.item, p.rec.ID, "", err)
			}
			return nil
		}
		for _, r := range trecs {
			targets[r.ID] = r
		}
	}
	var matched []*pending
	for _, p := range work {
		if p.link != nil {
			if t, ok := targets[otherID(*p.link, g.source)]; ok {
				p.target = &t
			} else {
				// The linked record is gone on the other side: its deletion
				// is handled by the delete policy; do not resurrect it.
				out.done = append(out.done, p.item)
				p.settled = true
			}
			continue
		}
		if candidates, ok := indexed[p.rec.ID]; ok {
			for _, id := range candidates {
				if t, ok := targets[id]; ok {
					p.target = &t
					break
				}
			}
		} else if t, err := w.match(ctx, g, p.rec); err != nil {
			w.fail(g, out, p.item, p.rec.ID, "", err)
			p.settled = true
			continue
		} else if t != nil {
			p.target = t
		}
		if p.target != nil {
			matched = append(matched, p)
		}
	}
	if err := w.refuseLinkedMatches(ctx, g, out, matched); err != nil {
		return err
	}
	var writes []connector.Write
	var writing []*pending
	for _, p := range work {
		if p.settled {
			continue
		}
		plan, err := Reconcile(w.reconcileInput(g, p))
		if err != nil {
			w.fail(g, out, p.item, p.rec.ID, targetIDOf(p), err)
			continue
		}
		p.plan = plan
		if len(plan.Write) == 0 {
			// Echo, or nothing new for the other side (or a conflict the
			// other side won): record what was seen and what was decided.
			out.links = append(out.links, w.linkWrite(g, p, ""))
			w.noteDecisions(g, out, p)
			// In step with the other side: an open failure of this record
			// is over, whichever pass wrote the values.
			out.resolved = append(out.resolved, p.rec.ID)
			out.done = append(out.done, p.item)
			continue
		}
		wr := connector.Write{Op: connector.Create, Fields: w.withEngineFields(g, p, plan.Write)}
		if p.target != nil {
			wr.Op, wr.ID = connector.Update, p.target.ID
		}
		writes = append(writes, wr)
		writing = append(writing, p)
	}
	return w.writeTargets(ctx, g, out, writes, writing)
}

// refuseLinkedMatches fails, with the reason already_linked (B14), each
// matched record whose counterpart is linked to another record already, or
// was matched by an earlier record of the batch: a record has one link, and
// the counterpart keeps the values of the record it is linked to. Nothing
// is written for a refused record.
func (w *Worker) refuseLinkedMatches(ctx context.Context, g *group, out *outcome, matched []*pending) error {
	if len(matched) == 0 {
		return nil
	}
	ids := make([]string, len(matched))
	for i, p := range matched {
		ids[i] = p.target.ID
	}
	linked, err := w.links(ctx, g, g.module, g.source.Other(), ids)
	if err != nil {
		return err
	}
	claimedBy := map[string]string{} // counterpart id -> source id that matched it first
	for _, p := range matched {
		holder := claimedBy[p.target.ID]
		if l, ok := linked[p.target.ID]; ok {
			holder = otherID(l, g.source.Other())
		}
		if holder == "" || holder == p.rec.ID {
			claimedBy[p.target.ID] = p.rec.ID
			continue
		}
		w.fail(g, out, p.item, p.rec.ID, p.target.ID, alreadyLinkedError(g.source.Other(), p.target.ID, holder))
		p.settled = true
	}
	return nil
}

// alreadyLinkedError says which record holds the counterpart, in the words
// of the failure history.
func alreadyLinkedError(side Side, targetID, holderID string) error {
	system, other := "desk", "CRM"
	if side == CRMSide {
		system, other = other, system
	}
	return &connector.Error{Class: connector.Permanent, Reason: connector.ReasonAlreadyLinked,
		Message: fmt.Sprintf("the %s record %s is already linked to the %s record %s", system, targetID, other, holderID)}
}

// noteDecisions records the conflicts a record's plan decided, against
// the link just added for it, and queues the target again when it won one:
// its value has to travel back, and a pass that wrote nothing must not
// lose the decision either.
func (w *Worker) noteDecisions(g *group, out *outcome, p *pending) {
	for _, c := range p.plan.Conflicts {
		out.conflicts = append(out.conflicts, conflictWrite{link: len(out.links) - 1, c: c})
	}
	if p.plan.RequeueTarget && p.target != nil {
		out.requeue = append(out.requeue, store.NewQueueItem{System: string(g.tgt.System()), Module: string(g.module),
			ExtID: p.target.ID, Kind: store.KindUpsert, Origin: store.OriginPoll})
	}
}

// writeTargets sends the writes in the connector's batch size and sorts the
// per-record results into links, failures and retries.
func (w *Worker) writeTargets(ctx context.Context, g *group, out *outcome, writes []connector.Write, writing []*pending) error {
	size := g.tgt.BatchSize()
	if size <= 0 {
		size = 100
	}
	module := w.vendorModule(g, g.source.Other())
	for start := 0; start < len(writes); start += size {
		end := min(start+size, len(writes))
		results, err := g.tgt.Write(ctx, module, writes[start:end])
		if err != nil && len(results) == 0 {
			for _, p := range writing[start:end] {
				w.fail(g, out, p.item, p.rec.ID, targetIDOf(p), err)
			}
			continue
		}
		for i, res := range results {
			p := writing[start+i]
			if res.Err != nil {
				w.fail(g, out, p.item, p.rec.ID, targetIDOf(p), res.Err)
				continue
			}
			if p.target == nil {
				out.added++
				out.result(p.item, resultAdded)
			} else {
				out.updated++
				out.result(p.item, resultUpdated)
			}
			out.links = append(out.links, w.linkWrite(g, p, res.ID))
			w.noteDecisions(g, out, p)
			fields := map[string]any{}
			if p.target != nil {
				for k, v := range p.target.Fields {
					fields[k] = v
				}
			}
			for k, v := range writes[start+i].Fields {
				fields[k] = v
			}
			tgt := connector.Record{ID: res.ID, Fields: fields, ModifiedAt: time.Now()}
			out.mirror = append(out.mirror, mirrorOf(g, g.source.Other(), tgt))
			out.resolved = append(out.resolved, p.rec.ID)
			out.done = append(out.done, p.item)
		}
	}
	return nil
}

func (w *Worker) linkWrite(g *group, p *pending, createdID string) linkWrite {
	lw := linkWrite{existing: p.link, plan: p.plan, source: g.source, srcAt: p.rec.ModifiedAt, item: p.item}
	tgtID := createdID
	if p.target != nil {
		tgtID = p.target.ID
		lw.tgtAt = p.target.ModifiedAt
	}
	if g.source == DeskSide {
		lw.deskID, lw.crmID = p.rec.ID, tgtID
	} else {
		lw.deskID, lw.crmID = tgtID, p.rec.ID
	}
	return lw
}

// withEngineFields adds what the engine sets itself on creates: a desk
// product's department (B5).
func (w *Worker) withEngineFields(g *group, p *pending, fields map[string]any) map[string]any {
	if p.target == nil && g.source == CRMSide && g.module == mapping.Products && g.productDepartment != "" {
		fields["departmentIds"] = []string{g.productDepartment}
	}
	return fields
}

// productDepartment is the desk department CRM products are created in
// (B5): the one the settings name, else the portal's default department,
// as the settings document. The desk refuses a product without one, so
// without this every product of a new connection would fail until an
// admin picked a department. "" when the desk names no default (its
// refusal then reaches the failure history).
func (w *Worker) productDepartment(ctx context.Context, g *group) (string, error) {
	if id := g.settings.DeskDepartmentID; id != nil {
		return *id, nil
	}
	w.fieldsMu.Lock()
	cached, ok := w.defaultDepartments[g.conn.ID]
	w.fieldsMu.Unlock()
	if ok && time.Since(cached.at) < fieldsTTL {
		return cached.id, nil
	}
	lister, ok := g.tgt.(interface {
		ListDepartments(ctx context.Context) ([]connector.Record, error)
	})
	if !ok {
		return "", nil
	}
	departments, err := lister.ListDepartments(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the desk's default department for products: %w", err)
	}
	id := ""
	for _, d := range departments {
		if d.Fields["isDefault"] == true && d.Fields["isEnabled"] != false {
			id = d.ID
			break
		}
	}
	w.fieldsMu.Lock()
	if w.defaultDepartments == nil {
		w.defaultDepartments = map[int64]cachedDepartment{}
	}
	w.defaultDepartments[g.conn.ID] = cachedDepartment{id: id, at: time.Now()}
	w.fieldsMu.Unlock()
	return id, nil
}

func (w *Worker) reconcileInput(g *group, p *pending) ReconcileInput {
	in := ReconcileInput{
		Module: g.module, Mappings: g.maps, DeskFields: g.deskFields, CRMFields: g.crmFields,
		Source: g.source, Src: Snapshot{ID: p.rec.ID, Fields: p.rec.Fields, ModifiedAt: p.rec.ModifiedAt},
		TargetSystem: g.tgt.System(), TieWinner: CRMSide,
		Resolve: g.resolveLookup,
	}
	if p.target != nil {
		in.Tgt = &Snapshot{ID: p.target.ID, Fields: p.target.Fields, ModifiedAt: p.target.ModifiedAt}
	}
	if p.link != nil {
		desk, crm := decode(p.link.DeskValues), decode(p.link.CRMValues)
		in.SrcLast, in.TgtLast = crm, desk
		if g.source == DeskSide {
			in.SrcLast, in.TgtLast = desk, crm
		}
	}
	return in
}

// links reads the links of a module's records on one side, in one query.
func (w *Worker) links(ctx context.Context, g *group, m mapping.Module, side Side, ids []string) (map[string]store.Link, error) {
	if side == DeskSide {
		return store.LinksByDeskIDs(ctx, w.DB, g.conn.OrgID, g.conn.ID, string(m), ids)
	}
	return store.LinksByCRMIDs(ctx, w.DB, g.conn.OrgID, g.conn.ID, string(m), ids)
}

// prefetchLookups reads the links every lookup field of the batch points at
// (a contact's account), one query per referenced module, so reconciling a
// batch costs no query per record.
func (w *Worker) prefetchLookups(ctx context.Context, g *group, recs []connector.Record) error {
	srcFields := g.crmFields
	if g.source == DeskSide {
		srcFields = g.deskFields
	}
	ids := map[mapping.Module][]string{}
	for _, mp := range g.maps {
		name := mp.CRMField
		if g.source == DeskSide {
			name = mp.DeskField
		}
		f := srcFields[name]
		if f.Type != connector.TypeLookup {
			continue
		}
		m := lookupModule(f)
		for _, r := range recs {
			if id, ok := mapping.LookupID(r.Fields[name]); ok {
				ids[m] = append(ids[m], id)
			}
		}
	}
	g.lookups = map[mapping.Module]map[string]store.Link{}
	for m, list := range ids {
		found, err := w.links(ctx, g, m, g.source, list)
		if err != nil {
			return err
		}
		g.lookups[m] = found
	}
	return nil
}

// resolveLookup follows a prefetched link of the referenced module from one
// side to the other.
func (g *group) resolveLookup(m mapping.Module, from Side, id string) (string, bool) {
	l, ok := g.lookups[m][id]
	if !ok {
		return "", false
	}
	return otherID(l, from), true
}

// match finds an unlinked record's counterpart (B8): contacts by email (the
// CRM's primary or secondary email, B2), accounts and products by name.
// Contacts without an email are never matched: they are created.
func (w *Worker) match(ctx context.Context, g *group, r connector.Record) (*connector.Record, error) {
	srcField, tgtField := matchFields(g)
	if srcField == "" {
		return nil, nil
	}
	value, _ := r.Fields[srcField].(string)
	if !isMatchValue(value) {
		return nil, nil
	}
	found, err := g.tgt.Find(ctx, w.vendorModule(g, g.source.Other()), connector.Query{Field: tgtField, Value: value})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	for _, f := range found {
		if strings.EqualFold(fmt.Sprint(f.Fields[tgtField]), value) {
			return &f, nil
		}
	}
	return nil, nil
}

// matchFields are the source and target fields the group's records are
// matched on (B8): the CRM's primary or secondary email (B2) and the
// desk's email for contacts, names for accounts and products; "" for a
// module that is not matched.
func matchFields(g *group) (srcField, tgtField string) {
	crmEmail := "Email"
	if g.settings.MatchEmail == "SECONDARY" {
		crmEmail = "Secondary_Email"
	}
	switch g.module {
	case mapping.Contacts:
		srcField, tgtField = "email", crmEmail
	case mapping.Accounts:
		srcField, tgtField = "accountName", "Account_Name"
	case mapping.Products:
		srcField, tgtField = "productName", "Product_Name"
	default:
		return "", ""
	}
	if g.source == CRMSide {
		srcField, tgtField = tgtField, srcField
	}
	return srcField, tgtField
}

// isMatchValue says whether a value can match: a blank one never does (a
// contact without email is created).
func isMatchValue(v string) bool { return strings.TrimSpace(v) != "" }

func (w *Worker) vendorModule(g *group, side Side) connector.Module {
	if side == DeskSide {
		return g.module.DeskModule()
	}
	return g.module.CRMModule()
}

// fail sorts an error: transient ones go back to the queue with backoff,
// permanent ones to the failure history (B14).
func (w *Worker) fail(g *group, out *outcome, it store.QueueItem, sourceID, targetID string, err error) {
	if connector.Retryable(err) && it.Attempts < maxAttempts {
		out.retry = append(out.retry, retryItem{item: it, delay: backoff(it.Attempts, err), err: err.Error()})
		return
	}
	out.failures = append(out.failures, w.failureOf(g, sourceID, targetID, err))
	out.failed++
	out.result(it, resultFailed)
	out.done = append(out.done, it)
}

// failureOf is the failure history's entry for a record that failed.
func (w *Worker) failureOf(g *group, sourceID, targetID string, err error) store.NewFailure {
	f := store.NewFailure{
		OrgID: g.conn.OrgID, ConnectionID: g.conn.ID, Module: string(g.module), Direction: g.direction(),
		SourceSystem: g.sourceSystem(), SourceID: sourceID, Reason: failureReason(err), Message: err.Error(),
	}
	if targetID != "" {
		f.TargetID = &targetID
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		if ce.Field != "" {
			f.Fields = []string{ce.Field}
		}
		if ce.Code != "" {
			code := ce.Code
			f.VendorCode = &code
		}
		f.RawError = ce.Raw
	}
	return f
}

// relatedLists are the desk related lists that keep a record under the
// ONLY_IF_NO_RELATED policy (SPEC B11).
var relatedLists = map[mapping.Module][]string{
	mapping.Contacts: {"tickets", "timeEntry", "activities", "attachments"},
	mapping.Accounts: {"tickets", "contacts", "contracts", "attachments"},
	mapping.Products: {"attachments"},
}

// applyDeletes applies the delete policies (SPEC B10). A CRM deletion
// trashes the linked desk record (ALWAYS), trashes it only when its related
// lists are empty and else unlinks (ONLY_IF_NO_RELATED), or unlinks (NEVER);
// a desk deletion deletes the CRM record to its recycle bin (ALWAYS) or
// unlinks (NEVER). A deletion whose record has come back (restored since)
// is ignored. Our own deletes come back as notifications too; by then the
// link is gone and they change nothing.
func (w *Worker) applyDeletes(ctx context.Context, g *group, items []store.QueueItem, out *outcome) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ExtID
	}
	still, err := g.src.GetMany(ctx, w.vendorModule(g, g.source), ids)
	if err != nil {
		for _, it := range items {
			w.fail(g, out, it, it.ExtID, "", err)
		}
		return nil
	}
	alive := map[string]bool{}
	for _, r := range still {
		alive[r.ID] = r.Fields["isTrashed"] != true
	}
	links, err := w.links(ctx, g, g.module, g.source, ids)
	if err != nil {
		return err
	}
	policy := g.settings.DeskDeletePolicy
	if g.source == CRMSide {
		policy = g.settings.CRMDeletePolicy
	}
	var doomed []string
	var doomedItems []store.QueueItem
	for _, it := range items {
		if alive[it.ExtID] {
			out.done = append(out.done, it)
			continue
		}
		out.gone[g.sourceSystem()] = append(out.gone[g.sourceSystem()], it.ExtID)
		l, linked := links[it.ExtID]
		if !linked {
			out.done = append(out.done, it)
			continue
		}
		target := otherID(l, g.source)
		remove := policy == "ALWAYS"
		if policy == "ONLY_IF_NO_RELATED" {
			has, err := w.hasRelated(ctx, g, target)
			if err != nil {
				w.fail(g, out, it, it.ExtID, target, err)
				continue
			}
			remove = !has
		}
		out.unlinks = append(out.unlinks, l.ID)
		if remove {
			doomed = append(doomed, target)
			doomedItems = append(doomedItems, it)
		} else {
			out.done = append(out.done, it)
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	results, err := g.tgt.Delete(ctx, w.vendorModule(g, g.source.Other()), doomed)
	for i, it := range doomedItems {
		switch {
		case err != nil && len(results) == 0:
			w.fail(g, out, it, it.ExtID, doomed[i], err)
		case results[i].Err != nil && connector.ClassOf(results[i].Err) == connector.Permanent &&
			reasonOf(results[i].Err) == connector.ReasonNotFound:
			out.done = append(out.done, it) // already gone over there
		case results[i].Err != nil:
			w.fail(g, out, it, it.ExtID, doomed[i], results[i].Err)
		default:
			out.deleted++
			sys := string(g.tgt.System())
			out.gone[sys] = append(out.gone[sys], doomed[i])
			out.done = append(out.done, it)
		}
	}
	return nil
}

// hasRelated reports whether a desk record has anything in its related
// lists (SPEC B11).
func (w *Worker) hasRelated(ctx context.Context, g *group, deskID string) (bool, error) {
	desk := g.tgt
	if g.source == DeskSide {
		desk = g.src
	}
	rl, ok := desk.(connector.RelatedLister)
	if !ok {
		return true, nil // cannot tell: keep the record
	}
	for _, list := range relatedLists[g.module] {
		recs, err := rl.Related(ctx, g.module.DeskModule(), deskID, list, 1)
		if err != nil {
			return false, fmt.Errorf("checking %s of %s %s: %w", list, g.module, deskID, err)
		}
		if len(recs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func reasonOf(err error) connector.Reason {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// failAll sorts one error for every item of a batch (a read that failed
// as a whole): transient ones are retried, others recorded.
func (w *Worker) failAll(g *group, out *outcome, items []store.QueueItem, err error) {
	for _, it := range items {
		w.fail(g, out, it, it.ExtID, "", err)
	}
}

// maxAttempts bounds automatic retries of transient errors before they are
// shown in the failure history (B14: "retry on their own before shown").
const maxAttempts = 6

func backoff(attempts int, err error) time.Duration {
	var ce *connector.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	d := time.Second << min(attempts, 10)
	return min(d, 10*time.Minute)
}

func failureReason(err error) string {
	var ce *connector.Error
	if !errors.As(err, &ce) {
		return "upstream_unavailable"
	}
	switch ce.Class {
	case connector.RateLimited:
		return "rate_limited"
	case connector.Auth:
		return "auth"
	case connector.Transient:
		return "upstream_unavailable"
	}
	if ce.Reason != "" {
		return string(ce.Reason)
	}
	return string(connector.ReasonOther)
}

// commit records a batch's results in one transaction, then reschedules
// the transient failures.
func (w *Worker) commit(ctx context.Context, g *group, out *outcome) error {
	now := time.Now()
	err := store.InTx(ctx, w.DB, func(tx *sqlx.Tx) error {
		if len(out.mirror) > 0 {
			if _, err := store.UpsertMirror(ctx, tx, g.conn.OrgID, g.conn.ID, out.mirror); err != nil {
				return err
			}
		}
		if err := w.saveLinks(ctx, tx, g, out); err != nil {
			return err
		}
		if len(out.requeue) > 0 {
			if err := store.Enqueue(ctx, tx, g.conn.OrgID, g.conn.ID, out.requeue); err != nil {
				return err
			}
		}
		for _, f := range out.failures {
			if _, err := store.RecordFailure(ctx, tx, f); err != nil {
				return err
			}
		}
		if len(out.resolved) > 0 {
			if _, err := store.ResolveFailures(ctx, tx, g.conn.OrgID, g.conn.ID, g.sourceSystem(), string(g.module), out.resolved); err != nil {
				return err
			}
		}
		for _, id := range out.unlinks {
			if err := store.DeleteLink(ctx, tx, g.conn.OrgID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for sys, ids := range out.gone {
			if _, err := store.MarkMirrorDeleted(ctx, tx, g.conn.OrgID, g.conn.ID, sys, string(g.module), ids, now); err != nil {
				return err
			}
		}
		if out.added+out.updated+out.deleted+out.failed > 0 {
			if err := store.AddHistory(ctx, tx, store.HistoryBucket{
				OrgID: g.conn.OrgID, ConnectionID: g.conn.ID, Bucket: store.HistoryHour(now), Module: string(g.module),
				Direction: g.direction(), Added: out.added, Updated: out.updated, Deleted: out.deleted, Failed: out.failed,
			}); err != nil {
				return err
			}
		}
		requeued, err := store.Complete(ctx, tx, out.done)
		if err != nil {
			return err
		}
		if err := addRunProgress(ctx, tx, out.done, requeued, out.results); err != nil {
			return err
		}
		return insertFailureEvent(ctx, tx, g, out.failures)
	})
	if err != nil {
		return err
	}
	for _, r := range out.retry {
		if _, err := store.Retry(ctx, w.DB, r.item, r.delay, r.err); err != nil {
			w.Log.Warn("rescheduling a change", "item", r.item.ID, "err", err)
		}
	}
	return nil
}

// failureEventSample bounds the failures one SYNC_FAILURE event lists; a
// batch of more says how many there were.
const failureEventSample = 20

// insertFailureEvent tells a connection's sync subscribers that records of
// a batch went to the failure history: one event per batch, so a module
// failing wholesale is a few events, not one per record.
func insertFailureEvent(ctx context.Context, tx *sqlx.Tx, g *group, failures []store.NewFailure) error {
	if len(failures) == 0 {
		return nil
	}
	type failed struct {
		RecordID string `json:"recordId"`
		Reason   string `json:"reason"`
	}
	sample := make([]failed, 0, min(len(failures), failureEventSample))
	for _, f := range failures[:min(len(failures), failureEventSample)] {
		sample = append(sample, failed{RecordID: f.SourceID, Reason: f.Reason})
	}
	_, err := store.InsertEvent(ctx, tx, store.NewEvent{OrgID: g.conn.OrgID, Type: SyncEventFailure,
		Permission: string(auth.PermManageConnections), SubjectID: connectionSubject(g.conn.ID),
		Refs: store.EventRefs{Connection: g.conn.ID},
		Payload: map[string]any{"connectionId": GlobalID("Connection", g.conn.ID), "module": moduleEnum(string(g.module)),
			"direction": g.direction(), "count": len(failures), "failures": sample}})
	return err
}

// saveLinks inserts the batch's new links and updates its existing ones
// with the values both sides now hold, a statement for each kind, then
// records the batch's conflicts against them in one more. A record already
// linked to another one is a failure (B14 already_linked).
func (w *Worker) saveLinks(ctx context.Context, tx *sqlx.Tx, g *group, out *outcome) error {
	ids := make([]int64, len(out.links)) // the link of each write; 0 = none
	var updates []store.LinkUpdate
	var inserts []store.NewLink
	var inserting []int
	for i := range out.links {
		lw := &out.links[i]
		values := linkValues(lw)
		if lw.existing != nil {
			updates = append(updates, store.LinkUpdate{LinkID: lw.existing.ID, LinkValues: values})
			ids[i] = lw.existing.ID
			continue
		}
		if lw.deskID == "" || lw.crmID == "" {
			continue // nothing on the other side yet (an echo of an unmatched record)
		}
		inserts = append(inserts, store.NewLink{OrgID: g.conn.OrgID, ConnectionID: g.conn.ID, Module: string(g.module),
			DeskID: lw.deskID, CRMID: lw.crmID, DeskValues: values.DeskValues, CRMValues: values.CRMValues,
			DeskModifiedAt: values.DeskModifiedAt, CRMModifiedAt: values.CRMModifiedAt})
		inserting = append(inserting, i)
	}
	if err := store.UpdateLinksValues(ctx, tx, g.conn.OrgID, updates); err != nil {
		return err
	}
	inserted, err := store.InsertLinks(ctx, tx, g.conn.OrgID, g.conn.ID, string(g.module), inserts)
	if err != nil {
		return err
	}
	for k, i := range inserting {
		nl := inserts[k]
		if l, ok := inserted[store.LinkPair{DeskID: nl.DeskID, CRMID: nl.CRMID}]; ok {
			ids[i] = l.ID
			continue
		}
		// Not inserted: one of the records is linked already. InsertLink
		// says to what; the same pair (linked meanwhile) is no failure.
		l, err := store.InsertLink(ctx, tx, nl)
		var lc *store.LinkConflict
		switch {
		case errors.As(err, &lc) && lc.ExistingDeskID == nl.DeskID && lc.ExistingCRMID == nl.CRMID:
			ids[i] = lc.ExistingLinkID
		case errors.As(err, &lc):
			// refuseLinkedMatches catches this before any write; this is a
			// link made meanwhile, outside the module lock.
			side, linkedID, holder := CRMSide, lc.ExistingCRMID, lc.ExistingDeskID
			if lc.Side == store.SideDesk {
				side, linkedID, holder = DeskSide, lc.ExistingDeskID, lc.ExistingCRMID
			}
			out.refuse(out.links[i].item, w.failureOf(g, out.links[i].item.ExtID, linkedID,
				alreadyLinkedError(side, linkedID, holder)))
		case err != nil:
			return err
		default: // the other link went away between the two statements
			ids[i] = l.ID
		}
	}
	var conflicts []store.NewConflict
	for _, cw := range out.conflicts {
		if ids[cw.link] == 0 {
			continue
		}
		winner := store.SideCRM
		if cw.c.Winner == DeskSide {
			winner = store.SideDesk
		}
		conflicts = append(conflicts, store.NewConflict{
			OrgID: g.conn.OrgID, ConnectionID: g.conn.ID, LinkID: ids[cw.link], DeskField: cw.c.DeskField, CRMField: cw.c.CRMField,
			DeskValue: encode(cw.c.DeskValue), CRMValue: encode(cw.c.CRMValue),
			DeskModifiedAt: timePtr(cw.c.DeskModifiedAt), CRMModifiedAt: timePtr(cw.c.CRMModifiedAt), Winner: winner,
		})
	}
	return store.RecordConflicts(ctx, tx, g.conn.OrgID, g.conn.ID, conflicts)
}

// linkValues are the values both sides hold after a link write, and when.
func linkValues(lw *linkWrite) store.LinkValues {
	deskVals, crmVals := lw.plan.TargetLast, lw.plan.SourceLast
	deskAt, crmAt := lw.tgtAt, lw.srcAt
	if lw.source == DeskSide {
		deskVals, crmVals = lw.plan.SourceLast, lw.plan.TargetLast
		deskAt, crmAt = lw.srcAt, lw.tgtAt
	}
	return store.LinkValues{DeskValues: encode(deskVals), CRMValues: encode(crmVals), DeskModifiedAt: timePtr(deskAt), CRMModifiedAt: timePtr(crmAt)}
}

func mirrorOf(g *group, side Side, r connector.Record) store.MirrorRecord {
	system := g.tgt.System()
	if side == g.source {
		system = g.src.System()
	}
	return mirrorRecord(g.conn.OrgID, g.conn.ID, g.module, system, side, r)
}

// mirrorRecord is the mirror row of a record of one side, with the email
// and name that matching and Customer 360 filter on lifted out.
func mirrorRecord(orgID, connID int64, module mapping.Module, system connector.System, side Side, r connector.Record) store.MirrorRecord {
	raw, _ := json.Marshal(r.Fields)
	m := store.MirrorRecord{OrgID: orgID, ConnectionID: connID, Module: string(module), System: string(system), ExtID: r.ID,
		Fields: raw, CreatedAt: timePtr(r.CreatedAt), ModifiedAt: timePtr(r.ModifiedAt),
		Refs: describeRecord(system, string(module), r)}
	emailField, nameField := "email", map[mapping.Module]string{mapping.Contacts: "lastName", mapping.Accounts: "accountName", mapping.Products: "productName"}[module]
	if side == CRMSide {
		emailField = "Email"
		nameField = map[mapping.Module]string{mapping.Contacts: "Last_Name", mapping.Accounts: "Account_Name", mapping.Products: "Product_Name"}[module]
	}
	if s, ok := r.Fields[emailField].(string); ok && s != "" {
		m.Email = &s
	}
	if s, ok := r.Fields[nameField].(string); ok && s != "" {
		m.Name = &s
	}
	return m
}

func otherID(l store.Link, from Side) string {
	if from == DeskSide {
		return l.CRMID
	}
	return l.DeskID
}

func targetIDOf(p *pending) string {
	if p.target != nil {
		return p.target.ID
	}
	return ""
}

func decode(raw json.RawMessage) map[string]any {
	out := map[string]any{}
	if len(raw) > 0 {
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		_ = d.Decode(&out)
	}
	return out
}

func encode(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return raw
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// addRunProgress counts completed items of first-sync runs into their runs
// (B7 progress), in the transaction that completed them. An item that was
// captured again meanwhile (requeued) is not done yet: it is counted when
// its newer version completes, so done never runs ahead of the walk. What
// it added, updated or failed is counted now, since that happened.
func addRunProgress(ctx context.Context, tx *sqlx.Tx, items []store.QueueItem, requeued []int64, results map[int64]string) error {
	type key struct{ org, run int64 }
	progress := map[key]*store.RunProgress{}
	var keys []key
	for _, it := range items {
		if it.RunID == nil {
			continue
		}
		k := key{it.OrgID, *it.RunID}
		p, ok := progress[k]
		if !ok {
			p = &store.RunProgress{}
			progress[k] = p
			keys = append(keys, k)
		}
		if !slices.Contains(requeued, it.ID) {
			p.Done++
		}
		switch results[it.ID] {
		case resultAdded:
			p.Added++
		case resultUpdated:
			p.Updated++
		case resultFailed:
			p.Failed++
		}
	}
	// In run order, so concurrent workers lock the runs' rows alike.
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.run, b.run) })
	for _, k := range keys {
		if _, err := store.AddRunProgress(ctx, tx, k.org, k.run, *progress[k]); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// lockModule takes the session advisory lock of a connection's module on a
// dedicated connection, waiting up to moduleLockWait for the worker that
// holds it; ok is false when it is still held then. Waiting, rather than
// handing the rows back at once, keeps a second worker from claiming and
// postponing batch after batch of the module while the first applies one:
// the lock is handed over when that batch commits.
func (w *Worker) lockModule(ctx context.Context, connID int64, module string) (unlock func(), ok bool, err error) {
	conn, err := w.DB.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("locking %s of connection %d: %w", module, connID, err)
	}
	key := fmt.Sprintf("deskbridge.apply:%d:%s", connID, module)
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, err
	}
	if !ok {
		wait, cancel := context.WithTimeout(ctx, moduleLockWait)
		_, err := conn.ExecContext(wait, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key)
		cancel()
		if err != nil {
			// Timed out (or ctx ended). The cancel may have crossed the
			// grant, so the session is dropped, not trusted to be free.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			conn.Close()
			return nil, false, ctx.Err()
		}
	}
	return func() {
		// A fresh context: the unlock must happen even when ctx ended, or
		// the pooled connection would keep the lock.
		if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discard it: a broken session frees the lock
		}
		conn.Close()
	}, true, nil
}
