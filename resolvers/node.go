package resolvers

import (
	"context"
	"fmt"

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
	}
	return nil, fmt.Errorf("node %q: %w", id, store.ErrNotFound)
}

// addIndexedError reports err at the given index of the current list field,
// leaving the other items intact.
func addIndexedError(ctx context.Context, i int, err error) {
	path := append(graphql.GetPath(ctx), ast.PathIndex(i))
	graphql.AddError(ctx, gqlerror.WrapPath(path, err))
}
