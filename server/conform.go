package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// conformHTTP adjusts gqlgen's plain-HTTP answers to the GraphQL-over-HTTP
// specification, which the graphql-http audit checks:
//   - with application/json, a well-formed request that fails parsing or
//     validation is still 200 (gqlgen answers 422);
//   - with application/graphql-response+json, such a failure has no "data"
//     key (gqlgen writes "data": null);
//   - a POST whose parameters are malformed (not a JSON object, a query that
//     is not a string, variables that are not an object...) is a 400 naming
//     the parameter, decided here before gqlgen, which would echo the body.
//
// Successful responses stream through untouched; only error answers, which
// are small, are buffered and rewritten.
func conformHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			if problem := checkPostParams(r); problem != "" {
				writeRequestError(w, r, problem)
				return
			}
		}
		cw := &conformWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		cw.finish()
	})
}

// checkPostParams validates the shape of a GraphQL POST body (the body was
// already read into memory by limitRequests) and returns what is wrong.
func checkPostParams(r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "request body could not be read"
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(body, &params); err != nil || params == nil {
		return "request body must be a JSON object with query, variables and operationName"
	}
	is := func(raw json.RawMessage, first byte) bool { return len(raw) > 0 && raw[0] == first }
	isNull := func(raw json.RawMessage) bool { return string(raw) == "null" }
	query, hasQuery := params["query"]
	_, persisted := params["extensions"]
	switch {
	case hasQuery && !is(query, '"') && !isNull(query):
		return "query must be a string"
	case (!hasQuery || isNull(query)) && !persisted:
		return "query is missing"
	}
	if v, ok := params["variables"]; ok && !is(v, '{') && !isNull(v) {
		return "variables must be an object"
	}
	if v, ok := params["operationName"]; ok && !is(v, '"') && !isNull(v) {
		return "operationName must be a string"
	}
	if v, ok := params["extensions"]; ok && !is(v, '{') && !isNull(v) {
		return "extensions must be an object"
	}
	return ""
}

// writeRequestError answers a malformed request with 400 and a GraphQL
// error, in the media type the client accepts, without a data key.
func writeRequestError(w http.ResponseWriter, r *http.Request, msg string) {
	ct := "application/json"
	if strings.Contains(r.Header.Get("Accept"), "application/graphql-response+json") {
		ct = "application/graphql-response+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": msg, "extensions": map[string]string{"code": codeBadRequest},
	}}})
}

type conformWriter struct {
	http.ResponseWriter
	buffering bool
	status    int
	buf       bytes.Buffer
}

func (c *conformWriter) WriteHeader(code int) {
	ct := c.Header().Get("Content-Type")
	switch {
	case code == http.StatusUnprocessableEntity && strings.HasPrefix(ct, "application/json"):
		c.ResponseWriter.WriteHeader(http.StatusOK)
	case code >= 400 && code < 500:
		c.buffering, c.status = true, code
	default:
		c.ResponseWriter.WriteHeader(code)
	}
}

func (c *conformWriter) Write(b []byte) (int, error) {
	if c.buffering {
		return c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *conformWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *conformWriter) finish() {
	if !c.buffering {
		return
	}
	body := c.buf.Bytes()
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(body, &resp); err == nil {
		if strings.HasPrefix(c.Header().Get("Content-Type"), "application/graphql-response+json") {
			if d, ok := resp["data"]; ok && string(d) == "null" {
				delete(resp, "data")
			}
		}
		if rewritten, err := json.Marshal(resp); err == nil {
			body = rewritten
		}
	}
	c.Header().Set("Content-Length", strconv.Itoa(len(body)))
	c.ResponseWriter.WriteHeader(c.status)
	_, _ = c.ResponseWriter.Write(body)
}
