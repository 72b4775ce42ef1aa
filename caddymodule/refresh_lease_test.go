package caddymodule

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// slowRotatingProvider redeems each refresh token once (rotation) and
// takes delay to answer, as a loaded provider does.
type slowRotatingProvider struct {
	mu    sync.Mutex
	valid map[string]bool
	delay time.Duration
}

func (p *slowRotatingProvider) Refresh(ctx context.Context, token string) (provisioner.Claims, string, time.Time, error) {
	p.mu.Lock()
	ok := p.valid[token]
	delete(p.valid, token)
	next := token + "'"
	if ok {
		p.valid[next] = true
	}
	p.mu.Unlock()
	if !ok {
		return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: invalid_grant (token already used)", connector.ErrRejected)
	}
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
	}
	return provisioner.Claims{Issuer: "https://idp.example", Subject: "ada", Email: "ada@example.com"}, next, time.Now().Add(time.Hour), nil
}

// A pass redeems up to 100 tokens one after the other, each allowed 10 s
// at the provider, so it can outlive a lease taken once: another
// instance would then take the lease and redeem the tokens the first is
// still working through, and a rotating provider refuses the second
// redemption, which ends that session. The lease is renewed before each
// token, so the second instance finds it held.
func TestRefreshPassRenewsItsLeaseBeforeEachToken(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 18 s")
	}
	provider := &slowRotatingProvider{valid: map[string]bool{}, delay: 6 * time.Second}
	rf, a, store := refreshSetup(t, &rotatingProvider{})
	rf.conns["corp"].refresher = provider
	rf.tick = time.Second // lease: max(3 s, 15 s)
	a.admin = store.Store
	a.sessions.revoked.markRead()
	ctx := t.Context()
	// Three sessions of ada due now (s1 from the set-up, s2, s3).
	due, err := store.DueRefreshTokens(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("set-up: %v %d", err, len(due))
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		rt := due[0]
		rt.SessionID = id
		env := refreshEnvelope{Token: id + "-rt", IssuedAt: time.Now().Add(-time.Minute).Unix(), Subject: "ada"}
		if rt.Sealed, err = a.sealRefreshToken(id, env); err != nil {
			t.Fatal(err)
		}
		rt.RefreshAt = time.Now().Add(-time.Minute)
		if err := store.PutRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
		provider.valid[id+"-rt"] = true
	}

	done := make(chan struct{})
	go func() { defer close(done); rf.pass(ctx) }() // instance A
	// The three take 18 s: the lease, taken once, would have expired
	// at 15 s, while s3 is at the provider.
	time.Sleep(16 * time.Second)
	// Instance B, sharing the store, finds the lease expired.
	b := *rf
	b.holder = "instance-b"
	b.pass(ctx)
	<-done

	for _, id := range []string{"s1", "s2", "s3"} {
		if a.sessions.revoked.has(id) {
			t.Errorf("session %s was ended: a second instance took the expired lease while the first was still in its pass and redeemed the token again, which the rotating provider refused", id)
		}
	}
}
