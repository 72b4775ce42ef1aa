package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// idle_timeout: a session in use stays alive past the timeout, because
// each request within it moves the last activity (carried in the
// cookie); one left alone for the timeout is no session any more.
func TestIdleTimeoutEndsAnUnusedSession(t *testing.T) {
	s := startSiteWith(t, "\t\tidle_timeout 2s\n")
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	first := b.cookie(s.base, "jitauth_session").Value
	// In use for twice the timeout: every request within it counts.
	for range 8 {
		time.Sleep(500 * time.Millisecond)
		if resp, _ := b.get(s.base + "/busy"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a session in use ended: %d", resp.StatusCode)
		}
	}
	if b.cookie(s.base, "jitauth_session").Value == first {
		t.Fatal("the cookie was never re-issued with a later last activity")
	}
	// The first cookie, replayed after the timeout, is idle whatever the
	// browser did since: its own last activity is old.
	resp := newBrowser(t).do("GET", s.base+"/old", http.Header{"Cookie": {"jitauth_session=" + first}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("an old cookie past the idle timeout: %d", resp.StatusCode)
	}
	// Left alone for the timeout, the session is gone.
	time.Sleep(2500 * time.Millisecond)
	resp, _ = b.get(s.base + "/idle")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("an idle session still works: %d", resp.StatusCode)
	}
}
