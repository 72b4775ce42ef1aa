package caddymodule_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// S1: client copies of identity headers never reach the upstream, in
// any case or "_"/"-" spelling, and real values replace them.
func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	// A dropped default header and a renamed one must be stripped too:
	// nothing overwrites them.
	s := startSiteWith(t, `
		header -Remote-Email
		header X-Forwarded-User {http.auth.user.id}`)
	for _, conn := range []string{"corp", "partner"} {
		t.Run(conn, func(t *testing.T) {
			b := newBrowser(t)
			s.queue(alice())
			if resp, _ := s.login(b, conn, "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			spoof := http.Header{}
			for _, name := range []string{"Remote-User", "remote_user", "REMOTE-USER", "Remote_User", "rEmOtE-eMaIl", "Remote-Email", "remote_groups", "REMOTE_NAME", "x-forwarded-user", "X_Forwarded_User"} {
				spoof[name] = []string{"mallory"}
			}
			resp := b.do(http.MethodGet, s.base+"/", spoof)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := s.upstream.lastHeaders(t)
			for name, vals := range h {
				for _, v := range vals {
					if strings.Contains(v, "mallory") {
						t.Errorf("spoofed header %s: %q reached the upstream", name, v)
					}
				}
			}
			if got := h.Values("Remote-User"); len(got) != 1 || got[0] != "alice@example.com" {
				t.Errorf("Remote-User = %q", got)
			}
			if got := h.Values("X-Forwarded-User"); len(got) != 1 || got[0] != "alice@example.com" {
				t.Errorf("X-Forwarded-User = %q", got)
			}
			if got := h.Values("Remote-Email"); len(got) != 0 {
				t.Errorf("dropped header Remote-Email = %q", got)
			}
		})
	}
}

// S1 on the wire: raw header spellings Go's client would normalise.
func TestSpoofedHeadersRawWire(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "partner", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	cookie := b.cookie(s.base, "jitauth_session")
	u, _ := url.Parse(s.base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /raw HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\nremote_user: mallory\r\nREMOTE-USER: mallory\r\nremote-email: mallory@evil\r\nRemote_Groups: admins\r\nConnection: close\r\n\r\n", u.Host, cookie.Name, cookie.Value)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	for name, vals := range h {
		for _, v := range vals {
			if strings.Contains(v, "mallory") || v == "admins" {
				t.Errorf("spoofed header %s: %q reached the upstream", name, v)
			}
		}
	}
}

func TestNonBrowserRequestsGet401JSON(t *testing.T) {
	s := startSite(t)
	cases := []struct {
		name   string
		method string
		hdr    map[string]string
	}{
		{"json accept", http.MethodGet, map[string]string{"Accept": "application/json"}},
		{"xhr", http.MethodGet, map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}},
		{"fetch", http.MethodGet, map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}},
		{"post form", http.MethodPost, map[string]string{"Accept": "text/html"}},
		{"curl", http.MethodGet, map[string]string{"Accept": "*/*"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, s.base+"/api/things", nil)
			for k, v := range c.hdr {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !strings.Contains(string(body), `"error":"authentication required"`) {
				t.Fatalf("body %s (%s)", body, ct)
			}
		})
	}
	if s.upstream.hits != 0 {
		t.Fatal("an unauthenticated request reached the upstream")
	}
}

// sealSession seals a session with the test keys or others.
func sealSession(t *testing.T, hashKey, blockKey string, sess caddymodule.Session) string {
	t.Helper()
	h, _ := base64.StdEncoding.DecodeString(hashKey)
	bk, _ := base64.StdEncoding.DecodeString(blockKey)
	sc := securecookie.New(h, bk)
	sc.SetSerializer(securecookie.JSONEncoder{})
	v, err := sc.Encode("jitauth_session", sess)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTamperedOrExpiredSessionIsNoSession(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	good := b.cookie(s.base, "jitauth_session").Value
	now := time.Now()
	valid := caddymodule.Session{ID: "0123456789abcdef0123456789abcdef", Username: "mallory", Connection: "corp", Subject: "x", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	expired := valid
	expired.IssuedAt, expired.ExpiresAt = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	unknownConn := valid
	unknownConn.Connection = "nope"
	otherHash := base64.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(64))
	otherBlock := base64.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(32))

	flip := []byte(good)
	flip[len(flip)/2] ^= 0x01
	cases := map[string]string{
		"flipped byte":        string(flip),
		"truncated":           good[:len(good)-10],
		"garbage":             "not-a-cookie",
		"empty":               "",
		"oversized":           strings.Repeat("A", 8000),
		"expired":             sealSession(t, testHashKey, testBlockKey, expired),
		"foreign keys":        sealSession(t, otherHash, otherBlock, valid),
		"unknown connection":  sealSession(t, testHashKey, testBlockKey, unknownConn),
		"base64 of plaintext": base64.URLEncoding.EncodeToString([]byte(`{"sid":"x","u":"mallory","c":"corp","exp":9999999999}`)),
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			hdr := http.Header{"Cookie": {"jitauth_session=" + value}}
			resp := b.do(http.MethodGet, s.base+"/private", hdr)
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/.jitauth/") {
				t.Fatalf("status %d Location %q, want a redirect to log in", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	// The control: a session sealed with the configured keys works, so
	// the cases above fail for the reason they name.
	resp := b.do(http.MethodGet, s.base+"/private", http.Header{"Cookie": {"jitauth_session=" + sealSession(t, testHashKey, testBlockKey, valid)}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.upstream.lastHeaders(t).Get("Remote-User") != "mallory" {
		t.Fatalf("control session refused: %d", resp.StatusCode)
	}
}

// startOnly runs the login up to the provider's redirect back to our
// callback, and returns that callback URL without visiting it.
func (s *site) startOnly(b *browser, conn, rd string) *url.URL {
	s.t.Helper()
	resp, _, _ := b.follow(s.base+"/.jitauth/start/"+conn+"?rd="+url.QueryEscape(rd), func(u *url.URL) bool {
		return strings.Contains(u.Path, "/.jitauth/callback/")
	})
	loc, err := resp.Location()
	if err != nil {
		s.t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
	}
	return loc
}

// flowCookieLine is a Cookie line of the flow cookies b holds for cb.
func flowCookieLine(b *browser, cb *url.URL) string {
	var pairs []string
	for _, c := range b.client.Jar.Cookies(cb) {
		if strings.HasPrefix(c.Name, "jitauth_flow_") {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	return strings.Join(pairs, "; ")
}

func TestCallbackRefusesBadStateReplayAndErrors(t *testing.T) {
	s := startSite(t)

	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		s.queue(alice())
		cb := s.startOnly(b, "corp", "/")
		// Keep the flow cookie as an attacker with a copy would.
		flow := flowCookieLine(b, cb)
		resp, _, _ := b.follow(cb.String(), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		replay := newBrowser(t)
		r := replay.do(http.MethodGet, cb.String(), http.Header{"Cookie": {flow}})
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest || replay.lastSetCookie("jitauth_session") != nil {
			t.Fatalf("replay: status %d, session %v", r.StatusCode, replay.lastSetCookie("jitauth_session"))
		}
	})

	// Anyone can start logins and send junk answers to their own
	// callbacks. Were a refused answer's state kept as used, a flood of
	// them would fill the replay set, and every login would then be
	// refused as a replay until they expired; so a refused answer leaves
	// its state unused, and the provider's real answer still completes.
	for name, junk := range map[string]func(url.Values){
		"forged code":    func(q url.Values) { q.Set("code", "forged") },
		"provider error": func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") },
	} {
		t.Run("refused answer ("+name+") does not use up the state", func(t *testing.T) {
			b := newBrowser(t)
			s.queue(alice())
			cb := s.startOnly(b, "corp", "/")
			flow := http.Header{"Cookie": {flowCookieLine(b, cb)}}
			bad := *cb
			q := bad.Query()
			junk(q)
			bad.RawQuery = q.Encode()
			r := b.do(http.MethodGet, bad.String(), flow)
			r.Body.Close()
			if r.StatusCode < 400 || b.lastSetCookie("jitauth_session") != nil {
				t.Fatalf("junk answer: status %d, session %v", r.StatusCode, b.lastSetCookie("jitauth_session"))
			}
			r = b.do(http.MethodGet, cb.String(), flow)
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusFound || b.lastSetCookie("jitauth_session") == nil {
				t.Fatalf("the provider's answer after a junk one: status %d, no session\n%s", r.StatusCode, body)
			}
		})
	}

	t.Run("state from another browser", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		s.queue(alice())
		cb := s.startOnly(attacker, "corp", "/")
		resp, _ := victim.get(cb.String())
		if resp.StatusCode != http.StatusBadRequest || victim.cookie(s.base, "jitauth_session") != nil {
			t.Fatalf("login CSRF: status %d", resp.StatusCode)
		}
	})

	for name, mutate := range map[string]func(url.Values){
		"missing state":  func(q url.Values) { q.Del("state") },
		"wrong state":    func(q url.Values) { q.Set("state", "AAAA"+q.Get("state")[4:]) },
		"missing code":   func(q url.Values) { q.Del("code") },
		"provider error": func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") },
		"bad code":       func(q url.Values) { q.Set("code", "forged") },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			s.queue(alice())
			cb := s.startOnly(b, "corp", "/")
			q := cb.Query()
			mutate(q)
			cb.RawQuery = q.Encode()
			resp, body := b.get(cb.String())
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatal("a session was issued")
			}
		})
	}

	t.Run("callback for another connection", func(t *testing.T) {
		b := newBrowser(t)
		s.queue(alice())
		cb := s.startOnly(b, "corp", "/")
		cb.Path = strings.Replace(cb.Path, "/corp", "/partner", 1)
		resp, _ := b.get(cb.String())
		if resp.StatusCode != http.StatusBadRequest || b.cookie(s.base, "jitauth_session") != nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// S2: whatever return URL the login starts with, it ends on this site.
func TestReturnURLAttacksNeverLeaveTheSite(t *testing.T) {
	s := startSite(t)
	attacks := []string{
		"//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
		"http:evil.example", "javascript:alert(1)", "/%2F%2Fevil.example", "/%2fevil.example",
		"/%5Cevil.example", "%2F%2Fevil.example", "/\t/evil.example", "/\n/evil.example",
		"// evil.example", "/ /evil.example", "///evil.example", "//user@evil.example",
		"https:/\\evil.example", "/%09/evil.example", " //evil.example", "/.//evil.example/%2e%2e",
		"evil.example", "//evil.example/%2F..", "/\u3000/evil.example",
	}
	for _, rd := range attacks {
		t.Run(rd, func(t *testing.T) {
			b := newBrowser(t)
			s.queue(alice())
			resp, _, visited := b.follow(s.base+"/.jitauth/start/corp?rd="+url.QueryEscape(rd), nil)
			final := resp.Request.URL
			if final.Host != strings.TrimPrefix(s.base, "http://") {
				t.Fatalf("left the site: %s (visited %v)", final, visited)
			}
			last := visited[len(visited)-1]
			if !strings.HasPrefix(last, s.base+"/") || strings.HasPrefix(last, s.base+"//") {
				t.Fatalf("landed on %q", last)
			}
			// Logout follows the same rule: through the sign-out page's
			// form, a form posted with rd, and a GET without a session.
			signedOut, _ := b.logout(s.base, rd)
			afterForm, _ := b.postRaw(s.base+"/.jitauth/logout", url.Values{"rd": {rd}})
			noSession := b.do(http.MethodGet, s.base+"/.jitauth/logout?rd="+url.QueryEscape(rd), nil)
			noSession.Body.Close()
			for _, r := range []*http.Response{signedOut, afterForm, noSession} {
				if loc := r.Header.Get("Location"); loc != "" {
					u, err := url.Parse(loc)
					if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(loc, "//") || strings.Contains(loc, "\\") {
						t.Fatalf("logout redirected to %q", loc)
					}
				}
			}
		})
	}
}

// S3: forwarded headers from an untrusted peer do not steer callbacks.
func TestForwardedHeadersFromUntrustedPeerIgnored(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	resp := b.do(http.MethodGet, s.base+"/.jitauth/start/corp", http.Header{
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Proto": {"https"},
	})
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ru := loc.Query().Get("redirect_uri"); ru != s.base+"/.jitauth/callback/corp" {
		t.Fatalf("redirect_uri %q built from untrusted forwarded headers", ru)
	}
}

// S7: logout revokes the session server-side.
func TestLogoutRevokesCopiedCookie(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	stolen := b.cookie(s.base, "jitauth_session")
	resp, body := b.logout(s.base, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if b.cookie(s.base, "jitauth_session") != nil {
		t.Fatal("logout left the session cookie in the browser")
	}
	r := newBrowser(t).do(http.MethodGet, s.base+"/", http.Header{"Cookie": {stolen.Name + "=" + stolen.Value}})
	r.Body.Close()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("a cookie copied before logout still works: %d", r.StatusCode)
	}
}

// S4: the flow cookie is sealed, short-lived and bound to this login.
func TestFlowCookieAttributes(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	resp := b.do(http.MethodGet, s.base+"/.jitauth/start/corp", nil)
	resp.Body.Close()
	loc, _ := resp.Location()
	q := loc.Query()
	if len(q.Get("state")) < 43 || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization request lacks state/PKCE/nonce: %s", loc)
	}
	var flow *http.Cookie
	for _, c := range b.setCookies {
		if strings.HasPrefix(c.Name, "jitauth_flow_") {
			flow = c
		}
	}
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.MaxAge <= 0 || flow.MaxAge > 600 {
		t.Fatalf("flow cookie: %+v", flow)
	}
	for _, secret := range []string{q.Get("state"), q.Get("nonce")} {
		if strings.Contains(flow.Value, secret) {
			t.Fatal("flow cookie carries login state in the clear")
		}
	}
}

// Logins in progress are bounded per browser: every start sets a flow
// cookie of its own for ten minutes, so tabs restored at once, or going
// back and forth between the site and the provider, would otherwise
// grow the Cookie header past what a proxy in front accepts and lock the
// browser out of the site (oauth2-proxy #2163). Beyond five, a start
// drops the oldest; the newest logins still complete.
func TestLoginsInProgressAreBounded(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	var callbacks []*url.URL
	for i := range 12 {
		s.queue(alice())
		callbacks = append(callbacks, s.startOnly(b, "corp", fmt.Sprintf("/tab/%d", i)))
	}
	site, _ := url.Parse(s.base)
	flows, header := 0, 0
	for _, c := range b.client.Jar.Cookies(site) {
		header += len(c.Name) + len(c.Value) + 2
		if strings.HasPrefix(c.Name, "jitauth_flow_") {
			flows++
		}
	}
	if flows != 5 || header > 4<<10 {
		t.Fatalf("after 12 starts the browser holds %d flow cookies (%d bytes of Cookie header), want 5", flows, header)
	}
	// The oldest login's flow is gone: its callback says to start again.
	resp, body := b.get(callbacks[0].String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Start again") {
		t.Fatalf("the dropped login's callback: %d\n%s", resp.StatusCode, body)
	}
	// The newest ones still complete, each to its own page.
	for _, i := range []int{11, 7} {
		resp, _ := b.get(callbacks[i].String())
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != fmt.Sprintf("/tab/%d", i) {
			t.Fatalf("login %d: %d to %q", i, resp.StatusCode, loc)
		}
	}
}

// Starts sent at the same moment (a browser restoring many tabs) each
// find no flow before them, so the bound applies at the next callback:
// it keeps the five newest of the others.
func TestCallbackTrimsFlowsStartedTogether(t *testing.T) {
	s := startSite(t)
	site, _ := url.Parse(s.base)
	jar, _ := cookiejar.New(nil)
	var callbacks []*url.URL
	for i := range 8 {
		tab := newBrowser(t)
		s.queue(alice())
		cb := s.startOnly(tab, "corp", fmt.Sprintf("/tab/%d", i))
		callbacks = append(callbacks, cb)
		jar.SetCookies(site, tab.client.Jar.Cookies(site))
	}
	b := newBrowser(t)
	b.client.Jar = jar
	flows := func() int {
		n := 0
		for _, c := range jar.Cookies(site) {
			if strings.HasPrefix(c.Name, "jitauth_flow_") {
				n++
			}
		}
		return n
	}
	if n := flows(); n != 8 {
		t.Fatalf("the restored tabs hold %d flow cookies, want 8", n)
	}
	resp, _ := b.get(callbacks[7].String())
	if resp.StatusCode != http.StatusFound || b.cookie(s.base, "jitauth_session") == nil {
		t.Fatalf("the newest login: %d", resp.StatusCode)
	}
	if n := flows(); n != 5 {
		t.Fatalf("after a callback the browser holds %d flow cookies, want the 5 newest others", n)
	}
	if resp, _ := b.get(callbacks[6].String()); resp.StatusCode != http.StatusFound {
		t.Fatalf("the next newest login: %d", resp.StatusCode)
	}
	if resp, body := b.get(callbacks[0].String()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Start again") {
		t.Fatalf("the oldest login: %d", resp.StatusCode)
	}
}

// S10 end to end: an application's allow rules refuse a user at login
// (403, no session) and refuse a session made for another application
// on the same host.
func TestAllowRulesRefuseAtLoginAndOnEveryRequest(t *testing.T) {
	s := startSiteWith(t, "\t\tallow email_domain example.com\n\t\tallow group admins")

	// Alice has a verified example.com address: admitted.
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice: %d", resp.StatusCode)
	}

	for name, claims := range map[string]map[string]any{
		"other domain":          {"email": "mallory@evil.example", "email_verified": true},
		"unverified":            {"email": "mallory@example.com", "email_verified": false},
		"no email_verified":     {"email": "mallory@example.com"},
		"two at signs":          {"email": "mallory@evil@example.com", "email_verified": true},
		"look-alike domain":     {"email": "mallory@example.com.evil.example", "email_verified": true},
		"group differs in case": {"email": "m@evil.example", "email_verified": true, "groups": []string{"Admins"}},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			s.queue(&oidcUser{sub: "mallory-" + name, claims: claims})
			resp, body := s.login(b, "partner", "/")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not admit") {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatal("a refused user got a session")
			}
		})
	}

	// A session sealed for another application on this host (same keys):
	// valid, but this application's rules refuse it on every request.
	now := time.Now()
	other := sealSession(t, testHashKey, testBlockKey, caddymodule.Session{
		ID: "0123456789abcdef0123456789abcdef", Username: "mallory", Email: "mallory@evil.example", EmailVerified: true,
		Connection: "partner", Subject: "m", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	})
	hits := s.upstream.hits
	resp := newBrowser(t).do(http.MethodGet, s.base+"/", http.Header{"Cookie": {"jitauth_session=" + other}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || s.upstream.hits != hits {
		t.Fatalf("foreign session: %d, upstream hits %d -> %d", resp.StatusCode, hits, s.upstream.hits)
	}
}

// A browser that sends a form after its session ended gets a page, not
// raw JSON: it says what happened and its sign-in link returns to the
// page the form was on (the Referer, when it is on this site). Nothing
// reaches the upstream.
func TestFormSentWithoutASessionGetsAPage(t *testing.T) {
	s := startSite(t)
	post := func(referer string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/notes/save", strings.NewReader("text=hello"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for referer, wantLink := range map[string]string{
		s.base + "/notes/edit?id=4":      `href="/.jitauth/login?rd=%2Fnotes%2Fedit%3Fid%3D4"`,
		"https://evil.test/notes/edit":   `href="/.jitauth/login"`,
		"":                               `href="/.jitauth/login"`,
		s.base + "//evil.test/notes":     `href="/.jitauth/login"`,
		"http://localhost.evil.test/x/y": `href="/.jitauth/login"`,
	} {
		resp, body := post(referer)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(body, "Sign in again") {
			t.Errorf("Referer %q: %d %s %q:\n%s", referer, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), body)
		}
		if !strings.Contains(body, wantLink) {
			t.Errorf("Referer %q: the page lacks %s:\n%s", referer, wantLink, body)
		}
	}
	if s.upstream.hits != 0 {
		t.Fatal("a form without a session reached the upstream")
	}

	// The link leads back to the form's page once signed in.
	b := newBrowser(t)
	s.queue(alice())
	resp, _, _ := b.follow(s.base+"/.jitauth/start/corp?rd=%2Fnotes%2Fedit%3Fid%3D4", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/notes/edit?id=4" {
		t.Errorf("after signing in: %d at %s, want the form's page", resp.StatusCode, resp.Request.URL.RequestURI())
	}
}
