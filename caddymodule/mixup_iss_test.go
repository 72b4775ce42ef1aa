package caddymodule_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// RFC 9207: an answer at a connection's callback that names another
// issuer (iss) is another provider's, brought here in a mix-up. It signs
// nobody in and its code is not sent to the connection's token endpoint;
// the same answer naming the connection's own issuer completes the login.
func TestCallbackNamingAnotherIssuerIsRefused(t *testing.T) {
	var tokenRequests atomic.Int32
	s := startSite(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				tokenRequests.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	for _, c := range []struct {
		name, iss string
		ok        bool
	}{
		{"another issuer", "https://evil.example", false},
		{"own issuer", s.idp.Issuer(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tokenRequests.Store(0)
			b := newBrowser(t)
			s.queue(alice())
			cb := s.startOnly(b, "corp", "/")
			q := cb.Query()
			q.Set("iss", c.iss)
			cb.RawQuery = q.Encode()
			resp, body, _ := b.follow(cb.String(), nil)
			signedIn := b.cookie(s.base, "jitauth_session") != nil
			if c.ok {
				if resp.StatusCode != http.StatusOK || !signedIn {
					t.Fatalf("own iss: status %d, session %v: %s", resp.StatusCode, signedIn, body)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || signedIn {
				t.Fatalf("iss %s: status %d, session %v: %s", c.iss, resp.StatusCode, signedIn, body)
			}
			if n := tokenRequests.Load(); n != 0 {
				t.Fatalf("iss %s: the code went to the token endpoint (%d requests)", c.iss, n)
			}
		})
	}
}
