package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// RefreshConfig makes a connection's sessions follow the provider: the
// login's refresh token is kept sealed in the store, redeemed in the
// background before the provider's tokens expire, and the claims it
// returns update the local user as a login would (sync, role mapping),
// which live sessions show within user_status_refresh. A refresh the
// provider refuses (the user was removed or disabled there, the grant
// revoked) ends the session; a session that ended (a logout, a sign-out
// everywhere, a back-channel logout, its session_lifetime, also one a
// reload shortened) is no longer refreshed.
// It needs JIT on, a connector that can refresh (oidc), and a store
// that keeps refresh tokens (sqlite, postgres); providers often issue
// refresh tokens only for the offline_access scope.
type RefreshConfig struct {
	// Every bounds the time between two refreshes of a session, for
	// providers whose tokens live long. Default: refresh only shortly
	// before the provider's tokens expire (and at least every hour).
	Every caddy.Duration `json:"every,omitempty"`
}

const (
	// refreshAhead is how long before the provider's tokens expire a
	// session is refreshed.
	refreshAhead = time.Minute
	// refreshAtLeast bounds the wait when the provider states no expiry.
	refreshAtLeast = time.Hour
	// refreshRetry is the wait after a provider or store outage.
	refreshRetry = 30 * time.Second
	// refreshLease names the lease that lets one instance refresh.
	refreshLease = "jit_auth.refresh"
	// refreshBatch is how many due tokens one pass takes.
	refreshBatch = 100
)

// next is when a session refreshed at now, with tokens expiring at
// expiry, is due again.
func (c *RefreshConfig) next(now, expiry time.Time) time.Time {
	wait := refreshAtLeast
	if !expiry.IsZero() {
		wait = min(wait, expiry.Sub(now)-refreshAhead)
	}
	if c.Every > 0 {
		wait = min(wait, time.Duration(c.Every))
	}
	return now.Add(max(wait, time.Second))
}

// tick is how often the refresher looks for due sessions.
func (c *RefreshConfig) tick() time.Duration {
	if c.Every > 0 {
		return min(max(time.Duration(c.Every)/2, 500*time.Millisecond), 30*time.Second)
	}
	return 30 * time.Second
}

// checkRefresh says what a connection with refresh lacks.
func (a *App) checkRefresh(c *Connection) error {
	switch {
	case c.Refresh == nil:
		return nil
	case !c.jitEnabled():
		return fmt.Errorf("connection %q: refresh needs jit on: refreshed claims update the local user, and with JIT off there is none", c.name)
	case c.refresher == nil:
		return fmt.Errorf("connection %q: refresh needs a connector that can redeem refresh tokens (connector.Refresher), and %s cannot; use an oidc connection or drop refresh", c.name, c.kind)
	case a.refreshTokens == nil || a.admin == nil:
		return fmt.Errorf("connection %q: refresh needs a store that keeps refresh tokens (provisioner.RefreshTokenStore and AdminStore), and the store (%s) does not; use the sqlite or postgres store, or drop refresh", c.name, a.storeName())
	case c.Refresh.Every < 0 || (c.Refresh.Every > 0 && time.Duration(c.Refresh.Every) < time.Second):
		return fmt.Errorf("connection %q: refresh %s: use at least 1s", c.name, time.Duration(c.Refresh.Every))
	}
	return nil
}

// refreshFeature keeps a login's refresh token for a connection that
// refreshes its sessions, and drops it when the session is signed out
// (a sessionFeature).
type refreshFeature struct{}

func (refreshFeature) carries(conn *Connection) loginTokens {
	return loginTokens{refreshToken: conn.refreshes()}
}

func (refreshFeature) started(h *Handler, _ http.ResponseWriter, r *http.Request, conn *Connection, s *Session, c provisioner.Claims, now time.Time) {
	h.keepRefreshToken(r.Context(), conn, s, c, now)
}

func (refreshFeature) ended(h *Handler, r *http.Request, s *Session) {
	h.forgetRefreshToken(r, s)
}

// refreshes reports whether the connection follows the provider with
// its refresh tokens.
func (c *Connection) refreshes() bool { return c.Refresh != nil && c.refresher != nil }

// keepRefreshToken stores the login's refresh token for s, sealed, when
// its connection refreshes. A login whose token cannot be kept still
// completes: its session then lives without refresh, as the log says.
func (h *Handler) keepRefreshToken(ctx context.Context, conn *Connection, s *Session, c provisioner.Claims, now time.Time) {
	if !conn.refreshes() || s.UserID == "" {
		return
	}
	if c.RefreshToken == "" {
		// Said of the connection, not of one login: spaced, as every
		// sign-in through it would write it again.
		if skipped, ok := conn.noRefreshTokenWarned.due(now); ok {
			h.logger.Warn("the provider issued no refresh token, so this session will not follow it; many providers need the offline_access scope",
				zap.String("connection", conn.name), zap.Uint64("not_logged_since_last", skipped))
		}
		return
	}
	sealed, err := h.app.sealRefreshToken(s.ID, refreshEnvelopeFor(s, c.RefreshToken))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		err = h.app.refreshTokens.PutRefreshToken(ctx, provisioner.RefreshToken{
			SessionID: s.ID, UserID: s.UserID, Connection: conn.name, Sealed: sealed,
			RefreshAt: conn.Refresh.next(now, c.TokenExpiry), ExpiresAt: time.Unix(s.ExpiresAt, 0),
		})
	}
	if err != nil {
		h.logger.Warn("keeping the refresh token failed; this session will not follow the provider", zap.String("connection", conn.name), zap.Error(err))
	}
}

// refreshEnvelope is what a kept refresh token is sealed in, under
// refreshEnvelopeAAD: the token and what the refresher needs of its
// session, which the store does not keep, to tell whether the session
// still counts as a request would tell it: its sign-in, to bound it by
// the session_lifetime history (sessions.open), and its verified login,
// subject and provider session, for the sign-outs everywhere and
// back-channel logouts that end it (revocations.refuses).
type refreshEnvelope struct {
	Token       string `json:"t"`
	IssuedAt    int64  `json:"iat"`
	AuthAt      int64  `json:"auth,omitempty"`
	Subject     string `json:"sub,omitempty"`
	ProviderSID string `json:"psid,omitempty"`
}

// refreshEnvelopeFor is the envelope of token for s.
func refreshEnvelopeFor(s *Session, token string) refreshEnvelope {
	return refreshEnvelope{Token: token, IssuedAt: s.IssuedAt, AuthAt: s.AuthAt, Subject: s.Subject, ProviderSID: s.ProviderSID}
}

// known reports whether the envelope carries its session's facts: a
// token sealed before the envelope carries only itself.
func (e refreshEnvelope) known() bool { return e.IssuedAt != 0 }

// session is the session of t as far as the envelope tells it, enough
// for revocations.refuses.
func (e refreshEnvelope) session(t provisioner.RefreshToken) *Session {
	s := &Session{ID: t.SessionID, UserID: t.UserID, Connection: t.Connection, Subject: e.Subject,
		ProviderSID: e.ProviderSID, IssuedAt: e.IssuedAt, AuthAt: e.AuthAt}
	s.prepare()
	return s
}

// refreshEnvelopeAAD binds a sealed envelope to its session. It differs
// from refreshAAD, so a value of one format never opens as the other.
func refreshEnvelopeAAD(sessionID string) string { return "refresh envelope\x00" + sessionID }

// refreshAAD binds a refresh token sealed before the envelope (the raw
// token) to its session.
func refreshAAD(sessionID string) string { return "refresh token\x00" + sessionID }

// sealRefreshToken seals env for the session sessionID.
func (a *App) sealRefreshToken(sessionID string, env refreshEnvelope) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a token's < > & as they are, not six bytes each
	if err := enc.Encode(env); err != nil {
		return nil, err
	}
	return a.sealers[0].Seal(refreshEnvelopeAAD(sessionID), b.String())
}

// openRefreshToken opens what sealRefreshToken sealed, with any cookie
// key. A token sealed before the envelope (the raw token under
// refreshAAD) still opens, as an envelope that knows nothing of its
// session: it is bounded only by its ExpiresAt (the lifetime at the
// sign-in) and by a logout of its own session ID.
func (a *App) openRefreshToken(sessionID string, sealed []byte) (refreshEnvelope, error) {
	var env refreshEnvelope
	b, err := a.openSecret(refreshEnvelopeAAD(sessionID), sealed)
	if err != nil {
		env.Token, err = a.openSecret(refreshAAD(sessionID), sealed)
		return env, err
	}
	if err := json.Unmarshal([]byte(b), &env); err != nil || env.Token == "" {
		return refreshEnvelope{}, errors.New("the sealed refresh token is in a format this version does not read")
	}
	return env, nil
}

// sessionEnd is when the session of t, signed in at issued (0: not
// known), ends: at t.ExpiresAt, or earlier where a reload shortened
// session_lifetime since the sign-in, as a request bounds its cookie.
func (a *App) sessionEnd(t provisioner.RefreshToken, issued int64) time.Time {
	if issued == 0 {
		return t.ExpiresAt
	}
	if end := time.Unix(a.sessions.lifetimes.end(issued, t.ExpiresAt.Unix()), 0); end.Before(t.ExpiresAt) {
		return end
	}
	return t.ExpiresAt
}

// forgetRefreshToken drops a logged-out session's refresh token.
func (h *Handler) forgetRefreshToken(r *http.Request, s *Session) {
	if h.app.refreshTokens == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	if h.app.state != nil {
		h.app.state.unsavedRefresh.forget(string(h.app.StoreRaw), s.ID)
	}
	if err := h.app.refreshTokens.DeleteRefreshToken(ctx, s.ID); err != nil {
		h.logger.Warn("dropping the refresh token of a logged-out session; the refresher drops it when it is next due", zap.Error(err))
	}
}

// refresher redeems the due refresh tokens of one configuration.
type refresher struct {
	app    *App
	conns  map[string]*Connection // those with refresh
	tick   time.Duration
	holder string // who takes the lease: processHolder
	// unsaved holds the rotated tokens the store failed to keep, across
	// reloads (sharedState); nil keeps none. They are kept for the store
	// storeID names (its configuration), so that a reload to another
	// store does not write them there.
	unsaved *unsavedRefreshTokens
	storeID string
	// paused is, by connection, until when its provider asked for no
	// more refreshes (Retry-After).
	paused *pausedConnections
}

// pausedConnections is, by connection, until when its provider asked
// not to be sent refreshes.
type pausedConnections struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// pause records that conn's provider asked for no refresh before until.
func (rf *refresher) pause(conn string, until time.Time) {
	if rf.paused == nil {
		return
	}
	rf.paused.mu.Lock()
	defer rf.paused.mu.Unlock()
	if until.After(rf.paused.until[conn]) {
		rf.paused.until[conn] = until
	}
}

// pausedUntil is until when conn's provider asked for no refresh (the
// zero time: it did not).
func (rf *refresher) pausedUntil(conn string) time.Time {
	if rf.paused == nil {
		return time.Time{}
	}
	rf.paused.mu.Lock()
	defer rf.paused.mu.Unlock()
	return rf.paused.until[conn]
}

// newRefresher is a's refresher, or nil when no connection refreshes.
func (a *App) newRefresher() *refresher {
	rf := &refresher{app: a, conns: map[string]*Connection{}, tick: 30 * time.Second, holder: processHolder}
	if a.state != nil {
		rf.unsaved, rf.paused = a.state.unsavedRefresh, a.state.pausedRefresh
		rf.storeID = string(a.StoreRaw)
	}
	for _, name := range a.connectionNames() {
		if c := a.Connections[name]; c != nil && c.refreshes() {
			rf.conns[name] = c
			rf.tick = min(rf.tick, c.Refresh.tick())
		}
	}
	if len(rf.conns) == 0 || a.refreshTokens == nil || a.admin == nil {
		return nil
	}
	return rf
}

// refreshOneTimeout bounds the refresh of one session: the provider's
// answer and the store's writes.
const refreshOneTimeout = 2 * storeTimeout

// pass refreshes what is due, if this process holds the lease.
func (rf *refresher) pass(ctx context.Context) {
	a := rf.app
	// Not before the revocations are first read: until then the sign-outs
	// everywhere and back-channel logouts recorded before this start are
	// unknown, and the token of a session they ended would be redeemed.
	if !a.sessions.revoked.awaitRead(ctx, firstReadWait) {
		return
	}
	if !rf.lease(ctx) {
		return
	}
	rf.saveUnsaved(ctx)
	now := time.Now()
	qctx, cancel := context.WithTimeout(ctx, storeTimeout)
	due, err := a.refreshTokens.DueRefreshTokens(qctx, now, refreshBatch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("refresh: reading the due sessions", zap.Error(err))
		}
		return
	}
	for i, t := range due {
		// The lease is renewed before each token, and outlives its
		// refresh: another instance never redeems a token this one still
		// works on. One that cannot renew it stops, as one lost it.
		if ctx.Err() != nil || (i > 0 && !rf.lease(ctx)) {
			return
		}
		rf.one(ctx, t, time.Now())
	}
}

// lease takes or renews the refresh lease for this process, for longer
// than one session's refresh takes, and reports whether it holds it.
func (rf *refresher) lease(ctx context.Context) bool {
	a := rf.app
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	held, err := a.admin.AcquireLease(lctx, refreshLease, rf.holder, max(3*rf.tick, refreshOneTimeout+storeTimeout))
	cancel()
	if err != nil && ctx.Err() == nil {
		a.logger.Warn("refresh: taking the lease", zap.Error(err))
	}
	return err == nil && held
}

// dueBy is refreshAt, or end if that is earlier: a token is due when
// its session ends, to be dropped then.
func dueBy(refreshAt, end time.Time) time.Time {
	if end.Before(refreshAt) {
		return end
	}
	return refreshAt
}

// one refreshes one session's tokens.
func (rf *refresher) one(ctx context.Context, t provisioner.RefreshToken, now time.Time) {
	a := rf.app
	ctx, cancel := context.WithTimeout(ctx, refreshOneTimeout)
	defer cancel()
	// The store may hold a token the provider has rotated away, when
	// keeping the new one failed: this process still has that one.
	if newer, ok := rf.unsaved.get(rf.storeID, t.SessionID); ok {
		if now.Before(newer.RefreshAt) {
			return
		}
		t = newer
	}
	drop := func() {
		rf.unsaved.forget(rf.storeID, t.SessionID)
		if err := a.refreshTokens.DeleteRefreshToken(ctx, t.SessionID); err != nil {
			a.logger.Warn("refresh: dropping a refresh token", zap.Error(err))
		}
	}
	conn := rf.conns[t.Connection]
	if conn == nil || !now.Before(t.ExpiresAt) || a.sessions.revoked.has(t.SessionID) {
		drop() // the connection stopped refreshing, or the session ended
		return
	}
	env, err := a.openRefreshToken(t.SessionID, t.Sealed)
	if err != nil {
		a.logger.Warn("refresh: a refresh token no cookie key opens (keys rotated away?), or sealed in a format this version does not read; dropping it", zap.String("connection", t.Connection))
		drop()
		return
	}
	// A session a shortened session_lifetime ended is not refreshed: its
	// grant is not kept alive at the provider, nor its user provisioned.
	// Else the end is kept, so that the token is dropped then.
	if t.ExpiresAt = a.sessionEnd(t, env.IssuedAt); !now.Before(t.ExpiresAt) {
		drop()
		return
	}
	// Nor one a sign-out everywhere or a back-channel logout ended.
	if env.known() && a.sessions.revoked.refuses(env.session(t)) {
		drop()
		return
	}
	retry := func(why string, err error) {
		// A provider that said when to come back (429 or 503 with
		// Retry-After) gets no request of this connection before then.
		wait := refreshRetry
		if ra := connector.RetryAfter(err); ra > 0 {
			rf.pause(conn.name, now.Add(ra))
			wait = max(wait, ra)
		}
		a.logger.Warn("refresh: "+why+"; trying again later", zap.String("connection", t.Connection), zap.Duration("retry_in", wait), zap.Error(err))
		t.RefreshAt = dueBy(now.Add(wait), t.ExpiresAt)
		rf.put(ctx, t)
	}
	if until := rf.pausedUntil(conn.name); now.Before(until) {
		t.RefreshAt = dueBy(until, t.ExpiresAt)
		rf.put(ctx, t)
		return
	}
	claims, next, expiry, err := conn.refresher.Refresh(ctx, env.Token)
	if err == nil && !rf.keep(ctx, &t, env, next, conn.Refresh.next(now, expiry)) {
		drop()
		return
	}
	if err == nil {
		var u *provisioner.User
		if u, err = a.store.UserByIdentity(ctx, provisioner.IdentityKey{Connection: conn.name, Issuer: claims.Issuer, Subject: claims.Subject}); err == nil && u.ID != t.UserID {
			err = fmt.Errorf("%w: the refreshed tokens name another user", connector.ErrRejected)
		} else if errors.Is(err, provisioner.ErrNotFound) {
			err = fmt.Errorf("%w: the refreshed tokens name no user of this session", connector.ErrRejected)
		}
	}
	switch {
	case errors.Is(err, connector.ErrRejected):
		a.observers.emit(a.logger, event{kind: eventRefreshRefused, connection: conn.name, localID: t.UserID, err: err})
		if rerr := a.sessions.revokeID(ctx, t.SessionID, t.ExpiresAt); rerr != nil {
			retry("ending a session whose refresh the provider refused", rerr)
			return
		}
		drop()
		return
	case err != nil:
		retry("the provider did not answer the refresh", err)
		return
	}
	// Only the session's user is updated: deleted since the check above
	// (an administrator, deprovisioning), it is not created anew.
	res, err := a.provisioner.Provision(ctx, provisioner.Request{Connection: conn.name, Policy: conn.pol, Claims: claims, UpdateOnly: true})
	switch {
	case errors.Is(err, provisioner.ErrUserDisabled):
		drop() // the status refresh ends the session
		return
	case errors.Is(err, provisioner.ErrNotProvisioned):
		drop() // deleted: the delete ended the session, and the status refresh refuses it
		return
	case err != nil:
		retry("applying the refreshed claims", err)
		return
	}
	if len(res.Changed) > 0 {
		ev := event{kind: eventUserUpdated, connection: conn.name, localID: t.UserID, subject: claims.Subject, attributes: res.Changed, reason: "refresh"}
		if res.User != nil {
			ev.username = res.User.Username
		}
		a.observers.emit(a.logger, ev)
	}
}

// keep stores the token the provider answered a refresh of t with, due
// at refreshAt, before anything else can fail: a provider that rotates
// refresh tokens has redeemed the old one and refuses it from now on, so
// a retry must redeem the new one. It reports false when the new token
// cannot be sealed: the session can no longer follow the provider, and
// its token is to be dropped (not refused: the provider did not refuse).
// When the store fails, the new token is kept in memory (put) and
// written again before the next pass.
func (rf *refresher) keep(ctx context.Context, t *provisioner.RefreshToken, env refreshEnvelope, next string, refreshAt time.Time) bool {
	a := rf.app
	env.Token = next
	sealed, err := a.sealRefreshToken(t.SessionID, env)
	if err != nil {
		a.logger.Warn("refresh: the provider answered with a refresh token that cannot be kept; this session no longer follows the provider, and stays signed in",
			zap.String("connection", t.Connection), zap.Int("token_bytes", len(next)), zap.Error(err))
		return false
	}
	t.Sealed, t.RefreshAt = sealed, dueBy(refreshAt, t.ExpiresAt)
	rf.put(ctx, *t)
	return true
}

// put writes t to the store. Should the store fail, t is kept in
// memory: it may be a token the provider rotated to, and the store's
// copy one it refuses from now on, which would end the session. The
// memory is written again before each pass (saveUnsaved) and read in
// place of the store's copy until then.
func (rf *refresher) put(ctx context.Context, t provisioner.RefreshToken) {
	if err := rf.app.refreshTokens.PutRefreshToken(ctx, t); err != nil {
		kept := rf.unsaved.keep(rf.storeID, t)
		rf.app.logger.Warn("refresh: writing a refresh token to the store failed", zap.String("connection", t.Connection),
			zap.Bool("kept_in_memory", kept), zap.Error(err))
		return
	}
	rf.unsaved.forget(rf.storeID, t.SessionID)
}

// saveUnsaved writes the tokens the store failed to keep, those of
// sessions that still count. Those kept for a store a reload replaced
// are let go: they cannot reach it any more, and would take the room of
// this store's.
func (rf *refresher) saveUnsaved(ctx context.Context) {
	rf.unsaved.keepOnly(rf.storeID)
	for _, t := range rf.unsaved.all(rf.storeID) {
		if ctx.Err() != nil {
			return
		}
		if rf.app.sessions.revoked.has(t.SessionID) {
			rf.unsaved.forget(rf.storeID, t.SessionID)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := rf.app.refreshTokens.PutRefreshToken(pctx, t)
		cancel()
		if err != nil {
			rf.app.logger.Warn("refresh: writing the refresh tokens the store failed to keep", zap.Error(err))
			return
		}
		rf.unsaved.forget(rf.storeID, t.SessionID)
	}
}

// maxUnsavedRefreshTokens bounds the memory unsavedRefreshTokens take
// in a long store outage: two passes' worth.
const maxUnsavedRefreshTokens = 2 * refreshBatch

// unsavedRefreshTokens are refresh tokens the store failed to keep, by
// store and session. They outlive a reload, not a restart: a process
// that stops before the store is back loses them, as it does the
// session's refresh.
type unsavedRefreshTokens struct {
	mu sync.Mutex
	m  map[unsavedKey]provisioner.RefreshToken
}

type unsavedKey struct{ store, session string }

func newUnsavedRefreshTokens() *unsavedRefreshTokens {
	return &unsavedRefreshTokens{m: map[unsavedKey]provisioner.RefreshToken{}}
}

// keep records t for store, replacing an earlier one of its session,
// and reports whether it did (not when full).
func (u *unsavedRefreshTokens) keep(store string, t provisioner.RefreshToken) bool {
	if u == nil {
		return false
	}
	k := unsavedKey{store, t.SessionID}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.m[k]; !ok && len(u.m) >= maxUnsavedRefreshTokens {
		return false
	}
	u.m[k] = t
	return true
}

func (u *unsavedRefreshTokens) get(store, sessionID string) (provisioner.RefreshToken, bool) {
	if u == nil {
		return provisioner.RefreshToken{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[unsavedKey{store, sessionID}]
	return t, ok
}

func (u *unsavedRefreshTokens) forget(store, sessionID string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	delete(u.m, unsavedKey{store, sessionID})
	u.mu.Unlock()
}

// keepOnly forgets the tokens kept for any store but store.
func (u *unsavedRefreshTokens) keepOnly(store string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.m {
		if k.store != store {
			delete(u.m, k)
		}
	}
}

// all is a copy of the tokens kept for store, in no order.
func (u *unsavedRefreshTokens) all(store string) []provisioner.RefreshToken {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []provisioner.RefreshToken
	for k, t := range u.m {
		if k.store == store {
			out = append(out, t)
		}
	}
	return out
}

// runRefresh refreshes with the current configuration until ctx ends.
func (st *sharedState) runRefresh(ctx context.Context) {
	for {
		if cfg := st.current(); cfg != nil && cfg.refresher != nil {
			cfg.refresher.pass(ctx)
		}
		if !st.sleep(ctx, time.Now(), refreshTick) {
			return
		}
	}
}

// refreshTick is how long the refresher of cfg sleeps between passes.
func refreshTick(cfg *stateConfig) time.Duration {
	if cfg.refresher == nil {
		return 30 * time.Second
	}
	return cfg.refresher.tick
}
