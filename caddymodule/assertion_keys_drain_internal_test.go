package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/assertion"
)

// storeRing keeps r in storage as an instance signing with it would.
func storeRing(t *testing.T, storage certmagic.Storage, r *assertion.Ring) {
	t.Helper()
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Store(context.Background(), assertionRingKey(r.Algorithm), data); err != nil {
		t.Fatal(err)
	}
}

func servesJWKS(k *assertionKeys) int {
	w := httptest.NewRecorder()
	serveJWKS(&Handler{app: &App{assertionKeys: k}}, w, httptest.NewRequest(http.MethodGet, "/.jitauth/jwks.json", nil))
	return w.Code
}

// A configuration that signs with nothing publishes a stored ring until
// its assertions can have expired, then no longer: a ring last rotated
// hours ago (assertions of a minute, a period of an hour) is not in the
// JWKS, one rotated just now is, and once none is left the JWKS is a 404
// as before.
func TestDrainedRingLeavesTheJWKS(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	now := time.Now()
	old, _, err := assertion.Rotate(nil, assertion.ES256, now.Add(-3*time.Hour), time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, err := assertion.Rotate(nil, assertion.EdDSA, now, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	storeRing(t, storage, old)
	storeRing(t, storage, fresh)

	k := newAssertionKeys(storage, time.Hour, zap.NewNop())
	if err := k.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.stopFollowing)
	rings := k.drainingAt(time.Now())
	if len(rings) != 1 || rings[0].Algorithm != assertion.EdDSA {
		t.Fatalf("published draining rings %v; want the EdDSA ring rotated just now, not the ES256 one last rotated 3h ago", algorithmsOf(rings))
	}
	if code := servesJWKS(k); code != http.StatusOK {
		t.Fatalf("with a ring still draining the JWKS answers %d", code)
	}
	until := fresh.PublishUntil(time.Hour)
	if rings := k.drainingAt(until); len(rings) != 0 {
		t.Fatalf("at its PublishUntil, the EdDSA ring is still published (%v)", algorithmsOf(rings))
	}

	only := &certmagic.FileStorage{Path: t.TempDir()}
	storeRing(t, only, old)
	gone := newAssertionKeys(only, time.Hour, zap.NewNop())
	if err := gone.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gone.stopFollowing)
	if code := servesJWKS(gone); code != http.StatusNotFound {
		t.Fatalf("with only a drained ring in storage the JWKS answers %d, want 404", code)
	}
}

func algorithmsOf(rings []*assertion.Ring) []string {
	var algs []string
	for _, r := range rings {
		algs = append(algs, r.Algorithm)
	}
	return algs
}

// An instance that no longer signs with a ring another instance still
// signs with follows that instance's rotations: each new key is in its
// JWKS too, within its reread interval, so an upstream may fetch the set
// from either.
func TestDrainingRingFollowsAnInstanceThatStillSignsWithIt(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	const period = 2 * time.Second
	signs, drains := newAssertionKeys(storage, period, zap.NewNop()), newAssertionKeys(storage, period, zap.NewNop())
	ring := signs.need(assertion.ES256, time.Second)
	if err := signs.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(signs.stopFollowing)
	if err := drains.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drains.stopFollowing)

	published := func(id string) bool {
		return slices.ContainsFunc(drains.drainingAt(time.Now()), func(r *assertion.Ring) bool {
			return slices.ContainsFunc(r.Keys, func(k *assertion.Key) bool { return k.ID == id })
		})
	}
	first := ring.Load().Keys[len(ring.Load().Keys)-1].ID
	if !published(first) {
		t.Fatal("the ring another instance signs with is not published by one that does not")
	}
	deadline := time.Now().Add(4 * period)
	for {
		newest := ring.Load().Keys[len(ring.Load().Keys)-1].ID
		if newest != first && published(newest) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key the signing instance added within %s is not published by the other one", 4*period)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
