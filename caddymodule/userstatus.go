package caddymodule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// userStatus remembers whether the provisioned users with live sessions
// are still allowed in, so a user disabled or deleted in the store loses
// those sessions within the refresh interval (S7), while the
// authenticated request path reads only memory. A background loop
// (sharedState.refreshUserStatus) re-reads the status of every user seen
// recently; a user seen for the first time is checked at once in the
// background.
type userStatus struct {
	mu    sync.RWMutex
	users map[string]*statusEntry // by local user ID
	wake  chan struct{}
}

type statusEntry struct {
	refused  atomic.Bool
	lastSeen atomic.Int64 // Unix seconds
}

func newUserStatus() *userStatus {
	return &userStatus{users: make(map[string]*statusEntry), wake: make(chan struct{}, 1)}
}

// active reports whether the user may use a live session (not disabled
// or deleted in the store). An unknown user is active until checked, and
// queued for a check; the bound holds from then.
func (u *userStatus) active(id string, nowUnix int64) bool {
	u.mu.RLock()
	e := u.users[id]
	u.mu.RUnlock()
	if e == nil {
		u.mu.Lock()
		if e = u.users[id]; e == nil {
			e = &statusEntry{}
			u.users[id] = e
		}
		u.mu.Unlock()
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
	e.lastSeen.Store(nowUnix)
	return !e.refused.Load()
}

// set records a status change made here (the admin API), so this
// instance acts on it at once rather than at the next refresh.
func (u *userStatus) set(id string, refused bool) {
	u.mu.Lock()
	e := u.users[id]
	if e == nil {
		e = &statusEntry{}
		e.lastSeen.Store(time.Now().Unix())
		u.users[id] = e
	}
	u.mu.Unlock()
	e.refused.Store(refused)
}

// refresh re-reads the status of every user seen within keep; users not
// seen for that long are forgotten. A store error keeps the last known
// status: an outage neither locks everyone out nor lets anyone in who
// was known to be refused.
func (u *userStatus) refresh(ctx context.Context, store provisioner.UserStore, keep time.Duration, logger *zap.Logger) {
	cutoff := time.Now().Add(-keep).Unix()
	u.mu.Lock()
	ids := make([]string, 0, len(u.users))
	for id, e := range u.users {
		if e.lastSeen.Load() < cutoff {
			delete(u.users, id)
			continue
		}
		ids = append(ids, id)
	}
	u.mu.Unlock()

	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		user, err := store.User(ctx, id)
		var refused bool
		switch {
		case errors.Is(err, provisioner.ErrNotFound):
			refused = true
		case err != nil:
			logger.Warn("checking user status; keeping the last known status", zap.String("local_id", id), zap.Error(err))
			continue
		default:
			refused = user.Status != provisioner.StatusActive
		}
		u.mu.RLock()
		e := u.users[id]
		u.mu.RUnlock()
		if e != nil && e.refused.Swap(refused) != refused && refused {
			logger.Info("user disabled or deleted; live sessions refused", zap.String("local_id", id))
		}
	}
}
