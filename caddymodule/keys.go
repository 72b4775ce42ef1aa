package caddymodule

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jitauth/caddy-jitauth/secret"
	"io/fs"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/securecookie"
)

// KeyPair is one pair of cookie keys: an HMAC key that authenticates
// the cookie and an AES key that encrypts it. Both are base64 (standard
// or URL alphabet, padded or not). Give them as placeholders that Caddy
// resolves when it loads the config, {env.JIT_HASH_KEY} or
// {file./run/secrets/jit_hash_key}, so the keys are never part of the
// config; an unset variable or unreadable file stops the config from
// loading.
type KeyPair struct {
	// HashKey authenticates cookies (HMAC-SHA256); 32 or 64 random bytes.
	HashKey string `json:"hash_key,omitempty"`
	// BlockKey encrypts cookies (AES-256); exactly 32 random bytes.
	BlockKey string `json:"block_key,omitempty"`
}

// storageKeysPath is where generated keys live in Caddy's storage, so
// restarts and instances that share storage agree on them.
const storageKeysPath = "jit_auth/cookie_keys.json"

// decodeKey accepts any of the base64 alphabets an operator might paste.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// rawKeyPair is a decoded KeyPair.
type rawKeyPair struct{ hash, block []byte }

func (kp KeyPair) decode() (rawKeyPair, error) {
	hashKey, err := secret.Resolve("hash_key", kp.HashKey)
	if err != nil {
		return rawKeyPair{}, err
	}
	blockKey, err := secret.Resolve("block_key", kp.BlockKey)
	if err != nil {
		return rawKeyPair{}, err
	}
	h, err := decodeKey(hashKey)
	if err != nil {
		return rawKeyPair{}, fmt.Errorf("hash_key: %v", err)
	}
	if len(h) != 32 && len(h) != 64 {
		return rawKeyPair{}, fmt.Errorf("hash_key must be 32 or 64 bytes, got %d (generate one with: openssl rand -base64 64)", len(h))
	}
	b, err := decodeKey(blockKey)
	if err != nil {
		return rawKeyPair{}, fmt.Errorf("block_key: %v", err)
	}
	if len(b) != 32 {
		return rawKeyPair{}, fmt.Errorf("block_key must be 32 bytes (AES-256), got %d (generate one with: openssl rand -base64 32)", len(b))
	}
	return rawKeyPair{hash: h, block: b}, nil
}

// loadKeys returns the configured key pairs, or else the pair kept in
// Caddy's storage. When storage has none yet, it returns the pair the
// running configuration keeps in its storage (running: a reload that
// moved Caddy's storage), else a new pair, and, in unsaved, what
// saveKeys must store: Provision only reads, because caddy validate and
// a configuration that fails to load provision too and must leave
// nothing behind; App.Start saves the pair. stored is the pair's
// storage form, nil for configured keys.
func loadKeys(ctx caddy.Context, configured []KeyPair, running []byte) (keys []rawKeyPair, stored, unsaved []byte, err error) {
	if len(configured) > 0 {
		keys, err := decodeKeyPairs(configured)
		return keys, nil, nil, err
	}
	storage := ctx.Storage()
	data, err := storage.Load(ctx, storageKeysPath)
	if err == nil {
		keys, err := decodeStoredKeys(data)
		return keys, data, nil, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("loading cookie keys from storage: %v", err)
	}
	// A new pair would end every live session and make every enrolled
	// second factor unreadable (its secret is sealed with a key derived
	// from the pair): the running one goes on, into this storage.
	if running != nil {
		if keys, err := decodeStoredKeys(running); err == nil {
			return keys, running, running, nil
		}
	}
	kp := KeyPair{
		HashKey:  base64.StdEncoding.EncodeToString(randomBytes(64)),
		BlockKey: base64.StdEncoding.EncodeToString(randomBytes(32)),
	}
	unsaved, _ = json.Marshal([]KeyPair{kp})
	raw, _ := kp.decode()
	return []rawKeyPair{raw}, unsaved, unsaved, nil
}

// keyStorage is the part of Caddy's storage (certmagic.Storage) that
// saveKeys uses.
type keyStorage interface {
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
}

// saveKeys stores the pair loadKeys generated, under a storage lock so
// that instances starting at once against one storage agree. If another
// instance saved a pair in the meantime, this start fails rather than
// seal cookies the others cannot open; the next start reads that pair.
func saveKeys(ctx context.Context, storage keyStorage, unsaved []byte) error {
	if err := storage.Lock(ctx, storageKeysPath); err != nil {
		return fmt.Errorf("locking cookie keys in storage: %v", err)
	}
	defer func() { _ = storage.Unlock(context.WithoutCancel(ctx), storageKeysPath) }()
	data, err := storage.Load(ctx, storageKeysPath)
	switch {
	case err == nil && bytes.Equal(data, unsaved):
		return nil
	case err == nil:
		return fmt.Errorf("another instance sharing Caddy's storage saved cookie keys at %s while this one started; start again to use them", storageKeysPath)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("loading cookie keys from storage: %v", err)
	}
	if err := storage.Store(ctx, storageKeysPath, unsaved); err != nil {
		return fmt.Errorf("saving generated cookie keys to storage: %v", err)
	}
	return nil
}

func decodeKeyPairs(pairs []KeyPair) ([]rawKeyPair, error) {
	out := make([]rawKeyPair, 0, len(pairs))
	for i, kp := range pairs {
		raw, err := kp.decode()
		if err != nil {
			return nil, fmt.Errorf("cookie key pair %d: %v", i+1, err)
		}
		out = append(out, raw)
	}
	return out, nil
}

func decodeStoredKeys(data []byte) ([]rawKeyPair, error) {
	var stored []KeyPair
	if err := json.Unmarshal(data, &stored); err != nil || len(stored) == 0 {
		return nil, fmt.Errorf("cookie keys in storage at %s are corrupt; remove the file to generate new ones (this logs everyone out)", storageKeysPath)
	}
	return decodeKeyPairs(stored)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newCodecs builds securecookie codecs from key pairs; the first pair
// seals new cookies, every pair opens old ones (key rotation).
func newCodecs(keys []rawKeyPair, maxAgeSeconds int) []securecookie.Codec {
	codecs := make([]securecookie.Codec, 0, len(keys))
	for _, k := range keys {
		sc := securecookie.New(k.hash, k.block)
		sc.SetSerializer(compactJSON{})
		sc.MaxAge(maxAgeSeconds)
		sc.MaxLength(maxSessionLength) // one cookie: cookieSeal bounds it to maxCookieLength
		codecs = append(codecs, sc)
	}
	return codecs
}

// maxCookieLength bounds a sealed cookie; larger ones are refused before
// any decoding work. Browsers keep at most about 4 KiB per cookie anyway.
const maxCookieLength = 4000
