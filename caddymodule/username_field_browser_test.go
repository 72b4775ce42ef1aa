package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
)

// A username as long as the site's username_pattern allows can be typed
// on the username page: the field does not cut it short (a name the
// pattern allows at the cut would be taken without a word, another name
// than the one typed).
func TestBrowserUsernameFieldTakesWhatThePatternAllows(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username\n\t\t\t\tusername_pattern ^[a-z0-9][a-z0-9._-]{1,99}$"})
	p := newTab(t, browser)
	s.queue(alice())
	resp := p.navigate("signing in with corp", chromedp.Navigate(s.base+"/.jitauth/start/corp?rd=/welcome"))
	p.expectPage(s, resp, "/.jitauth/consent", http.StatusOK, "Choose your username")
	name := "alice-" + strings.Repeat("liddell.", 10) + "wonderland"
	p.do("typing a long name", chromedp.Clear(chromedp.ID("username")), chromedp.SendKeys(chromedp.ID("username"), name))
	resp = p.navigate("pressing Enter", chromedp.SendKeys(chromedp.ID("username"), kb.Enter))
	p.expectUpstream(s, resp, "/welcome", name)
	p.expectClean("choosing a long name")
}
