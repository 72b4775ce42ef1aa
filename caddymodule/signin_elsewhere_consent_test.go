package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// A login that another site's page sent the browser to start leaves the
// session alone also when it goes through the consent page (README: "a
// link elsewhere cannot sign anyone out"): the provider answers at once
// with another account of the user's, the consent page asks about it,
// and whether the user declines, or allows and the site refuses the
// account, the session they had stays.
func TestASignInStartedElsewhereThroughConsentDoesNotSignTheUserOut(t *testing.T) {
	for _, action := range []string{"decline", "allow"} {
		t.Run(action, func(t *testing.T) {
			s := startSiteOpts(t, siteOptions{corpJIT: "mode consent", handlerBlock: "\t\tallow email_domain example.com"})
			b := newBrowser(t)
			s.queue(alice())
			if resp, _ := s.login(b, "partner", "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("alice: %d", resp.StatusCode)
			}
			// evil.example links to the site's start endpoint.
			s.queue(&oidcUser{sub: "other-sub", claims: map[string]any{"email": "alice@personal.example", "email_verified": true, "name": "Alice"}})
			resp := b.do(http.MethodGet, s.base+"/.jitauth/start/corp?rd=/", http.Header{
				"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Referer": {"https://evil.example/"},
			})
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil {
				t.Fatalf("start from another site: %d without a redirect", resp.StatusCode)
			}
			final, page, _ := b.follow(loc.String(), nil)
			if final.Request.URL.Path != "/.jitauth/consent" {
				t.Fatalf("the login ended at %s (%d), want the consent page", final.Request.URL, final.StatusCode)
			}
			answered, _ := s.answer(b, page, action, "")
			if resp, who := b.get(s.base + "/whoami"); resp.StatusCode != http.StatusOK || !strings.Contains(who, "alice@example.com") {
				t.Errorf("a login another site started, answered %s on the consent page (%d), signed alice out: /whoami %d; want her session kept",
					action, answered.StatusCode, resp.StatusCode)
			}
		})
	}
}
