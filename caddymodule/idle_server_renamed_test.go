package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// An inline application's last activity is kept under a key of its own
// configuration, "the same across reloads while the configuration stays
// the same" (README, idle_timeout). The Caddyfile names servers srv0,
// srv1, … in the order of their listener addresses, so a reload that
// only adds another site, on a port that sorts first, renames the
// application's server. Its users, active a moment before, must not
// all be found idle and sent to sign in again.
func TestIdleTimeoutSurvivesAReloadThatAddsAnotherSite(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	// The other site's port sorts before the application's.
	port, other := freePort(t), freePort(t)
	if fmt.Sprint(other) > fmt.Sprint(port) {
		port, other = other, port
	}
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
	// Active every second for longer than the idle timeout.
	for range 6 {
		time.Sleep(time.Second)
		if resp, _ := b.get(base + "/busy"); resp.StatusCode != http.StatusOK {
			t.Fatalf("an active session was found idle before any reload: %d", resp.StatusCode)
		}
	}
	// The operator adds an unrelated site, nothing else.
	another := fmt.Sprintf(`
http://localhost:%d {
	respond "another site"
}
`, other)
	if err := caddy.Load(adaptCaddyfile(t, head+another+site), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	settledAfterReload(t, base)
	b.client.CloseIdleConnections()
	if resp, _ := b.get(base + "/after"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session active a second ago was found idle after a reload that only added another site: %d (the application's last activity was read under another key)", resp.StatusCode)
	}
}
