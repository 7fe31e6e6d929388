package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/syncengine"
)

// maxWebhookBody bounds a vendor delivery.
const maxWebhookBody = 1 << 20

// webhookHandler receives the vendors' change notifications:
// POST /webhooks/{connection}/{crm|desk}?token=…. It answers 200 once the
// changes are queued, 404 for an unknown connection or a wrong token (the
// same answer, so neither can be probed), 410 for a removed or deactivated
// connection (Desk then drops its webhook), 400 for a body that is not a
// notification, and 500 when the queue is unreachable (the vendor retries).
func webhookHandler(db *sqlx.DB, conns syncengine.Connectors, wake func(), log *slog.Logger) http.Handler {
	return deliveryHandler("connection", "connection", log, func(r *http.Request, id int64, body []byte) (int, error) {
		n, err := syncengine.ReceiveWebhook(r.Context(), db, conns, id, r.PathValue("system"), r.URL.Query().Get("token"), r.Header, body)
		if err == nil && n > 0 {
			wake()
		}
		return n, err
	})
}

// chatWebhookHandler receives SalesIQ's chat events for a link:
// POST /webhooks/salesiq/{link}?token=…, signed with the subscription's key
// (x-siqsignature). The answers are those of webhookHandler: 200 once the
// event is recorded (a conversion the desk cannot take now is retried by
// the leader), 404 for an unknown link or token, 410 for a disabled or
// removed link, 400 for a body that is not a verified delivery.
func chatWebhookHandler(chat *syncengine.ChatService, log *slog.Logger) http.Handler {
	return deliveryHandler("link", "chat_link", log, func(r *http.Request, id int64, body []byte) (int, error) {
		return chat.ReceiveChatWebhook(r.Context(), id, r.URL.Query().Get("token"), r.Header, body)
	})
}

// deliveryHandler is what the vendors' webhook endpoints share: the row id
// from the path parameter idParam, a bounded body, and syncengine's
// delivery errors turned into the answers the vendors act on.
func deliveryHandler(idParam, logKey string, log *slog.Logger, receive func(r *http.Request, id int64, body []byte) (changes int, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue(idParam), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		n, err := receive(r, id, body)
		switch {
		case errors.Is(err, syncengine.ErrUnknownWebhook):
			http.NotFound(w, r)
		case errors.Is(err, syncengine.ErrWebhookGone):
			http.Error(w, "gone", http.StatusGone)
		case errors.Is(err, syncengine.ErrBadNotification):
			http.Error(w, "not a notification", http.StatusBadRequest)
		case err != nil:
			log.ErrorContext(r.Context(), "receiving a webhook delivery", "request_id", requestID(r.Context()), logKey, id, "err", err)
			http.Error(w, "try again", http.StatusInternalServerError)
		default:
			log.DebugContext(r.Context(), "webhook delivery recorded", logKey, id, "changes", n)
			w.WriteHeader(http.StatusOK)
		}
	})
}
