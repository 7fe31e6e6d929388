// Package connector is the small contract between the sync engine and every
// upstream system (Zoho CRM, Bigin, Zoho Desk, Zoho SalesIQ). The engine sees
// records as a vendor's own field names and JSON values, and leaves wire
// formats, paging, authentication and retries to the connector. Capabilities
// that only some systems have (change notifications, related lists, the list
// of reachable orgs) are separate interfaces found by type assertion.
package connector

import (
	"context"
	"net/http"
	"time"
)

// System names an upstream product.
type System string

// The supported systems.
const (
	CRM     System = "zoho_crm"
	Bigin   System = "bigin"
	Desk    System = "zoho_desk"
	SalesIQ System = "zoho_salesiq"
)

// Module is a record type in the system's own naming: "Contacts" in the CRM,
// "contacts" in the desk.
type Module string

// Record is one upstream record.
type Record struct {
	ID         string
	Fields     map[string]any // the system's field API names; numbers decoded as json.Number
	CreatedAt  time.Time
	ModifiedAt time.Time
}

// FieldType is a field's data type, normalised across systems.
type FieldType string

// Field types. Conversion between systems is decided on these.
const (
	TypeText          FieldType = "text"
	TypeTextArea      FieldType = "textarea"
	TypeEmail         FieldType = "email"
	TypePhone         FieldType = "phone"
	TypeURL           FieldType = "url"
	TypeInteger       FieldType = "integer"
	TypeDecimal       FieldType = "decimal"
	TypeCurrency      FieldType = "currency"
	TypeBoolean       FieldType = "boolean"
	TypeDate          FieldType = "date"
	TypeDateTime      FieldType = "datetime"
	TypePicklist      FieldType = "picklist"
	TypeMultiPicklist FieldType = "multipicklist"
	TypeLookup        FieldType = "lookup"
	TypeOwner         FieldType = "owner"
	TypeOther         FieldType = "other"
)

// Field describes one field of a module, from the system's field metadata.
type Field struct {
	Name         string // API name
	Label        string
	Type         FieldType
	VendorType   string // the system's own type name, for messages
	Mandatory    bool
	Custom       bool
	ReadOnly     bool
	Unique       bool
	MaxLength    int      // 0 = unknown or unlimited
	Picklist     []string // allowed values of a picklist
	LookupModule Module   // target of a lookup
}

// Cursor is an opaque, versioned position in a module's change stream. The
// engine stores it in the same transaction as the data it covers and hands
// it back unchanged; only the connector that made it reads it.
type Cursor string

// ChangePage is one page of records modified after a cursor, oldest first.
type ChangePage struct {
	Records []Record
	Next    Cursor // where the next page starts; store it once Records are applied
	Done    bool   // no more changes right now
}

// Deletion is an entry of a deleted-records feed.
type Deletion struct {
	ID        string
	DeletedAt time.Time
	Permanent bool // gone for good, not in a recycle bin
}

// Query finds records whose Field equals Value (an email, an account name,
// a product name), for duplicate matching.
type Query struct {
	Field string
	Value string
}

// Op is what a write does.
type Op int

// Write operations.
const (
	Create Op = iota + 1
	Update
	Upsert // create, or update the record matched on DuplicateCheck
)

// Write is one record to write.
type Write struct {
	Op             Op
	ID             string // Update
	Fields         map[string]any
	DuplicateCheck []string // Upsert: fields to match on, in order
}

// Result is the outcome of one Write or Delete, in input order.
type Result struct {
	ID      string // the record written or deleted
	Created bool   // Create, or an Upsert that inserted
	Err     error  // nil, or an *Error
}

// Since reads changes from a moment instead of a stored cursor, for a first
// sync that takes "records created in the last year" (SPEC B7).
type Since struct {
	Time time.Time
}

// Reader reads a system's records.
type Reader interface {
	// ListChanged returns records modified after the cursor ("" = from the
	// start, or from StartAt's time), oldest first, at most limit.
	ListChanged(ctx context.Context, m Module, after Cursor, limit int) (ChangePage, error)
	// StartAt returns the cursor of the moment t, so ListChanged begins there.
	StartAt(m Module, t time.Time) Cursor
	Get(ctx context.Context, m Module, id string) (Record, error)
	// GetMany returns the records that exist among ids (notifications carry
	// ids only); missing ones are left out.
	GetMany(ctx context.Context, m Module, ids []string) ([]Record, error)
	Find(ctx context.Context, m Module, q Query) ([]Record, error)
	Deleted(ctx context.Context, m Module, since time.Time) ([]Deletion, error)
	Fields(ctx context.Context, m Module) ([]Field, error)
}

// Writer changes a system's records. Writes and deletes report per record;
// the returned error is for the request as a whole (transport, auth).
type Writer interface {
	// BatchSize is the most writes or deletes one call accepts.
	BatchSize() int
	Write(ctx context.Context, m Module, ws []Write) ([]Result, error)
	// Delete moves records to the system's trash, never a hard delete.
	Delete(ctx context.Context, m Module, ids []string) ([]Result, error)
}

// Connector is what every system implements.
type Connector interface {
	System() System
	Reader
	Writer
}

// ChangeKind is what happened to records in a notification.
type ChangeKind int

// Change kinds.
const (
	Created ChangeKind = iota + 1
	Updated
	Deleted
)

// Change is one notification from a system, parsed.
type Change struct {
	Module         Module
	Kind           ChangeKind
	IDs            []string
	Records        []Record            // full records when the payload carries them (Desk), else nil
	Previous       map[string]any      // previous values of changed fields, when sent
	AffectedFields map[string][]string // per id, when sent
	At             time.Time
	Token          string // the verification token the subscription was made with, if any
	// Activity is set for a change made by something added to a record
	// rather than to its fields: a ticket's new message (ActivityThread)
	// or comment (ActivityComment), whose object is Detail.
	Activity Activity
	Detail   map[string]any
}

// Activity names what was added to a record (see Change.Activity).
type Activity string

// The activities a help desk reports on tickets.
const (
	ActivityThread  Activity = "thread"
	ActivityComment Activity = "comment"
)

// WatchRequest subscribes to change notifications.
type WatchRequest struct {
	URL     string // where the system should POST
	Modules []Module
	Token   string    // echoed back in every notification, to verify it
	Expires time.Time // zero = the system's default
}

// Subscription is a live notification channel.
type Subscription struct {
	ID      string
	Expires time.Time // zero = does not expire
}

// Watcher is implemented by systems that push change notifications.
type Watcher interface {
	Watch(ctx context.Context, req WatchRequest) (Subscription, error)
	Unwatch(ctx context.Context, id string) error
	// ParseNotification turns a delivered body into changes; it must accept
	// any input without panicking (it reads untrusted requests).
	ParseNotification(header http.Header, body []byte) ([]Change, error)
}

// RelatedLister is implemented by systems with related lists (a contact's
// tickets, an account's contacts...), used by delete policies and the
// customer-360 view.
type RelatedLister interface {
	Related(ctx context.Context, m Module, id, list string, limit int) ([]Record, error)
}

// Org is an organisation the authorizing user can reach.
type Org struct {
	ID   string
	Name string
	// TimeZone is the org's IANA zone where the vendor says it ("" if not).
	TimeZone string
	// Admin says the authorizing user administers the org, where the vendor
	// says it (desk portals).
	Admin bool
}

// OrgLister is implemented by systems where one login reaches several orgs
// (SPEC A1: the admin picks the CRM org to connect).
type OrgLister interface {
	Orgs(ctx context.Context) ([]Org, error)
}

// User is the account behind a connector's credentials.
type User struct {
	Email string
	// Admin says the account administers the org (CRM: the Administrator
	// profile).
	Admin bool
}

// Identifier is implemented by systems that tell who the authorizing
// account is (SPEC A2: only the invited CRM admin may approve).
type Identifier interface {
	CurrentUser(ctx context.Context) (User, error)
}
