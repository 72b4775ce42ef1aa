package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestReturnURLFragmentCannotSmuggleDotSegments: hasDotSegment looks only at the
// part before "?" or "#", but http.Redirect's path.Clean cleans all of a
// return URL up to its "?", the "#" and what follows it included. So
// rd=/#/../%2F%2Fevil.example passes safeReturnPath (no "/%2f" at the
// front, no dot segment before the "#") and reaches the browser as
// "Location: /%2F%2Fevil.example": the value today's fix set out to keep
// from the browser (an upstream that decodes and redirects turns it into
// //evil.example).
func TestReturnURLFragmentCannotSmuggleDotSegments(t *testing.T) {
	s := startSite(t)
	for _, rd := range []string{"/#/../%2F%2Fevil.example", "/x#/../../%5Cevil.example"} {
		check := func(step string, resp *http.Response) {
			t.Helper()
			loc := resp.Header.Get("Location")
			if loc == "" {
				return
			}
			path := loc
			if i := strings.IndexAny(path, "?#"); i >= 0 {
				path = path[:i]
			}
			dec, err := url.PathUnescape(path)
			if err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
				t.Errorf("%s: rd %q ends as Location %q, which decodes to the scheme-relative %q; want it refused (Location / or the page)", step, rd, loc, dec)
			}
		}
		// After a full login through the provider.
		b := newBrowser(t)
		s.queue(alice())
		cb := s.startOnly(b, "corp", rd)
		resp := b.do(http.MethodGet, cb.String(), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login did not complete: %d", resp.StatusCode)
		}
		check("after login", resp)
		// A sign-out link without a session.
		r := newBrowser(t).do(http.MethodGet, s.base+"/.jitauth/logout?rd="+url.QueryEscape(rd), nil)
		r.Body.Close()
		check("logout", r)
	}
}
