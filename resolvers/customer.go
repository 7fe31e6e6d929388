package resolvers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// The mirror's system names on each side (connector.System values).
const (
	deskSystem = "zoho_desk"
)

// requestCache holds what one GraphQL operation has read of the mirror, so
// nested fields of a list (each ticket's contact, each record's customer)
// are answered from rows a parent fetched in one query, and the org's
// connection is read once.
type requestCache struct {
	mu      sync.Mutex
	conn    *store.Connection
	connErr error
	records map[recordKey]*store.CustomerRecord // nil value: known to be missing
	links   map[linkKey]string
}

type recordKey struct{ system, module, extID string }

type linkKey struct {
	module, side, id string
}

type requestCacheKey struct{}

// WithRequestCache gives one operation its cache; the server wraps every
// operation with it.
func WithRequestCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestCacheKey{}, &requestCache{records: map[recordKey]*store.CustomerRecord{}, links: map[linkKey]string{}})
}

func cacheOf(ctx context.Context) *requestCache {
	if c, ok := ctx.Value(requestCacheKey{}).(*requestCache); ok {
		return c
	}
	// Outside an operation (tests calling resolvers directly): a throwaway.
	return &requestCache{records: map[recordKey]*store.CustomerRecord{}, links: map[linkKey]string{}}
}

// errNoConnection is the answer of every customer-360 field in an org that
// has no CRM connection (A6: removing it removes the CRM panels).
var errNoConnection = fmt.Errorf("the org has no CRM connection: %w", store.ErrNotFound)

// orgConnection is the connection customer 360 reads: the org's live or
// deactivated one (a removed connection shows nothing, A6).
func (r *Resolver) orgConnection(ctx context.Context, v auth.Viewer) (store.Connection, error) {
	c := cacheOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil && c.connErr == nil {
		conn, err := store.CurrentConnection(ctx, r.DB, v.OrgID)
		if errors.Is(err, store.ErrNotFound) {
			err = errNoConnection
		}
		c.conn, c.connErr = &conn, err
	}
	return *c.conn, c.connErr
}

// prefetch loads records of one module by vendor id into the cache, in one
// query, skipping those already known.
func (r *Resolver) prefetch(ctx context.Context, v auth.Viewer, conn store.Connection, system, module string, ids []string) error {
	c := cacheOf(ctx)
	c.mu.Lock()
	var missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		if _, ok := c.records[recordKey{system, module, id}]; !ok && id != "" && !seen[id] {
			missing = append(missing, id)
			seen[id] = true
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	found, err := store.CustomerRecordsByExtIDs(ctx, r.DB, v.OrgID, conn.ID, system, module, missing)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range missing {
		if rec, ok := found[id]; ok {
			c.records[recordKey{system, module, id}] = &rec
		} else {
			c.records[recordKey{system, module, id}] = nil
		}
	}
	return nil
}

// record returns one mirrored record by vendor id (nil when it is not
// mirrored or deleted), from the cache when a parent prefetched it.
func (r *Resolver) record(ctx context.Context, v auth.Viewer, conn store.Connection, system, module, id string) (*store.CustomerRecord, error) {
	if id == "" {
		return nil, nil
	}
	if err := r.prefetch(ctx, v, conn, system, module, []string{id}); err != nil {
		return nil, err
	}
	c := cacheOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records[recordKey{system, module, id}], nil
}

// linked returns the record linked to id on the other side ("" if none):
// side "desk" maps a desk id to its CRM id, "crm" the reverse.
func (r *Resolver) linked(ctx context.Context, v auth.Viewer, conn store.Connection, module, side, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	c := cacheOf(ctx)
	k := linkKey{module, side, id}
	c.mu.Lock()
	if other, ok := c.links[k]; ok {
		c.mu.Unlock()
		return other, nil
	}
	c.mu.Unlock()
	var l store.Link
	var err error
	if side == "desk" {
		l, err = store.LinkByDesk(ctx, r.DB, v.OrgID, conn.ID, module, id)
	} else {
		l, err = store.LinkByCRM(ctx, r.DB, v.OrgID, conn.ID, module, id)
	}
	other := ""
	switch {
	case err == nil && side == "desk":
		other = l.CRMID
	case err == nil:
		other = l.DeskID
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	c.mu.Lock()
	c.links[k] = other
	c.mu.Unlock()
	return other, nil
}

// customerOfDesk builds the customer key of a desk contact and/or account:
// the CRM side through the links, else (for a contact never synced) by
// email in the CRM mirror; led by the profile's panel record.
func (r *Resolver) customerOfDesk(ctx context.Context, v auth.Viewer, conn store.Connection, contact, account *store.CustomerRecord) (*model.Customer, error) {
	key := store.CustomerKey{ConnectionID: conn.ID, CRMSystem: conn.CRMSystem, Lead: v.EffectiveProfile().PanelRecord}
	if contact != nil {
		key.DeskContactID = contact.ExtID
		if account == nil && contact.AccountRef != nil {
			acc, err := r.record(ctx, v, conn, deskSystem, "accounts", *contact.AccountRef)
			if err != nil {
				return nil, err
			}
			account = acc
		}
		crmID, err := r.linked(ctx, v, conn, "contacts", "desk", contact.ExtID)
		if err != nil {
			return nil, err
		}
		if crmID == "" && contact.Email != nil {
			byEmail, err := store.CustomerRecordsByEmail(ctx, r.DB, v.OrgID, conn.ID, conn.CRMSystem, "contacts", *contact.Email, 1)
			if err != nil {
				return nil, err
			}
			if len(byEmail) > 0 {
				crmID = byEmail[0].ExtID
			}
		}
		key.CRMContactID = crmID
	}
	if account != nil {
		key.DeskAccountID = account.ExtID
		crmID, err := r.linked(ctx, v, conn, "accounts", "desk", account.ExtID)
		if err != nil {
			return nil, err
		}
		key.CRMAccountID = crmID
	}
	if key.CRMAccountID == "" && key.CRMContactID != "" {
		crm, err := r.record(ctx, v, conn, conn.CRMSystem, "contacts", key.CRMContactID)
		if err != nil {
			return nil, err
		}
		if crm != nil && crm.AccountRef != nil {
			key.CRMAccountID = *crm.AccountRef
		}
	}
	if key.Lead == "CONTACT" && key.CRMContactID == "" && key.DeskContactID == "" {
		key.Lead = "ACCOUNT"
	}
	if key.Lead == "ACCOUNT" && key.CRMAccountID == "" && key.DeskAccountID == "" {
		key.Lead = "CONTACT"
	}
	return &model.Customer{Key: key}, nil
}

// customerOfCRM builds the customer key of a CRM lead, contact or account,
// led by that record.
func (r *Resolver) customerOfCRM(ctx context.Context, v auth.Viewer, conn store.Connection, rec store.CustomerRecord) (*model.Customer, error) {
	key := store.CustomerKey{ConnectionID: conn.ID, CRMSystem: conn.CRMSystem}
	switch rec.Module {
	case "leads":
		key.Lead, key.CRMLeadID = "LEAD", rec.ExtID
		if rec.Email != nil {
			key.Email = *rec.Email
		}
		return &model.Customer{Key: key}, nil
	case "contacts":
		key.Lead, key.CRMContactID = "CONTACT", rec.ExtID
		if rec.AccountRef != nil {
			key.CRMAccountID = *rec.AccountRef
		}
		deskID, err := r.linked(ctx, v, conn, "contacts", "crm", rec.ExtID)
		if err != nil {
			return nil, err
		}
		key.DeskContactID = deskID
	case "accounts":
		key.Lead, key.CRMAccountID = "ACCOUNT", rec.ExtID
	default:
		return nil, fmt.Errorf("a %s record has no customer picture", rec.Module)
	}
	if key.CRMAccountID != "" {
		deskID, err := r.linked(ctx, v, conn, "accounts", "crm", key.CRMAccountID)
		if err != nil {
			return nil, err
		}
		key.DeskAccountID = deskID
	}
	return &model.Customer{Key: key}, nil
}

// forbidden is the error a field the profile hides answers with.
func forbidden(area string) error {
	return fmt.Errorf("your permission profile does not show %s: %w", area, auth.ErrForbidden)
}

// addFieldError reports err at the current field's path while the field
// still answers (an empty list beside the error, SPEC G5/issue 5 item 7).
func addFieldError(ctx context.Context, err error) {
	graphql.AddError(ctx, &gqlerror.Error{Err: err, Message: err.Error(), Path: graphql.GetPath(ctx)})
}

// listCursor wraps a store cursor for clients: opaque, and tagged so a
// cursor of one list kind is refused by another.
func listCursor(kind, c string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x01" + c))
}

func parseListCursor(argument, kind string, after *string) (string, error) {
	if after == nil || *after == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	if err == nil {
		if c, ok := strings.CutPrefix(string(raw), kind+"\x01"); ok {
			return c, nil
		}
	}
	return "", badInput(argument, "not a cursor from this list")
}

func customerPageInfo(p store.CustomerPage, after string) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: after != ""}
	if n := len(p.Cursors); n > 0 {
		start, end := p.Cursors[0], p.Cursors[n-1]
		info.StartCursor, info.EndCursor = &start, &end
	}
	return info
}

// wrapCursors turns a page's store cursors into client cursors in place.
func wrapCursors(kind string, p *store.CustomerPage) {
	for i, c := range p.Cursors {
		p.Cursors[i] = listCursor(kind, c)
	}
}

func ticketModel(rec store.CustomerRecord) *model.Ticket {
	f := fieldsOf(rec)
	t := &model.Ticket{ID: globalID("Ticket", rec.ID), DeskID: rec.ExtID, Row: rec,
		Number: textField(f, "ticketNumber"), Subject: rec.Title, Status: rec.Status,
		Priority: textField(f, "priority"), Channel: textField(f, "channel"), DepartmentID: rec.DepartmentID,
		AssigneeID: rec.OwnerID, DueAt: rec.At, CreatedAt: rec.CreatedAt, ModifiedAt: rec.ModifiedAt}
	if rec.StatusType != nil {
		st := model.TicketStatusType(strings.ToUpper(strings.ReplaceAll(*rec.StatusType, " ", "_")))
		if st.IsValid() {
			t.StatusType = &st
		}
	}
	closed := rec.Closed != nil && *rec.Closed
	t.Overdue = !closed && rec.At != nil && rec.At.Before(time.Now())
	return t
}

func deskContactModel(rec store.CustomerRecord) *model.DeskContact {
	f := fieldsOf(rec)
	name := strings.TrimSpace(deref(textField(f, "firstName")) + " " + deref(textField(f, "lastName")))
	return &model.DeskContact{ID: globalID("DeskContact", rec.ID), DeskID: rec.ExtID, Row: rec,
		Name: nonEmpty(name), Email: rec.Email, Phone: textField(f, "phone")}
}

func deskAccountModel(rec store.CustomerRecord) *model.DeskAccount {
	return &model.DeskAccount{ID: globalID("DeskAccount", rec.ID), DeskID: rec.ExtID, Row: rec, Name: rec.Name}
}

var crmModules = map[string]model.CrmModule{"leads": model.CrmModuleLeads, "contacts": model.CrmModuleContacts,
	"accounts": model.CrmModuleAccounts, "deals": model.CrmModuleDeals}

func crmRecordModel(rec store.CustomerRecord) *model.CrmRecord {
	f := fieldsOf(rec)
	name := deref(rec.Name)
	if rec.Module == "contacts" || rec.Module == "leads" {
		name = deref(textField(f, "Full_Name"))
		if name == "" {
			name = strings.TrimSpace(deref(textField(f, "First_Name")) + " " + deref(textField(f, "Last_Name")))
		}
	}
	return &model.CrmRecord{ID: globalID("CrmRecord", rec.ID), CrmID: rec.ExtID, Module: crmModules[rec.Module],
		Name: nonEmpty(name), Email: rec.Email, OwnerName: rec.OwnerName, Row: rec}
}

func dealModel(rec store.CustomerRecord) *model.Deal {
	return &model.Deal{ID: globalID("Deal", rec.ID), CrmID: rec.ExtID, Name: rec.Title, Stage: rec.Status,
		Amount: rec.Amount, ClosingAt: rec.At, Closed: rec.Closed, OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
}

func noteModel(rec store.CustomerRecord) *model.Note {
	return &model.Note{ID: globalID("Note", rec.ID), CrmID: rec.ExtID, Title: rec.Title,
		Content: textField(fieldsOf(rec), "Note_Content"), OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
}

var activityKinds = map[string]model.ActivityKind{"calls": model.ActivityKindCall, "events": model.ActivityKindEvent, "tasks": model.ActivityKindTask}

func activityModel(rec store.CustomerRecord) *model.Activity {
	return &model.Activity{ID: globalID("Activity", rec.ID), CrmID: rec.ExtID, Kind: activityKinds[rec.Module],
		Subject: rec.Title, Status: rec.Status, At: rec.At, Closed: rec.Closed, OwnerName: rec.OwnerName, CreatedAt: rec.CreatedAt}
}

// fieldsOf decodes a record's fields; a record that does not decode shows
// no extra fields rather than failing the whole answer.
func fieldsOf(rec store.CustomerRecord) map[string]any {
	var f map[string]any
	_ = json.Unmarshal(rec.Fields, &f)
	return f
}

func textField(f map[string]any, name string) *string {
	switch v := f[name].(type) {
	case string:
		return nonEmpty(v)
	case float64:
		s := fmt.Sprint(v)
		return &s
	}
	return nil
}

// customerContext is the caller and the org's connection, which every
// customer-360 field needs.
func (r *Resolver) customerContext(ctx context.Context) (auth.Viewer, store.Connection, error) {
	v, err := auth.FromContext(ctx)
	if err != nil {
		return auth.Viewer{}, store.Connection{}, err
	}
	conn, err := r.orgConnection(ctx, v)
	return v, conn, err
}

// customerCRMRecord is a customer's CRM contact or account, behind the
// contact-info permission.
func (r *Resolver) customerCRMRecord(ctx context.Context, k store.CustomerKey, module, id string) (*model.CrmRecord, error) {
	v, conn, err := r.customerContext(ctx)
	if err != nil {
		return nil, err
	}
	if !v.CanSee(auth.AreaContactInfo) {
		return nil, forbidden("CRM contact info")
	}
	rec, err := r.record(ctx, v, conn, k.CRMSystem, module, id)
	if err != nil || rec == nil {
		return nil, err
	}
	return crmRecordModel(*rec), nil
}

// mergedFields puts the leading desk record's values beside its CRM
// record's, pair by pair: the connection's saved mappings of that module,
// or the standard pairs while none are saved.
func (r *Resolver) mergedFields(ctx context.Context, v auth.Viewer, conn store.Connection, k store.CustomerKey) ([]*model.MergedField, error) {
	module, deskID, crmID := "contacts", k.DeskContactID, k.CRMContactID
	if k.Lead == "ACCOUNT" {
		module, deskID, crmID = "accounts", k.DeskAccountID, k.CRMAccountID
	}
	desk, err := r.record(ctx, v, conn, deskSystem, module, deskID)
	if err != nil {
		return nil, err
	}
	crm, err := r.record(ctx, v, conn, conn.CRMSystem, module, crmID)
	if err != nil {
		return nil, err
	}
	out := []*model.MergedField{}
	if desk == nil && crm == nil {
		return out, nil
	}
	saved, err := store.Mappings(ctx, r.DB, v.OrgID, conn.ID, module)
	if err != nil {
		return nil, err
	}
	pairs := mapping.StandardPairs(mapping.Module(module))
	if len(saved) > 0 {
		pairs = pairs[:0]
		for _, m := range saved {
			pairs = append(pairs, [2]string{m.DeskField, m.CRMField})
		}
	}
	var deskFields, crmFields map[string]any
	if desk != nil {
		deskFields = fieldsOf(*desk)
	}
	if crm != nil {
		crmFields = fieldsOf(*crm)
	}
	for _, p := range pairs {
		out = append(out, &model.MergedField{DeskField: p[0], CrmField: p[1], DeskValue: deskFields[p[0]], CrmValue: crmFields[p[1]]})
	}
	return out, nil
}
