package caddymodule_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// S1 and S16 where jit_auth protects part of a site: every request of
// the site, matched or not, HTTP/1.1 or h2c, with or without a session,
// reaches the upstream without the client's identity headers (in any
// spelling, in headers or trailers) and without the module's cookies;
// where the module sets identity headers, the upstream gets exactly
// those, whatever the client put in Connection.

// recordingUpstream records, per request, the headers, the trailers
// (after reading the body, which is when they arrive) and the protocol.
type recordingUpstream struct {
	url  string
	mu   sync.Mutex
	seen map[string]seenRequest // by request path
	hits int
}

type seenRequest struct {
	header, trailer http.Header
	body            string
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{seen: map[string]seenRequest{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen[r.URL.Path] = seenRequest{header: r.Header.Clone(), trailer: r.Trailer.Clone(), body: string(body)}
		u.hits++
		u.mu.Unlock()
		fmt.Fprint(w, "upstream")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.url = ln.Addr().String()
	return u
}

// take returns and forgets what reached the upstream for path.
func (u *recordingUpstream) take(path string) (seenRequest, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.seen[path]
	delete(u.seen, path)
	return s, ok
}

// partialSite runs Caddy with HTTP/1.1 and h2c on one plain-HTTP port and
// the given site body (its {UPSTREAM} replaced), logging in through one
// mockoidc connection, corp. With jsonEdit, the adapted JSON is edited
// (pairs of old, new) before loading, as a JSON user would write it.
func partialSite(t *testing.T, siteBody string, jsonEdit ...string) (base string, up *recordingUpstream, login func() string) {
	t.Helper()
	return partialSiteOpts(t, "", siteBody, jsonEdit...)
}

// partialSiteOpts is partialSite with extra lines for the global servers
// block.
func partialSiteOpts(t *testing.T, serverExtra, siteBody string, jsonEdit ...string) (base string, up *recordingUpstream, login func() string) {
	t.Helper()
	return startPartialSite(t, false, serverExtra, siteBody, jsonEdit...)
}

// tlsSite is partialSite on https://localhost:<port>, with Caddy's
// internal CA (tls internal) and HTTP/1.1, HTTP/2 and HTTP/3 on, as
// every HTTPS site of Caddy has by default. Its clients (tlsClient,
// h3Client, login's browser) trust any certificate; login returns the
// value of the __Host-jitauth_session cookie.
func tlsSite(t *testing.T, siteBody string) (base string, up *recordingUpstream, login func() string) {
	t.Helper()
	return startPartialSite(t, true, "", siteBody)
}

func startPartialSite(t *testing.T, https bool, serverExtra, siteBody string, jsonEdit ...string) (base string, up *recordingUpstream, login func() string) {
	t.Helper()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up = newRecordingUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit off
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	head, protocols, site := "", "h1 h2c", fmt.Sprintf("http://localhost:%d", port)
	body := strings.ReplaceAll(siteBody, "{UPSTREAM}", up.url)
	if https {
		head, protocols, site = "\tskip_install_trust\n\tauto_https disable_redirects\n", "h1 h2 h3", fmt.Sprintf("https://localhost:%d", port)
		body = "\ttls internal\n" + body
	}
	caddyfile := fmt.Sprintf("{\n%s\tservers {\n\t\tprotocols %s\n%s\n\t}%s\n}\n%s {\n%s\n}\n",
		head, protocols, serverExtra, globalOptions(dir, conns), site, body)
	if len(jsonEdit) > 0 {
		runCaddyJSON(t, adaptCaddyfile(t, caddyfile, jsonEdit...))
	} else {
		runCaddyfile(t, caddyfile)
	}
	base = site
	if https {
		waitTLS(t, base)
	}
	login = func() string {
		t.Helper()
		b, cookie := newBrowser(t), "jitauth_session"
		if https {
			b.client.Transport, cookie = tlsClient().Transport, "__Host-jitauth_session"
		}
		idp.QueueUser(alice())
		resp, _, visited := b.follow(base+"/.jitauth/start/corp?rd=/admin/login-done", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d after %v", resp.StatusCode, visited)
		}
		c := b.cookie(base, cookie)
		if c == nil {
			t.Fatal("no session cookie after login")
		}
		return c.Value
	}
	return base, up, login
}

// tlsClient is an HTTP/1.1 client that trusts any certificate and does
// not follow redirects.
func tlsClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// h3Client is an HTTP/3 client that trusts any certificate and does not
// follow redirects.
func h3Client(t *testing.T) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}}}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// waitTLS waits until Caddy serves its internal certificate for base.
func waitTLS(t *testing.T, base string) {
	t.Helper()
	cl := tlsClient()
	eventually(t, "Caddy's internal certificate", 20*time.Second, func() bool {
		resp, err := cl.Get(base + "/.jitauth/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// count is how many requests have reached the upstream.
func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// protocolClients are a plain HTTP/1.1 client and an h2c (HTTP/2 with
// prior knowledge, no TLS) client.
func protocolClients() map[string]*http.Client {
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return map[string]*http.Client{
		"HTTP/1.1": {Timeout: 20 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{}},
		"HTTP/2.0": {Timeout: 20 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{Protocols: h2c}},
	}
}

// spoofed are identity headers a client sends in raw spellings (Go's
// client writes raw map keys as they are), custom names included.
var spoofed = []string{"Remote-User", "Remote_User", "remote-user", "REMOTE_USER", "Remote-Groups", "remote_groups", "Remote-Email", "Remote-Name", "X-Custom-User", "x_custom_user"}

// identityLeft lists the headers of h that carry a spoofed value or are
// identity headers the module did not set (want: name → value).
func identityLeft(h http.Header, want map[string]string) []string {
	var bad []string
	for name, vals := range h {
		for _, v := range vals {
			if strings.Contains(v, "mallory") {
				bad = append(bad, name+": "+v)
			}
		}
	}
	for _, name := range []string{"Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "X-Custom-User"} {
		got := h.Values(name)
		w, set := want[name]
		switch {
		case set && (len(got) != 1 || got[0] != w):
			bad = append(bad, fmt.Sprintf("%s = %q, want %q", name, got, w))
		case !set && len(got) != 0:
			bad = append(bad, fmt.Sprintf("%s = %q, want none", name, got))
		}
	}
	return bad
}

// The cookies a client sends besides the module's, with spacing and
// quoting the module must not touch.
const (
	appCookiesBefore = `theme=dark;  pref="a b"`
	appCookiesAfter  = `_ga=GA1.2.3`
	appCookieLine2   = `z=9`
)

// checkCookies checks that the upstream's Cookie header carries the
// other cookies, byte for byte, and none of the module's.
func checkCookies(t *testing.T, proto string, h http.Header) {
	t.Helper()
	lines := h.Values("Cookie")
	for _, l := range lines {
		if strings.Contains(strings.ToLower(l), "jitauth") {
			t.Errorf("the module's cookie reached the upstream: Cookie: %s", l)
		}
	}
	want := []string{appCookiesBefore + "; " + appCookiesAfter, appCookieLine2}
	if proto == "HTTP/2.0" {
		// HTTP/2 carries cookie pairs as separate fields, which Go's
		// client splits at ";" and its server joins with "; " (RFC 9113,
		// section 8.2.3), before the module sees them.
		want = []string{`theme=dark; pref="a b"; _ga=GA1.2.3; z=9`}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("upstream Cookie lines %q, want %q", lines, want)
	}
}

func TestIdentityHeadersOutsideTheMatcher(t *testing.T) {
	site := `
	jit_auth /admin/* {
		header X-Custom-User {http.auth.user.id}
	}
	reverse_proxy {UPSTREAM}`
	// The JSON form: the matcher in the handler's match field, the route
	// with no matcher.
	jsonSite := `
	jit_auth {
		header X-Custom-User {http.auth.user.id}
	}
	reverse_proxy {UPSTREAM}`
	for _, form := range []string{"Caddyfile", "JSON"} {
		t.Run(form, func(t *testing.T) {
			var base string
			var up *recordingUpstream
			var login func() string
			if form == "JSON" {
				base, up, login = partialSite(t, jsonSite, `"handler":"jit_auth"`, `"handler":"jit_auth","match":[{"path":["/admin/*"]}]`)
			} else {
				base, up, login = partialSite(t, site)
			}
			session := login()
			for proto, client := range protocolClients() {
				for _, withSession := range []bool{false, true} {
					for _, path := range []string{"/public", "/admin", "/admin/x", "/.jitauth-not", "/ADMIN/x"} {
						name := fmt.Sprintf("%s %s session=%v", proto, path, withSession)
						req, _ := http.NewRequest(http.MethodGet, base+path, nil)
						req.Header.Set("Accept", "application/json")
						for _, h := range spoofed {
							req.Header[h] = []string{"mallory"}
						}
						cookie := appCookiesBefore
						if withSession {
							cookie += "; jitauth_session=" + session + "; __Host-jitauth_session=" + session + "; jitauth_flow_0011223344556677=x; jitauth_pending=y"
						}
						req.Header["Cookie"] = []string{cookie + "; " + appCookiesAfter, appCookieLine2}
						if proto == "HTTP/1.1" {
							// reverse_proxy deletes the headers a client
							// names in Connection as hop-by-hop.
							req.Header["Connection"] = []string{"keep-alive, Remote-User, remote_groups", "X-Custom-User"}
						}
						resp, err := client.Do(req)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.Proto != proto {
							t.Fatalf("%s: answered over %s", name, resp.Proto)
						}
						seen, reached := up.take(path)
						// Caddy's path matcher ignores case.
						protected := strings.HasPrefix(strings.ToLower(path), "/admin/")
						switch {
						case protected && !withSession:
							if resp.StatusCode != http.StatusUnauthorized || reached {
								t.Errorf("%s: status %d, reached upstream %v; want 401 and not reached", name, resp.StatusCode, reached)
							}
							continue
						case !reached || resp.StatusCode != http.StatusOK:
							t.Errorf("%s: status %d, reached upstream %v", name, resp.StatusCode, reached)
							continue
						}
						want := map[string]string{}
						if protected {
							want = map[string]string{"Remote-User": "alice@example.com", "X-Custom-User": "alice@example.com",
								"Remote-Groups": "staff,wonderland", "Remote-Email": "alice@example.com", "Remote-Name": "Alice Liddell"}
						}
						for _, bad := range identityLeft(seen.header, want) {
							t.Errorf("%s: %s", name, bad)
						}
						checkCookies(t, proto, seen.header)
					}
				}
			}
		})
	}
}

// Trailers named like identity headers never reach the upstream, over
// HTTP/1.1 and h2c, announced in Trailer or not, inside the matcher and
// outside; other trailers do (so the test sees trailers at all).
func TestIdentityTrailersNeverReachUpstream(t *testing.T) {
	base, up, login := partialSite(t, `
	jit_auth /admin/* {
		header X-Custom-User {http.auth.user.id}
	}
	reverse_proxy {UPSTREAM}`)
	session := login()
	for proto, client := range protocolClients() {
		for _, path := range []string{"/public", "/admin/upload"} {
			name := proto + " " + path
			req, _ := http.NewRequest(http.MethodPost, base+path, io.NopCloser(strings.NewReader("payload")))
			req.ContentLength = -1
			req.Header.Set("Cookie", "jitauth_session="+session)
			req.Trailer = http.Header{"X-Check": {"ok"}, "Remote-User": {"mallory"}, "Remote_user": {"mallory"}, "X-Custom-User": {"mallory"}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			seen, ok := up.take(path)
			if !ok || resp.StatusCode != http.StatusOK || resp.Proto != proto {
				t.Fatalf("%s: status %d over %s, reached %v", name, resp.StatusCode, resp.Proto, ok)
			}
			checkTrailers(t, name, seen)
			want := map[string]string{}
			if path != "/public" {
				want = map[string]string{"Remote-User": "alice@example.com", "X-Custom-User": "alice@example.com",
					"Remote-Groups": "staff,wonderland", "Remote-Email": "alice@example.com", "Remote-Name": "Alice Liddell"}
			}
			for _, bad := range identityLeft(seen.header, want) {
				t.Errorf("%s: %s", name, bad)
			}
		}
	}

	// On the wire: only X-Check is announced; the identity trailers come
	// unannounced, in raw spellings.
	u, _ := url.Parse(base)
	for _, path := range []string{"/public", "/admin/raw"} {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nCookie: jitauth_session=%s\r\nTransfer-Encoding: chunked\r\nTrailer: X-Check\r\nConnection: close\r\n\r\n"+
			"7\r\npayload\r\n0\r\nX-Check: ok\r\nremote_user: mallory\r\nREMOTE-USER: mallory\r\nx-custom-user: mallory\r\n\r\n", path, u.Host, session)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		conn.Close()
		seen, ok := up.take(path)
		if !ok || resp.StatusCode != http.StatusOK {
			t.Fatalf("raw %s: status %d, reached %v", path, resp.StatusCode, ok)
		}
		checkTrailers(t, "raw "+path, seen)
	}
}

func checkTrailers(t *testing.T, name string, seen seenRequest) {
	t.Helper()
	if seen.body != "payload" || seen.trailer.Get("X-Check") != "ok" {
		t.Errorf("%s: body %q, trailers %v: the request or its trailers did not arrive", name, seen.body, seen.trailer)
	}
	for k, vals := range seen.trailer {
		if strings.Contains(strings.Join(vals, ","), "mallory") {
			t.Errorf("%s: identity trailer %s: %q reached the upstream", name, k, vals)
		}
	}
}

// Two jit_auth directives with different matchers and headers on one
// site (each now runs on every request): each protects its subtree and
// sets its own headers, the one that runs second still finds the session
// after the first kept the cookie from the next handler, and neither
// strips what the other set.
func TestTwoPartialApplicationsOnOneSite(t *testing.T) {
	base, up, login := partialSite(t, `
	jit_auth /admin/* {
		header X-Custom-User {http.auth.user.id}
	}
	jit_auth /wiki/* {
		header X-Wiki-User {http.auth.user.email}
		header -Remote-Name
	}
	reverse_proxy {UPSTREAM}`)
	session := login()
	client := protocolClients()["HTTP/1.1"]
	for path, want := range map[string]map[string]string{
		"/public":  {},
		"/admin/x": {"Remote-User": "alice@example.com", "X-Custom-User": "alice@example.com", "Remote-Groups": "staff,wonderland", "Remote-Email": "alice@example.com", "Remote-Name": "Alice Liddell"},
		"/wiki/x":  {"Remote-User": "alice@example.com", "X-Wiki-User": "alice@example.com", "Remote-Groups": "staff,wonderland", "Remote-Email": "alice@example.com"},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept", "application/json")
		for _, h := range append(spoofed, "X-Wiki-User", "x-wiki-user") {
			req.Header[h] = []string{"mallory"}
		}
		req.Header["Cookie"] = []string{appCookiesBefore + "; jitauth_session=" + session + "; " + appCookiesAfter, appCookieLine2}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen, ok := up.take(path)
		if !ok || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, reached %v", path, resp.StatusCode, ok)
		}
		for _, bad := range identityLeft(seen.header, want) {
			t.Errorf("%s: %s", path, bad)
		}
		if got, w := seen.header.Values("X-Wiki-User"), want["X-Wiki-User"]; w == "" && len(got) != 0 || w != "" && (len(got) != 1 || got[0] != w) {
			t.Errorf("%s: X-Wiki-User = %q, want %q", path, got, w)
		}
		checkCookies(t, "HTTP/1.1", seen.header)
	}
}

// Caddy drops header names with "_" or "." unless a server expects them;
// where it lets them in, the module still removes identity headers under
// those spellings (CGI and PHP backends read them as the same variable).
func TestIdentityHeadersUnderscoreAndDotSpellings(t *testing.T) {
	base, up, login := partialSiteOpts(t, `
		expected_underscore_headers remote_user x_custom_user
		expected_dot_headers remote.groups`, `
	jit_auth /admin/* {
		header X-Custom-User {http.auth.user.id}
	}
	reverse_proxy {UPSTREAM}`)
	session := login()
	client := protocolClients()["HTTP/1.1"]
	for _, path := range []string{"/public", "/admin/x"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for _, h := range []string{"remote_user", "X_Custom_User", "Remote.Groups"} {
			req.Header[h] = []string{"mallory"}
		}
		req.Header.Set("Cookie", "jitauth_session="+session)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen, ok := up.take(path)
		if !ok || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, reached %v", path, resp.StatusCode, ok)
		}
		for name, vals := range seen.header {
			if strings.Contains(strings.Join(vals, ","), "mallory") {
				t.Errorf("%s: %s: %q reached the upstream", path, name, vals)
			}
		}
		if path == "/admin/x" && seen.header.Get("Remote-User") != "alice@example.com" {
			t.Errorf("%s: Remote-User = %q", path, seen.header.Get("Remote-User"))
		}
	}
}

// A site whose only jit_auth sits in a route that matches part of it,
// where the module cannot clean the rest (a site address with a path),
// is covered only there: loading it logs a warning that names the
// route. A site-level jit_auth with a matcher, or one in a handle block
// (the site's other requests are cleaned by a siteCleaner, see
// TestIdentityHeadersStrippedOutsideHandleBlocks), does not.
func TestWarnsWhenJITAuthCoversOnlyPartOfASite(t *testing.T) {
	for name, tc := range map[string]struct {
		address, site string
		warn          bool
	}{
		"site address with a path": {"/app/*", `
	jit_auth
	reverse_proxy {UPSTREAM}`, true},
		"handle block": {"", `
	handle /app/* {
		jit_auth
		reverse_proxy {UPSTREAM}
	}
	handle {
		reverse_proxy {UPSTREAM}
	}`, false},
		"site level with matcher": {"", `
	jit_auth /app/*
	reverse_proxy {UPSTREAM}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			logFile := dir + "/caddy.log"
			conns := "connection corp {\n oidc https://idp.example a b\n jit off\n}"
			caddyfile := fmt.Sprintf("{%s\n}\nhttp://localhost:%d%s {\n%s\n}\n", globalOptions(dir, conns), port, tc.address, strings.ReplaceAll(tc.site, "{UPSTREAM}", "127.0.0.1:9"))
			caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+logFile+"\n\t\tlevel WARN", 1)
			runCaddyfile(t, caddyfile)
			log := mustReadFile(t, logFile)
			warned := strings.Contains(log, "jit_auth runs only on the requests its route matches")
			if warned != tc.warn {
				t.Fatalf("warned %v, want %v; log:\n%s", warned, tc.warn, log)
			}
			if warned && !strings.Contains(log, fmt.Sprintf(`"route":"localhost:%d /app/*"`, port)) {
				t.Errorf("the warning does not name the route:\n%s", log)
			}
		})
	}
}

// S12: the {http.auth.user.*} placeholders carry the values the Remote-*
// headers carry, made safe for a header. The README has operators put
// them in `header_up`; Go's transport refuses a header value with a
// newline, so a display name or subject holding one at the provider
// would answer that user 502 on every request once signed in.
func TestIdentityPlaceholdersWithControlCharactersAreSafeInHeaderUp(t *testing.T) {
	s := startSiteOpts(t, siteOptions{jsonReplace: []string{
		`"X-Auth-Id":["{http.auth.user.id}"]`,
		`"X-Auth-Id":["{http.auth.user.id}"],"X-Auth-Name":["{http.auth.user.name}"],"X-Auth-Email":["{http.auth.user.email}"],"X-Auth-Subject":["{http.auth.user.subject}"]`,
	}})
	u := alice()
	u.claims["name"] = "Alice\nLiddell"
	u.sub = "alice\r\nsub"
	s.queue(u)
	b := newBrowser(t)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in, the first page: %d %s; want 200 from the upstream", resp.StatusCode, firstLine(body))
	}
	h := s.upstream.lastHeaders(t)
	if got := h.Get("X-Auth-Name"); got != "Alice Liddell" && got != "AliceLiddell" {
		t.Errorf("X-Auth-Name %q", got)
	}
	if got, want := h.Get("X-Auth-Name"), h.Get("Remote-Name"); got != want {
		t.Errorf("{http.auth.user.name} %q differs from Remote-Name %q", got, want)
	}
	if got := h.Get("X-Auth-Subject"); got != "alice  sub" {
		t.Errorf("X-Auth-Subject %q; want the subject with its controls as spaces", got)
	}
	if got := h.Get("X-Auth-Email"); got != "alice@example.com" {
		t.Errorf("X-Auth-Email %q", got)
	}
}
