package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestASignInStartedElsewhereDoesNotSignTheUserOut: serveLogout says "a
// cross-site link or image cannot sign anyone out", and today's commit
// made a cross-site logout POST 403. But a page on another site can send
// the browser (a top-level GET, which carries the Lax session cookie) to
// /.jitauth/start/<another connection>; a provider where the browser is
// already signed in with an account the site refuses answers without a
// prompt, and endOtherSession (new today) then clears the victim's own
// session. Before today the refused sign-in left it.
func TestASignInStartedElsewhereDoesNotSignTheUserOut(t *testing.T) {
	s := startSiteWith(t, "\t\tallow email_domain example.com")
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice: %d", resp.StatusCode)
	}
	// evil.example links to the site's start endpoint: the browser sends
	// the navigation with its Lax cookies and these fields.
	s.queue(&oidcUser{sub: "other-sub", claims: map[string]any{"email": "alice@personal.example", "email_verified": true, "name": "Alice"}})
	resp := b.do(http.MethodGet, s.base+"/.jitauth/start/partner?rd=/", http.Header{
		"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Referer": {"https://evil.example/"},
	})
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("start from another site: %d without a redirect", resp.StatusCode)
	}
	// The provider answers at once (its user is signed in there).
	final, body, visited := b.follow(loc.String(), nil)
	t.Logf("visited %v: %d", visited, final.StatusCode)
	if resp, who := b.get(s.base + "/whoami"); resp.StatusCode != http.StatusOK || !strings.Contains(who, "alice@example.com") {
		t.Errorf("a link on another site to /.jitauth/start/partner (Sec-Fetch-Site: cross-site), answered by the provider with an account the site refuses (%d %.60q), signed alice out: /whoami %d; want her session kept (a cross-site link cannot sign anyone out)",
			final.StatusCode, body, resp.StatusCode)
	}
}
