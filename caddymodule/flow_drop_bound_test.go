package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Anyone can send a start or a callback a Cookie header of thousands of
// junk flow cookie names. The answer expires a bounded number of them:
// it was a Set-Cookie line for every one, an answer several times the
// request's size (S12: bounded work per anonymous request). A browser's
// own flows are still dropped as before (TestLoginsInProgressAreBounded).
func TestJunkFlowCookiesGetABoundedAnswer(t *testing.T) {
	s := startSite(t)
	var junk strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&junk, "jitauth_flow_%x=; ", i)
	}
	for _, path := range []string{"/.jitauth/start/corp", "/.jitauth/callback/corp?state=x&code=y"} {
		resp := newBrowser(t).do(http.MethodGet, s.base+path, http.Header{"Cookie": {junk.String()}})
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%s with %d bytes of junk flow cookies: %d", path, junk.Len(), resp.StatusCode)
		}
		if n := len(resp.Header.Values("Set-Cookie")); n > 25 {
			t.Errorf("%s with 1000 junk flow cookies (%d bytes) answers %d Set-Cookie lines, want a bounded number",
				path, junk.Len(), n)
		}
	}
}
