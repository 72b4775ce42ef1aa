package oidc

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
)

// An ID token carries this login's nonce, so it was issued during the
// login: an iat before the login could have started (ten minutes, plus
// clock skew), or after now plus the skew, is refused, as is an iat
// that is no time. An iat too large for a Unix time (1e300) is in the
// future, not, converted, in the distant past.
func TestIDTokenIssuedAtOutsideTheLoginIsRefused(t *testing.T) {
	now := time.Now().Unix()
	for _, c := range []struct {
		iat any
		ok  bool
	}{
		{now, true},
		{now - 120, true},
		{now + 120, true},
		{float64(now) + 0.5, true},
		{fmt.Sprint(now), true}, // a numeric string, as go-oidc reads it
		{now + 3600, false},
		{1e300, false},
		{9.3e18, false},
		{int64(9e18), false},
		{5, false},
		{0, false},
		{-5, false},
		{now - 3600, false},
		{nil, false},
		{"yesterday", false},
	} {
		t.Run(fmt.Sprint(c.iat), func(t *testing.T) {
			lp := newLoginProvider(t)
			lp.claims = func(m map[string]any) {
				if c.iat == nil {
					delete(m, "iat")
				} else {
					m["iat"] = c.iat
				}
			}
			claims, err := lp.login(t, lp.connector(), nil)
			if c.ok && err != nil {
				t.Fatalf("iat %v refused: %v", c.iat, err)
			}
			if !c.ok && !errors.Is(err, connector.ErrRejected) {
				t.Fatalf("iat %v: subject %q, %v; want a refusal", c.iat, claims.Subject, err)
			}
		})
	}
}
