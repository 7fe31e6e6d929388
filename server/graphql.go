package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph"
	"github.com/deskbridge/deskbridge/resolvers"
	"github.com/deskbridge/deskbridge/server/wstransport"
	"github.com/deskbridge/deskbridge/store"
)

// closeTokenRevoked ends WebSocket connections whose token was revoked; 4403
// tells graphql-ws clients the credential is no good.
const closeTokenRevoked = 4403

// graphqlDeps is what the GraphQL handler is built from.
type graphqlDeps struct {
	cfg       Config
	log       *slog.Logger
	resolvers *resolvers.Resolver
	auth      *auth.Authenticator
	metrics   *metrics
	conns     *connRegistry
}

// newGraphQL builds the /graphql handler: explicit transports (never gqlgen's
// deprecated default server), limits, and the error presenter.
func newGraphQL(d graphqlDeps) (*handler.Server, *wstransport.Transport) {
	cfg := graph.Config{Resolvers: d.resolvers}
	listComplexity(&cfg.Complexity)
	srv := handler.New(graph.NewExecutableSchema(cfg))

	ws := wstransport.New(wstransport.Config{
		AllowedOrigins: d.cfg.AllowedOrigins,
		InitFunc:       d.initWebSocket,
		Logger:         d.log,
		Hooks: wstransport.Hooks{
			OnConnect: func(string) { d.metrics.wsConnections.Inc() },
			OnClose: func(code int) {
				d.metrics.wsConnections.Dec()
				d.metrics.wsCloses.WithLabelValues(statusLabel(code)).Inc()
			},
			OnSubscribe:          func() { d.metrics.subscriptions.Inc() },
			OnUnsubscribe:        func() { d.metrics.subscriptions.Dec() },
			OnSubscriptionResult: func() { d.metrics.eventsDelivered.Inc() },
		},
	})
	srv.AddTransport(ws)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// Each operation gets its own cache of what it read of the mirror, so
	// a list's nested fields are served from rows fetched in one query.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(resolvers.WithRequestCache(ctx))
	})
	// A subscription's events each read the mirror afresh: the operation's
	// cache would hand the second event the ticket as the first one saw it.
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if graphql.HasOperationContext(ctx) && graphql.GetOperationContext(ctx).Operation != nil &&
			graphql.GetOperationContext(ctx).Operation.Operation == ast.Subscription {
			ctx = resolvers.WithRequestCache(ctx)
		}
		return next(ctx)
	})
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	// Depth first: a deep query is refused for its depth, which says more
	// than the complexity it adds up to.
	srv.Use(depthLimit{max: d.cfg.MaxDepth})
	srv.Use(extension.FixedComplexityLimit(d.cfg.MaxComplexity))
	srv.Use(graphqlMetrics{m: d.metrics})
	srv.SetErrorPresenter(presentError(d.log))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		d.log.ErrorContext(ctx, "panic in resolver", "request_id", requestID(ctx), "panic", p)
		return fmt.Errorf("panic: %v", p) // presented as INTERNAL_SERVER_ERROR
	})
	return srv, ws
}

// initWebSocket authenticates a WebSocket from its connection_init payload
// (Authorization, authorization, authToken or token), falling back to an
// Authorization header on the upgrade request. A failure closes the socket
// 4403; the ack never echoes the payload.
func (d graphqlDeps) initWebSocket(ctx context.Context, payload transport.InitPayload) (context.Context, error) {
	secret := ""
	for _, key := range []string{"Authorization", "authorization", "authToken", "token"} {
		if s := payload.GetString(key); s != "" {
			secret = auth.BearerToken(s)
			break
		}
	}
	var v auth.Viewer
	var err error
	if secret != "" {
		v, err = d.auth.Authenticate(ctx, secret)
	} else {
		v, err = auth.FromContext(ctx) // set from the upgrade request's header
	}
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthenticated) {
			d.log.ErrorContext(ctx, "authenticating websocket", "request_id", requestID(ctx), "err", err)
		}
		return ctx, err
	}
	ctx = auth.WithViewer(ctx, v)
	d.conns.add(ctx, v.TokenID)
	return ctx, nil
}

// connRegistry remembers which WebSocket connections each token opened, so
// revoking a token closes them on every replica (each hears TOKEN_REVOKED
// through the event bus).
type connRegistry struct {
	mu      sync.Mutex
	byToken map[int64]map[*context.Context]struct{}
}

func newConnRegistry() *connRegistry {
	return &connRegistry{byToken: map[int64]map[*context.Context]struct{}{}}
}

func (c *connRegistry) add(ctx context.Context, tokenID int64) {
	key := &ctx
	c.mu.Lock()
	if c.byToken[tokenID] == nil {
		c.byToken[tokenID] = map[*context.Context]struct{}{}
	}
	c.byToken[tokenID][key] = struct{}{}
	c.mu.Unlock()
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.byToken[tokenID], key)
		if len(c.byToken[tokenID]) == 0 {
			delete(c.byToken, tokenID)
		}
	})
}

// onEvent closes the connections of a revoked token. It runs on the event
// bus's dispatch goroutine, so it only signals and never waits.
func (c *connRegistry) onEvent(ev store.Event) {
	if ev.Type != auth.EventTokenRevoked || ev.SubjectID == nil {
		return
	}
	var tokenID int64
	if _, err := fmt.Sscanf(*ev.SubjectID, "ApiToken:%d", &tokenID); err != nil {
		return
	}
	c.mu.Lock()
	conns := make([]context.Context, 0, len(c.byToken[tokenID]))
	for key := range c.byToken[tokenID] {
		conns = append(conns, *key)
	}
	c.mu.Unlock()
	for _, ctx := range conns {
		wstransport.CloseConn(ctx, closeTokenRevoked, "token revoked")
	}
}

// graphqlRoute wraps the handler with the request limits and authentication.
func graphqlRoute(d graphqlDeps, srv http.Handler) http.Handler {
	return limitRequests(d.cfg.MaxBodyBytes, d.cfg.RequestTimeout, authenticate(d.auth, d.log, conformHTTP(srv)))
}
