package zoho

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Typed Desk calls for the ticket features (SPEC E1–E3, F4–F9) and the
// knowledge-base sync (F2). Objects come back as connector.Record, the
// vendor's own keys and values, as everywhere else.

// CreateTicket creates a ticket (subject, departmentId and contactId or
// contact details are required). An unknown outcome is reconciled like
// any create (write.go).
func (d *Desk) CreateTicket(ctx context.Context, fields map[string]any) (connector.Record, error) {
	return d.create(ctx, "tickets", fields)
}

// UpdateTicket changes a ticket, its status included ({"status":"Closed"}).
func (d *Desk) UpdateTicket(ctx context.Context, id string, fields map[string]any) (connector.Record, error) {
	return d.update(ctx, "tickets", id, fields)
}

// Reply is the connector's reply (SPEC E2). Desk's request schema does
// not document cc; the sandbox takes it (reference/zoho-api.md 4.6).
type Reply = connector.Reply

// SendReply sends a reply on a ticket and returns the created thread. A
// reply is an email to a customer: it is never repeated when the outcome
// is unknown (the error is Permanent OUTCOME_UNKNOWN).
func (d *Desk) SendReply(ctx context.Context, ticketID string, r Reply) (connector.Record, error) {
	body := map[string]any{"channel": firstNonEmpty(r.Channel, "EMAIL"), "fromEmailAddress": r.FromEmailAddress,
		"content": r.Content, "contentType": firstNonEmpty(r.ContentType, "html"), "isForward": r.IsForward}
	for k, v := range map[string]string{"to": r.To, "cc": r.Cc, "bcc": r.Bcc, "ticketStatus": r.TicketStatus} {
		if v != "" {
			body[k] = v
		}
	}
	return d.postOnce(ctx, joinPath("tickets", ticketID, "sendReply"), body, "replying on ticket "+ticketID)
}

// AddComment adds a comment (public or private) to a ticket.
func (d *Desk) AddComment(ctx context.Context, ticketID, content string, public bool) (connector.Record, error) {
	body := map[string]any{"content": content, "contentType": "html", "isPublic": strconv.FormatBool(public)}
	return d.postOnce(ctx, joinPath("tickets", ticketID, "comments"), body, "commenting on ticket "+ticketID)
}

// MergeTickets merges ids into master; source picks, per field, the ticket
// whose value is kept. Repeating a merge is harmless, so it is retried.
func (d *Desk) MergeTickets(ctx context.Context, masterID string, ids []string, source map[string]string) (connector.Record, error) {
	body := map[string]any{"ids": ids}
	if len(source) > 0 {
		body["source"] = source
	}
	resp, err := d.c.do(ctx, request{method: http.MethodPost, path: joinPath("tickets", masterID, "merge"), body: body,
		idempotent: true, action: "merging tickets into " + masterID})
	if err != nil {
		return connector.Record{}, err
	}
	return decodeRecord(resp, deskRecord)
}

// ListThreads lists a ticket's threads (summaries), from is 1-based.
func (d *Desk) ListThreads(ctx context.Context, ticketID string, from, limit int) ([]connector.Record, error) {
	return d.listPath(ctx, joinPath("tickets", ticketID, "threads"), url.Values{}, from, limit, "listing threads of ticket "+ticketID)
}

// GetThread reads one thread with its full content.
func (d *Desk) GetThread(ctx context.Context, ticketID, threadID string) (connector.Record, error) {
	return d.getPath(ctx, joinPath("tickets", ticketID, "threads", threadID), "reading thread "+threadID)
}

// ListComments lists a ticket's comments.
func (d *Desk) ListComments(ctx context.Context, ticketID string, from, limit int) ([]connector.Record, error) {
	return d.listPath(ctx, joinPath("tickets", ticketID, "comments"), url.Values{}, from, limit, "listing comments of ticket "+ticketID)
}

// ArticleQuery filters ListArticles.
type ArticleQuery struct {
	CategoryID string
	Status     string // Draft, Published, …
	Permission string // ALL, REGISTEREDUSERS, AGENTS
	From       int    // 1-based
	Limit      int    // at most 50
}

// ListArticles lists knowledge-base articles.
func (d *Desk) ListArticles(ctx context.Context, q ArticleQuery) ([]connector.Record, error) {
	params := url.Values{}
	for k, v := range map[string]string{"categoryId": q.CategoryID, "status": q.Status, "permission": q.Permission} {
		if v != "" {
			params.Set(k, v)
		}
	}
	return d.listPath(ctx, "/articles", params, q.From, min(firstPositive(q.Limit, 50), 50), "listing articles")
}

// GetArticle reads one article with its answer.
func (d *Desk) GetArticle(ctx context.Context, id string) (connector.Record, error) {
	return d.getPath(ctx, joinPath("articles", id), "reading article "+id)
}

// ListCategories lists the knowledge base's root categories.
func (d *Desk) ListCategories(ctx context.Context) ([]connector.Record, error) {
	return d.listPath(ctx, "/kbRootCategories", url.Values{}, 1, deskListLimit, "listing article categories")
}

// CategoryTree reads a root category with its sections.
func (d *Desk) CategoryTree(ctx context.Context, rootID string) (connector.Record, error) {
	return d.getPath(ctx, joinPath("kbRootCategories", rootID, "categoryTree"), "reading category tree "+rootID)
}

// ReplyAddresses lists a department's reply addresses (GET
// /mailReplyAddress?departmentId=).
func (d *Desk) ReplyAddresses(ctx context.Context, departmentID string) ([]connector.Record, error) {
	q := url.Values{}
	q.Set("departmentId", departmentID)
	var page deskList
	if _, _, err := d.c.getJSON(ctx, request{path: "/mailReplyAddress", query: q, action: "listing reply addresses of department " + departmentID}, &page); err != nil {
		return nil, err
	}
	out := make([]connector.Record, 0, len(page.Data))
	for _, raw := range page.Data {
		out = append(out, deskRecord(raw))
	}
	return out, nil
}

// ListDepartments lists the desk's departments.
func (d *Desk) ListDepartments(ctx context.Context) ([]connector.Record, error) {
	return d.listPath(ctx, "/departments", url.Values{}, 1, 200, "listing departments")
}

// ListAgents lists the desk's agents.
func (d *Desk) ListAgents(ctx context.Context, from, limit int) ([]connector.Record, error) {
	return d.listPath(ctx, "/agents", url.Values{}, from, limit, "listing agents")
}

// ListProfiles lists agent profiles (SPEC C1 permissions are per profile).
func (d *Desk) ListProfiles(ctx context.Context) ([]connector.Record, error) {
	return d.listPath(ctx, "/profiles", url.Values{}, 1, deskListLimit, "listing profiles")
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

func (d *Desk) listPath(ctx context.Context, path string, q url.Values, from, limit int, action string) ([]connector.Record, error) {
	q.Set("from", strconv.Itoa(max(from, 1)))
	q.Set("limit", strconv.Itoa(firstPositive(limit, deskListLimit)))
	var page deskList
	if _, _, err := d.c.getJSON(ctx, request{path: path, query: q, action: action}, &page); err != nil {
		return nil, err
	}
	out := make([]connector.Record, 0, len(page.Data))
	for _, raw := range page.Data {
		out = append(out, deskRecord(raw))
	}
	return out, nil
}

func (d *Desk) getPath(ctx context.Context, path, action string) (connector.Record, error) {
	var raw map[string]any
	ok, _, err := d.c.getJSON(ctx, request{path: path, action: action}, &raw)
	if err != nil {
		return connector.Record{}, err
	}
	if !ok || raw == nil {
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound,
			Message: action + ": nothing returned"}
	}
	return deskRecord(raw), nil
}

// postOnce sends a POST that must not happen twice: an unknown outcome is
// reported, never repeated.
func (d *Desk) postOnce(ctx context.Context, path string, body any, action string) (connector.Record, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodPost, path: path, body: body, action: action})
	if err != nil {
		if isOutcomeUnknown(err) {
			return connector.Record{}, errOutcomeUnknown(action, err)
		}
		return connector.Record{}, err
	}
	return decodeRecord(resp, deskRecord)
}

func decodeRecord(resp *response, conv func(map[string]any) connector.Record) (connector.Record, error) {
	var raw map[string]any
	if err := decodeJSON(resp.body, &raw); err != nil || raw == nil {
		return connector.Record{}, &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
			Message: fmt.Sprintf("decoding answer: %v", err)}
	}
	return conv(raw), nil
}
