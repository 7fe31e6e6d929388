package zoho

import (
	"context"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// startSandbox runs the sandbox for one test.
func startSandbox(t testing.TB, cfg sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 7
	}
	if len(cfg.DCs) == 0 {
		cfg.DCs = []string{"us"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	return sb
}

// product is the refresh-token key of a system.
func product(sys connector.System) string {
	switch sys {
	case connector.Bigin:
		return "bigin"
	case connector.Desk:
		return "desk"
	case connector.SalesIQ:
		return "salesiq"
	}
	return "crm"
}

// settingsFor configures a connector against the sandbox's first DC.
func settingsFor(sb *sandbox.Sandbox, sys connector.System, sl *sleeps) Settings {
	dc := sb.DCs()[0]
	ep := sb.Endpoints()[dc]
	cr := sb.Credentials()
	s := Settings{
		System: sys, DC: dc,
		AccountsURL: ep.AccountsURL, APIDomain: ep.APIDomain, DeskURL: ep.DeskURL, SalesIQURL: ep.SalesIQURL,
		ClientID: cr.ClientID, ClientSecret: cr.ClientSecret, RefreshToken: cr.RefreshTokens[dc][product(sys)],
		DeskOrgID: ep.DeskOrgID, SalesIQScreen: ep.SalesIQScreenName,
		SourceID:       "6f1c1b8e-5a7d-4c1e-9d0b-2a3b4c5d6e7f",
		MaxConcurrency: 8, RequestTimeout: 10 * time.Second, MaxRetryTime: time.Minute, MaxAttempts: 8,
		Logger: testLogger(),
	}
	if sl != nil {
		s.Sleep = sl.sleep
	}
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reasonOf returns the class and reason of a per-record error.
func reasonOf(err error) (connector.Class, connector.Reason, string) {
	e := asError(err)
	if e == nil {
		return 0, "", ""
	}
	return e.Class, e.Reason, e.Field
}
