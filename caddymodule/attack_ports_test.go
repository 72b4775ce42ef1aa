package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
)

// Browsers send a host's cookies to every port of it (RFC 6265 ignores
// the port), so the session cookie of a jit_auth site also goes to a
// site of the same Caddy on another port of the same host, which has no
// jit_auth handler to take it off, and its upstream gets it (S16).
// Loading says so, once for such a site, and names what to do; it says
// nothing of a site on another host, of one that forwards nothing, or of
// one with its own jit_auth.
func TestSiteOnAnotherPortOfAJITAuthHostIsWarnedAbout(t *testing.T) {
	const warning = "a site on another port of a host jit_auth serves has no jit_auth"
	for _, c := range []struct {
		name  string
		other string
		warns bool
	}{
		{"same host, forwards", "http://localhost:%d {\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"same host, forwards in a handle block", "http://localhost:%d {\n\thandle /api/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond 404\n}", true},
		{"no host, forwards", ":%d {\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"another host", "http://other.example:%d {\n\treverse_proxy 127.0.0.1:9\n}", false},
		{"same host, answers itself", "http://localhost:%d {\n\trespond \"ok\"\n}", false},
		{"same host, its own jit_auth", "http://localhost:%d {\n\tjit_auth\n\treverse_proxy 127.0.0.1:9\n}", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := warningsAtLoad(t, "http://localhost:%d {\n\tjit_auth\n\treverse_proxy 127.0.0.1:9\n}\n"+c.other+"\n", freePort(t), freePort(t))
			if n, want := strings.Count(log, warning), map[bool]int{true: 1, false: 0}[c.warns]; n != want {
				t.Errorf("%d warnings about the other port, want %d; log:\n%s", n, want, log)
			}
		})
	}
}

// A jit_auth handler in a named route serves the hosts of the sites that
// invoke it, not every host: a site of another server on another host
// shares none of its cookies and is not warned about, while one on
// another port of the invoking site's host still is.
func TestSiteOnAnotherPortOfAnInvokingSiteIsWarnedAboutOnItsHostOnly(t *testing.T) {
	const warning = "a site on another port of a host jit_auth serves has no jit_auth"
	for _, c := range []struct {
		name  string
		other string
		warns bool
	}{
		{"another host", "http://other.example:%d {\n\treverse_proxy 127.0.0.1:9\n}", false},
		{"same host", "http://localhost:%d {\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"no host", ":%d {\n\treverse_proxy 127.0.0.1:9\n}", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := warningsAtLoad(t, "&(protected) {\n\tjit_auth\n}\nhttp://localhost:%d {\n\tinvoke protected\n\treverse_proxy 127.0.0.1:9\n}\n"+c.other+"\n", freePort(t), freePort(t))
			if n, want := strings.Count(log, warning), map[bool]int{true: 1, false: 0}[c.warns]; n != want {
				t.Errorf("%d warnings about the other port, want %d; log:\n%s", n, want, log)
			}
		})
	}
}

// The other-port warning names a fix, removing the cookies there if the
// app needs none: a site that does (request_header -Cookie before its
// proxy, or header_up -Cookie in it, also as a route of its own in a
// site without a host) forwards no cookie, and is not warned about; one
// that removes them only on some paths still is.
func TestSiteOnAnotherPortThatRemovesTheCookiesIsNotWarnedAbout(t *testing.T) {
	const warning = "a site on another port of a host jit_auth serves has no jit_auth"
	for _, c := range []struct {
		name  string
		other string
		warns bool
	}{
		{"request_header -Cookie", "http://localhost:%d {\n\trequest_header -Cookie\n\treverse_proxy 127.0.0.1:9\n}", false},
		{"header_up -Cookie", "http://localhost:%d {\n\treverse_proxy 127.0.0.1:9 {\n\t\theader_up -Cookie\n\t}\n}", false},
		{"no host, request_header -cookie", ":%d {\n\trequest_header -cookie\n\treverse_proxy 127.0.0.1:9\n}", false},
		{"removed on one path only", "http://localhost:%d {\n\trequest_header /a/* -Cookie\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"removed after the proxy", "http://localhost:%d {\n\troute {\n\t\treverse_proxy /api/* 127.0.0.1:9\n\t\trequest_header -Cookie\n\t\trespond 404\n\t}\n}", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := warningsAtLoad(t, "http://localhost:%d {\n\tjit_auth\n\treverse_proxy 127.0.0.1:9\n}\n"+c.other+"\n", freePort(t), freePort(t))
			if n, want := strings.Count(log, warning), map[bool]int{true: 1, false: 0}[c.warns]; n != want {
				t.Errorf("%d warnings about the other port, want %d", n, want)
			}
		})
	}
}

// A site whose only jit_auth is in its handle_errors routes: its other
// requests never meet jit_auth nor a cleaning step, so they keep the
// client's Remote-User and the module's cookies. Loading warns about it
// (once a server); not when jit_auth is in the site's routes as well.
func TestJITAuthOnlyInHandleErrorsIsWarnedAbout(t *testing.T) {
	const warning = "jit_auth is only in handle_errors here"
	for _, c := range []struct {
		name  string
		site  string
		warns bool
	}{
		{"only in handle_errors", "\terror /boom/* 500\n\treverse_proxy 127.0.0.1:9\n\thandle_errors {\n\t\tjit_auth\n\t\treverse_proxy 127.0.0.1:9\n\t}", true},
		{"in the routes and handle_errors", "\tjit_auth\n\treverse_proxy 127.0.0.1:9\n\thandle_errors {\n\t\tjit_auth\n\t\treverse_proxy 127.0.0.1:9\n\t}", false},
	} {
		for _, address := range []string{"http://localhost:%d", ":%d"} {
			t.Run(c.name+" "+address, func(t *testing.T) {
				log := warningsAtLoad(t, address+" {\n%s\n}\n", freePort(t), c.site)
				if n, want := strings.Count(log, warning), map[bool]int{true: 1, false: 0}[c.warns]; n != want {
					t.Errorf("%d warnings, want %d; log:\n%s", n, want, log)
				}
			})
		}
	}
}

// warningsAtLoad loads the sites (a Caddyfile format, filled with args)
// after global options with one OIDC connection, and returns what Caddy
// logged at WARN and above.
func warningsAtLoad(t *testing.T, sites string, args ...any) string {
	t.Helper()
	dir := t.TempDir()
	logFile := dir + "/caddy.log"
	conns := "connection corp {\n oidc https://idp.example a b\n jit off\n}"
	caddyfile := fmt.Sprintf("{%s\n}\n"+sites, append([]any{globalOptions(dir, conns)}, args...)...)
	caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+logFile+"\n\t\tlevel WARN", 1)
	runCaddyfile(t, caddyfile)
	return mustReadFile(t, logFile)
}
