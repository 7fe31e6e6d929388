package salesiq

import (
	"crypto/rsa"
	"slices"
	"strconv"
	"time"
)

// The wire types below are what the API returns and what the accessors give
// tests. Every id is a numeric string and every time an epoch-millisecond
// string, as on the real service.

// Portal is one SalesIQ organisation, addressed by its screen name.
type Portal struct {
	ID          string        `json:"id"`
	ScreenName  string        `json:"screenname"`
	Name        string        `json:"name"`
	Owner       OperatorRef   `json:"owner"`
	Admins      []OperatorRef `json:"admins"`
	CreatedTime string        `json:"created_time"`
}

// App is a brand (website or mobile app) the chat widget runs on.
type App struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Department routes chats to a group of operators. The gateway maps each
// one to a desk department by name (SPEC F3), so renames matter.
type Department struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	DisplayName  string `json:"display_name"`
	Description  string `json:"description"`
	IsPublic     bool   `json:"is_public"`
	CreatedTime  string `json:"created_time"`
	ModifiedTime string `json:"modified_time"`
}

// Operator statuses.
const (
	OperatorActive      = "active"
	OperatorDeactivated = "deactivated"
)

// Operator is a chat agent. The gateway links SalesIQ to the desk through
// an operator whose email is also a desk admin's (SPEC A5), and asks for a
// re-link when that operator is deactivated.
type Operator struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	EmailID       string   `json:"email_id"`
	Role          string   `json:"role"` // Administrator | Supervisor | Associate
	Status        string   `json:"status"`
	DepartmentIDs []string `json:"department_ids"`
	CreatedTime   string   `json:"created_time"`
	ModifiedTime  string   `json:"modified_time"`
}

// OperatorRef is how conversations and portals name an operator.
type OperatorRef struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	EmailID string `json:"email_id"`
}

// Visitor is someone who chats from the website. EmailID is empty for a
// visitor who never gave one (SPEC F8).
type Visitor struct {
	ID           string `json:"id"`
	Type         string `json:"type"` // lead | contact
	Name         string `json:"name"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	EmailID      string `json:"email_id"`
	Phone        string `json:"phone"`
	AppID        string `json:"app_id"`
	CreatedTime  string `json:"created_time"`
	ModifiedTime string `json:"modified_time"`
}

// VisitorRef is the visitor as embedded in a conversation.
type VisitorRef struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	EmailID string `json:"email_id"`
	Phone   string `json:"phone"`
}

// Conversation states, also the values of the list filter "status" (with
// "open" = waiting or connected and "closed" = missed or end).
const (
	StateWaiting   = "waiting"
	StateConnected = "connected"
	StateMissed    = "missed"
	StateEnded     = "end"
)

// Conversation is one chat. Times are absent until the event happened:
// attended_time only for attended chats, missed_time only for missed ones.
type Conversation struct {
	ID                    string       `json:"id"`
	VisitorConversationID string       `json:"visitor_conversation_id"`
	ReferenceID           string       `json:"reference_id"`
	AppID                 string       `json:"app_id"`
	DepartmentID          string       `json:"department_id"`
	Question              string       `json:"question"`
	Owner                 *OperatorRef `json:"owner,omitempty"`
	Visitor               VisitorRef   `json:"visitor"`
	Supervisors           []string     `json:"supervisors"`
	Participants          []string     `json:"participants"`
	Status                string       `json:"status"`
	ChatStatus            ChatStatus   `json:"chat_status"`
	OpenedTime            string       `json:"opened_time"`
	AttendedTime          string       `json:"attended_time,omitempty"`
	MissedTime            string       `json:"missed_time,omitempty"`
	EndTime               string       `json:"end_time,omitempty"`
	UpdatedTime           string       `json:"updated_time"`
}

// ChatStatus is the human label of a conversation's state.
type ChatStatus struct {
	Label string `json:"label"` // Waiting | Live | Missed | Ended
}

// Sender types in a transcript.
const (
	SenderVisitor  = "visitor"
	SenderOperator = "operator"
)

// Message is one line of a transcript. This fake's choice of shape:
// {id, type:"text", sender{id,name,type}, message{text}, time}.
type Message struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Sender  Sender      `json:"sender"`
	Message MessageBody `json:"message"`
	Time    string      `json:"time"`
}

// Sender says who wrote a message.
type Sender struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// MessageBody holds a message's text.
type MessageBody struct {
	Text string `json:"text"`
}

// Article sources and statuses.
const (
	SourceSalesIQ   = "salesiq"
	SourceZohoDesk  = "zoho_desk"
	StatusPublished = "published"
	StatusDraft     = "draft"
)

// Category groups articles; SPEC F2 syncs desk categories per chat
// department, so a category carries the departments it serves.
type Category struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	DepartmentIDs []string `json:"department_ids"`
	ArticlesCount int      `json:"articles_count"`
	CreatedTime   string   `json:"created_time"`
	ModifiedTime  string   `json:"modified_time"`
}

// Article is a knowledge-base article. One created with source "zoho_desk"
// is a synced copy of a desk article: read_only is true, tags holds
// "zoho_desk", and only the OAuth client that created it may change or
// delete it (SPEC F2: synced articles are read-only on the chat side).
type Article struct {
	ID            string   `json:"id"`
	Title         string   `json:"title"`
	Content       string   `json:"content"`
	CategoryID    string   `json:"category_id"`
	DepartmentIDs []string `json:"department_ids"`
	Status        string   `json:"status"`
	Source        string   `json:"source"`
	SourceID      string   `json:"source_id,omitempty"`
	ReadOnly      bool     `json:"read_only"`
	Tags          []string `json:"tags"`
	CreatedTime   string   `json:"created_time"`
	ModifiedTime  string   `json:"modified_time"`
}

// Webhook is a subscription to chat events.
type Webhook struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Version     string   `json:"version"`
	AppIDs      []string `json:"app_ids"`
	Signed      bool     `json:"signed"`
	CreatedTime string   `json:"created_time"`
}

// Webhook events this fake delivers.
const (
	EventConversationCreated  = "conversation.created"
	EventAttenderUpdated      = "conversation.attender.updated"
	EventConversationMissed   = "conversation.missed"
	EventConversationComplete = "conversation.completed"
	EventOperatorReplied      = "conversation.operator.replied"
	EventVisitorReplied       = "conversation.visitor.replied"
	EventVisitorUpdated       = "visitor.updated"
)

// knownEvents are the events a subscription may name: the delivered ones
// plus those the real service documents but this fake never fires.
var knownEvents = []string{
	EventConversationCreated, EventAttenderUpdated, EventConversationMissed, EventConversationComplete,
	EventOperatorReplied, EventVisitorReplied, EventVisitorUpdated,
	"conversation.rated", "conversation.transfer.initiated", "conversation.transfer.accepted",
	"conversation.transfer.rejected", "conversation.participants.added", "conversation.participants.deleted",
	"conversation.supervisor.added", "conversation.message.edited", "conversation.message.deleted",
}

// Delivery is the body of one webhook POST.
type Delivery struct {
	EntityID   string `json:"entity_id"`
	EventTime  string `json:"event_time"`
	Event      string `json:"event"`
	EntityType string `json:"entity_type"` // conversation | visitor
	Entity     any    `json:"entity"`
}

// Internal state. Conversations keep the visitor's id, not a copy, so an
// edit of the visitor shows in every conversation at once.

type conversation struct {
	id, visitorConvID, referenceID, appID, departmentID, question string
	visitorID, ownerID                                            string
	state                                                         string
	opened, attended, missed, ended, updated                      time.Time
	messages                                                      []Message
}

type article struct {
	Article
	ownerClient string // OAuth client that synced it; "" for native articles
}

type webhook struct {
	Webhook
	key  *rsa.PrivateKey
	sent []SentDelivery // the last maxSent deliveries
}

func ms(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func clone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}
