package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// browserResolve resolves a Location the way a browser (WHATWG URL)
// does against base: "." and ".." segments are removed, and "%2e" counts
// as "." in them.
func browserResolve(base *url.URL, loc string) *url.URL {
	path, rest := loc, ""
	if i := strings.IndexAny(loc, "?#"); i >= 0 {
		path, rest = loc[:i], loc[i:]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		switch strings.ToLower(s) {
		case "%2e":
			segs[i] = "."
		case "%2e%2e", ".%2e", "%2e.":
			segs[i] = ".."
		}
	}
	ref, err := url.Parse(strings.Join(segs, "/") + rest)
	if err != nil {
		return nil
	}
	return base.ResolveReference(ref)
}

// S2: "encoded slashes are refused" in a return URL (README, Security),
// because an upstream that decodes the path and redirects again (a
// trailing-slash or canonical-path redirect) turns "/%2F%2Fevil" into
// "//evil". safeReturnPath checks for "/%2f" and "/%5c" only at the
// very start of the raw value, but the redirect the module finally sends
// is the value after http.Redirect's path.Clean (and a browser removes
// dot segments, "%2e" included, by itself). A "." or ".." segment in
// front therefore smuggles the refused prefix through: rd=/./%2F%2Fevil
// ends, after login, as "Location: /%2F%2Fevil.example", a value the
// module itself refuses as a return URL. The same holds for the logout
// rd and the provider's post-logout state.
func TestReturnURLDotSegmentsCannotSmuggleEncodedSlashes(t *testing.T) {
	s := startSite(t)
	base, _ := url.Parse(s.base + "/")
	for _, rd := range []string{
		"/./%2F%2Fevil.example",
		"/a/../%2Fevil.example",
		"/./%5Cevil.example",
		"/%2e/%2F%2Fevil.example",
	} {
		t.Run(rd, func(t *testing.T) {
			check := func(step string, resp *http.Response) {
				t.Helper()
				loc := resp.Header.Get("Location")
				if loc == "" {
					return // a page, not a redirect: nothing to follow
				}
				u := browserResolve(base, loc)
				if u == nil || u.Host != base.Host {
					t.Errorf("%s: Location %q leaves the site", step, loc)
					return
				}
				dec, err := url.PathUnescape(u.EscapedPath())
				if err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
					t.Errorf("%s: rd %q ends as Location %q: the browser requests %q, which an upstream decodes to the scheme-relative %q (the module refuses %q itself as a return URL)",
						step, rd, loc, u.EscapedPath(), dec, u.EscapedPath())
				}
			}

			// After a full login through the provider.
			b := newBrowser(t)
			s.queue(alice())
			cb := s.startOnly(b, "corp", rd)
			resp := b.do(http.MethodGet, cb.String(), nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || b.cookie(s.base, "jitauth_session") == nil {
				t.Fatalf("login did not complete: %d", resp.StatusCode)
			}
			check("after login", resp)

			// A sign-out link without a session, and the provider's
			// return after a sign-out there.
			r := newBrowser(t).do(http.MethodGet, s.base+"/.jitauth/logout?rd="+url.QueryEscape(rd), nil)
			r.Body.Close()
			check("logout", r)
			r = newBrowser(t).do(http.MethodGet, s.base+"/.jitauth/logged-out?state="+url.QueryEscape(rd), nil)
			r.Body.Close()
			check("logged-out", r)
		})
	}
}

// A page asked for with a space in its query (a search for two words)
// is where the browser comes back to after signing in.
func TestReturnURLKeepsASpaceInTheQuery(t *testing.T) {
	base, _, _ := partialSite(t, "\tjit_auth\n\treverse_proxy {UPSTREAM}")
	resp, _, visited := newBrowser(t).follow(base+"/search?q=two%20words", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/search?q=two%20words" {
		t.Errorf("ended at %s (%d), want /search?q=two%%20words; visited %v", resp.Request.URL.RequestURI(), resp.StatusCode, visited)
	}
}

// A document asked for with a space in its path (a file server's
// "Q3 report.pdf") is where the browser comes back to after signing in,
// not the site's root.
func TestReturnURLKeepsASpaceInThePath(t *testing.T) {
	base, _, _ := partialSite(t, "\tjit_auth\n\treverse_proxy {UPSTREAM}")
	resp, _, visited := newBrowser(t).follow(base+"/files/Q3%20report.pdf", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/files/Q3%20report.pdf" {
		t.Errorf("ended at %s (%d), want /files/Q3%%20report.pdf; visited %v", resp.Request.URL.RequestURI(), resp.StatusCode, visited)
	}
}
