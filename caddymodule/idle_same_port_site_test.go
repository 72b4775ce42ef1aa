package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Sites on one port share one server (every HTTPS site shares :443), so
// its listener addresses cannot tell their inline applications apart.
// A reload that only adds another site on the application's port,
// whose jit_auth block reads the same and which the Caddyfile orders
// first (a longer host name), must not find the application's users
// idle all at once either.
func TestIdleTimeoutSurvivesAReloadThatAddsASiteOnTheSamePort(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	site := fmt.Sprintf(`
http://localhost:%d {
	jit_auth {
		idle_timeout 4s
	}
	reverse_proxy %s
}
`, port, up.hostPort())
	head := fmt.Sprintf("{%s\n}\n", globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)))
	runCaddyJSON(t, adaptCaddyfile(t, head+site))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	for range 6 {
		time.Sleep(time.Second)
		if resp, _ := b.get(base + "/busy"); resp.StatusCode != http.StatusOK {
			t.Fatalf("an active session was found idle before any reload: %d", resp.StatusCode)
		}
	}
	// The operator adds another site on the same port, nothing else.
	another := fmt.Sprintf(`
http://www.localhost:%d {
	jit_auth {
		idle_timeout 4s
	}
	respond "another site"
}
`, port)
	if err := caddy.Load(adaptCaddyfile(t, head+site+another), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	settledAfterReload(t, base)
	b.client.CloseIdleConnections()
	if resp, _ := b.get(base + "/after"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session active a second ago was found idle after a reload that only added another site on its port: %d", resp.StatusCode)
	}
}
