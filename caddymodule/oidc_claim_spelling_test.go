package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// go-oidc reads an ID token's sub (and iss, aud, nonce, …) into a
// struct, matching keys without regard to letter case (with Unicode
// folding: "ſub", U+017F, is sub) and taking the last; the claims a
// site maps and passes on are read by exact key. An ID token with both
// "sub" and "ſub" (which sorts after it) named one identity while its
// claims named another (here only the userinfo answer, of the other
// subject, stopped it; a provider without userinfo signed it in). It,
// and one with "Sub" (signed in as alice, with a claim "Sub" for the
// mappings), now sign no one in, and the log names the claim.
func TestIDTokenWithAClaimSpelledLikeSubIsRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	for _, key := range []string{"ſub", "Sub"} {
		t.Run(key, func(t *testing.T) {
			before := len(logEntries(t, s.logFile(), "login failed"))
			u := alice()
			u.tamper = func(m jwt.MapClaims) { m[key] = "victim-sub" }
			s.queue(u)
			b := newBrowser(t)
			resp, body := s.login(b, "corp", "/")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (upstream saw identity %q): %s", resp.StatusCode, s.upstream.lastHeaders(t).Get("X-Auth-Id"), body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatal("a session was issued")
			}
			entries := logEntries(t, s.logFile(), "login failed")
			if len(entries) != before+1 {
				t.Fatalf("%d new \"login failed\" lines, want 1", len(entries)-before)
			}
			if got, _ := entries[len(entries)-1]["error"].(string); !strings.Contains(got, `"`+key+`"`) {
				t.Errorf("the log says %q, which does not name the claim %q", got, key)
			}
		})
	}
	if users := allUsers(t, openStore(t, s.dir)); len(users) != 0 {
		t.Fatalf("refused tokens provisioned users: %+v", users)
	}
}
