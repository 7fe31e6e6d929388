package zoho

import (
	"context"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// A desk connector on a service key (SPEC A3) works without any OAuth
// client or refresh token, and only together with the key's admin email.
func TestDeskWorksOnAServiceKey(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, sandbox.Config{People: 20, Accounts: 4, Products: 2})
	cr := sb.Credentials()
	ctx := context.Background()
	open := func(email string) *Desk {
		s := settingsFor(sb, connector.Desk, nil)
		s.ClientID, s.ClientSecret, s.RefreshToken = "", "", ""
		s.ServiceKey, s.ServiceKeyEmail = cr.ServiceKeys["us"], email
		d, err := NewDesk(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	orgs, err := open(cr.UserEmail).Orgs(ctx)
	if err != nil || len(orgs) == 0 {
		t.Fatalf("Orgs on the service key = %v, %v", orgs, err)
	}
	if !orgs[0].Admin || orgs[0].TimeZone == "" {
		t.Fatalf("the key's admin is not told admin of its portal, or no time zone: %+v", orgs[0])
	}
	page, err := open(cr.UserEmail).ListChanged(ctx, "contacts", startCursor("contacts", time.Time{}), 10)
	if err != nil || len(page.Records) == 0 {
		t.Fatalf("listing contacts on the service key = %d, %v", len(page.Records), err)
	}
	if _, err := open("someone.else@example.com").Orgs(ctx); connector.ClassOf(err) != connector.Auth {
		t.Fatalf("a key with another email: err = %v (class %v), want an auth error", err, connector.ClassOf(err))
	}
	s := settingsFor(sb, connector.CRM, nil)
	s.ServiceKey, s.ServiceKeyEmail = cr.ServiceKeys["us"], cr.UserEmail
	if _, err := NewCRM(s); err == nil {
		t.Fatal("a CRM connector accepted a desk service key")
	}
}
