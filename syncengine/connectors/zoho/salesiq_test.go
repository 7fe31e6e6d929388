package zoho

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// SalesIQ runs the parts of the conformance suite that apply: the
// articles module and signed webhooks.
func TestSalesIQConformance(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 60, Accounts: 10, Products: 5})
	srv := sb.SalesIQ("us")
	siq, err := NewSalesIQ(settingsFor(sb, connector.SalesIQ, newSleeps()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)

	t.Run("portals departments conversations", func(t *testing.T) {
		orgs, err := siq.Orgs(ctx)
		if err != nil || len(orgs) != 1 || orgs[0].ID != srv.ScreenName() {
			t.Fatalf("orgs %+v, %v", orgs, err)
		}
		deps, err := siq.Departments(ctx)
		if err != nil || len(deps) != len(srv.Departments()) {
			t.Fatalf("%d departments, %v", len(deps), err)
		}
		convs, err := siq.Conversations(ctx, ConversationQuery{})
		if err != nil || len(convs) != len(srv.Conversations()) {
			t.Fatalf("%d conversations of %d, %v", len(convs), len(srv.Conversations()), err)
		}
		if len(convs) > 0 {
			if _, err := siq.Transcript(ctx, convs[0].ID); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("articles", func(t *testing.T) {
		before, _ := listAll(t, ctx, siq, ArticlesModule, "", 7, nil)
		if len(before) != len(srv.Articles()) {
			t.Fatalf("listed %d articles, the sandbox holds %d", len(before), len(srv.Articles()))
		}
		w := connector.Write{Op: connector.Upsert, DuplicateCheck: []string{"source_id"}, Fields: map[string]any{
			"title": "Reset a password", "content": "<p>Go to settings.</p>", "source": "zoho_desk", "source_id": "4000000012345", "status": "published"}}
		res, err := siq.Write(ctx, ArticlesModule, []connector.Write{w})
		if err != nil || res[0].Err != nil || !res[0].Created {
			t.Fatalf("create: %+v %v", res, err)
		}
		w.Fields["title"] = "Reset your password"
		res2, err := siq.Write(ctx, ArticlesModule, []connector.Write{w})
		if err != nil || res2[0].Err != nil || res2[0].Created || res2[0].ID != res[0].ID {
			t.Fatalf("upsert of the synced copy: %+v %v", res2, err)
		}
		a, ok := srv.Article(res[0].ID)
		if !ok || a.Title != "Reset your password" || !a.ReadOnly {
			t.Fatalf("sandbox holds %+v", a)
		}
		del, err := siq.Delete(ctx, ArticlesModule, []string{res[0].ID})
		if err != nil || del[0].Err != nil {
			t.Fatalf("delete: %+v %v", del, err)
		}
		if _, ok := srv.Article(res[0].ID); ok {
			t.Fatal("article still there")
		}
	})

	t.Run("signed webhook", func(t *testing.T) {
		rcv := newReceiver(t)
		sub, err := siq.Watch(ctx, connector.WatchRequest{URL: rcv.url + "/siq", Modules: []connector.Module{"conversations"}, Token: "siq-tok"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = siq.Unwatch(context.Background(), sub.ID) }()
		conv, err := srv.StartChat(salesiq.ChatStart{Name: "Ann", Email: "ann@chat.example", Question: "Where is my order?"})
		if err != nil {
			t.Fatal(err)
		}
		ch := rcv.next(t, func(h http.Header, body []byte) (connector.Change, bool) {
			changes, err := siq.ParseNotification(h, body)
			if err != nil {
				t.Errorf("signed delivery refused: %v", err)
				return connector.Change{}, false
			}
			// A forged body with the same signature is refused.
			if _, err := siq.ParseNotification(h, append([]byte(" "), body...)); err == nil {
				t.Error("tampered body accepted")
			}
			return changes[0], slices.Contains(changes[0].IDs, conv.ID)
		})
		if ch.Kind != connector.Created || ch.Module != "conversations" || ch.Token != "siq-tok" || len(ch.Records) != 1 {
			t.Errorf("change %+v", ch)
		}
	})
}
