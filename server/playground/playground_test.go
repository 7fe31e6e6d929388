package playground

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

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

func TestPage(t *testing.T) {
	h := Handler(Options{Endpoint: "/api/graphql", Title: `Ops <script>alert(1)</script>`})
	rec := get(t, h, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `data-endpoint="/api/graphql"`) {
		t.Errorf("page does not pass the endpoint to the script:\n%s", body)
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Errorf("title is not escaped:\n%s", body)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Errorf("page has inline script or style, which its CSP forbids:\n%s", body)
	}
}

func TestPageCSP(t *testing.T) {
	rec := get(t, Handler(Options{}), "http://gw.example:8080/")
	csp := rec.Header().Get("Content-Security-Policy")
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
		"connect-src":     "'self' ws://gw.example:8080 wss://gw.example:8080",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("%s = %q, want %q (CSP %q)", name, got, want, csp)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP relaxes with unsafe-*: %q", csp)
	}

	// The style nonce must be the one the page hands to its script, and
	// must differ between responses.
	m := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(directives["style-src"])
	if m == nil || !strings.HasPrefix(directives["style-src"], "'self' ") {
		t.Fatalf("style-src = %q, want 'self' and a nonce", directives["style-src"])
	}
	if !strings.Contains(rec.Body.String(), `nonce="`+m[1]+`"`) {
		t.Errorf("page does not carry the CSP nonce %q", m[1])
	}
	again := get(t, Handler(Options{}), "/").Header().Get("Content-Security-Policy")
	if strings.Contains(again, m[1]) {
		t.Errorf("nonce %q reused across responses", m[1])
	}
}

func TestPageCSPIgnoresOddHost(t *testing.T) {
	for _, host := range []string{"evil;script-src *", "[::1]:8080", ""} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		Handler(Options{}).ServeHTTP(rec, req)
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "; connect-src 'self'; ") {
			t.Errorf("Host %q: connect-src is not just 'self': %q", host, csp)
		}
	}
}

func TestPageReferencesOnlyLocalAssets(t *testing.T) {
	h := Handler(Options{})
	body := get(t, h, "/").Body.String()
	if strings.Contains(body, "http:") || strings.Contains(body, "https:") || strings.Contains(body, "//") {
		t.Errorf("page mentions another origin:\n%s", body)
	}
	want := map[string]bool{".js": false, ".css": false, ".svg": false, ".txt": false}
	for _, ref := range refs(body) {
		if !strings.HasPrefix(ref, strings.TrimPrefix(AssetsPrefix, "/")) {
			t.Errorf("page refers to %q, outside %s", ref, AssetsPrefix)
			continue
		}
		want[path.Ext(ref)] = true
		if rec := get(t, h, "/"+ref); rec.Code != http.StatusOK {
			t.Errorf("GET /%s = %d, want 200", ref, rec.Code)
		}
	}
	for ext, seen := range want {
		if !seen {
			t.Errorf("page refers to no %s asset", ext)
		}
	}
}

func TestAssets(t *testing.T) {
	h := Handler(Options{})
	page := get(t, h, "/").Body.String()
	contentTypes := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
		".txt": "text/plain; charset=utf-8",
	}
	byKey := map[string]string{}
	for _, src := range assetSources {
		byKey[src.key] = src.file
	}
	for _, ref := range refs(page) {
		rec := get(t, h, "/"+ref)
		if rec.Code != http.StatusOK {
			t.Errorf("GET /%s = %d", ref, rec.Code)
			continue
		}
		if got, want := rec.Header().Get("Content-Type"), contentTypes[path.Ext(ref)]; got != want {
			t.Errorf("/%s: Content-Type = %q, want %q", ref, got, want)
		}
		if got := rec.Header().Get("Cache-Control"); !strings.Contains(got, "immutable") {
			t.Errorf("/%s: Cache-Control = %q, want long-lived", ref, got)
		}

		// The name embeds a prefix of the content's hash, and the content
		// is the file from the source tree, compiled in.
		sum := sha256.Sum256(rec.Body.Bytes())
		if !strings.Contains(ref, "."+hex.EncodeToString(sum[:6])+".") {
			t.Errorf("/%s: name does not carry its content hash", ref)
		}
		name := path.Base(ref)
		key := name[:strings.Index(name, ".")] + path.Ext(name)
		onDisk, err := os.ReadFile(byKey[key])
		if err != nil {
			t.Errorf("/%s: %v", ref, err)
		} else if !bytes.Equal(onDisk, rec.Body.Bytes()) {
			t.Errorf("/%s differs from %s", ref, byKey[key])
		}

		etag := rec.Header().Get("ETag")
		if rec := get(t, h, "/"+ref, "If-None-Match", etag); etag == "" || rec.Code != http.StatusNotModified {
			t.Errorf("/%s: revalidation with ETag %q = %d, want 304", ref, etag, rec.Code)
		}
	}

	// Sanity check that the big vendored files made it in whole.
	for file, minSize := range map[string]int{
		"vendor/graphiql/graphiql.min.js":              500_000,
		"vendor/graphiql/graphiql.min.css":             100_000,
		"vendor/react-dom/react-dom.production.min.js": 100_000,
		"vendor/react/react.production.min.js":         5_000,
		"static/playground.js":                         1_000,
		"vendor/graphiql/LICENSE":                      500,
		"vendor/react/LICENSE":                         500,
		"vendor/react-dom/LICENSE":                     500,
		"static/index.html":                            500,
		"static/playground.css":                        50,
		"static/favicon.svg":                           50,
	} {
		b, err := files.ReadFile(file)
		if err != nil || len(b) < minSize {
			t.Errorf("embedded %s: %d bytes, %v; want at least %d", file, len(b), err, minSize)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler(Options{})
	for _, target := range []string{
		"/playground/",
		"/playground/nope.js",
		"/playground/graphiql.min.js", // the vendored name, not the served one
		"/playground/../static/index.html",
		"/index.html",
		"/graphql",
		"/favicon.ico",
	} {
		if rec := get(t, h, target); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, rec.Code)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q; want 405, GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestMountedBelowPrefix(t *testing.T) {
	h := http.StripPrefix("/tools", Handler(Options{}))
	page := get(t, h, "/tools/")
	if page.Code != http.StatusOK {
		t.Fatalf("GET /tools/ = %d", page.Code)
	}
	for _, ref := range refs(page.Body.String()) {
		if rec := get(t, h, "/tools/"+ref); rec.Code != http.StatusOK {
			t.Errorf("GET /tools/%s = %d, want 200", ref, rec.Code)
		}
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

// TestVendoredFilesMatchVersions guards the rule that vendored files are
// only ever changed by scripts/update-playground.sh.
func TestVendoredFilesMatchVersions(t *testing.T) {
	f, err := os.Open("vendor/VERSIONS.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("VERSIONS.txt: malformed line %q", line)
		}
		b, err := files.ReadFile("vendor/" + name)
		if err != nil {
			t.Errorf("%s listed in VERSIONS.txt but not embedded: %v", name, err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, VERSIONS.txt says %s; re-run scripts/update-playground.sh", name, got, want)
		}
		checked++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked != 7 {
		t.Errorf("VERSIONS.txt lists %d files, want 7", checked)
	}
}
