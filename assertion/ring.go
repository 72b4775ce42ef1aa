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

// Algorithms is every algorithm a ring signs with, so every ring that
// storage can hold.
func Algorithms() []string { return []string{ES256, EdDSA} }

// Key is one signing key of a ring. It is published from Published,
// signs from NotBefore until the next key's NotBefore, and stays
// published a period (its Lifetime if that is longer, and the clock skew
// allowed) after it stopped signing. Every key but a new ring's first is
// published at least a period before it signs.
type Key struct {
	ID        string
	Algorithm string
	// NotBefore is when the key starts signing.
	NotBefore time.Time
	// Published is when the key was added to the ring (and so to every
	// instance's JWKS once it reread the ring).
	Published time.Time
	// Lifetime is the longest assertion lifetime (whole seconds) that an
	// instance sharing the ring was configured with while the key could
	// sign: an assertion it signed may be valid that long after it
	// stopped, whatever the period and lifetime are now. Zero for a key
	// stored before lifetimes were kept.
	Lifetime time.Duration

	private crypto.Signer
	signer  jose.Signer
}

// Ring is the keys of one algorithm, ordered by NotBefore.
type Ring struct {
	Algorithm string
	Keys      []*Key
}

// newKey makes a key of alg, published at published, that signs from
// notBefore.
func newKey(alg string, published, notBefore time.Time) (*Key, error) {
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
	return withSigner(&Key{Algorithm: alg, NotBefore: toSecond(notBefore), Published: toSecond(published), private: priv})
}

// toSecond is t as stored: UTC, to the second.
func toSecond(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// with is a copy of k with other times; a ring another goroutine reads
// never sees a key change.
func (k *Key) with(published, notBefore time.Time) *Key {
	c := *k
	c.Published, c.NotBefore = toSecond(published), toSecond(notBefore)
	return &c
}

// withLifetime is a copy of k with another Lifetime, as with.
func (k *Key) withLifetime(lifetime time.Duration) *Key {
	c := *k
	c.Lifetime = lifetime
	return &c
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
// NotBefore not after now. When none has started, it is the earliest
// one: the ring was made by an instance whose clock is ahead of this
// one's (or this clock was stepped back), that instance signs with it,
// and it is published. Nil only for an empty ring.
func (r *Ring) Signing(now time.Time) *Key {
	if r == nil || len(r.Keys) == 0 {
		return nil
	}
	for i := len(r.Keys) - 1; i >= 0; i-- {
		if !r.Keys[i].NotBefore.After(now) {
			return r.Keys[i]
		}
	}
	return r.Keys[0]
}

// maxClockSkew is how far apart the clocks of instances sharing a ring
// may be without one unpublishing a key that another still signs with
// or that signed an assertion still valid.
const maxClockSkew = time.Minute

// MaxRereadInterval is the longest an instance that signs with a ring
// may go between two rereads of it (each of which calls Rotate): a key
// that starts signing gets a successor in storage at most that long
// after, whatever the rotation period. See PublishUntil.
const MaxRereadInterval = time.Minute

// Rotate returns the ring as it should be at now with keys rotated every
// period, for assertions valid for lifetime, and whether that differs
// from r (then the caller stores it): a key signing now, the next one
// already published (it starts a period after it was published and after
// the current one started), and no key that stopped signing more than a
// period ago, or than the longest lifetime it signed with if that is
// longer (and the clock skew allowed). Published a period ahead, a new
// key reaches every instance that rereads the ring and every upstream
// that rereads the JWKS well within that period, before anything is
// signed with it. When the period was shortened, the next key is brought
// forward (see advance), so the new period counts from the current key's
// start.
//
// The caller passes the longest lifetime it signs with, and rereads the
// ring (calling Rotate) more often than a period: the keys that can sign
// from now on record it (see raiseLifetime), so that a reload or a
// sibling instance with a shorter period and lifetime does not unpublish
// a key while an assertion it signed is valid.
//
// A ring is shared by instances whose clocks disagree, so Rotate never
// drops a key because of the clock: one that finds no key started by now
// signs with the earliest (see Signing), and a retired key stays
// published a little longer than a period or its lifetime (maxClockSkew,
// or that if shorter).
func Rotate(r *Ring, alg string, now time.Time, period, lifetime time.Duration) (*Ring, bool, error) {
	if period <= 0 {
		return nil, false, errors.New("assertion: the rotation period must be positive")
	}
	if lifetime <= 0 {
		return nil, false, errors.New("assertion: the assertion lifetime must be positive")
	}
	out := &Ring{Algorithm: alg}
	if r != nil && r.Algorithm == alg {
		out.Keys = slices.Clone(r.Keys)
	}
	changed := out.datePublished(now)
	if len(out.Keys) == 0 {
		k, err := newKey(alg, now, now)
		if err != nil {
			return nil, false, err
		}
		out.Keys, changed = []*Key{k}, true
	}
	if out.advance(now, period) {
		changed = true
	}
	if current := out.Signing(now); out.Keys[len(out.Keys)-1] == current {
		k, err := newKey(alg, now, latest(current.NotBefore, now).Add(period))
		if err != nil {
			return nil, false, err
		}
		out.Keys, changed = append(out.Keys, k), true
	}
	if out.raiseLifetime(now, lifetime) {
		changed = true
	}
	if out.retire(now, period) {
		changed = true
	}
	return out, changed, nil
}

// datePublished gives each key of a ring stored before publication
// times were kept the latest time it can have been published: now, or
// when it started signing if that is earlier.
func (r *Ring) datePublished(now time.Time) bool {
	changed := false
	for i, k := range r.Keys {
		if k.Published.IsZero() {
			r.Keys[i] = k.with(earliest(now, k.NotBefore), k.NotBefore)
			changed = true
		}
	}
	return changed
}

// advance brings forward the start of the keys that have not started
// yet when the period is shorter than when they were made: a key starts
// a period after the one before it and a period after it was published,
// so the promise that it is published a period ahead holds; and not
// before now, so the key it replaces stops signing now at the earliest
// and stays published a period from then.
func (r *Ring) advance(now time.Time, period time.Duration) bool {
	changed := false
	for i := slices.Index(r.Keys, r.Signing(now)) + 1; i < len(r.Keys); i++ {
		k := r.Keys[i]
		start := latest(r.Keys[i-1].NotBefore.Add(period), k.Published.Add(period), now)
		if toSecond(start).Before(k.NotBefore) {
			r.Keys[i] = k.with(k.Published, start)
			changed = true
		}
	}
	return changed
}

// raiseLifetime records lifetime (rounded up to a second, as a stored
// key keeps it, and at most maxLifetime) on the key signing at now and
// on every later one, where it is longer than the one they have. A later
// key counts too: an instance moves on to it without rereading the ring,
// and may stop (a reload, a restart) before its next reread could record
// anything. Never lowered, so instances with different lifetimes agree
// at once on the longest, and each writes the ring only when it grows.
func (r *Ring) raiseLifetime(now time.Time, lifetime time.Duration) bool {
	lifetime = min(lifetime, maxLifetime)
	lifetime = (lifetime + time.Second - 1).Truncate(time.Second)
	changed := false
	for i := slices.Index(r.Keys, r.Signing(now)); i < len(r.Keys); i++ {
		if k := r.Keys[i]; k.Lifetime < lifetime {
			r.Keys[i] = k.withLifetime(lifetime)
			changed = true
		}
	}
	return changed
}

// retire drops the keys whose successor started more than a period
// ago, or than the key's Lifetime if that is longer (an assertion it
// signed just before is valid until then, though a reload shortened both
// since), plus the clock skew allowed: an instance whose clock is ahead
// does not unpublish a key that one behind it signed with just before.
// Keys go in order: one kept for a long lifetime keeps those after it,
// so that each key's successor, and so when it stopped signing, stays in
// the ring as long as the key does.
func (r *Ring) retire(now time.Time, period time.Duration) bool {
	n := 0
	for n+1 < len(r.Keys) && r.Keys[n].retired(r.Keys[n+1].NotBefore, now, period) {
		n++
	}
	r.Keys = r.Keys[n:]
	return n > 0
}

// retired reports whether the key, which stopped signing at stopped, can
// be unpublished at now.
func (k *Key) retired(stopped, now time.Time, period time.Duration) bool {
	base := max(period, k.Lifetime)
	return stopped.Add(base + min(maxClockSkew, base)).Before(now)
}

// PublishUntil is when every key of a ring that is not rotated here (no
// application of this configuration signs with its algorithm any more)
// can leave the JWKS, as far as the stored ring tells: other instances
// sharing it may still sign with it, or may have stopped at a time
// nothing recorded, with periods and lifetimes of their own.
//
// An instance that signs with a ring rereads it every MaxRereadInterval
// at most, and then adds a successor to a newest key that has started
// (see Rotate), whatever its period. So no assertion was signed with
// the ring later than about MaxRereadInterval after the newest key's
// NotBefore, by the signer's clock, which also wrote the assertion's
// exp; a reread in progress (a few seconds) is within the clock skew
// allowed. That assertion is valid for at most the longest Lifetime the
// keys record, since an instance records its lifetime on a key before
// it can sign with it (see raiseLifetime); a key stored before
// lifetimes were kept counts period instead, the longest a lifetime
// could be under it. Then maxClockSkew, for a verifier whose clock is
// behind this one's.
//
// A ring another instance still signs with keeps getting a newer key, so
// this moves on at each reread and the keys stay published, as they
// must: an upstream may fetch the JWKS from any instance. The whole ring
// goes at once: a key retire would drop sooner is kept a little longer,
// never a key too short. Zero for an empty ring.
func (r *Ring) PublishUntil(period time.Duration) time.Time {
	if r == nil || len(r.Keys) == 0 {
		return time.Time{}
	}
	lifetime := time.Duration(0)
	for _, k := range r.Keys {
		if k.Lifetime > 0 {
			lifetime = max(lifetime, k.Lifetime)
		} else {
			lifetime = max(lifetime, min(period, maxLifetime))
		}
	}
	newest := r.Keys[len(r.Keys)-1].NotBefore
	return newest.Add(MaxRereadInterval + lifetime + maxClockSkew)
}

func latest(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}

func earliest(t, u time.Time) time.Time {
	if u.Before(t) {
		return u
	}
	return t
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
	Published time.Time `json:"published,omitzero"`
	// Lifetime is Key.Lifetime in seconds; absent in rings stored
	// before it was kept.
	Lifetime int64  `json:"lifetime_s,omitzero"`
	PKCS8    []byte `json:"pkcs8"`
}

// maxLifetime bounds the lifetime a key records: a century is forever
// for a key ring, and keeps the sums of retire within a time.Duration.
const maxLifetime = 100 * 365 * 24 * time.Hour

// Marshal encodes the ring, private keys included, for storage.
func (r *Ring) Marshal() ([]byte, error) {
	sr := storedRing{Algorithm: r.Algorithm}
	for _, k := range r.Keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			return nil, err
		}
		sr.Keys = append(sr.Keys, storedKey{NotBefore: k.NotBefore, Published: k.Published,
			Lifetime: int64(k.Lifetime / time.Second), PKCS8: der})
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
		if sk.Lifetime < 0 || sk.Lifetime > int64(maxLifetime/time.Second) {
			return nil, fmt.Errorf("assertion keys: key %d has a lifetime of %d seconds, out of range", i, sk.Lifetime)
		}
		k, err := withSigner(&Key{Algorithm: alg, NotBefore: sk.NotBefore, Published: sk.Published,
			Lifetime: time.Duration(sk.Lifetime) * time.Second, private: signer})
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
