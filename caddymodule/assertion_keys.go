package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/assertion"
)

// defaultAssertionKeyRotation applies when App.AssertionKeyRotation is
// unset.
const defaultAssertionKeyRotation = 7 * 24 * time.Hour

// assertionKeys holds the signing key rings of this configuration, one
// per algorithm its applications sign with. The rings live in Caddy's
// storage, so every instance sharing it signs with the same keys and
// publishes the same JWKS; each instance rereads them often enough that
// a key published a rotation period ahead reaches it long before it
// signs (see assertion.Rotate). Each reread also records on the keys
// that can sign the longest assertion lifetime of this configuration, so
// that no configuration after it (a reload, a restart, another instance)
// unpublishes a key while an assertion it signed here is valid.
//
// The rings in storage of the other algorithms (a reload changed an
// application's algorithm or removed its assertion; another instance
// may still sign with them) are draining: read and published, never
// rotated, until the assertions they can have signed have expired.
type assertionKeys struct {
	storage keyStorage
	period  time.Duration
	logger  *zap.Logger

	mu        sync.Mutex
	rings     map[string]*atomic.Pointer[assertion.Ring] // by algorithm
	lifetimes map[string]time.Duration                   // the longest, by algorithm
	stop      context.CancelFunc
	done      chan struct{}

	// draining is the rings of the algorithms this configuration does
	// not sign with, as last read; see readDraining.
	draining atomic.Pointer[[]*assertion.Ring]
}

func newAssertionKeys(storage keyStorage, period time.Duration, logger *zap.Logger) *assertionKeys {
	return &assertionKeys{storage: storage, period: period, logger: logger,
		rings: map[string]*atomic.Pointer[assertion.Ring]{}, lifetimes: map[string]time.Duration{}}
}

// need registers an algorithm an application signs with, and the
// lifetime of its assertions; it returns the ring's holder, filled once
// the configuration starts.
func (k *assertionKeys) need(alg string, lifetime time.Duration) *atomic.Pointer[assertion.Ring] {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lifetimes[alg] = max(k.lifetimes[alg], lifetime)
	p := k.rings[alg]
	if p == nil {
		p = new(atomic.Pointer[assertion.Ring])
		k.rings[alg] = p
	}
	return p
}

// ring returns the holder of the ring of alg, which need registered.
func (k *assertionKeys) ring(alg string) *atomic.Pointer[assertion.Ring] {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rings[alg]
}

// lifetime is the longest lifetime of the assertions signed with alg.
func (k *assertionKeys) lifetime(alg string) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lifetimes[alg]
}

func (k *assertionKeys) algorithms() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return sortedKeys(k.rings)
}

// unneeded is the algorithms a ring can have that this configuration
// does not sign with.
func (k *assertionKeys) unneeded() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var algs []string
	for _, alg := range assertion.Algorithms() {
		if k.rings[alg] == nil {
			algs = append(algs, alg)
		}
	}
	return algs
}

// start reads (or makes) every needed ring and reads the draining ones,
// then keeps them current in the background until stop.
func (k *assertionKeys) start() error {
	algs := k.algorithms()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	for _, alg := range algs {
		if err := k.refresh(ctx, alg); err != nil {
			return fmt.Errorf("jit_auth assertion keys (%s) in Caddy's storage: %v", alg, err)
		}
	}
	k.readDraining(ctx)
	if len(algs) == 0 && len(k.drainingAt(time.Now())) == 0 {
		return nil
	}
	bg, stop := context.WithCancel(context.Background())
	k.stop, k.done = stop, make(chan struct{})
	go k.follow(bg, algs)
	return nil
}

// adopt writes into k's storage the rings that from (the running
// configuration's) holds in memory and that storage lacks: a reload that
// moved Caddy's storage must not start a new ring, whose first key signs
// at once, while the keys that signed before go unpublished and the
// upstreams caching the JWKS do not have the new one. A ring the storage
// has (another instance's) is left as it is.
func (k *assertionKeys) adopt(ctx context.Context, from *assertionKeys) error {
	if from == nil || from == k {
		return nil
	}
	var rings []*assertion.Ring
	for _, alg := range from.algorithms() {
		if r := from.ring(alg).Load(); r != nil {
			rings = append(rings, r)
		}
	}
	if p := from.draining.Load(); p != nil {
		rings = append(rings, *p...)
	}
	for _, r := range rings {
		if err := k.storeIfAbsent(ctx, r); err != nil {
			return fmt.Errorf("jit_auth assertion keys (%s) in Caddy's storage: %v", r.Algorithm, err)
		}
	}
	return nil
}

// storeIfAbsent stores r under its algorithm's key unless the storage
// has a ring there, under the storage lock (see refresh).
func (k *assertionKeys) storeIfAbsent(ctx context.Context, r *assertion.Ring) error {
	key := assertionRingKey(r.Algorithm)
	if _, err := k.storage.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		return err // there (nil), or unreadable
	}
	if err := k.storage.Lock(ctx, key); err != nil {
		return fmt.Errorf("locking %s: %v", key, err)
	}
	defer func() { _ = k.storage.Unlock(context.WithoutCancel(ctx), key) }()
	if _, err := k.storage.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	return k.storage.Store(ctx, key, data)
}

// stopFollowing ends the background rereading.
func (k *assertionKeys) stopFollowing() {
	if k.stop != nil {
		k.stop()
		<-k.done
		k.stop = nil
	}
}

// rereadInterval is how often an instance rereads the rings: a small
// part of the rotation period, so a key published a period ahead is
// seen long before it signs, and never less often than a draining ring
// assumes (assertion.MaxRereadInterval).
func (k *assertionKeys) rereadInterval() time.Duration {
	return min(assertion.MaxRereadInterval, k.period/4)
}

func (k *assertionKeys) follow(ctx context.Context, algs []string) {
	defer close(k.done)
	t := time.NewTicker(k.rereadInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, alg := range algs {
			rctx, cancel := context.WithTimeout(ctx, storeTimeout)
			if err := k.refresh(rctx, alg); err != nil && ctx.Err() == nil {
				// The ring in memory keeps signing; its next key was
				// published a period ahead.
				k.logger.Warn("rereading the assertion signing keys from Caddy's storage failed; signing with the keys read before",
					zap.String("algorithm", alg), zap.Error(err))
			}
			cancel()
		}
		rctx, cancel := context.WithTimeout(ctx, storeTimeout)
		k.readDraining(rctx)
		cancel()
	}
}

func assertionRingKey(alg string) string { return "jit_auth/assertion_keys_" + alg + ".json" }

// refresh reads the ring of alg from storage and rotates it if due (or
// records a longer assertion lifetime on it), under the storage lock so
// that two instances never write different rings.
func (k *assertionKeys) refresh(ctx context.Context, alg string) error {
	key := assertionRingKey(alg)
	ring, err := k.read(ctx, alg)
	if err != nil {
		return err
	}
	now, lifetime := time.Now(), k.lifetime(alg)
	next, changed, err := assertion.Rotate(ring, alg, now, k.period, lifetime)
	if err != nil {
		return err
	}
	if changed {
		if err := k.storage.Lock(ctx, key); err != nil {
			return fmt.Errorf("locking %s: %v", key, err)
		}
		defer func() { _ = k.storage.Unlock(context.WithoutCancel(ctx), key) }()
		// Another instance may have rotated it meanwhile.
		if ring, err = k.read(ctx, alg); err != nil {
			return err
		}
		if next, changed, err = assertion.Rotate(ring, alg, now, k.period, lifetime); err != nil {
			return err
		}
		if changed {
			data, err := next.Marshal()
			if err != nil {
				return err
			}
			if err := k.storage.Store(ctx, key, data); err != nil {
				return fmt.Errorf("storing %s: %v", key, err)
			}
			k.logger.Info("assertion signing keys rotated", zap.String("algorithm", alg),
				zap.String("signing_kid", next.Signing(now).ID), zap.Int("published", len(next.Keys)))
		}
	}
	k.ring(alg).Store(next)
	return nil
}

// readDraining rereads the rings of the algorithms this configuration
// does not sign with. They are not rotated, which would give them a new
// key, only published (see drainingAt); another instance that signs
// with one rotates it, and the JWKS here follows. A ring that cannot be
// read stays as read before: it is logged, not an error, as a
// configuration that signs with nothing must not fail on it.
func (k *assertionKeys) readDraining(ctx context.Context) {
	var before []*assertion.Ring
	if p := k.draining.Load(); p != nil {
		before = *p
	}
	var rings []*assertion.Ring
	for _, alg := range k.unneeded() {
		r, err := k.read(ctx, alg)
		if err != nil {
			if ctx.Err() == nil {
				k.logger.Warn("reading assertion signing keys no longer signed with from Caddy's storage failed; publishing those read before, if any",
					zap.String("algorithm", alg), zap.Error(err))
			}
			if i := slices.IndexFunc(before, func(r *assertion.Ring) bool { return r.Algorithm == alg }); i >= 0 {
				r = before[i]
			}
		}
		if r != nil && len(r.Keys) > 0 {
			rings = append(rings, r)
		}
	}
	k.draining.Store(&rings)
}

// drainingAt is the draining rings whose keys can still have signed an
// assertion valid at now.
func (k *assertionKeys) drainingAt(now time.Time) []*assertion.Ring {
	p := k.draining.Load()
	if p == nil {
		return nil
	}
	var rings []*assertion.Ring
	for _, r := range *p {
		if now.Before(r.PublishUntil(k.period)) {
			rings = append(rings, r)
		}
	}
	return rings
}

func (k *assertionKeys) read(ctx context.Context, alg string) (*assertion.Ring, error) {
	data, err := k.storage.Load(ctx, assertionRingKey(alg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return assertion.Unmarshal(data, alg)
}

// serveJWKS publishes the public keys of every ring: the one signing,
// the next one and those before it that signed an assertion still valid;
// and the keys of the draining rings until their assertions expired.
func serveJWKS(h *Handler, w http.ResponseWriter, _ *http.Request) {
	k := h.app.assertionKeys
	var rings []*assertion.Ring
	for _, alg := range k.algorithms() {
		if r := k.ring(alg).Load(); r != nil {
			rings = append(rings, r)
		}
	}
	rings = append(rings, k.drainingAt(time.Now())...)
	if len(rings) == 0 {
		renderError(w, http.StatusNotFound, "Not found", "No application of this site sends signed assertions.", "")
		return
	}
	body, _ := json.Marshal(assertion.JWKS(rings...))
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// A verifier may cache the set for a small part of the rotation
	// period: the next key is in it a whole period before it signs.
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(min(5*time.Minute, k.period/4)/time.Second)))
	_, _ = w.Write(body)
}
