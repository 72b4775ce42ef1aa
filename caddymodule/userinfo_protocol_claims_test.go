package caddymodule_test

import (
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The userinfo answer is not signed (only TLS vouches for it), and the
// session's provider session (its sid, which a back-channel logout by
// sid ends) came from it when the ID token had none: userinfo's sid
// was merged into the claims like a profile claim. A logout naming that
// sid then ended a session the signed token never tied to it (and one
// naming the ID token's real provider session, on a provider that sends
// sid in userinfo only, would not reach sessions whose userinfo said
// otherwise). Protocol claims (sid, acr, amr, iss, aud, nonce, …) now
// come from the ID token only; profile claims still fill in from
// userinfo.
func TestProviderSessionComesFromTheIDTokenNotUserinfo(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()
	u := alice()
	u.claims["sid"] = "op-session-userinfo"
	// userinfo says what the ID token does not: sid, and a name.
	u.tamper = func(m jwt.MapClaims) { delete(m, "sid"); delete(m, "name") }
	s.queue(u)
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-Name"); got != "Alice Liddell" {
		t.Fatalf("Remote-Name %q: the profile claim from userinfo was not merged", got)
	}
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sid"] = "op-session-userinfo"
	if code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("logout by sid: %d %s", code, body)
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a logout naming the sid only userinfo gave ended the session: %d", resp.StatusCode)
	}
}
