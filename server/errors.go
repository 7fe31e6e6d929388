package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/resolvers"
	"github.com/deskbridge/deskbridge/store"
)

// Error codes in extensions.code, beside gqlgen's own
// (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED,
// PERSISTED_QUERY_NOT_FOUND).
const (
	codeUnauthenticated = "UNAUTHENTICATED"
	codeForbidden       = "FORBIDDEN"
	codeNotFound        = "NOT_FOUND"
	codeConflict        = "CONFLICT"
	codeBadUserInput    = "BAD_USER_INPUT"
	codeInternal        = "INTERNAL_SERVER_ERROR"
	codeDepthLimit      = "DEPTH_LIMIT_EXCEEDED"
	codeTimeout         = "TIMEOUT"
	codeBadRequest      = "BAD_REQUEST"
)

// presentError is the single place where Go errors become GraphQL errors:
// sentinels map to codes, and anything unexpected is logged with the request
// id and replaced by a message that leaks neither SQL nor stack traces.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if gqlErr.Extensions != nil && gqlErr.Extensions["code"] != nil {
			return gqlErr // gqlgen's own validation and limit errors
		}
		var input *resolvers.InputError
		var coded codedError
		switch {
		case errors.As(err, &input):
			gqlErr.Message = input.Error()
			setCode(gqlErr, codeBadUserInput)
			gqlErr.Extensions["argument"] = input.Argument
		case errors.As(err, &coded):
			gqlErr.Message = coded.PublicMessage()
			setCode(gqlErr, coded.ErrorCode())
		case errors.Is(err, auth.ErrUnauthenticated):
			gqlErr.Message = publicMessage(err, "authentication required")
			setCode(gqlErr, codeUnauthenticated)
		case errors.Is(err, auth.ErrForbidden):
			gqlErr.Message = "not allowed for this role"
			setCode(gqlErr, codeForbidden)
		case errors.Is(err, store.ErrNotFound):
			gqlErr.Message = "not found"
			setCode(gqlErr, codeNotFound)
		case errors.Is(err, store.ErrConflict):
			gqlErr.Message = "conflicts with existing data"
			var public publicMessager
			if errors.As(err, &public) {
				gqlErr.Message = public.PublicMessage()
			}
			setCode(gqlErr, codeConflict)
		case errors.Is(err, context.DeadlineExceeded):
			gqlErr.Message = "request took too long"
			setCode(gqlErr, codeTimeout)
		case gqlErr.Rule != "" || isArgumentError(ctx):
			setCode(gqlErr, codeBadUserInput)
		case graphql.GetFieldContext(ctx) == nil && errors.As(err, new(*gqlerror.Error)):
			// A request-level error from gqlgen itself (outside any field):
			// the request, not the server, is at fault.
			setCode(gqlErr, codeBadRequest)
		default:
			id := requestID(ctx)
			log.ErrorContext(ctx, "internal error", "request_id", id, "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = fmt.Sprintf("internal error (request id %s)", id)
			setCode(gqlErr, codeInternal)
		}
		return gqlErr
	}
}

// publicMessager is an error that carries a message fit for the caller
// (e.g. syncengine.ConnectionConflictError: "cannot reactivate the
// connection: it is ACTIVE"), used instead of the generic one.
type publicMessager interface {
	error
	PublicMessage() string
}

// codedError is an error that names its own code and message (e.g.
// syncengine.TicketError: FAILED_PRECONDITION "a ticket needs a contact
// with a valid email address...").
type codedError interface {
	publicMessager
	ErrorCode() string
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// publicMessage keeps the reason of an authentication failure ("bearer token
// revoked"), which auth words without anything the caller sent.
func publicMessage(err error, fallback string) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == auth.ErrUnauthenticated {
			reason := strings.TrimSuffix(e.Error(), ": "+auth.ErrUnauthenticated.Error())
			return fallback + ": " + reason
		}
	}
	return fallback
}

// isArgumentError recognises errors gqlgen raises while coercing a field's
// arguments (a malformed DateTime literal, say): the field has arguments but
// none were parsed, because parsing is what failed.
func isArgumentError(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && fc.Args == nil && fc.Field.Field != nil && len(fc.Field.Arguments) > 0
}
