package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
)

// A logout while PostgreSQL is unreachable is not lost (S7, S17):
// instance A (in-process, reaching the database through a proxy the test
// cuts) keeps it in Caddy's storage, refuses the copied cookie at once
// and after a restart, and hands it to the store when the database is
// back, so instance B (a Caddy binary sharing the database and the
// cookie keys) refuses the cookie too, without a restart; instance C,
// which shares A's Caddy storage, refuses it during the outage. When even
// Caddy's storage cannot keep the logout, A says so (503) instead of
// "Signed out", and keeps the cookie so the user can try again.
func TestLogoutDuringStoreOutageIsKept(t *testing.T) {
	_, connString := pgSchema(t)
	u, _ := url.Parse(connString)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()

	bin := buildCaddy(t)
	dirB := filepath.Join(dir, "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	portB := freePort(t)
	baseB := fmt.Sprintf("http://localhost:%d", portB)
	startCaddyProcess(t, bin, dirB, pgCaddyfile(dirB, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString), portB,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()), baseB)

	// C shares A's Caddy storage (and, like A, reaches the database
	// through the proxy).
	dirA := filepath.Join(dir, "a")
	if err := os.MkdirAll(dirA, 0o700); err != nil {
		t.Fatal(err)
	}
	portC := freePort(t)
	baseC := fmt.Sprintf("http://localhost:%d", portC)
	startCaddyProcess(t, bin, dirA, pgCaddyfile(dirA, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", u.String()), portC,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()), baseC)

	portA := freePort(t)
	baseA := fmt.Sprintf("http://localhost:%d", portA)
	cfgA, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(pgCaddyfile(dirA, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", u.String()), portA,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	runCaddyJSON(t, cfgA)

	login := func() (*browser, *http.Cookie) {
		t.Helper()
		b := newBrowser(t)
		idp.QueueUser(alice())
		resp, body, _ := b.follow(baseA+"/.jitauth/start/corp", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		return b, b.cookie(baseA, "jitauth_session")
	}
	with := func(base string, c *http.Cookie) int {
		t.Helper()
		r := newBrowser(t).do(http.MethodGet, base+"/app", http.Header{"Cookie": {c.Name + "=" + c.Value}})
		r.Body.Close()
		return r.StatusCode
	}
	first, copied := login()
	second, copied2 := login()
	for _, base := range []string{baseA, baseB, baseC} {
		if code := with(base, copied); code != http.StatusOK {
			t.Fatalf("%s refuses a live session: %d", base, code)
		}
	}

	proxy.Down()

	// Caddy's storage cannot keep the logout either: a file stands where
	// its directory goes.
	blocker := filepath.Join(dirA, "storage", "jit_auth", "pending_revocations")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body := second.logout(baseA, "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "could not be completed") || strings.Contains(body, "Signed out") {
		t.Fatalf("logout with the store and Caddy's storage failing: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "jitauth_session" {
			t.Fatalf("the failed logout removed the session cookie, so the user cannot try again: %v", c)
		}
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}

	// The store is still down; Caddy's storage works again.
	for _, b := range []*browser{first, second} {
		if code, body := logoutVia(t, b, baseA); code != http.StatusOK || !strings.Contains(body, "Signed out") {
			t.Fatalf("logout with the store down: %d %s", code, body)
		}
	}
	for _, c := range []*http.Cookie{copied, copied2} {
		if code := with(baseA, c); code == http.StatusOK {
			t.Fatal("A accepts a copied cookie after its logout")
		}
	}

	// C, sharing A's storage, learns of the logouts while the database
	// is still down.
	deadline := time.Now().Add(30 * time.Second)
	for with(baseC, copied) == http.StatusOK || with(baseC, copied2) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("C, sharing A's Caddy storage, still accepts sessions logged out through A during the outage")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Restart A. Caddy does not start without its database, so the proxy
	// lets the start through and is cut again at once.
	_ = caddy.Stop()
	proxy.Up()
	if err := caddy.Load(cfgA, true); err != nil {
		t.Fatalf("restarting A: %v", err)
	}
	proxy.Down()
	// Both cookies at once: the restarted A cannot read the revocations
	// from the store, so each request waits out its first read (5 s)
	// before it is answered.
	var wg sync.WaitGroup
	for _, c := range []*http.Cookie{copied, copied2} {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, baseA+"/app", nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			req.Header.Set("Cookie", c.Name+"="+c.Value)
			r, err := newBrowser(t).client.Do(req)
			if err != nil {
				t.Errorf("GET %s/app after the restart: %v", baseA, err)
				return
			}
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				t.Error("after a restart, A accepts a cookie logged out during the outage")
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The database is back: A hands it the logouts, and B, which never
	// restarted, learns of them.
	proxy.Up()
	deadline = time.Now().Add(60 * time.Second)
	for with(baseB, copied) == http.StatusOK || with(baseB, copied2) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("B still accepts sessions logged out through A during the outage")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Delivered logouts leave Caddy's storage.
	pending := filepath.Join(dirA, "storage", "jit_auth", "pending_revocations")
	for {
		entries, err := os.ReadDir(pending)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivered logouts stay in Caddy's storage", len(entries))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
