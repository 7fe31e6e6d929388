package server

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/graph"
	"github.com/deskbridge/deskbridge/graph/model"
)

// listComplexity makes a list field cost its page size times its children,
// so `first: 500` of something expensive is refused before it runs.
// gqlgen otherwise counts a list like a single object.
func listComplexity(c *graph.ComplexityRoot) {
	pageOf := func(first *int, def int) int {
		if first != nil && *first > 0 {
			return *first
		}
		return def
	}
	c.Query.APITokens = func(child int, first *int, _ *string, _ *bool) int { return 1 + pageOf(first, 50)*child }
	c.Query.Events = func(child int, first *int, _ *string, _ []model.EventType) int { return 1 + pageOf(first, 100)*child }
	c.Query.Nodes = func(child int, ids []string) int { return 1 + len(ids)*child }

	// Customer 360: the sidebar's lists (default 20) and the BI lists
	// (default 100, up to 500 a page).
	tickets := func(child int, first *int, _ *string, _ *model.TicketFilter, _ *model.TicketOrder) int {
		return 1 + pageOf(first, 20)*child
	}
	c.CrmRecord.Tickets, c.DeskContact.Tickets, c.DeskAccount.Tickets, c.Customer.Tickets = tickets, tickets, tickets, tickets
	c.Customer.Deals = func(child int, first *int, _ *string, _ *model.DealFilter, _ *model.DealOrder) int {
		return 1 + pageOf(first, 20)*child
	}
	c.Customer.Notes = func(child int, first *int, _ *string, _ *model.DateRangeFilter) int {
		return 1 + pageOf(first, 20)*child
	}
	c.Customer.Activities = func(child int, first *int, _ *string, _ *model.ActivityFilter) int {
		return 1 + pageOf(first, 20)*child
	}
	c.Query.ClassifiedTickets = func(child int, _ *string, first *int, _ *string) int { return 1 + pageOf(first, 20)*child }
	bi := func(child int, first *int) int { return 1 + pageOf(first, 100)*child }
	c.Query.Tickets = func(child int, first *int, _ *string, _ *time.Time, _ *model.TicketFilter) int {
		return bi(child, first)
	}
	c.Query.DeskContacts = func(child int, first *int, _ *string, _ *time.Time) int { return bi(child, first) }
	c.Query.DeskAccounts = func(child int, first *int, _ *string, _ *time.Time) int { return bi(child, first) }
	c.Query.Deals = func(child int, first *int, _ *string, _ *time.Time) int { return bi(child, first) }
	c.Query.Notes = func(child int, first *int, _ *string, _ *time.Time) int { return bi(child, first) }
	c.Query.CrmRecords = func(child int, _ model.CrmModule, first *int, _ *string, _ *time.Time) int { return bi(child, first) }
	c.Query.Activities = func(child int, _ []model.ActivityKind, first *int, _ *string, _ *time.Time) int {
		return bi(child, first)
	}
	// A ticket's conversation is read from the desk itself: each costs a
	// vendor call, priced so a list of tickets cannot fan out into a
	// hundred of them.
	conversation := func(child int, first *int) int { return vendorCall + pageOf(first, 20)*child }
	c.Ticket.Threads, c.Ticket.Comments = conversation, conversation
	c.Query.Signals = func(child int, first *int, _ *string, _ *bool) int { return 1 + pageOf(first, 20)*child }

	// The KB sync (SPEC F2): runs and failures are pages from the
	// database; categories and departments are read from the vendors.
	c.Query.KbSyncRuns = func(child int, _ string, first *int, _ *string) int { return 1 + pageOf(first, 20)*child }
	c.Query.KbSyncFailures = func(child int, _ string, _ *bool, first *int, _ *string) int {
		return 1 + pageOf(first, 50)*child
	}
	c.Query.KbDeskCategories = func(child int, _ string) int { return vendorCall + 200*child }
	c.Query.KbChatDepartments = func(child int, _ string) int { return vendorCall + 20*child }

	// Chat (schema/chat.graphqls): the window's lists are pages of the
	// mirror; the conversation, its transcript, the visitor panel, a
	// ticket's chat transcript and the portal lists call a vendor.
	c.ChatConversation.RecentTickets = func(child int, first *int, _ *model.ChatTicketScope) int { return 1 + pageOf(first, 5)*child }
	c.ChatConversation.SearchTickets = func(child int, _ string, _ *model.ChatTicketScope, first *int) int {
		return 1 + pageOf(first, 20)*child
	}
	c.Query.ChatConversation = func(child int, _ string) int { return vendorCall + child }
	c.ChatConversation.Transcript = func(child int) int { return vendorCall + 100*child }
	c.ChatConversation.VisitorPanel = func(child int) int { return 2*vendorCall + child }
	c.Ticket.ChatTranscript = func(child int) int { return vendorCall + 100*child }
	c.Query.SalesIQPortals = func(child int, _ model.ZohoCredentialsInput) int { return vendorCall + 10*child }
	c.Query.ChatDeskPortals = func(child int) int { return vendorCall + 10*child }
	c.ChatLink.DepartmentMappings = func(child int, _ *bool) int { return vendorCall + 50*child }
}

// vendorCall is the complexity of a field that calls a vendor's API.
const vendorCall = 100

// depthLimit refuses operations nested deeper than max levels, counting
// through fragments; complexity alone would let a narrow, very deep query
// through.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, map[string]bool{}); depth > d.max {
		err := gqlerror.Errorf("operation is nested %d levels deep, more than the limit of %d", depth, d.max)
		err.Extensions = map[string]any{"code": codeDepthLimit}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, depth int, visiting map[string]bool) int {
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.SelectionSet) == 0 {
				d = depth + 1
			} else {
				d = selectionDepth(s.SelectionSet, depth+1, visiting)
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, visiting)
		case *ast.FragmentSpread:
			// Validation has already refused fragment cycles; the guard
			// keeps this function safe on its own.
			if s.Definition == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, depth, visiting)
			delete(visiting, s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}
