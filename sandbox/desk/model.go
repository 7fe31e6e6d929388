package desk

import (
	"slices"
	"strings"
)

// table holds one kind of record by id, remembering creation order. Ids
// are handed out in increasing order, so creation order is id order. The
// rows slice mirrors order with the records themselves, so a listing that
// visits every record (a 100,000-contact search) walks a slice instead of
// looking each id up.
type table[T any] struct {
	byID  map[int64]*T
	order []int64
	rows  []*T
}

func newTable[T any](capacity int) table[T] {
	return table[T]{byID: make(map[int64]*T, capacity), order: make([]int64, 0, capacity), rows: make([]*T, 0, capacity)}
}

func (t *table[T]) put(id int64, v *T) {
	if old, ok := t.byID[id]; !ok {
		t.order = append(t.order, id)
		t.rows = append(t.rows, v)
	} else if old != v {
		t.rows[t.index(id)] = v
	}
	t.byID[id] = v
}

func (t *table[T]) get(id int64) *T { return t.byID[id] }

// index is where id (held) sits in order: ids handed out by newID
// increase along it, fixed seed ids may not.
func (t *table[T]) index(id int64) int {
	if i, found := slices.BinarySearch(t.order, id); found {
		return i
	}
	return slices.Index(t.order, id)
}

// del removes a record for good (the recycle bin's permanent delete).
func (t *table[T]) del(id int64) {
	if _, ok := t.byID[id]; !ok {
		return
	}
	delete(t.byID, id)
	i := t.index(id)
	t.order = slices.Delete(t.order, i, i+1)
	t.rows = slices.Delete(t.rows, i, i+1)
}

func (t *table[T]) len() int { return len(t.order) }

// each visits records in creation order until fn returns false.
func (t *table[T]) each(fn func(*T) bool) {
	for _, r := range t.rows {
		if !fn(r) {
			return
		}
	}
}

// index is a parent -> children list kept alongside the tables, so related
// lists of a 100,000-contact org answer without scanning.
type index map[int64][]int64

func (x index) add(parent, child int64) {
	if parent != 0 {
		x[parent] = append(x[parent], child)
	}
}

func (x index) remove(parent, child int64) {
	if parent == 0 {
		return
	}
	list := x[parent]
	for i, v := range list {
		if v == child {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(x, parent)
	} else {
		x[parent] = list
	}
}

func (x index) move(from, to, child int64) {
	if from == to {
		return
	}
	x.remove(from, child)
	x.add(to, child)
}

// reindexEmail keeps the email index right when a contact's primary
// email changes; matching by email (SPEC B2) is the hottest lookup.
func (o *org) reindexEmail(id int64, old, email string) {
	if old == email {
		return
	}
	if old != "" {
		key := strings.ToLower(old)
		list := o.byEmail[key]
		for i, v := range list {
			if v == id {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(o.byEmail, key)
		} else {
			o.byEmail[key] = list
		}
	}
	if email != "" {
		key := strings.ToLower(email)
		o.byEmail[key] = append(o.byEmail[key], id)
	}
}

// org is one help-desk portal: everything the API shows for one orgId.
type org struct {
	id       int64
	portal   string
	company  string
	edition  string
	timeZone string
	country  string
	// open orgs are visible to every valid token; closed ones only to
	// tokens whose user is an active agent of the org.
	open   bool
	prefix int64 // leading digits of every id in this org
	seq    int64 // last id suffix handed out
	ticket int64 // last ticket number handed out

	departments table[department]
	agents      table[agent]
	profiles    table[profile]
	roles       table[role]
	replyAddrs  table[replyAddress]
	teams       table[team]
	statuses    []ticketStatus
	fields      map[string][]*field // module -> standard then custom fields

	contacts    table[contact]
	accounts    table[account]
	products    table[product]
	tickets     table[ticket]
	contracts   table[contract]
	slas        table[sla]
	timeEntries table[timeEntry]
	activities  table[activity]
	attachments table[attachment]
	ratings     table[rating]
	categories  table[category]
	articles    table[article]
	webhooks    table[webhook]
	trash       []*trashEntry

	ticketsOf     index              // contact, account and product id -> ticket ids
	contactsOf    index              // account id -> contact ids
	attachmentsOf index              // parent id -> attachment ids
	timeEntriesOf index              // ticket id -> time entry ids
	activitiesOf  index              // ticket and contact id -> activity ids
	contractsOf   index              // account id -> contract ids
	ratingsOf     index              // ticket id -> rating ids
	byEmail       map[string][]int64 // lower-cased primary email -> contact ids

	owner int64 // the portal owner: first administrator
}

func newOrg() *org {
	return &org{
		departments: newTable[department](8), agents: newTable[agent](16), profiles: newTable[profile](8),
		roles: newTable[role](8), replyAddrs: newTable[replyAddress](8), teams: newTable[team](4),
		fields:   map[string][]*field{},
		contacts: newTable[contact](0), accounts: newTable[account](0), products: newTable[product](0),
		tickets: newTable[ticket](0), contracts: newTable[contract](0), slas: newTable[sla](8), timeEntries: newTable[timeEntry](0),
		activities: newTable[activity](0), attachments: newTable[attachment](0), ratings: newTable[rating](0),
		categories: newTable[category](0), articles: newTable[article](0), webhooks: newTable[webhook](4),
		ticketsOf: index{}, contactsOf: index{}, attachmentsOf: index{}, timeEntriesOf: index{},
		activitiesOf: index{}, contractsOf: index{}, ratingsOf: index{}, byEmail: map[string][]int64{},
	}
}

// newID hands out the next id: the org prefix followed by a 12-digit
// sequence, 16 digits in all, like "1892000000042034".
func (o *org) newID() int64 {
	o.seq++
	return o.prefix*1_000_000_000_000 + o.seq
}

type department struct {
	id          int64
	name        string
	description string
	enabled     bool
	isDefault   bool
	chatStatus  string
	createdTime int64
	creatorID   int64
	agentIDs    []int64
}

type agent struct {
	id          int64
	zuid        int64
	firstName   string
	lastName    string
	email       string
	phone       string
	langCode    string
	timeZone    string
	profileID   int64
	roleID      int64
	status      string // ACTIVE or DISABLED
	confirmed   bool
	deleted     bool // deleted agents answer 404 but keep their id in history
	deptIDs     []int64
	createdTime int64
}

func (a *agent) name() string {
	if a.firstName == "" {
		return a.lastName
	}
	return a.firstName + " " + a.lastName
}

type profile struct {
	id          int64
	name        string
	description string
	typ         string // Administrator, Standard, Light, Custom, Portal
	isDefault   bool
	visible     bool
}

type role struct {
	id          int64
	name        string
	description string
	isDefault   bool
	reportsTo   int64
}

type team struct {
	id     int64
	name   string
	deptID int64
}

type replyAddress struct {
	id          int64
	address     string
	displayName string
	deptID      int64
	verified    bool
	isDefault   bool
}

// ticketStatus maps a status name, custom ones included, to its type.
type ticketStatus struct {
	name string
	typ  string // Open, On Hold or Closed
}

// contact keeps the fields every contact uses in typed slots and the rest
// in more, so 100,000 contacts stay small.
type contact struct {
	id             int64
	firstName      string
	lastName       string
	email          string
	secondaryEmail string
	phone          string
	mobile         string
	title          string
	typ            string
	accountID      int64
	ownerID        int64
	more           map[string]any
	cf             map[string]any
	crmID          int64
	crmType        string
	spam           bool
	trashed        bool
	createdTime    int64
	modifiedTime   int64
	createdBy      int64
	modifiedBy     int64
}

type account struct {
	id           int64
	name         string
	email        string
	phone        string
	website      string
	industry     string
	ownerID      int64
	more         map[string]any
	cf           map[string]any
	crmID        int64
	trashed      bool
	createdTime  int64
	modifiedTime int64
	createdBy    int64
	modifiedBy   int64
}

type product struct {
	id           int64
	name         string
	code         string
	unitPrice    float64
	category     string
	deptIDs      []int64
	ownerID      int64
	more         map[string]any
	cf           map[string]any
	trashed      bool
	createdTime  int64
	modifiedTime int64
	createdBy    int64
	modifiedBy   int64
}

type ticket struct {
	id                   int64
	number               int64
	subject              string
	description          string
	status               string
	priority             string
	classification       string
	channel              string
	email                string
	phone                string
	departmentID         int64
	contactID            int64
	accountID            int64
	productID            int64
	assigneeID           int64
	teamID               int64
	dueDate              int64
	responseDueDate      int64
	createdTime          int64
	modifiedTime         int64
	customerResponseTime int64
	closedTime           int64
	onholdTime           int64
	escalated            bool
	spam                 bool
	trashed              bool
	more                 map[string]any
	cf                   map[string]any
	createdBy            int64
	modifiedBy           int64

	// Seeded tickets carry only how many threads and comments they have;
	// the records themselves are generated the first time anyone looks,
	// which keeps seeding a 100,000-contact org fast.
	seedThreads  uint8
	seedComments uint8
	materialized bool
	threads      []*thread
	comments     []*comment
}

type thread struct {
	id          int64
	ticketID    int64
	channel     string // EMAIL, ONLINE_CHAT, FEEDBACK, ...
	direction   string // in or out
	visibility  string // public or private
	status      string // SUCCESS or DRAFT
	contentType string // text/html or text/plain
	content     string
	from        string
	to          string
	cc          string
	bcc         string
	forward     bool
	isDesc      bool
	authorID    int64
	authorType  string // AGENT or END_USER
	authorName  string
	authorEmail string
	createdTime int64
}

type comment struct {
	id            int64
	ticketID      int64
	content       string
	contentType   string
	public        bool
	commenterID   int64
	commentedTime int64
	modifiedTime  int64
}

type rating struct {
	id        int64
	ticketID  int64
	contactID int64
	deptID    int64
	agentID   int64
	value     string // GOOD, OKAY or BAD
	feedback  string
	ratedTime int64
}

type timeEntry struct {
	id           int64
	ticketID     int64
	ownerID      int64
	executedTime int64
	hours        int
	minutes      int
	seconds      int
	billable     bool
	description  string
	createdTime  int64
	modifiedTime int64
	trashed      bool
}

type activity struct {
	id           int64
	kind         string // Tasks, Calls or Events
	subject      string
	status       string
	priority     string
	ticketID     int64
	contactID    int64
	deptID       int64
	ownerID      int64
	dueDate      int64
	createdTime  int64
	modifiedTime int64
	trashed      bool
}

type attachment struct {
	id          int64
	parentID    int64
	parentKind  string // tickets, contacts, accounts, products
	name        string
	content     []byte
	size        int
	creatorID   int64
	createdTime int64
	public      bool
	trashed     bool
}

type contract struct {
	id           int64
	name         string
	number       string
	accountID    int64
	productID    int64
	deptID       int64
	ownerID      int64
	slaID        int64 // associatedSLAId: an SLA of the contract's department
	startDate    string
	endDate      string
	description  string
	createdTime  int64
	modifiedTime int64
	trashed      bool
}

// sla is a service-level agreement of one department; contracts name one
// (associatedSLAId). Every department has one default SLA.
type sla struct {
	id           int64
	name         string
	description  string
	deptID       int64
	active       bool
	isDefault    bool
	createdTime  int64
	modifiedTime int64
}

type category struct {
	id           int64
	parentID     int64 // 0 for a root category
	rootID       int64
	name         string
	description  string
	deptID       int64
	visibility   string // ALL_USERS, REGISTERED_USERS, AGENTS
	locale       string
	order        int
	permalink    string
	createdTime  int64
	modifiedTime int64
	trashed      bool
}

type article struct {
	id           int64
	categoryID   int64
	rootID       int64
	deptID       int64
	title        string
	answer       string
	status       string // Draft, Published, Review, Expired, Unpublished
	permission   string // ALL, REGISTEREDUSERS, AGENTS
	locale       string
	permalink    string
	tags         []string
	authorID     int64
	ownerID      int64
	version      int // minor versions: 1.0, 1.1, ...
	published    int // latest published version, 0 for none
	viewCount    int
	likeCount    int
	dislikeCount int
	expiryDate   int64
	createdTime  int64
	modifiedTime int64
	trashed      bool
}

type webhook struct {
	id                int64
	name              string
	url               string
	description       string
	ignoreSourceID    string
	includeEventsFrom []string
	enabled           bool
	subs              map[string]*subscription
	createdBy         int64
	createdTime       int64
	modifiedTime      int64
}

// subscription is one event's filter; null in the request means "no
// filter".
type subscription struct {
	departmentIDs    []int64
	includePrevState bool
	fields           []string
	direction        string
}

// trashEntry is one recycle-bin row. Records trashed because their parent
// was (a contact's tickets) point at the parent's entry so a restore can
// bring them back together.
type trashEntry struct {
	id          int64
	kind        string // Contacts, Accounts, Products, Tickets, Articles, Contracts, ...
	displayName string
	deptID      int64
	deletedBy   int64
	deletedTime int64
	parent      int64
}
