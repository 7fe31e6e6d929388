package resolvers

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
)

// Reading ahead (issue 5 item 9): a field that answers a customer picture
// looks at what the operation asks of that picture and reads every list
// and count of it in one statement (store.ReadCustomerBatch). The list
// fields then find their page in the request cache under the exact query
// they would have made, so a sidebar's SQL does not grow with its lists or
// their number. The read-ahead is only an optimisation: a field whose query
// was not read ahead (arguments it could not decode, a scope that needs a
// lookup first) runs its own query, with the same result.

// listKey names a list query in the request cache; equal keys are equal
// queries.
func listKey(q any) string {
	raw, err := json.Marshal(q)
	if err != nil {
		return ""
	}
	return string(raw)
}

// customerPage is one page of q: read ahead by a parent, or read now.
func (r *Resolver) customerPage(ctx context.Context, q store.CustomerListQuery) (store.CustomerPage, error) {
	c := cacheOf(ctx)
	if page, ok := readAhead(c, &c.pages, q); ok {
		return page, nil
	}
	return store.ListCustomerRecords(ctx, r.reads(), q)
}

// customerCounts is the ticket counts of q: read ahead by a parent, or
// counted now.
func (r *Resolver) customerCounts(ctx context.Context, q store.TicketCountQuery) (store.TicketCounts, error) {
	c := cacheOf(ctx)
	if counts, ok := readAhead(c, &c.counts, q); ok {
		return counts, nil
	}
	return store.CountTickets(ctx, r.reads(), q.OrgID, q.ConnectionID, q.DeskSystem, q.ContactRefs, q.AccountRefs)
}

// readAhead finds what a parent read ahead for query q in one of the
// cache's maps. Most operations read nothing ahead, so the key is built
// only when the map holds something.
func readAhead[T any](c *requestCache, m *map[string]T, q any) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(*m) == 0 {
		var none T
		return none, false
	}
	v, ok := (*m)[listKey(q)]
	return v, ok
}

// childFields are the fields the operation selects on the current field's
// value (through fragments, honouring @skip and @include); ok is false
// outside a GraphQL operation.
func childFields(ctx context.Context, set ast.SelectionSet) ([]graphql.CollectedField, bool) {
	if !graphql.HasOperationContext(ctx) {
		return nil, false
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return nil, false
	}
	if set == nil {
		set = fc.Field.Selections
	}
	return graphql.CollectFields(graphql.GetOperationContext(ctx), set, nil), true
}

// selected reports which of names the operation selects under the current
// field, following path (e.g. "edges", "node"). Outside an operation every
// name counts as selected.
func selected(ctx context.Context, path []string, names ...string) map[string]bool {
	out := map[string]bool{}
	fields, ok := childFields(ctx, nil)
	if !ok {
		for _, n := range names {
			out[n] = true
		}
		return out
	}
	for _, step := range path {
		var next ast.SelectionSet
		for _, f := range fields {
			if f.Name == step {
				next = append(next, f.Selections...)
			}
		}
		if len(next) == 0 {
			return out
		}
		fields, _ = childFields(ctx, next)
	}
	for _, f := range fields {
		if slices.Contains(names, f.Name) {
			out[f.Name] = true
		}
	}
	return out
}

// fieldArgs decodes a selected field's arguments (with their defaults and
// the operation's variables) into args; false when they do not decode.
func fieldArgs(ctx context.Context, f graphql.CollectedField, args any) (ok bool) {
	defer func() {
		if recover() != nil { // ArgumentMap panics on values validation refused
			ok = false
		}
	}()
	raw, err := json.Marshal(f.ArgumentMap(graphql.GetOperationContext(ctx).Variables))
	return err == nil && json.Unmarshal(raw, args) == nil
}

// customerAnswer is what a field answering a customer picture returns:
// the picture, with every list and count the operation asks of it read
// ahead in one statement.
func (r *Resolver) customerAnswer(ctx context.Context, v auth.Viewer, conn store.Connection, cust *model.Customer, err error) (*model.Customer, error) {
	if err != nil || cust == nil {
		return cust, err
	}
	r.prefetchCustomerLists(ctx, v, conn, cust.Key)
	return cust, nil
}

// prefetchCustomerLists reads ahead the lists and counts the operation asks
// of the customer picture k, with the queries the list fields themselves
// build (and only those the caller's profile shows). A failed read-ahead is
// logged and left to the fields, which then query (and fail) on their own
// paths.
func (r *Resolver) prefetchCustomerLists(ctx context.Context, v auth.Viewer, conn store.Connection, k store.CustomerKey) {
	fields, ok := childFields(ctx, nil)
	if !ok {
		return
	}
	var batch store.CustomerBatch
	list := func(q store.CustomerListQuery, ok bool, err error) {
		if err == nil && ok {
			batch.Lists = append(batch.Lists, q)
		}
	}
	for _, f := range fields {
		switch f.Name {
		case "deals":
			var a struct {
				First   *int              `json:"first"`
				After   *string           `json:"after"`
				Filter  *model.DealFilter `json:"filter"`
				OrderBy *model.DealOrder  `json:"orderBy"`
			}
			if v.CanSee(auth.AreaDeals) && fieldArgs(ctx, f, &a) {
				order, narrow := dealListArgs(a.Filter, a.OrderBy)
				q, _, ok, err := crmListQuery(v, k, "deals", []string{"deals"}, a.First, a.After, order, narrow)
				list(q, ok, err)
			}
		case "notes":
			var a struct {
				First  *int                   `json:"first"`
				After  *string                `json:"after"`
				Filter *model.DateRangeFilter `json:"filter"`
			}
			if v.CanSee(auth.AreaNotes) && fieldArgs(ctx, f, &a) {
				q, _, ok, err := crmListQuery(v, k, "notes", []string{"notes"}, a.First, a.After, store.OrderCreatedDesc, noteListNarrow(a.Filter))
				list(q, ok, err)
			}
		case "activities":
			var a struct {
				First  *int                  `json:"first"`
				After  *string               `json:"after"`
				Filter *model.ActivityFilter `json:"filter"`
			}
			if fieldArgs(ctx, f, &a) {
				var asked []model.ActivityKind
				if a.Filter != nil {
					asked = a.Filter.Kinds
				}
				if modules, _ := activityModules(v, asked); len(modules) > 0 {
					q, _, ok, err := crmListQuery(v, k, "activities", modules, a.First, a.After, store.OrderCreatedDesc, activityListNarrow(a.Filter))
					list(q, ok, err)
				}
			}
		case "tickets":
			var a struct {
				First   *int                `json:"first"`
				After   *string             `json:"after"`
				Filter  *model.TicketFilter `json:"filter"`
				OrderBy *model.TicketOrder  `json:"orderBy"`
			}
			if scope, known := knownTicketScope(k); known && fieldArgs(ctx, f, &a) {
				q, _, err := ticketListQuery(v, conn, scope, a.First, a.After, a.Filter, a.OrderBy)
				list(q, true, err)
			}
		case "ticketCounts":
			if scope, known := knownTicketScope(k); known {
				batch.Counts = append(batch.Counts, ticketCountQuery(v, conn, scope))
			}
		}
	}
	if len(batch.Lists)+len(batch.Counts) < 2 {
		return // one query gains nothing from reading ahead
	}
	pages, counts, err := store.ReadCustomerBatch(ctx, r.reads(), batch)
	if err != nil {
		if r.Log != nil {
			r.Log.WarnContext(ctx, "reading a customer's lists ahead", "err", err)
		}
		return
	}
	c := cacheOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range batch.Lists {
		if key := listKey(q); key != "" {
			c.pages[key] = pages[i]
		}
	}
	for i, q := range batch.Counts {
		if key := listKey(q); key != "" {
			c.counts[key] = counts[i]
		}
	}
}

// knownTicketScope is ticketScopeOf for the pictures whose ticket scope
// needs no lookup (all but those led by a lead).
func knownTicketScope(k store.CustomerKey) (ticketScope, bool) {
	switch k.Lead {
	case "LEAD":
		return ticketScope{}, false
	case "ACCOUNT":
		return ticketScope{accounts: nonEmptyIDs(k.DeskAccountID)}, true
	}
	return ticketScope{contacts: nonEmptyIDs(k.DeskContactID)}, true
}

// prefetchContactRefs loads, for a list of desk contacts, what its nodes'
// fields will read: with `customer`, the contacts' neighbourhood; with
// `account`, their accounts.
func (r *Resolver) prefetchContactRefs(ctx context.Context, v auth.Viewer, conn store.Connection, contacts []store.CustomerRecord) error {
	if len(contacts) == 0 {
		return nil
	}
	asked := selected(ctx, []string{"edges", "node"}, "account", "customer")
	var ids, accounts []string
	for _, c := range contacts {
		ids = append(ids, c.ExtID)
		accounts = append(accounts, deref(c.AccountRef))
	}
	if asked["customer"] {
		return r.loadNeighbourhood(ctx, v, conn, nil, ids, nil)
	}
	if asked["account"] {
		return r.prefetch(ctx, v, conn, deskSystem, "accounts", accounts)
	}
	return nil
}

// prefetchAccountRefs loads, for a list of desk accounts whose nodes ask
// for `customer`, the accounts' neighbourhood.
func (r *Resolver) prefetchAccountRefs(ctx context.Context, v auth.Viewer, conn store.Connection, accounts []store.CustomerRecord) error {
	if len(accounts) == 0 || !selected(ctx, []string{"edges", "node"}, "customer")["customer"] {
		return nil
	}
	ids := make([]string, len(accounts))
	for i, a := range accounts {
		ids[i] = a.ExtID
	}
	return r.loadNeighbourhood(ctx, v, conn, nil, nil, ids)
}

// prefetchCRMLinks loads, for a page of CRM records whose nodes ask for
// `customer`, `tickets` or `ticketCounts`, the links of their contacts and
// accounts in two statements (and, for `customer`, their CRM contacts and
// accounts), so each node's customer is built from the cache instead of
// lookups per record.
func (r *Resolver) prefetchCRMLinks(ctx context.Context, v auth.Viewer, conn store.Connection, recs []store.CustomerRecord) error {
	asked := selected(ctx, []string{"edges", "node"}, "customer", "tickets", "ticketCounts")
	if len(recs) == 0 || !(asked["customer"] || asked["tickets"] || asked["ticketCounts"]) {
		return nil
	}
	var contacts, accounts []string
	for _, rec := range recs {
		switch rec.Module {
		case "contacts":
			contacts = append(contacts, rec.ExtID)
		case "accounts":
			accounts = append(accounts, rec.ExtID)
		case "deals":
			contacts = append(contacts, deref(rec.ContactRef))
		}
		accounts = append(accounts, deref(rec.AccountRef))
	}
	c := cacheOf(ctx)
	// The page's records are what their customers' crmContact or
	// crmAccount read.
	c.mu.Lock()
	for i := range recs {
		rec := &recs[i]
		c.records[recordKey{rec.System, rec.Module, rec.ExtID}] = rec
	}
	c.mu.Unlock()
	if asked["customer"] {
		if err := r.prefetch(ctx, v, conn, conn.CRMSystem, "accounts", nonEmptyIDs(accounts...)); err != nil {
			return err
		}
		if err := r.prefetch(ctx, v, conn, conn.CRMSystem, "contacts", nonEmptyIDs(contacts...)); err != nil {
			return err
		}
	}
	for module, ids := range map[string][]string{"contacts": nonEmptyIDs(contacts...), "accounts": nonEmptyIDs(accounts...)} {
		if len(ids) == 0 {
			continue
		}
		links, err := store.LinksByCRMIDs(ctx, r.reads(), v.OrgID, conn.ID, module, ids)
		if err != nil {
			return err
		}
		c.mu.Lock()
		for _, id := range ids {
			desk := links[id].DeskID // "" when unlinked: known to have none
			c.links[linkKey{module, "crm", id}] = desk
			if desk != "" {
				c.links[linkKey{module, "desk", desk}] = id
			}
		}
		c.mu.Unlock()
	}
	return nil
}
