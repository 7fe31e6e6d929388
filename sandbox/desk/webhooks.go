package desk

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/deskbridge/deskbridge/sandbox/hooks"
)

// eventKeys lists every event a subscription may name and the filter keys
// its subscription object may carry, as in the Desk OAS.
var eventKeys = map[string][]string{
	"Ticket_Add":               {"departmentIds"},
	"Ticket_Update":            {"departmentIds", "includePrevState", "fields"},
	"Ticket_Delete":            nil,
	"Ticket_Thread_Add":        {"departmentIds", "direction"},
	"Ticket_Comment_Add":       {"departmentIds"},
	"Ticket_Comment_Update":    {"departmentIds"},
	"Ticket_Attachment_Add":    nil,
	"Ticket_Attachment_Update": nil,
	"Contact_Add":              nil,
	"Contact_Update":           {"includePrevState"},
	"Contact_Delete":           nil,
	"Account_Add":              nil,
	"Account_Update":           {"includePrevState"},
	"Account_Delete":           nil,
	"Department_Add":           nil,
	"Department_Update":        {"includePrevState"},
	"Agent_Add":                nil,
	"Agent_Update":             {"includePrevState"},
	"Agent_Delete":             nil,
	"Agent_Presence_Update":    nil,
	"Article_Add":              nil,
	"Article_Update":           {"includePrevState"},
	"Article_Delete":           nil,
	"Article_Feedback_Add":     nil,
	"Task_Add":                 {"departmentIds"},
	"Task_Update":              {"departmentIds", "includePrevState"},
	"Task_Delete":              nil,
	"Call_Add":                 {"departmentIds"},
	"Call_Update":              {"departmentIds", "includePrevState"},
	"Call_Delete":              nil,
	"Event_Add":                {"departmentIds"},
	"Event_Update":             {"departmentIds", "includePrevState"},
	"Event_Delete":             nil,
	"KBRootCategory_Add":       nil,
	"KBRootCategory_Update":    {"includePrevState"},
	"KBRootCategory_Delete":    nil,
	"KBSection_Add":            nil,
	"KBSection_Update":         {"includePrevState"},
	"KBSection_Delete":         nil,
	"IM_Message_Add":           {"departmentIds"},
}

// webhookLimits are the enabled-webhook caps per edition; at most
// maxWebhooks can be configured in any edition.
var webhookLimits = map[string]int{"FREE": 0, "STANDARD": 0, "PROFESSIONAL": 5, "ENTERPRISE": 10}

const maxWebhooks = 20

// event is one change to tell subscribers about.
type event struct {
	typ       string
	deptID    int64          // 0 when the record has no department
	payload   map[string]any // the full record as the API shows it
	prev      map[string]any // previous values of the changed fields
	changed   []string       // changed field names, for Ticket_Update's fields filter
	direction string         // threads: in or out
}

// emit queues a delivery to every webhook subscribed to the event. It runs
// under the fake's lock, so deliveries reach each receiver in the order
// the changes happened.
func (c *core) emit(o *org, act actor, ev event) {
	now := c.now()
	o.webhooks.each(func(w *webhook) bool {
		if !w.enabled {
			return true
		}
		sub, subscribed := w.subs[ev.typ]
		if !subscribed {
			return true
		}
		if act.source != "" && w.ignoreSourceID != "" && strings.EqualFold(act.source, w.ignoreSourceID) {
			return true
		}
		if sub != nil && !sub.matches(ev) {
			return true
		}
		item := map[string]any{
			"eventType": ev.typ,
			"orgId":     strconv.FormatInt(o.id, 10),
			"eventTime": strconv.FormatInt(now, 10),
			"payload":   ev.payload,
		}
		if sub != nil && sub.includePrevState && ev.prev != nil {
			item["prevState"] = ev.prev
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode([]any{item}); err != nil {
			c.log.Error("encode webhook event", "event", ev.typ, "err", err)
			return true
		}
		if c.hooks == nil {
			c.log.Debug("webhook event not sent: no deliverer", "event", ev.typ, "url", w.url)
			return true
		}
		id := w.id
		c.hooks.Send(hooks.Delivery{
			URL:    w.url,
			Body:   buf.Bytes(),
			Header: http.Header{"Content-Type": {"application/json"}},
			Done:   func(status int) { c.delivered(o, id, status) },
		})
		return true
	})
}

// delivered applies Desk's rule that a receiver answering 410 Gone no
// longer wants the webhook.
func (c *core) delivered(o *org, webhookID int64, status int) {
	if status != http.StatusGone {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if o.webhooks.get(webhookID) != nil {
		o.webhooks.del(webhookID)
		c.log.Info("webhook removed: receiver answered 410 Gone", "org", o.id, "webhook", webhookID)
	}
}

func (s *subscription) matches(ev event) bool {
	if len(s.departmentIDs) > 0 {
		found := false
		for _, d := range s.departmentIDs {
			if d == ev.deptID {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if s.direction != "" && ev.direction != "" && s.direction != ev.direction {
		return false
	}
	if len(s.fields) > 0 {
		for _, f := range s.fields {
			if contains(ev.changed, f) {
				return true
			}
		}
		return false
	}
	return true
}

// derivedKeys are response keys computed from other records or the clock;
// they change without anyone updating the record, so they are never
// reported as changed fields.
var derivedKeys = map[string]bool{
	"modifiedTime": true, "modifiedBy": true, "threadCount": true, "commentCount": true, "taskCount": true,
	"attachmentCount": true, "timeEntryCount": true, "approvalCount": true, "sharedCount": true,
	"isOverDue": true, "customerHappiness": true,
}

// diff compares two renderings of a record and returns the previous
// values of what changed (custom fields nested under "cf") and the names
// of the changed fields. modifiedTime always changes and is left out.
func diff(before, after map[string]any) (map[string]any, []string) {
	prev := map[string]any{}
	var changed []string
	for k, av := range after {
		if k == "cf" || derivedKeys[k] {
			continue
		}
		if bv := before[k]; !reflect.DeepEqual(bv, av) {
			prev[k] = bv
			changed = append(changed, k)
		}
	}
	bcf, _ := before["cf"].(map[string]any)
	acf, _ := after["cf"].(map[string]any)
	if len(acf) > 0 || len(bcf) > 0 {
		cfPrev := map[string]any{}
		for k, av := range acf {
			if bv := bcf[k]; !reflect.DeepEqual(bv, av) {
				cfPrev[k] = bv
				changed = append(changed, k)
			}
		}
		if len(cfPrev) > 0 {
			prev["cf"] = cfPrev
		}
	}
	sort.Strings(changed)
	if len(changed) == 0 {
		return nil, nil
	}
	return prev, changed
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *core) webhookJSON(w *webhook) map[string]any {
	subs := map[string]any{}
	for name, s := range w.subs {
		if s == nil {
			subs[name] = nil
			continue
		}
		obj := map[string]any{}
		keys := eventKeys[name]
		if contains(keys, "departmentIds") {
			obj["departmentIds"] = idList(s.departmentIDs)
		}
		if contains(keys, "includePrevState") {
			obj["includePrevState"] = s.includePrevState
		}
		if contains(keys, "fields") {
			obj["fields"] = append([]string{}, s.fields...)
		}
		if contains(keys, "direction") {
			obj["direction"] = nullStr(s.direction)
		}
		subs[name] = obj
	}
	from := append([]string{}, w.includeEventsFrom...)
	return map[string]any{
		"id": idStr(w.id), "name": w.name, "url": w.url, "description": nullStr(w.description),
		"ignoreSourceId": nullStr(w.ignoreSourceID), "includeEventsFrom": from, "isEnabled": w.enabled,
		"subscriptions": subs, "createdBy": idStr(w.createdBy), "createdTime": timeStr(w.createdTime),
		"modifiedTime": timeStr(w.modifiedTime), "type": "CUSTOMER_WEBHOOK",
	}
}

// applyWebhook validates a create or update body into w.
func (c *core) applyWebhook(o *org, w *webhook, body []byte, create bool) *APIError {
	m, e := decodeObject(body)
	if e != nil {
		return e
	}
	var errs []FieldError
	str := func(key string) (string, bool) {
		raw, present := m[key]
		if !present || string(raw) == "null" {
			return "", present
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			errs = append(errs, invalid(key))
		}
		return s, true
	}
	for k := range m {
		switch k {
		case "name", "url", "description", "ignoreSourceId", "includeEventsFrom", "isEnabled", "subscriptions":
		case "id", "createdBy", "createdTime", "modifiedTime", "type":
		default:
			return errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	if s, present := str("name"); present {
		w.name = s
	}
	if s, present := str("description"); present {
		w.description = s
	}
	if s, present := str("url"); present {
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			errs = append(errs, invalid("url"))
		}
		w.url = s
	} else if create {
		errs = append(errs, missing("url"))
	}
	if s, present := str("ignoreSourceId"); present {
		if s != "" && !uuidRe.MatchString(s) {
			errs = append(errs, invalid("ignoreSourceId"))
		}
		w.ignoreSourceID = s
	}
	if raw, present := m["includeEventsFrom"]; present && string(raw) != "null" {
		var from []string
		if json.Unmarshal(raw, &from) != nil {
			errs = append(errs, invalid("includeEventsFrom"))
		}
		for _, f := range from {
			if f != "AUTOMATION" {
				errs = append(errs, invalid("includeEventsFrom"))
			}
		}
		w.includeEventsFrom = from
	}
	if raw, present := m["isEnabled"]; present && string(raw) != "null" {
		if json.Unmarshal(raw, &w.enabled) != nil {
			errs = append(errs, invalid("isEnabled"))
		}
	} else if create {
		w.enabled = true
	}
	if raw, present := m["subscriptions"]; present {
		subs, subErrs := parseSubscriptions(o, raw)
		errs = append(errs, subErrs...)
		w.subs = subs
	} else if create {
		errs = append(errs, missing("subscriptions"))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return errInvalidData(errs...)
	}
	return nil
}

func parseSubscriptions(o *org, raw json.RawMessage) (map[string]*subscription, []FieldError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, []FieldError{invalid("subscriptions")}
	}
	var errs []FieldError
	subs := map[string]*subscription{}
	for name, body := range m {
		keys, known := eventKeys[name]
		path := "subscriptions/" + name
		if !known {
			errs = append(errs, invalid(path))
			continue
		}
		if string(body) == "null" {
			subs[name] = nil
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			errs = append(errs, invalid(path))
			continue
		}
		s := &subscription{}
		for k, v := range obj {
			if !contains(keys, k) {
				errs = append(errs, invalid(path+"/"+k))
				continue
			}
			if string(v) == "null" {
				continue
			}
			switch k {
			case "departmentIds":
				var ids []string
				if json.Unmarshal(v, &ids) != nil {
					errs = append(errs, invalid(path+"/departmentIds"))
					continue
				}
				for _, sid := range ids {
					id, ok := parseID(sid)
					if !ok || o.departments.get(id) == nil {
						errs = append(errs, invalid(path+"/departmentIds"))
						break
					}
					s.departmentIDs = append(s.departmentIDs, id)
				}
			case "includePrevState":
				if json.Unmarshal(v, &s.includePrevState) != nil {
					errs = append(errs, invalid(path+"/includePrevState"))
				}
			case "fields":
				if json.Unmarshal(v, &s.fields) != nil || len(s.fields) > 5 {
					errs = append(errs, invalid(path+"/fields"))
				}
			case "direction":
				if json.Unmarshal(v, &s.direction) != nil || (s.direction != "in" && s.direction != "out") {
					errs = append(errs, invalid(path+"/direction"))
				}
			}
		}
		subs[name] = s
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
	return subs, errs
}

// checkWebhookLimits applies the edition caps.
func checkWebhookLimits(o *org, w *webhook, create bool) *APIError {
	limit := webhookLimits[o.edition]
	if limit == 0 {
		return &APIError{Status: http.StatusForbidden, Code: "LICENSE_ACCESS_LIMITED", Message: "Your Zoho Desk Edition does not support this feature/operation."}
	}
	total, enabled := 0, 0
	o.webhooks.each(func(x *webhook) bool {
		if x.id == w.id {
			return true
		}
		total++
		if x.enabled {
			enabled++
		}
		return true
	})
	if create && total >= maxWebhooks {
		return &APIError{Status: http.StatusUnprocessableEntity, Code: "THRESHOLD_EXCEEDED", Message: "The maximum number of webhooks is configured already."}
	}
	if w.enabled && enabled >= limit {
		return &APIError{Status: http.StatusUnprocessableEntity, Code: "THRESHOLD_EXCEEDED", Message: "The maximum number of enabled webhooks for your edition is reached."}
	}
	return nil
}

func (c *core) webhookRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/webhooks", true, func(cl *call) (reply, *APIError) {
		var out []map[string]any
		cl.org.webhooks.each(func(w *webhook) bool {
			out = append(out, c.webhookJSON(w))
			return true
		})
		return list(out)
	})
	c.handle(mux, "POST /api/v1/webhooks", true, func(cl *call) (reply, *APIError) {
		o := cl.org
		w := &webhook{createdBy: cl.act.agentID}
		if e := c.applyWebhook(o, w, cl.body, true); e != nil {
			return fail(e)
		}
		if e := checkWebhookLimits(o, w, true); e != nil {
			return fail(e)
		}
		w.id = o.newID()
		w.createdTime, w.modifiedTime = c.now(), c.now()
		o.webhooks.put(w.id, w)
		return okJSON(c.webhookJSON(w))
	})
	c.handle(mux, "GET /api/v1/webhooks/{webhookId}", true, func(cl *call) (reply, *APIError) {
		w, e := cl.webhook()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.webhookJSON(w))
	})
	c.handle(mux, "PATCH /api/v1/webhooks/{webhookId}", true, func(cl *call) (reply, *APIError) {
		w, e := cl.webhook()
		if e != nil {
			return fail(e)
		}
		updated := *w
		if e := c.applyWebhook(cl.org, &updated, cl.body, false); e != nil {
			return fail(e)
		}
		if e := checkWebhookLimits(cl.org, &updated, false); e != nil {
			return fail(e)
		}
		updated.modifiedTime = c.now()
		*w = updated
		return okJSON(c.webhookJSON(w))
	})
	c.handle(mux, "DELETE /api/v1/webhooks/{webhookId}", true, func(cl *call) (reply, *APIError) {
		w, e := cl.webhook()
		if e != nil {
			return fail(e)
		}
		cl.org.webhooks.del(w.id)
		return noContent()
	})
}

func (cl *call) webhook() (*webhook, *APIError) {
	id, e := cl.pathID("webhookId")
	if e != nil {
		return nil, e
	}
	w := cl.org.webhooks.get(id)
	if w == nil {
		return nil, errNotFound()
	}
	return w, nil
}
