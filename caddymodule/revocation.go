package caddymodule

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// revocations is the set of logged-out sessions that must be refused
// until they would have expired (S7). Logout adds to it locally and in
// the store; a background poll picks up logouts made through other
// instances that share the store. Checking it is a map lookup, so the
// authenticated path does no I/O.
type revocations struct {
	mu      sync.RWMutex
	revoked map[string]time.Time // session ID → expiry
}

func (r *revocations) isRevoked(id string) bool {
	r.mu.RLock()
	_, ok := r.revoked[id]
	r.mu.RUnlock()
	return ok
}

func (r *revocations) add(id string, expires time.Time) {
	r.mu.Lock()
	if r.revoked == nil {
		r.revoked = make(map[string]time.Time)
	}
	r.revoked[id] = expires
	r.mu.Unlock()
}

// prune forgets sessions that have expired anyway.
func (r *revocations) prune(now time.Time) {
	r.mu.Lock()
	for id, exp := range r.revoked {
		if !now.Before(exp) {
			delete(r.revoked, id)
		}
	}
	r.mu.Unlock()
}

// revocationPollInterval bounds how long a logout through one instance
// takes to reach the others.
const revocationPollInterval = 10 * time.Second

// sync loads revocations made at or after since, and returns the time
// to ask from next time.
func (r *revocations) sync(ctx context.Context, store provisioner.Store, since time.Time) (time.Time, error) {
	now := time.Now()
	list, err := store.RevokedSessions(ctx, since)
	if err != nil {
		return since, err
	}
	for _, s := range list {
		r.add(s.ID, s.ExpiresAt)
	}
	r.prune(now)
	// Overlap polls a little so a revocation committed while we read is
	// not missed.
	return now.Add(-revocationPollInterval), nil
}

// poll keeps r in step with the store until ctx ends.
func (r *revocations) poll(ctx context.Context, store provisioner.Store, since time.Time, logger *zap.Logger) {
	t := time.NewTicker(revocationPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			next, err := r.sync(ctx, store, since)
			if err != nil {
				logger.Warn("reading session revocations from the store", zap.Error(err))
				continue
			}
			since = next
		}
	}
}
