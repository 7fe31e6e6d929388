package store

import "time"

// MirrorRefs are the typed columns of a mirrored record that customer-360
// queries filter, join and sort on (migration 0007). The sync engine fills
// them from the vendor's fields when it mirrors a record; the record itself
// stays in MirrorRecord.Fields. Ids are the vendor's (ext ids) of the same
// system; "" and nil mean none.
type MirrorRefs struct {
	Title        string
	ContactID    string // a deal's, note's or activity's CRM contact; a ticket's desk contact
	AccountID    string
	DealID       string // a note's or activity's deal
	LeadID       string // a note's or activity's lead
	Status       string // deal stage, task or lead status, ticket status
	StatusType   string // tickets: Open, On Hold, Closed
	OwnerID      string
	OwnerName    string
	DepartmentID string
	Amount       *float64
	// At places the record on a timeline: a deal's closing date, a call's
	// or event's start, a task's or ticket's due date.
	At     *time.Time
	Closed *bool // deals: won or lost; tasks: completed; tickets: closed
}
