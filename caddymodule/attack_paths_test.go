package caddymodule_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// S10: the match field protects a part of the site by the path Caddy
// routes on, but the upstream gets the path as sent and may read it
// otherwise: a Servlet container drops ";" parameters, IIS reads "\" as
// "/" and drops a segment's trailing dots and spaces, some routers do
// not resolve dot segments. A path crafted so that Caddy reads it
// outside the protected part and the upstream inside it must need a
// login; ordinary paths keep their meaning. Both ways of writing the
// field are tried: a protected prefix, and everything but a public one.
func TestCraftedPathsCannotWalkAroundTheMatcher(t *testing.T) {
	for _, tc := range []struct {
		name, site      string
		protected, open []string
	}{
		{
			name: "jit_auth /admin/*",
			site: "\tjit_auth /admin/*\n\treverse_proxy {UPSTREAM}",
			protected: []string{"/admin/x", "/ADMIN/x", "//admin/x", "/admin;/x", "/admin;jsessionid=1/x",
				`/admin\x`, "/admin%5cx", "/admin./x", "/admin%20/x", "/admin%2e/x", "/admin/%2e%2e/x",
				"/admin/../x", "/admin%00/x", "/admin%252fx", "/adm%69n;/x"},
			open: []string{"/", "/public/x", "/admin", "/administrator/x", "/public/a;b", "/public/a%20b.txt", "/style.css"},
		},
		{
			name: "jit_auth @private (not path /public/*)",
			site: "\t@private not path /public/*\n\tjit_auth @private\n\treverse_proxy {UPSTREAM}",
			protected: []string{"/admin/x", "/public/..;/admin/x", "/public/..%3b/admin/x", `/public\..\admin/x`,
				"/public/..%5cadmin/x", "/public/%2e%2e/admin/x", "/public/%252e%252e/admin/x", "/public./../admin/x"},
			open: []string{"/public/x", "/PUBLIC/x", "/public/a;b", "/public/a%20b.txt", "/public/../public/x", "/public/./x"},
		},
		{
			// A matcher that reads the path through a placeholder sees
			// each reading too, not only Caddy's.
			name: "jit_auth @admin (expression on {path})",
			site: "\t@admin expression `{path}.startsWith('/admin/')`\n\tjit_auth @admin\n\treverse_proxy {UPSTREAM}",
			protected: []string{"/admin/x", "/admin;/x", `/admin\x`, "/admin%5cx", "/admin./x", "/admin%20/x",
				"/admin/%2e%2e/x", "/admin%00/x", "/admin%252fx", "//admin/x", "/public/../admin/x", "/public/..;/admin/x"},
			open: []string{"/", "/public/x", "/admin", "/public/a;b", "/style.css"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := partialSite(t, tc.site)
			status := func(path string) int { return rawGetStatus(t, base, path) }
			for _, p := range tc.protected {
				if got := status(p); got != 401 {
					t.Errorf("GET %s without a session: %d, want 401", p, got)
				}
			}
			for _, p := range tc.open {
				if got := status(p); got != 200 {
					t.Errorf("GET %s without a session: %d, want 200 (not protected)", p, got)
				}
			}
		})
	}
}

// An upstream behind IIS's URL Rewrite module, or a PHP framework
// written for it, takes the path from X-Original-URL or X-Rewrite-URL
// when the request has one: "GET /public/x" with "X-Original-URL:
// /admin/x" is /admin/x to it. Such a request needs the login its header's
// path needs, under any spelling of the field; with jit_auth in a handle
// block, the site's cleaning step refuses it.
func TestPathOverrideHeadersNeedTheLoginOfTheirPath(t *testing.T) {
	for _, tc := range []struct {
		name, site string
		want       map[string]int // header line -> status of GET /public/x
	}{
		{
			name: "jit_auth /admin/*",
			site: "\tjit_auth /admin/*\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{
				"X-Original-URL: /admin/x":                             401,
				"x-rewrite-url: /admin/x?a=b":                          401,
				"X-ORIGINAL-URL: https://other.test/admin/x":           401,
				"X-Original-URL: /ADMIN;/x":                            401,
				"X-Original-URL: /public/../admin/x":                   401,
				"X-Original-URL: /public/y":                            200,
				"X-Original-URL: /administrator":                       200,
				"X-Forwarded-Uri: /admin/x":                            200,
				"X-Original-URL: admin/x":                              401,
				"X-Rewrite-URL: /public/y\r\nX-Original-URL: /admin/x": 401,
			},
		},
		{
			name: "handle /admin/*",
			site: "\thandle /admin/* {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			want: map[string]int{
				"X-Original-URL: /admin/x":   400,
				"x-rewrite-url: /admin/x":    400,
				"X-Original-URL: /admin%5cx": 400,
				"X-Original-URL: /public/y":  200,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := partialSite(t, tc.site)
			for header, want := range tc.want {
				if got := rawGetStatusWith(t, base, "/public/x", header); got != want {
					t.Errorf("GET /public/x with %q without a session: %d, want %d", header, got, want)
				}
			}
		})
	}
}

// rawGetStatus sends GET path to base as a raw request line (a client
// library would clean or escape these paths first) and returns the
// status.
func rawGetStatus(t *testing.T, base, path string) int {
	t.Helper()
	return rawGetStatusWith(t, base, path, "")
}

// rawGetStatusWith is rawGetStatus with extra header lines.
func rawGetStatusWith(t *testing.T, base, path, header string) int {
	t.Helper()
	return rawGetStatusAs(t, base, strings.TrimPrefix(base, "http://"), path, header)
}

// rawGetStatusAs is rawGetStatusWith with the Host field given.
func rawGetStatusAs(t *testing.T, base, host, path, header string) int {
	t.Helper()
	return rawStatus(t, base, http.MethodGet, host, path, header)
}

// rawStatus sends one raw request without a body and returns the status.
func rawStatus(t *testing.T, base, method, host, path, header string) int {
	t.Helper()
	if header != "" {
		header += "\r\n"
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", method, path, host, header)
	var proto string
	var code int
	line, _ := bufio.NewReader(c).ReadString('\n')
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &code); err != nil {
		t.Fatalf("%s %s (Host %s): no status line: %q", method, path, host, line)
	}
	return code
}

// The same paths when jit_auth sits in a handle block: Caddy's routing,
// not jit_auth's matcher, decides, and sends a crafted path to the
// site's other routes. The site's cleaning step refuses such a path
// (400) when another reading of it would reach the jit_auth handler;
// ordinary paths keep their meaning, and a crafted one that reads as
// public every way passes.
func TestCraftedPathsCannotWalkAroundAHandleBlock(t *testing.T) {
	for _, tc := range []struct {
		name, site               string
		refused, protected, open []string
	}{
		{
			name: "handle /admin/*",
			site: "\thandle /admin/* {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			refused: []string{"/admin;/x", "/admin;jsessionid=1/x", `/admin\x`, "/admin%5cx", "/admin./x", "/admin%20/x",
				"/admin%2e/x", "/admin/%2e%2e/x", "/admin/../x", "/admin%00/x", "/admin%252fx"},
			protected: []string{"/admin/x", "/ADMIN/x", "//admin/x", "/public/../admin/x"},
			open:      []string{"/", "/public/x", "/admin", "/public/a;b", "/public/a%20b.txt", "/style.css", "/public/..;/other"},
		},
		{
			name:      "handle /public/*, jit_auth for the rest",
			site:      "\thandle /public/* {\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}",
			refused:   []string{"/public/..;/admin/x", "/public/..%3b/admin/x", "/public/..%5cadmin/x", "/public/%252e%252e/admin/x"},
			protected: []string{"/admin/x", "/public/%2e%2e/admin/x", `/public\..\admin/x`},
			open:      []string{"/public/x", "/PUBLIC/x", "/public/a;b", "/public/a%20b.txt", "/public/../public/x", "/public/./x"},
		},
		{
			// jit_auth in the block protects only part of it: a path
			// whose other reading enters the block but not that part is
			// not refused.
			name:      "handle /app/* with jit_auth /app/admin/*",
			site:      "\thandle /app/* {\n\t\tjit_auth /app/admin/*\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			refused:   []string{"/app;/admin/x", "/app%5cadmin/x"},
			protected: []string{"/app/admin/x", "/app/admin;/x"},
			open:      []string{"/app/x", "/app;/x", "/other;/x", "/app/public;x"},
		},
		{
			// The cleaning step follows a request through the site's
			// rewrites too: jit_auth's own matcher inside handle_path
			// sees the path with the prefix stripped.
			name:      "handle_path /app/* with jit_auth /admin/*",
			site:      "\thandle_path /app/* {\n\t\tjit_auth /admin/*\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			refused:   []string{"/app;/admin/x", "/app%5cadmin/x", "/app./admin/x"},
			protected: []string{"/app/admin/x", "/app/admin;/x", "/APP/admin/x", "//app/admin;/x/../y"},
			open:      []string{"/app/x", "/app;/x", "/admin/x", "/app;/public/admin/x"},
		},
		{
			// A route matcher that reads the path through a placeholder
			// is tried on each reading too.
			name: "handle @admin (expression on {path})",
			site: "\t@admin expression `{path}.startsWith('/admin/')`\n\thandle @admin {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			refused: []string{"/admin;/x", `/admin\x`, "/admin%5cx", "/admin./x", "/admin%20/x", "/admin%00/x", "/admin%252fx",
				"//admin/x", "/public/../admin/x", "/public/..;/admin/x"},
			protected: []string{"/admin/x", "/admin/public/x"},
			open:      []string{"/", "/public/x", "/admin", "/public/a;b", "/style.css"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := partialSite(t, tc.site)
			for want, paths := range map[int][]string{400: tc.refused, 401: tc.protected, 200: tc.open} {
				for _, p := range paths {
					if got := rawGetStatus(t, base, p); got != want {
						t.Errorf("GET %s without a session: %d, want %d", p, got, want)
					}
				}
			}
		})
	}
}

// A Host with a trailing dot names the same host to DNS and to most
// servers, but Caddy's host matcher does not take "admin.test." for
// admin.test. In a catch-all site (on-demand TLS, many tenants) whose
// jit_auth sits behind "host admin.test", such a request went to the
// site's other routes, and an upstream routing by host served the
// protected one: the cleaning step refuses it, and a jit_auth whose own
// matcher names the host asks for a login.
func TestHostWithATrailingDotCannotWalkAroundAHostMatcher(t *testing.T) {
	catchAll := []string{`"match":[{"host":["localhost"]}],`, ""}
	for _, tc := range []struct {
		name, site string
		want       map[string]int // Host -> status of GET /x without a session
	}{
		{
			name: "handle @admin (host admin.test)",
			site: "\t@admin host admin.test\n\thandle @admin {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			want: map[string]int{"admin.test": 401, "ADMIN.test": 401, "admin.test.": 400, "admin.test..:8443": 400, "www.test": 200, "www.test.": 200},
		},
		{
			name: "jit_auth @admin (host admin.test)",
			site: "\t@admin host admin.test\n\tjit_auth @admin\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{"admin.test": 401, "admin.test.": 401, "www.test": 200, "www.test.": 200},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := partialSite(t, tc.site, catchAll...)
			for host, want := range tc.want {
				if got := rawGetStatusAs(t, base, host, "/x", ""); got != want {
					t.Errorf("GET /x with Host %q without a session: %d, want %d", host, got, want)
				}
			}
		})
	}
}

// Web frameworks (Rails, Laravel, Symfony, Express's method-override,
// ASP.NET Core) take a POST for the method its X-HTTP-Method-Override
// field or _method parameter names. A jit_auth that protects some
// methods asks for a login when the method a request names is one of
// them; with jit_auth in a handle block, the cleaning step refuses it.
func TestMethodOverridesCannotWalkAroundAMethodMatcher(t *testing.T) {
	for _, tc := range []struct {
		name, site string
		want       map[string]int // "METHOD path|header" -> status without a session
	}{
		{
			name: "jit_auth @danger (method DELETE PUT)",
			site: "\t@danger method DELETE PUT\n\tjit_auth @danger\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{
				"DELETE /x|":                             401,
				"POST /x|":                               200,
				"POST /x|X-HTTP-Method-Override: DELETE": 401,
				"POST /x|x-http-method: put":             401,
				"POST /x|X-Method-Override: Delete":      401,
				"POST /x?_method=delete|":                401,
				"POST /x?a=1&_method=PUT|":               401,
				"POST /x|X-HTTP-Method-Override: PATCH":  200,
				"GET /x|X-HTTP-Method-Override: GET":     200,
				"POST /x?method=delete|":                 200,
				"delete /x|":                             401,
				"Put /x|":                                401,
				"patch /x|":                              200,
			},
		},
		{
			name: "handle @danger (method DELETE PUT)",
			site: "\t@danger method DELETE PUT\n\thandle @danger {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			want: map[string]int{
				"DELETE /x|":                             401,
				"POST /x|":                               200,
				"POST /x|X-HTTP-Method-Override: DELETE": 400,
				"POST /x?_method=put|":                   400,
				"POST /x|X-HTTP-Method-Override: PATCH":  200,
				"delete /x|":                             400,
			},
		},
		{
			// Frameworks run a GET route for HEAD.
			name: "jit_auth @reads (method GET)",
			site: "\t@reads method GET\n\tjit_auth @reads\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{
				"GET /x|": 401, "HEAD /x|": 401, "head /x|": 401, "get /x|": 401,
				"POST /x|": 200, "OPTIONS /x|": 200,
			},
		},
		{
			name: "handle @reads (method GET)",
			site: "\t@reads method GET\n\thandle @reads {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			want: map[string]int{
				"GET /x|": 401, "HEAD /x|": 400, "get /x|": 400,
				"POST /x|": 200, "OPTIONS /x|": 200,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := partialSite(t, tc.site)
			host := strings.TrimPrefix(base, "http://")
			for req, want := range tc.want {
				line, header, _ := strings.Cut(req, "|")
				method, path, _ := strings.Cut(line, " ")
				if got := rawStatus(t, base, method, host, path, header); got != want {
					t.Errorf("%s with %q without a session: %d, want %d", line, header, got, want)
				}
			}
		})
	}
}
