package salesiq

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/oauth"
)

// Error codes. See the package documentation for which are the vendor's and
// which this fake chose.
const (
	CodeUnknownAuth    = 1001
	CodeInvalidHeader  = 1002
	CodeInvalidToken   = 1003
	CodeInvalidMethod  = 1004
	CodeInvalidPortal  = 1005
	CodeInvalidURL     = 1006
	CodeScope          = 1007
	CodeRateLimited    = 1008
	CodeInvalidValue   = 1010
	CodeInvalidJSON    = 1011
	CodeNotFound       = 1012
	CodeNotPermitted   = 1013
	CodeDuplicate      = 1014
	CodeNoVisitor      = 2310
	CodeNoConvVisitor  = 2311
	maxLimit           = 99
	defaultLimit       = 20
	maxRequestBodySize = 1 << 20
)

// apiError is the "error" object of a response. The optional keys name the
// offending query parameter, body field or header, as the vendor does.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	JSONKey string `json:"json_key,omitempty"`
	Header  string `json:"header,omitempty"`
}

func badParam(name, why string) *apiError {
	return &apiError{Code: CodeInvalidValue, Message: fmt.Sprintf("Invalid value for param %s: %s", name, why), Param: name}
}

func badField(name, why string) *apiError {
	return &apiError{Code: CodeInvalidValue, Message: fmt.Sprintf("Invalid value for %s: %s", name, why), JSONKey: name}
}

func missing(kind, id string) *apiError {
	return &apiError{Code: CodeNotFound, Message: fmt.Sprintf("No %s found for id %s", kind, id)}
}

// reply is a handler's successful result.
type reply struct {
	object string // "list" for lists, else the resource type
	data   any
}

// call is one authorized request.
type call struct {
	r     *http.Request
	grant oauth.Grant
}

type handlerFunc func(c *call) (reply, *apiError)

// route registers an API endpoint: it checks the token (for this data
// center), the scope SalesIQ.{area}.{op} and the screen name before h runs,
// and writes either envelope with HTTP 200.
func (s *Server) route(mux *http.ServeMux, pattern, area, op string, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		grant, aerr := s.authorize(r, area, op)
		if aerr == nil {
			if screen := r.PathValue("screen"); screen != "" && screen != s.screen {
				aerr = &apiError{Code: CodeInvalidPortal, Message: "Invalid portal or wrong screen name."}
			}
		}
		if aerr != nil {
			s.log.Debug("salesiq request refused", "method", r.Method, "path", r.URL.Path, "code", aerr.Code)
			writeError(w, aerr)
			return
		}
		rep, aerr := h(&call{r: r, grant: grant})
		if aerr != nil {
			s.log.Debug("salesiq request failed", "method", r.Method, "path", r.URL.Path, "code", aerr.Code, "message", aerr.Message)
			writeError(w, aerr)
			return
		}
		body := map[string]any{"url": r.URL.Path, "object": rep.object, "data": rep.data}
		if rep.object == "list" && r.Method == http.MethodGet {
			body["sync_time"] = s.now().UnixMilli()
		}
		writeJSON(w, http.StatusOK, body)
	})
}

// notRouted answers every request no endpoint matched: 1004 when the path
// exists for another method, 1006 otherwise.
func notRouted(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				writeError(w, &apiError{Code: CodeInvalidMethod, Message: "Invalid Request Type."})
				return
			}
		}
		writeError(w, &apiError{Code: CodeInvalidURL, Message: "Invalid URL"})
	}
}

func (s *Server) authorize(r *http.Request, area, op string) (oauth.Grant, *apiError) {
	if s.reg == nil {
		return oauth.Grant{}, &apiError{Code: CodeUnknownAuth, Message: "Unknown authentication error, Contact SalesIQ Team!"}
	}
	grant, err := s.reg.Check(r.Header.Get("Authorization"), s.dc)
	switch {
	case errors.Is(err, oauth.ErrMissing):
		return grant, &apiError{Code: CodeInvalidHeader, Message: "Invalid authorization header.", Header: "Authorization"}
	case errors.Is(err, oauth.ErrExpired):
		return grant, &apiError{Code: CodeInvalidToken, Message: "OAuth access token expired.", Header: "Authorization"}
	case err != nil:
		return grant, &apiError{Code: CodeInvalidToken, Message: "Invalid OAuth access token.", Header: "Authorization"}
	}
	if !hasScope(grant.Scopes, area, op) {
		return grant, &apiError{Code: CodeScope, Message: fmt.Sprintf("OAuth scope SalesIQ.%s.%s is required", area, op)}
	}
	return grant, nil
}

// hasScope accepts SalesIQ.{area}.{op} and SalesIQ.{area}.ALL, in any case.
func hasScope(scopes []string, area, op string) bool {
	for _, sc := range scopes {
		parts := strings.Split(sc, ".")
		if len(parts) != 3 || !strings.EqualFold(parts[0], "SalesIQ") || !strings.EqualFold(parts[1], area) {
			continue
		}
		if strings.EqualFold(parts[2], "ALL") || strings.EqualFold(parts[2], op) {
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, http.StatusOK, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON object body into v.
func decodeBody(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBodySize))
	if err != nil {
		return &apiError{Code: CodeInvalidJSON, Message: "Could not read the request body"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badField(typeErr.Field, "wrong type")
		}
		return &apiError{Code: CodeInvalidJSON, Message: "Invalid JSON in the request body"}
	}
	return nil
}

// paging reads page (or index) and limit.
func paging(q url.Values) (page, limit int, aerr *apiError) {
	page, limit = 1, defaultLimit
	for _, name := range []string{"index", "page"} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, 0, badParam(name, "must be a positive integer")
			}
			page = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, badParam("limit", fmt.Sprintf("must be between 1 and %d", maxLimit))
		}
		limit = n
	}
	return page, limit, nil
}

// pageOf cuts one page out of items.
func pageOf[T any](items []T, page, limit int) []T {
	start := (page - 1) * limit
	if start >= len(items) {
		return []T{}
	}
	end := min(start+limit, len(items))
	return items[start:end]
}

// msParam reads an epoch-millisecond query parameter; ok is false when it
// is absent.
func msParam(q url.Values, name string) (t time.Time, ok bool, aerr *apiError) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, false, badParam(name, "must be epoch milliseconds")
	}
	return time.UnixMilli(n), true, nil
}

// responder writes the fault injector's answers in SalesIQ's format.
type responder struct{}

// RateLimited answers HTTP 429: SalesIQ documents no rate-limit response,
// and a status a client cannot mistake is the safer fake.
func (responder) RateLimited(w http.ResponseWriter, retryAfter time.Duration, _ int) {
	secs := max(int(math.Ceil(retryAfter.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": &apiError{
		Code: CodeRateLimited, Message: fmt.Sprintf("API rate limit exceeded, try again after %d seconds", secs),
	}})
}

// ServerError is the documented general error, with HTTP 200 like every
// other SalesIQ answer.
func (responder) ServerError(w http.ResponseWriter) {
	writeError(w, &apiError{Code: CodeUnknownAuth, Message: "Unknown authentication error, Contact SalesIQ Team!"})
}

// TokenExpired answers as for an expired access token.
func (responder) TokenExpired(w http.ResponseWriter) {
	writeError(w, &apiError{Code: CodeInvalidToken, Message: "OAuth access token expired.", Header: "Authorization"})
}
