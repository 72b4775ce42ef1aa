package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// rotatingProvider redeems each refresh token once, as Keycloak (with
// "Revoke Refresh Token"), Auth0 and Okta with rotation, or ZITADEL do:
// the answer carries the next token, and the one redeemed is refused
// from then on (invalid_grant, which the OIDC connector reports as
// connector.ErrRejected). nextLen, when set, makes the next token that
// long (a provider whose refresh tokens are large encrypted JWTs).
type rotatingProvider struct {
	valid   string
	n       int
	nextLen int
	asked   []string
}

func (p *rotatingProvider) Refresh(_ context.Context, token string) (provisioner.Claims, string, time.Time, error) {
	p.asked = append(p.asked, token)
	if token != p.valid {
		return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: the provider refused the refresh (invalid_grant: token already used)", connector.ErrRejected)
	}
	p.n++
	p.valid = fmt.Sprintf("rt-%d", p.n+1)
	if p.nextLen > len(p.valid) {
		p.valid += strings.Repeat("x", p.nextLen-len(p.valid))
	}
	return provisioner.Claims{Issuer: "https://idp.example", Subject: "ada", Email: "ada@example.com"}, p.valid, time.Now().Add(time.Hour), nil
}

// flakyIdentityStore fails the next failReads user lookups by identity, as a
// store does in a short outage (a PostgreSQL failover, a locked SQLite).
type flakyIdentityStore struct {
	*sqlitestore.Store
	failReads atomic.Int32
}

func (s *flakyIdentityStore) UserByIdentity(ctx context.Context, key provisioner.IdentityKey) (*provisioner.User, error) {
	if s.failReads.Add(-1) >= 0 {
		return nil, errors.New("store unavailable")
	}
	return s.Store.UserByIdentity(ctx, key)
}

// refreshSetup is a refresher over a SQLite store holding ada and the
// sealed refresh token "rt-1" of her session s1, signed in a minute ago
// with session_lifetime 12h.
func refreshSetup(t *testing.T, provider *rotatingProvider) (*refresher, *App, *flakyIdentityStore) {
	t.Helper()
	sq, u, sealer := refreshStoreWithAda(t, "ada@example.com")
	store := &flakyIdentityStore{Store: sq}
	ctx := t.Context()
	now := time.Now()
	a := &App{store: store, refreshTokens: sq, sealers: []*mfa.Sealer{sealer}, logger: zap.NewNop(),
		provisioner: &provisioner.Provisioner{Store: store},
		sessions: &sessions{revoked: newRevocations(), store: sq, logger: zap.NewNop(), pending: &pendingRevocations{},
			lifetimes: lifetimeHistory{{From: now.Add(-24 * time.Hour).UnixNano(), Lifetime: 12 * 3600}}}}
	rf := &refresher{app: a, holder: processHolder, unsaved: newUnsavedRefreshTokens(), conns: map[string]*Connection{"corp": {name: "corp", Refresh: &RefreshConfig{},
		refresher: provider, pol: &provisioner.Policy{Enabled: true}}}}
	issued := now.Add(-time.Minute).Unix()
	sealed, err := a.sealRefreshToken("s1", refreshEnvelope{Token: "rt-1", IssuedAt: issued, Subject: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.PutRefreshToken(ctx, provisioner.RefreshToken{SessionID: "s1", UserID: u.ID, Connection: "corp",
		Sealed: sealed, RefreshAt: now, ExpiresAt: time.Unix(issued+12*3600, 0)}); err != nil {
		t.Fatal(err)
	}
	provider.valid = "rt-1"
	return rf, a, store
}

// refreshDue runs the refresher on s1 as a pass at now would.
func refreshDue(t *testing.T, rf *refresher, sq provisioner.RefreshTokenStore, now time.Time) bool {
	t.Helper()
	due, err := sq.DueRefreshTokens(t.Context(), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range due {
		rf.one(t.Context(), rt, now)
	}
	return len(due) > 0
}

// A refresh the provider answered, whose claims cannot be applied
// because the store fails for a moment, is retried 30 s later with the
// token the provider answered with: a provider that rotates refresh
// tokens refuses the one it redeemed (invalid_grant), which would end
// the session, signing the user out because of a store blip.
func TestRefreshRetryAfterAStoreFailureRedeemsTheRotatedToken(t *testing.T) {
	provider := &rotatingProvider{}
	rf, a, store := refreshSetup(t, provider)
	now := time.Now()

	store.failReads.Store(1) // the store fails once, after the provider answered
	if !refreshDue(t, rf, store.Store, now) {
		t.Fatal("the token was not due")
	}
	if len(provider.asked) != 1 {
		t.Fatalf("the provider was asked %d times in the first pass", len(provider.asked))
	}
	// The retry, 30 s later, with the store back.
	if !refreshDue(t, rf, store.Store, now.Add(refreshRetry+time.Second)) {
		t.Fatal("the token is not due again after the retry wait; it was dropped")
	}
	if want := []string{"rt-1", "rt-2"}; !slices.Equal(provider.asked, want) {
		t.Errorf("the provider was asked to redeem %q, want %q: the retry redeemed again the token the provider had already rotated, and threw away the one it answered with", provider.asked, want)
	}
	if a.sessions.revoked.has("s1") {
		t.Errorf("the session was ended (revoked) because the provider refused the already-redeemed token on the retry; a store outage of one call signed the user out")
	}
}

// flakyRefreshTokenStore fails the next failPuts writes of a refresh
// token, as a store does in a short outage.
type flakyRefreshTokenStore struct {
	*sqlitestore.Store
	failPuts atomic.Int32
}

func (s *flakyRefreshTokenStore) PutRefreshToken(ctx context.Context, t provisioner.RefreshToken) error {
	if s.failPuts.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	return s.Store.PutRefreshToken(ctx, t)
}

// The provider rotated the refresh token, and the store failed to keep
// the new one: the store still holds the one the provider has redeemed
// and refuses from now on. The next refresh redeems the new one, which
// the process kept, and does not end the session.
func TestRotatedRefreshTokenTheStoreFailedToKeepIsRedeemedNext(t *testing.T) {
	provider := &rotatingProvider{}
	rf, a, store := refreshSetup(t, provider)
	tokens := &flakyRefreshTokenStore{Store: store.Store}
	a.refreshTokens = tokens
	now := time.Now()

	tokens.failPuts.Store(1) // the write of rt-2 fails
	refreshDue(t, rf, store.Store, now)
	if !refreshDue(t, rf, store.Store, now.Add(2*time.Hour)) {
		t.Fatal("nothing was due two hours later")
	}
	if want := []string{"rt-1", "rt-2"}; !slices.Equal(provider.asked, want) {
		t.Errorf("the provider was asked to redeem %q, want %q: after the store failed to keep the rotated token, the one the provider had redeemed was redeemed again", provider.asked, want)
	}
	if a.sessions.revoked.has("s1") {
		t.Error("the session was ended: one failed write of a rotated refresh token signed the user out at the next refresh")
	}
}

// A rotated refresh token the store failed to keep is written to it
// once the store answers again, before the next pass: another instance
// that takes the refresh over later, or this one after a reload, reads
// the token the provider accepts.
func TestRotatedRefreshTokenTheStoreFailedToKeepIsWrittenByTheNextPass(t *testing.T) {
	provider := &rotatingProvider{}
	rf, a, store := refreshSetup(t, provider)
	tokens := &flakyRefreshTokenStore{Store: store.Store}
	a.refreshTokens = tokens
	a.admin = store.Store
	a.sessions.revoked.markRead()
	ctx := t.Context()

	tokens.failPuts.Store(1)
	rf.pass(ctx) // redeems rt-1; the write of rt-2 fails
	rf.pass(ctx) // the store answers again
	if want := []string{"rt-1"}; !slices.Equal(provider.asked, want) {
		t.Fatalf("set-up: the provider was asked to redeem %q, want %q", provider.asked, want)
	}
	due, err := store.DueRefreshTokens(ctx, time.Now().Add(24*time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("the store holds %d refresh tokens (%v), want s1's", len(due), err)
	}
	env, err := a.openRefreshToken("s1", due[0].Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if env.Token != "rt-2" {
		t.Errorf("the store holds %q after the store came back, want the rotated rt-2: a second instance (or this one after a restart) would redeem the refused token and end the session", env.Token)
	}
}

// A provider that answers a refresh with a token too long to seal
// (mfa.Seal's 4096 bytes, with the envelope) has redeemed the old one:
// the session can no longer follow it, but it was not refused either.
// The token is dropped, the old one never redeemed again, and the
// session stays signed in.
func TestRefreshRotatedTokenTooLongToKeepLeavesTheSessionSignedIn(t *testing.T) {
	provider := &rotatingProvider{nextLen: 4050}
	rf, a, store := refreshSetup(t, provider)
	now := time.Now()
	refreshDue(t, rf, store.Store, now)
	refreshDue(t, rf, store.Store, now.Add(refreshRetry+time.Second))
	if a.sessions.revoked.has("s1") {
		t.Errorf("a refresh token the provider rotated to one of %d bytes ended the session (redeemed %d times: the old token again on the retry); it should at most stop following the provider", provider.nextLen, len(provider.asked))
	}
	if want := []string{"rt-1"}; !slices.Equal(provider.asked, want) {
		t.Errorf("the provider was asked to redeem %q, want %q: the token it redeemed was redeemed again", provider.asked, want)
	}
	if due, err := store.DueRefreshTokens(t.Context(), now.Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("the token that cannot be kept was not dropped: %d kept (%v)", len(due), err)
	}
}

// After a restart the refresher starts with the revocation follower,
// not after its first read. Its first pass must not redeem the kept
// token of a session a sign-out everywhere ended before the restart (the
// cutoff is in the store, not yet in memory): that would keep the grant
// alive at the provider and provision the user from it. Requests wait
// for that first read (sessions.admitted); the refresher does too.
func TestRefresherFirstPassWaitsForTheRevocations(t *testing.T) {
	provider := &rotatingProvider{}
	rf, a, store := refreshSetup(t, provider)
	a.admin = store.Store
	ctx := t.Context()
	u, err := store.UserByIdentity(ctx, provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example", Subject: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	// ada signed out everywhere before the restart.
	if err := store.RevokeSession(ctx, userCutoffID(u.ID, time.Now()), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The restarted process: its revocations not read yet (a follower
	// that is a few milliseconds behind, or a first read that failed).
	rf.tick = time.Second
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rf.pass(pctx)
	if len(provider.asked) > 0 {
		t.Errorf("before the revocations were first read, the refresher redeemed the token of a session its user signed out everywhere before the restart (%q)", provider.asked)
	}
}

// throttlingProvider answers every refresh with a 429 that asks for
// retryAfter of quiet, and counts the requests.
type throttlingProvider struct {
	retryAfter time.Duration
	asked      int
}

func (p *throttlingProvider) Refresh(context.Context, string) (provisioner.Claims, string, time.Time, error) {
	p.asked++
	return provisioner.Claims{}, "", time.Time{}, &connector.Unavailable{RetryAfter: p.retryAfter,
		Err: fmt.Errorf("%w: the provider refused the refresh (429 slow_down)", connector.ErrUnavailable)}
}

// A provider that throttles and says when to come back (Retry-After)
// gets no refresh of that connection before then: not the rest of the
// pass's due sessions, not the throttled one 30 s later.
func TestThrottledRefreshWaitsTheProvidersRetryAfter(t *testing.T) {
	rf, a, store := refreshSetup(t, &rotatingProvider{})
	provider := &throttlingProvider{retryAfter: 10 * time.Minute}
	rf.conns["corp"].refresher = provider
	rf.paused = &pausedConnections{until: map[string]time.Time{}}
	ctx := t.Context()
	now := time.Now()
	// A second session of ada's, due too.
	due, err := store.DueRefreshTokens(ctx, now, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("set-up: %v %d", err, len(due))
	}
	second := due[0]
	second.SessionID = "s2"
	env, err := a.openRefreshToken("s1", second.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if second.Sealed, err = a.sealRefreshToken("s2", env); err != nil {
		t.Fatal(err)
	}
	if err := store.PutRefreshToken(ctx, second); err != nil {
		t.Fatal(err)
	}

	if n := len(due) + 1; !refreshDue(t, rf, store.Store, now) || provider.asked != 1 {
		t.Errorf("in one pass over %d due sessions, the provider was asked %d times after it answered 429 with Retry-After: 600, want once", n, provider.asked)
	}
	if refreshDue(t, rf, store.Store, now.Add(refreshRetry+time.Second)); provider.asked != 1 {
		t.Errorf("the provider was asked again %v after it asked for 10 minutes of quiet", refreshRetry+time.Second)
	}
	// After the wait, one more; it is throttled again, and the pause
	// starts over.
	if !refreshDue(t, rf, store.Store, now.Add(10*time.Minute+time.Second)) || provider.asked != 2 {
		t.Errorf("after the 10 minutes, %d refreshes were sent in all, want 2", provider.asked)
	}
	if a.sessions.revoked.has("s1") || a.sessions.revoked.has("s2") {
		t.Error("a throttled refresh ended a session")
	}
}

// Rotated tokens kept in memory for a store that a reload replaced
// cannot be written there any more; the next pass lets them go, so that
// they do not take the room of the current store's.
func TestUnsavedRefreshTokensOfAReplacedStoreAreLetGo(t *testing.T) {
	rf, a, store := refreshSetup(t, &rotatingProvider{})
	a.admin = store.Store
	a.sessions.revoked.markRead()
	for i := range maxUnsavedRefreshTokens {
		rf.unsaved.keep("the store before the reload", provisioner.RefreshToken{SessionID: fmt.Sprint("old-", i)})
	}
	rf.pass(t.Context())
	if !rf.unsaved.keep(rf.storeID, provisioner.RefreshToken{SessionID: "s1"}) {
		t.Error("a rotated token of the current store could not be kept: the memory was full of a replaced store's")
	}
}
