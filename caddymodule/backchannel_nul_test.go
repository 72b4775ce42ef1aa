package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
)

// A logout token whose sub (or sid) holds a NUL names no session: no
// login takes such a subject (Provision refuses it). It gets a 400 (S12),
// not the 503 "temporarily_unavailable" with Retry-After that PostgreSQL
// refusing NUL in text would give, which has the provider send it again
// for ever.
func TestBackchannelLogoutWithANULSubjectIsRefused(t *testing.T) {
	_, conn := pgSchema(t)
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", store: fmt.Sprintf("store postgres %q", conn)})
	cfg := s.idp.Config()
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for name, claim := range map[string]string{"sub": "sub", "sid": "sid"} {
		c := logoutClaims(cfg.Issuer, cfg.ClientID)
		c[claim] = "alice\x00-sub"
		code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c))
		if code >= 500 {
			t.Errorf("%s with a NUL: %d %s; want a 4xx (or 200: nothing to end), not an outage the provider retries", name, code, body)
		}
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's session ended: %d", resp.StatusCode)
	}
}
