package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A CDN reads the cache fields targeted at it (CDN-Cache-Control, RFC
// 9213, and its own: Cloudflare-CDN-Cache-Control, Surrogate-Control)
// instead of Cache-Control. The answer carrying a re-issued session
// cookie must not keep one that lets such a cache store it, or the
// CDN hands the session to the next visitor however private its
// Cache-Control says it is.
func TestReissuedSessionCookieIsNotLeftToCDNs(t *testing.T) {
	targeted := []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control"}
	block := "\t\tidle_timeout 8s\n\t}\n\theader {\n"
	for _, f := range targeted {
		block += "\t\t" + f + " \"max-age=3600\"\n"
	}
	s := startSiteWith(t, block)
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, _ := b.get(s.base + "/at-once")
	if len(resp.Header["Set-Cookie"]) != 0 || resp.Header.Get("CDN-Cache-Control") != "max-age=3600" {
		t.Fatalf("an answer without a new cookie: %v; want the site's own fields", resp.Header)
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
	for _, f := range targeted {
		if v := resp.Header.Values(f); len(v) != 0 {
			t.Errorf("the answer with the re-issued session cookie keeps %s: %q", f, v)
		}
	}
}
