package syncengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// liveConnectors are the connectors of one stored connection, kept while the
// connection row is unchanged: their token sources cache access tokens, so
// rebuilding them per batch would refresh a token every time.
type liveConnectors struct {
	updatedAt time.Time
	desk, crm connector.Connector
}

// connectorCache belongs to a ConnectionService.
type connectorCache struct {
	mu   sync.Mutex
	live map[int64]liveConnectors
}

// For returns the desk and CRM connectors of a stored connection, opening
// its sealed credentials (the Connectors interface of Worker and Poller).
func (s *ConnectionService) For(ctx context.Context, c store.Connection) (connector.Connector, connector.Connector, error) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if lc, ok := s.cache.live[c.ID]; ok && lc.updatedAt.Equal(c.UpdatedAt) {
		return lc.desk, lc.crm, nil
	}
	crmToken, err := s.openSecret(ctx, c, store.SecretCRMRefreshToken)
	if err != nil {
		return nil, nil, err
	}
	crmAccount := connector.Account{System: connector.System(c.CRMSystem), DC: c.CRMDC, RefreshToken: crmToken}
	if c.CRMOrgID != nil {
		crmAccount.CRMOrgID = *c.CRMOrgID
	}
	crm, err := s.open(crmAccount)
	if err != nil {
		return nil, nil, err
	}
	deskAccount := connector.Account{System: connector.Desk, DC: c.DeskDC, DeskOrgID: c.DeskOrgID, SourceID: sourceID(c)}
	if c.AuthMethod == ConnectionAuthServiceKey {
		deskAccount.ServiceKey, err = s.openSecret(ctx, c, store.SecretServiceKey)
		deskAccount.ServiceKeyEmail = deref(c.ServiceKeyEmail)
	} else {
		deskAccount.RefreshToken, err = s.openSecret(ctx, c, store.SecretDeskRefreshToken)
	}
	if err != nil {
		return nil, nil, err
	}
	desk, err := s.open(deskAccount)
	if err != nil {
		return nil, nil, err
	}
	if s.cache.live == nil {
		s.cache.live = map[int64]liveConnectors{}
	}
	s.cache.live[c.ID] = liveConnectors{updatedAt: c.UpdatedAt, desk: desk, crm: crm}
	return desk, crm, nil
}

// openSecret loads and opens one sealed secret of a connection.
func (s *ConnectionService) openSecret(ctx context.Context, c store.Connection, name string) (string, error) {
	if s.box == nil {
		return "", errors.New("cannot open connection secrets: DESKBRIDGE_SECRET_KEY is not set")
	}
	sealed, err := store.GetSecret(ctx, s.db, c.OrgID, c.ID, name)
	if err != nil {
		return "", fmt.Errorf("loading %s of connection %d: %w", name, c.ID, err)
	}
	plain, err := s.box.Open(sealed, ConnectionSecretAD(c.ID, name))
	if err != nil {
		return "", fmt.Errorf("opening %s of connection %d: %w", name, c.ID, err)
	}
	return string(plain), nil
}

// sourceID is the UUID-shaped id the desk's webhooks of this connection
// ignore, so the desk does not notify us of our own writes. It is derived
// from the connection's secret webhook token: stable, and not guessable.
func sourceID(c store.Connection) string {
	sum := sha256.Sum256([]byte("desk-source:" + c.WebhookToken))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
