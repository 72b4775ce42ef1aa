package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Security state outlives one configuration (S17). `caddy reload`
// provisions a new App beside the running one, starts it, then stops and
// cleans up the old one; state kept in the App would start empty in every
// generation: a logged-out cookie, a replayed login state or a disabled
// user would be accepted again after any reload. So the state lives in
// package-level usage pools (as reverse_proxy keeps its upstream hosts),
// taken by Provision, released by Cleanup and freed with the last user.
var (
	// sharedStates holds the process's one sharedState.
	sharedStates = caddy.NewUsagePool()
	// sessionCaches holds session caches by the digest of the cookie
	// keys and lifetime that verified their entries (see sessionCacheKey).
	sessionCaches = caddy.NewUsagePool()
)

// sharedStateKey is the only key of sharedStates. The state is one per
// process, not one per store: the sets only ever refuse more (session
// IDs and login states are random, so a foreign entry matches nothing
// legitimate), and an operator switching stores must not revive the
// sessions logged out before.
const sharedStateKey = "jit_auth.state"

// sharedState is the security state every configuration generation of
// the jit_auth app uses, and the background work that keeps it current:
// one revocation follower, one user-status refresher (and reader of
// the users seen for the first time) and one deprovisioning sweeper per
// process,
// however many generations overlap. They run while at least one
// generation is started, with that of the one started last.
type sharedState struct {
	revoked    *revocations
	usedStates *usedStates
	userStatus *userStatus
	pending    *pendingRevocations
	// unsavedRefresh are rotated refresh tokens the store failed to keep.
	unsavedRefresh *unsavedRefreshTokens
	// pausedRefresh are the connections whose provider asked for no
	// refresh for a while (Retry-After).
	pausedRefresh *pausedConnections
	// revocationRead bounds one read of the poll (revocationReadTimeout;
	// shorter in tests).
	revocationRead time.Duration
	// firstReadRetry is how soon a failed first read of a user is tried
	// again (firstReadRetryInterval; longer in a test).
	firstReadRetry time.Duration

	mu       sync.Mutex
	attached []*stateConfig // started generations, in start order
	// lifetimes is the session_lifetime history the configurations that
	// ran kept, for the next one should storage fail.
	lifetimes lifetimeHistory
	// vouches are, by connection name, the connector digest the last
	// configuration provisioned and since when (noteVouches).
	vouches map[string]vouchEpoch
	// reconfigured is closed, and replaced, whenever the generations
	// change, so that the background work sleeping on an interval of
	// the configuration before re-arms with the new one (see sleep).
	reconfigured chan struct{}
	cancel       context.CancelFunc
	done         sync.WaitGroup
}

// stateConfig is what the background work needs from one started App.
type stateConfig struct {
	store sessionStore
	// admin counts the users for the users-by-status metric (nil: the
	// store has no admin role, and there is no such metric).
	admin    provisioner.AdminStore
	storage  revocationStorage
	logger   *zap.Logger
	lifetime time.Duration
	// lifetimes is the generation's session_lifetime history, its own
	// lifetime last.
	lifetimes lifetimeHistory
	refresh   time.Duration
	// poll is how often the revocations are read (revocation_poll).
	poll time.Duration
	// sweeper deprovisions inactive users (nil: no connection does).
	sweeper *sweeper
	// refresher refreshes sessions at their providers (nil: no
	// connection does).
	refresher *refresher
	// roles are the role grants its sessions carry (roleSources.of).
	roles roleSources
	// storedKeys is the cookie key pair it keeps in Caddy's storage
	// (App.storedKeys).
	storedKeys []byte
	// assertionKeys are its assertion signing keys, for a configuration
	// after it on another storage (assertionKeys.adopt).
	assertionKeys *assertionKeys
}

func newSharedState() *sharedState {
	return &sharedState{
		revoked:    newRevocations(),
		usedStates: &usedStates{},
		userStatus: newUserStatus(),
		pending:    &pendingRevocations{},

		unsavedRefresh: newUnsavedRefreshTokens(),
		pausedRefresh:  &pausedConnections{until: map[string]time.Time{}},
		revocationRead: revocationReadTimeout,
		firstReadRetry: firstReadRetryInterval,
		reconfigured:   make(chan struct{}),
	}
}

// Destruct is called when the last configuration releases the state;
// its background work has stopped by then (detach).
func (st *sharedState) Destruct() error { return nil }

// vouchEpoch is a connection's connector digest and since when this
// process has run it.
type vouchEpoch struct {
	digest string
	since  time.Time
}

// noteVouches gives each of conns the time since which this process has
// run it with its connector as configured now: kept across reloads that
// leave the connector alone, now for a new or changed one. A pending
// login sealed before it recorded its provider relies on it
// (Connection.vouchesFor).
func (st *sharedState) noteVouches(conns map[string]*Connection, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.vouches == nil {
		st.vouches = map[string]vouchEpoch{}
	}
	for name, c := range conns {
		if c == nil {
			continue
		}
		e, ok := st.vouches[name]
		if !ok || e.digest != c.vouch {
			e = vouchEpoch{digest: c.vouch, since: now}
			st.vouches[name] = e
		}
		c.vouchSince = e.since
	}
}

// acquireSharedState takes a reference to the process's shared state.
func acquireSharedState() *sharedState {
	v, _, _ := sharedStates.LoadOrNew(sharedStateKey, func() (caddy.Destructor, error) {
		return newSharedState(), nil
	})
	return v.(*sharedState)
}

// releaseSharedState gives back a reference taken by acquireSharedState.
func releaseSharedState() {
	_, _ = sharedStates.Delete(sharedStateKey)
}

// runningStoredKeys is the cookie key pair that the configuration
// running in this process keeps in Caddy's storage, or nil (none runs,
// or it configures cookie_keys). It peeks at the shared state without
// taking a reference: Provision reads it before it takes one.
func runningStoredKeys() []byte {
	var data []byte
	sharedStates.Range(func(_, v any) bool {
		if cfg := v.(*sharedState).current(); cfg != nil {
			data = cfg.storedKeys
		}
		return false
	})
	return data
}

// current is the configuration of the generation started last.
func (st *sharedState) current() *stateConfig {
	cfg, _ := st.currentAndChanges()
	return cfg
}

// currentAndChanges is current, with a channel closed when the
// generations next change; read together, so no change slips between.
func (st *sharedState) currentAndChanges() (*stateConfig, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.attached) == 0 {
		return nil, st.reconfigured
	}
	return st.attached[len(st.attached)-1], st.reconfigured
}

// changedLocked tells the sleeping background work that the generations
// changed. st.mu is held.
func (st *sharedState) changedLocked() {
	close(st.reconfigured)
	st.reconfigured = make(chan struct{})
}

// sleep waits until the interval that every gives for the current
// configuration has passed since last; it returns false when ctx ends.
// A reload does not wait for the timer the configuration before it
// armed: the wait ends at last plus the shortest interval of the
// configurations current meanwhile, so a reload that shortens
// user_status_refresh or revocation_poll from an hour to a second
// bounds a disabled user or a logout made elsewhere by the new second,
// not by what is left of the hour (S7, S17). A reload that lengthens an
// interval takes effect from the next wait on.
func (st *sharedState) sleep(ctx context.Context, last time.Time, every func(*stateConfig) time.Duration) bool {
	// One timer, re-armed: since Go 1.23 a Reset timer delivers no value
	// of its earlier arming.
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var deadline time.Time
	for {
		cfg, changed := st.currentAndChanges()
		if cfg != nil {
			if d := last.Add(every(cfg)); deadline.IsZero() || d.Before(deadline) {
				deadline = d
			}
		}
		var fire <-chan time.Time // nil, with no configuration: wait for one
		if !deadline.IsZero() {
			t.Reset(time.Until(deadline))
			fire = t.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-fire:
			return true
		case <-changed:
		}
	}
}

// attach makes cfg the current configuration, starting the background
// work if it is not running yet.
func (st *sharedState) attach(cfg *stateConfig) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.attached = append(st.attached, cfg)
	st.userStatus.roles.Store(&cfg.roles)
	st.changedLocked()
	if st.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	st.done.Add(5)
	go func() {
		defer st.done.Done()
		st.followRevocations(ctx)
	}()
	go func() {
		defer st.done.Done()
		st.refreshUserStatus(ctx)
	}()
	go func() {
		defer st.done.Done()
		st.readNewUsers(ctx)
	}()
	go func() {
		defer st.done.Done()
		st.runDeprovision(ctx)
	}()
	go func() {
		defer st.done.Done()
		st.runRefresh(ctx)
	}()
}

// detach removes cfg; when it was the last, the background work stops,
// and detach waits for it so that nothing uses cfg's store once the
// caller closes it.
func (st *sharedState) detach(cfg *stateConfig) {
	st.mu.Lock()
	for i, c := range st.attached {
		if c == cfg {
			st.attached = append(st.attached[:i], st.attached[i+1:]...)
			if n := len(st.attached); n > 0 {
				st.userStatus.roles.Store(&st.attached[n-1].roles)
			}
			st.changedLocked()
			break
		}
	}
	var cancel context.CancelFunc
	if len(st.attached) == 0 && st.cancel != nil {
		cancel, st.cancel = st.cancel, nil
	}
	st.mu.Unlock()
	if cancel != nil {
		cancel()
		st.done.Wait()
	}
}

// revocationReadTimeout bounds one read of the revocations by the poll.
// Longer than storeTimeout: the first read after a start, or after a
// switch to another store, takes the whole window (every revocation not
// yet expired: the sign-outs of a session lifetime, the logins of the
// last minutes) in one query, and a read that always ran out would
// leave every session unchecked (503) for good.
const revocationReadTimeout = time.Minute

// followRevocations keeps the revocation set in step with the store of
// the current configuration, and hands the store the logouts it missed
// while it was unreachable. It also reads the logouts waiting in Caddy's
// storage, so instances that share the storage refuse each other's
// logouts even while the store is down. When the current store changes
// (a reload to another store), it reads that store's whole window again.
func (st *sharedState) followRevocations(ctx context.Context) {
	var (
		synced sessionStore
		since  time.Time
	)
	for {
		if cfg := st.current(); cfg != nil {
			lctx, cancel := context.WithTimeout(ctx, storeTimeout)
			if err := st.pending.load(lctx, cfg.storage, st.revoked, cfg.logger); err != nil && ctx.Err() == nil {
				cfg.logger.Warn("reading the logouts kept in Caddy's storage", zap.Error(err))
			}
			cancel()
			st.pending.flush(ctx, cfg)
			if cfg.store != synced {
				synced, since = cfg.store, time.Time{}
			}
			// Bounded: one read that never returns (a stuck lock, a
			// partition) would stop every poll after it.
			sctx, cancel := context.WithTimeout(ctx, st.revocationRead)
			next, err := st.revoked.sync(sctx, cfg.store, since)
			cancel()
			if err != nil && ctx.Err() == nil {
				cfg.logger.Warn("reading session revocations from the store", zap.Error(err))
			} else {
				since = next
			}
		}
		if !st.sleep(ctx, time.Now(), revocationPoll) {
			return
		}
	}
}

// revocationPoll is how often cfg reads the revocations.
func revocationPoll(cfg *stateConfig) time.Duration {
	if cfg.poll > 0 {
		return cfg.poll
	}
	return defaultRevocationPoll
}

// refreshUserStatus runs the user-status refresh with the current
// configuration's store and settings.
func (st *sharedState) refreshUserStatus(ctx context.Context) {
	var counted time.Time
	refresh := func(cfg *stateConfig) time.Duration { return cfg.refresh }
	for {
		if !st.sleep(ctx, time.Now(), refresh) {
			return
		}
		if cfg := st.current(); cfg != nil {
			st.userStatus.refresh(ctx, cfg.store, cfg.lifetime, cfg.logger)
			if cfg.admin != nil && time.Since(counted) >= userCountInterval {
				counted = time.Now()
				countUsers(ctx, cfg.admin, cfg.logger)
			}
		}
	}
}

// readNewUsers reads each user this process has not read yet as soon
// as a request meets one (userStatus.lookup), with the store of the
// current configuration: a session whose cookie may be older than a
// change to its user waits for that read (sessions.admitted). A read
// the store fails is tried again every firstReadRetry while such a
// request may still wait, and at once with the store of a configuration
// a reload starts meanwhile, whose store the replaced one's may be
// closed in favour of.
func (st *sharedState) readNewUsers(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.userStatus.unread:
		}
		giveUp := time.Now().Add(firstReadWait)
		for {
			cfg, changed := st.currentAndChanges()
			if cfg == nil {
				break
			}
			rctx, cancel := context.WithTimeout(ctx, storeTimeout)
			left := st.userStatus.readUnread(rctx, cfg.store, cfg.logger)
			cancel()
			if !left || time.Now().After(giveUp) {
				break
			}
			t := time.NewTimer(st.firstReadRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changed:
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// firstReadRetryInterval is how soon readNewUsers tries a failed read
// again.
const firstReadRetryInterval = time.Second

// userCountInterval bounds how often the users are counted for the
// users-by-status metric: a count reads the whole users table, so even
// a short user_status_refresh does not run it more often than this.
const userCountInterval = 10 * time.Second

// countUsers sets the users-by-status gauge from the store.
func countUsers(ctx context.Context, store provisioner.AdminStore, logger *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	counts, err := store.CountUsers(ctx)
	if err != nil {
		logger.Warn("counting users for the users-by-status metric", zap.Error(err))
		return
	}
	m := processMetrics()
	for _, st := range []provisioner.Status{provisioner.StatusActive, provisioner.StatusDisabled} {
		m.users.WithLabelValues(string(st)).Set(float64(counts[st]))
	}
}

// sessionCacheKey names the session cache for one set of cookie keys and
// one session_lifetime history. An entry of the cache means "these bytes
// were verified by these codecs, and end then"; a reload that changes the
// keys (an operator removing a compromised pair) or the lifetime (which
// bounds a session from its sign-in, lifetimes.go) gets a cache of its
// own, so sessions the new configuration would refuse are not served
// from memory. A reload that changes neither keeps the cache.
func sessionCacheKey(keys []rawKeyPair, lifetimes lifetimeHistory) string {
	h := sha256.New()
	var n [8]byte
	for _, c := range lifetimes {
		binary.BigEndian.PutUint64(n[:], uint64(c.From))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(c.Lifetime))
		h.Write(n[:])
	}
	for _, k := range keys {
		for _, b := range [][]byte{k.hash, k.block} {
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
	}
	return "jit_auth.sessions." + hex.EncodeToString(h.Sum(nil))
}

// Destruct lets a session cache live in a caddy.UsagePool.
func (c *sessionCache) Destruct() error { return nil }

func acquireSessionCache(key string) *sessionCache {
	v, _, _ := sessionCaches.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newSessionCache(), nil
	})
	return v.(*sessionCache)
}

// opener is a store module that opens its database when the app starts
// rather than when it is provisioned (see SQLiteStore).
type opener interface{ open() error }

// keptLifetimes returns the session_lifetime history kept across
// reloads, with that of every started generation (the one running
// before a reload is still attached when the next is provisioned,
// however briefly it ran; one whose start failed was detached).
func (st *sharedState) keptLifetimes() lifetimeHistory {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.lifetimes
	for _, cfg := range st.attached {
		h = h.merged(cfg.lifetimes)
	}
	return h
}

// keepLifetimes keeps h for the next configuration, with what was kept.
func (st *sharedState) keepLifetimes(h lifetimeHistory) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lifetimes = st.lifetimes.merged(h)
}
