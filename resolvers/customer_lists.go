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
	switch k.Lead {
	case "ACCOUNT":
		return ticketScope{accounts: nonEmptyIDs(k.DeskAccountID)}, nil
	case "LEAD":
		if k.Email == "" {
			return ticketScope{}, nil
		}
		people, err := store.CustomerRecordsByEmail(ctx, r.DB, v.OrgID, conn.ID, deskSystem, "contacts", k.Email, 20)
		if err != nil {
			return ticketScope{}, err
		}
		var s ticketScope
		for _, p := range people {
			s.contacts = append(s.contacts, p.ExtID)
		}
		return s, nil
	}
	return ticketScope{contacts: nonEmptyIDs(k.DeskContactID)}, nil
}

func nonEmptyIDs(ids ...string) []string {
	return slices.DeleteFunc(ids, func(s string) bool { return s == "" })
}

// tickets lists the tickets of a scope, then loads every listed ticket's
// contact and account in one query each, so the page's nested fields cost
// no further round trips.
func (r *Resolver) tickets(ctx context.Context, v auth.Viewer, conn store.Connection, scope ticketScope, first *int, after *string, filter *model.TicketFilter, orderBy *model.TicketOrder) (*model.TicketConnection, error) {
	limit, err := pageSize(first, customerPageDefault, customerPageMax)
	if err != nil {
		return nil, err
	}
	cursor, err := parseListCursor("after", "tickets", after)
	if err != nil {
		return nil, err
	}
	q := store.CustomerListQuery{OrgID: v.OrgID, ConnectionID: conn.ID, System: deskSystem, Modules: []string{"tickets"},
		ContactRefs: scope.contacts, AccountRefs: scope.accounts, RefsGiven: true, Order: store.OrderCreatedDesc,
		After: cursor, Limit: limit}
	if orderBy != nil {
		switch *orderBy {
		case model.TicketOrderCreatedAsc:
			q.Order = store.OrderCreatedAsc
		case model.TicketOrderDueAsc:
			q.Order = store.OrderAtAsc
		}
	}
	applyTicketFilter(&q, filter)
	page, err := store.ListCustomerRecords(ctx, r.DB, q)
	if err != nil {
		return nil, err
	}
	var contacts, accounts []string
	for _, t := range page.Records {
		contacts = append(contacts, deref(t.ContactRef))
		accounts = append(accounts, deref(t.AccountRef))
	}
	if err := r.prefetch(ctx, v, conn, deskSystem, "contacts", contacts); err != nil {
		return nil, err
	}
	if err := r.prefetch(ctx, v, conn, deskSystem, "accounts", accounts); err != nil {
		return nil, err
	}
	wrapCursors("tickets", &page)
	return &model.TicketConnection{PageInfo: customerPageInfo(page, cursor), Edges: edgesOf(page, ticketEdge)}, nil
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

// ticketCounts counts a scope's tickets in one aggregate.
func (r *Resolver) ticketCounts(ctx context.Context, v auth.Viewer, conn store.Connection, scope ticketScope) (*model.TicketCounts, error) {
	c, err := store.CountTickets(ctx, r.DB, v.OrgID, conn.ID, deskSystem, scope.contacts, scope.accounts)
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

// crmList pages one or more CRM modules of a customer.
func (r *Resolver) crmList(ctx context.Context, v auth.Viewer, k store.CustomerKey, kind string, modules []string, first *int, after *string, order store.CustomerOrder, narrow func(*store.CustomerListQuery)) (store.CustomerPage, string, error) {
	limit, err := pageSize(first, customerPageDefault, customerPageMax)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	cursor, err := parseListCursor("after", kind, after)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	q := store.CustomerListQuery{OrgID: v.OrgID, ConnectionID: k.ConnectionID, System: k.CRMSystem, Modules: modules,
		Order: order, After: cursor, Limit: limit}
	if !crmScope(k, &q) {
		return store.CustomerPage{}, cursor, nil
	}
	if narrow != nil {
		narrow(&q)
	}
	page, err := store.ListCustomerRecords(ctx, r.DB, q)
	if err != nil {
		return store.CustomerPage{}, "", err
	}
	wrapCursors(kind, &page)
	return page, cursor, nil
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
		Order: store.OrderID, After: cursor, Limit: limit}
	if updatedSince != nil {
		q.Order, q.MirroredFrom = store.OrderMirrored, updatedSince
	}
	if narrow != nil {
		narrow(&q)
	}
	page, err := store.ListCustomerRecords(ctx, r.DB, q)
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

func ticketEdge(c string, rec store.CustomerRecord) *model.TicketEdge {
	return &model.TicketEdge{Cursor: c, Node: ticketModel(rec)}
}

func dealEdge(c string, rec store.CustomerRecord) *model.DealEdge {
	return &model.DealEdge{Cursor: c, Node: dealModel(rec)}
}

func noteEdge(c string, rec store.CustomerRecord) *model.NoteEdge {
	return &model.NoteEdge{Cursor: c, Node: noteModel(rec)}
}

func activityEdge(c string, rec store.CustomerRecord) *model.ActivityEdge {
	return &model.ActivityEdge{Cursor: c, Node: activityModel(rec)}
}
