package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Bounds of the sync admin's lists.
const (
	syncPageDefault = 50
	syncPageMax     = 200
	maxMappings     = 500
	historyDefault  = 7 * 24 * time.Hour
)

// syncConnection checks the caller may administer sync and returns the row
// id of the connection obj (a parent already loaded within the org).
func syncConnection(ctx context.Context, obj *model.Connection) (auth.Viewer, int64, error) {
	v, err := auth.Require(ctx, auth.PermManageConnections)
	if err != nil {
		return auth.Viewer{}, 0, err
	}
	_, id, ok := parseGlobalID(obj.ID)
	if !ok {
		return auth.Viewer{}, 0, fmt.Errorf("connection %q: %w", obj.ID, store.ErrNotFound)
	}
	return v, id, nil
}

// syncMutation checks the permission and parses a connectionId argument.
func syncMutation(ctx context.Context, connectionID string) (auth.Viewer, int64, error) {
	v, err := auth.Require(ctx, auth.PermManageConnections)
	if err != nil {
		return auth.Viewer{}, 0, err
	}
	id, err := rowIDOf("connectionId", "Connection", connectionID)
	if err != nil {
		return auth.Viewer{}, 0, err
	}
	return v, id, nil
}

// syncModuleOf maps the GraphQL enum to the engine's module ("contacts").
func syncModuleOf(m model.SyncModule) mapping.Module {
	return mapping.Module(strings.ToLower(string(m)))
}

// syncModuleModel maps the engine's module to the enum.
func syncModuleModel(m string) model.SyncModule { return model.SyncModule(strings.ToUpper(m)) }

// syncSideModel maps a system ("desk", "crm", "bigin") or side ("DESK",
// "CRM") to the enum: Bigin is the CRM side.
func syncSideModel(s string) model.SyncSide {
	if s == string(connector.Desk) || s == store.SideDesk {
		return model.SyncSideDesk
	}
	return model.SyncSideCrm
}

func settingsModel(s store.Settings) *model.SyncSettings {
	return &model.SyncSettings{
		ModuleGroup: model.ModuleGroup(s.ModuleGroup), SyncType: model.SyncType(s.SyncType),
		MatchEmail: model.MatchEmail(s.MatchEmail), CrmViewID: s.CRMViewID, DeskDepartmentID: s.DeskDepartmentID,
		CrmDeletePolicy: model.CrmDeletePolicy(s.CRMDeletePolicy), DeskDeletePolicy: model.DeskDeletePolicy(s.DeskDeletePolicy),
		FirstSyncWindowDays: s.FirstSyncWindowDays, EffectiveFrom: s.EffectiveFrom,
	}
}

func mappingModels(ms []store.Mapping) ([]*model.FieldMapping, error) {
	out := make([]*model.FieldMapping, len(ms))
	for i, m := range ms {
		var vm any = map[string]any{}
		if len(m.ValueMap) > 0 {
			if err := json.Unmarshal(m.ValueMap, &vm); err != nil {
				return nil, fmt.Errorf("decoding the value map of %s/%s: %w", m.DeskField, m.CRMField, err)
			}
		}
		out[i] = &model.FieldMapping{DeskField: m.DeskField, CrmField: m.CRMField, ValueMap: vm, Standard: m.Standard}
	}
	return out, nil
}

func syncFieldModels(fs []connector.Field) []*model.SyncField {
	out := make([]*model.SyncField, len(fs))
	for i, f := range fs {
		pick := f.Picklist
		if pick == nil {
			pick = []string{}
		}
		out[i] = &model.SyncField{Name: f.Name, Label: f.Label, Type: string(f.Type), Mandatory: f.Mandatory,
			Custom: f.Custom, ReadOnly: f.ReadOnly, PicklistValues: pick}
	}
	return out
}

func failureModel(f store.Failure) *model.SyncFailure {
	out := &model.SyncFailure{
		ID: globalID("SyncFailure", f.ID), OccurredAt: f.OccurredAt, Module: syncModuleModel(f.Module),
		Direction: model.SyncDirection(f.Direction), Source: syncSideModel(f.SourceSystem), SourceID: f.SourceID,
		TargetID: f.TargetID, Reason: f.Reason, Fields: []string(f.Fields), Message: f.Message,
		VendorCode: f.VendorCode, Attempts: f.Attempts, RetriedAt: f.RetriedAt,
	}
	if out.Fields == nil {
		out.Fields = []string{}
	}
	if f.RawError != nil {
		raw := strings.ToValidUTF8(string(f.RawError), "\uFFFD")
		out.RawError = &raw
	}
	return out
}

func conflictModel(c store.Conflict) (*model.SyncConflict, error) {
	out := &model.SyncConflict{
		ID: globalID("SyncConflict", c.ID), Module: syncModuleModel(c.Module), DeskField: c.DeskField,
		CrmField: c.CRMField, DeskModifiedAt: c.DeskModifiedAt, CrmModifiedAt: c.CRMModifiedAt,
		Winner: syncSideModel(c.Winner), DecidedAt: c.DecidedAt,
	}
	for _, v := range []struct {
		raw json.RawMessage
		to  *any
	}{{c.DeskValue, &out.DeskValue}, {c.CRMValue, &out.CrmValue}} {
		if len(v.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(v.raw, v.to); err != nil {
			return nil, fmt.Errorf("decoding conflict %d: %w", c.ID, err)
		}
	}
	return out, nil
}

// mappingInputs checks and converts saveFieldMappings' argument.
func mappingInputs(in []*model.FieldMappingInput) ([]mapping.Mapping, error) {
	if len(in) > maxMappings {
		return nil, badInput("mappings", "at most %d mappings", maxMappings)
	}
	out := make([]mapping.Mapping, len(in))
	for i, m := range in {
		arg := fmt.Sprintf("mappings[%d]", i)
		desk, err := boundedText(arg+".deskField", m.DeskField, 200)
		if err != nil {
			return nil, err
		}
		crm, err := boundedText(arg+".crmField", m.CrmField, 200)
		if err != nil {
			return nil, err
		}
		out[i] = mapping.Mapping{DeskField: desk, CRMField: crm}
		if m.ValueMap == nil {
			continue
		}
		obj, ok := m.ValueMap.(map[string]any)
		if !ok {
			return nil, badInput(arg+".valueMap", "must be an object of strings")
		}
		out[i].ValueMap = make(map[string]string, len(obj))
		for k, v := range obj {
			s, ok := v.(string)
			if !ok {
				return nil, badInput(arg+".valueMap", "the value of %q must be a string", k)
			}
			out[i].ValueMap[k] = s
		}
	}
	return out, nil
}

// syncInput turns the service's refusals into GraphQL input errors: a
// ConnectionInputError on prefix+field, and a MappingProblemsError as
// BAD_USER_INPUT on `mappings` with every problem in extensions.problems.
func syncInput(err error, prefix string) error {
	var mp *syncengine.MappingProblemsError
	if errors.As(err, &mp) {
		ie := &InputError{Argument: "mappings", Reason: mp.Error()}
		problems := make([]any, len(mp.Problems))
		for i, p := range mp.Problems {
			problems[i] = map[string]any{"deskField": p.DeskField, "crmField": p.CRMField, "message": p.Message}
		}
		return &gqlerror.Error{Err: ie, Message: ie.Error(), Extensions: map[string]any{
			"code": "BAD_USER_INPUT", "argument": ie.Argument, "problems": problems}}
	}
	return connectionInput(err, prefix, nil)
}

// settingsChangeOf converts updateSyncSettings' input.
// settingsChangesOf are a new connection's initial settings.
func settingsChangesOf(in []*model.UpdateSyncSettingsInput) []syncengine.SettingsChange {
	out := make([]syncengine.SettingsChange, 0, len(in))
	for _, ch := range in {
		out = append(out, settingsChangeOf(*ch))
	}
	return out
}

func settingsChangeOf(in model.UpdateSyncSettingsInput) syncengine.SettingsChange {
	ch := syncengine.SettingsChange{Group: string(in.ModuleGroup), CRMViewID: in.CrmViewID,
		DeskDepartmentID: in.DeskDepartmentID, FirstSyncWindowDays: in.FirstSyncWindowDays}
	if in.SyncType != nil {
		ch.SyncType = new(string(*in.SyncType))
	}
	if in.MatchEmail != nil {
		ch.MatchEmail = new(string(*in.MatchEmail))
	}
	if in.CrmDeletePolicy != nil {
		ch.CRMDeletePolicy = new(string(*in.CrmDeletePolicy))
	}
	if in.DeskDeletePolicy != nil {
		ch.DeskDeletePolicy = new(string(*in.DeskDeletePolicy))
	}
	return ch
}

// idsOf parses sync failure ids; nil stays nil (all).
func idsOf(ids []string) ([]int64, error) { return rowIDsOf("SyncFailure", ids) }

// rowIDsOf parses the `ids` argument of a retry: global ids of typeName,
// at most 1000; nil stays nil (all).
func rowIDsOf(typeName string, ids []string) ([]int64, error) {
	if ids == nil {
		return nil, nil
	}
	if len(ids) > 1000 {
		return nil, badInput("ids", "at most 1000 ids")
	}
	out := make([]int64, len(ids))
	for i, id := range ids {
		n, err := rowIDOf(fmt.Sprintf("ids[%d]", i), typeName, id)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// setSyncStatus pauses or resumes a connection's sync.
func (r *Resolver) setSyncStatus(ctx context.Context, connectionID string, action syncengine.ConnectionAction) (*model.Connection, error) {
	v, id, err := syncMutation(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	c, err := r.ConnectionService.SetStatus(ctx, v, id, action)
	if err != nil {
		return nil, err
	}
	return connectionModel(c), nil
}

// runModels converts first-sync runs.
func runModels(rows []store.Run) []*model.SyncRun {
	out := make([]*model.SyncRun, len(rows))
	for i, r := range rows {
		out[i] = &model.SyncRun{ID: globalID("SyncRun", r.ID), Module: syncModuleModel(r.Module),
			Direction: model.SyncDirection(r.Direction), Status: model.SyncRunStatus(r.Status), Since: r.Since,
			Total: int(r.Total), Enqueued: int(r.Enqueued), Done: int(r.Done), Added: int(r.Added),
			Updated: int(r.Updated), Failed: int(r.Failed), StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
	}
	return out
}
