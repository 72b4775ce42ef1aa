package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// floodRequests is how many times the tests below repeat a request
// anyone can send.
const floodRequests = 50

// replayCallback sends the callback query q with exactly the cookies in
// jar, as a script replaying one captured flow cookie would (a browser
// drops the flow cookie the first answer expires).
func replayCallback(t *testing.T, base string, jar []*http.Cookie, q url.Values) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/.jitauth/callback/corp?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range jar {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// levelCount counts the log lines at level whose message holds msg.
func levelCount(t *testing.T, file, level, msg string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(mustReadFile(t, file), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["level"] != level {
			continue
		}
		if m, _ := e["msg"].(string); strings.Contains(m, msg) {
			n++
		}
	}
	return n
}

// An error answer on the callback is given its state back (so that
// refusals cannot fill the replay set), so one flow cookie, replayed with
// ?error=invalid_client and the same state, was refused again each time:
// one WARN and one "login refused" (a login_failed Caddy event) per
// request, for as long as the flow lasts, from anyone who can start a
// login. The refusal of one login state is audited once, whatever the
// answer replayed (a relayed error, the user's "no", an answer without a
// code); and the warning about answers through the browser is spaced out
// per error code, however many logins an attacker starts for it.
func TestReplayedCallbackRefusalIsLoggedOnce(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true})
	before := scrapeMetrics(t, admin)

	b := newBrowser(t)
	state := startLogin(t, b, s.base, "corp")
	jar := b.client.Jar.Cookies(mustParseURL(t, s.base))
	if len(jar) == 0 {
		t.Fatal("no flow cookie after starting a login")
	}
	answers := []url.Values{
		{"state": {state}, "error": {"invalid_client"}, "error_description": {"FLOOD"}},
		{"state": {state}, "error": {"redirect_uri_mismatch"}, "error_description": {"FLOOD"}},
		{"state": {state}, "error": {"access_denied"}},
		{"state": {state}, "error": {"server_error"}},
		{"state": {state}},
	}
	for i := range floodRequests {
		if code := replayCallback(t, s.base, jar, answers[i%len(answers)]); code >= 500 || code < 400 {
			t.Fatalf("replay %d: status %d, want a refusal", i, code)
		}
	}
	// Audited once per kind of refusal (refusalKind): the answers above
	// are of three, relayed to the browser, denied, and rejected (no code).
	const kinds = 3
	refusals := len(logEntries(t, s.logFile(), "login refused")) + len(logEntries(t, s.logFile(), "login failed"))
	if refusals != kinds {
		t.Errorf("%d audit lines (login refused or failed) for %d replays of one flow cookie, want %d (one per kind of refusal)", refusals, floodRequests, kinds)
	}
	after := scrapeMetrics(t, admin)
	for _, outcome := range []string{"refused", "failed"} {
		key := `jit_auth_logins_total{connection="corp",outcome="` + outcome + `"}`
		if got := after[key] - before[key]; got > kinds {
			t.Errorf("%s went up by %v for %d replays of one flow cookie", key, got, floodRequests)
		}
	}

	// Logins of one's own, each answered invalid_client: each refusal is
	// audited (each is a login), the warning is not written for each.
	for i := range floodRequests {
		b := newBrowser(t)
		state := startLogin(t, b, s.base, "corp")
		resp, _ := b.get(s.base + "/.jitauth/callback/corp?" + url.Values{"state": {state}, "error": {"invalid_client"}, "error_description": {"FLOOD"}}.Encode())
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login %d: status %d, want 401", i, resp.StatusCode)
		}
	}
	if n := levelCount(t, s.logFile(), "warn", "came through the browser"); n > 2 {
		t.Errorf("%d warnings about error answers through the browser for %d requests within seconds (two codes); want at most 2", n, 2*floodRequests)
	}
	if n := levelCount(t, s.logFile(), "error", ""); n != 0 {
		t.Errorf("%d ERROR lines from anonymous callbacks", n)
	}
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The origin a sign-in starts on is the one the request's Host names,
// which any client writes: on a site without a host whose connection
// has a redirect_url, every start with another Host wrote a WARN
// telling operators their configuration was wrong, one per request. The
// first is written, the others within logSpacingInterval are counted.
func TestStartOnAnotherOriginWarnsSpacedOut(t *testing.T) {
	idp := startMockOIDC(t)
	p := freePort(t)
	caddyfile, logFile := redirectURLConfig(t, idp, fmt.Sprintf("http://localhost:%d/.jitauth/callback/corp", p), "",
		fmt.Sprintf("http://:%d {\n\tjit_auth\n\treverse_proxy %%[1]s\n}\n", p))
	runCaddyfile(t, caddyfile)
	for i := range floodRequests {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/.jitauth/start/corp", p), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = fmt.Sprintf("127.0.0.%d:%d", 1+i, p) // plain HTTP: loopback names only
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("start %d on another origin: %d, want 500", i, resp.StatusCode)
		}
	}
	if n := levelCount(t, logFile, "warn", "not redirect_url's"); n != 1 {
		t.Errorf("%d warnings for %d starts on made-up origins within seconds, want 1", n, floodRequests)
	}
	if n := len(logEntries(t, logFile, "login failed")); n != 1 {
		t.Errorf("%d audit lines for %d starts on made-up origins within seconds, want 1", n, floodRequests)
	}
}

// A return path too long to carry through the sign-in is dropped, and
// the log says so: anyone can start logins with 8 KiB of random
// characters in rd, so the line is not written once per start.
func TestLongReturnPathWarnsSpacedOut(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
	rng := rand.New(rand.NewSource(1))
	for i := range floodRequests {
		var sb strings.Builder
		sb.WriteString("/x?t=")
		for sb.Len() < 8<<10 {
			sb.WriteByte(alphabet[rng.Intn(len(alphabet))])
		}
		resp, body := newBrowser(t).get(s.base + "/.jitauth/start/corp?" + url.Values{"rd": {sb.String()}}.Encode())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("start %d with a long return path: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := levelCount(t, s.logFile(), "warn", "too long to carry through the sign-in"); n != 1 {
		t.Errorf("%d warnings for %d starts with long return paths within seconds, want 1", n, floodRequests)
	}
}

// A session cookie past its idle timeout is no session; it stays valid
// otherwise until the session expires, and each request that carried it
// wrote the audit line "session ended: idle timeout" again: a page's
// assets, a tab polling, or a script with a copy of the cookie, as often
// as it likes, for the whole session_lifetime. The end of one cookie's
// session is audited once.
func TestIdleSessionEndIsAuditedOnce(t *testing.T) {
	s := startSiteOpts(t, siteOptions{handlerBlock: "\t\tidle_timeout 1s\n", auditLog: true})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	cookie := b.cookie(s.base, "jitauth_session").Value
	time.Sleep(1500 * time.Millisecond)
	for i := range floodRequests {
		resp := newBrowser(t).do(http.MethodGet, s.base+"/poll", http.Header{"Cookie": {"jitauth_session=" + cookie}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("request %d with an idle cookie: %d, want the way to sign in", i, resp.StatusCode)
		}
	}
	if n := len(logEntries(t, s.logFile(), "session ended: idle timeout")); n != 1 {
		t.Errorf("%d audit lines \"session ended: idle timeout\" for %d requests with one idle cookie, want 1", n, floodRequests)
	}
}

// Past three wrong codes the second factor asks the user to wait, and
// every code sent meanwhile is refused without being checked: each such
// request wrote the audit line "totp attempt refused: too many wrong
// codes", so one session before its second factor (anyone who can sign
// in at the provider as that user) could write one per request for the
// whole wait, up to five minutes at a time. One wait is audited once.
func TestTOTPWaitIsAuditedOncePerWait(t *testing.T) {
	s := mfaSite(t, siteOptions{auditLog: true})
	secret, _, _ := s.enrol(alice())
	b, page := s.signInToMFA(alice())
	for i := 1; i <= 3; i++ {
		resp, body := s.submitCode(b, page, wrongCode(t, secret))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d, want 401", i, resp.StatusCode)
		}
		page = body
	}
	throttled := 0
	for range floodRequests {
		resp, body := s.submitCode(b, page, wrongCode(t, secret))
		if resp.StatusCode == http.StatusTooManyRequests {
			throttled++
		}
		page = body
	}
	if throttled < floodRequests/2 {
		t.Fatalf("%d of %d codes refused for the wait, want most", throttled, floodRequests)
	}
	// The first wait is a second: a slow machine may see a second one
	// begin, and a third.
	if n := len(logEntries(t, s.logFile(), "totp attempt refused: too many wrong codes")); n > 3 {
		t.Errorf("%d audit lines for %d codes refused during at most 3 waits, want one per wait", n, throttled)
	}
}

// A sign-out opens the session cookie whatever its state (revoked or
// expired: ending it again is harmless), so one copy of a session
// cookie and its form token, posted again and again, was audited as
// "user logged out" each time, and with a return path longer than a
// provider takes (logout_at_provider) wrote a WARN each time: anyone
// with an account, as often as they like, long after the session ended.
// The sign-out of one session is audited once, and the warning spaced.
func TestRepeatedSignOutIsAuditedOnce(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "logout_at_provider", auditLog: true})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	jar := b.client.Jar.Cookies(mustParseURL(t, s.base))
	_, page := b.get(s.base + "/.jitauth/logout")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token on the sign-out page:\n%s", page)
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}, "rd": {"/" + strings.Repeat("a", 3000)}}
	for i := range floodRequests {
		resp := postSignOut(t, s.base, jar, form)
		if resp.StatusCode >= 400 {
			t.Fatalf("sign-out %d: %d", i, resp.StatusCode)
		}
	}
	if n := len(logEntries(t, s.logFile(), "user logged out")); n != 1 {
		t.Errorf("%d audit lines \"user logged out\" for %d sign-outs of one session, want 1", n, floodRequests)
	}
	if n := levelCount(t, s.logFile(), "warn", "too long to send through the provider"); n != 1 {
		t.Errorf("%d warnings for %d sign-outs with a long return path within seconds, want 1", n, floodRequests)
	}
}

// A callback without a valid flow cookie (none at all, another
// browser's state, an expired flow) is refused with no identity to name,
// and anyone can send it as often as they like, with nothing to start
// first. Each one was an audit line and a login_failed Caddy event (an
// events block may run a program on each). It is still counted in the
// metrics each time, but audited and sent as an event at most once per
// connection every logSpacingInterval.
func TestCallbackWithoutAFlowIsAuditedSpacedOut(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true, jsonReplace: []string{`"apps":{`, subscribeAll}})
	before := scrapeMetrics(t, admin)
	recordedEvents.Lock()
	seen := len(recordedEvents.list)
	recordedEvents.Unlock()
	for i := range floodRequests {
		resp, _ := newBrowser(t).get(s.base + "/.jitauth/callback/corp?" + url.Values{"state": {fmt.Sprint("junk-", i)}, "code": {"x"}}.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("callback %d without a flow: %d, want 400", i, resp.StatusCode)
		}
	}
	if n := len(logEntries(t, s.logFile(), "login refused")); n != 1 {
		t.Errorf("%d audit lines for %d callbacks without a flow within seconds, want 1", n, floodRequests)
	}
	recordedEvents.Lock()
	events := 0
	for _, e := range recordedEvents.list[seen:] {
		if e.Name() == "login_failed" {
			events++
		}
	}
	recordedEvents.Unlock()
	if events != 1 {
		t.Errorf("%d login_failed Caddy events for %d callbacks without a flow within seconds, want 1", events, floodRequests)
	}
	after := scrapeMetrics(t, admin)
	refused := `jit_auth_logins_total{connection="corp",outcome="refused"}`
	if got := after[refused] - before[refused]; got != floodRequests {
		t.Errorf("%s went up by %v, want %d: the metrics count every one", refused, got, floodRequests)
	}
}

// Repeats of one refused answer are audited once per flow, but a
// refusal of another kind on the same flow cookie is audited too: an
// attacker who sends a harmless access_denied first must not then try
// forged codes on that flow at DEBUG only, unseen by whoever reads the
// audit log.
func TestAnotherKindOfRefusalOnTheSameFlowIsAudited(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	b := newBrowser(t)
	state := startLogin(t, b, s.base, "corp")
	jar := b.client.Jar.Cookies(mustParseURL(t, s.base))
	for range 3 {
		if code := replayCallback(t, s.base, jar, url.Values{"state": {state}, "error": {"access_denied"}}); code != http.StatusUnauthorized {
			t.Fatalf("access_denied: status %d, want 401", code)
		}
	}
	audited := func() int {
		return len(logEntries(t, s.logFile(), "login refused")) + len(logEntries(t, s.logFile(), "login failed"))
	}
	if n := audited(); n != 1 {
		t.Fatalf("%d audit lines for three access_denied answers on one flow, want 1", n)
	}
	for range 3 {
		if code := replayCallback(t, s.base, jar, url.Values{"state": {state}, "code": {"forged-code"}}); code < 400 {
			t.Fatalf("a forged code: status %d, want a refusal", code)
		}
	}
	if n := audited(); n != 2 {
		t.Errorf("%d audit lines after three forged codes on a flow first answered access_denied, want 2 (the forged code's refusal audited once)", n)
	}
}

// postSignOut posts form to base's sign-out with the cookies of jar, as
// a script replaying one copy of them does, without following the answer.
func postSignOut(t *testing.T, base string, jar []*http.Cookie, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/.jitauth/logout", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range jar {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
