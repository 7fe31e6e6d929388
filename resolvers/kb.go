package resolvers

import (
	"fmt"
	"strings"

	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

// Bounds of the KB sync's lists.
const (
	kbRunsDefault     = 20
	kbRunsMax         = 100
	kbFailuresDefault = 50
	kbFailuresMax     = 200
)

// kbChangeOf converts updateKbSync's input.
func kbChangeOf(in model.UpdateKbSyncInput) (syncengine.KBChange, error) {
	ch := syncengine.KBChange{TimeZone: in.TimeZone, Enabled: in.Enabled}
	if in.SalesIq != nil {
		ch.SalesIQ = &syncengine.KBPortal{DC: dataCenterOf(in.SalesIq.DataCenter), Screen: in.SalesIq.ScreenName,
			Credentials: credentialsOf(in.SalesIq.Credentials)}
	}
	if in.Departments != nil {
		deps := make([]syncengine.KBDepartment, len(in.Departments))
		for i, d := range in.Departments {
			if strings.TrimSpace(d.ChatDepartmentID) == "" {
				return ch, badInput(fmt.Sprintf("input.departments[%d].chatDepartmentId", i), "must not be empty")
			}
			deps[i] = syncengine.KBDepartment{ChatDepartmentID: d.ChatDepartmentID, DeskCategoryIDs: d.DeskCategoryIds}
		}
		ch.Departments = &deps
	}
	if in.Permission != nil {
		ch.Permission = new(string(*in.Permission))
	}
	if in.ArticleStatus != nil {
		ch.ArticleStatus = new(string(*in.ArticleStatus))
	}
	if in.Interval != nil {
		ch.Interval = new(string(*in.Interval))
	}
	return ch, nil
}

func kbSettingsModel(connID int64, v syncengine.KBView) *model.KbSyncSettings {
	k := v.Settings
	deps := make([]*model.KbDepartmentCategories, len(v.Departments))
	for i, d := range v.Departments {
		deps[i] = &model.KbDepartmentCategories{ChatDepartmentID: d.ChatDepartmentID, DeskCategoryIds: d.DeskCategoryIDs}
	}
	out := &model.KbSyncSettings{
		ConnectionID: globalID("Connection", connID), Enabled: k.Enabled,
		SalesIq: &model.KbChatPortal{DataCenter: model.DataCenter(strings.ToUpper(k.SalesIQDC)), ScreenName: k.SalesIQScreen,
			HasCredential: v.HasToken},
		Departments: deps, Permission: model.KbArticlePermission(k.Permission), ArticleStatus: model.KbArticleStatus(k.ArticleStatus),
		Interval: model.KbSyncInterval(k.Interval), TimeZone: k.TimeZone, RunHour: syncengine.KBRunHour,
		FirstSyncAt: k.FirstSyncAt, NextRunAt: k.NextRunAt, UpdatedAt: k.UpdatedAt,
	}
	if v.LastRun != nil {
		out.LastRun = kbRunModel(*v.LastRun)
	}
	return out
}

func kbRunModel(r store.KBRun) *model.KbSyncRun {
	return &model.KbSyncRun{ID: globalID("KbSyncRun", r.ID), Trigger: model.KbSyncTrigger(r.Trigger),
		Status: model.KbSyncRunStatus(r.Status), ScheduledFor: r.ScheduledFor, CreatedAt: r.CreatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Listed: int(r.Listed), Added: int(r.Added),
		Updated: int(r.Updated), Deleted: int(r.Deleted), Unchanged: int(r.Unchanged), Failed: int(r.Failed), Error: r.Error}
}

func kbFailureModel(f store.KBFailure) *model.KbSyncFailure {
	return &model.KbSyncFailure{ID: globalID("KbSyncFailure", f.ID), OccurredAt: f.OccurredAt, DeskArticleID: f.DeskArticleID,
		Title: f.Title, ChatArticleID: f.SalesIQArticleID, Operation: model.KbSyncOperation(f.Operation), Reason: f.Reason,
		Message: f.Message, VendorCode: f.VendorCode, Attempts: f.Attempts, RetriedAt: f.RetriedAt, ResolvedAt: f.ResolvedAt}
}
