package resolvers

import (
	"context"
	"fmt"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
)

// maxNodes bounds nodes(ids:), like any list argument.
const maxNodes = 100

// loadNode resolves a global id within the caller's org. Ids of other orgs
// and ids that do not parse are NOT_FOUND alike, so probing reveals nothing.
func (r *Resolver) loadNode(ctx context.Context, id string) (model.Node, error) {
	v, err := auth.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	typeName, rowID, ok := parseGlobalID(id)
	if !ok {
		return nil, fmt.Errorf("node %q: %w", id, store.ErrNotFound)
	}
	switch typeName {
	case "Org":
		if rowID != v.OrgID {
			return nil, fmt.Errorf("node %q: %w", id, store.ErrNotFound)
		}
		org, err := store.OrgByID(ctx, r.DB, rowID)
		if err != nil {
			return nil, err
		}
		return orgModel(org), nil
	case "User":
		u, err := store.UserByID(ctx, r.DB, v.OrgID, rowID)
		if err != nil {
			return nil, err
		}
		return userModel(u), nil
	case "ApiToken":
		if rowID != v.TokenID && !v.Can(auth.PermManageTokens) {
			return nil, fmt.Errorf("reading another token: %w", auth.ErrForbidden)
		}
		tok, err := store.APITokenByID(ctx, r.DB, v.OrgID, rowID)
		if err != nil {
			return nil, err
		}
		return tokenModel(tok), nil
	case "Connection":
		c, err := r.ConnectionService.Connection(ctx, v, rowID)
		if err != nil {
			return nil, err
		}
		return connectionModel(c), nil
	case "Signal":
		return r.signalOfViewer(ctx, rowID)
	case "Ticket", "DeskContact", "DeskAccount", "CrmRecord", "Deal", "Note", "Activity":
		return r.loadCustomerNode(ctx, v, id, typeName, rowID)
	}
	return nil, fmt.Errorf("node %q: %w", id, store.ErrNotFound)
}

// customerNodeKinds says, per customer-360 type, which mirror rows it may
// be (system side and modules) and the profile area that must be open.
var customerNodeKinds = map[string]struct {
	desk    bool
	modules []string
	area    auth.Area // "" = desk data, open to every role
}{
	"Ticket":      {true, []string{"tickets"}, ""},
	"DeskContact": {true, []string{"contacts"}, ""},
	"DeskAccount": {true, []string{"accounts"}, ""},
	"CrmRecord":   {false, []string{"leads", "contacts", "accounts", "deals"}, auth.AreaContactInfo},
	"Deal":        {false, []string{"deals"}, auth.AreaDeals},
	"Note":        {false, []string{"notes"}, auth.AreaNotes},
	"Activity":    {false, []string{"calls", "events", "tasks"}, ""},
}

// loadCustomerNode resolves a customer-360 global id: a mirror row of the
// caller's org and current connection, of the kind the id names, that the
// caller's profile lets it read. A row of the wrong kind is NOT_FOUND like
// another org's.
func (r *Resolver) loadCustomerNode(ctx context.Context, v auth.Viewer, id, typeName string, rowID int64) (model.Node, error) {
	conn, err := r.orgConnection(ctx, v)
	if err != nil {
		return nil, err
	}
	rec, err := store.CustomerRecordByID(ctx, r.DB, v.OrgID, rowID)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", id, err)
	}
	kind := customerNodeKinds[typeName]
	if rec.ConnectionID != conn.ID || (rec.System == deskSystem) != kind.desk || !slices.Contains(kind.modules, rec.Module) {
		return nil, fmt.Errorf("node %q: %w", id, store.ErrNotFound)
	}
	area := kind.area
	if typeName == "Activity" {
		area = map[string]auth.Area{"calls": auth.AreaCalls, "events": auth.AreaEvents, "tasks": auth.AreaTasks}[rec.Module]
	}
	if area != "" && !v.CanSee(area) {
		return nil, forbidden(string(area))
	}
	if rec.Module == "deals" && !v.CanSee(auth.AreaDeals) { // a deal seen as a CrmRecord
		return nil, forbidden(string(auth.AreaDeals))
	}
	switch typeName {
	case "Ticket":
		return ticketModel(rec), nil
	case "DeskContact":
		return deskContactModel(rec), nil
	case "DeskAccount":
		return deskAccountModel(rec), nil
	case "CrmRecord":
		return crmRecordModel(rec), nil
	case "Deal":
		return dealModel(rec), nil
	case "Note":
		return noteModel(rec), nil
	}
	return activityModel(rec), nil
}

// addIndexedError reports err at the given index of the current list field,
// leaving the other items intact.
func addIndexedError(ctx context.Context, i int, err error) {
	path := append(graphql.GetPath(ctx), ast.PathIndex(i))
	graphql.AddError(ctx, gqlerror.WrapPath(path, err))
}
