package crm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Org is one CRM org (company account) on a server: its users, records,
// recycle bin and watch channels. Its Go methods act as a person working
// in the CRM UI; they go through the same write path as the API and so
// trigger the same notifications.
type Org struct {
	s       *Server
	n       int
	id      string
	zgid    string
	name    string
	domain  string
	members map[string]bool // lower-case emails; nil = anyone who authorizes
	idBase  uint64

	// guarded by s.mu
	users    []*user
	byEmail  map[string]*user
	stores   map[string]*store
	next     uint64
	deleted  map[string][]*deletedEntry
	channels map[string]*channel
	version  uint64
	cache    map[string]*cachedList
}

// user is a CRM user of an org.
type user struct {
	idx     int32
	id      string
	zuid    string
	first   string
	last    string
	email   string
	role    string
	profile string
}

func (u *user) name() string { return strings.TrimSpace(u.first + " " + u.last) }

func (u *user) ref() map[string]any {
	return map[string]any{"name": u.name(), "id": u.id, "email": u.email}
}

// staff are the seeded users of every org; the first is the primary
// administrator the Go "UI" methods act as.
var staff = [][2]string{{"Patricia", "Boyle"}, {"Kenji", "Mori"}, {"Ana", "Silva"}, {"Liam", "Carter"}}

func newOrg(s *Server, n int, oo OrgOptions) *Org {
	base := uint64(5725767)
	if s.o.Flavor == Bigin {
		base = 2034020
	}
	base = (base + uint64(n)*131) * 1_000_000_000_000
	o := &Org{s: s, n: n, idBase: base, byEmail: map[string]*user{}, stores: map[string]*store{},
		deleted: map[string][]*deletedEntry{}, channels: map[string]*channel{}, cache: map[string]*cachedList{}}
	o.id = oo.ID
	if o.id == "" {
		o.id = strconv.FormatUint(base+452658, 10)
	}
	o.zgid = strconv.Itoa(74822955 + n*1009)
	o.name = oo.Name
	if o.name == "" {
		o.name = []string{"Zylker Corp", "Zillum Inc.", "Zoho Sandbox KK", "Northwind Traders"}[n%4]
		if n >= 4 {
			o.name += " " + strconv.Itoa(n)
		}
	}
	o.domain = domainOf(o.name, n)
	if len(oo.Members) > 0 {
		o.members = map[string]bool{}
		for _, e := range oo.Members {
			o.members[strings.ToLower(e)] = true
		}
	}
	for i, st := range staff {
		role, profile := "Standard", "Standard"
		if i == 0 {
			role, profile = "CEO", "Administrator"
		}
		o.addUser(st[0], st[1], strings.ToLower(st[0]+"."+st[1])+"@"+o.domain, role, profile)
	}
	for _, name := range s.modList {
		o.stores[name] = newStore(s.mods[name])
	}
	if oo.World != nil {
		o.seed(oo.World, oo.Seed)
	}
	return o
}

func domainOf(name string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("org" + strconv.Itoa(n))
	}
	return b.String() + ".example"
}

func (o *Org) addUser(first, last, email, role, profile string) *user {
	u := &user{idx: int32(len(o.users)), first: first, last: last, email: email, role: role, profile: profile}
	u.id = strconv.FormatUint(o.idBase+225013+uint64(len(o.users))*1000, 10)
	u.zuid = strconv.Itoa(75092197 + o.n*100 + len(o.users))
	o.users = append(o.users, u)
	o.byEmail[strings.ToLower(email)] = u
	return u
}

// admits reports whether a token user may work in the org. Called with
// s.mu held.
func (o *Org) admits(email string) bool {
	if o.members == nil {
		return true
	}
	return o.members[strings.ToLower(email)] || o.byEmail[strings.ToLower(email)] != nil
}

// userFor returns the CRM user a token's email maps to, adding an
// administrator the first time someone authorizes. Called with s.mu held.
func (o *Org) userFor(email string) *user {
	if u := o.byEmail[strings.ToLower(email)]; u != nil {
		return u
	}
	local, _, _ := strings.Cut(email, "@")
	first, last, ok := strings.Cut(local, ".")
	if !ok {
		first, last = "", local
	}
	return o.addUser(capital(first), capital(last), email, "CEO", "Administrator")
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ID returns the org id.
func (o *Org) ID() string { return o.id }

// ZGID returns the org's zgid, the other id X-CRM-ORG accepts.
func (o *Org) ZGID() string { return o.zgid }

// Name returns the org's company name.
func (o *Org) Name() string { return o.name }

// newID hands out the next record id. Called with s.mu held.
func (o *Org) newID() string {
	o.next++
	return strconv.FormatUint(o.idBase+400000+o.next, 10)
}

func (o *Org) module(name string) (*module, error) {
	api, ok := o.s.lower[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("module %q: %w", name,
			errf(400, "INVALID_MODULE", "the module name given seems to be invalid", nil))
	}
	return o.s.mods[api], nil
}

// normalize turns Go values into what the JSON decoder would have made of
// them, so the UI methods share the API's validation.
func normalize(fields map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encoding fields: %w", err)
	}
	var out map[string]any
	if err := decodeJSON(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Create adds a record as the org's primary administrator would in the UI,
// and returns its id.
func (o *Org) Create(module string, fields map[string]any) (string, error) {
	m, err := o.module(module)
	if err != nil {
		return "", fmt.Errorf("creating record: %w", err)
	}
	in, err := normalize(fields)
	if err != nil {
		return "", fmt.Errorf("creating %s record: %w", m.api, err)
	}
	o.s.mu.Lock()
	w := o.newWriter(o.users[0], "")
	rec, e := o.insert(w, m, in, 0, nil)
	o.commit(w)
	o.s.mu.Unlock()
	o.s.flush()
	if e != nil {
		return "", fmt.Errorf("creating %s record: %w", m.api, e)
	}
	return rec.id, nil
}

// Edit changes a record as the org's primary administrator would in the UI.
func (o *Org) Edit(module, id string, fields map[string]any) error {
	return o.MassUpdate(module, []string{id}, fields)
}

// MassUpdate sets the same fields on many records at once, as the UI's mass
// update does: one update notification carries every id. Records that
// validate are updated even when others fail; the first failure is returned.
func (o *Org) MassUpdate(module string, ids []string, fields map[string]any) error {
	m, err := o.module(module)
	if err != nil {
		return fmt.Errorf("updating records: %w", err)
	}
	in, err := normalize(fields)
	if err != nil {
		return fmt.Errorf("updating %s records: %w", m.api, err)
	}
	o.s.mu.Lock()
	w := o.newWriter(o.users[0], "")
	var first error
	for i, id := range ids {
		rec := o.stores[m.api].byID[id]
		if rec == nil {
			if first == nil {
				first = fmt.Errorf("updating %s record %s: %w", m.api, id, invalidID())
			}
			continue
		}
		if e := o.update(w, rec, in, i); e != nil && first == nil {
			first = fmt.Errorf("updating %s record %s: %w", m.api, id, e)
		}
	}
	o.commit(w)
	o.s.mu.Unlock()
	o.s.flush()
	return first
}

// Delete moves a record to the recycle bin as a person in the UI would.
func (o *Org) Delete(module, id string) error {
	m, err := o.module(module)
	if err != nil {
		return fmt.Errorf("deleting record: %w", err)
	}
	o.s.mu.Lock()
	rec := o.stores[m.api].byID[id]
	if rec == nil {
		o.s.mu.Unlock()
		return fmt.Errorf("deleting %s record %s: %w", m.api, id, invalidID())
	}
	w := o.newWriter(o.users[0], "")
	o.remove(w, rec)
	o.commit(w)
	o.s.mu.Unlock()
	o.s.flush()
	return nil
}

// Record returns a record with every field, as GET /{module}/{id} renders
// it, or false when there is none.
func (o *Org) Record(module, id string) (map[string]any, bool) {
	m, err := o.module(module)
	if err != nil {
		return nil, false
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	rec := o.stores[m.api].byID[id]
	if rec == nil {
		return nil, false
	}
	return o.render(rec, nil), true
}

// Count returns how many live (not deleted) records a module holds.
func (o *Org) Count(module string) int {
	m, err := o.module(module)
	if err != nil {
		return 0
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return len(o.stores[m.api].order)
}

// IDs returns the ids of a module's live records, oldest first.
func (o *Org) IDs(module string) []string {
	m, err := o.module(module)
	if err != nil {
		return nil
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	out := make([]string, 0, len(o.stores[m.api].order))
	for _, r := range o.stores[m.api].order {
		out = append(out, r.id)
	}
	return out
}

// Users returns the emails of the org's CRM users, the primary
// administrator first.
func (o *Org) Users() []string {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	var out []string
	for _, u := range o.users {
		out = append(out, u.email)
	}
	return out
}

func formatID(n uint64) string { return strconv.FormatUint(n, 10) }
