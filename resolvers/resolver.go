// Package resolvers implements the GraphQL schema: thin functions that parse
// arguments, check the caller's permission, call store/, auth/ or eventbus/,
// and convert results to the generated models. Subscription fan-out lives in
// eventbus/, not here.
package resolvers

//go:generate go run ../cmd/graphgen

import (
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/syncengine"
)

// Resolver holds what every resolver needs; server/ builds it once.
type Resolver struct {
	DB  *sqlx.DB
	Bus *eventbus.Bus
	Log *slog.Logger
	// ConnectionService makes and changes CRM connections (SPEC A).
	ConnectionService *syncengine.ConnectionService
	// TicketService does ticket work from the CRM side (SPEC E1-E3).
	TicketService *syncengine.TicketService
	// KBService is the knowledge-base sync desk -> chat (SPEC F2).
	KBService *syncengine.KBService
	// ChatService links SalesIQ and turns chats into tickets (SPEC A5, F1,
	// F3-F9).
	ChatService *syncengine.ChatService
	// ApprovalURL is the CRM admin's approval page for an access request's
	// code (A2), on the gateway's public URL.
	ApprovalURL func(code string) string
}
