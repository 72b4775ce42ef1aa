package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// An assertion header named like an identity header (here the default
// Remote-User) would replace the username the upstream reads with a JWT,
// so the configuration is refused, naming the header. Either outcome
// passes: the load refused, or Remote-User still the username.
func TestAssertionHeaderCannotBeAnIdentityHeader(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newRecordingUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit off
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	caddyfile := fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		assertion {
			header Remote-User
		}
	}
	reverse_proxy %s
}
`, globalOptions(dir, conns), port, up.url)
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Logf("refused at adapt: %v", err)
		return
	}
	caddyMu.Lock()
	if err := caddy.Load(js, true); err != nil {
		caddyMu.Unlock()
		if !strings.Contains(err.Error(), "Remote-User") {
			t.Errorf("refused, but the message does not name the header: %v", err)
		}
		return
	}
	t.Cleanup(func() { _ = caddy.Stop(); caddyMu.Unlock() })

	base := fmt.Sprintf("http://localhost:%d", port)
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, _, visited := b.follow(base+"/.jitauth/start/corp?rd=/page", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d after %v", resp.StatusCode, visited)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	seen, ok := up.take("/page")
	if !ok {
		t.Fatal("/page did not reach the upstream")
	}
	if got := seen.header.Get("Remote-User"); got != "alice@example.com" {
		t.Errorf("the configuration loaded and the upstream's Remote-User is %.40q…, not the username", got)
	}
}
