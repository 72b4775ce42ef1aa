package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/browsertest"
	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// publicPagesSite is a site whose /pub/* is public and the rest protected,
// with one devidp connection (no logout_at_provider).
func publicPagesSite(t *testing.T) (string, *devidp.Server) {
	t.Helper()
	return publicPagesSiteWith(t, "")
}

// publicPagesSiteWith is publicPagesSite with more directives (one per
// line, tab-indented) at the top of its protected block.
func publicPagesSiteWith(t *testing.T, protected string) (string, *devidp.Server) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{{ID: "app", Secret: "app-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	up := newUpstream(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	handle /pub/* {
		respond "public page" 200
	}
	handle {%s
		jit_auth
		reverse_proxy %s
	}
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s app app-secret
		}`, idp.Issuer())), port, protected, up.hostPort()))
	return base, idp
}

// A plain sign-out (no logout_at_provider) in Chromium, rd a public page:
// the browser lands on that page with nothing blocked.
func TestPlainSignOutToAPublicPageInABrowser(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp := publicPagesSite(t)
	loc, problems := signOutInABrowser(t, browser, base, idp, "/pub/bye")
	problems = withoutFaviconProblems(problems)
	if loc != base+"/pub/bye" || problems != "" {
		t.Errorf("plain sign-out, rd=/pub/bye: browser at %q, problems:\n%s", loc, problems)
	}
}

// A plain sign-out without rd in Chromium: the browser ends on the site
// (the logged-out page or a page of it) or the provider's sign-in, with
// nothing blocked.
func TestPlainSignOutWithoutRdInABrowser(t *testing.T) {
	browsertest.Require(t)
	browser := browsertest.Start(t)
	base, idp := publicPagesSite(t)
	loc, problems := signOutInABrowser(t, browser, base, idp, "")
	problems = withoutFaviconProblems(problems)
	if (!strings.HasPrefix(loc, base) && !strings.HasPrefix(loc, idp.Issuer())) || problems != "" {
		t.Errorf("plain sign-out, no rd: browser at %q, problems:\n%s", loc, problems)
	}
	t.Logf("no rd: ended at %s", loc)
	_ = http.StatusOK
}

// withoutFaviconProblems drops the browser's complaint about the protected
// favicon (this test site's own, not the sign-out's).
func withoutFaviconProblems(problems string) string {
	var keep []string
	for _, l := range strings.Split(problems, "\n") {
		if l != "" && !strings.Contains(l, "/favicon.ico") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
