package caddymodule_test

import (
	"net/http"
	"testing"
)

// A back-channel logout by sub at a JIT-on connection ends the sessions
// of the local user linked to that subject, and so also the JIT-off
// sessions under that user's name (a verified email) issued before the
// user existed, which carry no local user: the logout is recorded under
// the name too, as an administrator's sign-out of the user is (S7, S15;
// TestJITOffSessionFromBeforeTheLocalUserFollowsThem).
func TestBackchannelLogoutBySubjectEndsJITOffSessionsUnderTheUsersName(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()

	// Through partner (JIT off) first: alice@example.com, no local user.
	early := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(early, "partner", "/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through partner (JIT off): %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Fatalf("JIT-off name %q", got)
	}
	// Then through corp (JIT on): the local user alice@example.com.
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through corp: %d", resp.StatusCode)
	}

	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	if code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	hits := s.upstream.count()
	resp, _ := early.get(s.base + "/whoami")
	if s.upstream.count() != hits {
		t.Errorf("the provider signed alice-sub out (back-channel, by sub, at JIT-on corp) and was told 200, but her JIT-off session under the same name, issued before the local user existed, still reached the upstream as Remote-User %q (%d)",
			s.upstream.lastHeaders(t).Get("Remote-User"), resp.StatusCode)
	}
}
