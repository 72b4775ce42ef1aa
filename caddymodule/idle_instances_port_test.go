package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// An inline application's last activity is "the same on every instance"
// (README, idle_timeout: "every instance agrees"). Instances behind one
// load balancer may listen on different addresses (two on one host, on
// two ports; a bind of each host's own address). A user active on one
// instance for longer than the timeout, then sent to another (the first
// stopped, or the balancer moved them), must not be found idle there.
// The second instance is played by a reload that only moves the site to
// another port, on the same storage and store.
func TestIdleTimeoutAgreesAcrossInstancesListeningElsewhere(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	head := fmt.Sprintf("{%s\n}\n", globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)))
	site := func(port int) string {
		return fmt.Sprintf(`
http://localhost:%d {
	jit_auth {
		idle_timeout 4s
	}
	reverse_proxy %s
}
`, port, up.hostPort())
	}
	portA, portB := freePort(t), freePort(t)
	baseA, baseB := fmt.Sprintf("http://localhost:%d", portA), fmt.Sprintf("http://localhost:%d", portB)
	runCaddyJSON(t, adaptCaddyfile(t, head+site(portA)))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(baseA+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	// Active on A every second for longer than the idle timeout.
	for range 6 {
		time.Sleep(time.Second)
		if resp, _ := b.get(baseA + "/busy"); resp.StatusCode != http.StatusOK {
			t.Fatalf("an active session was found idle on A: %d", resp.StatusCode)
		}
	}
	if err := caddy.Load(adaptCaddyfile(t, head+site(portB)), true); err != nil {
		t.Fatalf("instance B: %v", err)
	}
	settledAfterReload(t, baseB)
	if resp, _ := b.get(baseB + "/after"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session active on A a second ago was found idle on B, which serves the same site on another address: %d (the application's last activity was read under another key)", resp.StatusCode)
	}
}
