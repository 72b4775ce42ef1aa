package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jitauth/caddy-jitauth/connector"
)

// A bearer is an access or ID token. A back-channel logout token, or any
// other security event token, is signed by the same key and carries a
// subject, an expiry and the client's audience, so without a check of
// its kind one copied from a log would sign its subject in as a bearer.
func TestBearerRefusesLogoutAndEventTokens(t *testing.T) {
	ti := newTokenIssuer(t)
	o := connectorFor(ti)
	typed := func(typ string) jose.Signer {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: ti.key, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain := seedClaims(ti, func(c map[string]any) { delete(c, "events"); c["aud"] = "app" })
	for _, tc := range []struct {
		name   string
		signer jose.Signer
		claims []byte
		ok     bool
	}{
		{"ID token", ti.signer, plain, true},
		{"typ JWT", typed("JWT"), plain, true},
		{"typ at+jwt", typed("at+jwt"), plain, true},
		{"logout token", ti.signer, seedClaims(ti, func(c map[string]any) {}), false},
		{"typ logout+jwt", typed("logout+jwt"), plain, false},
		{"typ application/secevent+jwt", typed("application/secevent+jwt"), plain, false},
		{"empty events claim", ti.signer, seedClaims(ti, func(c map[string]any) { c["events"] = map[string]any{} }), false},
	} {
		_, err := o.VerifyBearer(context.Background(), signCompact(t, tc.signer, tc.claims), []string{"app"}, nil)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && (err == nil || !errors.Is(err, connector.ErrRejected)):
			t.Errorf("%s: %v, want it refused as not a bearer", tc.name, err)
		case !tc.ok && !strings.Contains(err.Error(), "token"):
			t.Errorf("%s: the refusal does not say why: %v", tc.name, err)
		}
	}
}
