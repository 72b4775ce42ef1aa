package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// With idle_timeout, the session cookie is re-issued on the
// application's own answer. An application that marks its answers for
// shared caches (public, s-maxage) must not have one with the session
// cookie stored there for others: that answer goes out private. Answers
// without the cookie keep the application's Cache-Control as it is.
func TestReissuedSessionCookieIsNotLeftToSharedCaches(t *testing.T) {
	s := startSiteWith(t, "\t\tidle_timeout 8s\n")
	s.upstream.mu.Lock()
	s.upstream.cacheControl = "public, max-age=600, s-maxage=3600"
	s.upstream.mu.Unlock()
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, _ := b.get(s.base + "/at-once")
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=600, s-maxage=3600" || len(resp.Header["Set-Cookie"]) != 0 {
		t.Fatalf("an answer without a new cookie: Cache-Control %q, Set-Cookie %q; want the application's own, none", got, resp.Header["Set-Cookie"])
	}
	time.Sleep(1100 * time.Millisecond) // an eighth of the timeout: the cookie is re-issued
	resp, _ = b.get(s.base + "/later")
	reissued := false
	for _, c := range resp.Header["Set-Cookie"] {
		reissued = reissued || strings.HasPrefix(c, "jitauth_session=")
	}
	if !reissued {
		t.Fatalf("the session cookie was not re-issued: %q", resp.Header["Set-Cookie"])
	}
	if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "private, max-age=600" {
		t.Fatalf("the answer with the re-issued session cookie: Cache-Control %q, want private, max-age=600", got)
	}
}
