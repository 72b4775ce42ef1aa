package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// newLayoutSite is a site whose Caddyfile the test writes itself: a
// mockoidc provider, an upstream, the site's port (s.base is set) and
// the global options' connection block, corp.
func newLayoutSite(t *testing.T) (s *site, port int, conns string) {
	t.Helper()
	s = &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port = freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns = fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	return s, port, conns
}

// jit_auth inside a handle block (or any route with a matcher) runs only
// on the requests that route matches. The site's other requests must
// still lose the client's identity headers and the module's cookies, so
// S1 and S16 hold however the Caddyfile is laid out; and the protected
// part still gets the module's values intact.
func TestIdentityHeadersStrippedOutsideHandleBlocks(t *testing.T) {
	s, port, conns := newLayoutSite(t)
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

// The same holds when jit_auth is in the catch-all block and another
// block takes some requests before it, or when a handler in a route
// block answers before jit_auth: whatever the layout, a request that
// never meets jit_auth is cleaned all the same. A site where every
// request meets jit_auth first gets no extra step (and is clean anyway).
func TestIdentityHeadersStrippedWhateverTheLayout(t *testing.T) {
	for name, layout := range map[string]string{
		"catch-all handle after a public one": `
	handle /public/* {
		reverse_proxy {UP}
	}
	handle {
		jit_auth
		reverse_proxy {UP}
	}`,
		"route block, proxy first": `
	route {
		reverse_proxy /public/* {UP}
		jit_auth
		reverse_proxy {UP}
	}`,
		"handle_path": `
	handle_path /public/* {
		reverse_proxy {UP}
	}
	jit_auth
	reverse_proxy {UP}`,
		"site level": `
	header X-Site on
	jit_auth
	reverse_proxy {UP}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			up := newUpstream(t)
			port := freePort(t)
			conns := "connection corp {\n oidc https://idp.example a b\n jit off\n}"
			runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(dir, conns), port,
				strings.ReplaceAll(layout, "{UP}", up.hostPort())))
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/public/x", port), nil)
			req.Header.Set("Remote-User", "admin")
			req.Header.Set("Remote-Groups", "admins")
			req.Header.Set("Cookie", "jitauth_session=stolen; app=1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if up.hits == 0 {
				if name != "site level" && name != "handle_path" { // jit_auth runs first there
					t.Fatalf("/public/x did not reach the upstream: %d", resp.StatusCode)
				}
				return // a login is asked for: nothing reached the upstream
			}
			h := up.lastHeaders(t)
			if h.Get("Remote-User") != "" || h.Get("Remote-Groups") != "" || strings.Join(h["Cookie"], "; ") != "app=1" {
				t.Errorf("the upstream got Remote-User %q, Remote-Groups %q, Cookie %q", h["Remote-User"], h["Remote-Groups"], h["Cookie"])
			}
		})
	}
}

// With the site's cleaning step in front, the first jit_auth handler of
// a request still removes the identity headers, so what a handler put
// there in between (here from a client header) does not pass either, as
// it would not without the step.
func TestFirstJITAuthStillStripsAfterTheSiteStep(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t)
	port := freePort(t)
	conns := "connection corp {\n oidc https://idp.example a b\n jit off\n}"
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	route {
		reverse_proxy /public/* %[3]s
		request_header Remote-User {http.request.header.X-Client}
		jit_auth /admin/*
		reverse_proxy %[3]s
	}
}
`, globalOptions(dir, conns), port, up.hostPort()))
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/other", port), nil)
	req.Header.Set("X-Client", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := up.lastHeaders(t); h.Get("Remote-User") != "" {
		t.Errorf("the upstream got Remote-User %q", h["Remote-User"])
	}
}

// A site address with a path next to the site's own block is a route of
// its own, before the site's: its requests never meet jit_auth nor the
// site's cleaning step. Loading it warns, naming that route; a second
// site on another host does not.
func TestWarnsAboutARouteBeforeTheProtectedOne(t *testing.T) {
	port := freePort(t)
	log := warningsAtLoad(t, `http://localhost:%[2]d/public/* {
	reverse_proxy 127.0.0.1:9
}
http://localhost:%[2]d {
	jit_auth
	reverse_proxy 127.0.0.1:9
}
http://other.localhost:%[2]d {
	reverse_proxy 127.0.0.1:9
}
`, port)
	if !strings.Contains(log, fmt.Sprintf(`"route":"localhost:%d /public/*"`, port)) || strings.Count(log, "comes before it and has no jit_auth") != 1 {
		t.Errorf("want one warning naming localhost:%d /public/*; log:\n%s", port, log)
	}
}

// A site whose only jit_auth sits in a handle block (its endpoints under
// the block's path) gets a site cleaner, which withholds the module's
// cookies from every request: the one handler behind it must still know
// to take them back to read the session, even though it is its server's
// only jit_auth handler and a second site on another server has a
// jit_auth handler of its own.
func TestOneHandleBlockBehindItsSiteCleaner(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	other := freePort(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	handle /admin/* {
		jit_auth {
			path_prefix /admin/.jitauth/
		}
		reverse_proxy %[3]s
	}
	handle {
		reverse_proxy %[3]s
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %[3]s
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort(), other))

	b := newBrowser(t)
	s.queue(alice())
	resp, body, visited := b.follow(s.base+"/admin/.jitauth/start/corp?rd="+url.QueryEscape("/admin/x"), nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/x" {
		t.Fatalf("login: %d %s after %v\n%s", resp.StatusCode, resp.Request.URL, visited, body)
	}
	resp = b.do(http.MethodGet, s.base+"/admin/y", http.Header{"Remote-User": {"mallory"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in, GET /admin/y: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if got := h["Remote-User"]; len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("signed in: Remote-User %q; want alice@example.com", got)
	}
	if c := strings.Join(h["Cookie"], "; "); strings.Contains(c, "jitauth_") {
		t.Errorf("signed in: the upstream got Cookie %q", c)
	}
	resp = b.do(http.MethodGet, s.base+"/public", http.Header{"Remote-User": {"mallory"}})
	resp.Body.Close()
	h = s.upstream.lastHeaders(t)
	if _, ok := h["Remote-User"]; ok || strings.Contains(strings.Join(h["Cookie"], "; "), "jitauth_") {
		t.Errorf("outside the block: the upstream got Remote-User %q, Cookie %q", h["Remote-User"], h["Cookie"])
	}
}

// A site that reaches jit_auth through a named route (invoke) meets it
// only on the requests that get to the invoke: Caddy provisions named
// routes after the site's own routes, so the site's other requests (a
// handle block in front) must still be cleaned of the client's identity
// headers and the module's cookies, as with jit_auth in a handle block
// (S1, S16); and a sign-in through the named route still works.
func TestIdentityHeadersStrippedBesideAnInvokedNamedRoute(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
&(protected) {
	jit_auth {
		header X-Staff-Id {http.auth.user.id}
	}
}
http://localhost:%d {
	handle /public/* {
		reverse_proxy %[3]s
	}
	handle {
		invoke protected
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))

	spoof := http.Header{
		"Remote-User": {"admin"},
		"X-Staff-Id":  {"admin"},
		"Cookie":      {"jitauth_session=stolen; app=1", "__Host-jitauth_session=x"},
	}
	resp := newBrowser(t).do(http.MethodGet, s.base+"/public/x", spoof.Clone())
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.upstream.hits != 1 {
		t.Fatalf("/public/x: status %d, %d requests reached the upstream", resp.StatusCode, s.upstream.hits)
	}
	h := s.upstream.lastHeaders(t)
	for _, name := range []string{"Remote-User", "X-Staff-Id"} {
		if v, ok := h[name]; ok {
			t.Errorf("/public/x: the upstream got the client's %s %q", name, v)
		}
	}
	if c := strings.Join(h["Cookie"], "; "); c != "app=1" {
		t.Errorf("/public/x: the upstream got Cookie %q; want app=1", c)
	}

	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "corp", "/app/x")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
		t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	signedIn := spoof.Clone()
	delete(signedIn, "Cookie")
	resp = b.do(http.MethodGet, s.base+"/app/y", signedIn)
	resp.Body.Close()
	h = s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || h.Get("X-Staff-Id") != "alice@example.com" || len(h["Remote-User"]) != 1 {
		t.Errorf("signed in: Remote-User %q, X-Staff-Id %q; want alice@example.com", h["Remote-User"], h["X-Staff-Id"])
	}
	if c := strings.Join(h["Cookie"], "; "); strings.Contains(c, "jitauth_") {
		t.Errorf("signed in: the upstream got Cookie %q", c)
	}
}

// A site without a host (":8080 { … }", "http:// { … }", as behind a
// load balancer) is the whole server: Caddy lays its routes out at the top
// level, one per directive or block, with no route of the site's own to
// put a cleaning step in front of them. The README promises the same as
// for a site with a host: with jit_auth in a handle or route block, the
// site's other requests reach their handlers without the client's
// identity headers and the module's cookies (S1, S16), and the protected
// part still signs in and gets the module's values.
func TestIdentityHeadersStrippedInASiteWithoutAHost(t *testing.T) {
	for name, tc := range map[string]struct {
		layout string
		// signIn: the sign-in endpoints reach jit_auth (a route /app/*
		// block at the top level takes only its own paths).
		signIn bool
	}{
		"handle blocks": {`
	handle /public/* {
		reverse_proxy {UP}
	}
	handle {
		jit_auth
		reverse_proxy {UP}
	}`, true},
		"route block beside a proxy": {`
	reverse_proxy /public/* {UP}
	route /app/* {
		jit_auth
		reverse_proxy {UP}
	}`, false},
		"site-level matcher": {`
	header X-Site on
	jit_auth /app/*
	reverse_proxy {UP}`, true},
		// A route that answers comes first, so every route gets the step;
		// a proxy's route after jit_auth's must keep what jit_auth set.
		"a redirect before a site-level matcher": {`
	redir /old /public/x
	jit_auth /app/*
	reverse_proxy /app/* {UP}
	reverse_proxy {UP}`, true},
	} {
		for _, address := range []string{":%d", "http://:%d"} {
			t.Run(name+" "+address, func(t *testing.T) {
				s, port, conns := newLayoutSite(t)
				runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n%s\n}\n", globalOptions(s.dir, conns), fmt.Sprintf(address, port),
					strings.ReplaceAll(tc.layout, "{UP}", s.upstream.hostPort())))
				spoof := http.Header{
					"Remote-User": {"admin"},
					"Cookie":      {"jitauth_session=stolen; app=1"},
				}
				resp := newBrowser(t).do(http.MethodGet, s.base+"/public/x", spoof.Clone())
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || s.upstream.hits != 1 {
					t.Fatalf("/public/x: status %d, %d requests reached the upstream", resp.StatusCode, s.upstream.hits)
				}
				wantCleaned(t, s, "/public/x: the upstream")
				if !tc.signIn {
					return
				}

				wantSignedInForwarded(t, s, spoof, "/app/x", "/app/y")
			})
		}
	}
}

// A matcher of jit_auth's own that fails on a request (an expression
// that cannot be evaluated, client_ip on TLS early data) makes the
// handler return the error, and Caddy's handle_errors routes get the
// request next. Those may forward it (an application that renders its
// own error pages): then without the client's identity headers and
// without the module's cookies, as every other request jit_auth passes
// on (S1, S16). A browser sends its session cookie on any navigation a
// link elsewhere starts, so anyone can make it take such a path.
func TestMatcherErrorSendsNoModuleCookiesToTheErrorRoutes(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(s.dir, conns), port, strings.ReplaceAll(`
	@paged expression int({http.request.uri.query.page}) > 1
	jit_auth @paged
	reverse_proxy {UP}
	handle_errors {
		reverse_proxy {UP}
	}`, "{UP}", s.upstream.hostPort())))
	hdr := http.Header{
		"Remote-User": {"admin"},
		"Cookie":      {"__Host-jitauth_session=secret; app=1; jitauth_flow_0011223344556677=x"},
	}
	resp := newBrowser(t).do(http.MethodGet, s.base+"/list?page=two", hdr)
	resp.Body.Close()
	if s.upstream.hits != 1 {
		t.Fatalf("status %d, %d requests reached the upstream; want the error routes' one", resp.StatusCode, s.upstream.hits)
	}
	wantCleaned(t, s, "the error routes' upstream")
}

// With jit_auth in a handle /app/* block of a site without a host, the
// site's cleaning step does what it does on a site with one (the
// README's promise for handle blocks): it refuses with 400 a path that
// Caddy's routes take past the block while an upstream's reading takes
// it there (S10), and hands the sign-in endpoints, which the catch-all
// block takes, to the handler they belong to, so a sign-in completes.
// The site with a host is the control.
func TestSiteWithoutAHostReadsPathsAsASiteWithOne(t *testing.T) {
	for _, address := range []string{"http://localhost:%d", ":%d", "http://:%d"} {
		t.Run(address, func(t *testing.T) {
			s, port, conns := newLayoutSite(t)
			runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n%s\n}\n", globalOptions(s.dir, conns), fmt.Sprintf(address, port),
				strings.ReplaceAll(`
	handle /app/* {
		jit_auth
		reverse_proxy {UP}
	}
	handle {
		reverse_proxy {UP}
	}`, "{UP}", s.upstream.hostPort())))
			for _, path := range []string{"/app;x/y", "/public/..;/app/y", "/app./y"} {
				resp := newBrowser(t).do(http.MethodGet, s.base+path, nil)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest || s.upstream.hits != 0 {
					t.Errorf("%s: status %d, %d requests reached the upstream; want 400 and none", path, resp.StatusCode, s.upstream.hits)
				}
			}
			b := newBrowser(t)
			s.queue(alice())
			resp, body := s.login(b, "corp", "/app/x")
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
				t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
			}
			if h := s.upstream.lastHeaders(t); h.Get("Remote-User") != "alice@example.com" {
				t.Errorf("signed in: Remote-User %q; want alice@example.com", h["Remote-User"])
			}
		})
	}
}

// A site without a host is cleaned whatever its layout, so loading it
// does not warn that its other requests keep the client's identity
// headers.
func TestSiteWithoutAHostIsNotWarnedAbout(t *testing.T) {
	port := freePort(t)
	log := warningsAtLoad(t, `:%d {
	reverse_proxy /public/* 127.0.0.1:9
	handle /app/* {
		jit_auth
		reverse_proxy 127.0.0.1:9
	}
	handle {
		reverse_proxy 127.0.0.1:9
	}
}
`, port)
	if strings.Contains(log, "client-supplied identity headers") {
		t.Errorf("warned:\n%s", log)
	}
}

// A site without a host whose every route has a matcher, none taking the
// sign-in endpoints (route /app/* beside a proxy for /public/*), sends a
// sign-in's start and callback to no route at all: loading warns and
// says what to write instead.
func TestSiteWithoutACatchAllRouteIsWarnedAbout(t *testing.T) {
	port := freePort(t)
	log := warningsAtLoad(t, `:%d {
	reverse_proxy /public/* 127.0.0.1:9
	route /app/* {
		jit_auth
		reverse_proxy 127.0.0.1:9
	}
}
`, port)
	if strings.Count(log, "no route that takes every request") != 1 {
		t.Errorf("want one warning about the sign-in endpoints; log:\n%s", log)
	}
}

// With a named route that holds jit_auth invoked from a handle /app/*
// block, a path that Caddy's routes take to the site's other block while
// an upstream's reading takes it into /app/* is refused with 400, as with
// jit_auth written in the block itself (S10): the site's cleaning step
// follows invoke into the named route.
func TestPathReadPastAnInvokedNamedRouteIsRefused(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
&(protected) {
	jit_auth
}
http://localhost:%d {
	handle /app/* {
		invoke protected
		reverse_proxy %[3]s
	}
	handle {
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))
	for _, path := range []string{"/app;x/y", "/public/..;/app/y", "/app./y"} {
		resp := newBrowser(t).do(http.MethodGet, s.base+path, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || s.upstream.hits != 0 {
			t.Errorf("%s: status %d, %d requests reached the upstream; want 400 and none", path, resp.StatusCode, s.upstream.hits)
		}
	}
	before := s.upstream.hits
	resp := newBrowser(t).do(http.MethodGet, s.base+"/public/x", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.upstream.hits != before+1 {
		t.Errorf("/public/x: status %d, did not reach the upstream", resp.StatusCode)
	}
}

// A site without a host (":8080 { … }") that reaches jit_auth through
// invoke of a named route is cleaned as one with a host is: its blocks
// are the server's own routes, compiled before the named route's
// jit_auth is set up, so the step goes first in each block's subroute.
// A public block's requests lose the client's identity headers and the
// module's cookies (S1, S16), a path an upstream reads into the invoking
// block is refused, and the protected block still signs in.
func TestIdentityHeadersStrippedInASiteWithoutAHostThatInvokesANamedRoute(t *testing.T) {
	s, port, conns := newLayoutSite(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
&(protected) {
	jit_auth
}
:%d {
	handle /public/* {
		reverse_proxy %[3]s
	}
	handle {
		invoke protected
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))
	spoof := http.Header{
		"Remote-User": {"admin"},
		"Cookie":      {"jitauth_session=stolen; app=1"},
	}
	resp := newBrowser(t).do(http.MethodGet, s.base+"/public/x", spoof.Clone())
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.upstream.hits != 1 {
		t.Fatalf("/public/x: status %d, %d requests reached the upstream", resp.StatusCode, s.upstream.hits)
	}
	wantCleaned(t, s, "/public/x: the upstream")
	for _, path := range []string{"/public/..;/app/y"} {
		before := s.upstream.hits
		resp := newBrowser(t).do(http.MethodGet, s.base+path, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || s.upstream.hits != before {
			t.Errorf("%s: status %d, reached the upstream %v; want 400 and not", path, resp.StatusCode, s.upstream.hits != before)
		}
	}

	wantSignedInForwarded(t, s, spoof, "/app/x", "/app/y")
}

// In a site without a host that invokes a named route with jit_auth, a
// directive that answers or forwards by itself (a bare reverse_proxy) is
// a route of the server that no cleaning step can be put in front of
// once the named route is set up: loading warns about it, and not about
// a site whose every such route is a block, nor one whose every request
// meets the invoke first (invoke at the site level).
func TestSiteWithoutAHostInvokingANamedRouteWarnsAboutABareProxy(t *testing.T) {
	const block = "handle /app/* {\n\t\tinvoke protected\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\t"
	for name, tc := range map[string]struct {
		rest string
		warn bool
	}{
		"bare proxy":         {block + "reverse_proxy 127.0.0.1:9", true},
		"handle block":       {block + "handle {\n\t\treverse_proxy 127.0.0.1:9\n\t}", false},
		"invoke at the site": {"invoke protected\n\treverse_proxy /api/* 127.0.0.1:9\n\treverse_proxy 127.0.0.1:9", false},
	} {
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			log := warningsAtLoad(t, `&(protected) {
	jit_auth
}
:%d {
	%s
}
`, port, tc.rest)
			if got := strings.Count(log, "answers or forwards by itself"); got != map[bool]int{true: 1, false: 0}[tc.warn] {
				t.Errorf("warnings: %d, want warned %v; log:\n%s", got, tc.warn, log)
			}
		})
	}
}

// A named route may reach jit_auth through another (invoke inner inside
// &(outer)): a site invoking the outer one, with a host or without, is
// cleaned as one invoking the inner one directly, whichever named route
// Caddy sets up first (S1, S16), and its protected block still asks for
// a sign-in.
func TestIdentityHeadersStrippedBesideAChainOfInvokedNamedRoutes(t *testing.T) {
	for _, address := range []string{"http://localhost:%d", ":%d"} {
		t.Run(address, func(t *testing.T) {
			s, port, conns := newLayoutSite(t)
			runCaddyfile(t, fmt.Sprintf(`{%s
}
&(inner) {
	jit_auth
}
&(outer) {
	invoke inner
}
`+address+` {
	handle /public/* {
		reverse_proxy %[3]s
	}
	handle {
		invoke outer
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))
			spoof := http.Header{"Remote-User": {"admin"}, "Cookie": {"jitauth_session=stolen; app=1"}}
			resp := newBrowser(t).do(http.MethodGet, s.base+"/public/x", spoof.Clone())
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || s.upstream.hits != 1 {
				t.Fatalf("/public/x: status %d, %d requests reached the upstream", resp.StatusCode, s.upstream.hits)
			}
			wantCleaned(t, s, "/public/x: the upstream")
			resp = newBrowser(t).do(http.MethodGet, s.base+"/app/x", nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || s.upstream.hits != 1 {
				t.Errorf("/app/x: status %d, %d requests reached the upstream; want a redirect to sign in", resp.StatusCode, s.upstream.hits)
			}
		})
	}
}

// With jit_auth in a named route invoked from a handle /app/* block
// beside a catch-all proxy, the sign-in endpoints (/.jitauth/…) go to the
// catch-all by Caddy's routes: the site's cleaning step hands them to
// the named route's jit_auth, as it does for jit_auth written in the
// block, so a sign-in started at /app/x completes (the start was
// proxied to the upstream, and signing in never began), with a host or
// without.
func TestSignInThroughAnInvokedNamedRouteBesideACatchAllProxy(t *testing.T) {
	for _, address := range []string{"http://localhost:%d", ":%d"} {
		t.Run(address, func(t *testing.T) {
			s, port, conns := newLayoutSite(t)
			runCaddyfile(t, fmt.Sprintf(`{%s
}
&(protected) {
	jit_auth
}
`+address+` {
	handle /app/* {
		invoke protected
		reverse_proxy %[3]s
	}
	handle {
		reverse_proxy %[3]s
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))
			b := newBrowser(t)
			s.queue(alice())
			resp, body := s.login(b, "corp", "/app/x")
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
				t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, body)
			}
			if h := s.upstream.lastHeaders(t); h.Get("Remote-User") != "alice@example.com" {
				t.Errorf("signed in: Remote-User %q; want alice@example.com", h["Remote-User"])
			}
			if s.upstream.hits != 1 {
				t.Errorf("%d requests reached the upstream; want only /app/x", s.upstream.hits)
			}
		})
	}
}
