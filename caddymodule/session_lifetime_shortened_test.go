package caddymodule_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// A reload that shortens session_lifetime (12h to 1h) bounds every live
// login from its sign-in, also a cookie re-sealed a moment ago by the
// idle-timeout re-issue or the second-factor upgrade, which still carries
// the old ExpiresAt. The cookie below is that re-issued cookie: the login
// of the signed-in user, issued 2 h ago for 12 h, sealed now.
func TestShortenedSessionLifetimeBoundsReissuedSessions(t *testing.T) {
	s := startSiteOpts(t, siteOptions{handlerBlock: "connections corp", globalExtra: "\t\tsession_lifetime 1h\n"})
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	c := b.cookie(s.base, "jitauth_session")
	if c == nil {
		t.Fatal("no session cookie after signing in")
	}
	sc := securecookie.New(mustDecodeB64(t, testHashKey), mustDecodeB64(t, testBlockKey))
	sc.SetSerializer(securecookie.JSONEncoder{})
	var sess caddymodule.Session
	if err := sc.Decode("jitauth_session", c.Value, &sess); err != nil {
		t.Fatalf("opening the session cookie: %v", err)
	}

	// The same login as the previous configuration (session_lifetime
	// 12h) issued it 2 h ago, as its idle-timeout re-issue seals it now.
	now := time.Now()
	sess.IssuedAt = now.Add(-2 * time.Hour).Unix()
	sess.ExpiresAt = now.Add(10 * time.Hour).Unix()
	reissued := sealSession(t, testHashKey, testBlockKey, sess)

	resp := newBrowser(t).do(http.MethodGet, s.base+"/private", http.Header{"Cookie": {"jitauth_session=" + reissued}})
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("with session_lifetime 1h, a login issued 2 h ago (re-issued a moment ago, as idle_timeout re-issues it) still reaches the upstream as %q; want it sent to sign in again",
			s.upstream.lastHeaders(t).Get("Remote-User"))
	}
}
