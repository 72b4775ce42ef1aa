// Package assertion signs the identity assertions jit_auth sends to
// upstreams (a short-lived JWT an upstream can verify instead of trusting
// plain headers) and keeps the signing keys: a ring per algorithm, with
// the next key published before it signs and the previous one published
// after, so that every instance sharing the ring and every upstream
// caching the JWKS agree across a rotation.
//
// The package knows nothing of Caddy: the ring is marshalled to bytes
// that the caller keeps in Caddy's storage.
package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms a ring can sign with.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Supported reports whether alg is an algorithm a ring signs with.
func Supported(alg string) bool { return alg == ES256 || alg == EdDSA }

// Key is one signing key of a ring. It signs from NotBefore until the
// next key's NotBefore, and is published from when it is made until one
// rotation period after it stopped signing.
type Key struct {
	ID        string
	Algorithm string
	NotBefore time.Time

	private crypto.Signer
	signer  jose.Signer
}

// Ring is the keys of one algorithm, ordered by NotBefore.
type Ring struct {
	Algorithm string
	Keys      []*Key
}

// newKey makes a key of alg that signs from notBefore.
func newKey(alg string, notBefore time.Time) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("assertion: algorithm %q is not supported; use ES256 or EdDSA", alg)
	}
	if err != nil {
		return nil, err
	}
	return withSigner(&Key{Algorithm: alg, NotBefore: notBefore.UTC().Truncate(time.Second), private: priv})
}

// withSigner derives the key's ID (the RFC 7638 thumbprint of its public
// key, so it names the key itself) and prepares its signer.
func withSigner(k *Key) (*Key, error) {
	pub := jose.JSONWebKey{Key: k.private.Public(), Algorithm: k.Algorithm, Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k.ID = base64.RawURLEncoding.EncodeToString(tp)
	k.signer, err = jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: k.private, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Public is the key's public half as a JWK, with its kid, alg and use.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.private.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"}
}

// Sign signs claims as a compact JWS with header typ JWT and this
// key's kid.
func (k *Key) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Signing returns the key that signs at now: the one with the latest
// NotBefore not after now; nil when none has started.
func (r *Ring) Signing(now time.Time) *Key {
	if r == nil {
		return nil
	}
	for i := len(r.Keys) - 1; i >= 0; i-- {
		if !r.Keys[i].NotBefore.After(now) {
			return r.Keys[i]
		}
	}
	return nil
}

// Rotate returns the ring as it should be at now with keys rotated every
// period, and whether that differs from r (then the caller stores it):
// a key signing now, the next one already published (it starts one
// period after the current one), and no key that stopped signing more
// than a period ago. Published a period ahead, a new key reaches every
// instance that rereads the ring and every upstream that rereads the
// JWKS well within that period, before anything is signed with it.
func Rotate(r *Ring, alg string, now time.Time, period time.Duration) (*Ring, bool, error) {
	if period <= 0 {
		return nil, false, errors.New("assertion: the rotation period must be positive")
	}
	out := &Ring{Algorithm: alg}
	if r != nil && r.Algorithm == alg {
		out.Keys = slices.Clone(r.Keys)
	}
	changed := false
	current := out.Signing(now)
	if current == nil {
		k, err := newKey(alg, now)
		if err != nil {
			return nil, false, err
		}
		// Keys that would start later were made for a ring that lost
		// its current key; the new one starts now and they go.
		out.Keys = []*Key{k}
		current, changed = k, true
	}
	if out.Keys[len(out.Keys)-1] == current {
		start := current.NotBefore.Add(period)
		if !start.After(now) {
			start = now.Add(period)
		}
		k, err := newKey(alg, start)
		if err != nil {
			return nil, false, err
		}
		out.Keys = append(out.Keys, k)
		changed = true
	}
	// A key retires when its successor starts; it stays published a
	// period longer, for assertions it signed just before.
	kept := out.Keys[:0]
	for i, k := range out.Keys {
		if i+1 < len(out.Keys) && out.Keys[i+1].NotBefore.Add(period).Before(now) {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	out.Keys = kept
	return out, changed, nil
}

// JWKS is the public keys of rings as a JSON Web Key Set.
func JWKS(rings ...*Ring) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, r := range rings {
		if r == nil {
			continue
		}
		for _, k := range r.Keys {
			set.Keys = append(set.Keys, k.Public())
		}
	}
	return set
}

// storedRing is a ring as kept in storage: private keys as PKCS #8.
type storedRing struct {
	Algorithm string      `json:"algorithm"`
	Keys      []storedKey `json:"keys"`
}

type storedKey struct {
	NotBefore time.Time `json:"not_before"`
	PKCS8     []byte    `json:"pkcs8"`
}

// Marshal encodes the ring, private keys included, for storage.
func (r *Ring) Marshal() ([]byte, error) {
	sr := storedRing{Algorithm: r.Algorithm}
	for _, k := range r.Keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			return nil, err
		}
		sr.Keys = append(sr.Keys, storedKey{NotBefore: k.NotBefore, PKCS8: der})
	}
	return json.Marshal(sr)
}

// Unmarshal decodes a ring Marshal encoded. It refuses a ring of
// another algorithm than alg, or a key that is not of that algorithm.
func Unmarshal(data []byte, alg string) (*Ring, error) {
	var sr storedRing
	if err := json.Unmarshal(data, &sr); err != nil {
		return nil, fmt.Errorf("assertion keys: %v", err)
	}
	if sr.Algorithm != alg {
		return nil, fmt.Errorf("assertion keys: the stored ring is for %q, not %q", sr.Algorithm, alg)
	}
	r := &Ring{Algorithm: alg}
	for i, sk := range sr.Keys {
		priv, err := x509.ParsePKCS8PrivateKey(sk.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("assertion keys: key %d: %v", i, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok || !fits(alg, signer) {
			return nil, fmt.Errorf("assertion keys: key %d is not an %s key", i, alg)
		}
		k, err := withSigner(&Key{Algorithm: alg, NotBefore: sk.NotBefore, private: signer})
		if err != nil {
			return nil, err
		}
		r.Keys = append(r.Keys, k)
	}
	slices.SortStableFunc(r.Keys, func(a, b *Key) int { return a.NotBefore.Compare(b.NotBefore) })
	return r, nil
}

func fits(alg string, k crypto.Signer) bool {
	switch key := k.(type) {
	case *ecdsa.PrivateKey:
		return alg == ES256 && key.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		return alg == EdDSA
	}
	return false
}
