package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// The page the provider sends the browser back to after a sign-out there
// says "You are signed out" only to a browser that is: opened while the
// session still counts (a link on another site, a bookmark, a sign-in in
// another tab since), it offers the sign-out instead, going on to state.
func TestLoggedOutPageWhileSignedInOffersTheSignOut(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, body := b.get(s.base + "/.jitauth/logged-out?state=%2Fbye")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "You are signed out") ||
		!strings.Contains(body, "Sign out of this site?") || !strings.Contains(body, `name="rd" value="/bye"`) {
		t.Errorf("the logged-out page with a live session: %d, want the sign-out page going on to /bye, not \"You are signed out\":\n%s", resp.StatusCode, body)
	}
	if resp, who := b.get(s.base + "/whoami"); resp.StatusCode != http.StatusOK || !strings.Contains(who, "alice@example.com") {
		t.Fatalf("the session ended on a GET: %d %q", resp.StatusCode, who)
	}
	// Signed out, the page goes on to state as before.
	resp, _ = newBrowser(t).get(s.base + "/.jitauth/logged-out?state=%2Fbye")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/bye" {
		t.Errorf("the logged-out page without a session: %d to %q, want 303 to /bye", resp.StatusCode, loc)
	}
}
