package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// S6: plain HTTP gets development cookies only on a host that is this
// machine. On a catch-all http:// site, a public name that merely starts
// like a loopback address is refused with no cookie; real loopback
// literals and localhost sign in as before.
func TestPlainHTTPLoginOnlyOnLoopbackHosts(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, "connection corp {\n oidc "+cfg.Issuer+" "+cfg.ClientID+" "+cfg.ClientSecret+"\n jit\n}"), port, up.hostPort()))
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := func(host string) (*http.Response, string) {
		t.Helper()
		b := newBrowser(t)
		req, _ := http.NewRequest(http.MethodGet, addr+"/.jitauth/start/corp", nil)
		req.Host = host
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, host := range []string{
		"127.evil.example", fmt.Sprintf("127.evil.example:%d", port), "127.0.0.1.evil.example",
		"127.", "127.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "localhost.evil.example", "evil-localhost",
	} {
		resp, body := start(host)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "HTTPS required") || len(resp.Cookies()) != 0 {
			t.Errorf("Host %q: %d, cookies %v, want the HTTPS-required 400 and no cookie", host, resp.StatusCode, resp.Cookies())
		}
	}
	for _, host := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.3.4.5:%d", port), fmt.Sprintf("localhost:%d", port), fmt.Sprintf("app.localhost:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		resp, _ := start(host)
		if resp.StatusCode != http.StatusFound || len(resp.Cookies()) != 1 || !strings.HasPrefix(resp.Cookies()[0].Name, "jitauth_flow_") || resp.Cookies()[0].Secure {
			t.Errorf("Host %q: %d, cookies %v, want a plain-HTTP development login", host, resp.StatusCode, resp.Cookies())
		}
	}

	// A whole login on 127.0.0.1 still reaches the upstream.
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, visited := b.follow(addr+"/.jitauth/start/corp?rd=/hello", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "upstream saw alice") {
		t.Fatalf("login on 127.0.0.1: %d %q via %v", resp.StatusCode, body, visited)
	}
}
