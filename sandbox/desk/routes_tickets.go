package desk

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (cl *call) ticket() (*ticket, *APIError) {
	id, e := cl.pathID("ticketId")
	if e != nil {
		return nil, e
	}
	t := cl.org.tickets.get(id)
	if t == nil {
		return nil, errNotFound()
	}
	return t, nil
}

// liveTicket is a ticket that can still be worked on.
func (cl *call) liveTicket() (*ticket, *APIError) {
	t, e := cl.ticket()
	if e != nil {
		return nil, e
	}
	if t.trashed {
		return nil, errTrashed()
	}
	return t, nil
}

// parseTicketFilter reads the filters shared by the list and search.
func parseTicketFilter(o *org, q map[string][]string, search bool) (ticketFilter, *APIError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var f ticketFilter
	ids := func(name string, dst *[]int64) *APIError {
		for _, p := range splitList(get(name)) {
			id, ok := parseID(p)
			if !ok {
				return errBadParam(name)
			}
			*dst = append(*dst, id)
		}
		return nil
	}
	for name, dst := range map[string]*[]int64{"id": &f.ids, "contactId": &f.contactIDs, "accountId": &f.accountIDs,
		"productId": &f.productIDs, "departmentId": &f.departmentIDs, "departmentIds": &f.departmentIDs} {
		if e := ids(name, dst); e != nil {
			return f, e
		}
	}
	assignee := get("assigneeId")
	if !search {
		assignee = get("assignee")
	}
	for _, p := range splitList(assignee) {
		if strings.EqualFold(p, "Unassigned") {
			f.unassigned = true
			continue
		}
		id, ok := parseID(p)
		if !ok {
			return f, errBadParam("assignee")
		}
		f.assigneeIDs = append(f.assigneeIDs, id)
	}
	for _, s := range splitList(get("status")) {
		if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
			f.statusTypes = append(f.statusTypes, s[2:len(s)-1])
			continue
		}
		f.statuses = append(f.statuses, s)
	}
	for _, n := range splitList(get("ticketNumber")) {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return f, errBadParam("ticketNumber")
		}
		f.numbers = append(f.numbers, v)
	}
	f.priority, f.channel, f.category = splitList(get("priority")), splitList(get("channel")), splitList(get("category"))
	var e *APIError
	if search {
		f.subject, f.email, f.phone, f.all = get("subject"), get("email"), get("phone"), get("_all")
		f.contactName, f.accountName, f.productName = get("contactName"), get("accountName"), get("productName")
		f.description = get("description")
		for name, dst := range map[string]*timeRange{"createdTimeRange": &f.created, "modifiedTimeRange": &f.modified,
			"dueDateRange": &f.due, "customerResponseTimeRange": &f.customerResponse} {
			if *dst, e = parseRange(q, name); e != nil {
				return f, e
			}
		}
		for k, v := range q {
			if strings.HasPrefix(k, "cf_") && len(v) > 0 {
				if o.fieldByName(modTickets, k, true) == nil {
					return f, errBadParam(k)
				}
				if f.cf == nil {
					f.cf = map[string]string{}
				}
				f.cf[k] = v[0]
			}
		}
	}
	if v := get("receivedInDays"); v != "" && !search {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, errBadParam("receivedInDays")
		}
		f.receivedSince = -int64(n) // resolved against the clock by the caller
	}
	return f, nil
}

var ticketSearchParams = []string{"id", "ticketNumber", "subject", "email", "phone", "contactId", "contactName", "accountId",
	"accountName", "departmentId", "assigneeId", "status", "priority", "channel", "category", "tag", "productId",
	"productName", "_all", "createdTimeRange", "modifiedTimeRange", "dueDateRange", "customerResponseTimeRange", "description"}

func (c *core) ticketRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/tickets", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "dueDate", "createdTime", "recentThread", "responseDueDate", "customerResponseTime", "ticketNumber", "modifiedTime")
		if e != nil {
			return fail(e)
		}
		if s.key == "" {
			s = sortSpec{key: "createdTime", desc: true}
		}
		f, e := parseTicketFilter(cl.org, cl.q, false)
		if e != nil {
			return fail(e)
		}
		if f.receivedSince < 0 {
			f.receivedSince = c.now() + f.receivedSince*int64(24*time.Hour/time.Millisecond)
		}
		var rows []*ticket
		cl.org.tickets.each(func(t *ticket) bool {
			if f.match(c, cl.org, t) {
				rows = append(rows, t)
			}
			return true
		})
		sortTickets(cl.org, rows, s.upTo(p))
		inc := includes(cl.q)
		var out []map[string]any
		for _, t := range window(rows, p) {
			out = append(out, c.ticketJSON(cl.org, t, inc))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/tickets/search", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 0, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "relevance", "modifiedTime", "createdTime", "customerResponseTime")
		if e != nil {
			return fail(e)
		}
		for k := range cl.q {
			if strings.HasPrefix(k, "cf_") {
				continue
			}
			if e := allowParams(map[string][]string{k: nil}, ticketSearchParams...); e != nil {
				return fail(e)
			}
		}
		f, e := parseTicketFilter(cl.org, cl.q, true)
		if e != nil {
			return fail(e)
		}
		if cl.q.Get("tag") != "" {
			return searchResult(nil, 0) // the fake has no ticket tags
		}
		var rows []*ticket
		cl.org.tickets.each(func(t *ticket) bool {
			if f.match(c, cl.org, t) {
				rows = append(rows, t)
			}
			return true
		})
		sortTickets(cl.org, rows, s.upTo(p))
		inc := includes(cl.q)
		var out []map[string]any
		for _, t := range window(rows, p) {
			out = append(out, c.ticketJSON(cl.org, t, inc))
		}
		return searchResult(out, len(rows))
	})
	c.handle(mux, "GET /api/v1/tickets/{ticketId}", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.ticketJSON(cl.org, t, includes(cl.q)))
	})
	c.handle(mux, "POST /api/v1/tickets", true, func(cl *call) (reply, *APIError) {
		if !cl.org.can(cl.act.agentID, "tickets", "create") {
			return fail(errForbidden())
		}
		t, e := c.createTicket(cl.org, cl.act, cl.body)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.ticketJSON(cl.org, t, nil))
	})
	c.handle(mux, "PATCH /api/v1/tickets/{ticketId}", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		if !cl.org.can(cl.act.agentID, "tickets", "edit") {
			return fail(errForbidden())
		}
		ws, e := cl.org.parseTicketUpdate(cl.body)
		if e != nil {
			return fail(e)
		}
		c.updateTicket(cl.org, cl.act, t, ws)
		return okJSON(c.ticketJSON(cl.org, t, nil))
	})
	c.handle(mux, "POST /api/v1/closeTickets", true, func(cl *call) (reply, *APIError) {
		if !cl.org.can(cl.act.agentID, "tickets", "closeTicket") {
			return fail(errForbidden())
		}
		ids, e := trashIDs(cl.body, "ids")
		if e != nil {
			return fail(e)
		}
		for _, id := range ids {
			if t := cl.org.tickets.get(id); t == nil || t.trashed {
				return fail(errInvalidData(invalid("ids")))
			}
		}
		for _, id := range ids {
			t := cl.org.tickets.get(id)
			if cl.org.statusType(t.status) != "Closed" {
				c.updateTicket(cl.org, cl.act, t, writeSet{std: map[string]any{"status": "Closed"}})
			}
		}
		return noContent()
	})
	c.handle(mux, "POST /api/v1/tickets/moveToTrash", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "ticketIds")
		if e != nil {
			return fail(e)
		}
		for _, id := range ids {
			if t := cl.org.tickets.get(id); t == nil || t.trashed {
				return fail(errInvalidData(invalid("ticketIds")))
			}
		}
		for _, id := range ids {
			c.trashTicket(cl.org, cl.act, cl.org.tickets.get(id), 0)
		}
		return noContent()
	})
	c.handle(mux, "POST /api/v1/tickets/{ticketId}/merge", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		if !cl.org.can(cl.act.agentID, "tickets", "mergeTickets") {
			return fail(errForbidden())
		}
		in, e := parseMerge(cl.body, t.id, func(id int64) bool {
			x := cl.org.tickets.get(id)
			return x != nil && !x.trashed
		})
		if e != nil {
			return fail(e)
		}
		if e := c.mergeTickets(cl.org, cl.act, t, in); e != nil {
			return fail(e)
		}
		return okJSON(c.ticketJSON(cl.org, t, nil))
	})
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/customerHappiness", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		var out []map[string]any
		for _, id := range cl.org.ratingsOf[t.id] {
			out = append(out, c.ratingJSON(cl.org, cl.org.ratings.get(id)))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/customerHappiness", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var dept int64
		if v := cl.q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok {
				return fail(errBadParam("departmentId"))
			}
			dept = id
		}
		values := splitList(strings.ToUpper(cl.q.Get("rating")))
		for _, v := range values {
			if !contains(ratingValues, v) {
				return fail(errBadParam("rating"))
			}
		}
		rated, e := parseRange(cl.q, "ratedTimeRange")
		if e != nil {
			return fail(e)
		}
		var rows []*rating
		cl.org.ratings.each(func(r *rating) bool {
			if (dept == 0 || r.deptID == dept) && (len(values) == 0 || contains(values, r.value)) && rated.contains(r.ratedTime) {
				rows = append(rows, r)
			}
			return true
		})
		sortByInt(rows, func(r *rating) int64 { return r.ratedTime }, func(r *rating) int64 { return r.id }, true, 0)
		var out []map[string]any
		for _, r := range window(rows, p) {
			out = append(out, c.ratingJSON(cl.org, r))
		}
		return list(out)
	})
}

func (c *core) threadRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/threads", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 200)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "sendDateTime")
		if e != nil {
			return fail(e)
		}
		c.materialize(cl.org, t)
		rows := append([]*thread(nil), t.threads...)
		sortByInt(rows, func(th *thread) int64 { return th.createdTime }, func(th *thread) int64 { return th.id }, s.key == "" || s.desc, 0)
		var out []map[string]any
		for _, th := range window(rows, p) {
			out = append(out, c.threadJSON(cl.org, th, false))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/threads/{threadId}", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		id, e := cl.pathID("threadId")
		if e != nil {
			return fail(e)
		}
		c.materialize(cl.org, t)
		th := t.thread(id)
		if th == nil {
			return fail(errNotFound())
		}
		return okJSON(c.threadJSON(cl.org, th, true))
	})
	c.handle(mux, "POST /api/v1/tickets/{ticketId}/sendReply", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		if !cl.org.can(cl.act.agentID, "tickets", "mailSend") {
			return fail(errForbidden())
		}
		th, status, e := c.parseReply(cl.org, t, cl.body, false)
		if e != nil {
			return fail(e)
		}
		c.addAgentThread(cl.org, cl.act, t, th, status)
		return okJSON(c.threadJSON(cl.org, th, true))
	})
	c.handle(mux, "POST /api/v1/tickets/{ticketId}/draftReply", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		th, _, e := c.parseReply(cl.org, t, cl.body, true)
		if e != nil {
			return fail(e)
		}
		c.addAgentThread(cl.org, cl.act, t, th, "")
		return okJSON(c.threadJSON(cl.org, th, true))
	})
	c.handle(mux, "PATCH /api/v1/tickets/{ticketId}/draftReply/{threadId}", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		id, e := cl.pathID("threadId")
		if e != nil {
			return fail(e)
		}
		c.materialize(cl.org, t)
		th := t.thread(id)
		if th == nil || th.status != "DRAFT" {
			return fail(errNotFound())
		}
		upd, _, e := c.parseReply(cl.org, t, cl.body, true)
		if e != nil {
			return fail(e)
		}
		th.channel, th.content, th.contentType, th.from = upd.channel, upd.content, upd.contentType, upd.from
		th.to, th.cc, th.bcc, th.forward = upd.to, upd.cc, upd.bcc, upd.forward
		return okJSON(c.threadJSON(cl.org, th, true))
	})

	c.handle(mux, "GET /api/v1/tickets/{ticketId}/comments", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "commentedTime")
		if e != nil {
			return fail(e)
		}
		c.materialize(cl.org, t)
		rows := append([]*comment(nil), t.comments...)
		sortByInt(rows, func(cm *comment) int64 { return cm.commentedTime }, func(cm *comment) int64 { return cm.id }, s.desc, 0)
		inc := includes(cl.q)
		var out []map[string]any
		for _, cm := range window(rows, p) {
			out = append(out, c.commentJSON(cl.org, cm, inc))
		}
		return list(out)
	})
	commentOf := func(cl *call) (*ticket, *comment, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return nil, nil, e
		}
		id, e := cl.pathID("commentId")
		if e != nil {
			return nil, nil, e
		}
		c.materialize(cl.org, t)
		cm := t.comment(id)
		if cm == nil {
			return nil, nil, errNotFound()
		}
		return t, cm, nil
	}
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/comments/{commentId}", true, func(cl *call) (reply, *APIError) {
		_, cm, e := commentOf(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.commentJSON(cl.org, cm, includes(cl.q)))
	})
	c.handle(mux, "POST /api/v1/tickets/{ticketId}/comments", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		in, e := parseComment(cl.body, true)
		if e != nil {
			return fail(e)
		}
		cm := c.addComment(cl.org, cl.act, t, in)
		return okJSON(c.commentJSON(cl.org, cm, map[string]bool{"mentions": true}))
	})
	c.handle(mux, "PATCH /api/v1/tickets/{ticketId}/comments/{commentId}", true, func(cl *call) (reply, *APIError) {
		t, cm, e := commentOf(cl)
		if e != nil {
			return fail(e)
		}
		if cm.commenterID != cl.act.agentID && !cl.org.can(cl.act.agentID, "tickets", "delete") {
			return fail(errForbidden())
		}
		in, e := parseComment(cl.body, false)
		if e != nil {
			return fail(e)
		}
		c.editComment(cl.org, cl.act, t, cm, in)
		return okJSON(c.commentJSON(cl.org, cm, map[string]bool{"mentions": true}))
	})
	c.handle(mux, "DELETE /api/v1/tickets/{ticketId}/comments/{commentId}", true, func(cl *call) (reply, *APIError) {
		t, cm, e := commentOf(cl)
		if e != nil {
			return fail(e)
		}
		for i, x := range t.comments {
			if x == cm {
				t.comments = append(t.comments[:i], t.comments[i+1:]...)
				break
			}
		}
		return noContent()
	})
}
