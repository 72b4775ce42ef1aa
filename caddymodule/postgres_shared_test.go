package caddymodule_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

// caddyBuild is cmd/caddy as built once for the test binary's run: the
// tests only run it, so one build serves them all (linking Caddy takes
// seconds each time, even from the build cache). TestMain removes dir.
var caddyBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildCaddy returns the path of cmd/caddy (Caddy with this module),
// built on the first call of the run.
func buildCaddy(t *testing.T) string {
	t.Helper()
	caddyBuild.once.Do(func() {
		caddyBuild.dir, caddyBuild.err = os.MkdirTemp("", "jitauth-test-caddy-")
		if caddyBuild.err != nil {
			return
		}
		bin := filepath.Join(caddyBuild.dir, "caddy")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/caddy").CombinedOutput(); err != nil {
			caddyBuild.err = fmt.Errorf("%v\n%s", err, out)
			return
		}
		caddyBuild.bin = bin
	})
	if caddyBuild.err != nil {
		t.Fatalf("building Caddy: %v", caddyBuild.err)
	}
	return caddyBuild.bin
}

// startCaddyProcess runs `caddy run` on a Caddyfile as a separate process
// (an instance of its own) and waits until base answers.
func startCaddyProcess(t *testing.T, bin, dir, caddyfile, base string) {
	t.Helper()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log:\n%s", base, b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/.jitauth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("Caddy at %s did not come up: %v\n%s", base, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startPGInstances runs two Caddy processes of bin on pgCaddyfile's site
// (edited by edit, if set), sharing the PostgreSQL store at connString
// with a revocation poll of 1 s, and returns their base URLs.
func startPGInstances(t *testing.T, bin, dir, connString, issuer, clientID, clientSecret, upstream string, edit func(string) string) [2]string {
	t.Helper()
	var bases [2]string
	for i := range bases {
		port := freePort(t)
		bases[i] = fmt.Sprintf("http://localhost:%d", port)
		idir := filepath.Join(dir, fmt.Sprintf("instance%d", i))
		if err := os.MkdirAll(idir, 0o700); err != nil {
			t.Fatal(err)
		}
		caddyfile := pgCaddyfile(idir, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString), port, issuer, clientID, clientSecret, upstream)
		if edit != nil {
			caddyfile = edit(caddyfile)
		}
		startCaddyProcess(t, bin, idir, caddyfile, bases[i])
	}
	return bases
}

// Two Caddy processes behind one (imagined) load balancer share a
// PostgreSQL store and cookie keys: a user provisioned through A is the
// same user through B, a session from A works on B, and a logout
// through A reaches B within revocation_poll (1 s here: the deadline
// below, shorter than the 10 s default, fails if the option is ignored).
func TestTwoInstancesSharePostgres(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()

	bases := startPGInstances(t, bin, dir, connString, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort(), nil)
	a, b := bases[0], bases[1]

	login := func(base string) *browser {
		br := newBrowser(t)
		idp.QueueUser(alice())
		resp, body, visited := br.follow(base+"/.jitauth/start/corp", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw alice@example.com") {
			t.Fatalf("login through %s: %d %q %v", base, resp.StatusCode, body, visited)
		}
		return br
	}
	localID := func() string {
		users := allPGUsers(t, connString)
		if len(users) != 1 {
			t.Fatalf("%d users in the shared store, want 1: %v", len(users), users)
		}
		return users[0]
	}

	login(a)
	first := localID()
	fromB := login(b)
	if again := localID(); again != first {
		t.Fatalf("B provisioned %s, A %s: not the same user", again, first)
	}

	// A session made through A, sent to B (cookies are per host, as
	// behind a load balancer).
	fromA := login(a)
	cookie := fromA.cookie(a, "jitauth_session")
	onB := func(c string) int {
		r := newBrowser(t).do(http.MethodGet, b+"/on-b", http.Header{"Cookie": {"jitauth_session=" + c}})
		r.Body.Close()
		return r.StatusCode
	}
	if code := onB(cookie.Value); code != http.StatusOK {
		t.Fatalf("B refused A's session: %d", code)
	}
	_ = fromB

	// Logout through A; B learns of it from the store.
	if resp, _ := fromA.logout(a, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout through A: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(6 * time.Second)
	for onB(cookie.Value) != http.StatusFound {
		if time.Now().After(deadline) {
			t.Fatal("B still accepts a session logged out through A 6 s later, with revocation_poll 1s")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// allPGUsers lists the user IDs in the store at connString.
func allPGUsers(t *testing.T, connString string) []string {
	t.Helper()
	st := openPGStore(t, connString)
	users, err := st.ListUsers(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	return ids
}

// openPGStore opens the PostgreSQL store at connString as an operator's
// tool would.
func openPGStore(t *testing.T, connString string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(t.Context(), connString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// With PostgreSQL unreachable, a JIT login ends on a clear 503 with no
// session; JIT-off logins and live sessions keep working; once the
// database answers again, JIT logins work without restarting Caddy.
func TestPostgresOutage(t *testing.T) {
	_, connString := pgSchema(t)
	u, _ := url.Parse(connString)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %[1]s/storage
	jit_auth {
		store postgres %[2]q
		cookie_keys %[3]s %[4]s
		connection corp {
			oidc %[5]s %[6]s %[7]s
			jit
		}
		connection partner {
			oidc %[5]s %[6]s %[7]s
		}
	}
}
http://localhost:%[8]d {
	jit_auth
	reverse_proxy %[9]s
}
`, dir, u.String(), testHashKey, testBlockKey, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort()))

	loginVia := func(conn string) (*browser, *http.Response, string) {
		b := newBrowser(t)
		idp.QueueUser(alice())
		resp, body, _ := b.follow(base+"/.jitauth/start/"+conn, nil)
		return b, resp, body
	}
	live, resp, _ := loginVia("corp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login before the outage: %d", resp.StatusCode)
	}

	proxy.Down()
	b, resp, body := loginVia("corp")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not signed in") {
		t.Fatalf("JIT login with the database down: %d %s", resp.StatusCode, body)
	}
	if b.cookie(base, "jitauth_session") != nil {
		t.Fatal("a session was issued with the database down")
	}
	if _, resp, _ := loginVia("partner"); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT-off login with the database down: %d", resp.StatusCode)
	}
	if resp, _ := live.get(base + "/during-outage"); resp.StatusCode != http.StatusOK {
		t.Fatalf("live session with the database down: %d", resp.StatusCode)
	}

	proxy.Up()
	if _, resp, body := loginVia("corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT login after the database came back: %d %s", resp.StatusCode, body)
	}
	if n := len(allPGUsers(t, connString)); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
}

// What an administrator does through one instance reaches the live
// sessions on another that shares the PostgreSQL store, with no login
// and no restart: a role granted through A shows in B's headers within
// B's user_status_refresh, and signing the user out everywhere through
// A ends B's session within the revocation poll.
func TestDirectoryChangesReachTheOtherInstance(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	storeLine := fmt.Sprintf("store postgres %q\n\t\tuser_status_refresh 1s\n\t\trevocation_poll 1s", connString)

	dirB := filepath.Join(dir, "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	portB := freePort(t)
	baseB := fmt.Sprintf("http://localhost:%d", portB)
	startCaddyProcess(t, bin, dirB, pgCaddyfile(dirB, storeLine, portB, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()), baseB)

	dirA := filepath.Join(dir, "a")
	if err := os.MkdirAll(dirA, 0o700); err != nil {
		t.Fatal(err)
	}
	admin := freePort(t)
	runCaddyfile(t, strings.Replace(pgCaddyfile(dirA, storeLine, freePort(t), cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()),
		"admin off", fmt.Sprintf("admin localhost:%d", admin), 1))

	onB := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := onB.follow(baseB+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through B: %d %s", resp.StatusCode, body)
	}
	if code := adminCall(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", `{"grant_roles": ["auditor"]}`, nil); code != http.StatusOK {
		t.Fatalf("grant through A: %d", code)
	}
	eventually(t, "the role granted through A in B's headers", 10*time.Second, func() bool {
		resp, _ := onB.get(baseB + "/x")
		return resp.StatusCode == http.StatusOK && strings.Contains(up.lastHeaders(t).Get("Remote-Groups"), "auditor")
	})
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/signout", "", nil); code != http.StatusOK {
		t.Fatalf("sign out everywhere through A: %d", code)
	}
	eventually(t, "B ends the session signed out through A", 25*time.Second, func() bool {
		resp, _ := onB.get(baseB + "/x")
		return resp.StatusCode == http.StatusFound
	})
}

// loginToConsent logs br in through base's corp connection (the
// provider's user queued) up to its consent page, and returns the
// callback URL, the flow cookie it carried (a Cookie line), the pending
// login's cookie value and the page's CSRF token.
func loginToConsent(t *testing.T, br *browser, base string) (cb *url.URL, flow, pending, csrf string) {
	t.Helper()
	resp, _, _ := br.follow(base+"/.jitauth/start/corp", func(u *url.URL) bool { return strings.Contains(u.Path, "/.jitauth/callback/") })
	cb, err := resp.Location()
	if err != nil {
		t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
	}
	flow = flowCookieLine(br, cb)
	resp, page, _ := br.follow(cb.String(), nil)
	if resp.Request.URL.Path != "/.jitauth/consent" {
		t.Fatalf("the callback at %s ended at %s, want the consent page", base, resp.Request.URL)
	}
	c := br.cookie(base, "jitauth_pending")
	m := csrfRE.FindStringSubmatch(page)
	if c == nil || m == nil {
		t.Fatalf("no pending login at %s", base)
	}
	return cb, flow, c.Value, m[1]
}

// answerConsentCopy posts Allow to base's consent page from a new
// browser holding a copy of a pending login's cookie and its page's
// CSRF token (as the page has it, HTML-escaped).
func answerConsentCopy(t *testing.T, base, pending, csrf string) (*http.Response, string, *browser) {
	t.Helper()
	replay := newBrowser(t)
	req, _ := http.NewRequest(http.MethodPost, base+"/.jitauth/consent",
		strings.NewReader(url.Values{"csrf": {html.UnescapeString(csrf)}, "action": {"allow"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "jitauth_pending", Value: pending})
	resp, err := replay.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), replay
}

// setsSession reports whether resp sets a session cookie.
func setsSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "jitauth_session" && c.Value != "" {
			return true
		}
	}
	return false
}

// A login's state and a pending login are single use on every instance
// that shares the store, not only on the one that took them: a callback
// or consent answer copied (a captured URL and flow cookie, a copied
// pending cookie) and replayed through another instance is refused
// there once its revocation poll has read the first use, without asking
// the provider again.
func TestLoginStepsAreSingleUseAcrossInstances(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	var tokenCalls atomic.Int64
	idp := startMockOIDC(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				tokenCalls.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	up := newUpstream(t)
	cfg := idp.Config()
	consent := func(caddyfile string) string {
		return strings.Replace(caddyfile, "\t\t\tjit\n", "\t\t\tjit {\n\t\t\t\tmode consent\n\t\t\t}\n", 1)
	}
	bases := startPGInstances(t, bin, dir, connString, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort(), consent)
	a, b := bases[0], bases[1]

	// Through A: the provider's answer, then the consent page.
	br := newBrowser(t)
	idp.QueueUser(alice())
	cb, flow, pending, csrf := loginToConsent(t, br, a)
	answer := func(base string) (*http.Response, string, *browser) {
		return answerConsentCopy(t, base, pending, csrf)
	}
	resp, body, signedIn := answer(a)
	if resp.StatusCode != http.StatusFound || !setsSession(resp) {
		t.Fatalf("consent at A: %d\n%s", resp.StatusCode, body)
	}

	// B reads what A records in order: once it refuses a session logged
	// out through A after the uses, it has read the uses too. Only then
	// are the copies replayed through B (one sent earlier would be taken
	// there, and fail the test by asking the provider).
	session := signedIn.cookie(a, "jitauth_session")
	if resp, _ := signedIn.logout(a, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout at A: %d", resp.StatusCode)
	}
	eventually(t, "B reads the logout made through A", 10*time.Second, func() bool {
		r := newBrowser(t).do(http.MethodGet, b+"/x", http.Header{"Cookie": {"jitauth_session=" + session.Value}})
		r.Body.Close()
		return r.StatusCode == http.StatusFound
	})
	calls := tokenCalls.Load()
	bcb := *cb
	bcb.Host = strings.TrimPrefix(b, "http://")
	r := newBrowser(t).do(http.MethodGet, bcb.String(), http.Header{"Cookie": {flow}})
	replayed, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(replayed), "already used") || tokenCalls.Load() != calls {
		t.Errorf("the callback replayed through B: %d, %d more token requests\n%s", r.StatusCode, tokenCalls.Load()-calls, replayed)
	}
	if resp, body, _ := answer(b); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already answered") || setsSession(resp) {
		t.Errorf("the consent answer replayed through B: %d\n%s", resp.StatusCode, body)
	}
}

// With a store that records single-use IDs atomically (both shipped
// stores are provisioner.SingleUseStores), a login step used on A is
// refused on B at once, not from B's next revocation poll on: B polls
// once an hour here. The provider takes a code twice, as a provider with
// a grace period for retries does, so only jit_auth stands between the
// replayed callback and a second session.
func TestLoginStepsAreSingleUseAtOnceAcrossInstances(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	var mu sync.Mutex
	tokenAnswers := map[string][]byte{}
	idp := startMockOIDC(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/token") || r.ParseForm() != nil {
				next.ServeHTTP(w, r)
				return
			}
			code := r.PostForm.Get("code")
			mu.Lock()
			body, again := tokenAnswers[code]
			mu.Unlock()
			if !again {
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					w.WriteHeader(rec.Code)
					w.Write(rec.Body.Bytes())
					return
				}
				body = rec.Body.Bytes()
				mu.Lock()
				tokenAnswers[code] = body
				mu.Unlock()
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
	})
	up := newUpstream(t)
	cfg := idp.Config()
	edit := func(caddyfile string) string {
		caddyfile = strings.Replace(caddyfile, "revocation_poll 1s", "revocation_poll 1h", 1)
		return strings.Replace(caddyfile, "\t\t\tjit\n", "\t\t\tjit {\n\t\t\t\tmode consent\n\t\t\t}\n", 1)
	}
	bases := startPGInstances(t, bin, dir, connString, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort(), edit)
	a, b := bases[0], bases[1]

	br := newBrowser(t)
	idp.QueueUser(alice())
	cb, flow, pending, csrf := loginToConsent(t, br, a)

	// The callback replayed through B at once.
	bcb := *cb
	bcb.Host = strings.TrimPrefix(b, "http://")
	r := newBrowser(t).do(http.MethodGet, bcb.String(), http.Header{"Cookie": {flow}})
	replayed, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, c := range r.Cookies() {
		if (c.Name == "jitauth_pending" || c.Name == "jitauth_session") && c.Value != "" {
			t.Errorf("the callback replayed through B set %s", c.Name)
		}
	}
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(replayed), "already used") {
		t.Errorf("the callback replayed through B: %d, want 400 \"already used\"\n%s", r.StatusCode, replayed)
	}

	// The consent answered through A, then replayed through B at once.
	if resp, body, _ := answerConsentCopy(t, a, pending, csrf); resp.StatusCode != http.StatusFound || !setsSession(resp) {
		t.Fatalf("consent at A: %d\n%s", resp.StatusCode, body)
	}
	if resp, body, _ := answerConsentCopy(t, b, pending, csrf); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already answered") || setsSession(resp) {
		t.Errorf("the consent answer replayed through B: %d\n%s", resp.StatusCode, body)
	}
}
