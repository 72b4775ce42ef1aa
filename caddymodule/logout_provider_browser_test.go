package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// logout_at_provider in a real browser: the sign-out page's form posts to
// /.jitauth/logout, which answers 303 to the provider's
// end_session_endpoint. Chromium applies the page's form-action to the
// redirects a form submission follows, so the policy of the sign-out page
// must allow the provider's origin: the browser reaches the provider (or
// is sent back to the site by it), with nothing blocked. The Go-client
// test (TestLogoutAtProviderReachesTheProviderAndReturns) does not
// enforce CSP.
func TestLogoutAtProviderInABrowser(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp, _ := devidpSite(t, "logout_at_provider", true)
	b := newBrowser(t)
	if resp, body := devidpLogin(t, b, idp, base, "corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	p := newTab(t, browser)
	// Give Chromium the Go browser's cookies (session and logout hint).
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
	resp := p.navigate("opening the sign-out page", chromedp.Navigate(base+"/.jitauth/logout?rd=/bye"))
	if resp.Status != http.StatusOK {
		t.Fatalf("sign-out page: %d", resp.Status)
	}
	p.expectClean("sign-out page")
	// The click; the navigation may fail in the browser, so do not
	// require a response.
	_ = chromedp.Do(p.step(), chromedp.Click(chromedp.CSS(`button.allow`)), chromedp.Sleep(2e9))
	loc := p.location()
	p.mu.Lock()
	problems := strings.Join(p.problems, "\n")
	p.mu.Unlock()
	if !strings.HasPrefix(loc, idp.Issuer()) && !strings.HasPrefix(loc, base+"/bye") && !strings.HasPrefix(loc, base+"/.jitauth/logged-out") {
		t.Errorf("after clicking Sign out with logout_at_provider the browser is at %q, not at the provider nor back on the site\nbrowser problems:\n%s", loc, problems)
	} else if problems != "" {
		t.Errorf("signing out at the provider: %s", problems)
	}
}
