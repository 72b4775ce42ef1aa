package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestReviewR4FixedRedirectURLOnAnotherSiteFailsClearly
//
// What the operator does: one Caddy serves two sites (here
// http://localhost:<p1> and http://127.0.0.1:<p2>, two cookie hosts as
// wiki.example.com and grafana.example.com would be), both with a bare
// `jit_auth`, so both offer the connection corp. The provider allows
// only one fixed callback URL, so corp has `redirect_url` set to the
// first site's callback, as the README's table says to do "when the
// provider allows only one fixed URL".
//
// What happens today: the configuration loads without a word. A user
// of the second site is sent to sign in at the provider with the first
// site's callback as redirect_uri; the login's flow cookie is a
// host-only cookie of the second site, so the callback on the first
// site never has it, and every login ends on "Sign-in expired: This
// sign-in is not valid in this browser, or it took too long. Start
// again." (400), whose link starts the same dead end again. The user
// gets no way in and no one is told why; the log says "invalid or
// expired login state", which reads as the user's fault.
//
// What should happen: the mistake is named where it is made. Loading
// fails (or at least warns) when a site that offers the connection is
// not on the redirect_url's origin, naming the connection, the site and
// the fix (drop redirect_url so each site uses its own callback, or give
// that site a connection of its own); and a sign-in started on a site
// whose origin is not the redirect_url's is not sent to the provider at
// all, but answered with the "This sign-in is misconfigured" page (as
// other operator mistakes are) and an ERROR in the log.
//
// Severity: low. No bypass; but an entire site is locked out behind a
// message that blames the user, from a setting the README recommends.
func TestReviewR4FixedRedirectURLOnAnotherSiteFailsClearly(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	cfg := idp.Config()
	up := newUpstream(t)
	p1, p2 := freePort(t), freePort(t)
	siteA := fmt.Sprintf("http://localhost:%d", p1)
	siteB := fmt.Sprintf("http://127.0.0.1:%d", p2)
	caddyfile := fmt.Sprintf(`{%s
}
%s {
	jit_auth
	reverse_proxy %s
}
%s {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			redirect_url %s/.jitauth/callback/corp
			jit
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, siteA)), siteA, up.hostPort(), siteB, up.hostPort())

	// Loading this configuration may fail, naming redirect_url: that is
	// one of the fixes.
	adapted := adaptCaddyfile(t, caddyfile)
	caddyMu.Lock()
	if err := caddy.Load(adapted, true); err != nil {
		caddyMu.Unlock()
		if !strings.Contains(err.Error(), "redirect_url") {
			t.Fatalf("the configuration was refused, but not for its redirect_url: %v", err)
		}
		return
	}
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})

	// The first site, whose origin redirect_url names, signs in.
	a := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, visited := a.follow(siteA+"/notes", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != siteA+"/notes" {
		t.Fatalf("signing in on the site redirect_url names: %d at %s (visited %v)\n%s", resp.StatusCode, resp.Request.URL, visited, body)
	}

	// The second site: where does its sign-in go?
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, visited = b.follow(siteB+"/dashboard", nil)
	reachedProvider := false
	for _, v := range visited {
		if strings.HasPrefix(v, cfg.Issuer) {
			reachedProvider = true
		}
	}
	final := resp.Request.URL
	t.Logf("second site: %d at %s after %d hops", resp.StatusCode, final, len(visited))
	switch {
	case resp.StatusCode == http.StatusOK && final.String() == siteB+"/dashboard":
		// Signed in after all: nothing to report.
	case !reachedProvider && resp.StatusCode >= 500 && strings.Contains(body, "misconfigured"):
		// Told at once, without a round trip to the provider.
	default:
		callback := ""
		for _, v := range visited {
			if u, err := url.Parse(v); err == nil && strings.Contains(u.Path, "/.jitauth/callback/") {
				callback = u.Scheme + "://" + u.Host + u.Path
			}
		}
		t.Errorf("a sign-in on %s, a site that offers corp but is not on its redirect_url's origin, was sent to the provider (%v) and came back to %s, "+
			"which ended it with %d %q; want the configuration refused, or a \"misconfigured\" page before the provider",
			siteB, reachedProvider, callback, resp.StatusCode, r4Heading(body))
	}
}

// r4Heading is the text of the first <h1> of an HTML page, or "".
func r4Heading(body string) string {
	_, rest, ok := strings.Cut(body, "<h1")
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, ">")
	h, _, _ := strings.Cut(rest, "</h1>")
	return strings.TrimSpace(h)
}
