package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// cutoffs end every session of a local user issued at or before a
	// time ("sign out everywhere"), by local user ID. They travel as
	// revocations with an ID of their own shape (userCutoffID), so the
	// store, the poll and the outage outbox carry them unchanged.
	cutoffs map[string]userCutoff
	// spent holds IDs used once and refused after (login states, pending
	// logins, logout tokens; isSpentID), which travel as revocations too.
	// No session is refused by them, so they leave gen alone: every
	// login adds one, and must not make every cached session be checked
	// again.
	spent map[string]time.Time
	// gen counts the changes to the set, so a check of a session made
	// since the last one still holds (sessions.admitted).
	gen atomic.Uint64
	// readFrom is where the latest read (sync) left off: the since of
	// the next one, by the store's clock. catchUp reads from there.
	readFrom atomic.Pointer[time.Time]

	// unread is closed once the store has been read (sync); nil in a
	// set that waits for nothing (newRevocations makes the one that
	// does). Until then the set lacks the logouts recorded before this
	// process started, and no session is admitted (sessions.admitted).
	unread   chan struct{}
	readOnce sync.Once
}

// newRevocations returns an empty set that admits no session until it
// has read the store once (awaitRead).
func newRevocations() *revocations {
	return &revocations{unread: make(chan struct{})}
}

// markRead records that the set holds what the store held.
func (r *revocations) markRead() {
	if r.unread != nil {
		r.readOnce.Do(func() { close(r.unread) })
	}
}

// awaitRead reports whether the set has read the store, waiting up to
// wait (or until ctx ends) for its first read.
func (r *revocations) awaitRead(ctx context.Context, wait time.Duration) bool {
	if r == nil || r.unread == nil {
		return true
	}
	return waitClosed(ctx, r.unread, wait)
}

// waitClosed reports whether ch is closed, waiting up to wait (or until
// ctx ends) for it: how a request waits for something a start is still
// doing (the store opened, the revocations read, the app started).
func waitClosed(ctx context.Context, ch <-chan struct{}, wait time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// isSpentID reports whether a revocation ID marks something used once
// (spentID) rather than ending sessions.
func isSpentID(id string) bool { return strings.HasPrefix(id, spentPrefix) }

// generation is the number of changes to r so far (0 for nil).
func (r *revocations) generation() uint64 {
	if r == nil {
		return 0
	}
	return r.gen.Load()
}

// userCutoff is one user's sign-out-everywhere: sessions issued at or
// before (Unix seconds) are refused until expires, when none of them
// can be alive any more.
type userCutoff struct {
	before  int64
	expires time.Time
}

// userCutoffPrefix starts the revocation IDs of user cutoffs:
// "user:<unix seconds>:<local ID>". Session IDs are base64url and never
// hold ':', so the two kinds cannot be mistaken for each other.
const userCutoffPrefix = "user:"

// cutoffExpiry is until when a cutoff taken at now is kept: the
// sessions it ends live up to lifetime after it, or after a login that
// waited for the user up to flowLifetime (Session.AuthAt), and a cutoff
// read by the store's later clock counts up to maxCutoffSkew later.
func cutoffExpiry(now time.Time, lifetime time.Duration) time.Time {
	return now.Add(lifetime + flowLifetime + maxCutoffSkew + time.Minute)
}

// userCutoffID is the revocation ID that ends user's sessions issued at
// or before at.
func userCutoffID(userID string, at time.Time) string {
	return userCutoffPrefix + strconv.FormatInt(at.Unix(), 10) + ":" + userID
}

// refuses reports whether s was logged out, or its user signed out
// everywhere after s was issued (or its login verified, Session.AuthAt).
// An authenticated request asks only when the set changed since its
// session was last checked (sessions.admitted).
func (r *revocations) refuses(s *Session) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, revoked := r.revoked[s.ID]; revoked {
		return true
	}
	if len(r.cutoffs) == 0 {
		return false
	}
	issued := s.IssuedAt
	if s.AuthAt != 0 && s.AuthAt < issued {
		issued = s.AuthAt
	}
	for _, key := range s.cutoffKeys() {
		if key == "" {
			continue
		}
		if cut, ok := r.cutoffs[key]; ok && issued <= cut.before {
			return true
		}
	}
	return false
}

// has reports whether the exact ID is recorded (a logout, or something
// used once).
func (r *revocations) has(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.spent[id]; ok {
		return true
	}
	_, ok := r.revoked[id]
	return ok
}

// maxCutoffSkew bounds how much later than its own time a cutoff is
// read to apply when the store recorded it later (addRecorded).
const maxCutoffSkew = 5 * time.Minute

func (r *revocations) add(id string, expires time.Time) { r.addRecorded(id, expires, time.Time{}) }

// addRecorded adds a revocation the store recorded at recorded, by its
// own clock (zero: not known). A cutoff's time is the clock of the
// instance that took the sign-out; when that clock is slow, the
// sessions other instances issued in the moments before the sign-out
// would be later than it and survive. The store's time counts too (up
// to maxCutoffSkew later: a cutoff kept through an outage is recorded
// long after the sign-out, and must not end the sessions of the sign-ins
// since), so a sign-out everywhere does not depend on the clock of the
// instance that took it agreeing with the store's.
func (r *revocations) addRecorded(id string, expires, recorded time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if isSpentID(id) {
		if r.spent == nil {
			r.spent = make(map[string]time.Time)
		}
		r.spent[id] = expires
		return
	}
	if rest, ok := strings.CutPrefix(id, userCutoffPrefix); ok {
		at, userID, ok := strings.Cut(rest, ":")
		before, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || userID == "" {
			return // not one of ours: nothing to refuse by
		}
		if !recorded.IsZero() {
			later := max(before, min(recorded.Unix(), before+int64(maxCutoffSkew/time.Second)))
			// Kept as much longer: the sessions it ends live that much
			// longer too.
			expires = expires.Add(time.Duration(later-before) * time.Second)
			before = later
		}
		if r.cutoffs == nil {
			r.cutoffs = make(map[string]userCutoff)
		}
		cur, had := r.cutoffs[userID]
		if had && before <= cur.before && !expires.After(cur.expires) {
			return // a poll brought it again
		}
		if before > cur.before {
			cur.before = before
		}
		if expires.After(cur.expires) {
			cur.expires = expires
		}
		r.cutoffs[userID] = cur
		r.gen.Add(1)
		return
	}
	if r.revoked == nil {
		r.revoked = make(map[string]time.Time)
	}
	if cur, had := r.revoked[id]; had && cur.Equal(expires) {
		return // a poll brought it again
	}
	r.revoked[id] = expires
	r.gen.Add(1)
}

// forget drops a spent ID (isSpentID) that add recorded but that was
// then recorded nowhere lasting (spend failed), so that the retry its
// failure asks for is not refused as a replay. Spent IDs refuse no
// session, so gen stays.
func (r *revocations) forget(id string) {
	if !isSpentID(id) {
		return // a logout stays refused here even if recording it failed
	}
	r.mu.Lock()
	delete(r.spent, id)
	r.mu.Unlock()
}

// prune forgets sessions, cutoffs and spent IDs that have expired
// anyway.
func (r *revocations) prune(now time.Time) {
	r.mu.Lock()
	for id, exp := range r.spent {
		if !now.Before(exp) {
			delete(r.spent, id)
		}
	}
	n := len(r.revoked) + len(r.cutoffs)
	for id, exp := range r.revoked {
		if !now.Before(exp) {
			delete(r.revoked, id)
		}
	}
	for id, c := range r.cutoffs {
		if !now.Before(c.expires) {
			delete(r.cutoffs, id)
		}
	}
	if len(r.revoked)+len(r.cutoffs) != n {
		r.gen.Add(1)
	}
	r.mu.Unlock()
}

// revocationReadOverlap is how far back each read of the revocations
// starts before the latest one the previous read returned, so that a
// revocation committed while that read ran, with a time just before it,
// is not missed. It does not depend on revocation_poll: it covers the
// time a write takes to commit, not the time between reads.
const revocationReadOverlap = 10 * time.Second

// sync loads revocations recorded at or after since (all of them when
// since is zero), and returns the since of the next read. Both are the
// store's times (RevokedAt), never this instance's clock: against its
// own clock, an instance would miss the logouts written through one
// whose clock is behind its own by more than the overlap.
func (r *revocations) sync(ctx context.Context, store provisioner.RevocationStore, since time.Time) (time.Time, error) {
	now := time.Now()
	list, err := store.RevokedSessions(ctx, since)
	if err != nil {
		return since, err
	}
	next := since
	for _, s := range list {
		r.addRecorded(s.ID, s.ExpiresAt, s.RevokedAt)
		if t := s.RevokedAt.Add(-revocationReadOverlap); t.After(next) {
			next = t
		}
	}
	r.prune(now)
	r.readFrom.Store(&next)
	r.markRead()
	return next, nil
}

// catchUp reads into r, at once, the revocations recorded since the
// latest read (sync), which the next poll would bring: for a step that
// must not wait up to revocation_poll for a logout or sign-out recorded
// through another instance (sessions.confirm). It leaves the poll's
// place as it is.
func (r *revocations) catchUp(ctx context.Context, store provisioner.RevocationStore) error {
	var since time.Time
	if from := r.readFrom.Load(); from != nil {
		since = *from
	}
	list, err := store.RevokedSessions(ctx, since)
	if err != nil {
		return err
	}
	for _, s := range list {
		r.addRecorded(s.ID, s.ExpiresAt, s.RevokedAt)
	}
	return nil
}

// revocationStorage is the part of Caddy's storage (certmagic.Storage)
// that keeps logouts the store could not take.
type revocationStorage interface {
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, path string, recursive bool) ([]string, error)
}

// pendingRevocationsDir is where logouts wait in Caddy's storage for the
// store to come back, one key per session.
const pendingRevocationsDir = "jit_auth/pending_revocations"

// pendingRevocations are the logouts the store has not taken yet, each
// also kept in Caddy's storage so that a restart still refuses them.
type pendingRevocations struct {
	mu sync.Mutex
	m  map[string]pendingRevocation // by session ID
}

// pendingRevocation is one waiting logout, as kept in Caddy's storage.
type pendingRevocation struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`

	storage revocationStorage // where it is kept
	key     string            // its key there
}

// pendingRevocationKey is the storage key of the logout of id (a
// session, a cutoff, a spent ID): a digest of it, so that an ID of any
// length and content makes one path segment that fits a file name
// (at most 255 bytes on common file systems). The ID itself is in the
// stored value.
func pendingRevocationKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return pendingRevocationsDir + "/" + hex.EncodeToString(sum[:])
}

// legacyPendingRevocationKey is the key under which versions before
// the digest kept a logout: the ID in base64url. load still reads
// such keys, so that logouts waiting in storage across an upgrade are
// not lost.
func legacyPendingRevocationKey(id string) string {
	return pendingRevocationsDir + "/" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func (p *pendingRevocations) put(pr pendingRevocation) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[string]pendingRevocation)
	}
	p.m[pr.ID] = pr
	p.mu.Unlock()
}

// keep writes the logout to storage, then remembers it for flush.
func (p *pendingRevocations) keep(ctx context.Context, storage revocationStorage, id string, expires time.Time) error {
	pr := pendingRevocation{ID: id, ExpiresAt: expires.UTC(), storage: storage, key: pendingRevocationKey(id)}
	data, _ := json.Marshal(pr)
	if err := storage.Store(ctx, pr.key, data); err != nil {
		return err
	}
	p.put(pr)
	return nil
}

// load reads the logouts kept in storage (by this instance before a
// restart, or by another sharing the storage) into p and into r.
func (p *pendingRevocations) load(ctx context.Context, storage revocationStorage, r *revocations, logger *zap.Logger) error {
	keys, err := storage.List(ctx, pendingRevocationsDir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	for _, key := range keys {
		data, err := storage.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // taken by the store meanwhile
		}
		if err != nil {
			return err
		}
		var pr pendingRevocation
		if err := json.Unmarshal(data, &pr); err != nil || pr.ID == "" ||
			(key != pendingRevocationKey(pr.ID) && key != legacyPendingRevocationKey(pr.ID)) {
			// Also a file another instance is still writing.
			logger.Warn("skipping an unreadable pending logout in Caddy's storage", zap.String("key", key))
			continue
		}
		if !now.Before(pr.ExpiresAt) {
			_ = storage.Delete(ctx, key) // the session has expired anyway
			continue
		}
		pr.storage, pr.key = storage, key
		r.add(pr.ID, pr.ExpiresAt)
		p.put(pr)
	}
	return nil
}

// carry keeps in storage the logouts still waiting that are kept in
// another (a reload moved Caddy's storage while the store did not take
// them): only there, they would be lost at a restart on this one, and
// the logged-out sessions live again (S17). The storage before keeps its
// copies, which are delivered, harmlessly, again should it be used again.
func (p *pendingRevocations) carry(ctx context.Context, storage revocationStorage) error {
	p.mu.Lock()
	var list []pendingRevocation
	for _, pr := range p.m {
		if !sameStorage(pr.storage, storage) {
			list = append(list, pr)
		}
	}
	p.mu.Unlock()
	now := time.Now()
	for _, pr := range list {
		if !now.Before(pr.ExpiresAt) {
			continue // flush forgets it
		}
		moved := pendingRevocation{ID: pr.ID, ExpiresAt: pr.ExpiresAt, storage: storage, key: pendingRevocationKey(pr.ID)}
		data, _ := json.Marshal(moved)
		if err := storage.Store(ctx, moved.key, data); err != nil {
			return err
		}
		p.mu.Lock()
		if _, waiting := p.m[pr.ID]; waiting { // not delivered meanwhile
			p.m[pr.ID] = moved
		}
		p.mu.Unlock()
	}
	return nil
}

// sameStorage reports whether a and b are one storage value. A storage
// module's value need not be comparable (a struct holding a slice, or
// an interface holding one), where == would panic: such values count as
// different, which costs only a write again.
func sameStorage(a, b revocationStorage) (same bool) {
	t := reflect.TypeOf(a)
	if t == nil || t != reflect.TypeOf(b) || !t.Comparable() {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// flush hands the pending logouts to cfg's store, and forgets each one
// (in memory and in storage) once the store has it or it has expired.
func (p *pendingRevocations) flush(ctx context.Context, cfg *stateConfig) {
	p.mu.Lock()
	list := make([]pendingRevocation, 0, len(p.m))
	for _, pr := range p.m {
		list = append(list, pr)
	}
	p.mu.Unlock()
	if len(list) == 0 {
		return
	}
	now := time.Now()
	var failed int
	for _, pr := range list {
		if ctx.Err() != nil {
			return
		}
		if now.Before(pr.ExpiresAt) {
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			err := cfg.store.RevokeSession(sctx, pr.ID, pr.ExpiresAt)
			cancel()
			if err != nil {
				failed++
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := pr.storage.Delete(sctx, pr.key)
		cancel()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Harmless: the next start reads it, and the store takes it again.
			cfg.logger.Warn("removing a delivered logout from Caddy's storage", zap.Error(err))
		}
		p.mu.Lock()
		delete(p.m, pr.ID)
		p.mu.Unlock()
	}
	if failed > 0 {
		cfg.logger.Warn("the store still does not take logouts made while it was unreachable; retrying",
			zap.Int("pending", failed))
	} else {
		cfg.logger.Info("logouts made while the store was unreachable are now recorded in it", zap.Int("count", len(list)))
	}
}
