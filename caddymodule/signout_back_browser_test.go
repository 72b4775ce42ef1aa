package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// On a shared computer Bob opens a protected page, then signs out
// (Sign out, rd a public page); the next person presses Back twice.
// Chromium restores a page from its back/forward or HTTP cache without
// asking Caddy unless the answer said no-store, and legacy upstreams do
// not. jit_auth leaves the upstream's caching alone (it would also stop
// browsers keeping scripts and images); the README's one line for sites
// where it matters, `header ?Cache-Control no-store` beside jit_auth, is
// what this checks: Back then shows no page of Bob's. (Without that line
// the page comes back; Clear-Site-Data: "cache" on the sign-out's answer
// does not stop it in Chromium 156.)
func TestBackAfterSignOutShowsNoProtectedPageWithTheREADMEsNoStore(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp := publicPagesSiteWith(t, "\n\t\theader ?Cache-Control no-store")
	p := signedInTab(t, browser, base, idp)

	// Bob's protected page.
	resp := p.navigate("opening a protected page", chromedp.Navigate(base+"/private/report"))
	if resp.Status != http.StatusOK {
		t.Fatalf("protected page: %d", resp.Status)
	}
	const seen = "upstream saw bob@example.com"
	if body := p.text("body"); body != seen {
		t.Fatalf("protected page says %q, want %q", body, seen)
	}

	// Bob signs out: the sign-out page, then its button.
	p.navigate("opening the sign-out page", chromedp.Navigate(base+"/.jitauth/logout?rd=/pub/bye"))
	p.navigate("clicking Sign out", chromedp.Click(chromedp.CSS(`button.allow`)))
	if loc := p.location(); loc != base+"/pub/bye" {
		t.Fatalf("after signing out the browser is at %s, want %s/pub/bye", loc, base)
	}
	if c := p.cookie(&site{base: base}, "jitauth_session"); c != nil {
		t.Fatalf("the session cookie is still in the browser after signing out: %+v", c)
	}

	// The next person presses Back twice: past the sign-out page, to the
	// protected page.
	p.do("going back twice", chromedp.Evaluate[chromedp.Void]("history.go(-2)"))
	deadline := time.Now().Add(stepTimeout)
	var loc, body string
	for time.Now().Before(deadline) {
		loc = p.location()
		if !strings.HasPrefix(loc, base+"/pub/") && !strings.HasPrefix(loc, base+"/.jitauth/logout") {
			body, _ = chromedp.Run(p.step(), chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			if strings.TrimSpace(body) != "" {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after Back twice: at %s, page says %q", loc, strings.TrimSpace(body))
	if strings.Contains(body, "upstream saw bob") {
		t.Errorf("after signing out, Back shows the signed-out user's protected page again (%s: %q); "+
			"answers forwarded to a signed-in browser should not be kept (Cache-Control: no-store)",
			loc, strings.TrimSpace(body))
	}
}
