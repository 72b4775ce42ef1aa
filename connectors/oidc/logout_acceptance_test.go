package oidc

import (
	"context"
	"testing"
	"time"
)

// A logout token is accepted while its iat is within maxLogoutTokenAge
// of now: jit_auth remembers its jti until then (and a margin), so the
// connector says when that is.
func TestLogoutTokenSaysUntilWhenItIsAcceptable(t *testing.T) {
	ti := newTokenIssuer(t)
	iat := time.Now().Unix() + 60
	token := ti.sign(t, seedClaims(ti, func(c map[string]any) { c["iat"], c["exp"] = iat, iat+3600 }))
	lt, err := connectorFor(ti).VerifyLogoutToken(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(iat, 0).Add(maxLogoutTokenAge); !lt.AcceptableUntil.Equal(want) {
		t.Errorf("AcceptableUntil %s, want iat + %s = %s", lt.AcceptableUntil, maxLogoutTokenAge, want)
	}
}
