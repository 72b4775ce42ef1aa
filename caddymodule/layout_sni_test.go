package caddymodule_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With strict_sni_host on, Caddy answers a request whose Host differs
// from its TLS server name with 421 before any route of the site runs,
// and the site's handle_errors routes, which match on its Host, get it
// next: they may forward it, and must do so without the client's
// identity headers and the module's cookies, as every other request of
// the site (S1, S16); no jit_auth handler nor cleaning step ran on it.
func TestStrictSNIMismatchReachesTheErrorRoutesCleaned(t *testing.T) {
	dir := t.TempDir()
	up := newRecordingUpstream(t)
	port := freePort(t)
	conns := "connection corp {\n oidc https://idp.example a b\n jit off\n}"
	runCaddyfile(t, fmt.Sprintf(`{
	skip_install_trust
	auto_https disable_redirects
	default_sni localhost
	servers {
		protocols h1
		strict_sni_host on
	}%s
}
https://localhost:%d {
	tls internal
	jit_auth
	reverse_proxy %[3]s
	handle_errors {
		reverse_proxy %[3]s
	}
}
`, globalOptions(dir, conns), port, up.url))
	base := fmt.Sprintf("https://localhost:%d", port)
	waitTLS(t, base)
	// No server name: the client dials the address, Host names the site.
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/sni-mismatch", port), nil)
	req.Host = fmt.Sprintf("localhost:%d", port)
	req.Header.Set("Remote-User", "admin")
	req.Header.Set("Cookie", "__Host-jitauth_session=secret; app=1")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen, ok := up.take("/sni-mismatch")
	if !ok {
		t.Fatalf("status %d, nothing reached the error routes' upstream", resp.StatusCode)
	}
	if v, ok := seen.header["Remote-User"]; ok {
		t.Errorf("the error routes' upstream got the client's Remote-User %q", v)
	}
	if c := strings.Join(seen.header["Cookie"], "; "); c != "app=1" {
		t.Errorf("the error routes' upstream got Cookie %q; want app=1", c)
	}
}
