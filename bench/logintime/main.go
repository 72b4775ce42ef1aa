// Command logintime measures how long jit_auth takes to finish a login:
// from the browser's arrival at the callback (GET
// /.jitauth/callback/<conn>?code=…&state=…, the provider's redirect back)
// until the response that sets the session cookie, minus the time the
// provider itself spends answering jit_auth's requests during that
// callback (token endpoint, userinfo and JWKS: jit_auth currently fetches
// the provider's JWKS on every login, as it asks go-oidc for a new
// verifier, with a new key set, per login).
//
//	go run ./bench/logintime [-logins 200] [-warmup 20] [-dir DIR]
//
// Everything runs in this one process, over loopback: a mockoidc provider
// (it logs in whichever user is queued, no login form), wrapped in a
// middleware that adds up the time spent inside its handlers, and Caddy
// loaded from a Caddyfile with one site and two connections to that
// provider: "jit" (JIT provisioning into a SQLite store) and "nojit" (no
// store). Logins run one at a time, so the provider time added up while a
// callback is in flight belongs to that callback.
//
// Three cases, -logins each:
//
//   - JIT on, first login: a new subject each time, so jit_auth creates
//     the user (lookup, then insert of user and identity);
//   - JIT on, repeat login: the same subjects again, so jit_auth updates
//     them (lookup, then the last-login and profile update);
//   - JIT off: no store at all, for comparison.
//
// JIT-off logins are interleaved with the first and the repeat logins
// (first, off, first, off, …, then repeat, off, …), so it gets 2×-logins
// samples taken in the same conditions. -warmup logins of each case run
// first and are not counted (JWKS fetch, connection set-up, SQLite page
// cache).
//
// What "jit_auth's time" includes: everything on Caddy's side of the
// callback (routing, state and flow-cookie check, the HTTP client calls to
// the provider minus the provider's handler time, i.e. loopback round
// trips and request/response encoding, ID token signature and claim
// checks, provisioning, sealing the session cookie) plus this program's
// own HTTP client. The provider's time is measured inside its handler, so
// it excludes its HTTP server's reading and writing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/oauth2-proxy/mockoidc"

	_ "github.com/jitauth/caddy-jitauth/caddymodule"
	"github.com/jitauth/caddy-jitauth/internal/freeport"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

const sessionCookie = "jitauth_session" // plain HTTP: no __Host- prefix

// logger writes to stderr; the log package's default logger is Caddy's
// once Caddy runs.
var logger = log.New(os.Stderr, "logintime: ", 0)

func main() {
	logins := flag.Int("logins", 200, "measured logins per case")
	warmup := flag.Int("warmup", 20, "unmeasured logins per case before measuring")
	dir := flag.String("dir", "", "directory for the SQLite store and Caddy's storage (default: a new temporary directory, removed afterwards)")
	postOnly := flag.Bool("client-secret-post-only", false, "leave mockoidc as it is: it accepts client credentials only in the form body (client_secret_post), so each login costs jit_auth a rejected client_secret_basic token request first")
	flag.Parse()
	if *logins < 1 || *warmup < 0 {
		logger.Fatal("-logins must be at least 1 and -warmup at least 0")
	}
	if err := main1(*dir, *logins, *warmup, *postOnly); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

func main1(dir string, logins, warmup int, postOnly bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "jitauth-logintime.")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	return run(dir, logins, warmup, postOnly)
}

// providerClock adds up the time spent inside the provider's handlers.
type providerClock struct {
	total     atomic.Int64 // ns
	token     atomic.Int64 // calls
	userinfo  atomic.Int64
	jwks      atomic.Int64
	discovery atomic.Int64
}

func (c *providerClock) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		c.total.Add(int64(time.Since(start)))
		switch r.URL.Path {
		case mockoidc.TokenEndpoint:
			c.token.Add(1)
		case mockoidc.UserinfoEndpoint:
			c.userinfo.Add(1)
		case mockoidc.JWKSEndpoint:
			c.jwks.Add(1)
		case mockoidc.DiscoveryEndpoint:
			c.discovery.Add(1)
		}
	})
}

func run(dir string, logins, warmup int, postOnly bool) error {
	clock := &providerClock{}
	idp, err := startProvider(clock, !postOnly)
	if err != nil {
		return err
	}
	defer func() { _ = idp.Shutdown() }()

	port, err := freeport.Port()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := idp.Config()
	if err := loadCaddy(caddyfile(dir, port, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)); err != nil {
		return err
	}
	defer func() { _ = caddy.Stop() }()
	if err := waitServing(base + "/"); err != nil {
		return err
	}

	l := &loginer{base: base, idp: idp, clock: clock, client: &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}}

	// Warm-up, not counted.
	for i := 0; i < warmup; i++ {
		for _, step := range []struct {
			conn, sub string
		}{{"jit", fmt.Sprintf("warm-%d", i)}, {"jit", fmt.Sprintf("warm-%d", i)}, {"nojit", fmt.Sprintf("warm-%d", i)}} {
			if _, err := l.login(step.conn, step.sub); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	var first, repeat, off []sample
	for i := 0; i < logins; i++ {
		s, err := l.login("jit", fmt.Sprintf("user-%d", i))
		if err != nil {
			return fmt.Errorf("first login %d: %w", i, err)
		}
		first = append(first, s)
		if s, err = l.login("nojit", fmt.Sprintf("user-%d", i)); err != nil {
			return fmt.Errorf("JIT-off login %d: %w", i, err)
		}
		off = append(off, s)
	}
	for i := 0; i < logins; i++ {
		s, err := l.login("jit", fmt.Sprintf("user-%d", i))
		if err != nil {
			return fmt.Errorf("repeat login %d: %w", i, err)
		}
		repeat = append(repeat, s)
		if s, err = l.login("nojit", fmt.Sprintf("user-%d", i)); err != nil {
			return fmt.Errorf("JIT-off login %d: %w", logins+i, err)
		}
		off = append(off, s)
	}

	// Each login must have cost exactly one token (two without the basic
	// auth shim, see startProvider) and one userinfo call, or the
	// subtraction would be of something else.
	total := int64(3*warmup + 4*logins)
	tokenCalls := int64(1)
	if postOnly {
		tokenCalls = 2
	}
	if clock.token.Load() != tokenCalls*total || clock.userinfo.Load() != total {
		return fmt.Errorf("provider saw %d token and %d userinfo requests for %d logins, want %d and %d",
			clock.token.Load(), clock.userinfo.Load(), total, tokenCalls*total, total)
	}
	if n, err := countUsers(dir); err != nil {
		return err
	} else if n != warmup+logins {
		return fmt.Errorf("the store has %d users, want %d (JIT did not provision as expected)", n, warmup+logins)
	}

	fmt.Printf("login callback: GET /.jitauth/callback/<conn>?code&state until the 302 with Set-Cookie %s\n", sessionCookie)
	fmt.Printf("in-process Caddy %s + mockoidc over loopback, SQLite store (WAL, synchronous=NORMAL) in %s; %s, GOMAXPROCS %d\n",
		caddyVersion(), dir, runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("%d logins per case after %d warm-up logins each; provider requests per login: %d token, 1 userinfo, %.2f JWKS (discovery: %d in all)\n\n",
		logins, warmup, tokenCalls, float64(clock.jwks.Load())/float64(total), clock.discovery.Load())
	fmt.Printf("%-34s %5s  %-26s %-26s %-26s\n", "", "", "callback (client side)", "provider handlers", "jit_auth = callback - provider")
	fmt.Printf("%-34s %5s  %8s %8s %8s  %8s %8s %8s  %8s %8s %8s\n", "case", "n", "p50 ms", "p99 ms", "mean", "p50 ms", "p99 ms", "mean", "p50 ms", "p99 ms", "mean")
	for _, c := range []struct {
		name string
		s    []sample
	}{
		{"JIT on, first login (create user)", first},
		{"JIT on, repeat login (update user)", repeat},
		{"JIT off (no store)", off},
	} {
		cb, pr, own := column(c.s, func(s sample) time.Duration { return s.callback }),
			column(c.s, func(s sample) time.Duration { return s.provider }),
			column(c.s, func(s sample) time.Duration { return s.callback - s.provider })
		fmt.Printf("%-34s %5d  %8.3f %8.3f %8.3f  %8.3f %8.3f %8.3f  %8.3f %8.3f %8.3f\n", c.name, len(c.s),
			ms(pct(cb, 50)), ms(pct(cb, 99)), ms(mean(cb)),
			ms(pct(pr, 50)), ms(pct(pr, 99)), ms(mean(pr)),
			ms(pct(own, 50)), ms(pct(own, 99)), ms(mean(own)))
	}
	return nil
}

// startProvider runs mockoidc on loopback with the clock outermost and a
// lock innermost (mockoidc's session store is not safe for concurrent
// use; logins here are sequential anyway, so the lock never waits).
//
// With basicAuth, a shim in between lets the token endpoint accept
// client_secret_basic, which mockoidc advertises in its discovery document
// but does not accept (it reads client_id and client_secret from the form
// only). golang.org/x/oauth2 tries basic first and falls back to the form,
// and jit_auth builds a new oauth2.Config (with an empty auth style cache)
// per login, so without the shim every login makes two token requests, the
// first one rejected. Real providers accept basic, so the shim is the
// representative case; -client-secret-post-only measures the other.
func startProvider(clock *providerClock, basicAuth bool) (*mockoidc.MockOIDC, error) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	serialise := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	mws := []func(http.Handler) http.Handler{clock.middleware}
	if basicAuth {
		mws = append(mws, acceptBasicAuth)
	}
	for _, mw := range append(mws, serialise) {
		if err := m.AddMiddleware(mw); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// acceptBasicAuth copies client_secret_basic credentials (RFC 6749
// section 2.3.1: form-encoded, then HTTP Basic) of token requests into
// the parsed form, where mockoidc looks for them.
func acceptBasicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); ok && r.URL.Path == mockoidc.TokenEndpoint {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if v, err := url.QueryUnescape(id); err == nil {
				id = v
			}
			if v, err := url.QueryUnescape(secret); err == nil {
				secret = v
			}
			// mockoidc's own ParseForm is then a no-op.
			r.Form.Set("client_id", id)
			r.Form.Set("client_secret", secret)
		}
		next.ServeHTTP(w, r)
	})
}

// caddyfile has one site with jit_auth and two connections to the same
// provider, JIT on and off, and the global options of bench/setup: no
// admin endpoint, no persisted config, no HTTPS, logs discarded below
// ERROR, no access log.
func caddyfile(dir string, port int, issuer, clientID, clientSecret string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %[1]s
	log {
		output discard
		level ERROR
	}
	jit_auth {
		store sqlite %[2]s
		connection jit {
			oidc %[3]s %[4]s %[5]s
			scopes openid email profile groups
			jit
		}
		connection nojit {
			oidc %[3]s %[4]s %[5]s
			scopes openid email profile groups
		}
	}
}

http://127.0.0.1:%[6]d {
	bind 127.0.0.1
	jit_auth
	respond "hello {http.auth.user.id}"
}
`, quote(filepath.Join(dir, "storage")), quote(filepath.Join(dir, "users.db")), issuer, clientID, clientSecret, port)
}

func quote(s string) string { return "`" + s + "`" }

func loadCaddy(caddyfile string) error {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		logger.Printf("Caddyfile warning: %s", w.String())
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("loading the config: %w", err)
	}
	return nil
}

func caddyVersion() string {
	_, full := caddy.Version()
	if i := strings.IndexByte(full, ' '); i > 0 {
		return full[:i]
	}
	return full
}

func waitServing(u string) error {
	c := &http.Client{Timeout: time.Second, CheckRedirect: noRedirects}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer within 30s", u)
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

type sample struct {
	callback, provider time.Duration
}

type loginer struct {
	base   string
	idp    *mockoidc.MockOIDC
	clock  *providerClock
	client *http.Transport // shared, so connections are reused as a browser's
}

// login runs one browser login of subject sub through connection conn and
// times its callback.
func (l *loginer) login(conn, sub string) (sample, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: l.client, Jar: jar, Timeout: 20 * time.Second, CheckRedirect: noRedirects}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	location := func(resp *http.Response, what string) (string, error) {
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusFound || err != nil {
			return "", fmt.Errorf("%s: %s, want a 302", what, resp.Status)
		}
		return loc.String(), nil
	}

	l.idp.QueueUser(&mockoidc.MockUser{
		Subject:           sub,
		Email:             sub + "@example.com",
		EmailVerified:     true,
		PreferredUsername: sub,
		Groups:            []string{"staff", "bench"},
	})

	// Start: jit_auth sends the browser to the provider.
	resp, err := get(l.base + "/.jitauth/start/" + conn + "?rd=" + url.QueryEscape("/"))
	if err != nil {
		return sample{}, err
	}
	authURL, err := location(resp, "start")
	if err != nil {
		return sample{}, err
	}
	// The provider logs the queued user in and sends the browser back.
	if resp, err = get(authURL); err != nil {
		return sample{}, err
	}
	callback, err := location(resp, "provider")
	if err != nil {
		return sample{}, err
	}
	if !strings.HasPrefix(callback, l.base+"/.jitauth/callback/"+conn+"?") {
		return sample{}, fmt.Errorf("provider redirected to %s, not to the callback", callback)
	}

	// The measured part.
	before := l.clock.total.Load()
	start := time.Now()
	resp, err = get(callback)
	elapsed := time.Since(start)
	provider := time.Duration(l.clock.total.Load() - before)
	if err != nil {
		return sample{}, err
	}
	if _, err := location(resp, "callback"); err != nil {
		return sample{}, err
	}
	var session bool
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			session = true
		}
	}
	if !session {
		return sample{}, errors.New("the callback set no session cookie")
	}

	// Not timed: the session works.
	if resp, err = get(l.base + "/"); err != nil {
		return sample{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("with the new session: %s, want 200", resp.Status)
	}
	return sample{callback: elapsed, provider: provider}, nil
}

// countUsers counts the store's users through a second connection.
func countUsers(dir string) (int, error) {
	st, err := sqlitestore.Open(filepath.Join(dir, "users.db"))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	users, err := st.ListUsers(context.Background(), 0, 1<<20)
	return len(users), err
}

func column(s []sample, f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pct is the nearest-rank percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration {
	rank := (p*len(d) + 99) / 100 // ceil(p/100 × n)
	if rank < 1 {
		rank = 1
	}
	return d[rank-1]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
