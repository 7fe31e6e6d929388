package main_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/store/storetest"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// A gateway killed with SIGKILL in the middle of a first sync, and started
// again, finishes it from its checkpoints: the desk ends with every CRM
// contact of the window exactly once. The sandbox runs as its own process,
// so it outlives the gateway like a real vendor.
func TestFirstSyncSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	summaryPath := filepath.Join(dir, "sandbox.json")
	sb := exec.Command(binary, "sandbox", "-people", "3000", "-accounts", "300", "-products", "60", "-dcs", "us", "-json", summaryPath)
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Process.Kill(); _ = sb.Wait() })
	var sum sandbox.Summary
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, err := os.ReadFile(summaryPath)
		if err == nil && json.Unmarshal(raw, &sum) == nil && sum.Endpoints["us"].APIDomain != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sandbox never wrote its summary")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ep, cr := sum.Endpoints["us"], sum.Credentials
	endpoints, _ := json.Marshal(map[string]map[string]string{"us": {"accounts": ep.AccountsURL, "api": ep.APIDomain, "desk": ep.DeskURL, "salesiq": ep.SalesIQURL}})
	endpointsPath := filepath.Join(dir, "endpoints.json")
	if err := os.WriteFile(endpointsPath, endpoints, 0o600); err != nil {
		t.Fatal(err)
	}

	// The world before connecting, through the vendors' own APIs.
	ctx := context.Background()
	conn := func(sys connector.System, product string) connector.Connector {
		c, err := zoho.Factory(sys)(zoho.Settings{System: sys, DC: "us", AccountsURL: ep.AccountsURL, APIDomain: ep.APIDomain,
			DeskURL: ep.DeskURL, DeskOrgID: ep.DeskOrgID, ClientID: cr.ClientID, ClientSecret: cr.ClientSecret,
			RefreshToken: cr.RefreshTokens["us"][product]})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	crmConn, deskConn := conn(connector.CRM, "crm"), conn(connector.Desk, "desk")
	all := func(c connector.Connector, m connector.Module) []connector.Record {
		var out []connector.Record
		cur := c.StartAt(m, time.Time{})
		for {
			page, err := c.ListChanged(ctx, m, cur, 200)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Records...)
			cur = page.Next
			if page.Done {
				return out
			}
		}
	}
	crmBefore := all(crmConn, "Contacts")
	deskBefore := all(deskConn, "contacts")
	deskEmails := map[string]bool{}
	for _, r := range deskBefore {
		if e, _ := r.Fields["email"].(string); e != "" {
			deskEmails[strings.ToLower(e)] = true
		}
	}

	key := make([]byte, 32)
	env := []string{"DATABASE_URL=" + storetest.URL(t), "DESKBRIDGE_ZOHO_CLIENT_ID=" + cr.ClientID, "DESKBRIDGE_ZOHO_CLIENT_SECRET=" + cr.ClientSecret,
		"DESKBRIDGE_ZOHO_ENDPOINTS=" + endpointsPath, "DESKBRIDGE_SECRET_KEY=" + hex.EncodeToString(key),
		"DESKBRIDGE_FIRST_SYNC_INTERVAL=100ms", "DESKBRIDGE_POLL_INTERVAL=1h", "DESKBRIDGE_WATCH_INTERVAL=1h"}
	gw := serve(t, env)
	admin := mustToken(t, env, "acme", "admin")
	orgID := graphqlString(t, gw.url, admin, `{ reachableCrmOrgs(crmSystem: ZOHO_CRM, dataCenter: US, credentials: {refreshToken: "`+cr.RefreshTokens["us"]["crm"]+`"}) { id } }`, "reachableCrmOrgs", "0", "id")
	if orgID == "" {
		t.Fatal("no reachable CRM org")
	}
	connect := `mutation { connectCrm(input: {crmSystem: ZOHO_CRM, crmDataCenter: US, crmOrgId: "` + orgID +
		`", crmCredentials: {refreshToken: "` + cr.RefreshTokens["us"]["crm"] + `"}, deskDataCenter: US, deskOrgId: "` + ep.DeskOrgID +
		`", deskCredentials: {refreshToken: "` + cr.RefreshTokens["us"]["desk"] + `"}}) { id } }`
	if id := graphqlString(t, gw.url, admin, connect, "connectCrm", "id"); id == "" {
		t.Fatal("connectCrm failed")
	}
	runState := func(url string) (doneContacts float64, allDone bool) {
		body := graphqlRaw(t, url, admin, `{ connections { syncRuns { module direction status done } } }`)
		conns, _ := body["connections"].([]any)
		if len(conns) == 0 {
			return 0, false
		}
		runs, _ := conns[0].(map[string]any)["syncRuns"].([]any)
		allDone = len(runs) > 0
		for _, r := range runs {
			m := r.(map[string]any)
			if m["module"] == "CONTACTS" && m["direction"] == "CRM_TO_DESK" {
				doneContacts, _ = m["done"].(float64)
			}
			if m["status"] != "DONE" {
				allDone = false
			}
		}
		return doneContacts, allDone
	}
	// Kill the gateway once contacts have started to arrive, before the end.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		done, finished := runState(gw.url)
		if finished {
			t.Fatal("the first sync finished before the gateway could be killed: grow the world")
		}
		if done > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("contacts never started to sync")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = gw.cmd.Process.Signal(syscall.SIGKILL)
	<-gw.exited

	again := serve(t, env)
	deadline = time.Now().Add(3 * time.Minute)
	for {
		if _, finished := runState(again.url); finished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first sync never finished after the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The window is the contacts run's: one year back from the connect.
	since := time.Now().Add(-365*24*time.Hour - 10*time.Minute)
	deskAfter := all(deskConn, "contacts")
	seen := map[string]int{}
	for _, r := range deskAfter {
		if e, _ := r.Fields["email"].(string); e != "" {
			seen[strings.ToLower(e)]++
		}
	}
	created := 0
	for _, r := range crmBefore {
		email, _ := r.Fields["Email"].(string)
		email = strings.ToLower(email)
		inWindow := r.CreatedAt.After(since)
		if inWindow && (email == "" || !deskEmails[email]) {
			created++
		}
		if inWindow && email != "" && seen[email] != 1 {
			t.Fatalf("%s is in the desk %d times after the crash, want once", email, seen[email])
		}
	}
	if len(deskAfter) != len(deskBefore)+created {
		t.Fatalf("desk contacts: %d, want %d before + %d created (a record applied twice?)", len(deskAfter), len(deskBefore), created)
	}
}

// graphqlRaw runs a query and returns its data object.
func graphqlRaw(t *testing.T, url, token, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := newRequest(url+"/graphql", body, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct{ Data map[string]any }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Data
}
