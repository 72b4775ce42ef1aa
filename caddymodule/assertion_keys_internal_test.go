package caddymodule

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/assertion"
)

// Two instances on one storage, starting at once, sign with the same
// key and publish the same set; one that rotates is followed by the
// other within its reread interval.
func TestAssertionKeysSharedByInstances(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	const period = 2 * time.Second
	a, b := newAssertionKeys(storage, period, zap.NewNop()), newAssertionKeys(storage, period, zap.NewNop())
	ra, rb := a.need("ES256", time.Second), b.need("ES256", time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, k := range []*assertionKeys{a, b} {
		wg.Go(func() { errs[i] = k.start() })
	}
	wg.Wait()
	t.Cleanup(func() { a.stopFollowing(); b.stopFollowing() })
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	same := func() bool {
		x, y := ra.Load(), rb.Load()
		if len(x.Keys) != len(y.Keys) {
			return false
		}
		for i := range x.Keys {
			if x.Keys[i].ID != y.Keys[i].ID {
				return false
			}
		}
		return x.Signing(time.Now()).ID == y.Signing(time.Now()).ID
	}
	if !same() {
		t.Fatal("two instances starting at once made different rings")
	}
	first := ra.Load().Signing(time.Now()).ID
	deadline := time.Now().Add(4 * period)
	for ra.Load().Signing(time.Now()).ID == first || !same() {
		if time.Now().After(deadline) {
			t.Fatalf("no common rotation within %s", 4*period)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The retired key is still published by both.
	found := 0
	for _, r := range []*assertionKeys{a, b} {
		for _, k := range r.ring("ES256").Load().Keys {
			if k.ID == first {
				found++
			}
		}
	}
	if found != 2 {
		t.Fatal("the retired key left the published set at once")
	}
}

// A reload with a shorter assertion_key_rotation brings the stored next
// key forward: the reloaded instance signs with it once the new period
// has passed since the current key started, an instance still on the old
// configuration (rereading once a minute) signs with it after its next
// reread, and both keep publishing the key signed with until then.
func TestShortenedAssertionKeyRotationReachesEveryInstance(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	week := 168 * time.Hour
	a, b := newAssertionKeys(storage, week, zap.NewNop()), newAssertionKeys(storage, week, zap.NewNop())
	ra, rb := a.need("ES256", time.Second), b.need("ES256", time.Second)
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stopFollowing)
	ring := ra.Load()
	first, next := ring.Signing(time.Now()).ID, ring.Keys[len(ring.Keys)-1].ID
	a.stopFollowing()

	const period = 2 * time.Second
	reloaded := newAssertionKeys(storage, period, zap.NewNop())
	rr := reloaded.need("ES256", time.Second)
	if err := reloaded.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reloaded.stopFollowing)
	deadline := time.Now().Add(3 * period)
	for rr.Load().Signing(time.Now()).ID != next {
		if time.Now().After(deadline) {
			t.Fatalf("with assertion_key_rotation %s the next key did not sign within %s (a week before the reload)", period, 3*period)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := b.refresh(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	if got := rb.Load().Signing(time.Now()).ID; got != next {
		t.Fatal("the instance on the old configuration does not sign with the key brought forward after its reread")
	}
	for name, r := range map[string]*atomic.Pointer[assertion.Ring]{"reloaded": rr, "old configuration": rb} {
		if !slices.ContainsFunc(r.Load().Keys, func(k *assertion.Key) bool { return k.ID == first }) {
			t.Errorf("the %s instance no longer publishes the key that signed until the rotation", name)
		}
	}
}
