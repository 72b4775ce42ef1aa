package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Applications with nested path prefixes in handle blocks (an admin app
// with path_prefix /.jitauth/admin/ in handle /admin/*, a catch-all with
// the default /.jitauth/): the admin app's endpoints, which Caddy routes
// to the catch-all block, are answered by the admin app's handler, the
// most specific owner, not by the catch-all's as an endpoint of its own.
func TestNestedPathPrefixEndpointsReachTheirOwner(t *testing.T) {
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
			path_prefix /.jitauth/admin/
		}
		reverse_proxy {UPSTREAM}
	}
	handle {
		jit_auth {
			connections corp
		}
		reverse_proxy {UPSTREAM}
	}`, "{UPSTREAM}", up.url)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(dir, conns), port, site))
	base := fmt.Sprintf("http://localhost:%d", port)

	b := newBrowser(t)
	idp.QueueUser(alice())
	idp.QueueUser(alice())
	r := b.do(http.MethodGet, base+"/admin/x?y=1", nil)
	r.Body.Close()
	start := r.Header.Get("Location")
	if !strings.HasPrefix(start, "/.jitauth/admin/start/partner") {
		t.Fatalf("/admin/x: %d to %q, want the admin application's sign-in", r.StatusCode, start)
	}
	resp, body, visited := b.follow(base+start, nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/admin/x?y=1" || body != "upstream" {
		t.Fatalf("the admin application's sign-in ended at %s with %d %.120q, want /admin/x?y=1 signed in through partner; visited %v",
			resp.Request.URL, resp.StatusCode, body, visited)
	}
	if seen, ok := up.take("/admin/x"); !ok || seen.header.Get("Remote-User") == "" {
		t.Errorf("the upstream was not reached at /admin/x with an identity after the admin sign-in")
	}
}
