// Package examples serves example clients of the gateway's public GraphQL
// API, written the way a frontend team would write them: plain HTML and
// JavaScript, no framework, no bundler, no CDN.
//
// Today there is one, the agent sidebar at Prefix+"sidebar": a customer's
// 360 (CRM contact, deals, notes, activities, tickets and counts) beside a
// ticket, kept live by the ticketEvents subscription over
// graphql-transport-ws. Its files are embedded in the binary and served
// under a strict Content-Security-Policy, so the page doubles as proof that
// a client of the API needs nothing the policy of a careful deployment
// would forbid (no inline script or style, no eval, no other origin).
package examples

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/server/playground"
)

// Prefix is the path the handler must be mounted at: it serves
// Prefix+"sidebar" and that page's files beside it.
const Prefix = "/examples/"

// Options configures the examples.
type Options struct {
	// Endpoint is the path of the GraphQL endpoint on the same origin, such
	// as "/graphql". It must be a path because the pages' CSP only allows
	// connections to their own origin. Empty means "/graphql".
	Endpoint string
}

//go:embed static
var files embed.FS

// asset is one embedded file as served.
type asset struct {
	contentType string
	body        []byte
	etag        string
}

// assetTypes lists the files the pages load, by the name they are served
// under (beside the page, so the page can refer to them relatively).
var assetTypes = map[string]string{
	"sidebar.js":  "text/javascript; charset=utf-8",
	"sidebar.css": "text/css; charset=utf-8",
	"sidebar.svg": "image/svg+xml",
}

// Handler returns the examples handler. It answers GET and HEAD for
// Prefix+"sidebar" and its files, redirects Prefix itself to the sidebar
// and gives a plain 404 for anything else.
//
// Handler panics if o.Endpoint is not a same-origin path, as that is a
// programming error that would otherwise only surface as a CSP violation in
// a user's browser.
func Handler(o Options) http.Handler {
	if o.Endpoint == "" {
		o.Endpoint = "/graphql"
	}
	if !strings.HasPrefix(o.Endpoint, "/") || strings.HasPrefix(o.Endpoint, "//") {
		panic("examples: Endpoint must be a path on the same origin, got " + o.Endpoint)
	}
	h := &handler{opts: o, assets: map[string]*asset{}}
	for name, contentType := range assetTypes {
		body, err := files.ReadFile("static/" + name)
		if err != nil {
			panic("examples: embedded file missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		h.assets[name] = &asset{contentType: contentType, body: body, etag: `"` + hex.EncodeToString(sum[:]) + `"`}
	}
	h.page = template.Must(template.ParseFS(files, "static/sidebar.html"))
	return h
}

type handler struct {
	opts   Options
	assets map[string]*asset
	page   *template.Template
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	switch a := h.assets[name]; {
	case name == "":
		// Relative, so a fragment-less visit to /examples/ lands on the
		// one example there is.
		http.Redirect(w, r, "sidebar", http.StatusFound)
	case name == "sidebar":
		h.servePage(w, r)
	case a != nil:
		h.serveAsset(w, r, name, a)
	default:
		http.NotFound(w, r)
	}
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, struct{ Endpoint string }{h.opts.Endpoint}); err != nil {
		http.Error(w, "examples: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy(r.Host))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// The page's address never carries the token (it is in the fragment,
	// which browsers do not send), but there is no reason to tell other
	// sites which customer an agent was looking at either.
	hdr.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, name string, a *asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	// The page refers to its files by fixed names, so they must be
	// revalidated: a new build then serves its own script, and the ETag
	// keeps the revalidation a 304.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

// contentSecurityPolicy returns the page's policy: everything from the
// page's own origin, nothing inline. It is the playground's policy without
// the exceptions GraphiQL needs (a style nonce, data: fonts and images),
// because the sidebar has no dependency that needs them. Its connect-src,
// which has to copy the client-supplied Host safely, is the playground's.
func contentSecurityPolicy(host string) string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self'",
		"connect-src " + playground.ConnectSources(host),
		"base-uri 'none'",
		// The lookup form is handled by the script and never submitted:
		// were the script to fail, a submitted form could put the token
		// into a URL.
		"form-action 'none'",
		// The page holds a bearer token; keep it out of other sites'
		// frames.
		"frame-ancestors 'none'",
	}, "; ")
}
