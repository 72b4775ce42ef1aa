package caddymodule_test

import (
	"html"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The provider signs its session "op-pending" out (Back-Channel Logout by
// sid) while the login it made is waiting on this site's consent page.
// Someone who then presses Allow in that browser (a shared computer: the
// user logged out at the provider and walked away) must not get a session
// of the provider session that was just logged out: the authentication
// it rests on is the one the provider ended.
func TestBackchannelLogoutEndsALoginWaitingForConsent(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent", corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()

	u := alice()
	u.claims["sid"] = "op-pending"
	s.queue(u)
	b := newBrowser(t)
	resp, page := s.login(b, "corp", "/")
	if resp.Request.URL.Path != "/.jitauth/consent" {
		t.Fatalf("login ended at %s, want the consent page", resp.Request.URL)
	}

	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sid"] = "op-pending"
	if code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	time.Sleep(1100 * time.Millisecond) // past the second of the logout

	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token on the consent page:\n%s", page)
	}
	b.postRaw(s.base+"/.jitauth/consent", url.Values{"csrf": {html.UnescapeString(m[1])}, "action": {"allow"}})
	if resp, _ := b.get(s.base + "/after"); resp.StatusCode == http.StatusOK {
		t.Fatal("a login whose provider session was ended by a back-channel logout while it waited on the consent page became a session that reaches the upstream")
	}
}
