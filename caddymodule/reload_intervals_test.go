package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The background work (the revocation follower, the user-status
// refresher, the deprovisioning sweeper and the session refresher) sleeps
// for intervals of the configuration; a reload that shortens one takes
// effect at once (sharedState.sleep).

// A reload that shortens user_status_refresh takes effect at once: the
// process's one user-status refresher does not keep waiting on the timer
// the configuration before armed. Run with user_status_refresh 1h, then
// reloaded with 1s in an incident, a user disabled in the store (through
// another instance sharing it) loses their live session within seconds,
// not within what is left of the hour (S7, S17).
func TestReloadShorteningUserStatusRefreshTakesEffect(t *testing.T) {
	_, connString := pgSchema(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	dir := t.TempDir()
	adapt := func(refresh string) []byte {
		t.Helper()
		j, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(pgCaddyfile(dir,
			fmt.Sprintf("store postgres %q\n\t\tuser_status_refresh %s", connString, refresh), port,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	runCaddyJSON(t, adapt("1h"))

	b, with := signInAndCopy(t, idp, base)
	if code := with(); code != http.StatusOK {
		t.Fatalf("session right after login: %d", code)
	}
	// Let the first (woken) status read of alice happen.
	time.Sleep(2 * time.Second)

	// The operator shortens the bound: caddy reload.
	if err := caddy.Load(adapt("1s"), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	eventually(t, "the session works after the reload", 5*time.Second, func() bool { return statusAfterReload(t, base, b.cookie(base, "jitauth_session")) == http.StatusOK })

	// Another instance sharing the store disables alice (its admin API
	// writes the status to the store, as here).
	st := openPGStore(t, connString)
	users, err := st.ListUsers(t.Context(), 0, 10)
	if err != nil || len(users) != 1 {
		t.Fatalf("users: %v %v", users, err)
	}
	if err := st.SetStatus(t.Context(), users[0].ID, provisioner.StatusDisabled, "left the company"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(8 * time.Second)
	for with() == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("a user disabled in the store still reaches the upstream %s later, though user_status_refresh was reloaded to 1s (the refresher still waits on the 1h timer of the configuration before the reload)", time.Since(start).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A reload that shortens revocation_poll takes effect at once: with
// revocation_poll 1h reloaded to 1s, a cookie logged out through another
// instance A stops working on this instance B within seconds, not when
// the timer the configuration before armed fires (S7, S17; README
// "Several instances").
func TestReloadShorteningRevocationPollTakesEffect(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()

	// Instance A: its own process, sharing the store and the keys.
	portA := freePort(t)
	a := fmt.Sprintf("http://localhost:%d", portA)
	dirA := filepath.Join(dir, "a")
	if err := os.MkdirAll(dirA, 0o700); err != nil {
		t.Fatal(err)
	}
	startCaddyProcess(t, bin, dirA, pgCaddyfile(dirA, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString),
		portA, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()), a)

	// Instance B: this process, first with a long poll.
	portB := freePort(t)
	b := fmt.Sprintf("http://localhost:%d", portB)
	dirB := t.TempDir()
	adapt := func(poll string) []byte {
		t.Helper()
		j, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(pgCaddyfile(dirB,
			fmt.Sprintf("store postgres %q\n\t\trevocation_poll %s", connString, poll), portB,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	runCaddyJSON(t, adapt("1h"))

	first, onB := signInAndCopy(t, idp, b)
	if code := onB(); code != http.StatusOK {
		t.Fatalf("session on B: %d", code)
	}

	// The operator shortens the poll on B: caddy reload.
	if err := caddy.Load(adapt("1s"), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	eventually(t, "the session works on B after the reload", 5*time.Second, func() bool { return statusAfterReload(t, b, first.cookie(b, "jitauth_session")) == http.StatusOK })
	time.Sleep(2 * time.Second) // past the reload's own read of the store

	// The user signs out through A (the load balancer sent them there).
	var copied *http.Cookie
	{
		// signInAndCopy's browser holds the cookie for B's host; carry
		// it to A's, as a shared domain behind one balancer would.
		bb := newBrowser(t)
		idp.QueueUser(alice())
		resp, body, _ := bb.follow(b+"/.jitauth/start/corp", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second login on B: %d %s", resp.StatusCode, body)
		}
		copied = bb.cookie(b, "jitauth_session")
	}
	onBCopy := func() int {
		r := newBrowser(t).do(http.MethodGet, b+"/app", http.Header{"Cookie": {copied.Name + "=" + copied.Value}})
		r.Body.Close()
		return r.StatusCode
	}
	if code := onBCopy(); code != http.StatusOK {
		t.Fatalf("second session on B: %d", code)
	}
	ba := newBrowser(t)
	jar, _ := cookiejar.New(nil)
	ba.client.Jar = jar
	ua, _ := url.Parse(a)
	jar.SetCookies(ua, []*http.Cookie{{Name: copied.Name, Value: copied.Value, Path: "/"}})
	if code, body := logoutVia(t, ba, a); code != http.StatusOK {
		t.Fatalf("logout through A: %d %s", code, body)
	}

	start := time.Now()
	deadline := start.Add(6 * time.Second)
	for onBCopy() != http.StatusFound {
		if time.Now().After(deadline) {
			t.Fatalf("B still accepts a session logged out through A %s later, though its revocation_poll was reloaded to 1s (the follower still sleeps on the 1h timer of the configuration before the reload)", time.Since(start).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A reload that shortens a deprovision rule's every takes effect at
// once: the sweeper does not sleep out the hour the configuration before
// armed, and a user inactive for longer than after is disabled within
// seconds of the reload.
func TestReloadShorteningDeprovisionEveryTakesEffect(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin,
		corpExtra: "deprovision {\n\t\t\t\tafter 2s\n\t\t\t\tevery 1h\n\t\t\t}"})
	st := openStore(t, s.dir)
	// The first sweep ran when the app started; ann logs in after it.
	s.queue(oidcUserNamed("ann"))
	if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login of ann: %d", resp.StatusCode)
	}

	var cfg json.RawMessage
	if code := adminCall(t, admin, http.MethodGet, "/config/", "", &cfg); code != http.StatusOK {
		t.Fatalf("GET /config/: %d", code)
	}
	hour, second := fmt.Sprintf(`"every":%d`, time.Hour), fmt.Sprintf(`"every":%d`, time.Second)
	if !strings.Contains(string(cfg), hour) {
		t.Fatalf("no %s in the running config:\n%s", hour, cfg)
	}
	if err := caddy.Load([]byte(strings.Replace(string(cfg), hour, second, 1)), true); err != nil {
		t.Fatalf("reload: %v", err)
	}

	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		u, err := st.UserByUsername(t.Context(), "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.Status == provisioner.StatusDisabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ann, inactive for longer than after, is still %s %s after a reload set every to 1s (the sweeper still sleeps on the 1h of the configuration before the reload)", u.Status, time.Since(start).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// statusAfterReload is the status of a request to base/app with the
// session cookie c, or 0 when the connection is closed unanswered: a
// connection the stopping servers of a reload accepted is, and a browser
// sends the navigation again.
func statusAfterReload(t *testing.T, base string, c *http.Cookie) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	resp, err := newBrowser(t).client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
