package desk

import (
	"encoding/json"
	"html"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// threadChannels are the channels sendReply accepts.
var threadChannels = []string{"EMAIL", "FACEBOOK", "TWITTER", "TWITTER_DM", "FORUMS", "ONLINE_CHAT", "OFFLINE_CHAT",
	"CUSTOMERPORTAL", "PHONE", "WEB", "FEEDBACK", "FEEDBACK_WIDGET"}

// fromRequired lists the channels whose replies need fromEmailAddress.
var fromRequired = []string{"EMAIL", "ONLINE_CHAT", "OFFLINE_CHAT", "CUSTOMERPORTAL", "FORUMS"}

var tagRe = regexp.MustCompile(`<[^>]*>`)

// plainText strips HTML for summaries and search.
func plainText(s string) string {
	s = tagRe.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

func sortThreads(list []*thread) {
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].createdTime == list[j].createdTime {
			return list[i].id < list[j].id
		}
		return list[i].createdTime < list[j].createdTime
	})
}

func (c *core) threadJSON(o *org, th *thread, full bool) map[string]any {
	author := map[string]any{"id": idStr(th.authorID), "name": th.authorName, "email": nullStr(th.authorEmail),
		"type": th.authorType, "photoURL": nil, "firstName": nil, "lastName": th.authorName}
	if a := o.agents.get(th.authorID); a != nil && th.authorType == "AGENT" {
		author["firstName"], author["lastName"] = a.firstName, a.lastName
	}
	var responder any
	if th.direction == "out" {
		responder = idStr(th.authorID)
	}
	out := map[string]any{
		"id": idStr(th.id), "channel": th.channel, "direction": th.direction, "visibility": th.visibility,
		"status": th.status, "contentType": th.contentType, "summary": truncate(plainText(th.content), 100),
		"fromEmailAddress": nullStr(th.from), "to": nullStr(th.to), "cc": th.cc, "bcc": th.bcc, "replyTo": nil,
		"isForward": th.forward, "hasAttach": false, "attachmentCount": "0", "isDescriptionThread": th.isDesc,
		"canReply": th.status != "DRAFT", "responderId": responder, "respondedIn": nil, "createdTime": timeStr(th.createdTime),
		"author": author, "source": map[string]any{"type": "SYSTEM", "appName": nil, "extId": nil, "permalink": nil, "appPhotoURL": nil},
		"actions": []any{}, "channelRelatedInfo": nil,
	}
	if full {
		out["content"] = th.content
		out["isContentTruncated"] = false
		out["fullContentURL"] = nil
		out["attachments"] = []any{}
	}
	return out
}

// addresses checks a to/cc/bcc list: addresses separated by commas or
// semicolons, optionally as "Name <address>".
func addresses(s string) bool {
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		part = strings.TrimSpace(part)
		if i := strings.LastIndex(part, "<"); i >= 0 && strings.HasSuffix(part, ">") {
			part = part[i+1 : len(part)-1]
		}
		if !emailRe.MatchString(part) {
			return false
		}
	}
	return true
}

// replyInput is a sendReply or draftReply body.
type replyInput struct {
	Channel          *string  `json:"channel"`
	Content          *string  `json:"content"`
	ContentType      *string  `json:"contentType"`
	FromEmailAddress *string  `json:"fromEmailAddress"`
	To               *string  `json:"to"`
	Cc               *string  `json:"cc"`
	Bcc              *string  `json:"bcc"`
	IsForward        *bool    `json:"isForward"`
	AttachmentIDs    []string `json:"attachmentIds"`
	TicketStatus     *string  `json:"ticketStatus"`
	InReplyTo        *string  `json:"inReplyToThreadId"`
}

var replyKeys = []string{"channel", "content", "contentType", "fromEmailAddress", "to", "cc", "bcc", "isForward",
	"attachmentIds", "ticketStatus", "inReplyToThreadId"}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parseReply validates a reply. cc and bcc are accepted although the Desk
// OAS leaves them out of the request: reply-all (SPEC E2) needs them and
// Desk's own UI sends them.
func (c *core) parseReply(o *org, t *ticket, body []byte, draft bool) (*thread, string, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return nil, "", e
	}
	for k := range m {
		if !contains(replyKeys, k) {
			return nil, "", errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	var in replyInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, "", errInvalidData(invalid("content"))
	}
	var errs []FieldError
	channel := strings.ToUpper(deref(in.Channel))
	switch {
	case channel == "":
		errs = append(errs, missing("channel"))
	case !contains(threadChannels, channel):
		errs = append(errs, invalid("channel"))
	}
	if strings.TrimSpace(deref(in.Content)) == "" {
		errs = append(errs, missing("content"))
	}
	contentType := "text/plain"
	switch deref(in.ContentType) {
	case "", "plainText":
	case "html", "text/html":
		contentType = "text/html"
	default:
		errs = append(errs, invalid("contentType"))
	}
	from := strings.TrimSpace(deref(in.FromEmailAddress))
	if from == "" && contains(fromRequired, channel) && !draft {
		errs = append(errs, missing("fromEmailAddress"))
	}
	if from != "" && !o.isReplyAddress(t.departmentID, from) {
		errs = append(errs, invalid("fromEmailAddress"))
	}
	to := deref(in.To)
	forward := in.IsForward != nil && *in.IsForward
	if to == "" && !forward {
		to = t.email
	}
	if channel == "EMAIL" && !draft {
		switch {
		case to == "":
			errs = append(errs, missing("to"))
		case !addresses(to):
			errs = append(errs, invalid("to"))
		}
	}
	if in.Cc != nil && *in.Cc != "" && !addresses(*in.Cc) {
		errs = append(errs, invalid("cc"))
	}
	if in.Bcc != nil && *in.Bcc != "" && !addresses(*in.Bcc) {
		errs = append(errs, invalid("bcc"))
	}
	for _, sid := range in.AttachmentIDs {
		id, ok := parseID(sid)
		if !ok || o.attachments.get(id) == nil {
			errs = append(errs, invalid("attachmentIds"))
			break
		}
	}
	status := ""
	if in.TicketStatus != nil && *in.TicketStatus != "" {
		for _, s := range o.statuses {
			if strings.EqualFold(s.name, *in.TicketStatus) {
				status = s.name
			}
		}
		if status == "" {
			errs = append(errs, invalid("ticketStatus"))
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return nil, "", errInvalidData(errs...)
	}
	th := &thread{ticketID: t.id, channel: channel, direction: "out", visibility: "public", status: "SUCCESS",
		contentType: contentType, content: deref(in.Content), from: from, to: to, cc: deref(in.Cc), bcc: deref(in.Bcc),
		forward: forward}
	if draft {
		th.status = "DRAFT"
	}
	return th, status, nil
}

// isReplyAddress reports whether addr is a verified from-address of the
// department.
func (o *org) isReplyAddress(deptID int64, addr string) bool {
	found := false
	o.replyAddrs.each(func(a *replyAddress) bool {
		if a.deptID == deptID && a.verified && strings.EqualFold(a.address, addr) {
			found = true
			return false
		}
		return true
	})
	return found
}

// addAgentThread appends an agent's reply and fires Ticket_Thread_Add;
// a ticketStatus in the reply changes the status afterwards.
func (c *core) addAgentThread(o *org, act actor, t *ticket, th *thread, status string) {
	c.materialize(o, t)
	a := o.agents.get(act.agentID)
	th.id = o.newID()
	th.authorID, th.authorType = a.id, "AGENT"
	th.authorName, th.authorEmail = a.name(), a.email
	th.createdTime = c.now()
	t.threads = append(t.threads, th)
	if th.status == "DRAFT" {
		return
	}
	t.modifiedTime = th.createdTime
	payload := c.threadJSON(o, th, true)
	payload["ticketId"] = idStr(t.id)
	c.emit(o, act, event{typ: "Ticket_Thread_Add", deptID: t.departmentID, payload: payload, direction: "out"})
	if status != "" && status != t.status {
		before := c.ticketJSON(o, t, nil)
		c.setStatus(o, t, status)
		c.touchTicket(o, act, t, before)
	}
}

// addCustomerThread records an incoming message from the ticket's contact.
// A customer writing back reopens a closed or on-hold ticket, as Desk's
// default workflow does; a rating (FEEDBACK) does not.
func (c *core) addCustomerThread(o *org, act actor, t *ticket, channel, content string) *thread {
	c.materialize(o, t)
	ct := o.contacts.get(t.contactID)
	th := &thread{id: o.newID(), ticketID: t.id, channel: channel, direction: "in", visibility: "public", status: "SUCCESS",
		contentType: "text/html", content: content, createdTime: c.now(), authorType: "END_USER"}
	if ct != nil {
		th.authorID, th.authorName, th.authorEmail, th.from = ct.id, ct.fullName(), ct.email, ct.email
	}
	if addr := o.defaultReplyAddress(t.departmentID); addr != "" {
		th.to = addr
	}
	t.threads = append(t.threads, th)
	t.modifiedTime, t.customerResponseTime = th.createdTime, th.createdTime
	payload := c.threadJSON(o, th, true)
	payload["ticketId"] = idStr(t.id)
	c.emit(o, act, event{typ: "Ticket_Thread_Add", deptID: t.departmentID, payload: payload, direction: "in"})
	if typ := o.statusType(t.status); channel != "FEEDBACK" && (typ == "Closed" || typ == "On Hold") {
		before := c.ticketJSON(o, t, nil)
		c.setStatus(o, t, "Open")
		c.touchTicket(o, act, t, before)
	}
	return th
}

func (o *org) defaultReplyAddress(deptID int64) string {
	addr := ""
	o.replyAddrs.each(func(a *replyAddress) bool {
		if a.deptID == deptID && a.isDefault {
			addr = a.address
			return false
		}
		return true
	})
	return addr
}

// ---- comments and mentions ----

// mentionRe matches Desk's mention markup, zsu[@user:<zuid>]zsu. The fake
// also resolves an agent id in place of the zuid.
var mentionRe = regexp.MustCompile(`zsu\[@user:(\d+)\]zsu`)

func (o *org) agentByZUID(n int64) *agent {
	if a := o.agents.get(n); a != nil {
		return a
	}
	var found *agent
	o.agents.each(func(a *agent) bool {
		if a.zuid == n {
			found = a
			return false
		}
		return true
	})
	return found
}

// mentions lists the agents a comment mentions, with the markup's offset
// and length in characters.
func (o *org) mentions(content string) []map[string]any {
	var out []map[string]any
	for _, loc := range mentionRe.FindAllStringSubmatchIndex(content, -1) {
		n, err := strconv.ParseInt(content[loc[2]:loc[3]], 10, 64)
		if err != nil {
			continue
		}
		a := o.agentByZUID(n)
		if a == nil {
			continue
		}
		out = append(out, map[string]any{
			"id": idStr(a.id), "zuid": strconv.FormatInt(a.zuid, 10), "firstName": a.firstName, "lastName": a.lastName,
			"email": a.email, "photoURL": nil, "type": "AGENT",
			"offSet": count(utf8.RuneCountInString(content[:loc[0]])), "length": count(utf8.RuneCountInString(content[loc[0]:loc[1]])),
		})
	}
	return out
}

// MentionMarkup is how a comment mentions an agent: Desk's
// zsu[@user:<zuid>]zsu markup.
func MentionMarkup(zuid string) string { return "zsu[@user:" + zuid + "]zsu" }

func (c *core) commentJSON(o *org, cm *comment, inc map[string]bool) map[string]any {
	var commenter any
	if a := o.agents.get(cm.commenterID); a != nil {
		roleName := ""
		if p := o.profiles.get(a.profileID); p != nil {
			roleName = p.name
		}
		commenter = map[string]any{"id": idStr(a.id), "name": a.name(), "firstName": a.firstName, "lastName": a.lastName,
			"email": a.email, "photoURL": nil, "roleName": roleName, "type": "AGENT"}
	}
	out := map[string]any{
		"id": idStr(cm.id), "content": cm.content, "contentType": cm.contentType, "isPublic": cm.public,
		"commenterId": idStr(cm.commenterID), "commentedTime": timeStr(cm.commentedTime),
		"modifiedTime": timeStr(cm.modifiedTime), "commenter": commenter, "attachments": []any{},
	}
	if inc["mentions"] {
		m := o.mentions(cm.content)
		if m == nil {
			m = []map[string]any{}
		}
		out["mention"] = m
	}
	if inc["plainText"] {
		out["plainText"] = plainText(cm.content)
	}
	return out
}

// commentInput is a comment create or update body. isPublic comes as a
// boolean or, in Desk's own examples, as the string "true".
type commentInput struct {
	content     *string
	contentType *string
	public      *bool
}

func parseComment(body []byte, create bool) (commentInput, *APIError) {
	m, e := decodeObject(body)
	if e != nil {
		return commentInput{}, e
	}
	var in commentInput
	var errs []FieldError
	for k, raw := range m {
		switch k {
		case "content":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				errs = append(errs, invalid("content"))
			}
			in.content = &s
		case "contentType":
			var s string
			if json.Unmarshal(raw, &s) != nil || (s != "html" && s != "plainText") {
				errs = append(errs, invalid("contentType"))
			}
			in.contentType = &s
		case "isPublic":
			var b bool
			if json.Unmarshal(raw, &b) != nil {
				var s string
				if json.Unmarshal(raw, &s) != nil || (s != "true" && s != "false") {
					errs = append(errs, invalid("isPublic"))
				}
				b = s == "true"
			}
			in.public = &b
		case "attachmentIds", "id", "commenterId", "commentedTime", "modifiedTime", "commenter", "attachments":
		default:
			return in, errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	if (create || in.content != nil) && (in.content == nil || strings.TrimSpace(*in.content) == "") && !hasError(errs, "/content") {
		errs = append(errs, missing("content"))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return in, errInvalidData(errs...)
	}
	return in, nil
}

func (c *core) commentPayload(o *org, t *ticket, cm *comment) map[string]any {
	p := c.commentJSON(o, cm, map[string]bool{"mentions": true})
	p["ticketId"] = idStr(t.id)
	return p
}

func (c *core) addComment(o *org, act actor, t *ticket, in commentInput) *comment {
	c.materialize(o, t)
	cm := &comment{id: o.newID(), ticketID: t.id, content: *in.content, contentType: "plainText",
		commenterID: act.agentID, commentedTime: c.now()}
	if in.contentType != nil {
		cm.contentType = *in.contentType
	}
	if in.public != nil {
		cm.public = *in.public
	}
	t.comments = append(t.comments, cm)
	t.modifiedTime = cm.commentedTime
	c.emit(o, act, event{typ: "Ticket_Comment_Add", deptID: t.departmentID, payload: c.commentPayload(o, t, cm)})
	return cm
}

func (c *core) editComment(o *org, act actor, t *ticket, cm *comment, in commentInput) {
	if in.content != nil {
		cm.content = *in.content
	}
	if in.contentType != nil {
		cm.contentType = *in.contentType
	}
	if in.public != nil {
		cm.public = *in.public
	}
	cm.modifiedTime = c.now()
	c.emit(o, act, event{typ: "Ticket_Comment_Update", deptID: t.departmentID, payload: c.commentPayload(o, t, cm)})
}

func (t *ticket) comment(id int64) *comment {
	for _, cm := range t.comments {
		if cm.id == id {
			return cm
		}
	}
	return nil
}

func (t *ticket) thread(id int64) *thread {
	for _, th := range t.threads {
		if th.id == id {
			return th
		}
	}
	return nil
}

// ---- ratings ----

// ratingValues are the happiness ratings a customer can give.
var ratingValues = []string{"GOOD", "OKAY", "BAD"}

func (c *core) ratingJSON(o *org, r *rating) map[string]any {
	t := o.tickets.get(r.ticketID)
	var number any
	if t != nil {
		number = strconv.FormatInt(t.number, 10)
	}
	return map[string]any{"id": idStr(r.id), "ticketId": idStr(r.ticketID), "ticketNumber": number,
		"contactId": idStr(r.contactID), "departmentId": idStr(r.deptID), "agentId": idStr(r.agentID),
		"rating": r.value, "feedback": nullStr(r.feedback), "ratedTime": timeStr(r.ratedTime)}
}

// rate records a customer's happiness rating. Desk shows a rating as an
// incoming FEEDBACK thread ("Customer Rating"), so it fires
// Ticket_Thread_Add, which is how a subscriber learns of it.
func (c *core) rate(o *org, act actor, t *ticket, value, feedback string) *rating {
	r := &rating{id: o.newID(), ticketID: t.id, contactID: t.contactID, deptID: t.departmentID, agentID: t.assigneeID,
		value: value, feedback: feedback, ratedTime: c.now()}
	o.ratings.put(r.id, r)
	o.ratingsOf.add(t.id, r.id)
	content := "Customer Rating: " + value
	if feedback != "" {
		content += "<br>" + html.EscapeString(feedback)
	}
	c.addCustomerThread(o, act, t, "FEEDBACK", content)
	return r
}
