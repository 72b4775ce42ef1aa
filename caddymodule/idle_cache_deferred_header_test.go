package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A site may mark answers for shared caches with a header directive
// whose operations are deferred to the answer's writing (">" or a block
// that also deletes a field, as "-Server" does): Caddy orders header
// before jit_auth, so its operations run after jit_auth's writer has
// made the answer private. The answer carrying the re-issued session
// cookie must still not go out public.
func TestReissuedSessionCookieIsPrivateUnderDeferredHeader(t *testing.T) {
	s := startSiteWith(t, "\t\tidle_timeout 8s\n\t}\n\theader {\n\t\t-Server\n\t\tCache-Control \"public, max-age=600\"\n")
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond) // an eighth of the timeout: the cookie is re-issued
	resp, _ := b.get(s.base + "/later")
	reissued := false
	for _, c := range resp.Header["Set-Cookie"] {
		reissued = reissued || strings.HasPrefix(c, "jitauth_session=")
	}
	if !reissued {
		t.Fatalf("the session cookie was not re-issued: %q", resp.Header["Set-Cookie"])
	}
	for _, v := range resp.Header.Values("Cache-Control") {
		if strings.Contains(strings.ToLower(v), "public") || !strings.HasPrefix(v, "private") {
			t.Fatalf("the answer with the re-issued session cookie: Cache-Control %q, want private", resp.Header.Values("Cache-Control"))
		}
	}
	if len(resp.Header.Values("Cache-Control")) == 0 {
		t.Fatal("the answer with the re-issued session cookie has no Cache-Control")
	}
}
