package resolvers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// The mirror's system names on each side (connector.System values).
const (
	deskSystem = "zoho_desk"
)

// requestCache holds what one GraphQL operation has read of the mirror, so
// nested fields of a list (each ticket's contact, each record's customer)
// are answered from rows a parent fetched in one query, and the org's
// connection is read once. Reads are single-flight: a goroutine that needs
// a record or link another one is reading waits for that read instead of
// repeating it (gqlgen resolves sibling fields concurrently), so the
// statements an operation costs never depend on goroutine timing.
type requestCache struct {
	mu      sync.Mutex
	conn    *store.Connection
	connErr error
	records map[recordKey]*store.CustomerRecord // nil value: known to be missing
	links   map[linkKey]string
	loading map[any]chan struct{} // recordKey or linkKey being read; closed when read
	// Pages and ticket counts a parent read ahead for its children, by
	// the exact query (listKey) each child will make.
	pages  map[string]store.CustomerPage
	counts map[string]store.TicketCounts
	// The caller, as authentication left it in the operation's context:
	// read here, a field deep in a list does not walk its whole context
	// chain for it.
	viewer    auth.Viewer
	viewerErr error
	hasViewer bool
}

type recordKey struct{ system, module, extID string }

type linkKey struct {
	module, side, id string
}

type requestCacheKey struct{}

func newRequestCache() *requestCache {
	return &requestCache{records: map[recordKey]*store.CustomerRecord{}, links: map[linkKey]string{},
		loading: map[any]chan struct{}{}, pages: map[string]store.CustomerPage{}, counts: map[string]store.TicketCounts{}}
}

// WithRequestCache gives one operation its cache; the server wraps every
// operation with it.
func WithRequestCache(ctx context.Context) context.Context {
	c := newRequestCache()
	c.viewer, c.viewerErr = auth.FromContext(ctx)
	c.hasViewer = true
	return context.WithValue(ctx, requestCacheKey{}, c)
}

// viewerOf is the operation's caller (auth.FromContext).
func (c *requestCache) viewerOf(ctx context.Context) (auth.Viewer, error) {
	if c.hasViewer {
		return c.viewer, c.viewerErr
	}
	return auth.FromContext(ctx)
}

func cacheOf(ctx context.Context) *requestCache {
	if c, ok := ctx.Value(requestCacheKey{}).(*requestCache); ok {
		return c
	}
	// Outside an operation (tests calling resolvers directly): a throwaway.
	return newRequestCache()
}

// claim sorts keys (under c.mu) into those known, those another goroutine
// is reading (their channels, to wait on), and the rest, which the caller
// now reads: they are marked as loading under done.
func (c *requestCache) claim(keys []any, known func(any) bool, done chan struct{}) (mine []any, wait []chan struct{}) {
	for _, k := range keys {
		if known(k) {
			continue
		}
		if ch, ok := c.loading[k]; ok {
			if ch != done && !slices.Contains(wait, ch) {
				wait = append(wait, ch)
			}
			continue
		}
		c.loading[k] = done
		mine = append(mine, k)
	}
	return mine, wait
}

// release ends a read claimed with claim; the caller holds c.mu.
func (c *requestCache) release(mine []any, done chan struct{}) {
	for _, k := range mine {
		delete(c.loading, k)
	}
	close(done)
}

// await waits for other goroutines' reads.
func await(ctx context.Context, wait []chan struct{}) error {
	for _, ch := range wait {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// preparedReads holds each pool's store.PreparedReads: customer 360 runs a
// few statement shapes very often, and preparing them spares PostgreSQL
// planning each one again (and lib/pq a round trip). One per pool for the
// life of the process; a server has one pool.
var preparedReads sync.Map // *sqlx.DB -> *store.PreparedReads

// reads is the pool customer 360 reads through.
func (r *Resolver) reads() *store.PreparedReads {
	if p, ok := preparedReads.Load(r.DB); ok {
		return p.(*store.PreparedReads)
	}
	p, _ := preparedReads.LoadOrStore(r.DB, store.NewPreparedReads(r.DB))
	return p.(*store.PreparedReads)
}

// errNoConnection is the answer of every customer-360 field in an org that
// has no CRM connection (A6: removing it removes the CRM panels).
var errNoConnection = fmt.Errorf("the org has no CRM connection: %w", store.ErrNotFound)

// orgConnection is the connection customer 360 reads: the org's live or
// deactivated one (a removed connection shows nothing, A6).
func (r *Resolver) orgConnection(ctx context.Context, v auth.Viewer) (store.Connection, error) {
	return r.connectionIn(ctx, cacheOf(ctx), v)
}

func (r *Resolver) connectionIn(ctx context.Context, c *requestCache, v auth.Viewer) (store.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil && c.connErr == nil {
		conn, err := store.CurrentConnection(ctx, r.reads(), v.OrgID)
		if errors.Is(err, store.ErrNotFound) {
			err = errNoConnection
		}
		c.conn, c.connErr = &conn, err
	}
	return *c.conn, c.connErr
}

// prefetch loads records of one module by vendor id into the cache, in one
// query, skipping those already known and waiting for those another
// goroutine is reading.
func (r *Resolver) prefetch(ctx context.Context, v auth.Viewer, conn store.Connection, system, module string, ids []string) error {
	return r.prefetchIn(ctx, cacheOf(ctx), v, conn, system, module, ids)
}

func (r *Resolver) prefetchIn(ctx context.Context, c *requestCache, v auth.Viewer, conn store.Connection, system, module string, ids []string) error {
	c.mu.Lock()
	var keys []any
	for _, id := range ids {
		if _, ok := c.records[recordKey{system, module, id}]; !ok && id != "" {
			keys = append(keys, recordKey{system, module, id})
		}
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return nil // the common case in a list: every record is known
	}
	known := func(k any) bool {
		_, ok := c.records[k.(recordKey)]
		return ok
	}
	for {
		done := make(chan struct{})
		c.mu.Lock()
		mine, wait := c.claim(keys, known, done)
		c.mu.Unlock()
		if len(mine) == 0 && len(wait) == 0 {
			return nil
		}
		if len(mine) > 0 {
			missing := make([]string, len(mine))
			for i, k := range mine {
				missing[i] = k.(recordKey).extID
			}
			found, err := store.CustomerRecordsByExtIDs(ctx, r.reads(), v.OrgID, conn.ID, system, module, missing)
			c.mu.Lock()
			if err == nil {
				for _, id := range missing {
					if rec, ok := found[id]; ok {
						c.records[recordKey{system, module, id}] = &rec
					} else {
						c.records[recordKey{system, module, id}] = nil
					}
				}
			}
			c.release(mine, done)
			c.mu.Unlock()
			if err != nil {
				return err
			}
		}
		// What others were reading is known now, unless their read failed:
		// then the next round reads it here.
		if err := await(ctx, wait); err != nil {
			return err
		}
	}
}

// record returns one mirrored record by vendor id (nil when it is not
// mirrored or deleted), from the cache when a parent prefetched it.
func (r *Resolver) record(ctx context.Context, v auth.Viewer, conn store.Connection, system, module, id string) (*store.CustomerRecord, error) {
	if id == "" {
		return nil, nil
	}
	c := cacheOf(ctx)
	k := recordKey{system, module, id}
	c.mu.Lock()
	rec, ok := c.records[k]
	c.mu.Unlock()
	if ok {
		return rec, nil
	}
	if err := r.prefetchIn(ctx, c, v, conn, system, module, []string{id}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records[k], nil
}

// linked returns the record linked to id on the other side ("" if none):
// side "desk" maps a desk id to its CRM id, "crm" the reverse.
func (r *Resolver) linked(ctx context.Context, v auth.Viewer, conn store.Connection, module, side, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	c := cacheOf(ctx)
	k := linkKey{module, side, id}
	known := func(k any) bool {
		_, ok := c.links[k.(linkKey)]
		return ok
	}
	for {
		done := make(chan struct{})
		c.mu.Lock()
		if other, ok := c.links[k]; ok {
			c.mu.Unlock()
			return other, nil
		}
		mine, wait := c.claim([]any{k}, known, done)
		c.mu.Unlock()
		if len(mine) == 0 {
			if err := await(ctx, wait); err != nil {
				return "", err
			}
			continue
		}
		var l store.Link
		var err error
		if side == "desk" {
			l, err = store.LinkByDesk(ctx, r.reads(), v.OrgID, conn.ID, module, id)
		} else {
			l, err = store.LinkByCRM(ctx, r.reads(), v.OrgID, conn.ID, module, id)
		}
		other := ""
		switch {
		case err == nil && side == "desk":
			other = l.CRMID
		case err == nil:
			other = l.DeskID
		case errors.Is(err, store.ErrNotFound):
			err = nil
		}
		c.mu.Lock()
		if err == nil {
			c.links[k] = other
		}
		c.release(mine, done)
		c.mu.Unlock()
		return other, err
	}
}

// loadNeighbourhood reads into the cache, in one statement, what the
// customer pictures of these desk tickets, contacts and accounts are made
// of (store.CustomerNeighbourhood): the records, the links of the desk
// contacts and accounts, and the CRM records they link to. Ids whose
// record and link are known already are left out; with none left, it
// costs nothing.
func (r *Resolver) loadNeighbourhood(ctx context.Context, v auth.Viewer, conn store.Connection, tickets, contacts, accounts []string) error {
	c := cacheOf(ctx)
	c.mu.Lock()
	unknown := func(module string, ids []string, withLink bool) []string {
		var out []string
		for _, id := range ids {
			if id == "" || slices.Contains(out, id) {
				continue
			}
			_, haveRecord := c.records[recordKey{deskSystem, module, id}]
			_, haveLink := c.links[linkKey{module, "desk", id}]
			if !haveRecord || withLink && !haveLink {
				out = append(out, id)
			}
		}
		return out
	}
	tickets, contacts, accounts = unknown("tickets", tickets, false), unknown("contacts", contacts, true), unknown("accounts", accounts, true)
	c.mu.Unlock()
	if len(tickets)+len(contacts)+len(accounts) == 0 {
		return nil
	}
	rows, err := store.CustomerNeighbourhood(ctx, r.reads(), v.OrgID, conn.ID, deskSystem, conn.CRMSystem, tickets, contacts, accounts)
	if err != nil {
		return err
	}
	found := map[recordKey]*store.CustomerRecord{}
	for i := range rows {
		rec := &rows[i].CustomerRecord
		found[recordKey{rec.System, rec.Module, rec.ExtID}] = rec
	}
	// Every id looked for is now known: found, or missing. Follow the same
	// steps as the statement did.
	c.mu.Lock()
	defer c.mu.Unlock()
	settle := func(system, module string, ids []string) []*store.CustomerRecord {
		var out []*store.CustomerRecord
		for _, id := range ids {
			if id == "" {
				continue
			}
			k := recordKey{system, module, id}
			rec := found[k]
			c.records[k] = rec
			if rec != nil {
				out = append(out, rec)
			}
		}
		return out
	}
	refs := func(recs []*store.CustomerRecord, ref func(*store.CustomerRecord) *string) []string {
		var out []string
		for _, rec := range recs {
			out = append(out, deref(ref(rec)))
		}
		return out
	}
	contactRef := func(rec *store.CustomerRecord) *string { return rec.ContactRef }
	accountRef := func(rec *store.CustomerRecord) *string { return rec.AccountRef }
	foundTickets := settle(deskSystem, "tickets", tickets)
	foundContacts := settle(deskSystem, "contacts", append(contacts, refs(foundTickets, contactRef)...))
	settle(deskSystem, "accounts", append(append(accounts, refs(foundTickets, accountRef)...), refs(foundContacts, accountRef)...))
	var crmContacts, crmAccounts []string
	for _, row := range rows {
		if row.System != deskSystem || (row.Module != "contacts" && row.Module != "accounts") {
			continue
		}
		other := deref(row.LinkedID)
		c.links[linkKey{row.Module, "desk", row.ExtID}] = other
		if other == "" {
			continue
		}
		c.links[linkKey{row.Module, "crm", other}] = row.ExtID
		if row.Module == "contacts" {
			crmContacts = append(crmContacts, other)
		} else {
			crmAccounts = append(crmAccounts, other)
		}
	}
	foundCRMContacts := settle(conn.CRMSystem, "contacts", crmContacts)
	settle(conn.CRMSystem, "accounts", append(crmAccounts, refs(foundCRMContacts, accountRef)...))
	return nil
}

// deskCustomer answers a `customer` field reached from the desk side: the
// CRM panels must be shown, and the picture is read ahead (customerAnswer).
// lead is the record that leads it, "" for the profile's panel record.
func (r *Resolver) deskCustomer(ctx context.Context, contact, account *store.CustomerRecord, lead string) (*model.Customer, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	if !v.CanSeeCRM() {
		return nil, forbidden("the CRM panels")
	}
	cust, err := r.customerOfDesk(ctx, v, conn, contact, account, lead)
	return r.customerAnswer(ctx, v, conn, cust, err)
}

// customerOfDesk builds the customer key of a desk contact and/or account:
// the CRM side through the links, else (for a contact never synced) by
// email in the CRM mirror. lead says which record leads ("CONTACT" or
// "ACCOUNT"); "" takes the profile's panel record, or the other one when
// the customer has no record of that kind.
func (r *Resolver) customerOfDesk(ctx context.Context, v auth.Viewer, conn store.Connection, contact, account *store.CustomerRecord, lead string) (*model.Customer, error) {
	key := store.CustomerKey{ConnectionID: conn.ID, CRMSystem: conn.CRMSystem, Lead: lead}
	if contact != nil {
		key.DeskContactID = contact.ExtID
		if account == nil && contact.AccountRef != nil {
			acc, err := r.record(ctx, v, conn, deskSystem, "accounts", *contact.AccountRef)
			if err != nil {
				return nil, err
			}
			account = acc
		}
		crmID, err := r.linked(ctx, v, conn, "contacts", "desk", contact.ExtID)
		if err != nil {
			return nil, err
		}
		if crmID == "" && contact.Email != nil {
			byEmail, err := store.CustomerRecordsByEmail(ctx, r.reads(), v.OrgID, conn.ID, conn.CRMSystem, "contacts", *contact.Email, 1)
			if err != nil {
				return nil, err
			}
			if len(byEmail) > 0 {
				crmID = byEmail[0].ExtID
			}
		}
		key.CRMContactID = crmID
	}
	if account != nil {
		key.DeskAccountID = account.ExtID
		crmID, err := r.linked(ctx, v, conn, "accounts", "desk", account.ExtID)
		if err != nil {
			return nil, err
		}
		key.CRMAccountID = crmID
	}
	if key.CRMAccountID == "" && key.CRMContactID != "" {
		crm, err := r.record(ctx, v, conn, conn.CRMSystem, "contacts", key.CRMContactID)
		if err != nil {
			return nil, err
		}
		if crm != nil && crm.AccountRef != nil {
			key.CRMAccountID = *crm.AccountRef
		}
	}
	if key.Lead == "" {
		hasContact := key.CRMContactID != "" || key.DeskContactID != ""
		hasAccount := key.CRMAccountID != "" || key.DeskAccountID != ""
		switch pref := v.EffectiveProfile().PanelRecord; {
		case pref == "ACCOUNT" && (hasAccount || !hasContact):
			key.Lead = "ACCOUNT"
		case pref == "CONTACT" && !hasContact && hasAccount:
			key.Lead = "ACCOUNT"
		default:
			key.Lead = "CONTACT"
		}
	}
	return &model.Customer{Key: key}, nil
}

// customerOfCRM builds the customer key of a CRM lead, contact or account,
// led by that record.
func (r *Resolver) customerOfCRM(ctx context.Context, v auth.Viewer, conn store.Connection, rec store.CustomerRecord) (*model.Customer, error) {
	key := store.CustomerKey{ConnectionID: conn.ID, CRMSystem: conn.CRMSystem}
	switch rec.Module {
	case "leads":
		key.Lead, key.CRMLeadID = "LEAD", rec.ExtID
		if rec.Email != nil {
			key.Email = *rec.Email
		}
		return &model.Customer{Key: key}, nil
	case "contacts":
		key.Lead, key.CRMContactID = "CONTACT", rec.ExtID
		if rec.AccountRef != nil {
			key.CRMAccountID = *rec.AccountRef
		}
		deskID, err := r.linked(ctx, v, conn, "contacts", "crm", rec.ExtID)
		if err != nil {
			return nil, err
		}
		key.DeskContactID = deskID
	case "accounts":
		key.Lead, key.CRMAccountID = "ACCOUNT", rec.ExtID
	case "deals":
		// A deal (Bigin: pipeline record) is about its contact, or its
		// account when no contact is named on it.
		key.CRMAccountID = deref(rec.AccountRef)
		key.Lead, key.CRMContactID = "CONTACT", deref(rec.ContactRef)
		if key.CRMContactID == "" && key.CRMAccountID != "" {
			key.Lead = "ACCOUNT"
			break
		}
		deskID, err := r.linked(ctx, v, conn, "contacts", "crm", key.CRMContactID)
		if err != nil {
			return nil, err
		}
		key.DeskContactID = deskID
	default:
		return nil, fmt.Errorf("a %s record has no customer picture", rec.Module)
	}
	if key.CRMAccountID != "" {
		deskID, err := r.linked(ctx, v, conn, "accounts", "crm", key.CRMAccountID)
		if err != nil {
			return nil, err
		}
		key.DeskAccountID = deskID
	}
	return &model.Customer{Key: key}, nil
}

// deskEntry is the desk contact or account a query names by exactly one
// of its global id (of typeName) and its desk id; not found is an error.
func (r *Resolver) deskEntry(ctx context.Context, module, typeName string, id, deskID *string) (store.CustomerRecord, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return store.CustomerRecord{}, err
	}
	switch {
	case id != nil && deskID == nil:
		rowID, err := rowIDOf("id", typeName, *id)
		if err != nil {
			return store.CustomerRecord{}, err
		}
		row, err := store.CustomerRecordByID(ctx, r.reads(), v.OrgID, rowID)
		if err != nil {
			return store.CustomerRecord{}, err
		}
		if row.ConnectionID != conn.ID {
			return store.CustomerRecord{}, store.ErrNotFound
		}
		if row.System != deskSystem || row.Module != module {
			return store.CustomerRecord{}, badInput("id", "not a %s id", typeName)
		}
		return row, nil
	case deskID != nil && id == nil:
		rec, err := r.record(ctx, v, conn, deskSystem, module, *deskID)
		if err != nil {
			return store.CustomerRecord{}, err
		}
		if rec == nil {
			return store.CustomerRecord{}, store.ErrNotFound
		}
		return *rec, nil
	}
	return store.CustomerRecord{}, badInput("id", "give exactly one of id and deskId")
}

// forbidden is the error a field the profile hides answers with.
func forbidden(area string) error {
	return fmt.Errorf("your permission profile does not show %s: %w", area, auth.ErrForbidden)
}

// addFieldError reports err at the current field's path while the field
// still answers (an empty list beside the error, SPEC G5/issue 5 item 7).
func addFieldError(ctx context.Context, err error) {
	graphql.AddError(ctx, &gqlerror.Error{Err: err, Message: err.Error(), Path: graphql.GetPath(ctx)})
}

// listCursor wraps a store cursor for clients: opaque, and tagged so a
// cursor of one list kind is refused by another.
func listCursor(kind, c string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x01" + c))
}

func parseListCursor(argument, kind string, after *string) (string, error) {
	if after == nil || *after == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	if err == nil {
		if c, ok := strings.CutPrefix(string(raw), kind+"\x01"); ok {
			return c, nil
		}
	}
	return "", badInput(argument, "not a cursor from this list")
}

func customerPageInfo(p store.CustomerPage, after string) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: after != ""}
	if n := len(p.Cursors); n > 0 {
		start, end := p.Cursors[0], p.Cursors[n-1]
		info.StartCursor, info.EndCursor = &start, &end
	}
	return info
}

// wrapCursors turns a page's store cursors into client cursors (in a new
// slice: a page read ahead may serve two fields).
func wrapCursors(kind string, p *store.CustomerPage) {
	wrapped := make([]string, len(p.Cursors))
	for i, c := range p.Cursors {
		wrapped[i] = listCursor(kind, c)
	}
	p.Cursors = wrapped
}

// The keys each model reads of a record's vendor fields. Lists read only
// these (store.CustomerListQuery.Fields), not whole vendor records: keep
// each in step with its model function below. Records a list read this
// way never enter the request cache, whose records are whole.
var (
	ticketFieldKeys  = []string{"ticketNumber", "priority", "channel"}
	contactFieldKeys = []string{"firstName", "lastName", "phone"}
	noteFieldKeys    = []string{"Note_Content"}
	noFieldKeys      = []string{} // deals, activities, desk accounts: typed columns only
)

// fieldKeysOf is what a list of these modules reads of its records'
// fields: nil (everything) unless every module's model is listed above.
func fieldKeysOf(system string, modules []string) []string {
	var out []string
	for _, m := range modules {
		var keys []string
		switch {
		case system == deskSystem && m == "tickets":
			keys = ticketFieldKeys
		case system == deskSystem && m == "contacts":
			keys = contactFieldKeys
		case system == deskSystem && m == "accounts":
			keys = noFieldKeys
		case system != deskSystem && m == "notes":
			keys = noteFieldKeys
		case system != deskSystem && (m == "deals" || m == "calls" || m == "events" || m == "tasks"):
			keys = noFieldKeys
		default:
			return nil // CRM contacts, accounts, leads: their fields are shown whole
		}
		for _, k := range keys {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	if out == nil {
		out = noFieldKeys
	}
	return out
}

func ticketModel(rec store.CustomerRecord) *model.Ticket { return ticketModelOf(rec, true) }

// ticketJSONFields are the Ticket fields read from the record's JSON.
var ticketJSONFields = []string{"number", "priority", "channel"}

// ticketModelOf is ticketModel, leaving ticketJSONFields unset unless
// decode.
func ticketModelOf(rec store.CustomerRecord, decode bool) *model.Ticket {
	var f map[string]any
	if decode {
		f = fieldsOf(rec)
	}
	t := &model.Ticket{ID: globalID("Ticket", rec.ID), DeskID: rec.ExtID, Row: rec,
		Number: textField(f, "ticketNumber"), Subject: rec.Title, Status: rec.Status,
		Priority: textField(f, "priority"), Channel: textField(f, "channel"), DepartmentID: rec.DepartmentID,
		AssigneeID: rec.OwnerID, DueAt: rec.At, CreatedAt: rec.CreatedAt, ModifiedAt: rec.ModifiedAt}
	if rec.StatusType != nil {
		st := model.TicketStatusType(strings.ToUpper(strings.ReplaceAll(*rec.StatusType, " ", "_")))
		if st.IsValid() {
			t.StatusType = &st
		}
	}
	closed := rec.Closed != nil && *rec.Closed
	t.Overdue = !closed && rec.At != nil && rec.At.Before(time.Now())
	return t
}

func deskContactModel(rec store.CustomerRecord) *model.DeskContact {
	f := fieldsOf(rec)
	name := strings.TrimSpace(deref(textField(f, "firstName")) + " " + deref(textField(f, "lastName")))
	return &model.DeskContact{ID: globalID("DeskContact", rec.ID), DeskID: rec.ExtID, Row: rec,
		Name: nonEmpty(name), Email: rec.Email, Phone: textField(f, "phone")}
}

func deskAccountModel(rec store.CustomerRecord) *model.DeskAccount {
	return &model.DeskAccount{ID: globalID("DeskAccount", rec.ID), DeskID: rec.ExtID, Row: rec, Name: rec.Name}
}

var crmModules = map[string]model.CrmModule{"leads": model.CrmModuleLeads, "contacts": model.CrmModuleContacts,
	"accounts": model.CrmModuleAccounts, "deals": model.CrmModuleDeals}

func crmRecordModel(rec store.CustomerRecord) *model.CrmRecord {
	f := fieldsOf(rec)
	name := deref(rec.Name)
	if rec.Module == "deals" {
		name = deref(rec.Title)
	}
	if rec.Module == "contacts" || rec.Module == "leads" {
		name = deref(textField(f, "Full_Name"))
		if name == "" {
			name = strings.TrimSpace(deref(textField(f, "First_Name")) + " " + deref(textField(f, "Last_Name")))
		}
	}
	return &model.CrmRecord{ID: globalID("CrmRecord", rec.ID), CrmID: rec.ExtID, Module: crmModules[rec.Module],
		Name: nonEmpty(name), Email: rec.Email, OwnerName: rec.OwnerName, Row: rec}
}

func dealModel(rec store.CustomerRecord) *model.Deal {
	return &model.Deal{ID: globalID("Deal", rec.ID), CrmID: rec.ExtID, Name: rec.Title, Stage: rec.Status,
		Amount: rec.Amount, ClosingAt: rec.At, Closed: rec.Closed, OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
}

func noteModel(rec store.CustomerRecord) *model.Note { return noteModelOf(rec, true) }

// noteModelOf is noteModel, leaving the content (from the record's JSON)
// unset unless decode.
func noteModelOf(rec store.CustomerRecord, decode bool) *model.Note {
	n := &model.Note{ID: globalID("Note", rec.ID), CrmID: rec.ExtID, Title: rec.Title, OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
	if decode {
		n.Content = textField(fieldsOf(rec), "Note_Content")
	}
	return n
}

var activityKinds = map[string]model.ActivityKind{"calls": model.ActivityKindCall, "events": model.ActivityKindEvent, "tasks": model.ActivityKindTask}

func activityModel(rec store.CustomerRecord) *model.Activity {
	return &model.Activity{ID: globalID("Activity", rec.ID), CrmID: rec.ExtID, Kind: activityKinds[rec.Module],
		Subject: rec.Title, Status: rec.Status, At: rec.At, Closed: rec.Closed, OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
}

// fieldsOf decodes a record's fields; a record that does not decode shows
// no extra fields rather than failing the whole answer.
func fieldsOf(rec store.CustomerRecord) map[string]any {
	var f map[string]any
	_ = json.Unmarshal(rec.Fields, &f)
	return f
}

func textField(f map[string]any, name string) *string {
	switch v := f[name].(type) {
	case string:
		return nonEmpty(v)
	case float64:
		s := fmt.Sprint(v)
		return &s
	}
	return nil
}

// customerContext is the caller and the org's connection, which every
// customer-360 field needs.
func (r *Resolver) customerContext(ctx context.Context) (auth.Viewer, store.Connection, error) {
	c := cacheOf(ctx)
	v, err := c.viewerOf(ctx)
	if err != nil {
		return auth.Viewer{}, store.Connection{}, err
	}
	conn, err := r.connectionIn(ctx, c, v)
	return v, conn, err
}

// customerCRMRecord is a customer's CRM contact or account, behind the
// contact-info permission.
func (r *Resolver) customerCRMRecord(ctx context.Context, k store.CustomerKey, module, id string) (*model.CrmRecord, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	if !v.CanSee(auth.AreaContactInfo) {
		return nil, forbidden("CRM contact info")
	}
	rec, err := r.record(ctx, v, conn, k.CRMSystem, module, id)
	if err != nil || rec == nil {
		return nil, err
	}
	return crmRecordModel(*rec), nil
}

// customerDeskRecord is a customer's desk contact or account (nil when
// it has none): desk data, open to every role that reaches the picture.
func (r *Resolver) customerDeskRecord(ctx context.Context, module, id string) (*store.CustomerRecord, error) {
	if id == "" {
		return nil, nil
	}
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	return r.record(ctx, v, conn, deskSystem, module, id)
}

// mergedFields puts the leading desk record's values beside its CRM
// record's, pair by pair: the connection's saved mappings of that module,
// or the standard pairs while none are saved.
func (r *Resolver) mergedFields(ctx context.Context, v auth.Viewer, conn store.Connection, k store.CustomerKey) ([]*model.MergedField, error) {
	module, deskID, crmID := "contacts", k.DeskContactID, k.CRMContactID
	if k.Lead == "ACCOUNT" {
		module, deskID, crmID = "accounts", k.DeskAccountID, k.CRMAccountID
	}
	desk, err := r.record(ctx, v, conn, deskSystem, module, deskID)
	if err != nil {
		return nil, err
	}
	crm, err := r.record(ctx, v, conn, conn.CRMSystem, module, crmID)
	if err != nil {
		return nil, err
	}
	out := []*model.MergedField{}
	if desk == nil && crm == nil {
		return out, nil
	}
	saved, err := store.Mappings(ctx, r.reads(), v.OrgID, conn.ID, module)
	if err != nil {
		return nil, err
	}
	pairs := mapping.StandardPairs(mapping.Module(module))
	if len(saved) > 0 {
		pairs = pairs[:0]
		for _, m := range saved {
			pairs = append(pairs, [2]string{m.DeskField, m.CRMField})
		}
	}
	var deskFields, crmFields map[string]any
	if desk != nil {
		deskFields = fieldsOf(*desk)
	}
	if crm != nil {
		crmFields = fieldsOf(*crm)
	}
	for _, p := range pairs {
		out = append(out, &model.MergedField{DeskField: p[0], CrmField: p[1], DeskValue: deskFields[p[0]], CrmValue: crmFields[p[1]]})
	}
	return out, nil
}
