package connector

import "context"

// The contract of the chat-to-ticket integration (SPEC A5, F1, F3-F9): a
// live-chat product seen through one account, and the help-desk calls the
// integration needs beyond TicketDesk. The engine finds them by type
// assertion on what a Vendor opens, like every optional capability.

// ChatPortal is one portal of a chat product that an account belongs to.
type ChatPortal struct {
	ScreenName string // the portal's unique name, which addresses it
	Name       string
	ID         string
}

// ChatAccount is implemented by chat products reached through one user's
// credentials: the portals that user belongs to (SPEC A5: only those can
// be linked), and the tool of one of them.
type ChatAccount interface {
	ChatPortals(ctx context.Context) ([]ChatPortal, error)
	// ChatTool returns the portal's tool; it shares the account's
	// credentials and token cache.
	ChatTool(screenName string) ChatTool
}

// VisitorEdit is an agent's edit of a chat's visitor (SPEC F8); empty
// fields stay as they are.
type VisitorEdit struct {
	Name  string
	Email string
	Phone string
}

// ChatTool is one chat portal: its departments and operators, its
// conversations with their transcripts, the visitor edit, and webhooks
// whose deliveries are signed (Watcher; the key of a subscription is kept
// by the caller and trusted again after a restart).
type ChatTool interface {
	Watcher
	Departments(ctx context.Context) ([]Record, error)
	// Operators lists operators; status "" = all, "active", "deactivated".
	Operators(ctx context.Context, status string) ([]Record, error)
	Conversation(ctx context.Context, id string) (Record, error)
	// Transcript is a conversation's messages, oldest first.
	Transcript(ctx context.Context, id string) ([]Record, error)
	EditVisitor(ctx context.Context, conversationID string, e VisitorEdit) (Record, error)
	// WebhookKey is the public key (PEM) Watch generated for a
	// subscription; TrustWebhookKey registers a stored one again.
	WebhookKey(subscriptionID string) (string, bool)
	TrustWebhookKey(subscriptionID, publicKeyPEM, token string) error
}

// DeskUser is a help-desk user (agent).
type DeskUser struct {
	ID     string
	Name   string
	Email  string
	Status string // ACTIVE, DISABLED or DELETED
	Admin  bool   // the user's profile is the administrator's
}

// ChatDesk is implemented by help desks a chat product links to: who a
// credential belongs to (the linked user, SPEC A5), any user by id (to
// notice a deleted or deactivated one), the departments chat departments
// map to (F3), and the tickets made from one chat (to settle a create
// whose answer was lost, F1).
type ChatDesk interface {
	CurrentDeskUser(ctx context.Context) (DeskUser, error)
	DeskUser(ctx context.Context, id string) (DeskUser, error)
	ListDepartments(ctx context.Context) ([]Record, error)
	ChatTickets(ctx context.Context, chatID string) ([]Record, error)
}

// DeskSLA is a help desk's service-level agreement; it belongs to one
// department.
type DeskSLA struct {
	ID           string
	Name         string
	DepartmentID string
	Active       bool
	Default      bool // the department's default SLA
}

// SLADesk is implemented by help desks whose contracts name their SLA by
// id (Zoho Desk's associatedSLAId): the visitor panel (F7) reads the SLA
// of the account's contract by id when the contract does not carry its
// name.
type SLADesk interface {
	DeskSLA(ctx context.Context, id string) (DeskSLA, error)
}
