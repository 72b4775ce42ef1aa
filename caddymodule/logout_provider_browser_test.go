package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
	"github.com/jitauth/caddy-jitauth/internal/devidp"
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
	loc, problems := signOutInABrowser(t, browser, base, idp, "/bye")
	if !strings.HasPrefix(loc, idp.Issuer()) && !strings.HasPrefix(loc, base+"/bye") && !strings.HasPrefix(loc, base+"/.jitauth/logged-out") {
		t.Errorf("after clicking Sign out with logout_at_provider the browser is at %q, not at the provider nor back on the site\nbrowser problems:\n%s", loc, problems)
	} else if problems != "" {
		t.Errorf("signing out at the provider: %s", problems)
	}
}

// A sign-out link back to a protected page (/.jitauth/logout?rd=/, as an
// app's "Sign out" button often is): the form's answer goes to rd, which
// sends the signed-out browser to sign in, at the provider when the
// application has one connection. Chromium applies the sign-out page's
// form-action to that whole chain, so it must not stop it at the
// provider's origin: the browser reaches the provider's sign-in page.
func TestSignOutToAProtectedPageInABrowser(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp, _ := devidpSite(t, "", false)
	loc, problems := signOutInABrowser(t, browser, base, idp, "/")
	if !strings.HasPrefix(loc, idp.Issuer()) || problems != "" {
		t.Errorf("after clicking Sign out (rd=/, a protected page) the browser is at %q, want the provider's sign-in page\nbrowser problems:\n%s", loc, problems)
	}
}

// signedInTab signs in at base through the devidp provider (as the Go
// browser) and opens a Chromium tab that holds the same cookies (the
// session and the logout hint).
func signedInTab(t *testing.T, browser context.Context, base string, idp *devidp.Server) *pageTab {
	t.Helper()
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
	return p
}

// signOutInABrowser signs in through the provider with the Go browser,
// gives Chromium its cookies, opens the sign-out page with rd and clicks
// Sign out. It returns where the tab ended and the problems Chromium
// logged on the way.
func signOutInABrowser(t *testing.T, browser context.Context, base string, idp *devidp.Server, rd string) (string, string) {
	t.Helper()
	p := signedInTab(t, browser, base, idp)
	resp := p.navigate("opening the sign-out page", chromedp.Navigate(base+"/.jitauth/logout?rd="+rd))
	if resp.Status != http.StatusOK {
		t.Fatalf("sign-out page: %d", resp.Status)
	}
	p.expectClean("sign-out page")
	// The click; the navigation may fail in the browser, so do not
	// require a response.
	_ = chromedp.Do(p.step(), chromedp.Click(chromedp.CSS(`button.allow`)), chromedp.Sleep(2e9))
	loc := p.location()
	p.mu.Lock()
	defer p.mu.Unlock()
	return loc, strings.Join(p.problems, "\n")
}
