package auth_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

func newOrg(t *testing.T, db *sqlx.DB, slug string) store.Org {
	t.Helper()
	org, _, err := store.EnsureOrg(context.Background(), db, slug, slug)
	if err != nil {
		t.Fatal(err)
	}
	return org
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org := newOrg(t, db, "acme")
	now := time.Now()
	a := &auth.Authenticator{DB: db, Now: func() time.Time { return now }}

	valid, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "alice", Name: "sidebar", Role: auth.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	soon := now.Add(time.Minute)
	expiring, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "alice", Name: "short", Role: auth.RoleAdmin, ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "bob", Name: "old", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.RevokeToken(ctx, db, org.ID, revoked.Token.ID, 0); err != nil {
		t.Fatal(err)
	}

	v, err := a.Authenticate(ctx, valid.Secret)
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if v.OrgID != org.ID || v.UserID != valid.User.ID || v.TokenID != valid.Token.ID || v.Role != auth.RoleAgent {
		t.Fatalf("viewer = %+v", v)
	}
	used, err := store.APITokenByID(ctx, db, org.ID, valid.Token.ID)
	if err != nil || used.LastUsedAt == nil {
		t.Fatalf("last_used_at not recorded: %+v, %v", used, err)
	}
	if _, err := a.Authenticate(ctx, expiring.Secret); err != nil {
		t.Fatalf("token before expiry: %v", err)
	}
	now = now.Add(2 * time.Minute)
	cases := map[string]string{
		"":                               "no bearer token",
		"nonsense":                       "malformed",
		"dbk_" + strings.Repeat("A", 43): "unknown",
		expiring.Secret:                  "expired",
		revoked.Secret:                   "revoked",
		strings.Repeat("dbk_", 100):      "malformed",
	}
	for secret, want := range cases {
		_, err := a.Authenticate(ctx, secret)
		if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), want) {
			t.Errorf("Authenticate(%.12q) = %v, want ErrUnauthenticated saying %q", secret, err, want)
		}
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

func TestSecretsAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org := newOrg(t, db, "acme")
	issued, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "alice", Name: "x", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(issued.Secret, "dbk_") || len(issued.Secret) < 40 {
		t.Fatalf("secret %q does not look like a deskbridge secret", issued.Secret)
	}
	var found int
	err = db.Get(&found, `SELECT count(*) FROM api_tokens t, events e
		WHERE t.secret_hash = $1 OR position($2 in e.payload::text) > 0 OR position($2 in t.prefix) > 0`,
		[]byte(issued.Secret), issued.Secret)
	if err != nil || found != 0 {
		t.Fatalf("secret found in clear in the database (%d rows, %v)", found, err)
	}
}

func TestIssueAndRevokeWriteOneEventEach(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	org := newOrg(t, db, "acme")
	issued, err := auth.IssueToken(ctx, db, auth.IssueRequest{OrgID: org.ID, UserName: "alice", Name: "x", Role: auth.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // revoking again changes nothing and emits nothing
		if _, err := auth.RevokeToken(ctx, db, org.ID, issued.Token.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	events, err := store.EventsAfter(ctx, db, store.EventFilter{OrgID: org.ID, Permissions: []string{string(auth.PermManageTokens)}}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Type != auth.EventTokenCreated || events[1].Type != auth.EventTokenRevoked {
		t.Fatalf("events = %+v, want TOKEN_CREATED then TOKEN_REVOKED", events)
	}
	if *events[1].SubjectID != "ApiToken:"+itoa(issued.Token.ID) {
		t.Fatalf("subject = %s", *events[1].SubjectID)
	}
	// Agents are not shown token events.
	agent := auth.Viewer{Role: auth.RoleAgent}
	if agent.Can(auth.PermManageTokens) {
		t.Fatal("agent may manage tokens")
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "abc": "abc", "": ""} {
		if got := auth.BearerToken(in); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequire(t *testing.T) {
	if _, err := auth.Require(context.Background(), auth.PermReadOrg); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("no viewer: %v", err)
	}
	ctx := auth.WithViewer(context.Background(), auth.Viewer{Role: auth.RoleLightAgent})
	if _, err := auth.Require(ctx, auth.PermManageTokens); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("light agent managing tokens: %v", err)
	}
	if _, err := auth.Require(ctx, auth.PermReadOrg); err != nil {
		t.Fatalf("light agent reading the org: %v", err)
	}
	failed := auth.WithFailure(context.Background(), errors.Join(errors.New("bearer token revoked"), auth.ErrUnauthenticated))
	if _, err := auth.FromContext(failed); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("failed auth: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
