package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// lifetimeSite runs one Caddy with storage in dir, and returns a
// Caddyfile maker (session_lifetime, and optionally a second site on
// extraPort), a function that signs alice in and returns her session
// cookie, and one that answers the status of a request with a cookie.
func lifetimeSite(t *testing.T, dir string) (caddyfile func(lifetime string, extraPort int) string, signIn func() string, status func(cookie string) int) {
	t.Helper()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile = func(lifetime string, extraPort int) string {
		extra := ""
		if extraPort != 0 {
			extra = fmt.Sprintf("http://localhost:%d {\n\tjit_auth\n\treverse_proxy %s\n}\n", extraPort, up.hostPort())
		}
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
%s`, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), testHashKey, testBlockKey, lifetime,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort(), extra)
	}
	status = func(cookie string) int {
		t.Helper()
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
	runCaddyfile(t, caddyfile("12h", 0))
	// A real sign-in, for a session with a real user behind it.
	signIn = func() string {
		t.Helper()
		b := newBrowser(t)
		// Right after a reload a connection may still reach the old
		// server as it stops (EOF), as status allows for: wait until
		// the site answers before the sign-in's requests.
		for range 20 {
			b.client.CloseIdleConnections()
			if r, err := http.Get(base + "/"); err == nil {
				r.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.client.CloseIdleConnections()
		idp.QueueUser(alice())
		if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
		}
		c := b.cookie(base, "jitauth_session")
		if c == nil {
			t.Fatal("no session cookie after signing in")
		}
		return c.Value
	}
	return caddyfile, signIn, status
}

// agedCookie returns the login in the session cookie value as sealed
// age ago under a 12h lifetime.
func agedCookie(t *testing.T, value string, age time.Duration) string {
	t.Helper()
	sc := securecookie.New(mustDecodeB64(t, testHashKey), mustDecodeB64(t, testBlockKey))
	sc.SetSerializer(securecookie.JSONEncoder{})
	var sess caddymodule.Session
	if err := sc.Decode("jitauth_session", value, &sess); err != nil {
		t.Fatalf("opening the session cookie: %v", err)
	}
	now := time.Now()
	sess.IssuedAt = now.Add(-age).Unix()
	sess.ExpiresAt = sess.IssuedAt + int64(12*time.Hour/time.Second)
	return sealSession(t, testHashKey, testBlockKey, sess)
}

// storedLifetime is one change as kept in Caddy's storage.
type storedLifetime struct {
	From     int64 `json:"from_ns"`
	Lifetime int64 `json:"lifetime"`
}

// storedLifetimes reads jit_auth/session_lifetimes.json from the
// file_system storage in dir.
func storedLifetimes(t *testing.T, dir string) []storedLifetime {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "storage", "jit_auth", "session_lifetimes.json"))
	if err != nil {
		return nil
	}
	var h []storedLifetime
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatalf("session_lifetimes.json: %v: %s", err, data)
	}
	return h
}

// A reload to session_lifetime 1h that fails to start (a site on a port
// another process holds; Caddy keeps the running 12h configuration) is
// never in force, so it is not kept in the history, and an ordinary reload
// of the 12h configuration afterwards keeps a 3 h old login valid. The
// history is written once Caddy runs the configuration, not at jit_auth's
// Start, which comes before the other apps' (in map order).
func TestFailedReloadLeavesNoLifetimeInTheHistory(t *testing.T) {
	dir := t.TempDir()
	caddyfile, signIn, status := lifetimeSite(t, dir)
	// The login, as the 12h configuration sealed it 3 h ago.
	aged := agedCookie(t, signIn(), 3*time.Hour)
	if code := status(aged); code != http.StatusOK {
		t.Fatalf("session_lifetime 12h, login 3 h old: %d, want 200", code)
	}

	// The failed reload comes in a later second than the start (so no two
	// changes share a second: see TestReviewR7SameSecondReloadsLoseTheLengthening).
	nextSecond()

	// A port another program holds: a reload that serves a site on it
	// fails in the http app's Start.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	bad, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile("1h", busyPort)), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	// Caddy starts the apps of a config in map order: try until one
	// failed load started jit_auth before the http app (each try has an
	// even chance).
	recorded := func() bool {
		for _, c := range storedLifetimes(t, dir) {
			if c.Lifetime == 3600 {
				return true
			}
		}
		return false
	}
	// Ten failed loads: the chance that none started jit_auth first is
	// 1 in 1024.
	for range 10 {
		if err := caddy.Load(bad, true); err == nil {
			t.Fatal("the reload onto a port in use succeeded; the test needs it to fail")
		}
	}
	if recorded() {
		t.Errorf("a failed reload's session_lifetime 1h, never in force, is in the history kept in Caddy's storage: %+v", storedLifetimes(t, dir))
	}
	// The running configuration is still the 12h one.
	if code := status(aged); code != http.StatusOK {
		t.Fatalf("after the failed reload, the running 12h configuration refuses the 3 h old login: %d", code)
	}
	t.Logf("stored history after the failed reload: %+v", storedLifetimes(t, dir))

	// An ordinary reload of the unchanged configuration.
	nextSecond()
	reloadInProcess(t, caddyfile("12h", 0))
	if code := status(aged); code != http.StatusOK {
		t.Errorf("a reload of the unchanged session_lifetime 12h configuration ends a 3 h old login (%d): "+
			"the failed reload's 1h, which never took effect, was kept in the session_lifetime history (%+v)",
			code, storedLifetimes(t, dir))
	}
}

// nextSecond waits for the next Unix second to begin.
func nextSecond() {
	now := time.Now()
	time.Sleep(time.Unix(now.Unix()+1, 0).Sub(now) + 10*time.Millisecond)
}

// 12h, then 1m and back to 12h within one second (a mistaken reload
// undone at once): a login made under the running 12h lasts past 1m, also
// after another reload of the unchanged configuration. Changes are dated
// to the nanosecond, both are kept in order, and a lifetime replaced
// within the second a session was issued does not bind it.
func TestReloadUndoneWithinASecondKeepsTheLengthening(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute for the short lifetime to pass")
	}
	dir := t.TempDir()
	caddyfile, signIn, status := lifetimeSite(t, dir)
	nextSecond()
	// The pair of reloads, within one second (tried again, from the next
	// second, should a pair straddle two).
	for i := 0; ; i++ {
		before := time.Now().Unix()
		reloadInProcess(t, caddyfile("1m", 0))
		reloadInProcess(t, caddyfile("12h", 0))
		if time.Now().Unix() == before {
			break
		}
		if i == 5 {
			t.Skip("could not make two reloads within one second")
		}
		nextSecond()
	}
	t.Logf("stored history after 12h, 1m, 12h: %+v", storedLifetimes(t, dir))
	cookie := signIn()
	signedIn := time.Now()
	if code := status(cookie); code != http.StatusOK {
		t.Fatalf("a fresh login under session_lifetime 12h: %d, want 200", code)
	}
	// Past the 1m that is no longer configured.
	time.Sleep(time.Until(signedIn.Add(62 * time.Second)))
	if code := status(cookie); code != http.StatusOK {
		t.Fatalf("the 62 s old login under the running 12h configuration: %d, want 200", code)
	}
	reloadInProcess(t, caddyfile("12h", 0))
	if code := status(cookie); code != http.StatusOK {
		t.Errorf("a reload of the unchanged session_lifetime 12h configuration ends a 62 s old login made under 12h (%d); "+
			"stored history: %+v", code, storedLifetimes(t, dir))
	}
}

// 12h, then 1h, then 12h again: a login issued 3 h ago under the first
// 12h (its cookie still says it ends in 9 h) is refused under 1h, and
// stays refused after the lengthening: a session counts at most the
// shortest lifetime configured since its sign-in, else putting the default
// back would revive every old login (and stolen copies), also past a
// sign-out everywhere kept only as long as the short lifetime.
func TestLengthenedLifetimeDoesNotReviveSessionsEndedByShortening(t *testing.T) {
	caddyfile, signIn, status := lifetimeSite(t, t.TempDir())
	aged := agedCookie(t, signIn(), 3*time.Hour)
	if code := status(aged); code != http.StatusOK {
		t.Fatalf("session_lifetime 12h, login 3 h old: %d, want 200", code)
	}
	reloadInProcess(t, caddyfile("1h", 0))
	if code := status(aged); code == http.StatusOK {
		t.Fatal("after the reload to session_lifetime 1h, the 3 h old login is still accepted")
	}
	reloadInProcess(t, caddyfile("12h", 0))
	if code := status(aged); code == http.StatusOK {
		t.Error("a login that the reload to session_lifetime 1h ended is accepted again after a reload back to 12h; the README says a lengthening applies to sign-ins from then on")
	}
}
