// Package crypt seals vendor secrets (OAuth refresh tokens, service keys)
// before they reach the database, with AES-256-GCM under the key from
// DESKBRIDGE_SECRET_KEY (SPEC A7). A sealed value is bound to the row it
// belongs to through associated data, so a ciphertext copied into another
// org's row does not open.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// version prefixes every sealed value, leaving room for key rotation.
const version byte = 1

// ErrOpen means a sealed value is corrupt, was sealed under another key, or
// belongs to another row.
var ErrOpen = errors.New("cannot open sealed secret")

// Box seals and opens secrets with one key.
type Box struct {
	aead cipher.AEAD
}

// New returns a box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("creating secret box: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating secret box: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating secret box: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext for the row described by associated (e.g.
// "connection:42:refresh_token"). A random nonce makes equal secrets
// encrypt differently.
func (b *Box) Seal(plaintext, associated []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sealing secret: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, associated), nil
}

// Open decrypts a value made by Seal with the same associated data.
func (b *Box) Open(sealed, associated []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], associated)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
