package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// In a site without a host, Caddy lays the site's blocks out as the
// server's own routes, and a route's matcher runs before the cleaning
// step inside it. A matcher that fails to evaluate (an expression on a
// query parameter that is not a number) sends the request straight to
// the handle_errors routes, which may forward it: it must reach them
// without the client's identity headers and the module's cookies, as it
// does on a site with a host, whose step runs before its matchers
// (S1, S16).
func TestMatcherErrorBeforeTheStepOfASiteWithoutAHostCleansTheErrorRoutes(t *testing.T) {
	for _, address := range []string{"http://localhost:%d", ":%d"} {
		t.Run(address, func(t *testing.T) {
			s, port, conns := newLayoutSite(t)
			runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n%s\n}\n", globalOptions(s.dir, conns), fmt.Sprintf(address, port), strings.ReplaceAll(`
	@paged expression int({http.request.uri.query.page}) > 1
	handle @paged {
		reverse_proxy {UP}
	}
	handle /app/* {
		jit_auth
		reverse_proxy {UP}
	}
	handle {
		reverse_proxy {UP}
	}
	handle_errors {
		reverse_proxy {UP}
	}`, "{UP}", s.upstream.hostPort())))
			hdr := http.Header{
				"Remote-User": {"admin"},
				"Cookie":      {"__Host-jitauth_session=secret; app=1"},
			}
			resp := newBrowser(t).do(http.MethodGet, s.base+"/list?page=two", hdr)
			resp.Body.Close()
			if s.upstream.hits != 1 {
				t.Fatalf("status %d, %d requests reached the upstream; want the error routes' one", resp.StatusCode, s.upstream.hits)
			}
			wantCleaned(t, s, "the error routes' upstream")
		})
	}
}

// The same when the site reaches jit_auth through invoke of a named
// route: Caddy has compiled the error routes by the time the named
// route's handler is set up, so the step goes first in their subroute.
func TestMatcherErrorBeforeTheStepOfASiteWithoutAHostThatInvokesCleansTheErrorRoutes(t *testing.T) {
	for _, address := range []string{"http://localhost:%d", ":%d"} {
		t.Run(address, func(t *testing.T) {
			s, port, conns := newLayoutSite(t)
			runCaddyfile(t, fmt.Sprintf("{%s\n}\n&(protected) {\n\tjit_auth\n}\n%s {\n%s\n}\n", globalOptions(s.dir, conns), fmt.Sprintf(address, port), strings.ReplaceAll(`
	@paged expression int({http.request.uri.query.page}) > 1
	handle @paged {
		reverse_proxy {UP}
	}
	handle /app/* {
		invoke protected
		reverse_proxy {UP}
	}
	handle {
		reverse_proxy {UP}
	}
	handle_errors {
		reverse_proxy {UP}
	}`, "{UP}", s.upstream.hostPort())))
			hdr := http.Header{"Remote-User": {"admin"}, "Cookie": {"__Host-jitauth_session=secret; app=1"}}
			resp := newBrowser(t).do(http.MethodGet, s.base+"/list?page=two", hdr)
			resp.Body.Close()
			if s.upstream.hits != 1 {
				t.Fatalf("status %d, %d requests reached the upstream; want the error routes' one", resp.StatusCode, s.upstream.hits)
			}
			wantCleaned(t, s, "the error routes' upstream")
		})
	}
}

// The error routes' step leaves what a jit_auth handler set: a signed-in
// request whose upstream fails reaches the handle_errors upstream with
// the user's identity, as before the step, and without the module's
// cookies.
func TestErrorRoutesKeepTheIdentityJITAuthSet(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(s.dir, conns), port, strings.ReplaceAll(`
	jit_auth
	handle /broken/* {
		reverse_proxy 127.0.0.1:9
	}
	handle {
		reverse_proxy {UP}
	}
	handle_errors {
		reverse_proxy {UP}
	}`, "{UP}", s.upstream.hostPort())))
	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "corp", "/x")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	before := s.upstream.hits
	resp = b.do(http.MethodGet, s.base+"/broken/y", http.Header{"Remote-User": {"admin"}})
	resp.Body.Close()
	if s.upstream.hits != before+1 {
		t.Fatalf("status %d: the error routes' upstream was not reached", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || len(h["Remote-User"]) != 1 {
		t.Errorf("the error routes' upstream got Remote-User %q; want alice@example.com", h["Remote-User"])
	}
	if c := strings.Join(h["Cookie"], "; "); strings.Contains(c, "jitauth_") {
		t.Errorf("the error routes' upstream got Cookie %q", c)
	}
}

// wantCleaned checks that the upstream's last request, one that carried
// the client's Remote-User and the module's cookies beside app=1, got
// neither (S1, S16); where names that upstream in the messages.
func wantCleaned(t *testing.T, s *site, where string) {
	t.Helper()
	h := s.upstream.lastHeaders(t)
	if v, ok := h["Remote-User"]; ok {
		t.Errorf("%s got the client's Remote-User %q", where, v)
	}
	if c := strings.Join(h["Cookie"], "; "); c != "app=1" {
		t.Errorf("%s got Cookie %q; want app=1", where, c)
	}
}

// wantSignedInForwarded signs alice in at path, then checks that her
// request to next, carrying spoof's headers but not its cookies, reaches
// the upstream with her Remote-User alone and without the module's
// cookies.
func wantSignedInForwarded(t *testing.T, s *site, spoof http.Header, path, next string) {
	t.Helper()
	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "corp", path)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != path {
		t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	signedIn := spoof.Clone()
	delete(signedIn, "Cookie")
	resp = b.do(http.MethodGet, s.base+next, signedIn)
	resp.Body.Close()
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || len(h["Remote-User"]) != 1 {
		t.Errorf("signed in: Remote-User %q; want alice@example.com", h["Remote-User"])
	}
	if c := strings.Join(h["Cookie"], "; "); strings.Contains(c, "jitauth_") {
		t.Errorf("signed in: the upstream got Cookie %q", c)
	}
}
