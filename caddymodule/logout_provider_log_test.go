package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// A sign-out with logout_at_provider sends the login's ID token to the
// provider as id_token_hint in the URL of a 303 (RP-Initiated Logout), and
// Caddy's access log records response headers: with the log filter the
// README recommends, the ID token does not reach the access log (S13).
func TestProviderLogoutKeepsTheIDTokenOutOfTheFilteredAccessLog(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	client := devidp.Client{ID: "app", Secret: "app-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"},
		PostLogoutRedirectURIs: []string{base + "/.jitauth/logged-out"}}
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	up := newUpstream(t)
	accessLog := filepath.Join(dir, "access.log")
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	log {
		output file %s
		format filter {
			request>uri query {
				delete code
				delete state
			}
			resp_headers>Location query {
				delete id_token_hint
			}
		}
	}
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s app app-secret
			logout_at_provider
			jit
		}`, idp.Issuer())), port, accessLog, up.hostPort()))

	b := newBrowser(t)
	if resp, body := devidpLogin(t, b, idp, base, "corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	resp, body := b.logout(base, "")
	// The hint, in the redirect's URL or (once fixed) in a form that
	// posts it to the provider.
	idToken := ""
	if end, err := resp.Location(); err == nil {
		idToken = end.Query().Get("id_token_hint")
	}
	if m := regexp.MustCompile(`name="id_token_hint"\s+value="([^"]+)"`).FindStringSubmatch(body); idToken == "" && m != nil {
		idToken = html.UnescapeString(m[1])
	}
	if idToken == "" {
		t.Fatalf("logout: %d, no id_token_hint sent to the provider", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	logs, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, idToken) {
			i := strings.Index(line, `"Location"`)
			if i < 0 {
				i = 0
			}
			t.Errorf("the login's ID token is in the access log (with the README's filter): …%.200s…", line[i:])
		}
	}
}
