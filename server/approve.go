package server

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The CRM admin's side of "another user's account" (SPEC A2): the desk
// admin's requestCrmAccess answers an approval URL, which they send to the
// CRM admin. That page says who asks for what and sends the CRM admin to
// Zoho to sign in and consent; Zoho sends the browser back to the callback,
// which approves the request with the authorization code, exactly as the
// approveCrmAccess mutation does. The approval code in the URL is the only
// credential: the pages need no deskbridge token.
const (
	approvePath  = "/connect/approve"
	callbackPath = "/connect/approve/callback"
)

// ApprovalURL is the page to send a CRM admin to for an approval code.
func ApprovalURL(publicURL, code string) string {
	return publicURL + approvePath + "?code=" + template.URLQueryEscaper(code)
}

var approvalPage = template.Must(template.New("approve").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · deskbridge</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}.who{font-weight:600}.note{color:#59636e;font-size:.9rem}
a.button{display:inline-block;margin:1rem 0;padding:.6rem 1.2rem;background:#1f6feb;color:#fff;border-radius:6px;text-decoration:none}
.error{border-left:4px solid #cf222e;padding-left:.8rem}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if .Request}}
<p>The Zoho Desk portal <span class="who">{{.Request.DeskPortal}}</span> asks to sync its contacts, accounts
and products with your {{.CRMName}} through deskbridge, using your account.</p>
<p>Only <span class="who">{{.Request.ApproverEmail}}</span> can approve, as an administrator of the CRM.
Nothing is shared until you do. This request expires on {{.Expires}}.</p>
<p><a class="button" id="approve" href="{{.Request.ConsentURL}}">Sign in to {{.CRMName}} and approve</a></p>
<p class="note">You can take the access back at any time by removing the integration in the desk, or by revoking
deskbridge's access in your Zoho account's connected apps.</p>
{{end}}
{{if .Done}}<p id="done">{{.Done}}</p><p class="note">You can close this page.</p>{{end}}
</body></html>
`))

type approvalView struct {
	Title, Error, Done string
	Request            *syncengine.PendingAccess
	CRMName            string
	Expires            string
}

// approvalHandler serves the approval page and Zoho's callback.
func approvalHandler(conns *syncengine.ConnectionService, publicURL func() string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+approvePath, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("code")
		req, err := conns.AccessRequestOf(r.Context(), code, publicURL()+callbackPath)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, new(*syncengine.ConnectionInputError)) {
				status = http.StatusNotFound // unknown, replaced, used or expired
			}
			renderApproval(w, log, r, status, approvalView{Title: "This request cannot be approved", Error: approvalError(log, r, err)})
			return
		}
		renderApproval(w, log, r, http.StatusOK, approvalView{Title: "Approve deskbridge's access to your CRM",
			Request: &req, CRMName: crmName(req.CRMSystem), Expires: req.ExpiresAt.UTC().Format(time.RFC1123)})
	})
	mux.HandleFunc("GET "+callbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			renderApproval(w, log, r, http.StatusOK, approvalView{Title: "Not approved",
				Done: "You did not give deskbridge access (Zoho said: " + e + "). The request stays open until it expires; the link still works."})
			return
		}
		conn, err := conns.ApproveAccess(r.Context(), q.Get("state"), "", syncengine.ConnectionCredentials{
			AuthorizationCode: q.Get("code"), RedirectURI: publicURL() + callbackPath})
		if err != nil {
			renderApproval(w, log, r, http.StatusBadRequest, approvalView{Title: "Could not approve", Error: approvalError(log, r, err)})
			return
		}
		done := "Approved. The desk portal now syncs with your CRM"
		if conn.CRMOrgName != nil {
			done += " org " + *conn.CRMOrgName
		}
		renderApproval(w, log, r, http.StatusOK, approvalView{Title: "Approved", Done: done + "; the first sync has started."})
	})
	return mux
}

func crmName(sys connector.System) string {
	if sys == connector.Bigin {
		return "Zoho Bigin"
	}
	return "Zoho CRM"
}

// approvalError is what the page says about err: the reason for what the
// approver can act on, a request id for the rest (logged in full).
func approvalError(log *slog.Logger, r *http.Request, err error) string {
	var input *syncengine.ConnectionInputError
	var public publicMessager
	switch {
	case errors.As(err, &input) && input.Field == "crmOrgId":
		// The page cannot ask which org: the sign-in's code is spent.
		return sentence(input.Reason) + " Approve with the approveCrmAccess mutation instead, naming the org as crmOrgId."
	case errors.As(err, &input):
		return sentence(input.Reason)
	case errors.As(err, &public):
		return sentence(public.PublicMessage())
	}
	id := requestID(r.Context())
	log.ErrorContext(r.Context(), "crm access approval page", "request_id", id, "err", err)
	return "Something went wrong on our side (request id " + id + "). Try the link again later."
}

// sentence capitalizes a reason and ends it with a full stop.
func sentence(reason string) string {
	if reason == "" {
		return ""
	}
	return strings.ToUpper(reason[:1]) + reason[1:] + "."
}

// renderApproval writes a page that keeps its URL to itself: the approval
// code is in it, so no referrer leaves, nothing is cached, and the page
// runs no script.
func renderApproval(w http.ResponseWriter, log *slog.Logger, r *http.Request, status int, v approvalView) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := approvalPage.Execute(w, v); err != nil {
		log.WarnContext(r.Context(), "writing the approval page", "err", err)
	}
}
