package oauth

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// The consent page (GET /oauth/v2/auth): where Zoho signs a user in and
// asks them to grant a client the scopes it lists, then sends the browser
// to redirect_uri with a one-time code (or error=access_denied), the state,
// location (the data center) and accounts-server. The sandbox has no
// passwords: the user says who they are, and the vendors' APIs then act as
// that user, as they would for a real sign-in.

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Zoho Accounts (sandbox)</title></head><body>
<h1>Zoho Accounts (sandbox)</h1>
<p>The application <b>{{.ClientID}}</b> asks for access to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth/v2/auth">
{{range $k, $v := .Carry}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label>Signed in as <input id="email" name="email" type="email" value="{{.Email}}" required></label>
<p><button id="accept" name="decision" value="accept">Accept</button>
<button id="reject" name="decision" value="reject" formnovalidate>Reject</button></p>
</form></body></html>
`))

// consentPage shows what a client asks for.
func (r *Registry) consentPage(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	clientID := q.Get("client_id")
	if _, ok := redirectTarget(q.Get("redirect_uri")); !ok || !r.knownClient(clientID) || q.Get("response_type") != "code" {
		http.Error(w, "invalid request: unknown client_id, response_type other than code, or no redirect_uri", http.StatusBadRequest)
		return
	}
	carry := map[string]string{}
	for _, k := range []string{"client_id", "scope", "redirect_uri", "state", "access_type"} {
		carry[k] = q.Get(k)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = consentPage.Execute(w, map[string]any{"ClientID": clientID, "Scopes": strings.Split(q.Get("scope"), ","),
		"Carry": carry, "Email": q.Get("login_hint")})
}

// consent answers the form: a code for the user who accepted, or
// access_denied.
func (r *Registry) consent(w http.ResponseWriter, req *http.Request, dc string) {
	if err := req.ParseForm(); err != nil {
		http.Error(w, "invalid form", http.StatusBadRequest)
		return
	}
	f := req.PostForm
	clientID := f.Get("client_id")
	target, ok := redirectTarget(f.Get("redirect_uri"))
	if !ok || !r.knownClient(clientID) {
		http.Error(w, "invalid request", http.StatusBadRequest)
		return
	}
	back := target.Query()
	if f.Get("decision") != "accept" || strings.TrimSpace(f.Get("email")) == "" {
		back.Set("error", "access_denied")
	} else {
		back.Set("code", r.AddAuthCode(Grant{ClientID: clientID, UserEmail: strings.TrimSpace(f.Get("email")),
			Scopes: strings.Split(f.Get("scope"), ","), DC: dc}))
	}
	if state := f.Get("state"); state != "" {
		back.Set("state", state)
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	back.Set("location", dc)
	back.Set("accounts-server", scheme+"://"+req.Host)
	target.RawQuery = back.Encode()
	http.Redirect(w, req, target.String(), http.StatusFound)
}

// redirectTarget parses a redirect_uri: an absolute http(s) URL.
func redirectTarget(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	return u, err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (r *Registry) knownClient(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.clients[id]
	return ok
}
