package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Two applications of one host in handle blocks, the second a catch-all
// with the default path_prefix, the first with a path_prefix of its own
// outside its block: the first one's endpoints, which Caddy routes to the
// catch-all block, are answered by the first one's handler, not taken by
// the catch-all's handler for a page of its application.
func TestOtherApplicationsEndpointsInACatchAllHandle(t *testing.T) {
	adminAppSignsInBesideACatchAll(t, "/.jitauth-admin/")
}

// Applications with nested path prefixes in handle blocks (an admin app
// with path_prefix /.jitauth/admin/ in handle /admin/*, a catch-all with
// the default /.jitauth/): the admin app's endpoints, which Caddy routes
// to the catch-all block, are answered by the admin app's handler, the
// most specific owner, not by the catch-all's as an endpoint of its own.
func TestNestedPathPrefixEndpointsReachTheirOwner(t *testing.T) {
	adminAppSignsInBesideACatchAll(t, "/.jitauth/admin/")
}

// adminAppSignsInBesideACatchAll runs an admin application (connection
// partner, path_prefix prefix) in handle /admin/* beside a catch-all
// handle block with the default prefix (connection corp), and signs in to
// the admin application from a page of it.
func adminAppSignsInBesideACatchAll(t *testing.T, prefix string) {
	t.Helper()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newRecordingUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			jit off
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			jit off
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	site := strings.ReplaceAll(`
	handle /admin/* {
		jit_auth {
			connections partner
			path_prefix {PREFIX}
		}
		reverse_proxy {UPSTREAM}
	}
	handle {
		jit_auth {
			connections corp
		}
		reverse_proxy {UPSTREAM}
	}`, "{UPSTREAM}", up.url)
	site = strings.ReplaceAll(site, "{PREFIX}", prefix)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(dir, conns), port, site))
	base := fmt.Sprintf("http://localhost:%d", port)

	b := newBrowser(t)
	idp.QueueUser(alice())
	idp.QueueUser(alice())
	r := b.do(http.MethodGet, base+"/admin/x?y=1", nil)
	r.Body.Close()
	start := r.Header.Get("Location")
	if !strings.HasPrefix(start, prefix+"start/partner") {
		t.Fatalf("/admin/x: %d to %q, want the admin application's sign-in", r.StatusCode, start)
	}
	resp, body, visited := b.follow(base+start, nil)
	if _, ok := up.take(prefix + "start/partner"); ok {
		t.Errorf("the admin application's sign-in endpoint was forwarded to the site's upstream")
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/admin/x?y=1" || body != "upstream" {
		t.Fatalf("the admin application's sign-in ended at %s with %d %.120q, want /admin/x?y=1 signed in through partner; visited %v",
			resp.Request.URL, resp.StatusCode, body, visited)
	}
	if seen, ok := up.take("/admin/x"); !ok || seen.header.Get("Remote-User") == "" {
		t.Errorf("the upstream was not reached at /admin/x with an identity after the admin sign-in")
	}
}
