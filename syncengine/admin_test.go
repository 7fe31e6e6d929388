package syncengine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

func TestSyncTypeDirections(t *testing.T) {
	if d := syncengine.Directions(syncengine.SyncTwoWay); !slices.Equal(d, []mapping.Direction{mapping.CRMToDesk, mapping.DeskToCRM}) {
		t.Fatalf("TWO_WAY = %v", d)
	}
	if d := syncengine.Directions(syncengine.SyncOneWay); !slices.Equal(d, []mapping.Direction{mapping.CRMToDesk}) {
		t.Fatalf("ONE_WAY = %v", d)
	}
	if d := syncengine.Directions(syncengine.SyncNone); len(d) != 0 {
		t.Fatalf("NONE = %v", d)
	}
	if syncengine.GroupOf(mapping.Products) != store.GroupProducts || syncengine.GroupOf(mapping.Accounts) != store.GroupContactsAccounts {
		t.Fatal("GroupOf")
	}
	err := &syncengine.MappingProblemsError{Module: mapping.Contacts, Problems: []mapping.Problem{{Message: "a"}, {Message: "b"}}}
	if !strings.Contains(err.Error(), "a; b") {
		t.Fatalf("message = %s", err)
	}
}

// adminWorld is a ConnectionService on a fresh database with one stored
// connection per CRM system, each in its own org (no vendor is called).
func adminWorld(t *testing.T) (*sqlx.DB, *syncengine.ConnectionService, map[connector.System]store.Connection, map[connector.System]auth.Viewer) {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	svc := syncengine.NewConnectionService(syncengine.ConnectionServiceConfig{DB: db})
	conns, viewers := map[connector.System]store.Connection{}, map[connector.System]auth.Viewer{}
	for i, sys := range []connector.System{connector.CRM, connector.Bigin} {
		org, _, err := store.EnsureOrg(ctx, db, []string{"crmorg", "biginorg"}[i], "Org")
		if err != nil {
			t.Fatal(err)
		}
		user, err := store.EnsureUser(ctx, db, org.ID, "admin", nil)
		if err != nil {
			t.Fatal(err)
		}
		crmOrg := "crm-org-" + string(sys)
		c, err := store.InsertConnection(ctx, db, store.NewConnection{OrgID: org.ID, CRMSystem: string(sys),
			Status: store.ConnectionActive, AuthMethod: syncengine.ConnectionAuthOAuth, CRMDC: "us", CRMOrgID: &crmOrg,
			DeskDC: "us", DeskOrgID: "desk-" + string(sys), WebhookToken: "token-" + string(sys) + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		v := auth.Viewer{OrgID: org.ID, UserID: user.ID, TokenID: 1, Role: auth.RoleAdmin}
		for _, g := range syncengine.Groups {
			if _, err := store.InsertSettings(ctx, db, store.Settings{OrgID: org.ID, ConnectionID: c.ID, ModuleGroup: g,
				SyncType: syncengine.SyncTwoWay, MatchEmail: "PRIMARY", CRMDeletePolicy: "NEVER", DeskDeletePolicy: "NEVER",
				FirstSyncWindowDays: 365}); err != nil {
				t.Fatal(err)
			}
		}
		conns[sys], viewers[sys] = c, v
	}
	return db, svc, conns, viewers
}

func TestSyncAdminSettingsStatusAndRetry(t *testing.T) {
	ctx := context.Background()
	db, svc, conns, viewers := adminWorld(t)
	crm, crmAdmin := conns[connector.CRM], viewers[connector.CRM]
	bigin, biginAdmin := conns[connector.Bigin], viewers[connector.Bigin]
	none := syncengine.SyncNone

	// NONE only for Bigin.
	_, err := svc.UpdateSettings(ctx, crmAdmin, crm.ID, syncengine.SettingsChange{Group: store.GroupProducts, SyncType: &none})
	var ie *syncengine.ConnectionInputError
	if !errors.As(err, &ie) || ie.Field != "syncType" {
		t.Fatalf("NONE on Zoho CRM: %v", err)
	}
	s, err := svc.UpdateSettings(ctx, biginAdmin, bigin.ID, syncengine.SettingsChange{Group: store.GroupProducts, SyncType: &none})
	if err != nil || s.SyncType != syncengine.SyncNone || s.MatchEmail != "PRIMARY" {
		t.Fatalf("NONE on Bigin: %+v, %v", s, err)
	}
	view := "v1"
	if _, err := svc.UpdateSettings(ctx, biginAdmin, bigin.ID, syncengine.SettingsChange{Group: store.GroupProducts, CRMViewID: &view}); !errors.As(err, &ie) || ie.Field != "crmViewId" {
		t.Fatalf("a view on products: %v", err)
	}
	all, err := svc.Settings(ctx, biginAdmin, bigin.ID)
	if err != nil || len(all) != 2 || all[1].SyncType != syncengine.SyncNone || all[0].SyncType != syncengine.SyncTwoWay {
		t.Fatalf("settings = %+v, %v", all, err)
	}

	// Another org's connection does not exist; an agent may not ask.
	if _, err := svc.Settings(ctx, crmAdmin, bigin.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other org: %v", err)
	}
	agent := crmAdmin
	agent.Role = auth.RoleAgent
	if _, err := svc.QueueDepths(ctx, agent, crm.ID); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("agent: %v", err)
	}
	if _, err := svc.SetStatus(ctx, agent, crm.ID, syncengine.ConnectionPause); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("agent pause: %v", err)
	}

	// Pause and resume, each from the right status only.
	c, err := svc.SetStatus(ctx, crmAdmin, crm.ID, syncengine.ConnectionPause)
	if err != nil || c.Status != store.ConnectionPaused {
		t.Fatalf("pause: %+v, %v", c, err)
	}
	var ce *syncengine.ConnectionConflictError
	if _, err := svc.SetStatus(ctx, crmAdmin, crm.ID, syncengine.ConnectionPause); !errors.As(err, &ce) || !strings.Contains(ce.PublicMessage(), "PAUSED") {
		t.Fatalf("pause twice: %v", err)
	}
	if c, err = svc.SetStatus(ctx, crmAdmin, crm.ID, syncengine.ConnectionResume); err != nil || c.Status != store.ConnectionActive {
		t.Fatalf("resume: %+v, %v", c, err)
	}

	// Retry re-enqueues the failed records and marks them retried.
	for _, id := range []string{"r1", "r2"} {
		if _, err := store.RecordFailure(ctx, db, store.NewFailure{OrgID: crmAdmin.OrgID, ConnectionID: crm.ID,
			Module: "contacts", Direction: store.DirectionCRMToDesk, SourceSystem: string(connector.CRM), SourceID: id,
			Reason: "param_invalid", Message: "bad"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := svc.RetryFailures(ctx, biginAdmin, crm.ID, nil); !errors.Is(err, store.ErrNotFound) || n != 0 {
		t.Fatalf("retry from another org: %d, %v", n, err)
	}
	n, err := svc.RetryFailures(ctx, crmAdmin, crm.ID, nil)
	if err != nil || n != 2 {
		t.Fatalf("retry all: %d, %v", n, err)
	}
	depths, err := svc.QueueDepths(ctx, crmAdmin, crm.ID)
	if err != nil || len(depths) != 1 || depths[0].Total != 2 || depths[0].System != string(connector.CRM) {
		t.Fatalf("queue after retry: %+v, %v", depths, err)
	}
	fs, err := svc.Failures(ctx, crmAdmin, crm.ID, "", 10, 0)
	if err != nil || len(fs) != 2 || fs[0].RetriedAt == nil {
		t.Fatalf("failures after retry: %+v, %v", fs, err)
	}
}
