package zoho

import (
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// SalesIQ paging: page is 1-based, limit at most 99; there is no "more"
// flag, so a short page is the last.
const siqLimit = 99

// ArticlesModule is the one module SalesIQ serves through the connector
// contract: knowledge-base articles, the target of the KB sync (SPEC F2).
// Everything else (portals, departments, operators, conversations,
// visitors) is read through the typed methods.
const ArticlesModule connector.Module = "articles"

// SalesIQ is the Zoho SalesIQ connector. Every answer is HTTP 200; errors
// are {"error":{code,message}} and are classified in errors.go. Safe for
// concurrent use.
type SalesIQ struct {
	c      *client
	clock  Clock
	screen string

	mu   sync.Mutex
	keys map[string]siqKey // webhook id → verification key
	pems map[string]string // webhook id → the PEM Watch generated
}

type siqKey struct {
	pub   *rsa.PublicKey
	token string
}

// NewSalesIQ builds a SalesIQ connector; Settings.SalesIQScreen is the
// portal's screen name (list them with Portals on a connector built
// without it).
func NewSalesIQ(s Settings) (*SalesIQ, error) {
	s.System = connector.SalesIQ
	s, err := s.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("building SalesIQ connector: %w", err)
	}
	ts, err := newTokenSource(s)
	if err != nil {
		return nil, fmt.Errorf("building SalesIQ connector: %w", err)
	}
	return newSalesIQ(s, ts), nil
}

func newSalesIQ(s Settings, ts *TokenSource) *SalesIQ {
	cl := newClient(s, ts)
	cl.base = regionalBase(s, "SalesIQ", s.SalesIQURL, func(dc DataCenter) string { return dc.SalesIQ }, "/api")
	cl.classify = classifySalesIQ
	return &SalesIQ{c: cl, clock: s.Clock, screen: s.SalesIQScreen, keys: map[string]siqKey{}, pems: map[string]string{}}
}

// System reports zoho_salesiq.
func (s *SalesIQ) System() connector.System { return connector.SalesIQ }

// Tokens exposes the connection's token source.
func (s *SalesIQ) Tokens() *TokenSource { return s.c.tokens }

// path builds /v2/{screen}/… .
func (s *SalesIQ) path(segs ...string) string {
	return "/v2" + joinPath(append([]string{s.screen}, segs...)...)
}

type siqList struct {
	Data []map[string]any `json:"data"`
}

// siqRecord converts a SalesIQ object; times are epoch-ms strings.
func siqRecord(m map[string]any) connector.Record {
	r := connector.Record{ID: str(m["id"]), Fields: m}
	delete(m, "id")
	r.CreatedAt = siqTime(m["created_time"])
	r.ModifiedAt = siqTime(cmp.Or(m["modified_time"], m["updated_time"]))
	return r
}

func siqTime(v any) time.Time {
	n, err := strconv.ParseInt(str(v), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// listAll pages through a list endpoint.
func (s *SalesIQ) listAll(ctx context.Context, path string, q url.Values, max int, action string) ([]connector.Record, error) {
	var out []connector.Record
	if q == nil {
		q = url.Values{}
	}
	for page := 1; max <= 0 || len(out) < max; page++ {
		q.Set("page", strconv.Itoa(page))
		q.Set("limit", strconv.Itoa(siqLimit))
		var body siqList
		ok, _, err := s.c.getJSON(ctx, request{path: path, query: q, action: action}, &body)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for _, raw := range body.Data {
			out = append(out, siqRecord(raw))
		}
		if len(body.Data) < siqLimit {
			break
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func (s *SalesIQ) getOne(ctx context.Context, path, action string) (connector.Record, error) {
	var body struct {
		Data map[string]any `json:"data"`
	}
	ok, _, err := s.c.getJSON(ctx, request{path: path, action: action}, &body)
	if err != nil {
		return connector.Record{}, err
	}
	if !ok || body.Data == nil {
		return connector.Record{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonNotFound, Message: action + ": nothing returned"}
	}
	return siqRecord(body.Data), nil
}

// Portals lists the portals the user belongs to; each one's "screenname"
// is what Settings.SalesIQScreen takes (SPEC A5).
func (s *SalesIQ) Portals(ctx context.Context) ([]connector.Record, error) {
	return s.listAll(ctx, "/v2/portals", nil, 0, "listing portals")
}

// Orgs lists the reachable portals as orgs, id = screen name.
func (s *SalesIQ) Orgs(ctx context.Context) ([]connector.Org, error) {
	ps, err := s.Portals(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]connector.Org, 0, len(ps))
	for _, p := range ps {
		out = append(out, connector.Org{ID: str(p.Fields["screenname"]), Name: str(p.Fields["name"])})
	}
	return out, nil
}

// Departments lists the chat departments (SPEC F3).
func (s *SalesIQ) Departments(ctx context.Context) ([]connector.Record, error) {
	return s.listAll(ctx, s.path("departments"), nil, 0, "listing chat departments")
}

// Operators lists the operators; status "" = all, "active", "deactivated".
func (s *SalesIQ) Operators(ctx context.Context, status string) ([]connector.Record, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	return s.listAll(ctx, s.path("operators"), q, 0, "listing operators")
}

// ConversationQuery filters Conversations.
type ConversationQuery struct {
	Status       string // open, closed, waiting, connected, missed, end
	DepartmentID string
	Email        string
	UpdatedFrom  time.Time // updated_from_time
	UpdatedTill  time.Time // updated_till_time
	Max          int       // 0 = all
}

// Conversations lists chats, most recently updated first.
func (s *SalesIQ) Conversations(ctx context.Context, cq ConversationQuery) ([]connector.Record, error) {
	q := url.Values{"sort_by": {"updated_time"}}
	for k, v := range map[string]string{"status": cq.Status, "department_id": cq.DepartmentID, "email": cq.Email} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !cq.UpdatedFrom.IsZero() {
		q.Set("updated_from_time", strconv.FormatInt(cq.UpdatedFrom.UnixMilli(), 10))
	}
	if !cq.UpdatedTill.IsZero() {
		q.Set("updated_till_time", strconv.FormatInt(cq.UpdatedTill.UnixMilli(), 10))
	}
	return s.listAll(ctx, s.path("conversations"), q, cq.Max, "listing conversations")
}

// Conversation reads one chat.
func (s *SalesIQ) Conversation(ctx context.Context, id string) (connector.Record, error) {
	return s.getOne(ctx, s.path("conversations", id), "reading conversation "+id)
}

// Transcript reads a chat's messages, oldest first (SPEC F7).
func (s *SalesIQ) Transcript(ctx context.Context, id string) ([]connector.Record, error) {
	return s.listAll(ctx, s.path("conversations", id, "messages"), nil, 0, "reading transcript of "+id)
}

// VisitorUpdate is an agent's edit of a chat's visitor (SPEC F8).
type VisitorUpdate struct {
	Name, FirstName, LastName, Email, Phone string
}

// UpdateVisitor edits the visitor of a conversation; repeating it is
// harmless.
func (s *SalesIQ) UpdateVisitor(ctx context.Context, conversationID string, u VisitorUpdate) (connector.Record, error) {
	body := map[string]any{}
	for k, v := range map[string]string{"name": u.Name, "first_name": u.FirstName, "last_name": u.LastName, "email": u.Email, "phone": u.Phone} {
		if v != "" {
			body[k] = v
		}
	}
	resp, err := s.c.do(ctx, request{method: http.MethodPut, path: "/visitor/v1" + joinPath(s.screen, "conversations", conversationID, "visitor"),
		body: body, idempotent: true, action: "updating visitor of " + conversationID})
	if err != nil {
		return connector.Record{}, err
	}
	return siqData(resp)
}

func siqData(resp *response) (connector.Record, error) {
	var body struct {
		Data map[string]any `json:"data"`
	}
	if err := decodeJSON(resp.body, &body); err != nil || body.Data == nil {
		return connector.Record{}, &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
			Message: "decoding SalesIQ answer"}
	}
	return siqRecord(body.Data), nil
}

// Categories lists article categories.
func (s *SalesIQ) Categories(ctx context.Context) ([]connector.Record, error) {
	return s.listAll(ctx, s.path("articlecategories"), nil, 0, "listing article categories")
}

// CreateCategory makes an article category serving the departments. A
// category name is unique, so an unknown outcome is settled by looking the
// name up.
func (s *SalesIQ) CreateCategory(ctx context.Context, name string, departmentIDs []string) (connector.Record, error) {
	body := map[string]any{"name": name, "department_ids": departmentIDs}
	for round := 0; ; round++ {
		resp, err := s.c.do(ctx, request{method: http.MethodPost, path: s.path("articlecategories"), body: body,
			action: "creating article category " + name})
		if err == nil {
			return siqData(resp)
		}
		if !isOutcomeUnknown(err) || round >= s.c.attempts {
			return connector.Record{}, err
		}
		cats, lerr := s.Categories(ctx)
		if lerr != nil {
			return connector.Record{}, errOutcomeUnknown("creating article category", lerr)
		}
		for _, c := range cats {
			if strings.EqualFold(str(c.Fields["name"]), name) {
				return c, nil
			}
		}
	}
}

// ListChanged lists articles modified after the cursor, oldest first.
// SalesIQ has no modified-time filter: every call reads the article list
// (a knowledge base is small) and orders it by modified_time.
func (s *SalesIQ) ListChanged(ctx context.Context, m connector.Module, after connector.Cursor, limit int) (connector.ChangePage, error) {
	if err := s.module(m); err != nil {
		return connector.ChangePage{}, err
	}
	cur, err := decodeCursor(after, m)
	if err != nil {
		return connector.ChangePage{}, err
	}
	all, err := s.listAll(ctx, s.path("articles"), nil, 0, "listing articles")
	if err != nil {
		return connector.ChangePage{}, err
	}
	slices.SortStableFunc(all, func(a, b connector.Record) int {
		if n := a.ModifiedAt.Compare(b.ModifiedAt); n != 0 {
			return n
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if limit <= 0 {
		limit = siqLimit
	}
	var out []connector.Record
	done := true
	for _, r := range all {
		if cur.delivered(r.ModifiedAt, r.ID) {
			continue
		}
		if len(out) >= limit {
			done = false
			break
		}
		cur.advance(r.ModifiedAt, r.ID)
		out = append(out, r)
	}
	return connector.ChangePage{Records: out, Next: cur.encode(), Done: done}, nil
}

func (s *SalesIQ) module(m connector.Module) error {
	if m != ArticlesModule {
		return &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid, Field: "module",
			Message: fmt.Sprintf("SalesIQ serves only the %q module through the connector contract, not %q", ArticlesModule, m)}
	}
	return nil
}

// StartAt returns the cursor of the moment t.
func (s *SalesIQ) StartAt(m connector.Module, t time.Time) connector.Cursor { return startCursor(m, t) }

// Get reads one article.
func (s *SalesIQ) Get(ctx context.Context, m connector.Module, id string) (connector.Record, error) {
	if err := s.module(m); err != nil {
		return connector.Record{}, err
	}
	return s.getOne(ctx, s.path("articles", id), "reading article "+id)
}

// GetMany reads articles by id; missing ones are left out.
func (s *SalesIQ) GetMany(ctx context.Context, m connector.Module, ids []string) ([]connector.Record, error) {
	var out []connector.Record
	for _, id := range ids {
		r, err := s.Get(ctx, m, id)
		if e := asError(err); e != nil && e.Reason == connector.ReasonNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Find finds articles by source_id (the desk article a synced copy came
// from, filtered by SalesIQ), or by any other field compared here.
func (s *SalesIQ) Find(ctx context.Context, m connector.Module, q connector.Query) ([]connector.Record, error) {
	if err := s.module(m); err != nil {
		return nil, err
	}
	params := url.Values{}
	if q.Field == "source_id" || q.Field == "category_id" || q.Field == "status" || q.Field == "source" {
		params.Set(q.Field, q.Value)
	}
	all, err := s.listAll(ctx, s.path("articles"), params, 0, "searching articles")
	if err != nil {
		return nil, err
	}
	var out []connector.Record
	for _, r := range all {
		if strings.EqualFold(strings.TrimSpace(str(r.Fields[q.Field])), strings.TrimSpace(q.Value)) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Deleted returns nothing: SalesIQ keeps no deleted-articles feed. The KB
// sync only writes to SalesIQ, so it never needs one.
func (s *SalesIQ) Deleted(ctx context.Context, m connector.Module, since time.Time) ([]connector.Deletion, error) {
	return nil, s.module(m)
}

// Fields describes an article; SalesIQ has no field metadata API.
func (s *SalesIQ) Fields(ctx context.Context, m connector.Module) ([]connector.Field, error) {
	if err := s.module(m); err != nil {
		return nil, err
	}
	return []connector.Field{
		{Name: "title", Label: "Title", Type: connector.TypeText, Mandatory: true},
		{Name: "content", Label: "Content", Type: connector.TypeTextArea, Mandatory: true},
		{Name: "category_id", Label: "Category", Type: connector.TypeLookup, LookupModule: "articlecategories"},
		{Name: "department_ids", Label: "Departments", Type: connector.TypeMultiPicklist},
		{Name: "status", Label: "Status", Type: connector.TypePicklist, Picklist: []string{"published", "draft"}},
		{Name: "source", Label: "Source", Type: connector.TypePicklist, Picklist: []string{"salesiq", "zoho_desk"}},
		{Name: "source_id", Label: "Source id", Type: connector.TypeText},
		{Name: "read_only", Label: "Read only", Type: connector.TypeBoolean, ReadOnly: true},
		{Name: "tags", Label: "Tags", Type: connector.TypeMultiPicklist, ReadOnly: true},
		{Name: "created_time", Label: "Created", Type: connector.TypeDateTime, ReadOnly: true},
		{Name: "modified_time", Label: "Modified", Type: connector.TypeDateTime, ReadOnly: true},
	}, nil
}

// BatchSize: one request per article.
func (s *SalesIQ) BatchSize() int { return 20 }

// Write creates, updates or upserts articles. Synced copies should carry
// source "zoho_desk" and source_id (the desk article id): SalesIQ then
// keeps them read-only (SPEC F2), and source_id is also the key an
// unknown create outcome is settled by, and Upsert's natural
// DuplicateCheck.
func (s *SalesIQ) Write(ctx context.Context, m connector.Module, ws []connector.Write) ([]connector.Result, error) {
	if err := s.module(m); err != nil {
		return nil, err
	}
	results := make([]connector.Result, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.writeOne(ctx, w)
		}()
	}
	wg.Wait()
	return results, nil
}

func (s *SalesIQ) writeOne(ctx context.Context, w connector.Write) connector.Result {
	switch w.Op {
	case connector.Update:
		if _, err := s.c.do(ctx, request{method: http.MethodPut, path: s.path("articles", w.ID), body: w.Fields,
			idempotent: true, action: "updating article " + w.ID}); err != nil {
			return connector.Result{ID: w.ID, Err: err}
		}
		return connector.Result{ID: w.ID}
	case connector.Upsert:
		for _, f := range w.DuplicateCheck {
			v := scalar(w.Fields[f])
			if v == "" {
				continue
			}
			found, err := s.Find(ctx, ArticlesModule, connector.Query{Field: f, Value: v})
			if err != nil {
				return connector.Result{Err: err}
			}
			if len(found) > 0 {
				return s.writeOne(ctx, connector.Write{Op: connector.Update, ID: found[0].ID, Fields: w.Fields})
			}
			break
		}
		fallthrough
	case connector.Create:
		return s.createArticle(ctx, w.Fields)
	}
	return connector.Result{Err: &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
		Message: fmt.Sprintf("writing articles: unknown operation %d", w.Op)}}
}

func (s *SalesIQ) createArticle(ctx context.Context, fields map[string]any) connector.Result {
	action := "creating article"
	for round := 0; ; round++ {
		resp, err := s.c.do(ctx, request{method: http.MethodPost, path: s.path("articles"), body: fields, action: action})
		if err == nil {
			rec, derr := siqData(resp)
			if derr != nil {
				return connector.Result{Err: derr}
			}
			return connector.Result{ID: rec.ID, Created: true}
		}
		if !isOutcomeUnknown(err) {
			return connector.Result{Err: err}
		}
		if round >= s.c.attempts {
			return connector.Result{Err: errOutcomeUnknown(action, err)}
		}
		// Look for it: by source_id when the article has one, else by
		// every value sent.
		q := connector.Query{Field: "title", Value: str(fields["title"])}
		if sid := str(fields["source_id"]); sid != "" {
			q = connector.Query{Field: "source_id", Value: sid}
		}
		found, ferr := s.Find(ctx, ArticlesModule, q)
		if ferr != nil {
			return connector.Result{Err: errOutcomeUnknown(action, ferr)}
		}
		var mt matcher
		if id := mt.match(fields, found, nil); id != "" {
			return connector.Result{ID: id, Created: true}
		}
	}
}

// Delete deletes articles (SalesIQ has no trash); a repeat that finds the
// article gone counts as done.
func (s *SalesIQ) Delete(ctx context.Context, m connector.Module, ids []string) ([]connector.Result, error) {
	if err := s.module(m); err != nil {
		return nil, err
	}
	results := make([]connector.Result, len(ids))
	for i, id := range ids {
		_, err := s.c.do(ctx, request{method: http.MethodDelete, path: s.path("articles", id), idempotent: true,
			action: "deleting article " + id})
		results[i] = connector.Result{ID: id, Err: err}
	}
	return results, nil
}

// Webhooks.

// siqEvents are the events Watch subscribes to per module.
var siqEvents = map[connector.Module][]string{
	"conversations": {"conversation.created", "conversation.attender.updated", "conversation.missed",
		"conversation.completed", "conversation.operator.replied", "conversation.visitor.replied"},
	"visitors": {"visitor.updated"},
}

// CreateWebhook subscribes url to events; appIDs "" = every brand.
func (s *SalesIQ) CreateWebhook(ctx context.Context, target string, events, appIDs []string) (connector.Record, error) {
	body := map[string]any{"type": "data", "url": target, "events": events, "version": "1"}
	if len(appIDs) > 0 {
		body["app_ids"] = appIDs
	}
	resp, err := s.c.do(ctx, request{method: http.MethodPost, path: s.path("webhooks"), body: body, action: "creating SalesIQ webhook"})
	if err != nil {
		return connector.Record{}, err
	}
	return siqData(resp)
}

// DeleteWebhook deletes a webhook; one already gone counts as deleted.
func (s *SalesIQ) DeleteWebhook(ctx context.Context, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: s.path("webhooks", id), idempotent: true,
		action: "deleting SalesIQ webhook " + id})
	if e := asError(err); e != nil && e.Reason == connector.ReasonNotFound {
		return nil
	}
	return err
}

// GenerateWebhookKey makes the webhook's signing key pair and returns the
// public key (PEM); deliveries are signed with it from then on.
func (s *SalesIQ) GenerateWebhookKey(ctx context.Context, id string) (string, error) {
	resp, err := s.c.do(ctx, request{method: http.MethodPost, path: s.path("webhooks", id, "keys"), idempotent: true,
		action: "generating key of SalesIQ webhook " + id})
	if err != nil {
		return "", err
	}
	var body struct {
		Data struct {
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Data.PublicKey == "" {
		return "", &connector.Error{Class: connector.Transient, Raw: truncate(resp.body), Message: "generating webhook key: no public key in the answer"}
	}
	return body.Data.PublicKey, nil
}

// TrustWebhookKey registers a webhook's public key (PEM) for
// ParseNotification, e.g. one stored from an earlier Watch.
func (s *SalesIQ) TrustWebhookKey(webhookID, publicKeyPEM, token string) error {
	pub, err := parseRSAPublicKey(publicKeyPEM)
	if err != nil {
		return fmt.Errorf("trusting SalesIQ webhook key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[webhookID] = siqKey{pub: pub, token: token}
	return nil
}

// Watch subscribes to conversation and visitor events ("conversations",
// "visitors"), generates the signing key and trusts it. The key lives in
// this connector value: store WebhookKey(sub.ID) with the subscription,
// and a restarted gateway re-registers it with TrustWebhookKey.
func (s *SalesIQ) Watch(ctx context.Context, req connector.WatchRequest) (connector.Subscription, error) {
	var events []string
	for _, m := range req.Modules {
		evs, ok := siqEvents[m]
		if !ok {
			return connector.Subscription{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid,
				Field: "modules", Message: fmt.Sprintf("subscribing: SalesIQ has no events for %s", m)}
		}
		events = append(events, evs...)
	}
	wh, err := s.CreateWebhook(ctx, req.URL, events, nil)
	if err != nil {
		return connector.Subscription{}, err
	}
	pemKey, err := s.GenerateWebhookKey(ctx, wh.ID)
	if err != nil {
		_ = s.DeleteWebhook(ctx, wh.ID)
		return connector.Subscription{}, err
	}
	if err := s.TrustWebhookKey(wh.ID, pemKey, req.Token); err != nil {
		return connector.Subscription{}, err
	}
	s.mu.Lock()
	s.pems[wh.ID] = pemKey
	s.mu.Unlock()
	return connector.Subscription{ID: wh.ID}, nil
}

// WebhookKey returns the PEM public key Watch generated for a webhook, so
// the engine can store it and hand it to TrustWebhookKey after a restart.
func (s *SalesIQ) WebhookKey(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.pems[id]
	return k, ok
}

// Unwatch deletes the webhook and forgets its key.
func (s *SalesIQ) Unwatch(ctx context.Context, id string) error {
	if err := s.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.keys, id)
	s.mu.Unlock()
	return nil
}

// ParseNotification verifies x-siqsignature against the trusted keys and
// reads the delivery. A body no trusted key signed is refused. The
// Change's Token is the token Watch was given for the webhook whose key
// verified it.
func (s *SalesIQ) ParseNotification(header http.Header, body []byte) ([]connector.Change, error) {
	sig := header.Get("x-siqsignature")
	s.mu.Lock()
	keys := make([]siqKey, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var token string
	verified := false
	var lastErr error
	for _, k := range keys {
		if err := verifyRSA(k.pub, body, sig); err == nil {
			verified, token = true, k.token
			break
		} else {
			lastErr = err
		}
	}
	if !verified {
		if lastErr == nil {
			lastErr = fmt.Errorf("no webhook key is trusted")
		}
		return nil, fmt.Errorf("%w: %v", errBadNotification, lastErr)
	}
	changes, err := parseSalesIQNotification(body)
	if err != nil {
		return nil, err
	}
	for i := range changes {
		changes[i].Token = token
	}
	return changes, nil
}

// siqDelivery is a webhook body: {entity_id, event_time, event,
// entity_type, entity}.
type siqDelivery struct {
	EntityID   json.RawMessage `json:"entity_id"`
	EventTime  json.RawMessage `json:"event_time"`
	Event      string          `json:"event"`
	EntityType string          `json:"entity_type"`
	Entity     json.RawMessage `json:"entity"`
}

// parseSalesIQNotification reads a delivery without checking its
// signature.
func parseSalesIQNotification(body []byte) ([]connector.Change, error) {
	if len(body) > maxNotification {
		return nil, badNotification("body of %d bytes", len(body))
	}
	var d siqDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, badNotification("SalesIQ delivery: %v", err)
	}
	var entity map[string]any
	if len(d.Entity) > 0 {
		_ = decodeJSON(d.Entity, &entity)
	}
	id := rawID(d.EntityID)
	if id == "" {
		id = str(entity["id"])
	}
	if id == "" {
		return nil, badNotification("SalesIQ delivery without an entity id")
	}
	typ := d.EntityType
	if typ == "" {
		typ, _, _ = strings.Cut(d.Event, ".")
	}
	ch := connector.Change{IDs: []string{id}, Kind: connector.Updated}
	switch typ {
	case "conversation":
		ch.Module = "conversations"
	case "visitor":
		ch.Module = "visitors"
	default:
		return nil, badNotification("SalesIQ delivery of unknown entity %q", typ)
	}
	if d.Event == "conversation.created" {
		ch.Kind = connector.Created
	}
	if entity != nil {
		ch.Records = []connector.Record{siqRecord(entity)}
		if ch.Records[0].ID == "" {
			ch.Records[0].ID = id
		}
	}
	if ms, err := strconv.ParseInt(strings.Trim(string(d.EventTime), `"`), 10, 64); err == nil && ms > 0 {
		ch.At = time.UnixMilli(ms)
	}
	return []connector.Change{ch}, nil
}
