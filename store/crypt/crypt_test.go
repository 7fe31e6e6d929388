package crypt_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/deskbridge/deskbridge/store/crypt"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	box, err := crypt.New(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("1000.refresh.token")
	ad := []byte("connection:1:refresh_token")
	a, _ := box.Seal(secret, ad)
	b, _ := box.Seal(secret, ad)
	if bytes.Equal(a, b) || bytes.Contains(a, secret) {
		t.Fatal("sealing is deterministic or leaks the plaintext")
	}
	got, err := box.Open(a, ad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := crypt.New(bytes.Repeat([]byte{8}, 32))
	tampered := append([]byte(nil), a...)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"other row":   func() ([]byte, error) { return box.Open(a, []byte("connection:2:refresh_token")) },
		"other key":   func() ([]byte, error) { return other.Open(a, ad) },
		"tampered":    func() ([]byte, error) { return box.Open(tampered, ad) },
		"truncated":   func() ([]byte, error) { return box.Open(a[:5], ad) },
		"empty input": func() ([]byte, error) { return box.Open(nil, ad) },
	} {
		if _, err := try(); !errors.Is(err, crypt.ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
	if _, err := crypt.New([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
}
