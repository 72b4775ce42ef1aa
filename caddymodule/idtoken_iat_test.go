package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// An ID token with this login's nonce was issued during the login: one
// whose iat lies before the login could have begun (1970, an hour ago)
// or is too large for a Unix time (1e300, which go-oidc converts to the
// distant past) signs nobody in.
func TestIDTokenIssuedBeforeTheLoginIsRefused(t *testing.T) {
	s := startSite(t)
	for _, iat := range []any{5, time.Now().Add(-time.Hour).Unix(), 1e300} {
		t.Run(fmt.Sprint(iat), func(t *testing.T) {
			u := alice()
			u.tamper = func(m jwt.MapClaims) { m["iat"] = iat }
			s.queue(u)
			b := newBrowser(t)
			resp, body := s.login(b, "corp", "/")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("iat %v: status %d, want 401: %s", iat, resp.StatusCode, body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatalf("iat %v: a session was issued", iat)
			}
		})
	}
}
