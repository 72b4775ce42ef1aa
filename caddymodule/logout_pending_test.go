package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Signing out on the site also ends a login paused on the consent page
// in that browser (S7, PRODUCT 4.6). On a shared computer: Alice's
// sign-in stops on the consent page, she does not answer and signs out;
// the next person presses Back and Allow, and must not be signed in as
// Alice.
func TestSignOutEndsAPausedLoginInTheBrowser(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent"})
	b := newBrowser(t)

	// Alice's first login: consent, then she is signed in.
	s.queue(alice())
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/consent" {
		t.Fatalf("first login ended at %s, want the consent page", resp.Request.URL)
	}
	if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode != http.StatusOK || !s.hasSession(b) {
		t.Fatalf("first login after consent: %d", resp.StatusCode)
	}

	// A later sign-in in the same browser stops on the consent page for
	// a new claim; she does not answer.
	later := alice()
	later.claims["department"] = "finance"
	s.queue(later)
	resp, page = s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/consent" || !strings.Contains(page, "department") {
		t.Fatalf("later login ended at %s, want the consent page for the new claim", resp.Request.URL)
	}

	// She signs out on this site.
	if resp, body := b.logout(s.base, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("sign-out: %d\n%s", resp.StatusCode, body)
	}
	if s.hasSession(b) {
		t.Fatal("precondition: still signed in after the sign-out")
	}
	time.Sleep(1100 * time.Millisecond) // past the second of the sign-out

	// The next person at this browser goes back to the consent page and
	// presses Allow.
	resp, body := s.answer(b, page, "allow", "")
	if s.hasSession(b) {
		t.Errorf("after signing out, the consent page that was open before answered Allow (%d at %s) signs the browser in as alice again: "+
			"the sign-out left the pending login usable; want it ended with the session\n%s",
			resp.StatusCode, resp.Request.URL, reviewB3Clip(body))
	}
}

// reviewB3Clip is the start of a page, for a failure message.
func reviewB3Clip(body string) string {
	if len(body) > 200 {
		body = body[:200]
	}
	return strings.TrimSpace(body)
}
