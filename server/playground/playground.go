// Package playground serves a GraphiQL IDE for the gateway's GraphQL
// endpoint.
//
// Every asset (GraphiQL, React and the page's own script) is compiled into
// the binary with go:embed, so the playground works on hosts that cannot
// reach a CDN and no third-party origin ever sees who uses it. The vendored
// files under vendor/ come unmodified from the npm registry; see
// scripts/update-playground.sh and vendor/VERSIONS.txt.
package playground

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// AssetsPrefix is the path below which the handler serves its embedded
// assets. A router that does not send every path to the handler must route
// both "/" and this prefix to it.
const AssetsPrefix = "/playground/"

// Options configures the playground page.
type Options struct {
	// Endpoint is the path of the GraphQL endpoint on the same origin, such
	// as "/graphql". Queries and mutations are POSTed there; subscriptions
	// open a graphql-transport-ws WebSocket to the same path (ws: or wss:,
	// following the page's own scheme). It must be a path because the
	// page's Content-Security-Policy only allows connections to its own
	// origin. Empty means "/graphql".
	Endpoint string
	// Title is the page title, to tell several gateways' tabs apart.
	// Empty means "deskbridge GraphQL playground".
	Title string
}

//go:embed static vendor/graphiql/graphiql.min.js vendor/graphiql/graphiql.min.css vendor/react/react.production.min.js vendor/react-dom/react-dom.production.min.js vendor/*/LICENSE
var files embed.FS

// asset is one embedded file as served. Its URL name contains a prefix of
// its SHA-256 so it can be cached forever: a new build that changes the
// file also changes the URL the page refers to.
type asset struct {
	name        string // below AssetsPrefix, e.g. "graphiql.867226ba8af5.js"
	contentType string
	body        []byte
	etag        string
}

// assetSources lists what the page loads, keyed by the name the page
// template uses. Licenses are served too, so that the notices the MIT
// licenses require travel with the code they cover.
var assetSources = []struct{ key, file, contentType string }{
	{"react.js", "vendor/react/react.production.min.js", "text/javascript; charset=utf-8"},
	{"react-dom.js", "vendor/react-dom/react-dom.production.min.js", "text/javascript; charset=utf-8"},
	{"graphiql.js", "vendor/graphiql/graphiql.min.js", "text/javascript; charset=utf-8"},
	{"graphiql.css", "vendor/graphiql/graphiql.min.css", "text/css; charset=utf-8"},
	{"playground.js", "static/playground.js", "text/javascript; charset=utf-8"},
	{"playground.css", "static/playground.css", "text/css; charset=utf-8"},
	{"favicon.svg", "static/favicon.svg", "image/svg+xml"},
	{"LICENSE-graphiql.txt", "vendor/graphiql/LICENSE", "text/plain; charset=utf-8"},
	{"LICENSE-react.txt", "vendor/react/LICENSE", "text/plain; charset=utf-8"},
	{"LICENSE-react-dom.txt", "vendor/react-dom/LICENSE", "text/plain; charset=utf-8"},
}

// catalog holds the assets by URL name and the page's references to them
// by key. It is built once per process because hashing ~1.6 MB is not
// free and the embedded files cannot change.
type catalog struct {
	byName map[string]*asset
	urls   map[string]string // key -> URL relative to the page
	page   *template.Template
}

var loadCatalog = sync.OnceValue(func() *catalog {
	c := &catalog{byName: map[string]*asset{}, urls: map[string]string{}}
	for _, src := range assetSources {
		body, err := files.ReadFile(src.file)
		if err != nil {
			panic("playground: embedded file missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:6])
		ext := path.Ext(src.key)
		a := &asset{
			name:        strings.TrimSuffix(src.key, ext) + "." + hash + ext,
			contentType: src.contentType,
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:]) + `"`,
		}
		c.byName[a.name] = a
		// Relative, so the page keeps working when mounted below a
		// prefix with http.StripPrefix.
		c.urls[src.key] = strings.TrimPrefix(AssetsPrefix, "/") + a.name
	}
	c.page = template.Must(template.New("index.html").Funcs(template.FuncMap{
		"asset": func(key string) (string, error) {
			u, ok := c.urls[key]
			if !ok {
				return "", fmt.Errorf("playground: page refers to unknown asset %q", key)
			}
			return u, nil
		},
	}).ParseFS(files, "static/index.html"))
	return c
})

// Handler returns the playground: the page at "/" (exactly) and its assets
// below AssetsPrefix. Any other path gets a plain 404, which makes the
// handler safe to mount as a mux's catch-all "/" pattern.
//
// Handler panics if o.Endpoint is not a same-origin path, as that is a
// programming error that would otherwise surface only as a CSP violation
// in a user's browser.
func Handler(o Options) http.Handler {
	if o.Endpoint == "" {
		o.Endpoint = "/graphql"
	}
	if !strings.HasPrefix(o.Endpoint, "/") || strings.HasPrefix(o.Endpoint, "//") {
		panic("playground: Endpoint must be a path on the same origin, got " + o.Endpoint)
	}
	if o.Title == "" {
		o.Title = "deskbridge GraphQL playground"
	}
	return &handler{opts: o, cat: loadCatalog()}
}

type handler struct {
	opts Options
	cat  *catalog
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var serve func(http.ResponseWriter, *http.Request)
	switch {
	case r.URL.Path == "/":
		serve = h.servePage
	case strings.HasPrefix(r.URL.Path, AssetsPrefix):
		serve = h.serveAsset
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	serve(w, r)
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.cat.byName[strings.TrimPrefix(r.URL.Path, AssetsPrefix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match and Range requests; a zero
	// modification time leaves Last-Modified out, the ETag is enough.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := rand.Text()
	var buf bytes.Buffer
	err := h.cat.page.Execute(&buf, struct {
		Title, Endpoint, Nonce string
	}{h.opts.Title, h.opts.Endpoint, nonce})
	if err != nil {
		http.Error(w, "playground: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy(r.Host, nonce))
	// The page is cheap to render and carries a per-response nonce.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

// contentSecurityPolicy returns the page's policy. Everything is served
// from the page's own origin, so the policy can be strict. The exceptions
// below are the ones GraphiQL 4.1 needs: without the style nonce and the
// data: fonts Chromium reports violations; the data: images are CodeMirror
// lint icons in graphiql.min.css.
func contentSecurityPolicy(host, nonce string) string {
	return strings.Join([]string{
		"default-src 'none'",
		// No 'unsafe-eval' and no inline script: GraphiQL, React and
		// playground.js are plain files from this origin.
		"script-src 'self'",
		// GraphiQL's dialogs (settings, shortcuts) lock page scrolling via
		// react-remove-scroll, which injects a <style> element and tags it
		// with the nonce that playground.js hands it. Style *attributes*
		// stay forbidden; React and CodeMirror set styles through the
		// CSSOM, which CSP does not restrict.
		"style-src 'self' 'nonce-" + nonce + "'",
		// graphiql.min.css inlines its fonts and CodeMirror's lint icons
		// as data: URLs.
		"font-src 'self' data:",
		"img-src 'self' data:",
		"connect-src " + ConnectSources(host),
		"base-uri 'none'",
		"form-action 'none'",
		// The page may hold a bearer token; keep it out of other sites'
		// frames.
		"frame-ancestors 'none'",
	}, "; ")
}

// ConnectSources returns the connect-src source list of a page served to
// host (the request's Host header) that talks to a GraphQL endpoint on its
// own origin, over HTTP and WebSocket. CSP Level 3 browsers already let
// 'self' cover ws: and wss: to the same host and port; naming them keeps
// subscriptions working in older ones. The Host header is client-supplied,
// so it is only copied into the policy when it cannot break its syntax.
// server/examples uses it too, so both pages follow one rule for what a
// client may inject into their policies.
func ConnectSources(host string) string {
	if !validHost(host) {
		return "'self'"
	}
	return "'self' ws://" + host + " wss://" + host
}

// validHost reports whether host is a plain name-or-IPv4[:port] that can be
// pasted into a CSP source expression. IPv6 literals are left to 'self':
// CSP's host-source grammar has no syntax for them.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}
