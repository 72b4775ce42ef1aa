package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// TestReviewR4BackButtonAfterSignOutShowsNoProtectedPage
//
// What the user does: on a shared computer, Bob opens a protected page
// of the site, then signs out through /.jitauth/logout (clicking Sign
// out, rd a public page). The next person at the computer presses the
// browser's Back button twice.
//
// What happens today: the browser shows Bob's protected page again, as
// the upstream rendered it for him ("upstream saw bob@…"), restored
// from the back/forward cache (or the HTTP cache, which history
// navigations use however stale). Signing out ends the session on the
// server (S7) but leaves every protected page Bob saw in the browser,
// and nothing in the sign-out's answer tells the browser to drop them.
//
// What should happen: once signed out, going back does not show the
// signed-out user's pages: Back loads the page again, which without a
// session goes to sign in. The answers jit_auth forwards to a signed-in
// browser can carry `Cache-Control: no-store` (when the upstream set no
// Cache-Control of its own, or always, as an application option):
// Chromium then neither keeps the page in its back/forward cache nor
// serves it from the HTTP cache on a history navigation. (Tried against
// this Chromium 156 with a bare server: `Clear-Site-Data: "cache"` on
// the sign-out's answer does not stop the restore; `no-store` on the
// protected page does.) The upstreams this module is for, legacy apps
// with no login code of their own, never send no-store for this reason.
//
// Severity: medium. Sign-out is what a user of a shared or kiosk
// computer relies on; today it leaves the content of every protected
// page of the session readable to the next person by pressing Back.
func TestReviewR4BackButtonAfterSignOutShowsNoProtectedPage(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp := publicPagesSite(t)
	b := newBrowser(t)
	if resp, body := devidpLogin(t, b, idp, base, "corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	p := newTab(t, browser)
	for _, c := range b.setCookies {
		if c.Value == "" || c.MaxAge < 0 {
			continue
		}
		path := c.Path
		if path == "" {
			path = "/"
		}
		httpOnly := c.HttpOnly
		if _, err := chromedp.Call(p.step(), network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: base + path, Path: path, HTTPOnly: &httpOnly}); err != nil {
			t.Fatalf("setting cookie %s: %v", c.Name, err)
		}
	}

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
