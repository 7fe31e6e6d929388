package salesiq

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"

	"github.com/deskbridge/deskbridge/sandbox/hooks"
)

// SignatureHeader carries Base64(RSA-SHA256(body)) on signed deliveries.
const SignatureHeader = "x-siqsignature"

// emitConversation fires a conversation event. Callers hold s.mu.
func (s *Server) emitConversation(event string, c *conversation) {
	s.emit(event, "conversation", c.id, s.render(c), c.appID)
}

// emit queues event for every subscription that wants it. It runs under
// s.mu so that each receiver gets events in the order they happened; the
// deliverer only queues, so nothing here waits on the network.
func (s *Server) emit(event, entityType, entityID string, entity any, appID string) {
	if len(s.webhooks) == 0 {
		return
	}
	body, err := json.Marshal(Delivery{
		EntityID: entityID, EventTime: ms(s.now()), Event: event, EntityType: entityType, Entity: entity,
	})
	if err != nil {
		s.log.Error("encode webhook body", "event", event, "err", err)
		return
	}
	for _, w := range s.webhooks {
		if !slices.Contains(w.Events, event) {
			continue
		}
		if len(w.AppIDs) > 0 && appID != "" && !slices.Contains(w.AppIDs, appID) {
			continue
		}
		header := http.Header{"Content-Type": {"application/json"}}
		if w.key != nil {
			sig, err := sign(w.key, body)
			if err != nil {
				s.log.Error("sign webhook body", "webhook", w.ID, "err", err)
				continue
			}
			header.Set(SignatureHeader, sig)
		}
		s.log.Debug("webhook queued", "webhook", w.ID, "event", event, "entity", entityID)
		w.sent = append(w.sent, SentDelivery{Event: event, Body: body, Header: header.Clone()})
		if len(w.sent) > maxSent {
			w.sent = w.sent[len(w.sent)-maxSent:]
		}
		if s.hooks != nil {
			s.hooks.Send(hooks.Delivery{URL: w.URL, Body: body, Header: header})
		}
	}
}

// maxSent is how many deliveries a webhook remembers for Sent and
// Redeliver.
const maxSent = 200

// SentDelivery is a delivery as it was posted: its body and headers (the
// signature included).
type SentDelivery struct {
	Event  string
	Body   []byte
	Header http.Header
}

// Sent returns a webhook's last deliveries, oldest first, so a test can
// post them again itself (a redelivery, or many at once).
func (s *Server) Sent(webhookID string) []SentDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhook(webhookID)
	if w == nil {
		return nil
	}
	out := make([]SentDelivery, len(w.sent))
	for i, d := range w.sent {
		out[i] = SentDelivery{Event: d.Event, Body: slices.Clone(d.Body), Header: d.Header.Clone()}
	}
	return out
}

// Redeliver posts a webhook's deliveries of one event again, verbatim (the
// same body and signature), as the service does when it retries a
// delivery; it returns how many it queued.
func (s *Server) Redeliver(webhookID, event string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhook(webhookID)
	if w == nil || s.hooks == nil {
		return 0
	}
	n := 0
	for _, d := range w.sent {
		if d.Event == event {
			s.hooks.Send(hooks.Delivery{URL: w.URL, Body: slices.Clone(d.Body), Header: d.Header.Clone()})
			n++
		}
	}
	return n
}

// sign returns Base64(RSA-SHA256-PKCS1v15(body)), what x-siqsignature holds.
func sign(key *rsa.PrivateKey, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign with RSA-SHA256: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// newKeyPair makes the key a subscription signs with and the public half as
// PEM ("PUBLIC KEY", PKIX) for the subscriber.
func newKeyPair() (*rsa.PrivateKey, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", fmt.Errorf("generate RSA key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("encode public key: %w", err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// VerifySignature checks an x-siqsignature value against a public key PEM as
// returned by POST …/webhooks/{id}/keys; receivers and tests use it.
func VerifySignature(publicKeyPEM string, body []byte, signature string) error {
	block, _ := pem.Decode([]byte(publicKeyPEM))
	if block == nil {
		return fmt.Errorf("verify signature: no PEM block in public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("verify signature: parse public key: %w", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("verify signature: public key is %T, not RSA", pub)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("verify signature: decode base64: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("verify signature: %w", err)
	}
	return nil
}
