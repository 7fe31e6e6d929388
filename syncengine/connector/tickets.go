package connector

import "context"

// Reply is a reply, reply-all or forward on a ticket (SPEC E2), under the
// desk's own rules: the from address is one of the department's reply
// addresses, the channel the ticket's, the content type html or plainText.
type Reply struct {
	Channel          string // default EMAIL
	FromEmailAddress string
	To               string // comma-separated
	Cc               string // reply-all; comma-separated
	Bcc              string
	Content          string
	ContentType      string // html or plainText
	IsForward        bool
	TicketStatus     string // optional status to set with the reply
}

// TicketDesk is implemented by help desks that take ticket work from CRM
// users (SPEC E1-E3). Replies and comments are sent at most once: a lost
// answer is a Permanent error with reason outcome unknown, never a resend.
type TicketDesk interface {
	CreateTicket(ctx context.Context, fields map[string]any) (Record, error)
	UpdateTicket(ctx context.Context, id string, fields map[string]any) (Record, error)
	SendReply(ctx context.Context, ticketID string, r Reply) (Record, error)
	AddComment(ctx context.Context, ticketID, content string, public bool) (Record, error)
	// MergeTickets merges ids into masterID (source picks, per field, the
	// ticket whose value is kept) and returns the master; the others go
	// to the desk's recycle bin.
	MergeTickets(ctx context.Context, masterID string, ids []string, source map[string]string) (Record, error)
	ListThreads(ctx context.Context, ticketID string, from, limit int) ([]Record, error)
	ListComments(ctx context.Context, ticketID string, from, limit int) ([]Record, error)
	// ReplyAddresses lists a department's verified reply addresses; the
	// default one has "isDefault": true.
	ReplyAddresses(ctx context.Context, departmentID string) ([]Record, error)
}
