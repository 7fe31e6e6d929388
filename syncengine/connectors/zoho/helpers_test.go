package zoho

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// sleeps records the waits the connector asked for and shortens them, so
// tests check backoff and Retry-After without sleeping for real.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
	scale time.Duration // real sleep = d / scale
}

func newSleeps() *sleeps { return &sleeps{scale: 100} }

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return sleepCtx(ctx, min(d/s.scale, 50*time.Millisecond))
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func testLogger() *slog.Logger {
	if os.Getenv("ZOHO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

var (
	signingKeyOnce sync.Once
	signingKey     *rsa.PrivateKey
)

// testSigningKey is one RSA key for the signature tests, made once.
func testSigningKey(t testing.TB) *rsa.PrivateKey {
	signingKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		signingKey = k
	})
	return signingKey
}
