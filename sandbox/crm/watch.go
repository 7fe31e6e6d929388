package crm

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/hooks"
)

// Watch channel limits.
const (
	defaultChannelLife = time.Hour
	maxChannelLife     = 7 * 24 * time.Hour
	maxWatchToken      = 50
)

// channel is a notification subscription (CRM "actions/watch").
type channel struct {
	id        string
	events    []string // "Module.op", op one of create, edit, delete, all
	expiry    time.Time
	token     string
	notifyURL string
	query     map[string]string
	affected  bool // return_affected_field_values
	related   bool // notify_on_related_action (accepted, stored, not acted on)
	base      string
}

var watchOps = map[string]string{"insert": "create", "update": "edit", "delete": "delete"}

func (ch *channel) wants(module, op string) bool {
	for _, e := range ch.events {
		m, o, _ := strings.Cut(e, ".")
		if m == module && (o == "all" || o == watchOps[op]) {
			return true
		}
	}
	return false
}

func (ch *channel) modules() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range ch.events {
		m, _, _ := strings.Cut(e, ".")
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// resourceURI keeps /crm/v2/ as the real service does whatever version the
// subscription used; Bigin's is assumed to be /bigin/v2/.
func (s *Server) resourceURI(base, module string) string {
	if s.o.Flavor == Bigin {
		return base + "/bigin/v2/" + module
	}
	return base + "/crm/v2/" + module
}

func (s *Server) channelEvents(ch *channel) []any {
	var out []any
	for _, m := range ch.modules() {
		out = append(out, map[string]any{"channel_expiry": s.renderTime(ch.expiry.Unix()),
			"resource_uri": s.resourceURI(ch.base, m), "resource_id": s.mods[m].id, "resource_name": m,
			"channel_id": ch.id})
	}
	return out
}

func watchErr(code, msg string, i int, api string, extra map[string]any) map[string]any {
	d := map[string]any{"api_name": api, "json_path": "$.watch[" + strconv.Itoa(i) + "]." + api}
	for k, v := range extra {
		d[k] = v
	}
	return errf(400, code, msg, d).body()
}

// watch serves /actions/watch: POST subscribes, GET lists, PUT replaces,
// PATCH updates the given keys, DELETE unsubscribes.
func (s *Server) watch(c *call) {
	switch c.r.Method {
	case http.MethodGet:
		s.listWatch(c)
		return
	case http.MethodDelete:
		s.unwatch(c)
		return
	}
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	items, ok := body["watch"].([]any)
	if !ok || len(items) == 0 {
		c.fail(missingParam("watch"))
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	results := make([]any, len(items))
	good, bad := 0, 0
	for i, it := range items {
		in, isObj := it.(map[string]any)
		if !isObj {
			results[i], bad = watchErr("INVALID_DATA", "invalid data", i, "watch", nil), bad+1
			continue
		}
		ch, res := s.parseChannel(c, in, i, now)
		if ch == nil {
			results[i], bad = res, bad+1
			continue
		}
		c.o.channels[ch.id] = ch
		msg := "Successfully subscribed for actions-watch of the given module"
		if c.r.Method != http.MethodPost {
			msg = "Successfully updated the subscribe details"
		}
		results[i], good = map[string]any{"code": "SUCCESS", "status": "success", "message": msg,
			"details": map[string]any{"events": s.channelEvents(ch)}}, good+1
	}
	s.mu.Unlock()
	// Subscribing answers 201 Created (crm-oas notifications.json); replacing
	// or patching details answers 200.
	allOK := http.StatusOK
	if c.r.Method == http.MethodPost {
		allOK = http.StatusCreated
	}
	writeJSON(c.w, batchStatus(good, bad, allOK), map[string]any{"watch": results})
}

// parseChannel validates one subscription; on failure it returns nil and
// the error element. Called with s.mu held.
func (s *Server) parseChannel(c *call, in map[string]any, i int, now time.Time) (*channel, map[string]any) {
	id := refID(in["channel_id"])
	if id == "" {
		return nil, watchErr("MANDATORY_NOT_FOUND", "required field not found", i, "channel_id", nil)
	}
	if !numeric(id) {
		return nil, watchErr("INVALID_DATA", "invalid data", i, "channel_id", map[string]any{"expected_data_type": "long"})
	}
	old := c.o.channels[id]
	if old != nil && !now.Before(old.expiry) {
		delete(c.o.channels, id)
		old = nil
	}
	method := c.r.Method
	ch := &channel{id: id, base: c.base(), expiry: now.Add(defaultChannelLife)}
	switch {
	case method == http.MethodPatch || method == http.MethodPut:
		if old == nil {
			return nil, watchErr("NOT_SUBSCRIBED", "the channel is not subscribed for actions-watch", i, "channel_id", nil)
		}
		if method == http.MethodPatch {
			cp := *old
			ch = &cp
			ch.events = append([]string(nil), old.events...)
		}
	}
	if raw, given := in["events"]; given {
		list, ok := raw.([]any)
		if !ok || len(list) == 0 {
			return nil, watchErr("INVALID_DATA", "invalid data", i, "events", nil)
		}
		var evs []string
		for k, x := range list {
			e, _ := x.(string)
			mod, op, ok := strings.Cut(e, ".")
			api, known := s.lower[strings.ToLower(mod)]
			op = strings.ToLower(op)
			if !ok || !known || (op != "create" && op != "edit" && op != "delete" && op != "all") {
				return nil, watchErr("INVALID_DATA", "the event given seems to be invalid", i, "events",
					map[string]any{"json_path": "$.watch[" + strconv.Itoa(i) + "].events[" + strconv.Itoa(k) + "]"})
			}
			evs = append(evs, api+"."+op)
		}
		del, _ := in["_delete_events"].(bool)
		switch {
		case method == http.MethodPatch && del:
			var kept []string
			for _, have := range ch.events {
				if !contains(evs, have) {
					kept = append(kept, have)
				}
			}
			if len(kept) == 0 {
				return nil, watchErr("INVALID_DATA", "a channel needs at least one event", i, "events", nil)
			}
			ch.events = kept
		case method == http.MethodPatch:
			for _, e := range evs {
				if !contains(ch.events, e) {
					ch.events = append(ch.events, e)
				}
			}
		default:
			ch.events = evs
		}
	} else if method != http.MethodPatch {
		return nil, watchErr("MANDATORY_NOT_FOUND", "required field not found", i, "events", nil)
	}
	if raw, given := in["notify_url"]; given {
		str, _ := raw.(string)
		u, err := url.Parse(str)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, watchErr("INVALID_DATA", "invalid data", i, "notify_url", nil)
		}
		ch.notifyURL = str
		ch.query = map[string]string{}
		for k, v := range u.Query() {
			ch.query[k] = v[0]
		}
	} else if method != http.MethodPatch {
		return nil, watchErr("MANDATORY_NOT_FOUND", "required field not found", i, "notify_url", nil)
	}
	if raw, given := in["token"]; given && raw != nil {
		tok, ok := raw.(string)
		if !ok {
			return nil, watchErr("INVALID_DATA", "invalid data", i, "token", map[string]any{"expected_data_type": "text"})
		}
		if len([]rune(tok)) > maxWatchToken {
			return nil, watchErr("INVALID_DATA", "invalid data", i, "token", map[string]any{"maximum_length": maxWatchToken})
		}
		ch.token = tok
	}
	if raw, given := in["channel_expiry"]; given && raw != nil {
		str, _ := raw.(string)
		t, ok := parseTime(str)
		if !ok || !t.After(now) || t.After(now.Add(maxChannelLife)) {
			return nil, watchErr("INVALID_DATA", "channel_expiry must be a future time within one week", i, "channel_expiry", nil)
		}
		ch.expiry = t
	}
	for key, dst := range map[string]*bool{"return_affected_field_values": &ch.affected, "notify_on_related_action": &ch.related} {
		if raw, given := in[key]; given && raw != nil {
			b, ok := raw.(bool)
			if !ok {
				return nil, watchErr("INVALID_DATA", "invalid data", i, key, map[string]any{"expected_data_type": "boolean"})
			}
			*dst = b
		}
	}
	return ch, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// listWatch serves GET /actions/watch: one element per channel and module.
func (s *Server) listWatch(c *call) {
	perPage, e := intParam(c.q, "per_page", maxPerPage, 1, maxPerPage)
	if e != nil {
		c.fail(e)
		return
	}
	page, e := intParam(c.q, "page", 1, 1, 0)
	if e != nil {
		c.fail(e)
		return
	}
	wantChannel, wantModule := c.q.Get("channel_id"), c.q.Get("module")
	now := s.clock.Now()
	s.mu.Lock()
	var rows []any
	for _, ch := range c.o.liveChannels(now) {
		if wantChannel != "" && ch.id != wantChannel {
			continue
		}
		for _, m := range ch.modules() {
			if wantModule != "" && !strings.EqualFold(wantModule, m) {
				continue
			}
			var evs []string
			for _, e := range ch.events {
				if strings.HasPrefix(e, m+".") {
					evs = append(evs, e)
				}
			}
			rows = append(rows, map[string]any{"channel_id": ch.id, "events": evs,
				"channel_expiry": s.renderTime(ch.expiry.Unix()), "token": nilIfEmpty(ch.token),
				"notify_url": ch.notifyURL, "return_affected_field_values": ch.affected,
				"notify_on_related_action": ch.related, "resource_uri": s.resourceURI(ch.base, m),
				"resource_id": s.mods[m].id, "resource_name": m})
		}
	}
	s.mu.Unlock()
	start := (page - 1) * perPage
	if start >= len(rows) {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	end := min(start+perPage, len(rows))
	writeJSON(c.w, http.StatusOK, map[string]any{"watch": rows[start:end], "info": map[string]any{
		"per_page": perPage, "count": end - start, "page": page, "more_records": end < len(rows)}})
}

// unwatch serves DELETE /actions/watch?channel_ids=….
func (s *Server) unwatch(c *call) {
	raw := c.q.Get("channel_ids")
	if raw == "" {
		c.fail(missingParam("channel_ids"))
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	var results []any
	good, bad := 0, 0
	for _, id := range strings.Split(raw, ",") {
		id = strings.TrimSpace(id)
		ch := c.o.channels[id]
		if ch == nil || !now.Before(ch.expiry) {
			results = append(results, errf(400, "NOT_SUBSCRIBED", "the channel is not subscribed for actions-watch",
				map[string]any{"channel_id": id}).body())
			bad++
			continue
		}
		delete(c.o.channels, id)
		results = append(results, map[string]any{"code": "SUCCESS", "status": "success",
			"message": "Successfully un-subscribed from actions-watch",
			"details": map[string]any{"events": s.channelEvents(ch)}})
		good++
	}
	s.mu.Unlock()
	writeJSON(c.w, batchStatus(good, bad, http.StatusOK), map[string]any{"watch": results})
}

// liveChannels drops expired channels and returns the rest by id. Called
// with s.mu held.
func (o *Org) liveChannels(now time.Time) []*channel {
	var out []*channel
	for id, ch := range o.channels {
		if !now.Before(ch.expiry) {
			delete(o.channels, id)
			continue
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// callback is the body Zoho POSTs to a channel's notify_url.
type callback struct {
	ServerTime     int64                 `json:"server_time"`
	QueryParams    map[string]string     `json:"query_params"`
	Module         string                `json:"module"`
	ResourceURI    string                `json:"resource_uri"`
	IDs            []string              `json:"ids"`
	AffectedFields []map[string][]string `json:"affected_fields"`
	Operation      string                `json:"operation"`
	ChannelID      string                `json:"channel_id"`
	Token          *string               `json:"token"`
}

// queueNotifications turns a write's batches into callbacks, one per
// channel, module and operation. Called with s.mu held; flush sends them.
func (o *Org) queueNotifications(w *writer) {
	now := o.s.clock.Now()
	chans := o.liveChannels(now)
	for _, b := range w.batches {
		for _, ch := range chans {
			if !ch.wants(b.module, b.op) {
				continue
			}
			cb := callback{ServerTime: now.UnixMilli(), QueryParams: ch.query, Module: b.module,
				ResourceURI: o.s.resourceURI(ch.base, b.module), IDs: append([]string(nil), b.ids...),
				AffectedFields: []map[string][]string{}, Operation: b.op, ChannelID: ch.id}
			if ch.token != "" {
				tok := ch.token
				cb.Token = &tok
			}
			if ch.affected && b.op == "update" {
				for _, id := range b.ids {
					fields := b.fields[id]
					if fields == nil {
						fields = []string{}
					}
					cb.AffectedFields = append(cb.AffectedFields, map[string][]string{id: fields})
				}
			}
			body, err := json.Marshal(cb)
			if err != nil {
				o.s.log.Error("encoding a watch callback", "err", err)
				continue
			}
			o.s.outbox = append(o.s.outbox, hooks.Delivery{URL: ch.notifyURL, Body: body,
				Header: http.Header{"Content-Type": {"application/json"}}})
		}
	}
}

// flush hands queued callbacks to the deliverer in commit order, without
// holding the data lock.
func (s *Server) flush() {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.mu.Lock()
	out := s.outbox
	s.outbox = nil
	s.mu.Unlock()
	if s.o.Hooks == nil {
		if len(out) > 0 {
			s.log.Debug("watch callbacks dropped: no deliverer", "count", len(out))
		}
		return
	}
	for _, d := range out {
		s.o.Hooks.Send(d)
	}
}
