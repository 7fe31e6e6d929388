package zoho

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// maxNotification bounds what ParseNotification reads; a Desk delivery of
// a few full tickets is far below it.
const maxNotification = 8 << 20

// errBadNotification wraps every parse failure: the receiver answers 400
// and the engine ignores the body.
var errBadNotification = errors.New("not a notification")

func badNotification(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadNotification, fmt.Sprintf(format, args...))
}

// CRM watch channels (reference §2.9).

var channelSeq atomic.Int64

// newChannelID makes a numeric channel id, unique per process and time.
func newChannelID(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli()*1000+channelSeq.Add(1)%1000, 10)
}

// Watch subscribes to create, edit and delete events of the modules: one
// channel for all of them, its id the Subscription's. Zoho ends a channel
// after an hour unless told otherwise, and after a week at most: renew
// with Renew before Expires.
func (c *CRM) Watch(ctx context.Context, req connector.WatchRequest) (connector.Subscription, error) {
	if len(req.Token) > 50 {
		return connector.Subscription{}, &connector.Error{Class: connector.Permanent, Reason: connector.ReasonTooLong,
			Field: "token", Message: "subscribing: Zoho takes verification tokens of at most 50 characters"}
	}
	id := newChannelID(c.clock.Now())
	return c.putWatch(ctx, http.MethodPost, id, req)
}

// Renew extends (or changes) a channel; Expires zero means Zoho's default
// of one hour from now.
func (c *CRM) Renew(ctx context.Context, id string, req connector.WatchRequest) (connector.Subscription, error) {
	return c.putWatch(ctx, http.MethodPut, id, req)
}

func (c *CRM) putWatch(ctx context.Context, method, id string, req connector.WatchRequest) (connector.Subscription, error) {
	events := make([]string, 0, len(req.Modules))
	for _, m := range req.Modules {
		events = append(events, string(m)+".all")
	}
	item := map[string]any{"channel_id": id, "events": events, "notify_url": req.URL,
		"return_affected_field_values": true}
	if req.Token != "" {
		item["token"] = req.Token
	}
	if !req.Expires.IsZero() {
		item["channel_expiry"] = crmTime(req.Expires)
	}
	action := "subscribing to " + strings.Join(events, ",")
	resp, err := c.c.do(ctx, request{method: method, path: "/actions/watch", body: map[string]any{"watch": []any{item}},
		idempotent: true, action: action, allow: func(status int, body []byte) bool {
			return status == http.StatusBadRequest && strings.Contains(string(body), `"watch"`)
		}})
	if err != nil {
		return connector.Subscription{}, err
	}
	var body struct {
		Watch []json.RawMessage `json:"watch"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || len(body.Watch) == 0 {
		return connector.Subscription{}, &connector.Error{Class: connector.Transient, Status: resp.status, Raw: truncate(resp.body),
			Message: action + ": unreadable answer"}
	}
	var res struct {
		Status  string `json:"status"`
		Details struct {
			Events []struct {
				ChannelExpiry string `json:"channel_expiry"`
			} `json:"events"`
		} `json:"details"`
	}
	_ = json.Unmarshal(body.Watch[0], &res)
	if !strings.EqualFold(res.Status, "success") {
		e := crmRecordError(body.Watch[0])
		e.Message = action + ": " + e.Message
		e.Status = resp.status
		return connector.Subscription{}, e
	}
	sub := connector.Subscription{ID: id}
	for _, ev := range res.Details.Events {
		if t := parseCRMTime(ev.ChannelExpiry); !t.IsZero() && (sub.Expires.IsZero() || t.Before(sub.Expires)) {
			sub.Expires = t
		}
	}
	return sub, nil
}

// Unwatch ends a channel. A channel Zoho no longer knows (expired) counts
// as ended.
func (c *CRM) Unwatch(ctx context.Context, id string) error {
	_, err := c.c.do(ctx, request{method: http.MethodDelete, path: "/actions/watch", query: url.Values{"channel_ids": {id}},
		idempotent: true, action: "unsubscribing channel " + id, allow: func(status int, body []byte) bool {
			return status == http.StatusBadRequest && strings.Contains(string(body), "NOT_SUBSCRIBED")
		}})
	if err != nil {
		if e := asError(err); e != nil && e.Code == "NOT_SUBSCRIBED" {
			return nil
		}
		return err
	}
	return nil
}

// crmNotification is the callback body.
type crmNotification struct {
	ServerTime     json.Number       `json:"server_time"`
	Module         string            `json:"module"`
	IDs            []json.RawMessage `json:"ids"`
	AffectedFields []json.RawMessage `json:"affected_fields"`
	Operation      string            `json:"operation"`
	ChannelID      json.RawMessage   `json:"channel_id"`
	Token          *string           `json:"token"`
}

// ParseNotification reads a watch callback. It verifies nothing: the
// engine compares Change.Token with the token it subscribed with.
func (c *CRM) ParseNotification(_ http.Header, body []byte) ([]connector.Change, error) {
	return parseCRMNotification(body)
}

func parseCRMNotification(body []byte) ([]connector.Change, error) {
	if len(body) > maxNotification {
		return nil, badNotification("body of %d bytes", len(body))
	}
	var n crmNotification
	if err := decodeJSON(body, &n); err != nil {
		return nil, badNotification("CRM callback: %v", err)
	}
	if n.Module == "" {
		return nil, badNotification("CRM callback without module")
	}
	ch := connector.Change{Module: connector.Module(n.Module)}
	switch strings.ToLower(n.Operation) {
	case "insert", "create":
		ch.Kind = connector.Created
	case "update", "edit":
		ch.Kind = connector.Updated
	case "delete":
		ch.Kind = connector.Deleted
	default:
		return nil, badNotification("CRM callback operation %q", n.Operation)
	}
	for _, raw := range n.IDs {
		if id := rawID(raw); id != "" {
			ch.IDs = append(ch.IDs, id)
		}
	}
	if len(ch.IDs) == 0 {
		return nil, badNotification("CRM callback without ids")
	}
	for _, raw := range n.AffectedFields {
		var m map[string][]string
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		for id, fs := range m {
			if ch.AffectedFields == nil {
				ch.AffectedFields = map[string][]string{}
			}
			ch.AffectedFields[id] = append(ch.AffectedFields[id], fs...)
		}
	}
	if ms, err := n.ServerTime.Int64(); err == nil && ms > 0 {
		ch.At = time.UnixMilli(ms)
	}
	if n.Token != nil {
		ch.Token = *n.Token
	}
	return []connector.Change{ch}, nil
}

// rawID reads an id sent as a string or a number.
func rawID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if decodeJSON(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// SalesIQ webhook signatures (reference §5).

// VerifySalesIQSignature checks x-siqsignature, Base64 RSA-SHA256
// (PKCS#1 v1.5) over the raw body, against the PEM public key that
// GenerateWebhookKey returned.
func VerifySalesIQSignature(publicKeyPEM string, body []byte, signature string) error {
	pub, err := parseRSAPublicKey(publicKeyPEM)
	if err != nil {
		return fmt.Errorf("verifying SalesIQ signature: %w", err)
	}
	return verifyRSA(pub, body, signature)
}

func parseRSAPublicKey(pemText string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	var der []byte
	if block != nil {
		der = block.Bytes
	} else if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pemText)); err == nil {
		der = b // a bare Base64 key, without PEM armour
	} else {
		return nil, errors.New("public key is neither PEM nor Base64")
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		if rp, ok := pub.(*rsa.PublicKey); ok {
			return rp, nil
		}
		return nil, fmt.Errorf("public key is %T, not RSA", pub)
	}
	rp, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return rp, nil
}

func verifyRSA(pub *rsa.PublicKey, body []byte, signature string) error {
	if signature == "" {
		return errors.New("verifying SalesIQ signature: no x-siqsignature header")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("verifying SalesIQ signature: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("verifying SalesIQ signature: %w", err)
	}
	return nil
}
