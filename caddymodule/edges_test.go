package caddymodule_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// S6: plain HTTP gets development cookies only on a host that is this
// machine. On a catch-all http:// site, a public name that merely starts
// like a loopback address is refused with no cookie; real loopback
// literals and localhost sign in as before.
func TestPlainHTTPLoginOnlyOnLoopbackHosts(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, "connection corp {\n oidc "+cfg.Issuer+" "+cfg.ClientID+" "+cfg.ClientSecret+"\n jit\n}"), port, up.hostPort()))
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := func(host string) (*http.Response, string) {
		t.Helper()
		b := newBrowser(t)
		req, _ := http.NewRequest(http.MethodGet, addr+"/.jitauth/start/corp", nil)
		req.Host = host
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, host := range []string{
		"127.evil.example", fmt.Sprintf("127.evil.example:%d", port), "127.0.0.1.evil.example",
		"127.", "127.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "localhost.evil.example", "evil-localhost",
	} {
		resp, body := start(host)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "HTTPS required") || len(resp.Cookies()) != 0 {
			t.Errorf("Host %q: %d, cookies %v, want the HTTPS-required 400 and no cookie", host, resp.StatusCode, resp.Cookies())
		}
	}
	for _, host := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.3.4.5:%d", port), fmt.Sprintf("localhost:%d", port), fmt.Sprintf("app.localhost:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		resp, _ := start(host)
		if resp.StatusCode != http.StatusFound || len(resp.Cookies()) != 1 || !strings.HasPrefix(resp.Cookies()[0].Name, "jitauth_flow_") || resp.Cookies()[0].Secure {
			t.Errorf("Host %q: %d, cookies %v, want a plain-HTTP development login", host, resp.StatusCode, resp.Cookies())
		}
	}

	// A whole login on 127.0.0.1 still reaches the upstream.
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, visited := b.follow(addr+"/.jitauth/start/corp?rd=/hello", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "upstream saw alice") {
		t.Fatalf("login on 127.0.0.1: %d %q via %v", resp.StatusCode, body, visited)
	}
}

var logoutRDRE = regexp.MustCompile(`name="rd" value="([^"]*)"`)

// logout signs out as a user does: the confirmation page, then its form.
// It returns the form's answer (not followed).
func (b *browser) logout(base, rd string) (*http.Response, string) {
	b.t.Helper()
	page := base + "/.jitauth/logout"
	if rd != "" {
		page += "?rd=" + url.QueryEscape(rd)
	}
	resp, body := b.get(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/.jitauth/logout">`) {
		b.t.Fatalf("sign-out page: %d\n%s", resp.StatusCode, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no token on the sign-out page:\n%s", body)
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}}
	if m := logoutRDRE.FindStringSubmatch(body); m != nil {
		form.Set("rd", html.UnescapeString(m[1]))
	}
	return b.postRaw(base+"/.jitauth/logout", form)
}

// postRaw posts a form and returns the answer without following it.
func (b *browser) postRaw(rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	b.setCookies = append(b.setCookies, resp.Cookies()...)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// S7 without CSRF: a GET of the logout URL (a link, an image on another
// site) only shows a confirmation page; the session ends on a POST that
// carries this session's token, and on nothing else.
func TestLogoutNeedsTheSitesOwnForm(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	stolen := b.cookie(s.base, "jitauth_session")
	works := func() bool {
		r := newBrowser(t).do(http.MethodGet, s.base+"/", http.Header{"Cookie": {stolen.Name + "=" + stolen.Value}})
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}
	// Bob's token, to try on Alice's session.
	bob := newBrowser(t)
	s.queue(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true}})
	if resp, _ := s.login(bob, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's login: %d", resp.StatusCode)
	}
	_, bobPage := bob.get(s.base + "/.jitauth/logout")
	bobToken := html.UnescapeString(csrfRE.FindStringSubmatch(bobPage)[1])

	// A cross-site GET, with or without rd: a page with a button.
	for _, u := range []string{"/.jitauth/logout", "/.jitauth/logout?rd=/elsewhere"} {
		resp, body := b.get(s.base + u)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `method="post"`) || !strings.Contains(body, ">Sign out</button>") ||
			resp.Header.Get("Cache-Control") != "no-store" || len(resp.Cookies()) != 0 {
			t.Fatalf("GET %s: %d %v %s", u, resp.StatusCode, resp.Cookies(), body)
		}
	}
	if !works() {
		t.Fatal("a GET of the logout URL ended the session")
	}
	// A POST from elsewhere: no token, a wrong one, another session's.
	for name, form := range map[string]url.Values{
		"no token": {"rd": {"/"}}, "wrong token": {"csrf": {"guess"}}, "empty token": {"csrf": {""}}, "bob's token": {"csrf": {bobToken}},
	} {
		resp, body := b.postRaw(s.base+"/.jitauth/logout", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "still signed in") || len(resp.Cookies()) != 0 {
			t.Errorf("POST with %s: %d %v", name, resp.StatusCode, resp.Cookies())
		}
	}
	if !works() || strings.Contains(mustReadFile(t, s.logFile()), "user logged out") {
		t.Fatal("a forged POST ended the session")
	}

	// The page's own form ends it, and goes on to rd.
	resp, _ := b.logout(s.base, "/after?x=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after?x=1" {
		t.Fatalf("sign-out: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.cookie(s.base, "jitauth_session") != nil || works() {
		t.Fatal("the session survived its sign-out")
	}
	if !strings.Contains(mustReadFile(t, s.logFile()), "user logged out") {
		t.Error("no audit event for the sign-out")
	}
	// Bob was not signed out by any of this.
	if r, _ := bob.get(s.base + "/"); r.StatusCode != http.StatusOK {
		t.Errorf("bob: %d", r.StatusCode)
	}

	// Without a session the pages still work.
	anon := newBrowser(t)
	if resp, body := anon.get(s.base + "/.jitauth/logout"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out") {
		t.Errorf("GET without a session: %d %s", resp.StatusCode, body)
	}
	if resp, _ := anon.get(s.base + "/.jitauth/logout?rd=/next"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/next" {
		t.Errorf("GET without a session, rd: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := anon.postRaw(s.base+"/.jitauth/logout", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out") {
		t.Errorf("POST without a session: %d %s", resp.StatusCode, body)
	}
}

// Every answer the module gives itself (pages, errors, redirects, JSON)
// is about one browser's sign-in and must never be cached: walk them all
// through a real Caddy, including the 403 a signed-in user meets on
// every request of a site that does not admit them.
func TestEveryModuleAnswerIsNoStore(t *testing.T) {
	check := func(t *testing.T, what string, resp *http.Response, wantStatus int) {
		t.Helper()
		if resp.StatusCode != wantStatus {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, wantStatus)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", what, resp.StatusCode, cc)
		}
	}
	t.Run("sign-in pages", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{corpJIT: "mode consent", handlerBlock: "\t\tallow email_domain example.com"})
		b := newBrowser(t)
		for _, c := range []struct {
			method, path string
			hdr          http.Header
			want         int
		}{
			{http.MethodGet, "/.jitauth/login", nil, http.StatusOK},
			{http.MethodGet, "/.jitauth/nope", nil, http.StatusNotFound},
			{http.MethodPut, "/.jitauth/login", nil, http.StatusMethodNotAllowed},
			{http.MethodGet, "/.jitauth/start/nope", nil, http.StatusNotFound},
			{http.MethodGet, "/.jitauth/start/corp", nil, http.StatusFound},
			{http.MethodGet, "/.jitauth/callback/corp?state=x&code=y", nil, http.StatusBadRequest},
			{http.MethodGet, "/.jitauth/consent", nil, http.StatusBadRequest},
			{http.MethodGet, "/.jitauth/mfa", nil, http.StatusFound},
			{http.MethodGet, "/.jitauth/logout", nil, http.StatusOK},
			{http.MethodGet, "/.jitauth/health", nil, http.StatusOK},
			{http.MethodGet, "/page", nil, http.StatusFound},
			{http.MethodGet, "/api", http.Header{"Accept": {"application/json"}}, http.StatusUnauthorized},
		} {
			resp := b.do(c.method, s.base+c.path, c.hdr)
			resp.Body.Close()
			check(t, c.method+" "+c.path, resp, c.want)
		}

		// The consent page.
		s.queue(alice())
		resp, page := s.login(b, "corp", "/")
		check(t, "consent page", resp, http.StatusOK)
		resp, _ = b.postRaw(s.base+"/.jitauth/consent", url.Values{"action": {"allow"}, "csrf": {"guess"}})
		check(t, "consent form with a wrong token", resp, http.StatusBadRequest)
		if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("allow: %d", resp.StatusCode)
		}
		resp, _ = b.postRaw(s.base+"/.jitauth/logout", url.Values{"csrf": {"guess"}})
		check(t, "forged sign-out", resp, http.StatusForbidden)
		resp, _ = b.logout(s.base, "")
		check(t, "sign-out", resp, http.StatusOK)

		// Refused at login by the allow rules.
		s.queue(&oidcUser{sub: "mallory", claims: map[string]any{"email": "mallory@evil.example", "email_verified": true}})
		resp, _ = s.login(newBrowser(t), "partner", "/")
		check(t, "login refused by allow rules", resp, http.StatusForbidden)

		// Refused on every request: a session for another application.
		now := time.Now()
		other := sealSession(t, testHashKey, testBlockKey, caddymodule.Session{
			ID: "0123456789abcdef0123456789abcdef", Username: "mallory", Email: "mallory@evil.example", EmailVerified: true,
			Connection: "partner", Subject: "m", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
		})
		resp = newBrowser(t).do(http.MethodGet, s.base+"/", http.Header{"Cookie": {"jitauth_session=" + other}})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, "Access denied on a request", resp, http.StatusForbidden)
		if !strings.Contains(string(body), "Access denied") {
			t.Errorf("403 page: %s", body)
		}
	})
	t.Run("second factor", func(t *testing.T) {
		s := mfaSite(t, siteOptions{})
		b := newBrowser(t)
		s.queue(alice())
		resp, page := s.login(b, "corp", "/secret")
		check(t, "MFA enrolment page", resp, http.StatusOK)
		resp, _ = s.submitCode(b, page, "000000")
		check(t, "wrong enrolment code", resp, http.StatusBadRequest)
		resp = b.do(http.MethodGet, s.base+"/secret", http.Header{"Accept": {"application/json"}})
		resp.Body.Close()
		check(t, "second factor required (JSON)", resp, http.StatusUnauthorized)
		resp = b.do(http.MethodGet, s.base+"/secret", nil)
		resp.Body.Close()
		check(t, "second factor required (navigation)", resp, http.StatusFound)
	})
}

// The consent page lists the local roles the account will hold, exactly
// those that are then stored.
func TestConsentPageListsTheRolesStored(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent\n\t\t\t\trole admin from_group wonderland\n\t\t\t\trole member\n\t\t\t\trole ops from_group nobody"})
	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/")
	m := regexp.MustCompile(`<dt>Roles</dt><dd>([^<]*)</dd>`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("consent page: %d, no roles listed:\n%s", resp.StatusCode, page)
	}
	shown := strings.Split(m[1], ", ")
	slices.Sort(shown)
	if !slices.Equal(shown, []string{"admin", "member"}) {
		t.Errorf("consent page lists roles %q, want admin and member", m[1])
	}
	if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("allow: %d", resp.StatusCode)
	}
	users := allUsers(t, openStore(t, s.dir))
	if len(users) != 1 || !slices.Equal(users[0].Roles(), shown) {
		t.Fatalf("stored users %+v, want one with roles %v", users, shown)
	}

	// Bob is not in the wonderland group: member only.
	s.queue(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true}})
	if _, page := s.login(newBrowser(t), "corp", "/"); strings.Contains(page, "<dt>Roles</dt><dd>admin") || !strings.Contains(page, "<dt>Roles</dt><dd>member</dd>") {
		t.Errorf("bob's consent page:\n%s", page)
	}
}

// The rate-limit page says how long to wait in words that match
// Retry-After: "1 second", "2 seconds", never "1 seconds".
func TestTOTPWaitIsWrittenRight(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	secret, _, _ := s.enrol(alice())
	b, page := s.signInToMFA(alice())
	waitRE := regexp.MustCompile(`Wait (\d+ seconds?), then try again\.`)
	seen := 0
	for i := 1; i <= 6; i++ {
		resp, body := s.submitCode(b, page, wrongCode(t, secret))
		page = body
		if resp.StatusCode != http.StatusTooManyRequests {
			continue
		}
		seen++
		want := resp.Header.Get("Retry-After") + " seconds"
		if want == "1 seconds" {
			want = "1 second"
		}
		if m := waitRE.FindStringSubmatch(body); m == nil || m[1] != want {
			t.Errorf("429 page says %v, want \"Wait %s, then try again.\" (Retry-After %s)", m, want, resp.Header.Get("Retry-After"))
		}
	}
	if seen == 0 {
		t.Fatal("no wrong code was rate-limited")
	}
}

// The README's advice holds: a deferred site-level header carries the
// identity placeholders (a plain one runs before jit_auth).
func TestDeferredHeaderSeesIdentityPlaceholders(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	header >X-User {http.auth.user.id}
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, "connection corp {\n oidc "+cfg.Issuer+" "+cfg.ClientID+" "+cfg.ClientSecret+"\n jit\n}"), port, up.hostPort()))
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, _ := b.follow(fmt.Sprintf("http://localhost:%d/.jitauth/start/corp", port), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("X-User"), strings.TrimPrefix(body, "upstream saw "); got != want || got == "" {
		t.Errorf("deferred header X-User %q, want the user %q", got, want)
	}
}
