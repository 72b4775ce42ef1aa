package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The re-issued session cookie is set before the application answers;
// when it fails (its upstream down), Caddy's handle_errors routes write
// the answer instead, with the cookie still in the header. A site
// without an access log, whose error page is marked for shared caches,
// must not send that answer public either.
func TestReissuedSessionCookieOnAnErrorPageIsPrivate(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port, down := freePort(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		idle_timeout 8s
	}
	@down path /down
	reverse_proxy @down 127.0.0.1:%d
	reverse_proxy %s
	handle_errors {
		header Cache-Control "public, max-age=60"
		respond "the application is down" 502
	}
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)), port, down, up.hostPort()))
	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // the next answer re-issues the cookie
	resp, body := b.get(base + "/down")
	reissued := false
	for _, c := range resp.Header["Set-Cookie"] {
		reissued = reissued || strings.HasPrefix(c, "jitauth_session=")
	}
	if resp.StatusCode != http.StatusBadGateway || !reissued {
		t.Fatalf("the error page: %d %q, Set-Cookie %q", resp.StatusCode, body, resp.Header["Set-Cookie"])
	}
	if got := resp.Header.Values("Cache-Control"); len(got) != 1 || !strings.HasPrefix(got[0], "private") {
		t.Fatalf("the error page with the re-issued session cookie: Cache-Control %q, want private", got)
	}
}
