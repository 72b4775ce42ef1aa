package caddymodule

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// hangingRevocations is a store whose first read of the revocations
// does not answer until its context ends; later reads find none.
type hangingRevocations struct {
	sessionStore
	reads atomic.Int32
}

func (r *hangingRevocations) RevokedSessions(ctx context.Context, _ time.Time) ([]provisioner.RevokedSession, error) {
	if r.reads.Add(1) == 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}

// A read of the revocations that the store never answers must not stall
// their poll for good: no logout through another instance would reach
// this one again (S7), and, on a start, no session would ever be
// checked (each waits for the first read, then is answered 503). The
// read gives up after storeTimeout, and the next poll reads again.
func TestAHungStoreReadDoesNotStallTheRevocationPoll(t *testing.T) {
	st := newSharedState()
	st.cancel = func() {}           // the test runs the follower alone
	st.revocationRead = time.Second // a minute in use
	r := &hangingRevocations{}
	st.attach(&stateConfig{store: r, storage: &certmagic.FileStorage{Path: t.TempDir()}, logger: zap.NewNop(), poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.followRevocations(ctx)
	}()
	defer func() { cancel(); <-done }()

	if !st.revoked.awaitRead(t.Context(), st.revocationRead+5*time.Second) {
		t.Fatalf("the revocations not read %s after a read hung (reads: %d)", st.revocationRead+5*time.Second, r.reads.Load())
	}
}
