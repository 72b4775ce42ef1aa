package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// The page a sign-in comes back to may send the browser on to another
// origin: a download handed to a file store, an OAuth authorization the
// application answers for a client elsewhere. When the consent or
// second-factor form is what took the browser there, Chromium applies
// that page's form-action to every redirect the submission follows: the
// answer of the form must reach the other origin, as a sign-in without
// the form does.
func TestBrowserFormAnswerGoesOnToAnotherOrigin(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "the file store")
	}))
	t.Cleanup(elsewhere.Close)
	const page = "/download/q3"

	// arrived checks that the tab reached the other origin, nothing
	// blocked on the way.
	arrived := func(t *testing.T, p *pageTab, what string) {
		t.Helper()
		loc := p.location()
		p.mu.Lock()
		problems := strings.Join(p.problems, "\n")
		p.problems = nil
		p.mu.Unlock()
		if !strings.HasPrefix(loc, elsewhere.URL+"/q3.pdf") || problems != "" {
			t.Errorf("after %s the browser is at %q, want %s/q3.pdf, where the page it asked for sends it\nbrowser problems:\n%s", what, loc, elsewhere.URL, problems)
		}
	}

	t.Run("consent", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{corpJIT: "mode consent"})
		s.upstream.redirectTo(page, elsewhere.URL+"/q3.pdf")
		p := newTab(t, browser)
		s.queue(alice())
		resp := p.navigate("signing in with corp", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd="+page))
		p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Allow this site to store your details?")
		p.expectClean("consent page")
		// The navigation may be blocked: no response is required.
		_ = chromedp.Do(p.step(), chromedp.Click(chromedp.CSS(`button.allow`)), chromedp.Sleep(2*time.Second))
		arrived(t, p, "clicking Allow")
	})

	t.Run("second factor", func(t *testing.T) {
		s := mfaSite(t, siteOptions{})
		s.upstream.redirectTo(page, elsewhere.URL+"/q3.pdf")
		secret, _, _ := s.enrol(alice())
		p := newTab(t, browser)
		s.queue(alice())
		resp := p.navigate("signing in with corp", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd="+page))
		p.expectPage(s, resp, "/.jitauth/mfa", http.StatusOK, "Second factor")
		p.expectClean("verification page")
		p.do("typing the code", chromedp.SendKeys(chromedp.ID("code"), codeAt(t, secret, time.Now().Add(30*time.Second))))
		_ = chromedp.Do(p.step(), chromedp.SendKeys(chromedp.ID("code"), kb.Enter), chromedp.Sleep(2*time.Second))
		arrived(t, p, "sending the code")
	})
}
