package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// sessions is the session component of one configuration: it seals and
// opens every cookie jit_auth keeps in the browser, keeps the sessions
// it has opened, and decides whether a session still counts (not
// logged out, its user not disabled or deleted). The parts that must
// outlive a config reload (cache, revocations, user statuses, the
// replay set) live in caddy.UsagePools and are shared with the other
// configuration generations (state.go); this value only holds them.
type sessions struct {
	// seal seals and opens the session, flow, pending and enrolment
	// cookies with this configuration's keys.
	seal cookieSeal
	// cache holds opened sessions by their exact cookie, shared by the
	// configurations with the same keys and lifetime.
	cache *sessionCache
	// revoked holds the logged-out session IDs, kept current from the
	// store by the revocation follower.
	revoked *revocations
	// status holds the user statuses the background refresh re-reads.
	status *userStatus
	// refresh is user_status_refresh: a session issued longer ago waits
	// for its user's first read by this process (admitted). 0 (sessions
	// that no App provisioned, with nothing reading their users): none
	// waits.
	refresh time.Duration
	// used is the replay set: login states and pending logins already
	// answered.
	used *usedStates

	// store takes every logout, so every instance sharing it learns of
	// it; pending keeps, in storage, the logouts it could not take yet.
	store provisioner.RevocationStore
	// once, when the store has it, records single-use IDs so that only
	// one instance uses each (see spend).
	once    provisioner.SingleUseStore
	pending *pendingRevocations
	storage revocationStorage
	logger  *zap.Logger

	// lifetimes bound a session from its sign-in by the shortest
	// session_lifetime configured since (lifetimes.go), also one sealed
	// under a longer lifetime and re-issued since (idle timeout, second
	// factor), whose ExpiresAt still says the longer one.
	lifetimes lifetimeHistory

	// started is closed once the configuration has started (App.ready),
	// which after a reload includes reading its store's revocations;
	// isStarted caches that it was seen closed. nil: nothing to wait for.
	started   <-chan struct{}
	isStarted atomic.Bool
}

// awaitStarted reports whether the configuration has started, waiting
// up to firstReadWait (or until ctx ends) for it: a handler of a new
// configuration may see requests before its app has started.
func (m *sessions) awaitStarted(ctx context.Context) bool {
	if m.started == nil || m.isStarted.Load() {
		return true
	}
	if !waitClosed(ctx, m.started, firstReadWait) {
		return false
	}
	m.isStarted.Store(true)
	return true
}

// load returns the valid session r carries, or nil. offered reports
// whether the application offers a connection: a session from one it
// does not offer is no session there. This is the authenticated request
// path: it reads the cookie, the cache and memory, never the store.
func (m *sessions) load(r *http.Request, offered func(connection string) bool) *Session {
	s, _ := m.open(r, offered)
	return s
}

// open is load, also reporting whether the session could be checked:
// false (and no session) when r carries one that this process cannot
// yet tell from a logged-out one, because it has not read the
// revocations since it started (see admitted).
func (m *sessions) open(r *http.Request, offered func(connection string) bool) (*Session, bool) {
	name := cookieName(sessionCookieBase, cookieSecure(r))
	// The cache holds only values that were checked and opened, so the
	// first cookie of that name is looked up there unchecked; only a
	// value that is not there is read as net/http would (cookieValue).
	value, ok := firstCookie(r, name)
	if !ok {
		return nil, true
	}
	if len(value) > 1 && value[1] == '.' { // the first of several parts
		if value, ok = joinedSession(r, name, value, firstCookie); !ok {
			return nil, true
		}
	}
	now := time.Now()
	e := m.cache.entry(name, value)
	if e == nil {
		if value, ok = sessionValue(r, name); !ok {
			return nil, true
		}
		s := new(Session)
		if !m.seal.decodeSession(name, value, s) {
			return nil, true
		}
		// Checked once here, as the cached copy's ExpiresAt: the cache
		// belongs to one history (sessionCacheKey).
		s.ExpiresAt = m.lifetimes.end(s.IssuedAt, s.ExpiresAt)
		if !s.valid(now) {
			return nil, true
		}
		s.prepare()
		e = m.cache.put(name, value, s, now.Unix())
	}
	if !e.session.valid(now) || !offered(e.session.Connection) {
		return nil, true
	}
	return m.admitted(r.Context(), e, now.Unix())
}

// firstReadWait bounds how long a request with a session waits for the
// first read of the revocations after a start, as startWait bounds the
// wait for the store.
var firstReadWait = 5 * time.Second

// sessionCheck is the outcome of checking a cached session against the
// revocations and its user's status, valid while neither has changed
// since: both count their changes (gen), and a request whose counts
// match the check's reads its outcome instead of checking again.
type sessionCheck struct {
	revoked  *revocations
	status   *userStatus
	revGen   uint64
	statGen  uint64
	outcome  *Session     // nil: refused
	userSeen *statusEntry // the user's status entry, touched per request
}

// admitted returns e's session as it counts now: nil when it was logged
// out or its user is disabled or deleted, else the session as the
// user's profile last read says (liveProfile.current). The outcome is
// kept on e until a revocation or a user status changes, so an
// authenticated request reads two counters and its check instead of
// three locked maps and the profile.
//
// A session is checked only once the revocations have been read from
// the store since this process started: before, a logout recorded
// before the start (through this instance or another) is not in them.
// Until then the check waits up to firstReadWait, then reports false,
// and keeps no outcome; once read, a check is kept as before, so the
// wait costs the authenticated path nothing. So, for a session of a
// local user, with the user's first read by this process (after a
// start, or the user's first request here): the cookie's profile and
// the status it implies speak for the user as the login found them, and
// a change made since (a role taken away, a disable in the store) must
// show once user_status_refresh has passed, as it does where the user
// was read. A session issued less than that ago does not wait: any
// change to its user is newer still, and may show at the read that
// follows at once. A JIT-off session under a local user's name waits
// the same way for its holder's first read: its profile is the
// provider's, which no read here changes, but its holder's status (a
// disable made in the store directly, with no sign-out everywhere)
// must show as it does where the holder was read. Not one whose holder
// is a name (holderByName): its sign-in, during a store outage, read
// no holder, and such a session keeps working while the outage lasts,
// however old, as before; it follows the holder once the store answers.
func (m *sessions) admitted(ctx context.Context, e *cachedSession, nowUnix int64) (*Session, bool) {
	if !m.awaitStarted(ctx) {
		return nil, false
	}
	revGen, statGen := m.revoked.generation(), m.status.generation()
	if c := e.checked.Load(); c != nil && c.revGen == revGen && c.statGen == statGen &&
		c.revoked == m.revoked && c.status == m.status {
		if c.userSeen != nil {
			c.userSeen.seen(nowUnix)
		}
		return c.outcome, true
	}
	if !m.revoked.awaitRead(ctx, firstReadWait) {
		return nil, false
	}
	revGen, statGen = m.revoked.generation(), m.status.generation()
	c := &sessionCheck{revoked: m.revoked, status: m.status, revGen: revGen, statGen: statGen}
	s := e.session
	switch {
	case m.revoked.refuses(s):
	case s.UserID == "" && s.Holder == "":
		c.outcome = s
	case s.UserID == "":
		// A JIT-off session under a local user's name: that user's
		// status decides, the profile stays the session's own.
		active, _, entry := m.status.lookup(s.Holder, nowUnix)
		if !entry.statusWasRead() && m.outlivesRefresh(s) && !isHolderName(s.Holder) {
			// A disable made in the store directly (no sign-out with it)
			// is in no cookie: waited for as a JIT-on session's is.
			m.status.wakeReader()
			if !entry.awaitStatusRead(ctx, firstReadWait) {
				return nil, false
			}
			active = !entry.refused.Load()
		}
		c.userSeen = entry
		if active {
			c.outcome = s
		}
	default:
		active, profile, entry := m.status.lookup(s.UserID, nowUnix)
		if !entry.wasRead() && m.outlivesRefresh(s) {
			// Requests that come meanwhile wait for the same read; each
			// asks for it, should a reload have dropped the request.
			m.status.wakeReader()
			if !entry.awaitRead(ctx, firstReadWait) {
				return nil, false
			}
			active, profile = !entry.refused.Load(), entry.profile.Load()
		}
		c.userSeen = entry
		if active {
			// Changes to the user since the session was issued (roles,
			// groups, name, email) show within user_status_refresh.
			if c.outcome = profile.current(s); c.outcome != s {
				c.outcome.identity = newForwardedIdentity(c.outcome)
			}
		}
	}
	e.checked.Store(c)
	return c.outcome, true
}

// isHolderName reports whether holder is a name rather than a local ID
// (holderByName).
func isHolderName(holder string) bool {
	_, ok := holderByName(holder)
	return ok
}

// outlivesRefresh reports whether s was issued user_status_refresh or
// more ago (counted from the start of the second it was issued in).
func (m *sessions) outlivesRefresh(s *Session) bool {
	return m.refresh > 0 && time.Now().UnixNano()-s.IssuedAt*int64(time.Second) >= int64(m.refresh)
}

// confirm reports whether s still counts by what the store says now,
// rather than by what this instance last read of it: the revocations
// recorded since the last poll are read at once, and so is the status
// of s's user. Requests trust memory, which follows the store within
// revocation_poll and user_status_refresh; a rare step whose effect
// outlives those bounds asks this first. Enrolling a second factor is
// one: a sign-out, a factor reset or a disable made through another
// instance must stop a session from before it at once, or the holder of
// the provider login alone sets the factor for good. What confirm reads
// also reaches this instance's memory, for every session. An error is
// the store's: the caller fails closed.
func (m *sessions) confirm(ctx context.Context, users provisioner.UserStore, s *Session) (bool, error) {
	if err := m.revoked.catchUp(ctx, m.store); err != nil {
		return false, fmt.Errorf("reading the latest logouts: %w", err)
	}
	if m.revoked.refuses(s) {
		return false, nil
	}
	id := s.directoryUser()
	if _, byName := holderByName(id); id == "" || byName {
		// No local user, or (a JIT-off session) one the status refresh
		// finds by name; enrolment, the one caller, needs a local user.
		return true, nil
	}
	u, err := users.User(ctx, id)
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		u = nil // deleted
	case err != nil:
		return false, fmt.Errorf("reading the user's status: %w", err)
	}
	if m.status != nil {
		m.status.update(id, u, m.logger)
	}
	return u != nil && u.Status == provisioner.StatusActive, nil
}

// userRead records that a sign-in or a bearer token's check, whose
// store reads began at readFrom, found its user active (res.User, or
// the local user holding a JIT-off name, res.Holder): it let them in.
// This instance may hold an older reading until its next
// user_status_refresh: a disable it learnt of, which an enable through
// another instance has undone since. That older reading must not refuse
// the session just issued (the user, enabled again, would be sent back
// to sign in until the refresh). A reading made here after readFrom (a
// disable through this instance meanwhile) is newer, and stays. A JIT-on
// sign-in's reading is also its user's profile, and the user's first
// read here (userStatus.signedIn): the session it issues never waits
// for one. Of a holder, only the status is taken, as the holder's first
// status read here (userStatus.holderSignedIn): the JIT-off session it
// issues never waits for one, and the holder's JIT-on sessions still
// wait for the profile.
func (m *sessions) userRead(res provisioner.Result, readFrom time.Time) {
	if m.status == nil {
		return
	}
	if res.User != nil && res.User.Status == provisioner.StatusActive {
		m.status.signedIn(res.User, readFrom)
	}
	if res.Holder != "" {
		m.status.holderSignedIn(res.Holder, readFrom)
	}
}

// endedSince records in s, about to be issued for a login whose
// provider answer was verified at authAt (Unix seconds), that it counts
// from then (Session.AuthAt), and reports whether it is refused: a
// logout that ends its user, subject or provider session (back-channel
// logout, sign out everywhere, a second factor reset) recorded while the
// login waited for the user counts against the session it becomes,
// though issued after, here now and on an instance that learns of the
// logout only later.
func (m *sessions) endedSince(s *Session, authAt int64) bool {
	if authAt != 0 && authAt < s.IssuedAt {
		s.AuthAt = authAt // and so on every instance, later too
	}
	probe := *s
	probe.prepare()
	return m.revoked.refuses(&probe)
}

// issue sets the session cookie of s: at the end of a login, or again
// when the second factor upgrades it.
func (m *sessions) issue(w http.ResponseWriter, r *http.Request, s *Session) error {
	secure := cookieSecure(r)
	name := cookieName(sessionCookieBase, secure)
	value, err := m.seal.encodeSession(name, s)
	if err != nil {
		return err
	}
	setSessionCookies(w, r, name, value, time.Until(time.Unix(s.ExpiresAt, 0)), secure)
	return nil
}

// clear deletes the session cookie and its parts.
func (m *sessions) clear(w http.ResponseWriter, r *http.Request) {
	secure := cookieSecure(r)
	name := cookieName(sessionCookieBase, secure)
	setCookie(w, name, "", -1, secure)
	clearSessionParts(w, r, name, 1, secure)
}

// carried reports whether r carries a session cookie, whatever it holds.
func (m *sessions) carried(r *http.Request) bool {
	_, ok := firstCookie(r, cookieName(sessionCookieBase, cookieSecure(r)))
	return ok
}

// clearUnseen deletes the session cookie and every part it may have,
// whether r carries them or not: for a request the browser sent without
// its SameSite=Lax cookies (a cross-site POST), which may yet hold them.
func (m *sessions) clearUnseen(w http.ResponseWriter, r *http.Request) {
	secure := cookieSecure(r)
	name := cookieName(sessionCookieBase, secure)
	for i := range maxSessionParts {
		setCookie(w, sessionPartName(name, i), "", -1, secure)
	}
}

// upgrade issues s again with the second factor passed.
func (m *sessions) upgrade(w http.ResponseWriter, r *http.Request, s *Session) error {
	done := *s
	done.MFA = true
	return m.issue(w, r, &done)
}

// claim marks a login state or pending login ID answered, and reports
// whether it was unanswered before: a replay of either is refused here
// at once and, once spend has recorded the ID, on every instance that
// shares the store (within its revocation poll) and after a restart.
func (m *sessions) claim(id string, now time.Time) bool {
	sid := spentID(id)
	if m.revoked.has(sid) || !m.used.claim(id, now) {
		return false
	}
	// A copy's spend may have recorded the ID, and released its claim,
	// between the two reads above (spend records before it releases).
	if m.revoked.has(sid) {
		m.used.release(id)
		return false
	}
	return true
}

// spend records a claimed ID through the store, as a logout is recorded
// (revokeID), until expires, and reports whether this instance is the
// one that used it. It is called once the answer is genuine (a login
// state after the connector accepted the provider's answer), so that
// junk answers write nothing. A store that is a
// provisioner.SingleUseStore tells at once when another instance used
// the ID first; with any other, claim refuses the ID there from the
// next revocation poll on. When the store fails, the record is kept as
// a logout is, and this instance uses the ID. When Caddy's storage
// fails too, spend returns the error and leaves no record of the ID
// here either: the caller answers "try again" (5xx) and releases its
// claim, so that the retry is not refused as a replay.
func (m *sessions) spend(ctx context.Context, id string, expires time.Time) (first bool, err error) {
	sid := spentID(id)
	if m.once == nil {
		err = m.revokeID(ctx, sid, expires)
		first = err == nil
	} else {
		first, err = m.record(ctx, sid, expires, func(ctx context.Context) (bool, error) {
			return m.once.UseOnce(ctx, sid, expires)
		})
	}
	if err != nil {
		m.revoked.forget(sid)
		return first, err
	}
	// Recorded (m.revoked has it, which claim reads first): the claim
	// need not take room in the bounded replay set (usedStates) until
	// the flow expires.
	m.used.release(id)
	return first, nil
}

// spentPrefix starts the revocation IDs of spent single-use IDs.
const spentPrefix = "spent:"

// spentID is the revocation ID that marks a single-use ID spent: a
// digest, so that the store never holds a login's state.
func spentID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return spentPrefix + hex.EncodeToString(sum[:16])
}

// firstRefusal reports whether the refusal of a callback for the login
// state id is the first (what, such as "replayed", tells refusals
// apart that may follow each other): a refused answer releases its
// state, so one flow cookie, sent again with an error answer, is
// refused again until the flow expires, and is audited once, not once
// per request.
func (m *sessions) firstRefusal(id, what string, now, expires time.Time) bool {
	return m.auditOnce(what+"\x00"+id, now, expires)
}

// auditOnce reports whether key, an outcome that a client can repeat at
// will, is seen for the first time (until expires), so that it is
// audited once (onceSet, kept beside the replay set).
func (m *sessions) auditOnce(key string, now, expires time.Time) bool {
	if m.used == nil {
		return true
	}
	return m.used.audited.first(key, now, expires)
}

// firstIdle reports whether s, as its cookie carries it (its last
// activity for the application key), is seen idle for the first time.
// An idle cookie is no session, but stays valid until the session
// expires: every request with it (a page's assets, a polling tab, a
// script with a copy) would otherwise be audited as the session's end.
// A later copy of the cookie has a later last activity, and ends again.
func (m *sessions) firstIdle(key string, s *Session, now time.Time) bool {
	id := "idle\x00" + key + "\x00" + s.ID + "\x00" + strconv.FormatInt(s.lastActive(key), 10)
	return m.auditOnce(id, now, time.Unix(s.ExpiresAt, 0))
}

// firstSignOut reports whether the sign-out of s is its first here (and
// s has not expired): a sign-out takes the session cookie revoked or
// expired too (openAny), so a copy of it can be posted again at will.
// The caller has recorded the sign-out (revoke): signedOut reads this.
func (m *sessions) firstSignOut(s *Session, now time.Time) bool {
	expires := time.Unix(s.ExpiresAt, 0)
	return now.Before(expires) && m.auditOnce(signOutKey(s), now, expires)
}

// signedOut reports whether the sign-out of s has nothing left to
// record: s has expired (nothing accepts it), or its sign-out was
// recorded here already (firstSignOut). A copy of the cookie and its
// form token can be posted again at will (openAny), and each would
// otherwise write the revocation, and drop the refresh token, in the
// store again. A sign-out that could not be recorded is not marked, so
// that the user's retry records it.
func (m *sessions) signedOut(s *Session, now time.Time) bool {
	if !now.Before(time.Unix(s.ExpiresAt, 0)) {
		return true
	}
	return m.used != nil && m.used.audited.recorded(signOutKey(s), now)
}

// signOutKey names the sign-out of s in the onceSet (auditOnce).
func signOutKey(s *Session) string { return "signed out\x00" + s.ID }

// release undoes claim for an ID that was not used: a login state whose
// provider answer was refused (see usedStates), or one whose use could
// not be recorded (spend failed), whose retry must not be refused.
func (m *sessions) release(id string) { m.used.release(id) }

// openAny reads the session cookie r carries, whatever its state: any
// session sealed with these keys, even one expired or revoked meanwhile
// (ending it again is harmless), or nil. Only a logout wants this.
func (m *sessions) openAny(r *http.Request) *Session {
	name := cookieName(sessionCookieBase, cookieSecure(r))
	value, ok := sessionValue(r, name)
	var s Session
	if !ok || !m.seal.decodeSession(name, value, &s) || s.ID == "" {
		return nil
	}
	return &s
}

// revoke ends session s (S7, S17): at once on this instance, and
// through the store on every instance that shares it. When the store
// cannot take the revocation (an outage), it is kept in Caddy's storage,
// refused here meanwhile, read again when Caddy starts, and handed to the
// store in the background until the store has it. revoke fails only when
// neither the store nor Caddy's storage holds the revocation: the logout
// must then not be acknowledged.
func (m *sessions) revoke(ctx context.Context, s *Session) error {
	return m.revokeID(ctx, s.ID, time.Unix(s.ExpiresAt, 0))
}

// signOutEverywhere ends every session of the local user issued until
// now, here at once and on every instance sharing the store within its
// poll, durably as a logout is (revoke). lifetime bounds how long such
// a session can live, so the cutoff is kept that long. subjects are the
// cutoff keys of the user's identities (App.identityCutoffKeys), which
// end the sessions issued through them without a local user.
func (m *sessions) signOutEverywhere(ctx context.Context, u *provisioner.User, subjects []string, lifetime time.Duration) error {
	now := time.Now()
	expires := cutoffExpiry(now, lifetime)
	for _, key := range append(localUserCutoffKeys(u), subjects...) {
		if err := m.revokeID(ctx, userCutoffID(key, now), expires); err != nil {
			return err
		}
	}
	return nil
}

// localUserCutoffKeys are the cutoff keys that end every session of the
// local user u: its ID, and its name's when the name could be a JIT-off
// one (nameCutoffKey).
func localUserCutoffKeys(u *provisioner.User) []string {
	keys := []string{u.ID}
	if key := nameCutoffKey(u.Username); key != "" {
		// JIT-off sessions under the user's name issued before the user
		// existed carry no Holder; their name is the user's.
		keys = append(keys, key)
	}
	return keys
}

// revokeID records one revocation: a session's ID, a user cutoff, or
// something used once (spentID).
func (m *sessions) revokeID(ctx context.Context, id string, expires time.Time) error {
	_, err := m.record(ctx, id, expires, func(ctx context.Context) (bool, error) {
		return true, m.store.RevokeSession(ctx, id, expires)
	})
	return err
}

// record refuses id here at once and writes it to the store with
// write, which reports whether the store took it as new. When the store
// fails, the record is kept in Caddy's storage (see revoke) and counts
// as new.
func (m *sessions) record(ctx context.Context, id string, expires time.Time, write func(context.Context) (bool, error)) (bool, error) {
	m.revoked.add(id, expires)
	// The logout completes even if the browser goes away meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	first, err := write(ctx)
	if err == nil {
		return first, nil
	}
	m.logger.Warn("recording a logout (or a used login step) in the store failed; keeping it in Caddy's storage and retrying until the store takes it",
		zap.Error(err))
	if perr := m.pending.keep(ctx, m.storage, id, expires); perr != nil {
		return false, fmt.Errorf("the store failed (%v), and so did Caddy's storage (%v)", err, perr)
	}
	return true, nil
}
