package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// A sign-in in a browser that already holds a session ends without a new
// one (the user declines the consent page, or the site does not admit
// the account): the page says "you are not signed in to this site" /
// "this site does not admit your account", yet the previous user's
// session stays in the browser and the next request reaches the upstream
// as that user. On a shared computer the next person acts as the
// previous one while the site told them they are not signed in (S16: a
// new sign-in replaces any session the browser had).
func TestASignInThatEndsWithoutASessionEndsTheOtherOne(t *testing.T) {
	bob := func(sub, email string) *oidcUser {
		return &oidcUser{sub: sub, claims: map[string]any{"email": email, "email_verified": true, "name": "Bob"}}
	}

	t.Run("consent declined", func(t *testing.T) {
		s, b := consentSiteWithAlice(t)

		// Bob signs in on the same browser and declines.
		s.queue(bob("bob-sub", "bob@example.com"))
		_, page := s.login(b, "corp", "/")
		resp, body := s.answer(b, page, "decline", "")
		if !strings.Contains(body, "you are not signed in") {
			t.Fatalf("decline page: %d %s", resp.StatusCode, body)
		}
		if resp, body := b.get(s.base + "/whoami"); resp.StatusCode == http.StatusOK {
			t.Errorf("after Bob declined and was told he is not signed in, the browser still reaches the upstream: %q", body)
		}
	})

	t.Run("account not admitted", func(t *testing.T) {
		s := startSiteWith(t, "\t\tallow email_domain example.com")
		b := newBrowser(t)
		s.queue(alice())
		if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("alice: %d", resp.StatusCode)
		}
		s.queue(bob("mallory-sub", "mallory@evil.example"))
		resp, body := s.login(b, "partner", "/")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not admit") {
			t.Fatalf("mallory: %d %s", resp.StatusCode, body)
		}
		if resp, body := b.get(s.base + "/whoami"); resp.StatusCode == http.StatusOK {
			t.Errorf("after a sign-in the site refused, the browser still reaches the upstream: %q", body)
		}
	})
}

// consentSiteWithAlice starts a site whose corp connection asks for
// consent, and signs alice in there, agreeing.
func consentSiteWithAlice(t *testing.T) (*site, *browser) {
	t.Helper()
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent"})
	b := newBrowser(t)
	s.queue(alice())
	_, page := s.login(b, "corp", "/")
	if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode >= 400 {
		t.Fatalf("alice allow: %d", resp.StatusCode)
	}
	if resp, body := b.get(s.base + "/whoami"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("alice is not signed in: %d %s", resp.StatusCode, body)
	}
	return s, b
}
