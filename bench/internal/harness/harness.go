//go:build linux

// Package harness is what the load and fault programs in bench/ share: a
// local OpenID Connect provider that signs in whichever new user it is
// handed, a browser that follows a login to its callback, Caddy built
// from cmd/caddy and run as a process of its own, and a PostgreSQL
// schema per run.
package harness

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/jitauth/caddy-jitauth/internal/freeport"
)

// SessionCookie is the session cookie's name on a plain-HTTP loopback
// site (no __Host- prefix there).
const SessionCookie = "jitauth_session"

// User is a provider user whose email, Sub@example.com, is verified, so
// it is also the local username.
type User struct{ Sub string }

func (u User) ID() string { return u.Sub }

// Email is the user's verified email.
func (u User) Email() string { return u.Sub + "@example.com" }

func (u User) Userinfo([]string) ([]byte, error) {
	return []byte(fmt.Sprintf(`{"sub":%q,"email":%q,"email_verified":true}`, u.Sub, u.Email())), nil
}

func (u User) Claims(_ []string, b *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return jwt.MapClaims{"iss": b.Issuer, "sub": u.Sub, "aud": []string(b.Audience), "exp": b.ExpiresAt.Unix(),
		"iat": b.IssuedAt.Unix(), "nonce": b.Nonce, "email": u.Email(), "email_verified": true}, nil
}

// Provider is a mockoidc provider on loopback.
type Provider struct {
	*mockoidc.MockOIDC
	// serve serialises mockoidc's handlers (its session store is not
	// safe for concurrent use); begin makes handing over a user and
	// starting its login one step, so each login is known to be that
	// user's.
	serve, begin sync.Mutex
	next         atomic.Int64
}

// StartProvider starts a provider; Shutdown stops it.
func StartProvider() (*Provider, error) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, err
	}
	p := &Provider{MockOIDC: m}
	_ = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.serve.Lock()
			defer p.serve.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// Begin starts the login of a new user (named prefix-<n>) at start and
// follows it to the provider's redirect back to the site, which it
// returns unvisited.
func (p *Provider) Begin(b *Browser, start, prefix string) (User, string, error) {
	p.begin.Lock()
	defer p.begin.Unlock()
	u := User{Sub: fmt.Sprintf("%s-%d", prefix, p.next.Add(1))}
	// A login cut off before the provider took its user leaves it
	// queued: the queue holds this one alone.
	p.UserQueue.Lock()
	p.UserQueue.Queue = nil
	p.UserQueue.Unlock()
	p.QueueUser(u)
	next := start
	for range 5 {
		resp, err := b.C.Get(next)
		if err != nil {
			return u, "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return u, "", fmt.Errorf("%s: %d without a redirect", next, resp.StatusCode)
		}
		if strings.Contains(loc.Path, "/.jitauth/callback/") {
			return u, loc.String(), nil
		}
		next = loc.String()
	}
	return u, "", errors.New("the login never reached the callback")
}

// Browser is one user's browser: a cookie jar, no redirects followed.
type Browser struct{ C *http.Client }

// NewBrowser returns a browser using transport (nil: the default).
func NewBrowser(transport http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{C: &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Finish visits a login's callback and returns the session cookie it
// set ("" if none) and the status.
func (b *Browser) Finish(callback string) (string, int, error) {
	resp, err := b.C.Get(callback)
	if err != nil {
		return "", 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie && c.Value != "" {
			return c.Value, resp.StatusCode, nil
		}
	}
	return "", resp.StatusCode, nil
}

// NoFollow is a client that takes a redirect as the answer it is.
var NoFollow = &http.Client{Timeout: 15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Get requests u with a session cookie (if not empty) as a browser
// navigation, and returns the status.
func Get(c *http.Client, u, cookie string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	if cookie != "" {
		req.Header.Set("Cookie", SessionCookie+"="+cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// SignOut posts the sign-out form of base for the session cookie; nil
// when the logout was acknowledged (200).
func SignOut(base, cookie string) error {
	req, _ := http.NewRequest(http.MethodGet, base+"/.jitauth/logout", nil)
	req.Header.Set("Cookie", SessionCookie+"="+cookie)
	resp, err := NoFollow.Do(req)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("sign-out page %d without its form", resp.StatusCode)
	}
	form := url.Values{"csrf": {html.UnescapeString(string(m[1]))}}.Encode()
	req, _ = http.NewRequest(http.MethodPost, base+"/.jitauth/logout", strings.NewReader(form))
	req.Header.Set("Cookie", SessionCookie+"="+cookie)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = NoFollow.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sign-out: %d", resp.StatusCode)
	}
	return nil
}

// FreePort returns a TCP port that was free a moment ago and that no
// port-0 listener can be given meanwhile.
func FreePort() int {
	p, err := freeport.Port()
	if err != nil {
		panic(err)
	}
	return p
}

// BuildCaddy builds cmd/caddy into dir and returns the binary's path.
func BuildCaddy(dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/caddy").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building Caddy: %v\n%s", err, out)
	}
	return bin, nil
}

// StartCaddy runs bin on a Caddyfile with its data and config in home,
// its output appended to log, killed if this process dies, and waits
// until base answers its health endpoint.
func StartCaddy(bin, caddyfile, home, base, log string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, err := Get(NoFollow, base+"/.jitauth/health", ""); err == nil && code == http.StatusOK {
			return cmd, nil
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("caddy at %s did not start; see %s", base, log)
}

// PGSchema makes a schema of its own in the database at pgURL and
// returns pgURL with search_path (and application_name) set to it, and
// a function that drops it.
func PGSchema(ctx context.Context, pgURL, prefix string) (string, func(), error) {
	schema := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %v", pgURL, err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	}
	return u.String(), drop, nil
}
