package caddymodule

import (
	"context"
	"errors"
	"slices"
	"strings"
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
// recently; a user seen for the first time is read at once in the
// background (sharedState.readNewUsers), and a session that the
// profile of its cookie no longer speaks for waits for that read
// (sessions.admitted).
type userStatus struct {
	mu    sync.RWMutex
	users map[string]*statusEntry // by local user ID
	// unread wakes readNewUsers: an entry no read has reached yet.
	unread chan struct{}
	// gen counts the changes a session's check depends on (a status, a
	// profile, an entry forgotten), so a check made since the last one
	// still holds (sessions.admitted).
	gen atomic.Uint64
	// roles are the role grants of the current configuration, which the
	// profiles read carry (roleSources.of); nil: every grant.
	roles atomic.Pointer[roleSources]
}

// generation is the number of changes to u so far (0 for nil).
func (u *userStatus) generation() uint64 {
	if u == nil {
		return 0
	}
	return u.gen.Load()
}

type statusEntry struct {
	refused atomic.Bool
	// mu orders the changes of refused with decidedAt, when the last
	// one was decided (Unix nanoseconds; readActive).
	mu        sync.Mutex
	decidedAt int64
	lastSeen  atomic.Int64 // Unix seconds
	// profile is the user as the store last said, for sessions issued
	// before a change (nil until the first refresh).
	profile atomic.Pointer[liveProfile]
	// read is closed once this process has read the user from the store
	// (the refresh, a sign-in, confirm): until then, refused and profile
	// say only what a session's cookie says, which may be older than a
	// change the instances that read the user act on.
	read     chan struct{}
	readOnce sync.Once
	// statusRead is closed once this process has read the user's status
	// (read, or a JIT-off sign-in under the user's name, which reads the
	// status and not the profile: holderSignedIn). A JIT-off session
	// waits for this one: its profile is the provider's.
	statusRead     chan struct{}
	statusReadOnce sync.Once
}

func newStatusEntry(nowUnix int64) *statusEntry {
	e := &statusEntry{read: make(chan struct{}), statusRead: make(chan struct{})}
	e.lastSeen.Store(nowUnix)
	return e
}

// markRead records that the user was read from the store.
func (e *statusEntry) markRead() {
	e.markStatusRead()
	e.readOnce.Do(func() { close(e.read) })
}

// markStatusRead records that the user's status was read from the store.
func (e *statusEntry) markStatusRead() { e.statusReadOnce.Do(func() { close(e.statusRead) }) }

// wasRead reports whether the user was read from the store.
func (e *statusEntry) wasRead() bool { return isClosed(e.read) }

// statusWasRead reports whether the user's status was read from the
// store.
func (e *statusEntry) statusWasRead() bool { return isClosed(e.statusRead) }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// awaitRead waits up to limit (or until ctx ends) for the first read
// of e's user, which readNewUsers has been asked for, and reports
// whether it came.
func (e *statusEntry) awaitRead(ctx context.Context, limit time.Duration) bool {
	return waitClosed(ctx, e.read, limit)
}

// awaitStatusRead is awaitRead for the first read of the user's status.
func (e *statusEntry) awaitStatusRead(ctx context.Context, limit time.Duration) bool {
	return waitClosed(ctx, e.statusRead, limit)
}

func newUserStatus() *userStatus {
	return &userStatus{users: make(map[string]*statusEntry), unread: make(chan struct{}, 1)}
}

// liveProfile is what of a user's stored record a live session shows:
// the identity headers, placeholders and allow rules read these. An
// administrator's change, or a login through another browser, reaches
// the sessions issued before it through the status refresh.
type liveProfile struct {
	// readAt is when the refresh read the record, Unix nanoseconds.
	readAt int64
	// from is when the read began, Unix nanoseconds: of two reads that
	// overlap (the status refresh, a user's first read, a sign-in), the
	// one begun later holds (statusEntry.keepProfile).
	from          int64
	email         string
	emailVerified bool
	name          string
	groups, roles []string
}

func profileOf(u *provisioner.User, sources *roleSources) *liveProfile {
	groups, _ := provisioner.FilterGroups(u.Groups)
	var roles []string
	if sources != nil {
		roles = sources.of(u)
	} else {
		roles = u.Roles()
	}
	return &liveProfile{readAt: time.Now().UnixNano(), email: u.Email, emailVerified: u.EmailVerified,
		name: u.Name, groups: groups, roles: roles}
}

// roleSources are the RoleGrants keys of the connections a configuration
// has. A connection removed from it grants nothing any more: no rule of
// its stands, and no sign-in through it will take its grants back, so
// they stay in the store (an instance sharing it may have the
// connection still) but no session carries them. Local grants, and
// grants of any source that is no connection, always count.
type roleSources map[string]bool

// of is u's roles from the sources of rs, sorted and without
// duplicates; with nil rs, every source's (User.Roles).
func (rs roleSources) of(u *provisioner.User) []string {
	if rs == nil {
		return u.Roles()
	}
	var all []string
	for source, roles := range u.RoleGrants {
		if strings.HasPrefix(source, provisioner.ConnectionSource("")) && !rs[source] {
			continue
		}
		all = append(all, roles...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// current returns s as the profile says the user now is: s itself when
// nothing differs (the usual case, no allocation), else a copy with the
// profile's values. Only a profile read after the second s was issued in
// speaks for it: one read before may be older than the login that made
// s (a login updates the record, and s carries what it wrote), and must
// not take s back. A change made in a session's first second shows at
// the refresh after it.
func (p *liveProfile) current(s *Session) *Session {
	if p == nil || p.readAt < (s.IssuedAt+1)*int64(time.Second) {
		return s
	}
	if p.email == s.Email && p.emailVerified == s.EmailVerified && p.name == s.Name &&
		slices.Equal(p.groups, s.Groups) && slices.Equal(p.roles, s.Roles) {
		return s
	}
	c := *s
	c.Email, c.EmailVerified, c.Name, c.Groups, c.Roles = p.email, p.emailVerified, p.name, p.groups, p.roles
	c.identity = nil // it was s's
	return &c
}

// active reports whether the user may use a live session (not disabled
// or deleted in the store), and the user's profile as last read. An
// unknown user is active until read, and queued for a read at once
// (statusEntry.wasRead tells whether it was read).
func (u *userStatus) active(id string, nowUnix int64) (bool, *liveProfile) {
	active, profile, _ := u.lookup(id, nowUnix)
	return active, profile
}

// lookup is active, also returning the user's entry, which the caller
// keeps until u changes and touches per request (statusEntry.seen): the
// refresh forgets users not seen for a while.
func (u *userStatus) lookup(id string, nowUnix int64) (bool, *liveProfile, *statusEntry) {
	u.mu.RLock()
	e := u.users[id]
	u.mu.RUnlock()
	if e == nil {
		u.mu.Lock()
		if e = u.users[id]; e == nil {
			e = newStatusEntry(nowUnix)
			u.users[id] = e
		}
		u.mu.Unlock()
		u.wakeReader()
	}
	e.seen(nowUnix)
	return !e.refused.Load(), e.profile.Load(), e
}

// wakeReader asks readNewUsers to read the entries not read yet.
func (u *userStatus) wakeReader() {
	select {
	case u.unread <- struct{}{}:
	default:
	}
}

// seen records that a session of the user was used at nowUnix.
func (e *statusEntry) seen(nowUnix int64) {
	// Written at most once a second: a store on every request would move
	// the entry's cache line between CPUs on every request.
	if e.lastSeen.Load() != nowUnix {
		e.lastSeen.Store(nowUnix)
	}
}

// set records a status change made here (the admin API), so this
// instance acts on it at once rather than at the next refresh.
func (u *userStatus) set(id string, refused bool) {
	u.mu.Lock()
	e := u.users[id]
	if e == nil {
		e = newStatusEntry(time.Now().Unix())
		u.users[id] = e
		// Only the status is known: the profile is read at once.
		defer u.wakeReader()
	}
	u.mu.Unlock()
	if e.decide(refused) != refused {
		u.gen.Add(1)
	}
}

// readActive records that a read of the store begun at readFrom found
// the user id active (a sign-in let them in), for an entry this
// instance keeps, unless the entry's status was decided here after
// readFrom: that decision (a disable through this instance, a refresh)
// is newer than the read.
func (u *userStatus) readActive(id string, readFrom time.Time) {
	u.mu.RLock()
	e := u.users[id]
	u.mu.RUnlock()
	if e != nil && e.readActive(readFrom) {
		u.gen.Add(1)
	}
}

// readActive clears the entry's refusal unless it was decided after
// readFrom, and reports whether it did.
func (e *statusEntry) readActive(readFrom time.Time) (changed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return readFrom.UnixNano() > e.decidedAt && e.refused.Swap(false)
}

// holderSignedIn records what a JIT-off sign-in or bearer token's
// check, whose reads of the store began at readFrom, found of the local
// user id holding its name, active (it let them in), as readActive
// does; and takes that reading (the directory's record of the holder)
// as the first read of the holder's status here, so that the JIT-off
// session it issues does not wait for another (sessions.admitted), and
// keeps working while the store answers the directory and not the
// reads by ID, as the sessions a JIT-on sign-in issues do. The profile
// is left to the read that follows at once: the holder's own sessions
// (JIT on) still wait for it.
func (u *userStatus) holderSignedIn(id string, readFrom time.Time) {
	u.mu.Lock()
	e := u.users[id]
	if e == nil {
		e = newStatusEntry(time.Now().Unix())
		u.users[id] = e
		// Only the status is known: the profile is read at once.
		defer u.wakeReader()
	}
	u.mu.Unlock()
	changed := e.readActive(readFrom)
	e.markStatusRead()
	if changed {
		u.gen.Add(1)
	}
}

// signedIn records what a sign-in or a bearer token's check, whose
// reads of the store began at readFrom, found of its user, active (it
// let them in), as readActive does; and, when this process has not read
// the user yet, takes that reading as the user's first read, with its
// profile, so that the session it issues never waits for one
// (sessions.admitted). The profile replaces none read after readFrom,
// and speaks only for the sessions issued before readFrom
// (liveProfile.current): the session just issued carries what the
// sign-in wrote. Once the user was read, the profile is left to the
// refresh, as before; and only a change of the status changes gen, so
// that a bearer token's check now and then does not make every session
// be checked again.
func (u *userStatus) signedIn(user *provisioner.User, readFrom time.Time) {
	u.mu.Lock()
	e := u.users[user.ID]
	if e == nil {
		e = newStatusEntry(time.Now().Unix())
		u.users[user.ID] = e
	}
	u.mu.Unlock()
	first := !e.wasRead()
	if first {
		p := profileOf(user, u.roles.Load())
		p.readAt, p.from = readFrom.UnixNano(), readFrom.UnixNano()
		for {
			old := e.profile.Load()
			if (old != nil && old.readAt >= p.readAt) || e.profile.CompareAndSwap(old, p) {
				break
			}
		}
	}
	e.mu.Lock()
	changed := readFrom.UnixNano() > e.decidedAt && e.refused.Swap(false)
	e.mu.Unlock()
	e.markRead()
	if first || changed {
		u.gen.Add(1)
	}
}

// decide sets the entry's status, as decided now.
func (e *statusEntry) decide(refused bool) (was bool) {
	was, _ = e.decideRead(refused, time.Time{})
	return was
}

// decideRead is decide for a reading of the store begun at readFrom: it
// leaves a status decided after readFrom alone (decided false). The
// zero readFrom decides regardless.
func (e *statusEntry) decideRead(refused bool, readFrom time.Time) (was, decided bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !readFrom.IsZero() && readFrom.UnixNano() <= e.decidedAt {
		return e.refused.Load(), false
	}
	e.decidedAt = time.Now().UnixNano()
	return e.refused.Swap(refused), true
}

// refresh re-reads the status of every user seen within keep; users not
// seen for that long are forgotten. A store error keeps the last known
// status: an outage neither locks everyone out nor lets anyone in who
// was known to be refused.
func (u *userStatus) refresh(ctx context.Context, store provisioner.UserStore, keep time.Duration, logger *zap.Logger) {
	cutoff := time.Now().Add(-keep).Unix()
	u.mu.Lock()
	ids := make([]string, 0, len(u.users))
	forgot := false
	for id, e := range u.users {
		if e.lastSeen.Load() < cutoff {
			delete(u.users, id)
			forgot = true
			continue
		}
		ids = append(ids, id)
	}
	if forgot {
		// A check that kept a forgotten entry would record its user's
		// requests there, where the refresh no longer looks.
		u.gen.Add(1)
	}
	u.mu.Unlock()

	u.read(ctx, store, ids, logger)
}

// readUnread reads the users this process has not read yet, and
// reports whether any is left unread (a store error).
func (u *userStatus) readUnread(ctx context.Context, store provisioner.UserStore, logger *zap.Logger) (left bool) {
	u.mu.RLock()
	var ids []string
	for id, e := range u.users {
		if !e.wasRead() {
			ids = append(ids, id)
		}
	}
	u.mu.RUnlock()
	if len(ids) == 0 {
		return false
	}
	u.read(ctx, store, ids, logger)
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, id := range ids {
		if e := u.users[id]; e != nil && !e.wasRead() {
			return true
		}
	}
	return false
}

// read reads the status and profile of the users ids. Each read of
// the store gives up after storeTimeout: the refresh loop runs with no
// deadline of its own, and one read that never returns (a lock held by
// a stuck transaction, a partition that drops packets) would stop every
// refresh after it, and with them the end of a disabled user's
// sessions (S7). The users it failed to read keep their last known
// status until the next refresh, as on any store error.
func (u *userStatus) read(ctx context.Context, store provisioner.UserStore, ids []string, logger *zap.Logger) {
	// Holders named rather than identified (holderByName) are found by
	// name, one read each: only sessions opened while the directory
	// could not be read have them.
	ids = slices.DeleteFunc(ids, func(id string) bool {
		name, ok := holderByName(id)
		if ok && ctx.Err() == nil {
			u.refreshName(ctx, store, id, name, logger)
		}
		return ok
	})
	if batch, ok := store.(provisioner.UserBatchReader); ok {
		u.refreshBatches(ctx, batch, ids, logger)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		readFrom := time.Now()
		rctx, cancel := context.WithTimeout(ctx, storeTimeout)
		user, err := store.User(rctx, id)
		cancel()
		switch {
		case errors.Is(err, provisioner.ErrNotFound):
			u.updateRead(id, nil, readFrom, logger)
		case err != nil:
			logger.Warn("checking user status; keeping the last known status", zap.String("local_id", id), zap.Error(err))
		default:
			u.updateRead(id, user, readFrom, logger)
		}
	}
}

// refreshName decides the status of the entry id, the holder of a
// JIT-off session named name whose sign-in could not read the
// directory, as that sign-in would have: refused when a local user has
// the name and is disabled, or is not the one whose verified email it
// is (the sign-in would then have taken another name); else let in.
func (u *userStatus) refreshName(ctx context.Context, store provisioner.UserStore, id, name string, logger *zap.Logger) {
	readFrom := time.Now()
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	user, err := store.UserByUsername(rctx, name)
	cancel()
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		user = nil
	case err != nil:
		logger.Warn("checking the local user holding a JIT-off name; keeping the last known status", zap.Error(err))
		return
	}
	refused := user != nil && (user.Status != provisioner.StatusActive || !provisioner.HoldsName(user, name))
	u.mu.RLock()
	e := u.users[id]
	u.mu.RUnlock()
	if e == nil {
		return
	}
	if was, decided := e.decideRead(refused, readFrom); decided && was != refused && refused {
		logger.Info("the local user holding a JIT-off name is disabled or another's; its live sessions refused", zap.String("local_id", user.ID))
	}
	e.markRead()
	u.gen.Add(1)
}

// refreshBatches re-reads ids MaxUsersByID at a time, one query each.
func (u *userStatus) refreshBatches(ctx context.Context, store provisioner.UserBatchReader, ids []string, logger *zap.Logger) {
	for len(ids) > 0 && ctx.Err() == nil {
		n := min(len(ids), provisioner.MaxUsersByID)
		chunk := ids[:n]
		ids = ids[n:]
		readFrom := time.Now()
		rctx, cancel := context.WithTimeout(ctx, storeTimeout)
		users, err := store.UsersByID(rctx, chunk)
		cancel()
		if err != nil {
			logger.Warn("checking user statuses; keeping the last known statuses", zap.Int("users", len(chunk)), zap.Error(err))
			continue
		}
		found := make(map[string]*provisioner.User, len(users))
		for i := range users {
			found[users[i].ID] = &users[i]
		}
		for _, id := range chunk {
			u.updateRead(id, found[id], readFrom, logger) // nil: deleted
		}
	}
}

// keepProfile holds p, read by a read of the store begun at readFrom
// (zero: just now, and regardless), unless the profile held came from a
// read begun later: the status refresh and a user's first read
// (readNewUsers) run side by side, and one begun before an
// administrator's change may answer after one begun after it; its
// profile would undo the change until the next refresh, as decideRead
// keeps its status from doing.
func (e *statusEntry) keepProfile(p *liveProfile, readFrom time.Time) {
	if readFrom.IsZero() {
		p.from = time.Now().UnixNano()
		e.profile.Store(p)
		return
	}
	p.from = readFrom.UnixNano()
	for {
		old := e.profile.Load()
		if (old != nil && old.from > p.from) || e.profile.CompareAndSwap(old, p) {
			return
		}
	}
}

// update records what the store says of one user, read just now: user
// nil means the user no longer exists.
func (u *userStatus) update(id string, user *provisioner.User, logger *zap.Logger) {
	u.updateRead(id, user, time.Time{}, logger)
}

// updateRead is update for a read of the store begun at readFrom: a
// status decided here after readFrom (a disable or an enable through
// this instance while the read was in flight) is newer than the read,
// and stays, as it does against a sign-in's reading (readActive). The
// zero readFrom decides regardless.
func (u *userStatus) updateRead(id string, user *provisioner.User, readFrom time.Time, logger *zap.Logger) {
	refused := user == nil || user.Status != provisioner.StatusActive
	u.mu.RLock()
	e := u.users[id]
	u.mu.RUnlock()
	if e == nil {
		return
	}
	if user != nil {
		e.keepProfile(profileOf(user, u.roles.Load()), readFrom)
	}
	if was, decided := e.decideRead(refused, readFrom); decided && was != refused && refused {
		logger.Info("user disabled or deleted; live sessions refused", zap.String("local_id", id))
	}
	e.markRead()
	// Every read counts as a change: a profile read after a session was
	// issued speaks for it where one read before did not (current).
	u.gen.Add(1)
}
