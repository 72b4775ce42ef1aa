package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// misconfiguredPage is what a user sees when the connection's settings
// are wrong: not their fault, nothing they can retry.
const misconfiguredPage = "This sign-in is misconfigured. Tell the site&#39;s administrator."

// logEntries returns the JSON log lines of file with this message.
func logEntries(t *testing.T, file, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(mustReadFile(t, file), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// expectMisconfigured checks a login's final response is the
// misconfiguration page with no session, and that the log has an ERROR
// for conn (the latest one) whose fix names conn and says fixWords; it
// returns the entry.
func expectMisconfigured(t *testing.T, b *browser, base string, resp *http.Response, body, logFile, conn string, fixWords ...string) map[string]any {
	t.Helper()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, misconfiguredPage) {
		t.Fatalf("%s: status %d, want 500 with the misconfiguration page: %s", conn, resp.StatusCode, body)
	}
	if strings.Contains(body, "could not be verified") || strings.Contains(body, "Start again") {
		t.Errorf("%s: the page blames the user or offers a retry: %s", conn, body)
	}
	if b.cookie(base, "jitauth_session") != nil {
		t.Fatalf("%s: a session was issued", conn)
	}
	entries := logEntries(t, logFile, "sign-in misconfigured")
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e["connection"] != conn {
			continue
		}
		if e["level"] != "error" {
			t.Errorf("%s: logged at %v, want error", conn, e["level"])
		}
		fix, _ := e["fix"].(string)
		if !strings.Contains(fix, fmt.Sprintf("connection %q", conn)) {
			t.Errorf("%s: the fix does not name the connection: %q", conn, fix)
		}
		for _, w := range fixWords {
			if !strings.Contains(fix, w) {
				t.Errorf("%s: the fix does not say %q: %q", conn, w, fix)
			}
		}
		return e
	}
	t.Fatalf("%s: no ERROR \"sign-in misconfigured\" in the log:\n%s", conn, mustReadFile(t, logFile))
	return nil
}

// Point 12 of issue 10: a wrong client secret at a real OpenID provider
// (which answers invalid_client at its token endpoint), through an
// `oidc` connection and through a goth `provider` connection, shows the
// user the misconfiguration page and logs an ERROR naming the
// connection and the fix, without the secret or the code; the same
// provider with the right secret signs in.
func TestWrongClientSecretShowsMisconfiguration(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	const rightSecret, wrongSecret = "right-client-secret-4b7e", "wrong-client-secret-9d2c"
	var redirects []string
	for _, c := range []string{"good", "bad", "badgoth"} {
		redirects = append(redirects, base+"/.jitauth/callback/"+c)
	}
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{{ID: "app", Secret: rightSecret, RedirectURIs: redirects}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	// goth's generic providers take the endpoints by hand.
	var disc struct {
		Auth     string `json:"authorization_endpoint"`
		Token    string `json:"token_endpoint"`
		UserInfo string `json:"userinfo_endpoint"`
	}
	resp, err := http.Get(idp.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &disc); err != nil || disc.Token == "" {
		t.Fatalf("discovery: %v %s", err, raw)
	}
	t.Setenv("JITAUTH_TEST_RIGHT_SECRET", rightSecret)
	t.Setenv("JITAUTH_TEST_WRONG_SECRET", wrongSecret)
	up := newUpstream(t)
	logFile := filepath.Join(dir, "caddy.log")
	runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[1]s
		level INFO
	}
	storage file_system %[2]s/storage
	jit_auth {
		store sqlite %[2]s/users.db
		cookie_keys %[3]s %[4]s
		connection good {
			oidc %[5]s app {env.JITAUTH_TEST_RIGHT_SECRET}
		}
		connection bad {
			oidc %[5]s app {env.JITAUTH_TEST_WRONG_SECRET}
		}
		connection badgoth {
			provider gitlab app {env.JITAUTH_TEST_WRONG_SECRET}
			auth_url %[6]s
			token_url %[7]s
			profile_url %[8]s
			scopes openid
		}
	}
}
http://localhost:%[9]d {
	jit_auth
	reverse_proxy %[10]s
}
`, logFile, dir, testHashKey, testBlockKey, idp.Issuer(), disc.Auth, disc.Token, disc.UserInfo, port, up.hostPort()))

	var codes []string
	for _, tc := range []struct{ conn, fix string }{{"bad", "client_secret"}, {"badgoth", "secret and key"}} {
		b := newBrowser(t)
		cb := devidpCallback(t, b, idp, base, tc.conn)
		codes = append(codes, cb.Query().Get("code"))
		resp, body, _ := b.follow(cb.String(), nil)
		e := expectMisconfigured(t, b, base, resp, body, logFile, tc.conn, tc.fix)
		if said, _ := e["provider_said"].(string); !strings.Contains(said, "invalid_client") {
			t.Errorf("%s: the log does not say what the provider said: %v", tc.conn, e)
		}
	}
	if up.hits != 0 {
		t.Fatalf("a misconfigured login reached the upstream")
	}

	b := newBrowser(t)
	resp, body := devidpLogin(t, b, idp, base, "good")
	if resp.StatusCode != http.StatusOK || up.lastHeaders(t).Get("Remote-User") == "" {
		t.Fatalf("login with the right secret: %d %s", resp.StatusCode, body)
	}

	logs := mustReadFile(t, logFile)
	for what, s := range map[string]string{"wrong secret": wrongSecret, "right secret": rightSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
	for _, code := range codes {
		if code == "" || strings.Contains(logs, code) {
			t.Errorf("the log holds an authorization code (or the provider sent none)")
		}
	}
}

// mockoidc echoes a wrong client secret in its error_description
// ("Invalid client secret: <secret>"); the log says what the provider
// said with the secret taken out.
func TestMisconfigurationLogRedactsWhatTheProviderEchoes(t *testing.T) {
	const wrongSecret = "wrong-mock-secret-31f0"
	idp := startMockOIDC(t)
	base, logFile, up := startMisconfigSite(t, idp, idp.Config().Issuer, wrongSecret)
	idp.QueueUser(alice())
	b := newBrowser(t)
	resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil)
	e := expectMisconfigured(t, b, base, resp, body, logFile, "corp", "client_secret")
	if said, _ := e["provider_said"].(string); said != "invalid_client: Invalid client secret: [redacted]" {
		t.Errorf("provider_said = %q", said)
	}
	if strings.Contains(mustReadFile(t, logFile), wrongSecret) {
		t.Error("the log holds the secret the provider echoed")
	}
	if up.hits != 0 {
		t.Fatal("a misconfigured login reached the upstream")
	}
}

// startMisconfigSite runs Caddy with one oidc connection, corp (JIT on),
// with this issuer URL and client secret for the mockoidc provider idp,
// logging at INFO to logFile.
func startMisconfigSite(t *testing.T, idp *mockoidc.MockOIDC, issuer, secret string) (base, logFile string, up *upstream) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	base = fmt.Sprintf("http://localhost:%d", port)
	logFile = filepath.Join(dir, "caddy.log")
	up = newUpstream(t)
	runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[1]s
		level INFO
	}
	storage file_system %[2]s/storage
	jit_auth {
		store sqlite %[2]s/users.db
		cookie_keys %[3]s %[4]s
		connection corp {
			oidc %[5]s %[6]s %[7]s
			jit
		}
	}
}
http://localhost:%[8]d {
	jit_auth
	reverse_proxy %[9]s
}
`, logFile, dir, testHashKey, testBlockKey, issuer, idp.Config().ClientID, secret, port, up.hostPort()))
	return base, logFile, up
}

// startLogin starts a login at base through conn and returns the state
// the provider was given, leaving the flow cookie in b.
func startLogin(t *testing.T, b *browser, base, conn string) string {
	t.Helper()
	resp, body := b.get(base + "/.jitauth/start/" + conn)
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("start %s: %d %s", conn, resp.StatusCode, body)
	}
	return loc.Query().Get("state")
}

// expectRelayedRefusal checks a callback's response to an error answer
// about the connection's own request: a 401 naming the code, no session,
// and the latest WARN for conn in the log says the answer came through
// the browser, and gives no fix.
func expectRelayedRefusal(t *testing.T, b *browser, base string, resp *http.Response, body, logFile, conn, code string) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "did not sign you in ("+code+")") {
		t.Fatalf("%s: status %d, want the 401 page naming %s: %s", conn, resp.StatusCode, code, body)
	}
	if b.cookie(base, "jitauth_session") != nil {
		t.Fatalf("%s: a session was issued", conn)
	}
	if n := len(logEntries(t, logFile, "sign-in misconfigured")); n != 0 {
		t.Fatalf("%s: an answer through the browser was logged as a misconfiguration (%d)", conn, n)
	}
	for _, line := range strings.Split(mustReadFile(t, logFile), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["level"] != "warn" || e["connection"] != conn {
			continue
		}
		if said, _ := e["browser_said"].(string); strings.HasPrefix(said, code) {
			if _, ok := e["fix"]; ok {
				t.Errorf("%s: the warning suggests a fix on the browser's word: %v", conn, e)
			}
			return
		}
	}
	t.Fatalf("%s: no WARN with the browser's answer %s in the log:\n%s", conn, code, mustReadFile(t, logFile))
}

// Errors the provider sends back on the callback: the ones about the
// connection's own request (client unknown or not allowed, redirect URI,
// scopes, response type, a malformed request) come through the browser,
// so they are warned about as such, not taken for misconfigurations
// (TestCallbackErrorAnswerThroughTheBrowserIsNotAMisconfiguration);
// the user's refusal and the provider's own troubles keep their page.
func TestProviderErrorsOnTheCallback(t *testing.T) {
	idp := startMockOIDC(t)
	base, logFile, up := startMisconfigSite(t, idp, idp.Config().Issuer, idp.Config().ClientSecret)
	callback := func(b *browser, params url.Values) (*http.Response, string) {
		params.Set("state", startLogin(t, b, base, "corp"))
		return b.get(base + "/.jitauth/callback/corp?" + params.Encode())
	}
	for _, code := range []string{"unauthorized_client", "invalid_client", "redirect_uri_mismatch", "invalid_scope", "unsupported_response_type", "invalid_request"} {
		t.Run(code, func(t *testing.T) {
			b := newBrowser(t)
			resp, body := callback(b, url.Values{"error": {code}, "error_description": {"said\nby the provider"}})
			expectRelayedRefusal(t, b, base, resp, body, logFile, "corp", code)
		})
	}
	b := newBrowser(t)
	resp, body := callback(b, url.Values{"error": {"invalid_request"}, "error_description": {"The requested redirect_uri is missing in the client configuration."}})
	expectRelayedRefusal(t, b, base, resp, body, logFile, "corp", "invalid_request")

	for _, code := range []string{"access_denied", "server_error", "temporarily_unavailable", "login_required"} {
		t.Run(code, func(t *testing.T) {
			b := newBrowser(t)
			// A description about the redirect URI does not make the
			// user's own "no" a misconfiguration.
			resp, body := callback(b, url.Values{"error": {code}, "error_description": {"redirect_uri was fine"}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "did not sign you in ("+code+")") {
				t.Fatalf("status %d, want the 401 page naming %s: %s", resp.StatusCode, code, body)
			}
		})
	}
	if up.hits != 0 {
		t.Fatal("a refused login reached the upstream")
	}
}

// At the token endpoint, a complaint about the redirect URI is a
// misconfiguration; a code the provider does not know (expired, used,
// made up) stays the user's "could not be verified", although mockoidc
// answers it with 401.
func TestTokenEndpointRefusals(t *testing.T) {
	idp := startMockOIDC(t)
	base, logFile, _ := startMisconfigSite(t, idp, idp.Config().Issuer, idp.Config().ClientSecret)
	s := &site{t: t, base: base, idp: idp}

	idp.QueueUser(alice())
	b := newBrowser(t)
	cb := s.startOnly(b, "corp", "/")
	q := cb.Query()
	q.Set("code", "made-up-code")
	cb.RawQuery = q.Encode()
	resp, body := b.get(cb.String())
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "could not be verified") {
		t.Fatalf("unknown code: status %d, want 401: %s", resp.StatusCode, body)
	}
	if len(logEntries(t, logFile, "sign-in misconfigured")) != 0 {
		t.Fatal("an unknown code was logged as a misconfiguration")
	}

	idp.QueueUser(alice())
	b = newBrowser(t)
	cb = s.startOnly(b, "corp", "/")
	// Twice: the client tries both ways of sending its credentials.
	for range 2 {
		idp.QueueError(&mockoidc.ServerError{Code: http.StatusBadRequest, Error: "invalid_grant", Description: "redirect_uri does not correspond"})
	}
	resp, body = b.get(cb.String())
	expectMisconfigured(t, b, base, resp, body, logFile, "corp", "as a redirect URI")
}

// An ID token the provider signed for another audience or issuer is a
// misconfiguration (a wrong client_id or issuer); the same token with a
// broken signature is a forgery and keeps the user's 401.
func TestIDTokenForAnotherAudienceOrIssuer(t *testing.T) {
	var flip atomic.Bool
	idp := startMockOIDC(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !flip.Load() || !strings.HasSuffix(r.URL.Path, "/token") {
				next.ServeHTTP(w, r)
				return
			}
			rec := &captureWriter{header: http.Header{}}
			next.ServeHTTP(rec, r)
			var tr map[string]any
			if json.Unmarshal(rec.body, &tr) == nil {
				if id, ok := tr["id_token"].(string); ok {
					i := strings.LastIndex(id, ".") + 1
					sig := []byte(id[i:])
					sig[5] ^= 0x01
					tr["id_token"] = id[:i] + string(sig)
				}
				rec.body, _ = json.Marshal(tr)
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
		})
	})
	base, logFile, up := startMisconfigSite(t, idp, idp.Config().Issuer, idp.Config().ClientSecret)
	for name, tc := range map[string]struct {
		tamper func(jwt.MapClaims)
		fix    string
	}{
		"audience": {func(m jwt.MapClaims) { m["aud"] = []string{"another-client"} }, "check its client_id"},
		"issuer":   {func(m jwt.MapClaims) { m["iss"] = "https://elsewhere.example" }, "check its issuer"},
	} {
		t.Run(name, func(t *testing.T) {
			u := alice()
			u.tamper = tc.tamper
			idp.QueueUser(u)
			b := newBrowser(t)
			resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil)
			expectMisconfigured(t, b, base, resp, body, logFile, "corp", tc.fix)

			flip.Store(true)
			defer flip.Store(false)
			idp.QueueUser(u)
			b = newBrowser(t)
			resp, body, _ = b.follow(base+"/.jitauth/start/corp", nil)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "could not be verified") {
				t.Fatalf("forged token: status %d, want 401: %s", resp.StatusCode, body)
			}
		})
	}
	if up.hits != 0 {
		t.Fatal("a refused login reached the upstream")
	}
}

// An issuer URL that differs from the one the discovery document states
// (here localhost for 127.0.0.1) is a misconfiguration, and the log says
// which issuer to set.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	idp := startMockOIDC(t)
	right := idp.Config().Issuer
	wrong := strings.Replace(right, "127.0.0.1", "localhost", 1)
	if wrong == right {
		t.Fatalf("mockoidc issuer %s is not on 127.0.0.1", right)
	}
	base, logFile, _ := startMisconfigSite(t, idp, wrong, idp.Config().ClientSecret)
	for i := 0; i < 2; i++ { // the second attempt is answered from the remembered failure
		b := newBrowser(t)
		resp, body := b.get(base + "/.jitauth/start/corp")
		expectMisconfigured(t, b, base, resp, body, logFile, "corp", fmt.Sprintf("set its issuer to %q", right))
	}
}

// GitHub refuses wrong client credentials with 200 and
// incorrect_client_credentials: a misconfiguration of the goth
// connection; a wrong or expired code (bad_verification_code) stays the
// user's 401; the right secret signs in.
func TestGitHubWrongSecretShowsMisconfiguration(t *testing.T) {
	gh := fakeGitHub(t, fakeGitHubUser{})
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	logFile := filepath.Join(dir, "caddy.log")
	up := newUpstream(t)
	t.Setenv("JITAUTH_TEST_GH_SECRET", "gh-secret")
	t.Setenv("JITAUTH_TEST_GH_WRONG", "gh-wrong-secret-55aa")
	var conns string
	for name, secret := range map[string]string{"github": "{env.JITAUTH_TEST_GH_SECRET}", "ghbad": "{env.JITAUTH_TEST_GH_WRONG}"} {
		conns += fmt.Sprintf(`
		connection %[1]s {
			provider github gh-key %[2]s
			auth_url %[3]s/login/oauth/authorize
			token_url %[3]s/login/oauth/access_token
			profile_url %[3]s/api/v3/user
			email_url %[3]s/api/v3/user/emails
		}`, name, secret, gh.URL)
	}
	runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[1]s
		level INFO
	}
	storage file_system %[2]s/storage
	jit_auth {
		store sqlite %[2]s/users.db
		cookie_keys %[3]s %[4]s
		%[5]s
	}
}
http://localhost:%[6]d {
	jit_auth
	reverse_proxy %[7]s
}
`, logFile, dir, testHashKey, testBlockKey, conns, port, up.hostPort()))

	b := newBrowser(t)
	resp, body, _ := b.follow(base+"/.jitauth/start/ghbad", nil)
	e := expectMisconfigured(t, b, base, resp, body, logFile, "ghbad", "secret and key")
	if said, _ := e["provider_said"].(string); !strings.HasPrefix(said, "incorrect_client_credentials") {
		t.Errorf("provider_said = %q", said)
	}
	if strings.Contains(mustReadFile(t, logFile), "gh-wrong-secret-55aa") {
		t.Error("the log holds the secret")
	}

	b = newBrowser(t)
	cb := (&site{t: t, base: base}).startOnly(b, "github", "/")
	q := cb.Query()
	q.Set("code", "expired-code")
	cb.RawQuery = q.Encode()
	if resp, body := b.get(cb.String()); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "could not be verified") {
		t.Fatalf("bad code: status %d, want 401: %s", resp.StatusCode, body)
	}

	b = newBrowser(t)
	if resp, body, _ := b.follow(base+"/.jitauth/start/github", nil); resp.StatusCode != http.StatusOK || up.lastHeaders(t).Get("Remote-Email") != "octocat@example.com" {
		t.Fatalf("login with the right secret: %d %s", resp.StatusCode, body)
	}
}

// A discovery document without jwks_uri (an issuer URL that is not an
// OpenID provider's) is a misconfiguration that says what to check, not
// an outage: no ID token could ever be verified.
func TestDiscoveryWithoutKeysIsAMisconfiguration(t *testing.T) {
	idp := startMockOIDC(t)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q}`, srv.URL, srv.URL+"/authorize", srv.URL+"/token")
	}))
	t.Cleanup(srv.Close)
	base, logFile, _ := startMisconfigSite(t, idp, srv.URL, idp.Config().ClientSecret)
	b := newBrowser(t)
	resp, body := b.get(base + "/.jitauth/start/corp")
	expectMisconfigured(t, b, base, resp, body, logFile, "corp", "check that its issuer is the OpenID Connect provider's")
}

// A token endpoint that answers 200 with something that is no token
// response (a maintenance page in HTML) is the provider's trouble: the
// "provider unavailable" page (502), not "start again" (401), which
// would only send the user round the same failure.
func TestTokenEndpointAnsweringHTMLIsAnOutage(t *testing.T) {
	html := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body>Down for maintenance</body></html>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	idp := startMockOIDC(t, html)
	base, logFile, _ := startMisconfigSite(t, idp, idp.Config().Issuer, idp.Config().ClientSecret)
	s := &site{t: t, base: base, idp: idp}
	idp.QueueUser(alice())
	b := newBrowser(t)
	resp, body := b.get(s.startOnly(b, "corp", "/").String())
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("a token endpoint answering HTML: %d, want 502 (provider unavailable): %s", resp.StatusCode, body)
	}
	if len(logEntries(t, logFile, "sign-in misconfigured")) != 0 {
		t.Fatal("an outage was logged as a misconfiguration")
	}
}
