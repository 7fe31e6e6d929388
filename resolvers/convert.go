package resolvers

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
)

func orgModel(o store.Org) *model.Org {
	return &model.Org{ID: globalID("Org", o.ID), Slug: o.Slug, Name: o.Name, CreatedAt: o.CreatedAt}
}

func userModel(u store.User) *model.User {
	return &model.User{ID: globalID("User", u.ID), Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt}
}

func tokenModel(t store.APIToken) *model.APIToken {
	return &model.APIToken{
		ID: globalID("ApiToken", t.ID), Name: t.Name, Role: roleModel(auth.Role(t.Role)),
		Prefix: t.Prefix, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, UserID: t.UserID,
	}
}

func roleModel(r auth.Role) model.Role { return model.Role(strings.ToUpper(string(r))) }

func roleFromModel(r model.Role) auth.Role { return auth.Role(strings.ToLower(string(r))) }

func eventModel(e store.Event) *model.Event {
	var payload any
	if err := json.Unmarshal(e.Payload, &payload); err != nil {
		payload = map[string]any{}
	}
	return &model.Event{
		ID: strconv.FormatInt(e.ID, 10), Type: model.EventType(e.Type), OccurredAt: e.OccurredAt,
		SubjectID: subjectGlobalID(e.SubjectID), Payload: payload,
	}
}

// viewerEvents is the stream filter of what the viewer may see: its
// org's events its role permits, and of the events for one user (signals)
// only its own.
func viewerEvents(v auth.Viewer) store.EventFilter {
	return store.EventFilter{OrgID: v.OrgID, Permissions: v.Permissions(), Refs: store.EventRefs{User: v.UserID}}
}

func eventTypes(types []model.EventType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = string(t)
	}
	return out
}

// mapAll converts every row of a list for the API.
func mapAll[T, U any](rows []T, convert func(T) U) []U {
	out := make([]U, len(rows))
	for i, r := range rows {
		out[i] = convert(r)
	}
	return out
}
