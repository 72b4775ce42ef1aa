package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/jitauth/caddy-jitauth/internal/freeport"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// Test cookie keys, so tests can seal cookies of their own (expired,
// foreign) the way an attacker with or without the keys would.
const (
	testHashKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
	testBlockKey = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="
)

// freePort returns a TCP port that was free a moment ago and that no
// port-0 listener of the run (an httptest upstream) can be given.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// caddyMu serialises tests that run Caddy: Caddy's config is process-wide.
var caddyMu sync.Mutex

// runCaddyfile adapts and loads a Caddyfile into the in-process Caddy,
// and stops it when the test ends.
func runCaddyfile(t *testing.T, caddyfile string) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w.String())
	}
	runCaddyJSON(t, cfg)
}

// runCaddyJSON loads a JSON config into the in-process Caddy.
func runCaddyJSON(t *testing.T, cfg []byte) {
	t.Helper()
	caddyMu.Lock()
	if err := caddy.Load(cfg, true); err != nil {
		caddyMu.Unlock()
		t.Fatalf("loading config: %v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})
}

// globalOptions is the common head of test Caddyfiles: no admin
// endpoint, storage in the test's temporary directory, fixed keys.
func globalOptions(dir string, extra string) string {
	return fmt.Sprintf(`
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		store sqlite %s
		cookie_keys %s %s
%s
	}`, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), testHashKey, testBlockKey, extra)
}

// upstream records the requests that reach the protected application.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	hits int
	// redirects are the paths the application answers with a redirect
	// (redirectTo), and where to.
	redirects map[string]string
	// cacheControl, if set, is the Cache-Control of its answers.
	cacheControl string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.hits++
		target := u.redirects[r.URL.Path]
		cc := u.cacheControl
		u.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if target != "" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream saw %s", r.Header.Get("Remote-User"))
	}))
	t.Cleanup(u.Close)
	return u
}

// lastHeaders returns the headers of the last request that reached it.
func (u *upstream) lastHeaders(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		t.Fatal("no request reached the upstream")
	}
	return u.last.Header
}

// redirectTo makes the application answer path with a redirect to
// target, as one that hands a download to a file store does.
func (u *upstream) redirectTo(path, target string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.redirects == nil {
		u.redirects = map[string]string{}
	}
	u.redirects[path] = target
}

func (u *upstream) hostPort() string { return strings.TrimPrefix(u.URL, "http://") }

// count is how many requests have reached the upstream.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// browser is an HTTP client with a cookie jar that follows redirects by
// hand, so tests can see every hop.
type browser struct {
	t      *testing.T
	client *http.Client
	// setCookies are the cookies servers set, in order, with attributes.
	setCookies []*http.Cookie
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// do sends one request as a browser navigation would.
func (b *browser) do(method, rawURL string, hdr http.Header) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	b.setCookies = append(b.setCookies, resp.Cookies()...)
	return resp
}

// get fetches rawURL and returns the response with its body read.
func (b *browser) get(rawURL string) (*http.Response, string) {
	b.t.Helper()
	resp := b.do(http.MethodGet, rawURL, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// follow GETs rawURL and follows redirects, returning the final response
// and body plus every URL visited. stopAt, if set, stops before a URL
// for which it returns true (returning the redirect response).
func (b *browser) follow(rawURL string, stopAt func(*url.URL) bool) (*http.Response, string, []string) {
	b.t.Helper()
	var visited []string
	cur := rawURL
	for i := 0; i < 15; i++ {
		visited = append(visited, cur)
		resp, body := b.get(cur)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return resp, body, visited
		}
		loc, err := resp.Location()
		if err != nil {
			b.t.Fatalf("redirect without Location from %s", cur)
		}
		if stopAt != nil && stopAt(loc) {
			return resp, body, visited
		}
		cur = loc.String()
	}
	b.t.Fatalf("too many redirects: %v", visited)
	return nil, "", nil
}

// cookie returns the browser's cookie named name for rawURL.
func (b *browser) cookie(rawURL, name string) *http.Cookie {
	u, _ := url.Parse(rawURL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// lastSetCookie returns the attributes of the last Set-Cookie for name.
func (b *browser) lastSetCookie(name string) *http.Cookie {
	for i := len(b.setCookies) - 1; i >= 0; i-- {
		if b.setCookies[i].Name == name {
			return b.setCookies[i]
		}
	}
	return nil
}

// oidcUser is a mockoidc user whose ID token claims a test controls:
// profile claims, and deliberate defects (wrong audience, nonce, …).
type oidcUser struct {
	sub    string
	claims map[string]any
	// tamper, if set, edits the final claims before signing.
	tamper func(jwt.MapClaims)
}

func (u *oidcUser) ID() string { return u.sub }

func (u *oidcUser) Userinfo([]string) ([]byte, error) {
	m := map[string]any{"sub": u.sub}
	for k, v := range u.claims {
		m[k] = v
	}
	return json.Marshal(m)
}

func (u *oidcUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	m := jwt.MapClaims{
		"iss":   base.Issuer,
		"sub":   base.Subject,
		"aud":   []string(base.Audience),
		"exp":   base.ExpiresAt.Unix(),
		"iat":   base.IssuedAt.Unix(),
		"nonce": base.Nonce,
	}
	for k, v := range u.claims {
		m[k] = v
	}
	if u.tamper != nil {
		u.tamper(m)
	}
	return m, nil
}

// startMockOIDC runs a mockoidc provider for narrow cases: it logs in
// whichever user is queued, without a login form.
func startMockOIDC(t *testing.T, middleware ...func(http.Handler) http.Handler) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// mockoidc's session store is not safe for concurrent use; the
	// innermost middleware serialises its handlers (the test's own
	// middleware stays outside, so it can hold responses back).
	var mu sync.Mutex
	serialise := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	for _, mw := range append(middleware, serialise) {
		if err := m.AddMiddleware(mw); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// openStore opens the test's SQLite file directly, as an operator would.
func openStore(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// allUsers lists every user in the store.
func allUsers(t *testing.T, s provisioner.Store) []provisioner.User {
	t.Helper()
	users, err := s.ListUsers(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func mustReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually waits up to within for ok, failing the test with what if it
// never holds: for effects that a background refresh or poll brings.
func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
