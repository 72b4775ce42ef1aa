package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The browser test drives Debian's chromium package, started by
// internal/browsertest (which says when it skips).
const (
	// stepTimeout bounds each step in a tab, so that a missing element
	// fails the test quickly instead of at browserTimeout.
	stepTimeout = 10 * time.Second
	// pageCSP is the policy every page of the module carries.
	pageCSP = "default-src 'none'"
)

// pageTab is a tab in a browser context of its own (its own cookies),
// which records everything a page complains about: console errors and
// warnings (a Content-Security-Policy violation is one), uncaught
// exceptions, and blocked or failed loads.
type pageTab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
	// documents are the requests of the pages themselves: the browser
	// logs a page shown with a 4xx status as a failed load, and some pages
	// are meant to be 4xx.
	documents map[network.RequestID]bool
}

// newTab opens a tab in a fresh browser context of browser. Call it after
// starting the site, so that the tab closes before Caddy stops.
func newTab(t *testing.T, browser context.Context) *pageTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	p := &pageTab{t: t, ctx: ctx, documents: map[network.RequestID]bool{}}
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatal(err)
	}
	return p
}

// record runs in the tab's event loop: it must be quick.
func (p *pageTab) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var problem string
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type == network.ResourceTypeDocument {
			p.documents[ev.RequestID] = true
		}
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Source == cdplog.EntrySourceNetwork && p.documents[e.NetworkRequestID] && strings.Contains(e.Text, "the server responded with a status of 4") {
			break // the page's own status: checked by expectPage
		}
		if e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning || e.Source == cdplog.EntrySourceSecurity {
			problem = fmt.Sprintf("browser log (%s, %s): %s %s", e.Source, e.Level, e.Text, e.URL)
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			problem = fmt.Sprintf("console %s", ev.Type)
		}
	case *runtime.EventExceptionThrown:
		problem = "exception: " + ev.ExceptionDetails.Text
	case *network.EventLoadingFailed:
		if ev.BlockedReason != "" || !ev.Canceled {
			problem = fmt.Sprintf("load failed: %s (blocked: %q)", ev.ErrorText, ev.BlockedReason)
		}
	}
	if problem != "" {
		if len(problem) > 300 { // a blocked data: URI is long
			problem = problem[:300] + "…"
		}
		p.problems = append(p.problems, problem)
	}
}

// expectClean fails the test if the pages shown since the last call
// complained about anything.
func (p *pageTab) expectClean(what string) {
	p.t.Helper()
	p.mu.Lock()
	problems := p.problems
	p.problems = nil
	p.mu.Unlock()
	for _, pr := range problems {
		p.t.Errorf("%s: %s", what, pr)
	}
}

// step returns the tab's context for one step, bounded by stepTimeout.
func (p *pageTab) step() context.Context {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	p.t.Cleanup(cancel)
	return ctx
}

// do runs actions that do not navigate.
func (p *pageTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.step(), actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs actions that load a page (a click on a link or a submit
// button, a typed Enter, a navigation) and returns the response of the
// page the redirects end on.
func (p *pageTab) navigate(what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	p.t.Helper()
	resp, err := chromedp.RunResponse(p.step(), actions...)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return resp
}

func (p *pageTab) location() string {
	p.t.Helper()
	loc, err := chromedp.Run(p.step(), chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	return loc
}

func (p *pageTab) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.step(), chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func evaluate[T any](p *pageTab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.step(), chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// expectPage checks that resp is one of the module's pages at path, with
// status and heading, served with the strict policy.
func (p *pageTab) expectPage(s *site, resp *network.Response, path string, status int64, heading string) {
	p.t.Helper()
	loc := p.location()
	if !strings.HasPrefix(loc, s.base+path) {
		p.t.Fatalf("at %s, want %s%s (%q)", loc, s.base, path, heading)
	}
	if resp.Status != status {
		p.t.Errorf("%s: status %d, want %d", loc, resp.Status, status)
	}
	if csp, _ := resp.Headers["Content-Security-Policy"].(string); !strings.Contains(csp, pageCSP) {
		p.t.Errorf("%s: Content-Security-Policy %q, want %s…", loc, csp, pageCSP)
	}
	if h1 := p.text("h1"); h1 != heading {
		p.t.Fatalf("%s: heading %q, want %q\n%s", loc, h1, heading, p.text("main"))
	}
	if title := evaluate[string](p, "document.title"); title != heading {
		p.t.Errorf("%s: title %q, want %q", loc, title, heading)
	}
}

// expectUpstream checks that the tab shows the upstream's page at path,
// reached as user.
func (p *pageTab) expectUpstream(s *site, resp *network.Response, path, user string) {
	p.t.Helper()
	if loc := p.location(); loc != s.base+path || resp.Status != http.StatusOK {
		p.t.Fatalf("at %s with %d, want the upstream's %s%s", loc, resp.Status, s.base, path)
	}
	if body := p.text("body"); body != "upstream saw "+user {
		p.t.Errorf("upstream page says %q, want it to have seen %s", body, user)
	}
	if got := s.upstream.lastHeaders(p.t).Get("Remote-User"); got != user {
		p.t.Errorf("upstream got Remote-User %q, want %q", got, user)
	}
	if c := p.cookie(s, "jitauth_session"); c == nil || !c.HTTPOnly {
		p.t.Errorf("session cookie %s: %+v, want it set and HttpOnly", "jitauth_session", c)
	}
}

func (p *pageTab) cookie(s *site, name string) *network.Cookie {
	p.t.Helper()
	res, err := chromedp.Call(p.step(), network.GetCookies, network.GetCookiesParams{URLs: []string{s.base + "/"}})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// screenshot saves a PNG of the whole page as dir/name, if
// JITAUTH_SCREENSHOTS names a directory.
func (p *pageTab) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv(browsertest.ScreenshotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.step(), chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// labelOf returns the text of the label of the input with id.
func (p *pageTab) labelOf(id string) string {
	p.t.Helper()
	return p.text(`label[for="` + id + `"]`)
}

// TestBrowserPages goes through the module's own pages (login, consent,
// username, TOTP enrolment, recovery codes, TOTP verification) with a
// real, headless Chromium, clicking and typing as a person would, and
// checks that the strict Content-Security-Policy of the pages blocks
// nothing they need.
func TestBrowserPages(t *testing.T) {
	start := time.Now()
	browsertest.Require(t)
	browser := browsertest.Start(t)
	t.Logf("chromium started in %s", time.Since(start).Round(time.Millisecond))

	t.Run("consent", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{corpJIT: "mode consent\n\t\t\t\trole member"})
		st := openStore(t, s.dir)
		p := newTab(t, browser)

		// Without a session, the page leads to the login page.
		resp := p.navigate("opening /report", chromedp.Navigate(s.base+"/report"))
		p.expectPage(s, resp, "/.jitauth/login", http.StatusOK, "Sign in")
		p.screenshot("login.png")
		p.expectClean("login page")

		// Signing in with corp stops on the consent page, which lists what
		// will be stored.
		s.queue(alice())
		resp = p.navigate("clicking Sign in with Corp SSO", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in with Corp SSO"]`)))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Allow this site to store your details?")
		attrs := evaluate[map[string]string](p, `Object.fromEntries([...document.querySelectorAll("dl dt")]
			.map(dt => [dt.innerText.trim(), dt.nextElementSibling.innerText.trim()]))`)
		for k, v := range map[string]string{"Email": "alice@example.com", "Name": "Alice Liddell", "Groups": "staff,wonderland", "Roles": "member"} {
			if attrs[k] != v {
				t.Errorf("consent page shows %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
			}
		}
		if main := p.text("main"); !strings.Contains(main, "Corp SSO") || !strings.Contains(main, "preferred_username") {
			t.Errorf("consent page does not name the provider and the kept claims:\n%s", main)
		}
		p.screenshot("consent.png")
		p.expectClean("consent page")

		// Decline: a clear page, no session, nothing stored.
		resp = p.navigate("clicking Decline", chromedp.Click(chromedp.CSS(`button.decline`)))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Not signed in")
		if msg := p.text("main p"); !strings.Contains(msg, "nothing about you was stored") {
			t.Errorf("decline page says %q", msg)
		}
		if c := p.cookie(s, "jitauth_session"); c != nil {
			t.Errorf("session cookie after Decline: %+v", c)
		}
		if n := len(allUsers(t, st)); n != 0 {
			t.Errorf("%d users after Decline", n)
		}
		p.screenshot("consent-declined.png")
		p.expectClean("declined page")

		// The page offers a way back; this time alice allows, and lands
		// where she was going.
		resp = p.navigate("clicking Sign in another way", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in another way"]`)))
		p.expectPage(s, resp, "/.jitauth/login", http.StatusOK, "Sign in")
		s.queue(alice())
		resp = p.navigate("clicking Sign in with Corp SSO again", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in with Corp SSO"]`)))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Allow this site to store your details?")
		resp = p.navigate("clicking Allow", chromedp.Click(chromedp.CSS(`button.allow`)))
		p.expectUpstream(s, resp, "/report", "alice@example.com")
		if n := len(allUsers(t, st)); n != 1 {
			t.Errorf("%d users after Allow, want 1", n)
		}
		p.expectClean("allowing")

		// Signing out: the link shows a page whose button ends the
		// session and goes on to rd.
		resp = p.navigate("opening the sign-out page", chromedp.Navigate(s.base+"/.jitauth/logout?rd=/bye"))
		p.expectPage(s, resp, "/.jitauth/logout", http.StatusOK, "Sign out")
		if c := p.cookie(s, "jitauth_session"); c == nil {
			t.Error("opening the sign-out page ended the session")
		}
		p.screenshot("sign-out.png")
		p.expectClean("sign-out page")
		resp = p.navigate("clicking Sign out", chromedp.Click(chromedp.CSS(`button.allow`)))
		if c := p.cookie(s, "jitauth_session"); c != nil {
			t.Errorf("session cookie after signing out: %+v", c)
		}
		// rd was /bye, which now sends the signed-out browser to log in.
		p.expectPage(s, resp, "/.jitauth/login?rd=%2Fbye", http.StatusOK, "Sign in")
		p.expectClean("signing out")
	})

	t.Run("username", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{corpJIT: "mode username"})
		st := openStore(t, s.dir)
		if _, err := st.CreateUser(context.Background(), &provisioner.User{Username: "carol", Email: "carol@example.com", EmailVerified: true},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "legacy", Issuer: "legacy", Subject: "carol"}}); err != nil {
			t.Fatal(err)
		}
		p := newTab(t, browser)

		s.queue(alice())
		resp := p.navigate("signing in with corp", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd=/welcome"))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Choose your username")
		if l := p.labelOf("username"); l != "Username" {
			t.Errorf("username field labelled %q", l)
		}
		if main := p.text("main"); !strings.Contains(main, "alice@example.com") {
			t.Errorf("username page does not show what is stored:\n%s", main)
		}
		p.screenshot("username.png")
		p.expectClean("username page")

		// carol's name is taken: the form again, with the reason.
		p.do("typing carol", chromedp.Clear(chromedp.ID("username")), chromedp.SendKeys(chromedp.ID("username"), "carol"))
		resp = p.navigate("clicking Create account", chromedp.Click(chromedp.Search(`//button[normalize-space()="Create account"]`)))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusConflict, "Choose your username")
		if e := p.text(`.error[role="alert"]`); !strings.Contains(e, "taken") {
			t.Errorf("error on the page: %q, want it to say the name is taken", e)
		}
		if v, err := chromedp.Run(p.step(), chromedp.Value(chromedp.ID("username"))); err != nil || v != "carol" {
			t.Errorf("username field holds %q (%v), want what was typed", v, err)
		}
		if p.cookie(s, "jitauth_session") != nil {
			t.Error("a taken name gave a session")
		}
		p.screenshot("username-taken.png")
		p.expectClean("username taken page")

		// A free name, submitted with Enter.
		p.do("typing alice.l", chromedp.Clear(chromedp.ID("username")), chromedp.SendKeys(chromedp.ID("username"), "alice.l"))
		resp = p.navigate("pressing Enter", chromedp.SendKeys(chromedp.ID("username"), kb.Enter))
		p.expectUpstream(s, resp, "/welcome", "alice.l")
		p.expectClean("choosing a free name")
	})

	t.Run("totp", func(t *testing.T) {
		s := mfaSite(t, siteOptions{})
		p := newTab(t, browser)

		// The login ends on the enrolment page, with a QR code that the
		// browser loaded (the policy allows data: images) and the key.
		s.queue(alice())
		resp := p.navigate("opening /secret", chromedp.Navigate(s.base+"/secret"))
		p.expectPage(s, resp, "/.jitauth/login", http.StatusOK, "Sign in")
		resp = p.navigate("clicking Sign in with Corp SSO", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in with Corp SSO"]`)))
		p.expectPage(s, resp, "/.jitauth/mfa", http.StatusOK, "Set up a second factor")
		if w := evaluate[int](p, `(() => { const i = document.querySelector("img"); return i && i.complete ? i.naturalWidth : -1 })()`); w <= 0 {
			t.Errorf("the QR code image did not load (naturalWidth %d): blocked by the Content-Security-Policy?", w)
		}
		if alt := evaluate[string](p, `document.querySelector("img").alt`); alt == "" {
			t.Error("the QR code image has no alt text")
		}
		secret := p.text("#secret")
		if len(secret) < 16 {
			t.Fatalf("secret %q", secret)
		}
		if l := p.labelOf("code"); l != "Code from the app" {
			t.Errorf("code field labelled %q", l)
		}
		if focused := evaluate[string](p, `document.activeElement.id`); focused != "code" {
			t.Errorf("focus is on %q, want the code field", focused)
		}
		p.screenshot("totp-enrol.png")
		p.expectClean("enrolment page")

		// A wrong code: the same page, the same key, and the reason.
		p.do("typing a wrong code", chromedp.SendKeys(chromedp.ID("code"), wrongCode(t, secret)))
		resp = p.navigate("clicking Turn on", chromedp.Click(chromedp.CSS(`button.allow`)))
		p.expectPage(s, resp, "/.jitauth/mfa", http.StatusBadRequest, "Set up a second factor")
		if e := p.text(`.error[role="alert"]`); !strings.Contains(e, "not right") {
			t.Errorf("error on the page: %q", e)
		}
		if got := p.text("#secret"); got != secret {
			t.Errorf("the key changed after a wrong code: %q, was %q", got, secret)
		}
		p.screenshot("totp-enrol-wrong.png")
		p.expectClean("enrolment page after a wrong code")

		// The right code: the recovery codes, once.
		p.do("typing the code", chromedp.SendKeys(chromedp.ID("code"), codeAt(t, secret, time.Now())))
		resp = p.navigate("clicking Turn on", chromedp.Click(chromedp.Search(`//button[normalize-space()="Turn on the second factor"]`)))
		p.expectPage(s, resp, "/.jitauth/mfa", http.StatusOK, "Save your recovery codes")
		if codes := evaluate[[]string](p, `[...document.querySelectorAll("ol.codes li")].map(li => li.innerText.trim())`); len(codes) != 10 {
			t.Errorf("%d recovery codes on the page, want 10: %v", len(codes), codes)
		}
		p.screenshot("totp-recovery-codes.png")
		p.expectClean("recovery codes page")

		resp = p.navigate("clicking Continue", chromedp.Click(chromedp.Search(`//a[normalize-space()="Continue"]`)))
		p.expectUpstream(s, resp, "/secret", "alice@example.com")
		p.expectClean("continuing")

		// A later sign-in, in another browser, asks for a code (no QR
		// code); the next step's code, typed and sent with Enter, works.
		p2 := newTab(t, browser)
		s.queue(alice())
		resp = p2.navigate("signing in again", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd=/again"))
		p2.expectPage(s, resp, "/.jitauth/mfa", http.StatusOK, "Second factor")
		if n := evaluate[int](p2, `document.querySelectorAll("img").length`); n != 0 {
			t.Errorf("the verification page shows %d images", n)
		}
		if l := p2.labelOf("code"); !strings.Contains(l, "recovery code") {
			t.Errorf("code field labelled %q", l)
		}
		p2.screenshot("totp-verify.png")
		p2.expectClean("verification page")
		p2.do("typing the code", chromedp.SendKeys(chromedp.ID("code"), codeAt(t, secret, time.Now().Add(30*time.Second))))
		resp = p2.navigate("pressing Enter", chromedp.SendKeys(chromedp.ID("code"), kb.Enter))
		p2.expectUpstream(s, resp, "/again", "alice@example.com")
		p2.expectClean("verifying")
	})

	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}

// A page's form sent after the session ended: Chromium shows the module's
// page (not JSON), whose link signs in and comes back to the form's page.
func TestBrowserFormAfterTheSessionEnded(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	s := startSite(t)
	p := newTab(t, browser)

	s.queue(alice())
	resp := p.navigate("signing in", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd=/notes"))
	p.expectUpstream(s, resp, "/notes", "alice@example.com")
	// The app's page has a form; the session then ends (expired, or
	// signed out in another tab).
	p.do("adding the app's form", chromedp.Evaluate[chromedp.Void](`document.body.innerHTML =
		'<form method="post" action="/notes/save"><input name="text" value="hello"><button id="save">Save</button></form>'`))
	if _, err := chromedp.Call(p.step(), network.DeleteCookies, network.DeleteCookiesParams{Name: "jitauth_session", URL: s.base + "/"}); err != nil {
		t.Fatal(err)
	}
	hits := s.upstream.hits
	resp = p.navigate("sending the form", chromedp.Click(chromedp.CSS(`#save`)))
	p.expectPage(s, resp, "/notes/save", http.StatusUnauthorized, "Sign in again")
	if msg := p.text("main p"); !strings.Contains(msg, "not saved") {
		t.Errorf("the page says %q", msg)
	}
	if s.upstream.hits != hits {
		t.Error("the form reached the upstream without a session")
	}
	p.expectClean("the sign-in-again page")

	resp = p.navigate("clicking Sign in", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in"]`)))
	p.expectPage(s, resp, "/.jitauth/login?rd=%2Fnotes", http.StatusOK, "Sign in")
	s.queue(alice())
	resp = p.navigate("clicking Sign in with Corp SSO", chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in with Corp SSO"]`)))
	p.expectUpstream(s, resp, "/notes", "alice@example.com")
}
