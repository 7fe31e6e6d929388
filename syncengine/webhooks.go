package syncengine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
	"github.com/deskbridge/deskbridge/syncengine/mapping"
)

// Errors of the webhook receiver; the HTTP layer turns them into statuses.
var (
	// ErrUnknownWebhook: no such connection, or the token is wrong (the two
	// are not told apart, so ids cannot be probed).
	ErrUnknownWebhook = errors.New("unknown webhook")
	// ErrWebhookGone: the connection was deactivated or removed; a vendor
	// told "gone" stops sending (Desk deletes a webhook answering 410).
	ErrWebhookGone = errors.New("webhook gone")
	// ErrBadNotification: the body is not a notification of that system.
	ErrBadNotification = errors.New("bad notification")
)

// webhookSide names the two URL systems: /webhooks/{id}/crm and /desk.
const (
	webhookCRM  = "crm"
	webhookDesk = "desk"
)

// WebhookPath is where a connection's system posts its notifications; the
// verification token travels in the query.
func WebhookPath(connID int64, side string) string {
	return "/webhooks/" + strconv.FormatInt(connID, 10) + "/" + side
}

// ReceiveWebhook handles one delivery: it checks the connection and its
// token in constant time, parses the body with the system's connector and
// enqueues the changed records in one insert, so the vendor gets its 200
// fast. Desk ticket changes become ticket events (recordDeskTicketChanges);
// changes to other modules the sync does not carry are ignored.
func ReceiveWebhook(ctx context.Context, db *sqlx.DB, conns Connectors, connID int64, side, token string, header http.Header, body []byte) (int, error) {
	c, err := store.ConnectionForWebhook(ctx, db, connID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, ErrUnknownWebhook
	}
	if err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(c.WebhookToken)) != 1 {
		return 0, ErrUnknownWebhook
	}
	if c.Status != store.ConnectionActive && c.Status != store.ConnectionPaused {
		return 0, ErrWebhookGone // paused connections keep capturing (B12)
	}
	desk, crm, err := conns.For(ctx, c)
	if err != nil {
		return 0, err
	}
	var sys connector.Connector
	switch side {
	case webhookCRM:
		sys = crm
	case webhookDesk:
		sys = desk
	default:
		return 0, ErrUnknownWebhook
	}
	w, ok := sys.(connector.Watcher)
	if !ok {
		return 0, ErrUnknownWebhook
	}
	changes, err := w.ParseNotification(header, body)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadNotification, err)
	}
	for _, ch := range changes {
		if ch.Token != "" && subtle.ConstantTimeCompare([]byte(ch.Token), []byte(c.WebhookToken)) != 1 {
			return 0, ErrUnknownWebhook // a CRM callback echoes the channel token too
		}
	}
	tickets := 0
	if side == webhookDesk {
		if tickets, err = recordDeskTicketChanges(ctx, db, c, changes); err != nil {
			return 0, err
		}
	}
	var items []store.NewQueueItem
	for _, ch := range changes {
		m, ok := syncedModule(ch.Module)
		if !ok {
			continue
		}
		kind := store.KindUpsert
		if ch.Kind == connector.Deleted {
			kind = store.KindDelete
		}
		for _, id := range ch.IDs {
			items = append(items, store.NewQueueItem{System: string(sys.System()), Module: string(m), ExtID: id, Kind: kind, Origin: store.OriginWebhook})
		}
	}
	if len(items) == 0 {
		return tickets, nil
	}
	if err := store.Enqueue(ctx, db, c.OrgID, c.ID, items); err != nil {
		return 0, err
	}
	return len(items) + tickets, nil
}

// syncedModule maps a vendor's module name to a synced module.
func syncedModule(m connector.Module) (mapping.Module, bool) {
	for _, sm := range mapping.Modules {
		if strings.EqualFold(string(m), string(sm)) {
			return sm, true
		}
	}
	return "", false
}

// watchVersion changes when the events a watch asks for change (2: desk
// ticket events, for the ticket stream).
const watchVersion = "2"

// watchLifetime is how long a CRM channel is asked to live (Zoho allows a
// week); renewal happens when less than watchRenewal is left.
const (
	watchLifetime = 6 * 24 * time.Hour
	watchRenewal  = 24 * time.Hour
)

// EnsureWatches subscribes a connection's CRM and desk to change
// notifications posted to publicURL, and renews a CRM channel that is about
// to expire. Desk products have no webhook events; polling covers them.
func EnsureWatches(ctx context.Context, db *sqlx.DB, conns Connectors, publicURL string, c store.Connection) error {
	desk, crm, err := conns.For(ctx, c)
	if err != nil {
		return err
	}
	have, err := store.Watches(ctx, db, c.OrgID, c.ID)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		side    string
		sys     connector.Connector
		modules []connector.Module
	}{
		{webhookCRM, crm, []connector.Module{mapping.Contacts.CRMModule(), mapping.Accounts.CRMModule(), mapping.Products.CRMModule()}},
		{webhookDesk, desk, []connector.Module{mapping.Contacts.DeskModule(), mapping.Accounts.DeskModule(), "tickets"}},
	} {
		w, ok := s.sys.(connector.Watcher)
		if !ok {
			continue
		}
		// The version query marks which events a watch asks for: a watch
		// made before the desk's ticket events were wanted is replaced.
		target := strings.TrimRight(publicURL, "/") + WebhookPath(c.ID, s.side) + "?v=" + watchVersion
		existing, held := have[string(s.sys.System())]
		if held && existing.TargetURL == target && (existing.ExpiresAt == nil || time.Until(*existing.ExpiresAt) > watchRenewal) {
			continue
		}
		if held {
			_ = w.Unwatch(ctx, existing.SubscriptionID) // replaced below; a stale one only costs echoes
		}
		req := connector.WatchRequest{URL: target, Modules: s.modules, Token: c.WebhookToken}
		if s.side == webhookCRM {
			// The CRM posts to the URL as given: the token goes in it
			// (the Desk connector adds it itself).
			req.URL = target + "&token=" + url.QueryEscape(c.WebhookToken)
			req.Expires = time.Now().Add(watchLifetime)
		}
		sub, err := w.Watch(ctx, req)
		if err != nil {
			return fmt.Errorf("subscribing %s of connection %d: %w", s.sys.System(), c.ID, err)
		}
		rec := store.Watch{OrgID: c.OrgID, ConnectionID: c.ID, System: string(s.sys.System()), SubscriptionID: sub.ID, TargetURL: target}
		if !sub.Expires.IsZero() {
			rec.ExpiresAt = &sub.Expires
		}
		if err := store.PutWatch(ctx, db, rec); err != nil {
			return err
		}
	}
	return nil
}
