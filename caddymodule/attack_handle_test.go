package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// jit_auth inside a handle block (or any route with a matcher) runs only
// on the requests that route matches. The site's other requests must
// still lose the client's identity headers and the module's cookies, so
// S1 and S16 hold however the Caddyfile is laid out; and the protected
// part still gets the module's values intact.
func TestIdentityHeadersStrippedOutsideHandleBlocks(t *testing.T) {
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	handle /admin/* {
		jit_auth {
			header X-Staff-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s
	}
	handle /.jitauth/* {
		jit_auth
	}
	route /api/* {
		reverse_proxy %[3]s
	}
	handle {
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))

	spoof := http.Header{
		"Remote-User":   {"admin"},
		"Remote-Groups": {"admins"},
		"X-Staff-Id":    {"admin"},
		"Connection":    {"Remote-User, X-Staff-Id"},
		"Cookie":        {"jitauth_session=stolen; app=1", "__Host-jitauth_session=x"},
	}
	noConnection := spoof.Clone()
	delete(noConnection, "Connection")
	for _, tc := range []struct {
		path string
		hdr  http.Header
	}{{"/public", spoof}, {"/public", noConnection}, {"/admin", noConnection}, {"/api/x", noConnection}, {"//admin/", noConnection}, {"/Admin", noConnection}, {"/.jitauth", noConnection}} {
		path := tc.path
		b := newBrowser(t)
		before := s.upstream.hits
		resp := b.do(http.MethodGet, s.base+path, tc.hdr.Clone())
		resp.Body.Close()
		if s.upstream.hits == before {
			continue // the module answered itself (a login redirect)
		}
		h := s.upstream.lastHeaders(t)
		for _, name := range []string{"Remote-User", "Remote-Groups", "X-Staff-Id"} {
			if v, ok := h[name]; ok {
				t.Errorf("GET %s: the upstream got the client's %s %q", path, name, v)
			}
		}
		if c := strings.Join(h["Cookie"], "; "); c != "app=1" {
			t.Errorf("GET %s: the upstream got Cookie %q; want app=1", path, c)
		}
	}

	// The protected part still works and gets the module's values.
	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "corp", "/admin/x")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/x" {
		t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	signedIn := spoof.Clone()
	delete(signedIn, "Cookie") // the browser's own cookies, from its jar
	resp = b.do(http.MethodGet, s.base+"/admin/y", signedIn)
	resp.Body.Close()
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || h.Get("X-Staff-Id") != "alice@example.com" || len(h["Remote-User"]) != 1 {
		t.Errorf("signed in: Remote-User %q, X-Staff-Id %q; want alice@example.com", h["Remote-User"], h["X-Staff-Id"])
	}
	if c := strings.Join(h["Cookie"], "; "); strings.Contains(c, "jitauth_") {
		t.Errorf("signed in: the upstream got Cookie %q", c)
	}
}
