package syncengine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Carrying out a KB run (docs/KB.md, "A run"). A full run lists the desk's
// published articles of the selected categories page by page (50 at a
// time, bodies read only for articles that changed, so memory holds one
// page), writes what changed to SalesIQ, and commits each page's links,
// failures and counters in one transaction. At the end it sweeps the links
// the listing did not meet: each is read from the desk, and deleted from
// SalesIQ only when the desk confirms it is gone or out of scope. A retry
// run does the same for the articles of its failures only.

// kbPage is the desk's largest article page.
const kbPage = 50

// kbReadConcurrency bounds the article reads in flight per run.
const kbReadConcurrency = 8

// The desk's article values the sync looks at.
const (
	deskPublished            = "Published"
	deskPermissionAll        = "ALL"
	deskPermissionRegistered = "REGISTEREDUSERS"
)

// SalesIQ article values: synced copies are tagged as coming from the desk
// (source), keyed by the desk article (source_id), and SalesIQ keeps them
// read-only (sandbox/salesiq models it; docs/KB.md).
const (
	chatSourceDesk = "zoho_desk"
	chatPublished  = "published"
	chatDraft      = "draft"
)

var (
	errKBCancelled = errors.New("the KB sync was disabled during the run")
	errKBLost      = errors.New("the run was taken for abandoned and started again elsewhere")
)

// kbBeatEvery is how often a running run renews its heartbeat, whatever
// its pages do (a vendor that rate-limits can hold a page for minutes).
const kbBeatEvery = 30 * time.Second

// execute carries out a claimed run and records how it ended. A
// goroutine keeps the run's heartbeat fresh meanwhile; when the run turns
// out to be no longer ours (taken for dead and started elsewhere) it is
// stopped at once.
func (s *KBService) execute(ctx context.Context, run store.KBRun) {
	began := time.Now()
	runCtx, cancel := context.WithCancelCause(ctx)
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		for {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(kbBeatEvery):
			}
			if err := store.BeatKBRun(runCtx, s.db, run.ID, run.Attempts); errors.Is(err, store.ErrNotFound) {
				cancel(errKBLost)
				return
			} else if err != nil && runCtx.Err() == nil {
				s.log.Warn("renewing a kb sync run's heartbeat", "run_id", run.ID, "err", err)
			}
		}
	}()
	r, err := s.prepare(runCtx, run)
	if err == nil {
		err = r.do(runCtx)
	}
	lost := errors.Is(context.Cause(runCtx), errKBLost)
	cancel(nil)
	<-beat
	status, msg := store.KBRunDone, (*string)(nil)
	switch {
	case errors.Is(err, errKBLost) || lost:
		s.log.Warn("kb sync run lost its claim; another replica carries it on", "run_id", run.ID)
		return
	case errors.Is(err, errKBCancelled):
		status, msg = store.KBRunCancelled, new(err.Error())
	case ctx.Err() != nil:
		// Shutting down: back in the queue for the next tick (runs are
		// idempotent, so the next start rewrites nothing written).
		bg, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		if rerr := store.RequeueKBRun(bg, s.db, run.ID, run.Attempts); rerr != nil {
			s.log.Warn("requeueing an interrupted kb sync run; its stale heartbeat will", "run_id", run.ID, "err", rerr)
		}
		s.log.Info("kb sync run interrupted by shutdown and queued again", "run_id", run.ID)
		return
	case err != nil:
		status, msg = store.KBRunFailed, new(err.Error())
	}
	var fin store.KBRun
	fctx := context.WithoutCancel(ctx) // the outcome is recorded even while shutting down
	ferr := store.InTx(fctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		if fin, err = store.FinishKBRun(fctx, tx, run.ID, run.Attempts, status, msg, s.clock.Now()); err != nil {
			return err
		}
		_, err = store.InsertEvent(fctx, tx, kbRunFinishedEvent(fin))
		return err
	})
	if ferr != nil {
		s.log.Error("finishing kb sync run", "run_id", run.ID, "err", ferr)
		return
	}
	lvl := s.log.Info
	if status == store.KBRunFailed {
		lvl = s.log.Warn
	}
	lvl("kb sync run finished", "run_id", run.ID, "connection_id", run.ConnectionID, "trigger", run.Trigger,
		"status", status, "listed", fin.Listed, "added", fin.Added, "updated", fin.Updated, "deleted", fin.Deleted,
		"unchanged", fin.Unchanged, "failed", fin.Failed, "took", time.Since(began).Round(time.Millisecond), "err", err)
}

// KBEventRunFinished tells the connection's admins that a KB sync run
// ended, with its counters.
const KBEventRunFinished = "KB_SYNC_FINISHED"

type kbRunEventPayload struct {
	ConnectionID string  `json:"connectionId"`
	RunID        string  `json:"runId"`
	Trigger      string  `json:"trigger"`
	Status       string  `json:"status"`
	Listed       int64   `json:"listed"`
	Added        int64   `json:"added"`
	Updated      int64   `json:"updated"`
	Deleted      int64   `json:"deleted"`
	Unchanged    int64   `json:"unchanged"`
	Failed       int64   `json:"failed"`
	Error        *string `json:"error"`
}

func kbRunFinishedEvent(r store.KBRun) store.NewEvent {
	return store.NewEvent{OrgID: r.OrgID, Type: KBEventRunFinished, Permission: string(auth.PermManageConnections),
		SubjectID: connectionSubject(r.ConnectionID), Refs: store.EventRefs{Connection: r.ConnectionID},
		Payload: kbRunEventPayload{ConnectionID: GlobalID("Connection", r.ConnectionID), RunID: GlobalID("KbSyncRun", r.ID),
			Trigger: r.Trigger, Status: r.Status, Listed: r.Listed, Added: r.Added, Updated: r.Updated, Deleted: r.Deleted,
			Unchanged: r.Unchanged, Failed: r.Failed, Error: r.Error}}
}

// kbRunner is one run's state: settings, both sides, the category tree and
// the SalesIQ categories.
type kbRunner struct {
	s    *KBService
	run  store.KBRun
	conn store.Connection
	set  store.KBSettings
	desk KBDesk
	chat KBChat

	parent   map[string]string // desk category -> its parent ("" for a root)
	name     map[string]string
	order    []string          // tree order
	selected map[string]string // desk category -> chat department
	perms    map[string]bool
	status   string // the copies' status: published or draft

	catLinks map[string]string // desk category -> SalesIQ category
	catErrs  map[string]error
	chatCats map[string]string // lower(name) -> SalesIQ category, read once
}

// prepare loads what a run needs, and makes this run the first sync when
// there was none (WEEKLY and MONTHLY follow its day).
func (s *KBService) prepare(ctx context.Context, run store.KBRun) (*kbRunner, error) {
	c, err := store.ConnectionByID(ctx, s.db, run.OrgID, run.ConnectionID)
	if err != nil {
		return nil, err
	}
	if c.Status != store.ConnectionActive {
		return nil, fmt.Errorf("the connection is %s, not ACTIVE", c.Status)
	}
	k, err := s.anchor(ctx, run)
	if err != nil {
		return nil, err
	}
	if !k.Enabled {
		return nil, errKBCancelled
	}
	cats, err := store.GetKBCategories(ctx, s.db, run.OrgID, run.ConnectionID)
	if err != nil {
		return nil, err
	}
	r := &kbRunner{s: s, run: run, conn: c, set: k, selected: map[string]string{}, perms: map[string]bool{},
		catErrs: map[string]error{}, status: chatPublished}
	for _, cat := range cats {
		r.selected[cat.DeskCategoryID] = cat.ChatDepartmentID
	}
	switch k.Permission {
	case store.KBPermissionAll:
		r.perms[deskPermissionAll] = true
	case store.KBPermissionRegistered:
		r.perms[deskPermissionRegistered] = true
	default:
		r.perms[deskPermissionAll], r.perms[deskPermissionRegistered] = true, true
	}
	if k.ArticleStatus == store.KBStatusDraft {
		r.status = chatDraft
	}
	if r.desk, err = s.kbDeskOf(ctx, c); err != nil {
		return nil, err
	}
	if r.chat, err = s.chat.OpenKBChat(ctx, c, k); err != nil {
		return nil, fmt.Errorf("opening the SalesIQ portal: %w", err)
	}
	tree, err := r.desk.KBCategories(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the desk's article categories: %w", err)
	}
	r.parent, r.name = make(map[string]string, len(tree)), make(map[string]string, len(tree))
	for _, t := range tree {
		r.parent[t.ID], r.name[t.ID] = str(t.Fields["parentCategoryId"]), str(t.Fields["name"])
		r.order = append(r.order, t.ID)
	}
	if r.catLinks, err = store.GetKBCategoryLinks(ctx, s.db, run.OrgID, run.ConnectionID); err != nil {
		return nil, err
	}
	return r, nil
}

// anchor records the first sync's start on the settings when none was
// recorded, and reschedules from it; it returns the settings.
func (s *KBService) anchor(ctx context.Context, run store.KBRun) (store.KBSettings, error) {
	var out store.KBSettings
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		k, err := store.GetKBSettings(ctx, tx, run.OrgID, run.ConnectionID, true)
		if err != nil {
			return err
		}
		out = k
		if k.FirstSyncAt != nil {
			return nil
		}
		first := s.clock.Now()
		if run.StartedAt != nil {
			first = *run.StartedAt
		}
		next := k.NextRunAt
		if k.Enabled {
			loc, err := loadKBZone(k.TimeZone)
			if err != nil {
				loc = time.UTC
			}
			n := NextKBRun(k.Interval, &first, loc, s.clock.Now())
			next = &n
		}
		out, err = store.SetKBSchedule(ctx, tx, run.OrgID, run.ConnectionID, next, &first)
		return err
	})
	if err != nil {
		return store.KBSettings{}, fmt.Errorf("recording the first kb sync: %w", err)
	}
	return out, nil
}

// owner is the selected category an article of desk category cat belongs
// to: cat itself or its nearest selected ancestor.
func (r *kbRunner) owner(cat string) (string, string, bool) {
	for i := 0; cat != "" && i < 64; i++ {
		if dept, ok := r.selected[cat]; ok {
			return cat, dept, true
		}
		p, known := r.parent[cat]
		if !known {
			return "", "", false
		}
		cat = p
	}
	return "", "", false
}

// tops are the selected categories below no other selected one, in tree
// order: listing them (sections included) meets every article once.
func (r *kbRunner) tops() []string {
	var out []string
	for _, id := range r.order {
		if _, ok := r.selected[id]; !ok {
			continue
		}
		if _, _, under := r.owner(r.parent[id]); !under {
			out = append(out, id)
		}
	}
	return out
}

// scope says whether an article syncs, and where.
func (r *kbRunner) scope(rec connector.Record) (owner, dept string, ok bool) {
	if !strings.EqualFold(str(rec.Fields["status"]), deskPublished) {
		return "", "", false
	}
	if !r.perms[strings.ToUpper(str(rec.Fields["permission"]))] {
		return "", "", false
	}
	return r.owner(str(rec.Fields["categoryId"]))
}

// do carries out the run.
func (r *kbRunner) do(ctx context.Context) error {
	if r.run.Trigger == store.KBTriggerRetry {
		return r.readAndProcess(ctx, r.run.ArticleIDs)
	}
	for _, top := range r.tops() {
		for from := 1; ; from += kbPage {
			page, err := r.desk.KBArticles(ctx, top, deskPublished, from, kbPage)
			if err != nil {
				return fmt.Errorf("listing the articles of desk category %s: %w", top, err)
			}
			if err := r.process(ctx, page, nil, false); err != nil {
				return err
			}
			if len(page) < kbPage {
				break
			}
		}
	}
	return r.sweep(ctx)
}

// sweep looks at every link the listing did not meet: an article gone
// from the desk, or out of scope now, is deleted from SalesIQ; one the
// listing missed (a page shifted under it) is synced.
func (r *kbRunner) sweep(ctx context.Context) error {
	after := ""
	for {
		links, err := store.UnseenKBLinks(ctx, r.s.db, r.run.OrgID, r.run.ConnectionID, r.run.ID, after, kbPage)
		if err != nil {
			return err
		}
		if len(links) == 0 {
			return nil
		}
		after = links[len(links)-1].DeskArticleID
		ids := make([]string, len(links))
		for i, l := range links {
			ids[i] = l.DeskArticleID
		}
		if err := r.readAndProcess(ctx, ids); err != nil {
			return err
		}
	}
}

// readAndProcess reads articles with their bodies and processes them as
// the whole truth about those ids: gone or out of scope means deleted.
func (r *kbRunner) readAndProcess(ctx context.Context, ids []string) error {
	for part := range slices.Chunk(ids, kbPage) {
		recs, missing, readErrs := r.readMany(ctx, part)
		if err := r.process(ctx, recs, missing, true, readErrs...); err != nil {
			return err
		}
	}
	return nil
}

// kbReadErr is an article the desk could not be read for.
type kbReadErr struct {
	id  string
	err error
}

// readMany reads articles with their bodies, a few at a time. Articles the
// desk no longer has (or has in its trash) are missing.
func (r *kbRunner) readMany(ctx context.Context, ids []string) ([]connector.Record, []string, []kbReadErr) {
	recs := make([]connector.Record, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, kbReadConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			recs[i], errs[i] = r.desk.Get(ctx, "articles", id)
		}()
	}
	wg.Wait()
	var out []connector.Record
	var missing []string
	var failed []kbReadErr
	for i, id := range ids {
		var ce *connector.Error
		switch {
		case errs[i] == nil:
			out = append(out, recs[i])
		case errors.As(errs[i], &ce) && ce.Reason == connector.ReasonNotFound:
			missing = append(missing, id)
		default:
			failed = append(failed, kbReadErr{id: id, err: errs[i]})
		}
	}
	return out, missing, failed
}

// kbItem is one article of a page on its way to SalesIQ.
type kbItem struct {
	rec      connector.Record // the list item, or the full article
	owner    string
	dept     string
	salesCat string
	link     *store.KBArticleLink
	fields   map[string]any
	hash     []byte
	op       string // store.KBOpCreate / KBOpUpdate; "" = upsert of a pending create
	err      error
}

func (it *kbItem) title() *string {
	t := str(it.rec.Fields["title"])
	if t == "" {
		return nil
	}
	return &t
}

// kbPageOut is what a page commits.
type kbPageOut struct {
	save     []store.KBArticleLink
	seen     []string
	forget   []string // links to delete
	resolved []string
	failures []store.NewKBFailure
	counts   store.KBCounts
}

// process syncs one page. Without full, recs are list items (no bodies):
// those in scope whose desk modified time and target are what the link
// says are unchanged without being read, the others are read. With full,
// recs are whole articles and the truth about their ids: one out of scope
// is deleted from SalesIQ, and so is every missing id.
func (r *kbRunner) process(ctx context.Context, recs []connector.Record, missing []string, full bool, readErrs ...kbReadErr) error {
	out := &kbPageOut{counts: store.KBCounts{Listed: int64(len(recs) + len(missing) + len(readErrs))}}
	ids := make([]string, 0, len(recs)+len(missing)+len(readErrs))
	for _, rec := range recs {
		ids = append(ids, rec.ID)
	}
	ids = append(ids, missing...)
	for _, re := range readErrs {
		ids = append(ids, re.id)
	}
	rows, err := store.GetKBLinks(ctx, r.s.db, r.run.OrgID, r.run.ConnectionID, ids)
	if err != nil {
		return err
	}
	links := make(map[string]*store.KBArticleLink, len(rows))
	for i := range rows {
		links[rows[i].DeskArticleID] = &rows[i]
	}
	for _, re := range readErrs {
		r.fail(out, re.id, nil, links[re.id], store.KBOpRead, re.err)
	}

	gone := slices.Clone(missing) // to delete from SalesIQ when linked
	var need []*kbItem
	for _, rec := range recs {
		owner, dept, ok := r.scope(rec)
		if !ok {
			if full {
				gone = append(gone, rec.ID)
			}
			continue
		}
		it := &kbItem{rec: rec, owner: owner, dept: dept, link: links[rec.ID]}
		if it.salesCat, it.err = r.ensureCategory(ctx, owner, dept); it.err != nil {
			r.fail(out, rec.ID, it.title(), it.link, kbOpOf(it.link), it.err)
			continue
		}
		if l := it.link; !full && l != nil && l.SalesIQArticleID != nil && l.DeskModifiedAt != nil &&
			l.DeskModifiedAt.Equal(rec.ModifiedAt) && l.DeskCategoryID == owner && l.ChatDepartmentID == dept &&
			l.SalesIQCategoryID == it.salesCat && l.Status == r.status && l.ContentHash != nil {
			out.seen = append(out.seen, rec.ID)
			out.resolved = append(out.resolved, rec.ID)
			out.counts.Unchanged++
			continue
		}
		need = append(need, it)
	}

	// Bodies of the changed list items.
	if !full && len(need) > 0 {
		want := make([]string, len(need))
		for i, it := range need {
			want[i] = it.rec.ID
		}
		bodies, gaps, errs := r.readMany(ctx, want)
		byID := make(map[string]connector.Record, len(bodies))
		for _, b := range bodies {
			byID[b.ID] = b
		}
		bad := map[string]error{}
		for _, e := range errs {
			bad[e.id] = e.err
		}
		gone = append(gone, gaps...)
		kept := need[:0]
		for _, it := range need {
			if b, ok := byID[it.rec.ID]; ok {
				it.rec = b
				kept = append(kept, it)
			} else if err, ok := bad[it.rec.ID]; ok {
				r.fail(out, it.rec.ID, it.title(), it.link, store.KBOpRead, err)
			}
		}
		need = kept
	}

	// What to write.
	var creates []store.KBArticleLink
	var writes []connector.Write
	var written []*kbItem
	for _, it := range need {
		it.fields = map[string]any{
			"title": str(it.rec.Fields["title"]), "content": str(it.rec.Fields["answer"]), "category_id": it.salesCat,
			"department_ids": []string{it.dept}, "status": r.status, "source": chatSourceDesk, "source_id": it.rec.ID,
		}
		it.hash = kbHash(it.fields)
		l := it.link
		switch {
		case l != nil && l.SalesIQArticleID != nil && bytes.Equal(l.ContentHash, it.hash):
			out.save = append(out.save, r.linkOf(it, *l.SalesIQArticleID))
			out.resolved = append(out.resolved, it.rec.ID)
			out.counts.Unchanged++
			continue
		case l == nil:
			it.op = store.KBOpCreate
			creates = append(creates, r.linkOf(it, ""))
			writes = append(writes, connector.Write{Op: connector.Create, Fields: it.fields})
		case l.SalesIQArticleID == nil:
			// A create whose answer was lost: look for the copy first.
			it.op = ""
			writes = append(writes, connector.Write{Op: connector.Upsert, Fields: it.fields, DuplicateCheck: []string{"source_id"}})
		default:
			it.op = store.KBOpUpdate
			writes = append(writes, connector.Write{Op: connector.Update, ID: *l.SalesIQArticleID, Fields: it.fields})
		}
		written = append(written, it)
	}
	if err := store.PendKBLinks(ctx, r.s.db, r.run.OrgID, r.run.ConnectionID, creates); err != nil {
		return err
	}
	if len(writes) > 0 {
		results, err := r.chat.Write(ctx, kbArticles, writes)
		if err != nil {
			return fmt.Errorf("writing articles to SalesIQ: %w", err)
		}
		var again []*kbItem
		for i, it := range written {
			res := results[i]
			var ce *connector.Error
			if it.op == store.KBOpUpdate && errors.As(res.Err, &ce) && ce.Reason == connector.ReasonNotFound {
				// The copy was deleted on the chat side: make it again,
				// looking for it first in case a lost answer hides one.
				again = append(again, it)
				continue
			}
			r.settle(out, it, res)
		}
		if len(again) > 0 {
			ws := make([]connector.Write, len(again))
			for i, it := range again {
				it.op = ""
				ws[i] = connector.Write{Op: connector.Upsert, Fields: it.fields, DuplicateCheck: []string{"source_id"}}
			}
			results, err := r.chat.Write(ctx, kbArticles, ws)
			if err != nil {
				return fmt.Errorf("writing articles to SalesIQ: %w", err)
			}
			for i, it := range again {
				r.settle(out, it, results[i])
			}
		}
	}
	if err := r.remove(ctx, out, gone, links); err != nil {
		return err
	}
	return r.commit(ctx, out)
}

// settle records the outcome of one write.
func (r *kbRunner) settle(out *kbPageOut, it *kbItem, res connector.Result) {
	if res.Err != nil {
		op := it.op
		if op == "" {
			op = store.KBOpCreate
		}
		r.fail(out, it.rec.ID, it.title(), it.link, op, res.Err)
		if it.op == store.KBOpCreate && !kbOutcomeUnknown(res.Err) {
			// Refused: nothing was created, the pending row can go.
			out.forget = append(out.forget, it.rec.ID)
			out.seen = slices.DeleteFunc(out.seen, func(id string) bool { return id == it.rec.ID })
		}
		return
	}
	out.save = append(out.save, r.linkOf(it, res.ID))
	out.resolved = append(out.resolved, it.rec.ID)
	switch {
	case it.op == store.KBOpUpdate || !res.Created:
		out.counts.Updated++
	default:
		out.counts.Added++
	}
}

// kbOutcomeUnknown reports whether a failed create may have happened.
func kbOutcomeUnknown(err error) bool {
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Code == "OUTCOME_UNKNOWN" {
		return true
	}
	return connector.Retryable(err)
}

// fail records a failure; an article in scope that failed stays seen, so
// the sweep does not take it for removed.
func (r *kbRunner) fail(out *kbPageOut, id string, title *string, l *store.KBArticleLink, op string, err error) {
	f := store.NewKBFailure{OrgID: r.run.OrgID, ConnectionID: r.run.ConnectionID, DeskArticleID: id, Title: title,
		Operation: op, Reason: failureReason(err), Message: truncateRunes(err.Error(), 2000), RunID: r.run.ID, At: r.s.clock.Now()}
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Code != "" {
		f.VendorCode = new(ce.Code)
	}
	if l != nil {
		f.SalesIQArticleID = l.SalesIQArticleID
	}
	out.failures = append(out.failures, f)
	out.counts.Failed++
	if l != nil || op == store.KBOpCreate {
		out.seen = append(out.seen, id)
	}
}

func kbOpOf(l *store.KBArticleLink) string {
	if l == nil {
		return store.KBOpCreate
	}
	return store.KBOpUpdate
}

// remove deletes from SalesIQ the copies of articles that left the desk
// or the sync, and forgets their links. Ids without a link have nothing to
// delete; their failures, if any, are settled.
func (r *kbRunner) remove(ctx context.Context, out *kbPageOut, gone []string, links map[string]*store.KBArticleLink) error {
	var ids, chatIDs []string
	for _, id := range gone {
		l := links[id]
		switch {
		case l == nil:
			out.resolved = append(out.resolved, id)
		case l.SalesIQArticleID != nil:
			ids, chatIDs = append(ids, id), append(chatIDs, *l.SalesIQArticleID)
		default:
			// A create whose outcome is unknown: find the copy by source.
			found, err := r.chat.Find(ctx, kbArticles, connector.Query{Field: "source_id", Value: id})
			if err != nil {
				r.fail(out, id, nil, l, store.KBOpDelete, err)
				continue
			}
			if len(found) == 0 {
				out.forget = append(out.forget, id)
				out.resolved = append(out.resolved, id)
				continue
			}
			for _, f := range found {
				ids, chatIDs = append(ids, id), append(chatIDs, f.ID)
			}
		}
	}
	if len(chatIDs) == 0 {
		return nil
	}
	results, err := r.chat.Delete(ctx, kbArticles, chatIDs)
	if err != nil {
		return fmt.Errorf("deleting articles from SalesIQ: %w", err)
	}
	failed := map[string]bool{}
	for i, res := range results {
		var ce *connector.Error
		if res.Err != nil && !(errors.As(res.Err, &ce) && ce.Reason == connector.ReasonNotFound) {
			if !failed[ids[i]] {
				r.fail(out, ids[i], nil, links[ids[i]], store.KBOpDelete, res.Err)
			}
			failed[ids[i]] = true
		}
	}
	done := map[string]bool{}
	for _, id := range ids {
		if !failed[id] && !done[id] {
			done[id] = true
			out.forget = append(out.forget, id)
			out.resolved = append(out.resolved, id)
			out.counts.Deleted++
		}
	}
	return nil
}

// commit writes a page's links, failures and counters in one transaction,
// and stops the run when the sync was disabled meanwhile.
func (r *kbRunner) commit(ctx context.Context, out *kbPageOut) error {
	now := r.s.clock.Now()
	enabled := true
	err := store.InTx(ctx, r.s.db, func(tx *sqlx.Tx) error {
		orgID, connID := r.run.OrgID, r.run.ConnectionID
		if err := store.SaveKBLinks(ctx, tx, orgID, connID, r.run.ID, now, out.save); err != nil {
			return err
		}
		if err := store.MarkKBLinksSeen(ctx, tx, orgID, connID, r.run.ID, out.seen); err != nil {
			return err
		}
		if err := store.DeleteKBLinks(ctx, tx, orgID, connID, out.forget); err != nil {
			return err
		}
		if _, err := store.ResolveKBFailures(ctx, tx, orgID, connID, out.resolved, now); err != nil {
			return err
		}
		for _, f := range out.failures {
			if _, err := store.RecordKBFailure(ctx, tx, f); err != nil {
				return err
			}
		}
		if err := store.AddKBRunCounts(ctx, tx, r.run.ID, r.run.Attempts, out.counts); errors.Is(err, store.ErrNotFound) {
			return errKBLost
		} else if err != nil {
			return err
		}
		var err error
		enabled, err = store.KBEnabled(ctx, tx, orgID, connID)
		return err
	})
	if err != nil {
		return err
	}
	if !enabled {
		return errKBCancelled
	}
	return nil
}

// linkOf is the link an item leaves, with the SalesIQ id it has.
func (r *kbRunner) linkOf(it *kbItem, chatID string) store.KBArticleLink {
	l := store.KBArticleLink{DeskArticleID: it.rec.ID, DeskCategoryID: it.owner, ChatDepartmentID: it.dept,
		SalesIQCategoryID: it.salesCat, Status: r.status, ContentHash: it.hash}
	if chatID != "" {
		l.SalesIQArticleID = &chatID
	}
	if !it.rec.ModifiedAt.IsZero() {
		mod := it.rec.ModifiedAt
		l.DeskModifiedAt = &mod
	}
	return l
}

// ensureCategory returns the SalesIQ category of a selected desk
// category, making it the first time (named after the desk category's
// path; an existing SalesIQ category of that name is used).
func (r *kbRunner) ensureCategory(ctx context.Context, owner, dept string) (string, error) {
	if id, ok := r.catLinks[owner]; ok {
		return id, nil
	}
	if err := r.catErrs[owner]; err != nil {
		return "", err
	}
	id, err := r.makeCategory(ctx, owner, dept)
	if err != nil {
		r.catErrs[owner] = err
		return "", err
	}
	r.catLinks[owner] = id
	return id, nil
}

func (r *kbRunner) makeCategory(ctx context.Context, owner, dept string) (string, error) {
	name := r.categoryName(owner)
	if r.chatCats == nil {
		cats, err := r.chat.Categories(ctx)
		if err != nil {
			return "", fmt.Errorf("listing SalesIQ article categories: %w", err)
		}
		r.chatCats = make(map[string]string, len(cats))
		for _, c := range cats {
			r.chatCats[strings.ToLower(str(c.Fields["name"]))] = c.ID
		}
	}
	id, ok := r.chatCats[strings.ToLower(name)]
	if !ok {
		rec, err := r.chat.CreateCategory(ctx, name, []string{dept})
		if err != nil {
			return "", fmt.Errorf("creating SalesIQ article category %q: %w", name, err)
		}
		id = rec.ID
		r.chatCats[strings.ToLower(name)] = id
	}
	if err := store.PutKBCategoryLink(ctx, r.s.db, r.run.OrgID, r.run.ConnectionID, owner, id, name); err != nil {
		return "", err
	}
	return id, nil
}

// categoryName is a desk category's path, root first ("Getting Started ›
// Setup 1"), so sections of different roots never share a name.
func (r *kbRunner) categoryName(id string) string {
	var parts []string
	for i := 0; id != "" && i < 64; i++ {
		parts = append(parts, r.name[id])
		id = r.parent[id]
	}
	slices.Reverse(parts)
	return truncateRunes(strings.Join(parts, " › "), 120)
}

// kbHash is the SHA-256 of what is written for an article.
func kbHash(fields map[string]any) []byte {
	raw, _ := json.Marshal(fields) // map keys come out sorted
	sum := sha256.Sum256(raw)
	return sum[:]
}
