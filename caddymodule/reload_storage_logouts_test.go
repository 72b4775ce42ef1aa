package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A logout made while the store does not take it is kept in Caddy's
// storage, so that a restart still refuses the session (S17). A reload
// that moved Caddy's storage elsewhere before the store came back left
// it only in the storage before: the running process still refused the
// session from memory, but after a restart on the new storage the
// logged-out cookie was a live session again. The logouts still waiting
// now go with the configuration into its storage.
func TestReloadToAnotherStorageKeepsTheLogoutsWaitingForTheStore(t *testing.T) {
	s := startSiteOpts(t, siteOptions{faultyStore: true})
	b := newBrowser(t)
	s.queue(alice())
	if resp, body := s.login(b, "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	copied := b.cookie(s.base, "jitauth_session")
	with := func() int {
		t.Helper()
		var err error
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, s.base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", copied.Name+"="+copied.Value)
			var r *http.Response
			r, err = (&http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err == nil {
				r.Body.Close()
				return r.StatusCode
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s/app: %v", s.base, err)
		return 0
	}

	revokeDown.Store(true)
	t.Cleanup(func() { revokeDown.Store(false) })
	if code, body := logoutVia(t, b, s.base); code != http.StatusOK || !strings.Contains(body, "Signed out") {
		t.Fatalf("logout with the store not taking it: %d %s", code, body)
	}
	if code := with(); code == http.StatusOK {
		t.Fatal("the copied cookie is accepted after its logout")
	}

	// The operator moves Caddy's storage while the store still fails.
	moved := adaptCaddyfile(t, strings.Replace(s.caddyfile, s.dir+"/storage", s.dir+"/storage-moved", 1),
		`"backend":"sqlite"`, `"backend":"test_failing"`)
	if err := caddy.Load(moved, true); err != nil {
		t.Fatalf("reloading to another storage: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if code := with(); code == http.StatusOK {
		t.Fatal("after the reload, the copied cookie is accepted")
	}

	// A restart on the new storage, the store still failing.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(moved, true); err != nil {
		t.Fatalf("starting again: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if code := with(); code == http.StatusOK {
		t.Fatal("after a restart on the storage the reload moved to, the logged-out cookie is a live session again")
	}
}
