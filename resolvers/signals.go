package resolvers

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
)

// maxSignalChannels bounds the channels one signal switch lists.
const maxSignalChannels = 20

func signalModel(s store.Signal) *model.Signal {
	return &model.Signal{ID: globalID("Signal", s.ID), Kind: model.SignalKind(s.Kind), Title: s.Title, TicketDeskID: s.TicketRef,
		Channel: s.Channel, OccurredAt: s.CreatedAt, Read: s.ReadAt != nil}
}

// signalSettingsModel lists every kind: the user's switch where set, on
// for every channel where not.
func signalSettingsModel(scope string, set []store.SignalSetting) *model.SignalSettings {
	byKind := map[string]store.SignalSetting{}
	for _, s := range set {
		byKind[s.Kind] = s
	}
	out := &model.SignalSettings{Scope: model.SignalScope(scope)}
	for _, k := range syncengine.SignalKinds {
		s, ok := byKind[k]
		if !ok {
			s = store.SignalSetting{Kind: k, Enabled: true}
		}
		channels := []string(s.Channels)
		if channels == nil {
			channels = []string{}
		}
		out.Kinds = append(out.Kinds, &model.SignalSetting{Kind: model.SignalKind(k), Enabled: s.Enabled, Channels: channels})
	}
	return out
}

// signalEventModel converts a SIGNAL event of the stream.
func signalEventModel(e store.Event) *model.SignalEvent {
	var p struct {
		SignalID int64 `json:"signalId"`
	}
	_ = json.Unmarshal(e.Payload, &p)
	return &model.SignalEvent{ID: strconv.FormatInt(e.ID, 10), SignalID: p.SignalID}
}

// signalOfViewer reads one of the caller's signals.
func (r *Resolver) signalOfViewer(ctx context.Context, id int64) (*model.Signal, error) {
	v, err := auth.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	s, err := store.SignalByID(ctx, r.DB, v.OrgID, v.UserID, id)
	if err != nil {
		return nil, err
	}
	return signalModel(s), nil
}
