package sandbox_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
)

// TestZohoCRMSDKAgainstSandbox drives the CRM fake with a client nobody
// here wrote: Zoho's published Node SDK (@zohocrm/nodejs-sdk-8.0, pinned in
// test/js/zoho-sdk/package-lock.json). test/js/zoho-sdk/crm-sdk.test.mjs
// refreshes a token, lists, reads, creates (mixed batch), updates, upserts,
// searches, counts, deletes, reads the deleted feed, field metadata, users,
// org and the watch API through the SDK, and checks every raw answer
// against the SDK's own type spec. A failure there means the sandbox does
// not speak Zoho's wire format; the node output names the request.
func TestZohoCRMSDKAgainstSandbox(t *testing.T) {
	t.Parallel()
	if os.Getenv("DESKBRIDGE_SKIP_NODE") == "1" {
		t.Skip("DESKBRIDGE_SKIP_NODE=1")
	}
	dir, err := filepath.Abs(filepath.Join("..", "test", "js", "zoho-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	sdkPkg := filepath.Join(dir, "node_modules", "@zohocrm", "nodejs-sdk-8.0", "package.json")
	if _, err := os.Stat(sdkPkg); err != nil {
		t.Fatalf("Zoho's CRM SDK is not installed (%v): run `npm ci` in test/js/zoho-sdk (make js-deps does it)", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js 20+, or set DESKBRIDGE_SKIP_NODE=1 to skip", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 7, People: 40, Accounts: 6, Products: 4, DCs: []string{"us"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close sandbox: %v", err)
		}
	})
	ep := sb.Endpoints()["us"]
	creds := sb.Credentials()
	refresh := creds.RefreshTokens["us"]["crm"]
	if ep.APIDomain == "" || ep.AccountsURL == "" || refresh == "" {
		t.Fatalf("sandbox gave no us endpoints or crm refresh token: %+v", ep)
	}

	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "crm-sdk.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"SANDBOX_API_DOMAIN="+ep.APIDomain,
		"SANDBOX_ACCOUNTS_URL="+ep.AccountsURL,
		"SANDBOX_CLIENT_ID="+creds.ClientID,
		"SANDBOX_CLIENT_SECRET="+creds.ClientSecret,
		"SANDBOX_REFRESH_TOKEN="+refresh,
		"NODE_NO_WARNINGS=1",
	)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish in time: %v\n%s", ctx.Err(), out)
	}
	if err != nil {
		t.Fatalf("Zoho's CRM SDK disagrees with the sandbox (node --test: %v):\n%s", err, out)
	}
	t.Logf("node --test crm-sdk.test.mjs:\n%s", out)
}
