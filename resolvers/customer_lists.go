package resolvers

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
)

// Page sizes of the customer lists: 20 by default, at most 100 a page.
const (
	customerPageDefault = 20
	customerPageMax     = 100
)

// ticketScope says whose tickets a list or count covers: desk contacts
// and/or accounts by vendor id.
type ticketScope struct {
	contacts, accounts []string
}

// ticketScopeOf is a customer's tickets: its desk contact's when the
// picture is led by a contact (or a lead, through the desk contacts that
// share its email), its desk account's when led by an account.
func (r *Resolver) ticketScopeOf(ctx context.Context, v auth.Viewer, conn store.Connection, k store.CustomerKey) (ticketScope, error) {
	if scope, known := knownTicketScope(k); known {
		return scope, nil
	}
	// Led by a lead: the desk contacts that share its email.
	if k.Email == "" {
		return ticketScope{}, nil
	}
	people, err := store.CustomerRecordsByEmail(ctx, r.reads(), v.OrgID, conn.ID, deskSystem, "contacts", k.Email, 20)
	if err != nil {
		return ticketScope{}, err
	}
	var s ticketScope
	for _, p := range people {
		s.contacts = append(s.contacts, p.ExtID)
	}
	return s, nil
}

func nonEmptyIDs(ids ...string) []string {
	return slices.DeleteFunc(ids, func(s string) bool { return s == "" })
}

// ticketListQuery is the query of a scope's ticket list, and the store
// cursor it starts after.
func ticketListQuery(v auth.Viewer, conn store.Connection, scope ticketScope, first *int, after *string, filter *model.TicketFilter, orderBy *model.TicketOrder) (store.CustomerListQuery, string, error) {
	limit, err := pageSize(first, customerPageDefault, customerPageMax)
	if err != nil {
		return store.CustomerListQuery{}, "", err
	}
	cursor, err := parseListCursor("after", "tickets", after)
	if err != nil {
		return store.CustomerListQuery{}, "", err
	}
	q := store.CustomerListQuery{OrgID: v.OrgID, ConnectionID: conn.ID, System: deskSystem, Modules: []string{"tickets"},
		ContactRefs: scope.contacts, AccountRefs: scope.accounts, RefsGiven: true, Order: store.OrderCreatedDesc,
		After: cursor, Limit: limit, Fields: ticketFieldKeys}
	if orderBy != nil {
		switch *orderBy {
		case model.TicketOrderCreatedAsc:
			q.Order = store.OrderCreatedAsc
		case model.TicketOrderDueAsc:
			q.Order = store.OrderAtAsc
		}
	}
	applyTicketFilter(&q, filter)
	return q, cursor, nil
}

// tickets lists the tickets of a scope, then loads what the page's nested
// fields ask of every listed ticket in one query (prefetchTicketRefs).
func (r *Resolver) tickets(ctx context.Context, v auth.Viewer, conn store.Connection, scope ticketScope, first *int, after *string, filter *model.TicketFilter, orderBy *model.TicketOrder) (*model.TicketConnection, error) {
	q, cursor, err := ticketListQuery(v, conn, scope, first, after, filter, orderBy)
	if err != nil {
		return nil, err
	}
	page, err := r.customerPage(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := r.prefetchTicketRefs(ctx, v, conn, page.Records); err != nil {
		return nil, err
	}
	wrapCursors("tickets", &page)
	return &model.TicketConnection{PageInfo: customerPageInfo(page, cursor), Edges: edgesOf(page, ticketEdges(ctx))}, nil
}

// prefetchTicketRefs loads, for a list of tickets, what its nodes' fields
// will read, in one query: with `customer`, the whole neighbourhood of the
// tickets' contacts and accounts; else their contacts and/or accounts.
func (r *Resolver) prefetchTicketRefs(ctx context.Context, v auth.Viewer, conn store.Connection, tickets []store.CustomerRecord) error {
	if len(tickets) == 0 {
		return nil
	}
	asked := selected(ctx, []string{"edges", "node"}, "contact", "account", "customer")
	var contacts, accounts []string
	for _, t := range tickets {
		contacts = append(contacts, deref(t.ContactRef))
		accounts = append(accounts, deref(t.AccountRef))
	}
	if asked["customer"] {
		return r.loadNeighbourhood(ctx, v, conn, nil, contacts, accounts)
	}
	if asked["contact"] {
		if err := r.prefetch(ctx, v, conn, deskSystem, "contacts", contacts); err != nil {
			return err
		}
	}
	if asked["account"] {
		return r.prefetch(ctx, v, conn, deskSystem, "accounts", accounts)
	}
	return nil
}

func applyTicketFilter(q *store.CustomerListQuery, f *model.TicketFilter) {
	if f == nil {
		return
	}
	for _, st := range f.StatusTypes {
		q.StatusTypes = append(q.StatusTypes, map[model.TicketStatusType]string{
			model.TicketStatusTypeOpen: "Open", model.TicketStatusTypeOnHold: "On Hold", model.TicketStatusTypeClosed: "Closed"}[st])
	}
	q.Status, q.DepartmentID, q.OwnerID = deref(f.Status), deref(f.DepartmentID), deref(f.AssigneeID)
	q.Overdue, q.CreatedFrom, q.CreatedTo = f.Overdue, f.CreatedFrom, f.CreatedTo
}

// ticketCountQuery is the count of a scope's tickets.
func ticketCountQuery(v auth.Viewer, conn store.Connection, scope ticketScope) store.TicketCountQuery {
	return store.TicketCountQuery{OrgID: v.OrgID, ConnectionID: conn.ID, DeskSystem: deskSystem,
		ContactRefs: scope.contacts, AccountRefs: scope.accounts}
}

// scopedTickets and scopedTicketCounts answer the `tickets` and
// `ticketCounts` fields of a desk contact or account.
func (r *Resolver) scopedTickets(ctx context.Context, scope ticketScope, first *int, after *string, filter *model.TicketFilter, orderBy *model.TicketOrder) (*model.TicketConnection, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	return r.tickets(ctx, v, conn, scope, first, after, filter, orderBy)
}

func (r *Resolver) scopedTicketCounts(ctx context.Context, scope ticketScope) (*model.TicketCounts, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	return r.ticketCounts(ctx, v, conn, scope)
}

// ticketCounts counts a scope's tickets in one aggregate.
func (r *Resolver) ticketCounts(ctx context.Context, v auth.Viewer, conn store.Connection, scope ticketScope) (*model.TicketCounts, error) {
	c, err := r.customerCounts(ctx, ticketCountQuery(v, conn, scope))
	if err != nil {
		return nil, err
	}
	return &model.TicketCounts{Total: c.Total, Open: c.Open, OnHold: c.OnHold, Resolved: c.Resolved,
		Unresolved: c.Unresolved, Overdue: c.Overdue}, nil
}

// crmScope narrows a CRM list to the records around the customer's leading
// record. ok is false when the customer has no such record (nothing to
// list).
func crmScope(k store.CustomerKey, q *store.CustomerListQuery) (ok bool) {
	q.RefsGiven = true
	switch k.Lead {
	case "ACCOUNT":
		q.AccountRefs = nonEmptyIDs(k.CRMAccountID)
	case "LEAD":
		q.LeadRefs = nonEmptyIDs(k.CRMLeadID)
	default:
		q.ContactRefs = nonEmptyIDs(k.CRMContactID)
	}
	return len(q.AccountRefs)+len(q.LeadRefs)+len(q.ContactRefs) > 0
}

// crmListQuery is the query of a list of one or more CRM modules of a
// customer, and the store cursor it starts after; ok is false when the
// customer has no record to list around (an empty list, no query).
func crmListQuery(v auth.Viewer, k store.CustomerKey, kind string, modules []string, first *int, after *string, order store.CustomerOrder, narrow func(*store.CustomerListQuery)) (q store.CustomerListQuery, cursor string, ok bool, err error) {
	limit, err := pageSize(first, customerPageDefault, customerPageMax)
	if err != nil {
		return q, "", false, err
	}
	cursor, err = parseListCursor("after", kind, after)
	if err != nil {
		return q, "", false, err
	}
	q = store.CustomerListQuery{OrgID: v.OrgID, ConnectionID: k.ConnectionID, System: k.CRMSystem, Modules: modules,
		Order: order, After: cursor, Limit: limit, Fields: fieldKeysOf(k.CRMSystem, modules)}
	if !crmScope(k, &q) {
		return q, cursor, false, nil
	}
	if narrow != nil {
		narrow(&q)
	}
	return q, cursor, true, nil
}

// crmList pages one or more CRM modules of a customer.
func (r *Resolver) crmList(ctx context.Context, v auth.Viewer, k store.CustomerKey, kind string, modules []string, first *int, after *string, order store.CustomerOrder, narrow func(*store.CustomerListQuery)) (store.CustomerPage, string, error) {
	q, cursor, ok, err := crmListQuery(v, k, kind, modules, first, after, order, narrow)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	if !ok {
		return store.CustomerPage{}, cursor, nil
	}
	page, err := r.customerPage(ctx, q)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	wrapCursors(kind, &page)
	return page, cursor, nil
}

// dealListArgs, noteListNarrow and activityListNarrow turn the customer
// lists' arguments into their query's order and filters.
func dealListArgs(filter *model.DealFilter, orderBy *model.DealOrder) (store.CustomerOrder, func(*store.CustomerListQuery)) {
	order := store.OrderAtDesc
	if orderBy != nil && *orderBy == model.DealOrderAmountDesc {
		order = store.OrderAmountDesc
	}
	return order, func(q *store.CustomerListQuery) {
		if filter != nil {
			q.Closed, q.Status, q.AtFrom, q.AtTo = filter.Closed, deref(filter.Stage), filter.ClosingFrom, filter.ClosingTo
			q.OwnerID = deref(filter.OwnerID)
		}
	}
}

func noteListNarrow(filter *model.DateRangeFilter) func(*store.CustomerListQuery) {
	return func(q *store.CustomerListQuery) {
		if filter != nil {
			q.CreatedFrom, q.CreatedTo, q.OwnerID = filter.CreatedFrom, filter.CreatedTo, deref(filter.OwnerID)
		}
	}
}

func activityListNarrow(filter *model.ActivityFilter) func(*store.CustomerListQuery) {
	return func(q *store.CustomerListQuery) {
		if filter != nil {
			q.Closed, q.AtFrom, q.AtTo, q.OwnerID = filter.Closed, filter.From, filter.To, deref(filter.OwnerID)
		}
	}
}

// activityModules are the activity kinds asked for that the profile
// shows, as mirror modules, and whether some asked for were hidden.
func activityModules(v auth.Viewer, asked []model.ActivityKind) (modules []string, hidden bool) {
	if len(asked) == 0 {
		asked = []model.ActivityKind{model.ActivityKindCall, model.ActivityKindEvent, model.ActivityKindTask}
	}
	for _, k := range asked {
		module, area := map[model.ActivityKind]string{model.ActivityKindCall: "calls", model.ActivityKindEvent: "events",
			model.ActivityKindTask: "tasks"}[k], map[model.ActivityKind]auth.Area{model.ActivityKindCall: auth.AreaCalls,
			model.ActivityKindEvent: auth.AreaEvents, model.ActivityKindTask: auth.AreaTasks}[k]
		if !v.CanSee(area) {
			hidden = true
			continue
		}
		if !slices.Contains(modules, module) {
			modules = append(modules, module)
		}
	}
	return modules, hidden
}

// customerType is the CRM contact's Customer_Type, else its account's
// Account_Type.
func customerType(contact, account *store.CustomerRecord) *string {
	if contact != nil {
		if t := textField(fieldsOf(*contact), "Customer_Type"); t != nil {
			return t
		}
	}
	if account != nil {
		return textField(fieldsOf(*account), "Account_Type")
	}
	return nil
}

// hiddenKinds names hidden activity kinds for the error message.
func hiddenKinds(v auth.Viewer) string {
	var out []string
	for _, a := range []auth.Area{auth.AreaCalls, auth.AreaEvents, auth.AreaTasks} {
		if !v.CanSee(a) {
			out = append(out, string(a))
		}
	}
	return strings.Join(out, " and ")
}

// BI pages are bigger than the sidebar's: a tool copies everything.
const (
	biPageDefault = 100
	biPageMax     = 500
)

// biPage is one page of a full listing: in row id order, or, with
// updatedSince, in the order deskbridge saw the changes (mirrored_at, id),
// which is what an incremental copy needs.
func (r *Resolver) biPage(ctx context.Context, v auth.Viewer, conn store.Connection, system string, modules []string, kind string, first *int, after *string, updatedSince *time.Time, narrow func(*store.CustomerListQuery)) (store.CustomerPage, string, error) {
	limit, err := pageSize(first, biPageDefault, biPageMax)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	// A cursor of the id order is not one of the updatedSince order.
	if updatedSince != nil {
		kind += "-since"
	}
	cursor, err := parseListCursor("after", kind, after)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	q := store.CustomerListQuery{OrgID: v.OrgID, ConnectionID: conn.ID, System: system, Modules: modules,
		Order: store.OrderID, After: cursor, Limit: limit, Fields: fieldKeysOf(system, modules)}
	if updatedSince != nil {
		q.Order, q.MirroredFrom = store.OrderMirrored, updatedSince
	}
	if narrow != nil {
		narrow(&q)
	}
	page, err := store.ListCustomerRecords(ctx, r.reads(), q)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	wrapCursors(kind, &page)
	return page, cursor, nil
}

// edgesOf builds a connection's edges from a page: one per record, with
// its cursor.
func edgesOf[E any](page store.CustomerPage, edge func(cursor string, rec store.CustomerRecord) E) []E {
	out := make([]E, 0, len(page.Records))
	for i, rec := range page.Records {
		out = append(out, edge(page.Cursors[i], rec))
	}
	return out
}

// ticketEdges makes a ticket list's edges. A few of a ticket's fields come
// from the record's JSON, which is decoded only when the list's nodes ask
// for one of them: decoding it for every record of a sidebar that shows
// none was a twentieth of the request's CPU. The same holds for notes.
func ticketEdges(ctx context.Context) func(cursor string, rec store.CustomerRecord) *model.TicketEdge {
	decode := nodesSelect(ctx, ticketJSONFields...)
	return func(c string, rec store.CustomerRecord) *model.TicketEdge {
		return &model.TicketEdge{Cursor: c, Node: ticketModelOf(rec, decode)}
	}
}

// nodesSelect reports whether the current connection field's edges' nodes
// select any of names (everything counts outside an operation).
func nodesSelect(ctx context.Context, names ...string) bool {
	return len(selected(ctx, []string{"edges", "node"}, names...)) > 0
}

func dealEdge(c string, rec store.CustomerRecord) *model.DealEdge {
	return &model.DealEdge{Cursor: c, Node: dealModel(rec)}
}

func noteEdges(ctx context.Context) func(cursor string, rec store.CustomerRecord) *model.NoteEdge {
	decode := nodesSelect(ctx, "content")
	return func(c string, rec store.CustomerRecord) *model.NoteEdge {
		return &model.NoteEdge{Cursor: c, Node: noteModelOf(rec, decode)}
	}
}

func activityEdge(c string, rec store.CustomerRecord) *model.ActivityEdge {
	return &model.ActivityEdge{Cursor: c, Node: activityModel(rec)}
}
