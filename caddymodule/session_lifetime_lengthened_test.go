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

// 12h, then 1h, then 12h again: a login issued 3 h ago under the first
// 12h (its cookie still says it ends in 9 h) is refused under 1h, and
// stays refused after the lengthening: a session counts at most the
// shortest lifetime configured since its sign-in, else putting the default
// back would revive every old login (and stolen copies), also past a
// sign-out everywhere kept only as long as the short lifetime.
func TestLengthenedLifetimeDoesNotReviveSessionsEndedByShortening(t *testing.T) {
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
