package syncengine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

func TestConnectionCredentialsNeverPrint(t *testing.T) {
	t.Parallel()
	req := syncengine.ConnectionRequest{
		CRMSystem: connector.CRM, CRMDC: "us", CRMOrgID: "1",
		CRMCredentials: syncengine.ConnectionCredentials{RefreshToken: "1000.crm-secret"},
		DeskDC:         "us", DeskOrgID: "2",
		DeskCredentials: syncengine.ConnectionCredentials{AuthorizationCode: "1000.desk-code", RedirectURI: "https://app/cb"},
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("req", "req", req, "crm", req.CRMCredentials, "nested", struct{ R syncengine.ConnectionRequest }{req})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("req", "req", req, "crm", req.CRMCredentials, "nested", struct{ R syncengine.ConnectionRequest }{req})
	raw, _ := json.Marshal(req)
	buf.Write(raw)
	buf.WriteString(fmt.Sprintf("%v %+v %#v %s", req, req, req, req.DeskCredentials))
	if s := buf.String(); strings.Contains(s, "crm-secret") || strings.Contains(s, "desk-code") {
		t.Fatalf("credentials printed: %s", s)
	}
}

// connServiceWorld is a ConnectionService on a fresh database, talking to
// a running sandbox.
type connServiceWorld struct {
	sb    *sandbox.Sandbox
	db    *sqlx.DB
	svc   *syncengine.ConnectionService
	box   *crypt.Box
	admin auth.Viewer
	creds sandbox.Credentials
}

func startConnServiceWorld(t *testing.T) *connServiceWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 7, DCs: []string{"us"}})
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	db := storetest.New(t)
	org, _, err := store.EnsureOrg(ctx, db, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	user, err := store.EnsureUser(ctx, db, org.ID, "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	box, _ := crypt.New(bytes.Repeat([]byte{3}, 32))
	ep := sb.Endpoints()["us"]
	cr := sb.Credentials()
	svc := syncengine.NewConnectionService(syncengine.ConnectionServiceConfig{
		DB: db, Box: box, Vendor: zoho.NewVendor(zoho.VendorConfig{ClientID: cr.ClientID, ClientSecret: cr.ClientSecret,
			Endpoints: map[string]zoho.DataCenter{"us": {Name: "us", Accounts: ep.AccountsURL, API: ep.APIDomain, Desk: ep.DeskURL, SalesIQ: ep.SalesIQURL}}}),
	})
	return &connServiceWorld{sb: sb, db: db, svc: svc, box: box, creds: cr,
		admin: auth.Viewer{OrgID: org.ID, UserID: user.ID, TokenID: 1, Role: auth.RoleAdmin}}
}

func (w *connServiceWorld) code(product string) string {
	return w.sb.Registry().AddAuthCode(oauth.Grant{ClientID: w.creds.ClientID, UserEmail: w.creds.UserEmail,
		Scopes: w.creds.Scopes[product], DC: "us"})
}

// An authorization code is exchanged once, and the refresh token it yields
// is what gets sealed and stored.
func TestConnectionServiceConnectsWithAuthorizationCodes(t *testing.T) {
	t.Parallel()
	w := startConnServiceWorld(t)
	ctx := context.Background()
	orgs, err := w.svc.ReachableCRMOrgs(ctx, connector.CRM, "us", syncengine.ConnectionCredentials{AuthorizationCode: w.code("crm"), RedirectURI: "https://app.example.com/cb"})
	if err != nil || len(orgs) == 0 {
		t.Fatalf("ReachableCRMOrgs with a code: %v, %v", orgs, err)
	}
	crmCode, deskCode := w.code("crm"), w.code("desk")
	req := syncengine.ConnectionRequest{
		CRMSystem: connector.CRM, CRMDC: "us", CRMOrgID: orgs[0].ID,
		CRMCredentials: syncengine.ConnectionCredentials{AuthorizationCode: crmCode, RedirectURI: "https://app.example.com/cb"},
		DeskDC:         "us", DeskOrgID: w.sb.Endpoints()["us"].DeskOrgID,
		DeskCredentials: syncengine.ConnectionCredentials{AuthorizationCode: deskCode, RedirectURI: "https://app.example.com/cb"},
	}

	agent := w.admin
	agent.Role = auth.RoleAgent
	if _, err := w.svc.Connect(ctx, agent, req); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("agent Connect: %v, want ErrForbidden", err)
	}
	c, err := w.svc.Connect(ctx, w.admin, req)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if c.Status != store.ConnectionActive || c.AuthMethod != syncengine.ConnectionAuthOAuth || c.CRMSystem != string(connector.CRM) {
		t.Fatalf("connection %+v", c)
	}
	sealed, err := store.GetSecret(ctx, w.db, w.admin.OrgID, c.ID, store.SecretCRMRefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	token, err := w.box.Open(sealed, syncengine.ConnectionSecretAD(c.ID, store.SecretCRMRefreshToken))
	if err != nil || len(token) == 0 || string(token) == crmCode {
		t.Fatalf("stored crm secret: %v", err)
	}
	// The stored refresh token works.
	if orgs, err := w.svc.ReachableCRMOrgs(ctx, connector.CRM, "us", syncengine.ConnectionCredentials{RefreshToken: string(token)}); err != nil || len(orgs) == 0 {
		t.Fatalf("stored token does not work: %v", err)
	}
	// A spent code is refused as bad input on the CRM credentials.
	_, err = w.svc.ReachableCRMOrgs(ctx, connector.CRM, "us", syncengine.ConnectionCredentials{AuthorizationCode: crmCode, RedirectURI: "https://app.example.com/cb"})
	var ie *syncengine.ConnectionInputError
	if !errors.As(err, &ie) || ie.Field != "crmCredentials" {
		t.Fatalf("spent code: %v", err)
	}
	// A second connection in the org conflicts, with a message for the API.
	req.CRMCredentials = syncengine.ConnectionCredentials{RefreshToken: string(token)}
	req.DeskCredentials = syncengine.ConnectionCredentials{RefreshToken: w.creds.RefreshTokens["us"]["desk"]}
	_, err = w.svc.Connect(ctx, w.admin, req)
	var ce *syncengine.ConnectionConflictError
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.PublicMessage() == "" {
		t.Fatalf("second connection: %v", err)
	}
	// Wrong data center: the token is refused there.
	if _, err := w.svc.ReachableCRMOrgs(ctx, connector.CRM, "mars", syncengine.ConnectionCredentials{RefreshToken: string(token)}); !errors.As(err, &ie) || ie.Field != "crmDataCenter" {
		t.Fatalf("unknown dc: %v", err)
	}
}
