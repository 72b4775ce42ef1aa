package caddymodule

import (
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Two instances on one storage, starting at once, sign with the same
// key and publish the same set; one that rotates is followed by the
// other within its reread interval.
func TestAssertionKeysSharedByInstances(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	const period = 2 * time.Second
	a, b := newAssertionKeys(storage, period, zap.NewNop()), newAssertionKeys(storage, period, zap.NewNop())
	ra, rb := a.need("ES256"), b.need("ES256")
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
		for _, k := range r.need("ES256").Load().Keys {
			if k.ID == first {
				found++
			}
		}
	}
	if found != 2 {
		t.Fatal("the retired key left the published set at once")
	}
}
