package caddymodule_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// A sign-in that must ask the user first (consent or username mode) but
// whose provider answer is too large to hold in the pending cookie ends
// on "Sign-in failed ... too large to hold while you confirm your
// account" without a session, and so, like every other sign-in that ends
// without a session of its own (declined, not admitted, provisioning
// failed, session too large), it ends the session of another identity
// the browser holds (endOtherSession, S16): the next request must not
// reach the upstream as the previous person. A large compressible claim
// (a long display name) ends here too since nothing over 256 KiB is
// sealed.
func TestPendingLoginTooLargeSignsThePreviousPersonOut(t *testing.T) {
	s, b := consentSiteWithAlice(t)

	// Bob, a new user, signs in on the same browser; his provider
	// profile carries a 12 KB display name that does not compress.
	noise := make([]byte, 6<<10)
	_, _ = rand.Read(noise)
	s.queue(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true,
		"name": "Bob " + hex.EncodeToString(noise)}})
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode < 400 || !strings.Contains(body, "too large") {
		t.Fatalf("bob's sign-in: %d %.300s (the test expects the page of a pending login too large)", resp.StatusCode, body)
	}
	if resp, body := b.get(s.base + "/whoami"); resp.StatusCode == http.StatusOK {
		t.Errorf("after Bob's sign-in ended on %q without a session, the browser still reaches the upstream as the previous user: %.200q",
			"Sign-in failed", body)
	}
}

// The username page's last try ("Too many tries for this sign-in") ends
// a sign-in without a session, as the pending login too large above
// does: the previous person's session on the browser ends with it.
func TestTooManyUsernameTriesSignsThePreviousPersonOut(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username"})
	b := newBrowser(t)
	s.queue(alice())
	_, page := s.login(b, "corp", "/")
	if resp, _ := s.answer(b, page, "allow", "alice.l"); resp.StatusCode >= 400 {
		t.Fatalf("alice's sign-in: %d", resp.StatusCode)
	}
	if resp, body := b.get(s.base + "/whoami"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice.l") {
		t.Fatalf("alice is not signed in: %d %.200s", resp.StatusCode, body)
	}

	// Bob signs in on the same browser and asks for a refused name until
	// the page gives up.
	s.queue(person("bob-sub", "bob@example.com", true, ""))
	_, page = s.login(b, "corp", "/")
	for i := 0; ; i++ {
		resp, body := s.answer(b, page, "allow", "admin")
		if strings.Contains(body, "Too many tries") {
			break
		}
		if resp.StatusCode != http.StatusBadRequest || i > 10 { // ten retries, then the page gives up
			t.Fatalf("bob's answer %d: %d %.300s", i, resp.StatusCode, body)
		}
		page = body
	}
	if resp, body := b.get(s.base + "/whoami"); resp.StatusCode == http.StatusOK {
		t.Errorf("after Bob's sign-in ended on %q without a session, the browser still reaches the upstream as the previous user: %.200q",
			"Too many tries", body)
	}
}
