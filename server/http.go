package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/auth"
)

var randReader = rand.Reader

type requestIDKey struct{}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID returns the id of the request ctx belongs to ("-" outside one).
func requestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	return "-"
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status code for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrade, which asserts
// http.Hijacker directly instead of going through http.ResponseController.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	s.code = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Flush passes streaming responses through.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// observe gives every request an id (kept from X-Request-Id when sane), logs
// it, and records its route, status and latency.
func observe(route string, m *metrics, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.code == 0 {
			rec.code = http.StatusSwitchingProtocols // hijacked by the WebSocket upgrade
		}
		elapsed := time.Since(start)
		m.httpRequests.WithLabelValues(route, statusLabel(rec.code)).Inc()
		if rec.code != http.StatusSwitchingProtocols {
			m.httpDuration.WithLabelValues(route).Observe(elapsed.Seconds())
		}
		level := slog.LevelDebug
		if rec.code >= 500 {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "http request", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", rec.code, "duration", elapsed)
	})
}

// limitRequests bounds the body size and, for plain HTTP, the time a request
// may take. WebSockets live long by design and are bounded by their own
// read limits and deadlines instead.
func limitRequests(maxBody int64, timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxBody {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit of "+formatBytes(maxBody))
			return
		}
		// Read the body here (gqlgen reads it whole anyway) so a chunked
		// body over the limit is a 413 too, not a GraphQL error.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeJSONError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit of "+formatBytes(maxBody))
				return
			}
			writeJSONError(w, http.StatusBadRequest, "reading request body failed")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate resolves the bearer token, if any, into the request context.
// A missing or bad token does not end the request here: GraphQL answers
// with UNAUTHENTICATED on exactly the fields that need a caller, and public
// parts (introspection, __typename) keep working.
func authenticate(a *auth.Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		v, err := a.Authenticate(ctx, auth.BearerToken(header))
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				log.ErrorContext(ctx, "authenticating request", "request_id", requestID(ctx), "err", err)
			}
			ctx = auth.WithFailure(ctx, err)
		} else {
			ctx = auth.WithViewer(ctx, v)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": msg}}})
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return statusLabel(int(n)) }
