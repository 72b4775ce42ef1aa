package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jitauth/caddy-jitauth/examples/internal/legacyapp"
	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// The browser test drives Debian's chromium package, started by
// internal/browsertest (which says when it skips).
const sessionCookie = "jitauth_session"

// screenshot saves a PNG of the tab's viewport as dir/name, if
// JITAUTH_SCREENSHOTS names a directory.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv(browsertest.ScreenshotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func location(t *testing.T, tab context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// expectLoginForm checks that the tab shows the provider's login form.
func expectLoginForm(t *testing.T, tab context.Context, r running, what string) {
	t.Helper()
	if loc := location(t, tab); !strings.HasPrefix(loc, r.Issuer+"/login/username?") {
		t.Fatalf("%s: at %s, want the provider's login form at %s/login/username", what, loc, r.Issuer)
	}
	if err := chromedp.Do(tab,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.WaitVisible(chromedp.ID("password")),
	); err != nil {
		t.Fatalf("%s: login form: %v", what, err)
	}
}

// signIn types the credentials into the provider's login form, submits it
// and waits for the page the redirects end on.
func signIn(t *testing.T, tab context.Context, username, password string) {
	t.Helper()
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
	); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	if err != nil {
		t.Fatalf("submitting the login form as %s: %v", username, err)
	}
	if resp.Status != 200 {
		t.Fatalf("after signing in as %s: %d %s at %s", username, resp.Status, resp.StatusText, resp.URL)
	}
}

// appHeaders reads the identity headers off the legacy app's page, as shown
// in its table, and the greeting.
func appHeaders(t *testing.T, tab context.Context) (map[string]string, string) {
	t.Helper()
	headers, err := chromedp.Run(tab, chromedp.Evaluate[map[string]string](`
		Object.fromEntries([...document.querySelectorAll("table tr")]
			.filter(tr => tr.cells.length === 2 && tr.cells[0].tagName === "TD")
			.map(tr => [tr.cells[0].innerText.trim(), tr.cells[1].innerText.trim()]))`))
	if err != nil {
		t.Fatalf("reading the app page: %v", err)
	}
	user, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("user")))
	if err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	return headers, user
}

func expectAppPage(t *testing.T, tab context.Context, wantURL, wantUser string) {
	t.Helper()
	if loc := location(t, tab); loc != wantURL {
		t.Fatalf("at %s, want the app page %s", loc, wantURL)
	}
	headers, user := appHeaders(t, tab)
	if user != wantUser || headers[legacyapp.HeaderUser] != wantUser || headers[legacyapp.HeaderEmail] != wantUser {
		t.Fatalf("app page greets %q with headers %v, want %s", user, headers, wantUser)
	}
}

func cookies(t *testing.T, tab context.Context, site string) map[string]*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{site + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		m[c.Name] = c
	}
	return m
}

// requestsDuring returns the URLs of every request the tab sent while
// action ran, redirects included.
func requestsDuring(t *testing.T, tab context.Context, action chromedp.Action[chromedp.Void]) []string {
	t.Helper()
	lctx, stop := context.WithCancel(tab)
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(lctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, ev.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(tab, action)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), urls...)
}

// TestBrowserLoginAndLogout signs in and out of the demo with a real,
// headless Chromium, as a person would.
func TestBrowserLoginAndLogout(t *testing.T) {
	start := time.Now()
	browsertest.Require(t)
	r := startDemo(t, t.TempDir())
	// Started second so that it stops first, before Caddy waits for its
	// connections to close.
	tab := browsertest.Start(t)
	t.Logf("demo and chromium started in %s", time.Since(start).Round(time.Millisecond))
	issuer, err := url.Parse(r.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	appPage := r.SiteURL + "/some/page"

	// Unauthenticated: the app sends the browser to the provider's form.
	if err := chromedp.Do(tab, chromedp.Navigate(appPage)); err != nil {
		t.Fatal(err)
	}
	expectLoginForm(t, tab, r, "opening "+appPage)
	if title, err := chromedp.Run(tab, chromedp.Title()); err != nil || !strings.Contains(title, "Sign in") {
		t.Errorf("login page title %q (%v)", title, err)
	}
	// The form is styled (its style sheet passes the page's CSP), not
	// browser defaults: the button is the module pages' blue.
	if bg, err := chromedp.Run(tab, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("form button[type=submit]")).backgroundColor`)); err != nil || bg != "rgb(47, 91, 234)" {
		t.Errorf("provider's Sign in button background %q (%v), want the styled rgb(47, 91, 234)", bg, err)
	}
	screenshot(t, tab, "provider-login.png")

	// alice signs in and is back where she started.
	signIn(t, tab, "alice", "wonderland")
	expectAppPage(t, tab, appPage, "alice@example.com")
	screenshot(t, tab, "app.png")

	// The session cookie is there, and out of reach of scripts.
	sc := cookies(t, tab, r.SiteURL)[sessionCookie]
	if sc == nil || !sc.HTTPOnly {
		t.Errorf("session cookie %s: %+v, want it set and HttpOnly", sessionCookie, sc)
	}
	if jsCookies, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); err != nil {
		t.Fatal(err)
	} else if strings.Contains(jsCookies, sessionCookie) {
		t.Errorf("document.cookie shows the session cookie: %q", jsCookies)
	}

	// Reloading keeps her signed in, without a round trip to the provider.
	reqs := requestsDuring(t, tab, chromedp.Reload())
	for _, u := range reqs {
		if pu, err := url.Parse(u); err != nil || pu.Host == issuer.Host || strings.Contains(pu.Path, "/.jitauth/") {
			t.Errorf("reload sent a request to %s", u)
		}
	}
	if len(reqs) == 0 || reqs[0] != appPage {
		t.Errorf("reload requested %v, want %s", reqs, appPage)
	}
	expectAppPage(t, tab, appPage, "alice@example.com")

	// bob, in a fresh browser context (no shared cookies), is someone else.
	bob, cancelBob := chromedp.NewContext(tab, chromedp.WithNewBrowserContext())
	defer cancelBob()
	if err := chromedp.Do(bob, chromedp.Navigate(r.SiteURL+"/")); err != nil {
		t.Fatal(err)
	}
	expectLoginForm(t, bob, r, "bob opening /")
	signIn(t, bob, "bob", "builder")
	expectAppPage(t, bob, r.SiteURL+"/", "bob@example.com")
	cancelBob()

	// alice clicks "Sign out".
	resp, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`a[href="`+legacyapp.LogoutPath+`"]`)))
	if err != nil {
		t.Fatalf("clicking Sign out: %v", err)
	}
	if resp.Status != 200 || location(t, tab) != r.SiteURL+legacyapp.LogoutPath {
		t.Fatalf("after Sign out: %d at %s", resp.Status, location(t, tab))
	}
	// The link only asks; the page's button signs out.
	confirm, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(confirm, "Sign out of this site?") {
		t.Errorf("sign-out page says:\n%s", confirm)
	}
	if sc := cookies(t, tab, r.SiteURL)[sessionCookie]; sc == nil {
		t.Error("following the Sign out link alone ended the session")
	}
	screenshot(t, tab, "sign-out.png")
	resp, err = chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	if err != nil {
		t.Fatalf("clicking the Sign out button: %v", err)
	}
	if resp.Status != 200 || location(t, tab) != r.SiteURL+legacyapp.LogoutPath {
		t.Fatalf("after the Sign out button: %d at %s", resp.Status, location(t, tab))
	}
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "You are signed out.") {
		t.Errorf("signed-out page says:\n%s", body)
	}
	if sc := cookies(t, tab, r.SiteURL)[sessionCookie]; sc != nil {
		t.Errorf("session cookie still set after logout: %+v", sc)
	}
	screenshot(t, tab, "signed-out.png")

	// The app is behind the login form again.
	if err := chromedp.Do(tab, chromedp.Navigate(appPage)); err != nil {
		t.Fatal(err)
	}
	expectLoginForm(t, tab, r, "opening "+appPage+" after logout")

	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}
