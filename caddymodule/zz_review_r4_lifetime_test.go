package caddymodule_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// TestReviewR4ShortenedSessionLifetimeBoundsReissuedSessions
//
// What the operator does: the site ran with session_lifetime 12h and an
// application with idle_timeout (or one that requires a second factor).
// Policy changes (an incident, an audit) and the operator reloads with
// session_lifetime 1h, expecting that no login older than an hour is
// accepted any more: README, "session_lifetime: How long a login lasts".
//
// What happens today: whether a live login survives the change depends
// on when its cookie was last sealed, not on how old the login is.
// The session's own ExpiresAt (sign-in + 12h) is the only bound
// Session.valid checks; the configured lifetime is applied only through
// securecookie's MaxAge, which counts from the moment the cookie was
// sealed. A cookie sealed at sign-in 2 h ago is refused after the
// reload, but the same login's cookie re-sealed a moment ago (the
// idle-timeout re-issue in Handler.touch, at most every eighth of the
// timeout, or the upgrade after the second factor) is accepted until
// 10 h from now. So exactly the users who keep using the site keep
// their 12-hour logins. The cookie below is that re-issued cookie: the
// login of the signed-in user, issued 2 h ago for 12 h, sealed now.
//
// What should happen: a session counts only while IssuedAt (or AuthAt)
// plus the configured session_lifetime is in the future, as well as
// before its own ExpiresAt: a reload that shortens the lifetime bounds
// every live login by it, re-issued or not (as a reload that removes a
// cookie key pair ends the sessions sealed with it at once).
//
// Severity: low. It needs a configuration change to show, but then the
// new lifetime silently does not apply to the most active sessions.
func TestReviewR4ShortenedSessionLifetimeBoundsReissuedSessions(t *testing.T) {
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
