package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// unansweringProvider records the refresh tokens it is asked to redeem,
// and answers none (an outage: the refresher keeps the token and tries
// again later).
type unansweringProvider struct{ asked []string }

func (p *unansweringProvider) Refresh(_ context.Context, token string) (provisioner.Claims, string, time.Time, error) {
	p.asked = append(p.asked, token)
	return provisioner.Claims{}, "", time.Time{}, errors.New("provider unreachable")
}

// The refresher bounds a session by the session_lifetime history from
// the sign-in its sealed token carries: one the shortened lifetime ended
// is dropped without asking the provider, one it ends later keeps that
// end (and is due then, to be dropped). So is one a sign-out everywhere
// (or a back-channel logout of its subject or provider session) ended
// since its sign-in, as a request refuses its cookie; one signed in after
// the sign-out is refreshed. A token sealed before the sign-in travelled
// with it (the raw token) still opens and is refreshed, bounded only by
// its ExpiresAt.
func TestRefresherRefreshesOnlySessionsThatStillCount(t *testing.T) {
	store, u, sealer := refreshStoreWithAda(t, "")
	ctx := t.Context()
	now := time.Now()
	// session_lifetime 12h, shortened to 1m 30 s ago.
	hist := lifetimeHistory{{From: now.Add(-24 * time.Hour).UnixNano(), Lifetime: 12 * 3600}, {From: now.Add(-30 * time.Second).UnixNano(), Lifetime: 60}}
	a := &App{refreshTokens: store, sealers: []*mfa.Sealer{sealer}, logger: zap.NewNop(),
		sessions: &sessions{revoked: newRevocations(), lifetimes: hist}}
	provider := &unansweringProvider{}
	rf := &refresher{app: a, conns: map[string]*Connection{"corp": {name: "corp", Refresh: &RefreshConfig{}, refresher: provider}}}

	// record keeps the token of a session signed in age ago under 12h,
	// sealed as now, or as before the envelope (oldFormat).
	record := func(sessionID string, age time.Duration, oldFormat bool) provisioner.RefreshToken {
		t.Helper()
		issued := now.Add(-age).Unix()
		sealed, err := a.sealRefreshToken(sessionID, refreshEnvelope{Token: "token of " + sessionID, IssuedAt: issued,
			Subject: "ada", ProviderSID: "psid-" + sessionID})
		if oldFormat {
			sealed, err = sealer.Seal(refreshAAD(sessionID), "token of "+sessionID)
		}
		if err != nil {
			t.Fatal(err)
		}
		rt := provisioner.RefreshToken{SessionID: sessionID, UserID: u.ID, Connection: "corp", Sealed: sealed,
			RefreshAt: now, ExpiresAt: time.Unix(issued+12*3600, 0)}
		if err := store.PutRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	ended := record("ended", 2*time.Hour, false)
	ending := record("ending", 50*time.Second, false)
	old := record("old", 2*time.Hour, true)
	// ada signed out everywhere 55 s ago, and the provider ended the
	// provider session of another 20 s ago (back-channel logout).
	a.sessions.revoked.add(userCutoffID(u.ID, now.Add(-55*time.Second)), now.Add(time.Hour))
	signedOut := record("signedout", 58*time.Second, false)
	after := record("after", 30*time.Second, false)
	a.sessions.revoked.add(userCutoffID(sidCutoffKey("corp", "psid-backchannel"), now.Add(-20*time.Second)), now.Add(time.Hour))
	backchannel := record("backchannel", 25*time.Second, false)
	for _, rt := range []provisioner.RefreshToken{ended, ending, old, signedOut, after, backchannel} {
		rf.one(ctx, rt, now)
	}

	if want := []string{"token of ending", "token of old", "token of after"}; !slices.Equal(provider.asked, want) {
		t.Errorf("the provider was asked to redeem %q, want %q", provider.asked, want)
	}
	due, err := store.DueRefreshTokens(ctx, now.Add(24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]provisioner.RefreshToken{}
	for _, rt := range due {
		kept[rt.SessionID] = rt
	}
	if _, ok := kept["ended"]; ok {
		t.Error("the token of a session signed in 2 h ago is kept, though session_lifetime 1m ended it")
	}
	end := time.Unix(now.Add(-50*time.Second).Unix()+60, 0)
	if rt := kept["ending"]; !rt.ExpiresAt.Equal(end) || !rt.RefreshAt.Equal(end) {
		t.Errorf("the session signed in 50 s ago is kept with ExpiresAt %v, RefreshAt %v; want both at its end by session_lifetime 1m, %v", rt.ExpiresAt, rt.RefreshAt, end)
	}
	for _, id := range []string{"signedout", "backchannel"} {
		if _, ok := kept[id]; ok {
			t.Errorf("the token of session %q is kept, though a logout after its sign-in ended it", id)
		}
	}
	if _, ok := kept["after"]; !ok {
		t.Error("the token of a session signed in after the sign-out everywhere is dropped")
	}
	if rt, ok := kept["old"]; !ok || !rt.ExpiresAt.Equal(old.ExpiresAt) {
		t.Errorf("the token sealed before the envelope: kept %v with ExpiresAt %v, want kept with %v (its sign-in is not known)", ok, rt.ExpiresAt, old.ExpiresAt)
	}

	// A sealed token opens for its own session only.
	want := refreshEnvelope{Token: "tok<&>", IssuedAt: now.Unix(), AuthAt: now.Unix() - 5, Subject: "ada", ProviderSID: "p1"}
	sealed, err := a.sealRefreshToken("s1", want)
	if err != nil {
		t.Fatal(err)
	}
	if env, err := a.openRefreshToken("s1", sealed); err != nil || env != want {
		t.Errorf("opening a sealed token: %+v %v, want %+v", env, err, want)
	}
	if _, err := a.openRefreshToken("s2", sealed); err == nil {
		t.Error("a token sealed for session s1 opens for s2")
	}
}

// refreshStoreWithAda opens a new SQLite store holding the user ada
// (identity corp, https://idp.example, ada; with email if not ""), and
// a sealer, for the refresher's tests.
func refreshStoreWithAda(t *testing.T, email string) (*sqlitestore.Store, *provisioner.User, *mfa.Sealer) {
	t.Helper()
	store, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, err := store.CreateUser(t.Context(), &provisioner.User{Username: "ada", Email: email},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example", Subject: "ada"}})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := mfa.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return store, u, sealer
}
