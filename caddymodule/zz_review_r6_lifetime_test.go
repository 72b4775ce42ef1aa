package caddymodule_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// Review r6: a session that a shortened session_lifetime ended comes back
// when a later reload lengthens the lifetime again (severity medium:
// shortening session_lifetime is what an operator reaches for to cut off
// old logins, e.g. after a lost laptop, and restoring the default
// afterwards silently revives every one of them, stolen copies included;
// a sign-out everywhere or back-channel logout taken meanwhile does not
// stop them either, since its cutoff is kept only for the short lifetime,
// cutoffExpiry, and is pruned before the session's own ExpiresAt).
//
// What the operator does: session_lifetime 12h; a user signs in (the
// cookie below is that login as sealed 3 h ago: IssuedAt 3 h ago,
// ExpiresAt 9 h ahead, as the 12h configuration issues it). A reload to
// session_lifetime 1h ends it (held: sessions.open clamps ExpiresAt to
// IssuedAt + lifetime). A later reload back to 12h.
//
// Today: after the second reload the same cookie reaches the upstream
// again: the clamp is recomputed from the configuration in force, and
// the cookie still says ExpiresAt 9 h ahead (the browser keeps it that
// long too: its Max-Age came from the 12h configuration).
//
// Expected (README, session_lifetime: "one that lengthens it applies to
// sign-ins from then on"): a login from before the lengthening keeps the
// shorter bound it had, so a session once ended by the shortening stays
// ended.
//
// Fix: caddymodule/sessions.go open (and app.go Provision): remember,
// in Caddy's storage (shared by instances) and across reloads, the
// shortest lifetime in force since each time (e.g. a list of
// {since, lifetime} kept for the longest lifetime ever configured), and
// bound a session by IssuedAt + the shortest lifetime in force at any
// moment since its IssuedAt; cutoffExpiry should then use the longest
// lifetime any live session can still have, not the current one.
func TestReviewR6LengthenedLifetimeRevivesSessionsEndedByShortening(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile := func(lifetime string) string {
		return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		store sqlite %s
		cookie_keys %s %s
		session_lifetime %s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), testHashKey, testBlockKey, lifetime,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort())
	}
	runCaddyfile(t, caddyfile("12h"))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	c := b.cookie(base, "jitauth_session")
	if c == nil {
		t.Fatal("no session cookie after signing in")
	}
	sc := securecookie.New(mustDecodeB64(t, testHashKey), mustDecodeB64(t, testBlockKey))
	sc.SetSerializer(securecookie.JSONEncoder{})
	var sess caddymodule.Session
	if err := sc.Decode("jitauth_session", c.Value, &sess); err != nil {
		t.Fatalf("opening the session cookie: %v", err)
	}
	// The same login, as the 12h configuration sealed it 3 h ago.
	now := time.Now()
	sess.IssuedAt = now.Add(-3 * time.Hour).Unix()
	sess.ExpiresAt = now.Add(9 * time.Hour).Unix()
	cookie := sealSession(t, testHashKey, testBlockKey, sess)

	status := func() int {
		t.Helper()
		// A connection the old configuration's server accepted as it
		// shut down may be closed unanswered: send it again.
		var err error
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", "jitauth_session="+cookie)
			var r *http.Response
			r, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err == nil {
				r.Body.Close()
				return r.StatusCode
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s/app: %v", base, err)
		return 0
	}
	if code := status(); code != http.StatusOK {
		t.Fatalf("session_lifetime 12h, login 3 h old: %d, want 200", code)
	}
	reloadInProcess(t, caddyfile("1h"))
	if code := status(); code == http.StatusOK {
		t.Fatal("after the reload to session_lifetime 1h, the 3 h old login is still accepted")
	}
	reloadInProcess(t, caddyfile("12h"))
	if code := status(); code == http.StatusOK {
		t.Errorf("a login that the reload to session_lifetime 1h ended reaches the upstream again after a reload back to 12h (as %q); "+
			"the README says a lengthening applies to sign-ins from then on", up.lastHeaders(t).Get("Remote-User"))
	}
}
