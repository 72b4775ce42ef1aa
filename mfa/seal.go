package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

const (
	// sealV1 is the first byte of a sealed secret in the current format:
	// sealV1 | 12-byte nonce | AES-256-GCM ciphertext and tag, the key
	// derived as below. A new key or format takes a new version byte, so
	// a Sealer can later open old rows while sealing new ones with the
	// new key.
	sealV1 = 0x01
	// sealInfo is the HKDF info string: it ties the derived key to this
	// one use, so the same key material can serve other purposes (such
	// as cookies) under other info strings without the keys coinciding.
	sealInfo = "caddy-jitauth mfa totp-secret seal v1"
	// recoveryInfo is the HKDF info string of the key that hashes
	// recovery codes (RecoveryHash).
	recoveryInfo = "caddy-jitauth mfa recovery-code hash v1"
	// recoveryPrefix starts a keyed recovery code hash, which a plain
	// SHA-256 (HashRecoveryCode, 64 hex digits) never does.
	recoveryPrefix = "k1:"
	// minKeyMaterial is the least key material NewSealer takes: 256 bits,
	// as much as the AES-256 key it derives.
	minKeyMaterial = 32
	// maxSealed bounds what Open looks at; a sealed TOTP secret is under
	// 100 bytes, so anything far larger is not one.
	maxSealed = 4096
)

// ErrCannotOpen is returned by Open for any sealed secret that does not
// open: wrong user ID, wrong key, unknown version, damaged or truncated.
// It deliberately does not say which.
var ErrCannotOpen = errors.New("mfa: sealed TOTP secret does not open")

// Sealer seals TOTP secrets for storage, so that a copy of the store
// (a backup, a leaked database) does not give away users' second factors:
// the key lives in the server's configuration or key storage, not in
// the store. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	// recovery keys the recovery codes' hashes (RecoveryHash).
	recovery []byte
}

// NewSealer derives the sealing key from key, which must be at least 32
// bytes of secret, random key material. The AES-256-GCM key is derived
// with HKDF-SHA256 under a fixed info string, rather than taking key as
// is, so the same material can safely key other things too.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < minKeyMaterial {
		return nil, fmt.Errorf("mfa: sealing key material must be at least %d bytes, got %d", minKeyMaterial, len(key))
	}
	k, err := hkdf.Key(sha256.New, key, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("mfa: deriving sealing key: %v", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("mfa: sealing cipher: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mfa: sealing cipher: %v", err)
	}
	rk, err := hkdf.Key(sha256.New, key, nil, recoveryInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("mfa: deriving recovery code key: %v", err)
	}
	return &Sealer{aead: aead, recovery: rk}, nil
}

// String keeps the key schedule out of logs and %v (S13).
func (s *Sealer) String() string { return "mfa.Sealer{redacted}" }

// GoString keeps it out of %#v as well.
func (s *Sealer) GoString() string { return s.String() }

// Seal encrypts and authenticates secret for the user with ID userID.
// The user ID is bound in as additional data, so a sealed secret copied
// into another user's row does not open there: an attacker who can write
// to the store cannot give a victim's account a factor they know.
// A random nonce per call means sealing the same secret twice gives
// different bytes.
func (s *Sealer) Seal(userID, secret string) ([]byte, error) {
	if userID == "" {
		return nil, errors.New("mfa: sealing needs a user ID")
	}
	ns := s.aead.NonceSize()
	if 1+ns+len(secret)+s.aead.Overhead() > maxSealed {
		// Open would refuse it: sealed, it would be lost.
		return nil, fmt.Errorf("mfa: a secret of %d bytes is too long to seal (at most %d bytes sealed)", len(secret), maxSealed)
	}
	out := make([]byte, 1+ns, 1+ns+len(secret)+s.aead.Overhead())
	out[0] = sealV1
	rand.Read(out[1:]) // never returns an error (crypto/rand, Go 1.24+)
	return s.aead.Seal(out, out[1:1+ns], []byte(secret), additionalData(sealV1, userID)), nil
}

// Open decrypts a secret that Seal sealed for userID. Whatever is wrong
// with sealed, the error is ErrCannotOpen.
func (s *Sealer) Open(userID string, sealed []byte) (string, error) {
	ns := s.aead.NonceSize()
	if userID == "" || len(sealed) < 1+ns+s.aead.Overhead() || len(sealed) > maxSealed || sealed[0] != sealV1 {
		return "", ErrCannotOpen
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additionalData(sealed[0], userID))
	if err != nil {
		return "", ErrCannotOpen
	}
	return string(plain), nil
}

// additionalData is what GCM authenticates besides the ciphertext: the
// version byte (so a blob cannot be relabelled as another format) and
// the user ID the secret belongs to.
func additionalData(version byte, userID string) []byte {
	ad := make([]byte, 0, 1+len(userID))
	ad = append(ad, version)
	return append(ad, userID...)
}

// RecoveryHash returns the hash under which a recovery code of the user
// with ID userID is stored: an HMAC-SHA256, under a key derived from the
// sealing key material, of the user ID and the code as HashRecoveryCode
// normalises it. Like the sealed secret, it needs the key the store does
// not hold: a copy of the store gives no code away (a plain SHA-256 of
// random codes, unsalted, is found for every user at once by one pass
// over the 31^10 codes), and a hash copied into another user's row
// matches nothing there.
func (s *Sealer) RecoveryHash(userID, input string) string {
	m := hmac.New(sha256.New, s.recovery)
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(normaliseRecoveryCode(input)))
	return recoveryPrefix + hex.EncodeToString(m.Sum(nil))
}
