//go:build linux

// Command pgfaults runs two Caddy instances on one PostgreSQL store
// through logins and logouts while the database fails under them, and
// exits 1 when a bound breaks (issue #14):
//
//   - every backend of the store is killed mid-run (pg_terminate_backend),
//     twice;
//   - the database becomes unreachable for -outage (a TCP proxy between
//     Caddy and PostgreSQL cuts every connection and refuses new ones,
//     as a stopped server or a network partition does), then comes back;
//   - with -restart-server, the PostgreSQL server itself is restarted
//     (pg_ctlcluster), which ends every connection.
//
// Bounds: no session is issued for a login whose provisioning failed
// (every session's user exists afterwards, exactly once); no
// acknowledged logout is lost (each such session is refused by both
// instances within -logout-bound, outage or not); logins work again
// within -recovery of the database coming back, with no restart.
//
//	go run ./bench/pgfaults
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
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

	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

const (
	hashKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
	blockKey = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="
)

func main() {
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of its own is made and dropped)")
	outage := flag.Duration("outage", 10*time.Second, "how long the database is unreachable")
	recovery := flag.Duration("recovery", 15*time.Second, "bound: logins work again this soon after the database is back")
	logoutBound := flag.Duration("logout-bound", 30*time.Second, "bound: an acknowledged logout is refused by both instances this soon after the database is back")
	restart := flag.Bool("restart-server", false, "also restart the PostgreSQL server (pg_ctlcluster; needs root)")
	flag.Parse()
	if err := run(*pgURL, *outage, *recovery, *logoutBound, *restart); err != nil {
		log.Fatalf("pgfaults: %v", err)
	}
}

// reporter lets internal/tcpproxy report to this command.
type reporter struct{}

func (reporter) Helper()                      {}
func (reporter) Fatalf(f string, args ...any) { log.Fatalf(f, args...) }
func (reporter) Cleanup(func())               {}

type user struct{ sub string }

func (u user) ID() string { return u.sub }
func (u user) Userinfo([]string) ([]byte, error) {
	return []byte(fmt.Sprintf(`{"sub":%q,"email":%q,"email_verified":true}`, u.sub, u.sub+"@example.com")), nil
}
func (u user) Claims(_ []string, b *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return jwt.MapClaims{"iss": b.Issuer, "sub": u.sub, "aud": []string(b.Audience), "exp": b.ExpiresAt.Unix(),
		"iat": b.IssuedAt.Unix(), "nonce": b.Nonce, "email": u.sub + "@example.com", "email_verified": true}, nil
}

type instance struct {
	base string
	cmd  *exec.Cmd
}

func run(pgURL string, outage, recovery, logoutBound time.Duration, restart bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "jitauth-pgfaults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "caddy")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/caddy").CombinedOutput(); err != nil {
		return fmt.Errorf("building Caddy: %v\n%s", err, out)
	}

	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %v", pgURL, err)
	}
	defer admin.Close(ctx)
	schema := fmt.Sprintf("pgfaults_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }()

	pu, _ := url.Parse(pgURL)
	proxy := tcpproxy.Start(reporter{}, pu.Host)
	defer proxy.Down()
	viaProxy := *pu
	viaProxy.Host = proxy.Addr()
	q := viaProxy.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema) // so the fault can find exactly these backends
	viaProxy.RawQuery = q.Encode()
	direct := *pu
	dq := direct.Query()
	dq.Set("search_path", schema)
	direct.RawQuery = dq.Encode()

	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		return err
	}
	var idpMu, order sync.Mutex
	_ = idp.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			idpMu.Lock()
			defer idpMu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := idp.Start(ln, nil); err != nil {
		return err
	}
	defer idp.Shutdown()
	cfg := idp.Config()
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Header.Get("Remote-User")) })}
	upLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()

	var insts []*instance
	for i := range 2 {
		idir := filepath.Join(dir, fmt.Sprintf("i%d", i))
		_ = os.MkdirAll(idir, 0o700)
		port := freePort()
		in := &instance{base: fmt.Sprintf("http://localhost:%d", port)}
		caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %s/caddy.log
		level WARN
	}
	storage file_system %s/storage
	jit_auth {
		store postgres %q
		cookie_keys %s %s
		user_status_refresh 2s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, idir, idir, viaProxy.String(), hashKey, blockKey, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, upLn.Addr())
		path := filepath.Join(idir, "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
			return err
		}
		in.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
		in.cmd.Env = append(os.Environ(), "HOME="+idir, "XDG_DATA_HOME="+idir, "XDG_CONFIG_HOME="+idir)
		in.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := in.cmd.Start(); err != nil {
			return err
		}
		defer func() { _ = in.cmd.Process.Kill(); _ = in.cmd.Wait() }()
		if err := waitUp(in.base); err != nil {
			return err
		}
		insts = append(insts, in)
	}

	type session struct {
		sub, cookie string
		via         int
	}
	var mu sync.Mutex
	var sessions []session  // logins that got a session
	var loggedOut []session // logouts that were acknowledged
	var loginErrs, refusedLogins atomic.Int64
	next := 0
	login := func(via int) {
		b := newBrowser()
		order.Lock()
		next++
		u := user{sub: fmt.Sprintf("pgf-%d", next)}
		idp.UserQueue.Lock()
		idp.UserQueue.Queue = nil
		idp.UserQueue.Unlock()
		idp.QueueUser(u)
		cb, err := toCallback(b, insts[via].base)
		order.Unlock()
		if err != nil {
			loginErrs.Add(1)
			return
		}
		cookie, status, err := finish(b, cb)
		switch {
		case err != nil:
			loginErrs.Add(1)
		case cookie == "":
			refusedLogins.Add(1) // a clear refusal during the fault: fine, if no session
			if status < 500 {
				fmt.Printf("login through %d refused with %d\n", via, status)
			}
		default:
			mu.Lock()
			sessions = append(sessions, session{u.sub, cookie, via})
			mu.Unlock()
		}
	}
	logout := func(via int) {
		mu.Lock()
		if len(sessions) == 0 {
			mu.Unlock()
			return
		}
		s := sessions[len(sessions)-1]
		sessions = sessions[:len(sessions)-1]
		mu.Unlock()
		if ok := signOut(insts[via].base, s.cookie); ok {
			mu.Lock()
			loggedOut = append(loggedOut, s)
			mu.Unlock()
		} else {
			mu.Lock()
			sessions = append(sessions, s) // not acknowledged: still a live session
			mu.Unlock()
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%3 == 2 {
					logout((w + i) % 2)
				} else {
					login((w + i) % 2)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	terminate := func() {
		tag, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, schema)
		fmt.Printf("%s: killed the store's backends (%v, %v)\n", time.Now().Format("15:04:05"), tag, err)
	}
	time.Sleep(3 * time.Second)
	terminate()
	time.Sleep(3 * time.Second)
	terminate()
	time.Sleep(3 * time.Second)
	fmt.Printf("%s: database unreachable for %s\n", time.Now().Format("15:04:05"), outage)
	proxy.Down()
	time.Sleep(outage)
	proxy.Up()
	back := time.Now()
	fmt.Printf("%s: database reachable again\n", back.Format("15:04:05"))
	if restart {
		time.Sleep(3 * time.Second)
		ver, _ := os.ReadDir("/etc/postgresql")
		if len(ver) > 0 {
			out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", ver[0].Name(), "main", "restart").CombinedOutput()
			fmt.Printf("%s: restarted the PostgreSQL server (%v) %s\n", time.Now().Format("15:04:05"), err, strings.TrimSpace(string(out)))
			back = time.Now()
		}
	}
	// Recovery: a login through each instance works within the bound.
	var recovered [2]time.Duration
	for i := range insts {
		for {
			b := newBrowser()
			order.Lock()
			next++
			u := user{sub: fmt.Sprintf("pgf-r-%d", next)}
			idp.UserQueue.Lock()
			idp.UserQueue.Queue = nil
			idp.UserQueue.Unlock()
			idp.QueueUser(u)
			cb, err := toCallback(b, insts[i].base)
			order.Unlock()
			if err == nil {
				if c, _, err := finish(b, cb); err == nil && c != "" {
					recovered[i] = time.Since(back)
					mu.Lock()
					sessions = append(sessions, session{u.sub, c, i})
					mu.Unlock()
					break
				}
			}
			if time.Since(back) > recovery {
				recovered[i] = -1
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	// Every session's user exists, exactly once.
	st, err := pgstore.Open(ctx, direct.String())
	if err != nil {
		return err
	}
	defer st.Close()
	violations := 0
	mu.Lock()
	all := append(append([]session{}, sessions...), loggedOut...)
	mu.Unlock()
	for _, s := range all {
		u, err := st.UserByIdentity(ctx, provisioner.IdentityKey{Connection: "corp", Issuer: cfg.Issuer, Subject: s.sub})
		if err != nil {
			fmt.Printf("%s got a session but has no user: %v\n", s.sub, err)
			violations++
			continue
		}
		if same, _ := st.UsersByEmail(ctx, u.Email); len(same) != 1 {
			fmt.Printf("%s: %d users\n", s.sub, len(same))
			violations++
		}
	}
	// Every acknowledged logout holds on both instances within the bound.
	lostLogouts := 0
	deadline := back.Add(logoutBound)
	for _, s := range loggedOut {
		for i := range insts {
			for {
				code := get(insts[i].base+"/x", s.cookie)
				if code == http.StatusFound {
					break
				}
				if time.Now().After(deadline) {
					fmt.Printf("the logout of %s (through %d) is not refused by instance %d: %d\n", s.sub, s.via, i, code)
					lostLogouts++
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	fmt.Printf("\n%d sessions issued, %d logouts acknowledged, %d logins refused cleanly during faults, %d logins cut off\n",
		len(all), len(loggedOut), refusedLogins.Load(), loginErrs.Load())
	fmt.Printf("logins worked again %s (A) and %s (B) after the database came back (bound %s)\n", recovered[0].Round(time.Millisecond), recovered[1].Round(time.Millisecond), recovery)
	fmt.Printf("sessions without their user: %d; acknowledged logouts not holding on both instances within %s: %d\n", violations, logoutBound, lostLogouts)
	if violations > 0 || lostLogouts > 0 || recovered[0] < 0 || recovered[1] < 0 {
		return errors.New("a bound was broken (see above)")
	}
	if len(loggedOut) == 0 || len(all) == 0 {
		return errors.New("no logins or logouts completed: nothing was checked")
	}
	fmt.Println("pgfaults: every bound held")
	return nil
}

func freePort() int {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitUp(base string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/.jitauth/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s did not come up", base)
}

type browser struct{ c *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func toCallback(b *browser, base string) (string, error) {
	next := base + "/.jitauth/start/corp"
	for range 5 {
		resp, err := b.c.Get(next)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("%d without a redirect", resp.StatusCode)
		}
		if strings.Contains(loc.Path, "/.jitauth/callback/") {
			return loc.String(), nil
		}
		next = loc.String()
	}
	return "", errors.New("no callback")
}

func finish(b *browser, cb string) (string, int, error) {
	resp, err := b.c.Get(cb)
	if err != nil {
		return "", 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "jitauth_session" && c.Value != "" {
			return c.Value, resp.StatusCode, nil
		}
	}
	return "", resp.StatusCode, nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signOut posts the sign-out form for the session cookie; true when the
// logout was acknowledged (200).
func signOut(base, cookie string) bool {
	c := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, base+"/.jitauth/logout", nil)
	req.Header.Set("Cookie", "jitauth_session="+cookie)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		return false
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/.jitauth/logout", strings.NewReader(url.Values{"csrf": {html.UnescapeString(string(m[1]))}}.Encode()))
	req.Header.Set("Cookie", "jitauth_session="+cookie)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func get(u, cookie string) int {
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", "jitauth_session="+cookie)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
