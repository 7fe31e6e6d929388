package salesiq

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// The methods in this file are the chat product's humans: website visitors,
// operators and admins clicking in the SalesIQ app. They change the same
// state the API serves and fire the same webhooks, so a test can drive a
// chat from start to end and watch the gateway react.

// ChatStart is a visitor opening the chat widget.
type ChatStart struct {
	Name  string
	Email string // "" for a visitor who gave none (SPEC F8)
	Phone string
	// DepartmentID is the department the visitor picked; "" means the
	// first one.
	DepartmentID string
	Question     string
}

// VisitorUpdate is an operator's edit of the visitor panel; empty fields
// stay as they are.
type VisitorUpdate struct {
	Name      string
	FirstName string
	LastName  string
	Email     string
	Phone     string
}

// StartChat opens a waiting conversation and fires conversation.created. A
// visitor who gives a known email is the same visitor again.
func (s *Server) StartChat(cs ChatStart) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.startChat(cs, s.now())
	if err != nil {
		return Conversation{}, fmt.Errorf("start chat: %w", err)
	}
	s.emitConversation(EventConversationCreated, c)
	return s.render(c), nil
}

// PickUp has an operator attend a waiting chat and fires
// conversation.attender.updated. operatorID "" picks the first active
// operator.
func (s *Server) PickUp(conversationID, operatorID string) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Conversation{}, notFound("pick up chat", "conversation", conversationID)
	}
	op, err := s.attender(operatorID)
	if err != nil {
		return Conversation{}, fmt.Errorf("pick up chat %s: %w", conversationID, err)
	}
	if c.state != StateWaiting {
		return Conversation{}, fmt.Errorf("pick up chat %s (%s): %w", conversationID, c.state, ErrState)
	}
	now := s.now()
	c.state, c.ownerID, c.attended, c.updated = StateConnected, op.ID, now, now
	s.emitConversation(EventAttenderUpdated, c)
	return s.render(c), nil
}

// Miss ends a waiting chat nobody picked up and fires conversation.missed.
func (s *Server) Miss(conversationID string) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Conversation{}, notFound("miss chat", "conversation", conversationID)
	}
	if c.state != StateWaiting {
		return Conversation{}, fmt.Errorf("miss chat %s (%s): %w", conversationID, c.state, ErrState)
	}
	now := s.now()
	c.state, c.missed, c.ended, c.updated = StateMissed, now, now, now
	s.emitConversation(EventConversationMissed, c)
	return s.render(c), nil
}

// EndChat closes an attended chat and fires conversation.completed.
func (s *Server) EndChat(conversationID string) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Conversation{}, notFound("end chat", "conversation", conversationID)
	}
	if c.state != StateConnected {
		return Conversation{}, fmt.Errorf("end chat %s (%s): %w", conversationID, c.state, ErrState)
	}
	now := s.now()
	c.state, c.ended, c.updated = StateEnded, now, now
	s.emitConversation(EventConversationComplete, c)
	return s.render(c), nil
}

// OperatorReply adds the attending operator's message to a live chat and
// fires conversation.operator.replied.
func (s *Server) OperatorReply(conversationID, text string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Message{}, notFound("operator reply", "conversation", conversationID)
	}
	if c.state != StateConnected {
		return Message{}, fmt.Errorf("operator reply in chat %s (%s): %w", conversationID, c.state, ErrState)
	}
	m := s.say(c, SenderOperator, text, s.now())
	s.emitConversation(EventOperatorReplied, c)
	return m, nil
}

// VisitorReply adds the visitor's message to an open chat and fires
// conversation.visitor.replied.
func (s *Server) VisitorReply(conversationID, text string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Message{}, notFound("visitor reply", "conversation", conversationID)
	}
	if c.state != StateWaiting && c.state != StateConnected {
		return Message{}, fmt.Errorf("visitor reply in chat %s (%s): %w", conversationID, c.state, ErrState)
	}
	m := s.say(c, SenderVisitor, text, s.now())
	s.emitConversation(EventVisitorReplied, c)
	return m, nil
}

// EditVisitor is the operator's pencil icon on a conversation's visitor
// (SPEC F8); it fires visitor.updated.
func (s *Server) EditVisitor(conversationID string, u VisitorUpdate) (Visitor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversation(conversationID)
	if c == nil {
		return Visitor{}, notFound("edit visitor", "conversation", conversationID)
	}
	v := s.visitor(c.visitorID)
	if v == nil {
		return Visitor{}, notFound("edit visitor", "visitor of conversation", conversationID)
	}
	if _, err := s.updateVisitor(v, u); err != nil {
		return Visitor{}, fmt.Errorf("edit visitor of chat %s: %w", conversationID, err)
	}
	return *v, nil
}

// CreateDepartment is an admin adding a chat department (the gateway maps
// it to a same-name desk department, SPEC F3).
func (s *Server) CreateDepartment(name, description string) (Department, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.createDepartment(name, description, true)
	if err != nil {
		return Department{}, fmt.Errorf("create department %q: %w", name, err)
	}
	return *d, nil
}

// RenameDepartment is an admin renaming a chat department.
func (s *Server) RenameDepartment(id, name string) (Department, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.department(id)
	if d == nil {
		return Department{}, notFound("rename department", "department", id)
	}
	if err := s.renameDepartment(d, name); err != nil {
		return Department{}, fmt.Errorf("rename department %s: %w", id, err)
	}
	return *d, nil
}

// OperatorSpec is an operator an admin invites.
type OperatorSpec struct {
	Name  string
	Email string
	// Role is Administrator, Supervisor or Associate (default).
	Role          string
	DepartmentIDs []string // default: every department
}

// AddOperator is an admin inviting an operator, active at once. An email
// already used by an operator is refused with ErrDuplicate.
func (s *Server) AddOperator(spec OperatorSpec) (Operator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.TrimSpace(spec.Email)
	if !validEmail(email) {
		return Operator{}, fmt.Errorf("add operator: email %q: %w", email, ErrInvalid)
	}
	if s.operatorByEmail(email) != nil {
		return Operator{}, fmt.Errorf("add operator %s: %w", email, ErrDuplicate)
	}
	role := spec.Role
	switch role {
	case "":
		role = "Associate"
	case "Administrator", "Supervisor", "Associate":
	default:
		return Operator{}, fmt.Errorf("add operator: role %q: %w", role, ErrInvalid)
	}
	depts := spec.DepartmentIDs
	if depts == nil {
		for _, d := range s.departments {
			depts = append(depts, d.ID)
		}
	}
	for _, id := range depts {
		if s.department(id) == nil {
			return Operator{}, notFound("add operator", "department", id)
		}
	}
	name := strings.TrimSpace(spec.Name)
	if name == "" {
		name = email
	}
	now := ms(s.now())
	o := &Operator{ID: s.newID(), Name: name, EmailID: strings.ToLower(email), Role: role, Status: OperatorActive,
		DepartmentIDs: clone(depts), CreatedTime: now, ModifiedTime: now}
	s.operators = append(s.operators, o)
	return copyOperator(o), nil
}

// DeactivateOperator is an admin deactivating an operator (for the linked
// admin, SPEC A5 then asks for a re-link).
func (s *Server) DeactivateOperator(id string) (Operator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.operator(id)
	if o == nil {
		return Operator{}, notFound("deactivate operator", "operator", id)
	}
	o.Status, o.ModifiedTime = OperatorDeactivated, ms(s.now())
	return copyOperator(o), nil
}

// EditArticle is an operator editing an article in the product; synced
// desk articles refuse with ErrReadOnly.
func (s *Server) EditArticle(id, title, content string) (Article, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.article(id)
	if a == nil {
		return Article{}, notFound("edit article", "article", id)
	}
	if a.ReadOnly {
		return Article{}, fmt.Errorf("edit article %s: %w", id, ErrReadOnly)
	}
	if title != "" {
		a.Title = title
	}
	if content != "" {
		a.Content = content
	}
	a.ModifiedTime = ms(s.now())
	return copyArticle(a), nil
}

// Shared with the API; callers hold s.mu.

func (s *Server) startChat(cs ChatStart, now time.Time) (*conversation, error) {
	email := strings.TrimSpace(cs.Email)
	if email != "" && !validEmail(email) {
		return nil, fmt.Errorf("email %q: %w", email, ErrInvalid)
	}
	deptID := cs.DepartmentID
	if deptID == "" && len(s.departments) > 0 {
		deptID = s.departments[0].ID
	}
	if deptID != "" && s.department(deptID) == nil {
		return nil, notFound("start chat", "department", deptID)
	}
	v := s.visitorByEmail(email)
	if v == nil {
		first, last := splitName(cs.Name)
		name := strings.TrimSpace(cs.Name)
		if name == "" {
			name = fmt.Sprintf("Visitor %05d", s.rng.IntN(100000))
		}
		v = &Visitor{ID: s.newID(), Type: "lead", Name: name, FirstName: first, LastName: last,
			EmailID: email, Phone: cs.Phone, AppID: s.appID(), CreatedTime: ms(now), ModifiedTime: ms(now)}
		s.addVisitor(v)
	}
	s.nextRef++
	c := &conversation{
		id: s.newID(), visitorConvID: s.token(), referenceID: fmt.Sprint(s.nextRef),
		appID: s.appID(), departmentID: deptID, question: cs.Question, visitorID: v.ID,
		state: StateWaiting, opened: now, updated: now,
	}
	s.addConversation(c)
	if cs.Question != "" {
		s.say(c, SenderVisitor, cs.Question, now)
	}
	return c, nil
}

// attender finds the operator who picks up a chat.
func (s *Server) attender(operatorID string) (*Operator, error) {
	if operatorID == "" {
		for _, o := range s.operators {
			if o.Status == OperatorActive {
				return o, nil
			}
		}
		return nil, fmt.Errorf("no active operator: %w", ErrNotFound)
	}
	o := s.operator(operatorID)
	if o == nil {
		return nil, fmt.Errorf("operator %q: %w", operatorID, ErrNotFound)
	}
	if o.Status != OperatorActive {
		return nil, fmt.Errorf("operator %s is deactivated: %w", operatorID, ErrState)
	}
	return o, nil
}

// say appends a message; the sender is the visitor or the chat's owner.
func (s *Server) say(c *conversation, senderType, text string, at time.Time) Message {
	sender := Sender{Type: senderType}
	switch senderType {
	case SenderVisitor:
		if v := s.visitor(c.visitorID); v != nil {
			sender.ID, sender.Name = v.ID, v.Name
		}
	case SenderOperator:
		if o := s.operator(c.ownerID); o != nil {
			sender.ID, sender.Name = o.ID, o.Name
		}
	}
	m := Message{ID: s.newID(), Type: "text", Sender: sender, Message: MessageBody{Text: text}, Time: ms(at)}
	c.messages = append(c.messages, m)
	if at.After(c.updated) {
		c.updated = at
	}
	return m
}

// updateVisitor applies u, fires visitor.updated and reports whether
// anything changed.
func (s *Server) updateVisitor(v *Visitor, u VisitorUpdate) (bool, error) {
	email := strings.TrimSpace(u.Email)
	if email != "" && !validEmail(email) {
		return false, fmt.Errorf("email %q: %w", email, ErrInvalid)
	}
	before := *v
	if u.FirstName != "" {
		v.FirstName = u.FirstName
	}
	if u.LastName != "" {
		v.LastName = u.LastName
	}
	switch {
	case u.Name != "":
		v.Name = u.Name
	case u.FirstName != "" || u.LastName != "":
		v.Name = strings.TrimSpace(v.FirstName + " " + v.LastName)
	}
	if email != "" {
		v.EmailID = email
	}
	if u.Phone != "" {
		v.Phone = u.Phone
	}
	if *v == before {
		return false, nil
	}
	now := s.now()
	v.ModifiedTime = ms(now)
	for _, c := range s.conversations {
		if c.visitorID == v.ID && now.After(c.updated) {
			c.updated = now
		}
	}
	s.emit(EventVisitorUpdated, "visitor", v.ID, *v, v.AppID)
	return true, nil
}

func (s *Server) createDepartment(name, description string, public bool) (*Department, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, fmt.Errorf("empty name: %w", ErrInvalid)
	}
	if s.departmentByName(name) != nil {
		return nil, fmt.Errorf("name %q already used: %w", name, ErrDuplicate)
	}
	now := ms(s.now())
	d := &Department{ID: s.newID(), Name: name, DisplayName: name, Description: description,
		IsPublic: public, CreatedTime: now, ModifiedTime: now}
	s.departments = append(s.departments, d)
	return d, nil
}

func (s *Server) renameDepartment(d *Department, name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("empty name: %w", ErrInvalid)
	}
	if other := s.departmentByName(name); other != nil && other != d {
		return fmt.Errorf("name %q already used: %w", name, ErrDuplicate)
	}
	d.Name, d.DisplayName, d.ModifiedTime = name, name, ms(s.now())
	return nil
}

func (s *Server) departmentByName(name string) *Department {
	for _, d := range s.departments {
		if strings.EqualFold(d.Name, name) {
			return d
		}
	}
	return nil
}

func (s *Server) appID() string {
	if len(s.apps) == 0 {
		return ""
	}
	return s.apps[0].ID
}

// token is the random-looking visitor_conversation_id.
func (s *Server) token() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 40)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && strings.Contains(e[strings.LastIndex(e, "@"):], ".")
}

func splitName(name string) (first, last string) {
	fields := strings.Fields(name)
	switch len(fields) {
	case 0:
		return "", ""
	case 1:
		return "", fields[0]
	}
	return strings.Join(fields[:len(fields)-1], " "), fields[len(fields)-1]
}
