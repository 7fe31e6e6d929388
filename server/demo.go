package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/salesiq"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// The demo (`make run`, `serve --demo`): the sandbox vendors run in this
// process with their sample data, the gateway's Zoho client points at them,
// and the demo org is connected and syncing, so a newcomer sees data flow in
// GraphiQL within a minute without configuring anything.

// startDemoSandbox starts the sandbox and points cfg's Zoho client at it,
// unless a real Zoho client is configured (then the demo org only gets its
// token).
func startDemoSandbox(ctx context.Context, cfg *Config, log *slog.Logger) (*sandbox.Sandbox, error) {
	if cfg.ZohoClientID != "" {
		return nil, nil
	}
	sb, err := sandbox.Start(ctx, sandbox.Config{Seed: 1, DCs: []string{"us"}, Log: log.With("component", "sandbox")})
	if err != nil {
		return nil, fmt.Errorf("starting the demo sandbox: %w", err)
	}
	cr, ep := sb.Credentials(), sb.Endpoints()["us"]
	cfg.ZohoClientID, cfg.ZohoClientSecret = cr.ClientID, cr.ClientSecret
	cfg.ZohoEndpoints = map[string]zoho.DataCenter{"us": {Name: "us", Accounts: ep.AccountsURL, API: ep.APIDomain, Desk: ep.DeskURL, SalesIQ: ep.SalesIQURL}}
	return sb, nil
}

// connectDemo joins the demo org to the sandbox's CRM and desk. The sandbox
// is new at every start (new client secret, new tokens), so a connection
// left by an earlier run is removed first; the synced data stays, as with
// any removed connection.
func connectDemo(ctx context.Context, s *Server, sb *sandbox.Sandbox, admin auth.Issued) (store.Connection, error) {
	v := demoViewer(admin)
	old, err := s.connections.Connections(ctx, v, false)
	if err != nil {
		return store.Connection{}, err
	}
	for _, c := range old {
		if _, err := s.connections.SetStatus(ctx, v, c.ID, syncengine.ConnectionRemove); err != nil {
			return store.Connection{}, err
		}
	}
	cr, ep := sb.Credentials(), sb.Endpoints()["us"]
	crmCreds := syncengine.ConnectionCredentials{RefreshToken: cr.RefreshTokens["us"]["crm"]}
	orgs, err := s.connections.ReachableCRMOrgs(ctx, connector.CRM, "us", crmCreds)
	if err != nil || len(orgs) == 0 {
		return store.Connection{}, fmt.Errorf("listing the sandbox CRM's orgs: %w", err)
	}
	return s.connections.Connect(ctx, v, syncengine.ConnectionRequest{
		CRMSystem: connector.CRM, CRMDC: "us", CRMOrgID: orgs[0].ID, CRMCredentials: crmCreds,
		DeskDC: "us", DeskOrgID: ep.DeskOrgID,
		DeskCredentials: syncengine.ConnectionCredentials{RefreshToken: cr.RefreshTokens["us"]["desk"]},
	})
}

// linkDemoChat links the sandbox's SalesIQ to the demo org (A5), as an
// admin does with linkSalesIQ, so its chats become desk tickets. A link
// left by an earlier run (an earlier sandbox) is unlinked first.
func linkDemoChat(ctx context.Context, s *Server, sb *sandbox.Sandbox, admin auth.Issued) error {
	v := demoViewer(admin)
	if _, err := s.chat.LinkOf(ctx, v); err == nil {
		if _, err := s.chat.SetLinkStatus(ctx, v, syncengine.ChatLinkUnlink); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := s.chat.Link(ctx, v, syncengine.LinkRequest{
		Credentials: syncengine.ConnectionCredentials{RefreshToken: sb.Credentials().RefreshTokens["us"]["all"]},
		ScreenName:  sb.Endpoints()["us"].SalesIQScreenName,
	}); err != nil {
		return err
	}
	// A new link converts no chat until an admin says which (the default,
	// NONE); the demo converts the attended ones when they end.
	_, err := s.chat.UpdateRules(ctx, v, syncengine.ConversionRules{Chats: "ATTENDED", At: "CHAT_END", TicketStatus: "OPEN"})
	return err
}

// demoChat is one website chat, start to end, by someone the CRM knows.
func demoChat(sb *sandbox.Sandbox, rng *rand.Rand, stamp string, log *slog.Logger) {
	crmSide, siq := sb.CRM("us"), sb.SalesIQ("us")
	name, email := "Demo Visitor", ""
	if ids := crmSide.IDs("Contacts"); len(ids) > 0 {
		rec, _ := crmSide.Record("Contacts", ids[rng.IntN(len(ids))])
		name = strings.TrimSpace(fmt.Sprint(rec["First_Name"], " ", rec["Last_Name"]))
		email, _ = rec["Email"].(string)
	}
	// The Support department maps to the desk's department of that name
	// (F3), so the ticket needs no agent to pick one.
	var department string
	for _, d := range siq.Departments() {
		if d.Name == "Support" {
			department = d.ID
		}
	}
	c, err := siq.StartChat(salesiq.ChatStart{Name: name, Email: email, DepartmentID: department,
		Question: "Where is my order? (" + stamp + ")"})
	if err == nil {
		_, err = siq.PickUp(c.ID, "")
	}
	if err == nil {
		_, err = siq.OperatorReply(c.ID, "Let me look that up for you.")
	}
	if err == nil {
		_, err = siq.VisitorReply(c.ID, "Thank you!")
	}
	if err == nil {
		_, err = siq.EndChat(c.ID)
	}
	if err != nil {
		log.Debug("demo chat", "err", err)
	}
}

func demoViewer(admin auth.Issued) auth.Viewer {
	return auth.Viewer{OrgID: admin.Token.OrgID, UserID: admin.User.ID, TokenID: admin.Token.ID, Role: auth.RoleAdmin}
}

// demoActivity plays a CRM user and a desk agent who now and then edit a
// contact, and a website visitor who now and then chats with an operator
// (the chat becomes a desk ticket when it ends), so the demo's sync
// history and event stream keep moving.
func demoActivity(ctx context.Context, sb *sandbox.Sandbox, every time.Duration, log *slog.Logger) {
	crmSide, deskSide := sb.CRM("us"), sb.Desk("us")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for turn := 0; ; turn++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		stamp := time.Now().Format("15:04:05")
		if turn%6 == 2 {
			demoChat(sb, rng, stamp, log)
			continue
		}
		if turn%2 == 0 {
			if ids := crmSide.IDs("Contacts"); len(ids) > 0 {
				id := ids[rng.IntN(len(ids))]
				if err := crmSide.Edit("Contacts", id, map[string]any{"Description": "Edited in the CRM at " + stamp}); err != nil {
					log.Debug("demo CRM edit", "err", err)
				}
			}
			continue
		}
		if ids := deskSide.IDs("contacts"); len(ids) > 0 {
			id := ids[rng.IntN(len(ids))]
			if _, err := deskSide.UpdateContact(id, map[string]any{"description": "Edited in the desk at " + stamp}); err != nil {
				log.Debug("demo desk edit", "err", err)
			}
		}
	}
}

// printDemo tells the newcomer where everything is and what to try.
func printDemo(w io.Writer, url, secret string, sb *sandbox.Sandbox, conn store.Connection) {
	fmt.Fprintf(w, "\n  deskbridge is running.\n  GraphiQL:     %s/#token=%s\n", url, secret)
	// The example sidebar (server/examples) opens on a sample ticket whose
	// customer has deals, so the whole picture shows; without the sandbox
	// the page asks for a ticket.
	sidebar := url + "/examples/sidebar#token=" + secret
	if ticket := demoTicket(sb); ticket != "" {
		sidebar += "&ticket=" + ticket
	}
	fmt.Fprintf(w, "  Sidebar:      %s\n  GraphQL:      %s/graphql\n  Admin token:  %s\n", sidebar, url, secret)
	if sb != nil {
		ep := sb.Endpoints()["us"]
		fmt.Fprintf(w, "\n  Sandbox vendors (sample data; a CRM user and a desk agent edit a contact now and then):\n")
		fmt.Fprintf(w, "    CRM and Bigin  %s    Desk  %s (orgId %s)    SalesIQ  %s\n", ep.APIDomain, ep.DeskURL, ep.DeskOrgID, ep.SalesIQURL)
		fmt.Fprintf(w, "  The demo org is connected (connection %d) and syncing, and SalesIQ is linked: a visitor chats\n", conn.ID)
		fmt.Fprintf(w, "  about once a minute, and each chat becomes a desk ticket when it ends. Try in GraphiQL:\n")
		fmt.Fprintf(w, "    { connections { id status crmOrg { name } syncHistory { module direction added updated } queueDepth { module pending } } }\n")
		fmt.Fprintf(w, "    { chatLink { status salesIQPortal { screenName } departmentMappings { chatDepartmentName mode deskDepartmentName } } }\n")
		fmt.Fprintf(w, "    subscription { events { id type occurredAt payload } }\n")
	}
	fmt.Fprintln(w)
}

// demoTicket returns the desk id of the first sandbox ticket whose contact
// shares its email with a CRM contact that has deals, or "" (no sandbox, or
// no such ticket).
func demoTicket(sb *sandbox.Sandbox) string {
	if sb == nil {
		return ""
	}
	crmSide, deskSide := sb.CRM("us"), sb.Desk("us")
	withDeals := map[string]bool{} // lower-cased emails
	for _, id := range crmSide.IDs("Deals") {
		deal, _ := crmSide.Record("Deals", id)
		ref, _ := deal["Contact_Name"].(map[string]any)
		if ref == nil {
			continue
		}
		contact, _ := crmSide.Record("Contacts", fmt.Sprint(ref["id"]))
		if email, _ := contact["Email"].(string); email != "" {
			withDeals[strings.ToLower(email)] = true
		}
	}
	for _, id := range deskSide.IDs("tickets") {
		ticket, _ := deskSide.Ticket(id)
		contact, _ := deskSide.Contact(fmt.Sprint(ticket["contactId"]))
		if email, _ := contact["email"].(string); email != "" && withDeals[strings.ToLower(email)] {
			return id
		}
	}
	return ""
}
