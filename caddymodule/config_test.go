package caddymodule_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// A real OpenID Connect provider with a login form, and Caddy configured
// with JSON rather than a Caddyfile.
func TestJSONConfigWithRealProviderLoginForm(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{{ID: "app", Secret: "app-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	up := newUpstream(t)

	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{
			"jit_auth": map[string]any{
				"store": map[string]any{"backend": "sqlite", "path": filepath.Join(dir, "users.db")},
				"connections": map[string]any{
					"corp": map[string]any{
						"oidc": map[string]any{"issuer": idp.Issuer(), "client_id": "app", "client_secret": "app-secret"},
						"jit":  map[string]any{"enabled": true},
					},
				},
			},
			"http": map[string]any{"servers": map[string]any{"srv": map[string]any{
				"listen": []string{fmt.Sprintf("localhost:%d", port)},
				"routes": []any{map[string]any{"handle": []any{
					map[string]any{"handler": "jit_auth"},
					map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": up.hostPort()}}},
				}}},
			}}},
		},
	}
	raw, _ := json.Marshal(cfg)
	runCaddyJSON(t, raw)

	b := newBrowser(t)
	resp, _, visited := b.follow(base+"/wiki/Home", func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), idp.Issuer()+"/login")
	})
	loginPage, err := resp.Location()
	if err != nil {
		t.Fatalf("never reached the provider's login page: %v", visited)
	}
	back, err := devidp.Login(b.client, loginPage.String(), "bob", "builder")
	if err != nil {
		t.Fatal(err)
	}
	back.Body.Close()
	cb, err := back.Location()
	if err != nil || !strings.HasPrefix(cb.String(), base+"/.jitauth/callback/corp?") {
		t.Fatalf("provider did not redirect to our callback: %v %v", cb, err)
	}
	final, body, _ := b.follow(cb.String(), nil)
	if final.StatusCode != http.StatusOK || final.Request.URL.Path != "/wiki/Home" {
		t.Fatalf("after login: %d at %s: %s", final.StatusCode, final.Request.URL, body)
	}
	h := up.lastHeaders(t)
	if h.Get("Remote-User") != "bob@example.com" || h.Get("Remote-Name") != "Bob Builder" || h.Get("Remote-Email") != "bob@example.com" {
		t.Fatalf("identity headers: %v", h)
	}
	if users := allUsers(t, openStore(t, dir)); len(users) != 1 || users[0].Username != "bob@example.com" {
		t.Fatalf("store: %+v", users)
	}
}

// The directive orders itself before content handlers: no `order` line,
// and respond and file_server are protected.
func TestDirectiveProtectsRespondAndFileServer(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	p1, p2 := freePort(t), freePort(t)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	respond "secret response"
	jit_auth
}
http://localhost:%d {
	root * %s
	file_server
	jit_auth
}
`, globalOptions(dir, fmt.Sprintf("connection corp {\n oidc %s %s %s\n}", cfg.Issuer, cfg.ClientID, cfg.ClientSecret)), p1, p2, dir))
	for _, u := range []string{fmt.Sprintf("http://localhost:%d/", p1), fmt.Sprintf("http://localhost:%d/secret.txt", p2)} {
		resp, body := newBrowser(t).get(u)
		if resp.StatusCode != http.StatusFound || strings.Contains(body, "secret response") || strings.Contains(body, "top secret") {
			t.Errorf("%s: %d %q, want a redirect to log in", u, resp.StatusCode, body)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: API request got %d, want 401", u, r.StatusCode)
		}
	}
}

// Caddy starts with the provider down; a login meanwhile ends on a clear
// 502 page, and works once the provider is up, without a reload.
func TestProviderDownAtStartThenUp(t *testing.T) {
	dir := t.TempDir()
	idpPort := freePort(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", idpPort)
	up := newUpstream(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, "connection corp {\n oidc "+issuer+" app app-secret\n jit\n}"), port, up.hostPort()))

	resp, body := newBrowser(t).get(base + "/.jitauth/start/corp")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "cannot be reached") {
		t.Fatalf("provider down: %d %s", resp.StatusCode, body)
	}

	idp, err := devidp.Start(fmt.Sprintf("127.0.0.1:%d", idpPort),
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{{ID: "app", Secret: "app-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	if idp.Issuer() != issuer {
		t.Fatalf("issuer %s, configured %s", idp.Issuer(), issuer)
	}
	// Discovery is retried at most every few seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, _ := newBrowser(t).get(base + "/.jitauth/start/corp")
		if resp.StatusCode == http.StatusFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider up, login still fails: %d", resp.StatusCode)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b := newBrowser(t)
	resp, _, _ = b.follow(base+"/", func(u *url.URL) bool { return strings.HasPrefix(u.String(), issuer+"/login") })
	loginPage, _ := resp.Location()
	back, err := devidp.Login(b.client, loginPage.String(), "bob", "builder")
	if err != nil {
		t.Fatal(err)
	}
	back.Body.Close()
	cb, _ := back.Location()
	final, _, _ := b.follow(cb.String(), nil)
	if final.StatusCode != http.StatusOK || up.lastHeaders(t).Get("Remote-User") != "bob@example.com" {
		t.Fatalf("login after the provider came up: %d", final.StatusCode)
	}
}

// failingStore is the real SQLite store with faults a test can switch
// on: while storeDown is set every provisioning call fails (an outage),
// and lookupBarrier holds identity lookups until enough logins wait
// there (to make logins overlap).
type failingStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var (
	storeDown     atomic.Bool
	lookupBarrier atomic.Pointer[barrier]
	// revokeDown and useOnceDown fail only RevokeSession or only UseOnce:
	// a store that fails between the writes of one request.
	revokeDown, useOnceDown atomic.Bool
	// userReadsDown fails the reads of users by ID (User, UsersByID):
	// the status refresh's reads, and nothing a sign-in needs.
	userReadsDown atomic.Bool
	// revokeCalls counts RevokeSession calls, failed ones included.
	revokeCalls atomic.Int64
)

// barrier releases its waiters together once n of them wait (or after a
// timeout, so a broken test fails rather than hangs).
type barrier struct {
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(10 * time.Second):
	}
}

var errStoreDown = errors.New("store is down (test)")

func init() { caddy.RegisterModule(failingStore{}) }

func (failingStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_failing", New: func() caddy.Module { return new(failingStore) }}
}

func (f *failingStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *failingStore) Cleanup() error { return f.Store.Close() }

func (f *failingStore) UserByIdentity(ctx context.Context, k provisioner.IdentityKey) (*provisioner.User, error) {
	if storeDown.Load() {
		return nil, errStoreDown
	}
	u, err := f.Store.UserByIdentity(ctx, k)
	// Hold the answer until every overlapping login has its own: then
	// none of them has seen another's user yet.
	if b := lookupBarrier.Load(); b != nil {
		b.wait()
	}
	return u, err
}

func (f *failingStore) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	if storeDown.Load() {
		return nil, errStoreDown
	}
	return f.Store.CreateUser(ctx, u, id)
}

func (f *failingStore) RecordLogin(ctx context.Context, k provisioner.IdentityKey, raw []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	if storeDown.Load() {
		return nil, errStoreDown
	}
	return f.Store.RecordLogin(ctx, k, raw, at, update)
}

func (f *failingStore) User(ctx context.Context, id string) (*provisioner.User, error) {
	if userReadsDown.Load() {
		return nil, errStoreDown
	}
	return f.Store.User(ctx, id)
}

func (f *failingStore) UsersByID(ctx context.Context, ids []string) ([]provisioner.User, error) {
	if userReadsDown.Load() {
		return nil, errStoreDown
	}
	return f.Store.UsersByID(ctx, ids)
}

func (f *failingStore) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	revokeCalls.Add(1)
	if revokeDown.Load() {
		return errStoreDown
	}
	return f.Store.RevokeSession(ctx, id, expires)
}

func (f *failingStore) UseOnce(ctx context.Context, id string, expires time.Time) (bool, error) {
	if useOnceDown.Load() {
		return false, errStoreDown
	}
	return f.Store.UseOnce(ctx, id, expires)
}

// S9: with the store down, a JIT login fails closed with a clear 503;
// JIT-off logins and live sessions keep working; recovery needs no restart.
func TestStoreOutageFailsClosed(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	runCaddyJSON(t, adaptCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %[1]s/storage
	jit_auth {
		store sqlite %[1]s/users.db
		connection corp {
			oidc %[2]s %[3]s %[4]s
			jit
		}
		connection partner {
			oidc %[2]s %[3]s %[4]s
		}
	}
}
http://localhost:%[5]d {
	jit_auth
	reverse_proxy %[6]s
}
`, dir, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort()), `"backend":"sqlite"`, `"backend":"test_failing"`))
	defer storeDown.Store(false)

	live := newBrowser(t)
	idp.QueueUser(alice())
	if resp, _, _ := live.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login before the outage: %d", resp.StatusCode)
	}

	storeDown.Store(true)
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not signed in") {
		t.Fatalf("JIT login during outage: %d %s", resp.StatusCode, body)
	}
	if b.cookie(base, "jitauth_session") != nil {
		t.Fatal("a session was issued while provisioning failed")
	}
	idp.QueueUser(alice())
	if resp, _, _ := newBrowser(t).follow(base+"/.jitauth/start/partner", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT-off login during outage: %d", resp.StatusCode)
	}
	if resp, _ := live.get(base + "/still-here"); resp.StatusCode != http.StatusOK {
		t.Fatalf("live session during outage: %d", resp.StatusCode)
	}

	storeDown.Store(false)
	idp.QueueUser(alice())
	if resp, _, _ := newBrowser(t).follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT login after recovery: %d", resp.StatusCode)
	}
}

// adaptCaddyfile adapts a Caddyfile and applies string replacements to
// the JSON (for settings the Caddyfile cannot express).
func adaptCaddyfile(t *testing.T, caddyfile string, replacements ...string) []byte {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	return []byte(strings.NewReplacer(replacements...).Replace(string(cfg)))
}

// S6 and S3: behind a trusted TLS-terminating proxy, cookies are Secure,
// __Host- prefixed, and callbacks use the forwarded origin; a plain-HTTP
// non-loopback origin is refused rather than given insecure cookies.
func TestCookiesBehindTrustedProxyAndPlainHTTP(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	runCaddyfile(t, fmt.Sprintf(`{%s
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}
http://:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, "connection corp {\n oidc "+cfg.Issuer+" "+cfg.ClientID+" "+cfg.ClientSecret+"\n jit\n}"), port, up.hostPort()))
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Plain HTTP to a public name: no insecure cookies, a clear refusal.
	if resp := get(addr+"/.jitauth/start/corp", map[string]string{"Host": "app.example"}); resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
		t.Fatalf("plain HTTP, public host: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	fwd := map[string]string{"Host": "internal:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}
	resp := get(addr+"/.jitauth/start/corp", fwd)
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("start behind proxy: %d", resp.StatusCode)
	}
	if ru := loc.Query().Get("redirect_uri"); ru != "https://app.example/.jitauth/callback/corp" {
		t.Fatalf("redirect_uri %q", ru)
	}
	flow := resp.Cookies()[0]
	if !strings.HasPrefix(flow.Name, "__Host-jitauth_flow_") || !flow.Secure || !flow.HttpOnly || flow.Path != "/" {
		t.Fatalf("flow cookie %+v", flow)
	}
	// The provider answers; the browser comes back through the proxy.
	idp.QueueUser(alice())
	authz := get(loc.String(), nil)
	cb, _ := authz.Location()
	fwd["Cookie"] = flow.Name + "=" + flow.Value
	resp = get(addr+cb.RequestURI(), fwd)
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-jitauth_session" {
			sess = c
		}
	}
	if resp.StatusCode != http.StatusFound || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Domain != "" {
		t.Fatalf("callback behind proxy: %d, session cookie %+v", resp.StatusCode, sess)
	}
	fwd["Cookie"] = sess.Name + "=" + sess.Value
	if resp := get(addr+"/app", fwd); resp.StatusCode != http.StatusOK {
		t.Fatalf("session behind proxy: %d", resp.StatusCode)
	}
	// The same cookie under the insecure name is no session.
	if resp := get(addr+"/app", map[string]string{"Host": "localhost", "Cookie": "jitauth_session=" + sess.Value}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("secure cookie accepted under the insecure name: %d", resp.StatusCode)
	}
}

// S6: without configured keys, keys are generated once and kept in
// Caddy's storage, so a session survives a restart.
func TestGeneratedKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %[1]s/storage
	jit_auth {
		store sqlite %[1]s/users.db
		connection corp {
			oidc %[2]s %[3]s %[4]s
		}
	}
}
http://localhost:%[5]d {
	jit_auth
	reverse_proxy %[6]s
}
`, dir, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort())
	cfgJSON := adaptCaddyfile(t, caddyfile)

	caddyMu.Lock()
	defer caddyMu.Unlock()
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, _, _ := b.follow(base+"/.jitauth/start/corp", nil)
	if resp.StatusCode != http.StatusOK {
		_ = caddy.Stop()
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	keys, err := os.ReadFile(filepath.Join(dir, "storage", "jit_auth", "cookie_keys.json"))
	if err != nil || !strings.Contains(string(keys), "hash_key") {
		t.Fatalf("generated keys not in storage: %v %s", err, keys)
	}

	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatal(err)
	}
	defer caddy.Stop()
	if resp, _ := b.get(base + "/after-restart"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session lost across restart: %d", resp.StatusCode)
	}
}

// S13: a login writes no secret into the logs: not the client secret,
// the code, the state, tokens or cookie values.
func TestLogsCarryNoSecrets(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	logFile := filepath.Join(dir, "caddy.log")
	runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[1]s
		level DEBUG
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
	log {
		output file %[1]s
	}
	jit_auth
	reverse_proxy %[9]s
}
`, logFile, dir, testHashKey, testBlockKey, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort()))

	b := newBrowser(t)
	idp.QueueUser(alice())
	cb := (&site{t: t, base: base}).startOnly(b, "corp", "/")
	resp, _, _ := b.follow(cb.String(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// A failing login too: errors are where secrets leak (a token for
	// another audience is logged as a misconfiguration, with details).
	idp.QueueUser(&oidcUser{sub: "x", tamper: func(m jwt.MapClaims) { m["aud"] = "other" }})
	if r, _, _ := newBrowser(t).follow(base+"/.jitauth/start/corp", nil); r.StatusCode != http.StatusInternalServerError {
		t.Fatalf("failing login: %d", r.StatusCode)
	}
	// Caddy's access log records request URIs, including the callback's
	// single-use code and state (the README shows the log filter that
	// drops them); every other line is the module's or Caddy's own.
	var logs string
	for _, line := range strings.Split(mustReadFile(t, logFile), "\n") {
		if !strings.Contains(line, `"logger":"http.log.access`) {
			logs += line + "\n"
		}
	}
	if !strings.Contains(logs, "user logged in") {
		t.Fatalf("no audit event in the log:\n%s", logs)
	}
	secrets := map[string]string{
		"client secret":  cfg.ClientSecret,
		"code":           cb.Query().Get("code"),
		"state":          cb.Query().Get("state"),
		"session cookie": b.cookie(base, "jitauth_session").Value,
		"hash key":       testHashKey,
	}
	for what, secret := range secrets {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", what)
		}
	}
}
