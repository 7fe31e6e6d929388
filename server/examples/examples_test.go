package examples

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The page in a browser (live updates, permission profiles, the token's
// path) is tested in server/examples_test.go with headless Chromium; these
// tests cover what the handler promises without one.

func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// refs returns the src and href attribute values of page.
func refs(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\b(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestSidebarPage(t *testing.T) {
	rec := get(t, Handler(Options{Endpoint: "/api/graphql"}), "/examples/sidebar")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /examples/sidebar = %d, want 200", rec.Code)
	}
	for name, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := rec.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	body := rec.Body.String()
	if !strings.Contains(body, `data-endpoint="/api/graphql"`) {
		t.Errorf("page does not pass the endpoint to the script:\n%s", body)
	}
	// The CSP forbids inline script and style: every <script> must load a
	// file, and nothing may carry a style attribute or an event handler.
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("inline script %q, which the CSP forbids", m)
		}
	}
	if strings.Contains(body, "<style") || strings.Contains(body, " style=") || regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
		t.Errorf("page has inline style or an inline event handler, which the CSP forbids:\n%s", body)
	}
	// The inputs have no name, so even a submitted form would carry no token.
	if regexp.MustCompile(`<input[^>]*\sname=`).MatchString(body) {
		t.Errorf("a form input has a name attribute:\n%s", body)
	}
}

func TestSidebarCSP(t *testing.T) {
	csp := get(t, Handler(Options{}), "http://gw.example:8080/examples/sidebar").Header().Get("Content-Security-Policy")
	if csp == "" {
		t.Fatal("no Content-Security-Policy header")
	}
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self' ws://gw.example:8080 wss://gw.example:8080",
		"form-action":     "'none'",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("%s = %q, want %q (CSP %q)", name, got, want, csp)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "nonce-") || strings.Contains(csp, "data:") {
		t.Errorf("CSP is relaxed: %q", csp)
	}
	for _, host := range []string{"evil;script-src *", "[::1]:8080", ""} {
		req := httptest.NewRequest(http.MethodGet, "/examples/sidebar", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		Handler(Options{}).ServeHTTP(rec, req)
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "; connect-src 'self'; ") {
			t.Errorf("Host %q: connect-src is not just 'self': %q", host, csp)
		}
	}
}

func TestSidebarAssets(t *testing.T) {
	h := Handler(Options{})
	page := get(t, h, "/examples/sidebar").Body.String()
	if strings.Contains(page, "http:") || strings.Contains(page, "https:") || strings.Contains(page, "//") {
		t.Errorf("page mentions another origin:\n%s", page)
	}
	contentTypes := map[string]string{
		"sidebar.js":  "text/javascript; charset=utf-8",
		"sidebar.css": "text/css; charset=utf-8",
		"sidebar.svg": "image/svg+xml",
	}
	seen := map[string]bool{}
	for _, ref := range refs(page) {
		// Relative to the page, so they resolve beside it.
		want, ok := contentTypes[ref]
		if !ok {
			t.Errorf("page refers to %q, which is not one of its files", ref)
			continue
		}
		seen[ref] = true
		rec := get(t, h, "/examples/"+ref)
		if rec.Code != http.StatusOK {
			t.Errorf("GET /examples/%s = %d", ref, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != want {
			t.Errorf("/examples/%s: Content-Type = %q, want %q", ref, got, want)
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("/examples/%s: Cache-Control = %q, want no-cache (fixed names must be revalidated)", ref, got)
		}
		onDisk, err := os.ReadFile("static/" + ref)
		if err != nil || string(onDisk) != rec.Body.String() {
			t.Errorf("/examples/%s differs from static/%s (%v)", ref, ref, err)
		}
		etag := rec.Header().Get("ETag")
		if rec := get(t, h, "/examples/"+ref, "If-None-Match", etag); etag == "" || rec.Code != http.StatusNotModified {
			t.Errorf("/examples/%s: revalidation with ETag %q = %d, want 304", ref, etag, rec.Code)
		}
	}
	for ref := range contentTypes {
		if !seen[ref] {
			t.Errorf("page does not load %s", ref)
		}
	}
}

// TestSidebarScriptRendersTextOnly guards the rule that data never becomes
// markup: the script builds the DOM with textContent and never assigns
// HTML.
func TestSidebarScriptRendersTextOnly(t *testing.T) {
	js, err := files.ReadFile("static/sidebar.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage"} {
		if strings.Contains(string(js), banned) {
			t.Errorf("sidebar.js uses %s", banned)
		}
	}
}

func TestRoutes(t *testing.T) {
	h := Handler(Options{})
	if rec := get(t, h, "/examples/"); rec.Code != http.StatusFound || rec.Header().Get("Location") != "/examples/sidebar" {
		t.Errorf("GET /examples/ = %d to %q, want a redirect to /examples/sidebar", rec.Code, rec.Header().Get("Location"))
	}
	for _, target := range []string{
		"/examples/sidebar/",
		"/examples/sidebar.html",
		"/examples/static/sidebar.js",
		"/examples/../graphql",
		"/examples/nope",
		"/sidebar",
	} {
		if rec := get(t, h, target); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/examples/sidebar", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /examples/sidebar = %d, Allow %q; want 405, GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestHandlerRejectsCrossOriginEndpoint(t *testing.T) {
	for _, endpoint := range []string{"https://other.example/graphql", "//other.example/graphql", "graphql"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handler(Endpoint: %q) did not panic", endpoint)
				}
			}()
			Handler(Options{Endpoint: endpoint})
		}()
	}
}
