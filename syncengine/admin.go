package syncengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Sync administration (SPEC B1-B6, B12-B14): the admin's reads and changes
// of a connection's sync, behind the same permission as connections. Every
// method loads the connection within the viewer's org first, so another
// org's connection is store.ErrNotFound.

// The pause and resume actions of SetStatus (B12). Pausing stops the
// workers (the queue's Claim takes only ACTIVE connections) while capture
// goes on; resuming lets the workers drain what waited.
const (
	ConnectionPause  ConnectionAction = "PAUSE"
	ConnectionResume ConnectionAction = "RESUME"
)

// Sync types, match emails and delete policies as stored and as the GraphQL
// enums spell them.
const (
	SyncTwoWay = "TWO_WAY"
	SyncOneWay = "ONE_WAY"
	SyncNone   = "NONE"
)

// Groups lists the module groups in display order.
var Groups = []string{store.GroupContactsAccounts, store.GroupProducts}

// GroupOf is the settings group of a module.
func GroupOf(m mapping.Module) string {
	if m == mapping.Products {
		return store.GroupProducts
	}
	return store.GroupContactsAccounts
}

// Directions are the mapping directions a sync type uses.
func Directions(syncType string) []mapping.Direction {
	switch syncType {
	case SyncTwoWay:
		return []mapping.Direction{mapping.CRMToDesk, mapping.DeskToCRM}
	case SyncOneWay:
		return []mapping.Direction{mapping.CRMToDesk}
	}
	return nil
}

// MappingProblemsError refuses a mapping set: every problem found, each
// naming its fields.
type MappingProblemsError struct {
	Module   mapping.Module
	Problems []mapping.Problem
}

func (e *MappingProblemsError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return fmt.Sprintf("the %s mappings cannot be saved: %s", e.Module, strings.Join(msgs, "; "))
}

// adminConnection checks the permission and loads the org's connection.
func (s *ConnectionService) adminConnection(ctx context.Context, q store.Queryer, v auth.Viewer, id int64, what string) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("%s: %w", what, auth.ErrForbidden)
	}
	c, err := store.ConnectionByID(ctx, q, v.OrgID, id)
	if err != nil {
		return store.Connection{}, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

// Settings returns the current version of each group's settings, in
// display order; a group without settings is left out.
func (s *ConnectionService) Settings(ctx context.Context, v auth.Viewer, id int64) ([]store.Settings, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "reading sync settings"); err != nil {
		return nil, err
	}
	out := []store.Settings{}
	now := time.Now()
	for _, g := range Groups {
		st, err := store.CurrentSettings(ctx, s.db, v.OrgID, id, g, now)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// SettingsChange is an edit of one group's settings; nil fields keep their
// value, and an empty CRMViewID or DeskDepartmentID clears it.
type SettingsChange struct {
	Group               string
	SyncType            *string
	MatchEmail          *string
	CRMViewID           *string
	DeskDepartmentID    *string
	CRMDeletePolicy     *string
	DeskDeletePolicy    *string
	FirstSyncWindowDays *int
}

// UpdateSettings inserts a new version of a group's settings, effective now
// (B6): changes captured before keep the earlier version. Refusals are
// ConnectionInputErrors whose Field is the input field's name.
func (s *ConnectionService) UpdateSettings(ctx context.Context, v auth.Viewer, id int64, ch SettingsChange) (store.Settings, error) {
	var out store.Settings
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		c, err := s.adminConnection(ctx, tx, v, id, "updating sync settings")
		if err != nil {
			return err
		}
		if !slices.Contains(Groups, ch.Group) {
			return &ConnectionInputError{Field: "moduleGroup", Reason: "unknown module group"}
		}
		cur, err := store.CurrentSettings(ctx, tx, v.OrgID, id, ch.Group, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			cur, err = defaultConnectionSettings(v, id, ch.Group), nil
		}
		if err != nil {
			return err
		}
		next, err := applySettingsChange(cur, ch, connector.System(c.CRMSystem))
		if err != nil {
			return err
		}
		userID := v.UserID
		next.EffectiveFrom, next.CreatedBy = time.Time{}, &userID
		out, err = store.InsertSettings(ctx, tx, next)
		return err
	})
	if err != nil {
		return store.Settings{}, err
	}
	s.log.InfoContext(ctx, "sync settings updated", "org_id", v.OrgID, "connection_id", id,
		"module_group", out.ModuleGroup, "sync_type", out.SyncType, "effective_from", out.EffectiveFrom)
	return out, nil
}

// applySettingsChange is cur with ch applied, for a connection to a CRM of
// crmSystem, or a ConnectionInputError naming the field that cannot be.
func applySettingsChange(cur store.Settings, ch SettingsChange, crmSystem connector.System) (store.Settings, error) {
	next := cur
	var err error
	if ch.SyncType != nil {
		if *ch.SyncType == SyncNone && crmSystem != connector.Bigin {
			return store.Settings{}, &ConnectionInputError{Field: "syncType", Reason: "NONE is available for Bigin connections only"}
		}
		next.SyncType = *ch.SyncType
	}
	if ch.MatchEmail != nil {
		next.MatchEmail = *ch.MatchEmail
	}
	if ch.CRMViewID != nil {
		if ch.Group != store.GroupContactsAccounts {
			return store.Settings{}, &ConnectionInputError{Field: "crmViewId", Reason: "applies to CONTACTS_ACCOUNTS only"}
		}
		if next.CRMViewID, err = optionalID("crmViewId", *ch.CRMViewID); err != nil {
			return store.Settings{}, err
		}
	}
	if ch.DeskDepartmentID != nil {
		if ch.Group != store.GroupProducts {
			return store.Settings{}, &ConnectionInputError{Field: "deskDepartmentId", Reason: "applies to PRODUCTS only"}
		}
		if next.DeskDepartmentID, err = optionalID("deskDepartmentId", *ch.DeskDepartmentID); err != nil {
			return store.Settings{}, err
		}
	}
	if ch.CRMDeletePolicy != nil {
		next.CRMDeletePolicy = *ch.CRMDeletePolicy
	}
	if ch.DeskDeletePolicy != nil {
		next.DeskDeletePolicy = *ch.DeskDeletePolicy
	}
	if ch.FirstSyncWindowDays != nil {
		if d := *ch.FirstSyncWindowDays; d < 1 || d > 3650 {
			return store.Settings{}, &ConnectionInputError{Field: "firstSyncWindowDays", Reason: "must be between 1 and 3650"}
		}
		next.FirstSyncWindowDays = *ch.FirstSyncWindowDays
	}
	return next, nil
}

// initialSettings are a new connection's settings: each group's defaults
// with the changes the request gives (at most one per group), checked
// before anything is stored. A refusal's Field is "settings[i].<field>".
func initialSettings(v auth.Viewer, crmSystem connector.System, changes []SettingsChange) (map[string]store.Settings, error) {
	out := map[string]store.Settings{}
	for _, g := range Groups {
		out[g] = defaultConnectionSettings(v, 0, g)
	}
	seen := map[string]bool{}
	for i, ch := range changes {
		at := fmt.Sprintf("settings[%d].", i)
		if _, known := out[ch.Group]; !known {
			return nil, &ConnectionInputError{Field: at + "moduleGroup", Reason: "unknown module group"}
		}
		if seen[ch.Group] {
			return nil, &ConnectionInputError{Field: at + "moduleGroup", Reason: "given twice; give each module group once"}
		}
		seen[ch.Group] = true
		next, err := applySettingsChange(out[ch.Group], ch, crmSystem)
		var input *ConnectionInputError
		if errors.As(err, &input) {
			return nil, &ConnectionInputError{Field: at + input.Field, Reason: input.Reason}
		}
		if err != nil {
			return nil, err
		}
		out[ch.Group] = next
	}
	return out, nil
}

// optionalID trims an id; empty means none.
func optionalID(field, s string) (*string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) > 100 {
		return nil, &ConnectionInputError{Field: field, Reason: "must be at most 100 characters"}
	}
	return &s, nil
}

// moduleFields reads both systems' field metadata of a module.
func (s *ConnectionService) moduleFields(ctx context.Context, c store.Connection, m mapping.Module) (desk, crm []connector.Field, err error) {
	deskConn, crmConn, err := s.For(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if desk, err = deskConn.Fields(ctx, m.DeskModule()); err != nil {
		return nil, nil, fmt.Errorf("reading the desk's %s fields: %w", m, err)
	}
	if crm, err = crmConn.Fields(ctx, m.CRMModule()); err != nil {
		return nil, nil, fmt.Errorf("reading the CRM's %s fields: %w", m.CRMModule(), err)
	}
	return desk, crm, nil
}

// AvailableFields returns both systems' fields of a module, read live.
func (s *ConnectionService) AvailableFields(ctx context.Context, v auth.Viewer, id int64, m mapping.Module) (desk, crm []connector.Field, err error) {
	c, err := s.adminConnection(ctx, s.db, v, id, "reading available fields")
	if err != nil {
		return nil, nil, err
	}
	return s.moduleFields(ctx, c, m)
}

// FieldMappings returns a module's saved mappings, or, while none were
// saved, the standard ones that both systems' metadata have.
func (s *ConnectionService) FieldMappings(ctx context.Context, v auth.Viewer, id int64, m mapping.Module) ([]store.Mapping, error) {
	c, err := s.adminConnection(ctx, s.db, v, id, "reading field mappings")
	if err != nil {
		return nil, err
	}
	saved, err := store.Mappings(ctx, s.db, v.OrgID, id, string(m))
	if err != nil || len(saved) > 0 {
		return saved, err
	}
	desk, crm, err := s.moduleFields(ctx, c, m)
	if err != nil {
		return nil, err
	}
	std := mapping.Standard(m, desk, crm)
	out := make([]store.Mapping, len(std))
	for i, mp := range std {
		out[i] = store.Mapping{OrgID: v.OrgID, ConnectionID: id, Module: string(m), DeskField: mp.DeskField,
			CRMField: mp.CRMField, ValueMap: json.RawMessage(`{}`), Standard: true, Position: i}
	}
	return out, nil
}

// SaveMappings checks a module's whole mapping set against both systems'
// metadata for the directions the group's current sync type uses, and
// replaces the saved set with it, or refuses it with a
// MappingProblemsError listing every problem. Pairs that deskbridge
// pre-maps are stored as standard.
func (s *ConnectionService) SaveMappings(ctx context.Context, v auth.Viewer, id int64, m mapping.Module, maps []mapping.Mapping) ([]store.Mapping, error) {
	c, err := s.adminConnection(ctx, s.db, v, id, "saving field mappings")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(mapping.Modules, m) {
		return nil, &ConnectionInputError{Field: "module", Reason: "unknown module"}
	}
	settings, err := store.CurrentSettings(ctx, s.db, v.OrgID, id, GroupOf(m), time.Now())
	if errors.Is(err, store.ErrNotFound) {
		settings, err = defaultConnectionSettings(v, id, GroupOf(m)), nil
	}
	if err != nil {
		return nil, err
	}
	desk, crm, err := s.moduleFields(ctx, c, m)
	if err != nil {
		return nil, err
	}
	if problems := mapping.Validate(m, maps, desk, crm, Directions(settings.SyncType)); len(problems) > 0 {
		return nil, &MappingProblemsError{Module: m, Problems: problems}
	}
	standard := map[[2]string]bool{}
	for _, mp := range mapping.Standard(m, desk, crm) {
		standard[[2]string{mp.DeskField, mp.CRMField}] = true
	}
	rows := make([]store.Mapping, len(maps))
	for i, mp := range maps {
		vm := json.RawMessage(`{}`)
		if len(mp.ValueMap) > 0 {
			if vm, err = json.Marshal(mp.ValueMap); err != nil {
				return nil, fmt.Errorf("encoding a value map: %w", err)
			}
		}
		rows[i] = store.Mapping{DeskField: mp.DeskField, CRMField: mp.CRMField, ValueMap: vm,
			Standard: standard[[2]string{mp.DeskField, mp.CRMField}], Position: i}
	}
	var out []store.Mapping
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		out, err = store.ReplaceMappings(ctx, tx, v.OrgID, id, string(m), rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("saving field mappings: %w", err)
	}
	s.log.InfoContext(ctx, "field mappings saved", "org_id", v.OrgID, "connection_id", id, "module", m, "count", len(out))
	return out, nil
}

// History returns the connection's sync counters from the hour containing
// since on.
func (s *ConnectionService) History(ctx context.Context, v auth.Viewer, id int64, since time.Time) ([]store.HistoryBucket, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "reading sync history"); err != nil {
		return nil, err
	}
	return store.History(ctx, s.db, v.OrgID, id, since)
}

// Failures lists the connection's open failures in time order (module ""
// = all), up to first after the failure afterID.
func (s *ConnectionService) Failures(ctx context.Context, v auth.Viewer, id int64, module string, first int, afterID int64) ([]store.Failure, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "listing sync failures"); err != nil {
		return nil, err
	}
	return store.ListFailures(ctx, s.db, store.FailureFilter{OrgID: v.OrgID, ConnectionID: id, Module: module}, first, afterID)
}

// Conflicts lists the connection's conflicts, newest first.
func (s *ConnectionService) Conflicts(ctx context.Context, v auth.Viewer, id int64, first int, afterID int64) ([]store.Conflict, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "listing sync conflicts"); err != nil {
		return nil, err
	}
	return store.ListConflicts(ctx, s.db, v.OrgID, id, first, afterID)
}

// QueueDepths returns the connection's waiting changes per side and module.
func (s *ConnectionService) QueueDepths(ctx context.Context, v auth.Viewer, id int64) ([]store.QueueDepth, error) {
	if _, err := s.adminConnection(ctx, s.db, v, id, "reading queue depth"); err != nil {
		return nil, err
	}
	return store.QueueDepths(ctx, s.db, v.OrgID, id)
}

// RetryFailures marks open failures retried and queues their source
// records again (origin RETRY), in one transaction; ids nil means every
// open failure of the connection. It returns how many were queued.
func (s *ConnectionService) RetryFailures(ctx context.Context, v auth.Viewer, id int64, ids []int64) (int, error) {
	var n int
	err := store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := s.adminConnection(ctx, tx, v, id, "retrying sync failures"); err != nil {
			return err
		}
		fs, err := store.FailuresForRetry(ctx, tx, v.OrgID, id, ids)
		if err != nil {
			return err
		}
		items := make([]store.NewQueueItem, len(fs))
		for i, f := range fs {
			items[i] = store.NewQueueItem{System: f.SourceSystem, Module: f.Module, ExtID: f.SourceID,
				Kind: store.KindUpsert, Origin: store.OriginRetry}
		}
		n = len(fs)
		return store.Enqueue(ctx, tx, v.OrgID, id, items)
	})
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "sync failures retried", "org_id", v.OrgID, "connection_id", id, "count", n)
	return n, nil
}
