package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A provider profile with a large, compressible field (a 300 KB display
// name; GitHub's profile answer is read up to 1 MiB) must not end in a
// redirect loop (S12): a session cookie opens to at most maxInflated
// (256 KiB), so one sealed from more is never accepted, and the page
// asked for would send the browser to sign in again, and again, each
// round a full login at the provider. The callback ends instead on the
// page of a session too large for a cookie, with no session cookie, as
// for a user in too many groups.
func TestHugeProfileFieldEndsOnAPageNotARedirectLoop(t *testing.T) {
	for _, jit := range []string{"", "\t\t\tjit"} {
		name := "jit off"
		if jit != "" {
			name = "jit on"
		}
		t.Run(name, func(t *testing.T) {
			gh := fakeGitHub(t, fakeGitHubUser{})
			orig := gh.Config.Handler
			gh.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/v3/user" && r.Header.Get("Authorization") == "Bearer gh-token" {
					_ = json.NewEncoder(w).Encode(map[string]any{"id": 4242, "login": "octocat",
						"name": "The Octocat " + strings.Repeat("N", 300<<10), "avatar_url": "https://avatars.example/octocat"})
					return
				}
				orig.ServeHTTP(w, r)
			})
			base, _, _ := startGitHubSite(t, gh, jit, "")
			b := newBrowser(t)
			// Sign in, stopping where the callback sends the browser back.
			resp, body, visited := b.follow(base+"/x", func(u *url.URL) bool {
				return u.Path == "/x" && b.lastSetCookie("jitauth_session") != nil
			})
			if resp.StatusCode >= 400 {
				if !strings.Contains(body, "profile at the provider is too large") || b.lastSetCookie("jitauth_session") != nil {
					t.Errorf("callback: %d with session cookie %v, want the page of a session too large and no cookie:\n%.300s",
						resp.StatusCode, b.lastSetCookie("jitauth_session"), body)
				}
				return
			}
			if resp.StatusCode != http.StatusFound || b.lastSetCookie("jitauth_session") == nil {
				t.Fatalf("callback: %d %.200s (%v)", resp.StatusCode, body, visited)
			}
			resp, _ = b.get(base + "/x")
			if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && strings.Contains(loc, "/.jitauth/start/") {
				t.Errorf("the callback issued a session cookie (%d bytes) and sent the browser to /x, which does not accept it and sends it to sign in again (%s): a redirect loop through the provider; want the page of a session too large, or a session that opens",
					len(b.lastSetCookie("jitauth_session").Value), loc)
			}
		})
	}
}
