package caddymodule

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// answeringProvider redeems every refresh token with ada's claims.
type answeringProvider struct{}

func (answeringProvider) Refresh(context.Context, string) (provisioner.Claims, string, time.Time, error) {
	return provisioner.Claims{Issuer: "https://idp.example", Subject: "ada", Raw: []byte(`{"sub":"ada"}`)}, "next token", time.Now().Add(time.Hour), nil
}

// deletedAfterLookup is an administrator's DELETE landing just after the
// refresher found the session's user: the first identity lookup answers
// the user, then the user is gone.
type deletedAfterLookup struct {
	*sqlitestore.Store
	lookups int
}

func (s *deletedAfterLookup) UserByIdentity(ctx context.Context, k provisioner.IdentityKey) (*provisioner.User, error) {
	u, err := s.Store.UserByIdentity(ctx, k)
	if s.lookups++; s.lookups == 1 && err == nil {
		if derr := s.Store.DeleteUser(ctx, u.ID); derr != nil {
			return nil, derr
		}
	}
	return u, err
}

// A background refresh never creates a user: nobody signed in. When an
// administrator deletes the user while the refresh is applying the
// provider's answer, the refresh created the user anew (a new ID, the
// username the delete had just retired given back, a user_created
// audit event) as a sign-in would, from a session the delete had ended.
// Now the refresh finds no user, and ends the session.
func TestRefreshDoesNotRecreateADeletedUser(t *testing.T) {
	base, u, sealer := refreshStoreWithAda(t, "")
	store := &deletedAfterLookup{Store: base}
	ctx := t.Context()
	now := time.Now()
	a := &App{store: store, refreshTokens: base, sealers: []*mfa.Sealer{sealer}, logger: zap.NewNop(),
		provisioner: &provisioner.Provisioner{Store: store},
		sessions:    &sessions{revoked: newRevocations(), store: base, logger: zap.NewNop()}}
	conn := &Connection{name: "corp", Refresh: &RefreshConfig{}, refresher: answeringProvider{}, pol: &provisioner.Policy{Enabled: true}}
	rf := &refresher{app: a, conns: map[string]*Connection{"corp": conn}}
	sealed, err := a.sealRefreshToken("s1", refreshEnvelope{Token: "token", IssuedAt: now.Add(-time.Minute).Unix(), Subject: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	rt := provisioner.RefreshToken{SessionID: "s1", UserID: u.ID, Connection: "corp", Sealed: sealed, RefreshAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := base.PutRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	rf.one(ctx, rt, now)
	if got, err := base.UserByIdentity(ctx, provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example", Subject: "ada"}); err == nil {
		t.Errorf("the refresh created the deleted user anew: %q (ID %s, was %s)", got.Username, got.ID, u.ID)
	}
}
