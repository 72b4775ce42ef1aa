//go:build linux

// Command crash checks that a kill -9 of Caddy in the middle of a burst
// of first logins loses nothing that was promised (issue #14): every
// login whose callback answered with a session cookie has its user in
// the store afterwards, exactly once, with its identity, and that
// session still works once Caddy is back. A login that was cut off may
// or may not have created its user; it must not have created two.
//
//	go run ./bench/crash                       # SQLite, 5 rounds
//	go run ./bench/crash -store postgres       # PostgreSQL (database test)
//
// Each round starts Caddy (cmd/caddy built into a temporary directory,
// a real process), runs -workers concurrent first logins of new users
// through a local OpenID Connect provider (mockoidc), sends SIGKILL to
// Caddy after -after, starts it again on the same store and storage, and
// checks. It prints one line per round and exits 1 on any violation.
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

func main() {
	store := flag.String("store", "sqlite", "sqlite or postgres")
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of its own is made and dropped)")
	rounds := flag.Int("rounds", 5, "kill -9 rounds")
	workers := flag.Int("workers", 16, "concurrent first logins")
	after := flag.Duration("after", 700*time.Millisecond, "how long into the burst Caddy is killed")
	flag.Parse()
	if err := run(*store, *pgURL, *rounds, *workers, *after); err != nil {
		log.Fatalf("crash: %v", err)
	}
}

// user is a provider user with a verified email, so the username is it.
type user struct{ sub string }

func (u user) ID() string { return u.sub }
func (u user) Userinfo([]string) ([]byte, error) {
	return []byte(fmt.Sprintf(`{"sub":%q,"email":%q,"email_verified":true}`, u.sub, u.sub+"@example.com")), nil
}
func (u user) Claims(_ []string, b *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return jwt.MapClaims{"iss": b.Issuer, "sub": u.sub, "aud": []string(b.Audience), "exp": b.ExpiresAt.Unix(),
		"iat": b.IssuedAt.Unix(), "nonce": b.Nonce, "email": u.sub + "@example.com", "email_verified": true}, nil
}

func run(storeKind, pgURL string, rounds, workers int, after time.Duration) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "jitauth-crash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "caddy")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/caddy").CombinedOutput(); err != nil {
		return fmt.Errorf("building Caddy: %v\n%s", err, out)
	}
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		return err
	}
	var idpMu sync.Mutex // mockoidc's queue and sessions are not safe for concurrent use
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

	storeLine := "store sqlite " + filepath.Join(dir, "users.db")
	var open func() (provisioner.Store, error)
	switch storeKind {
	case "sqlite":
		open = func() (provisioner.Store, error) { return sqlitestore.Open(filepath.Join(dir, "users.db")) }
	case "postgres":
		schema := fmt.Sprintf("crash_%d", time.Now().UnixNano())
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			return fmt.Errorf("PostgreSQL at %s: %v", pgURL, err)
		}
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return err
		}
		defer func() { _, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); conn.Close(ctx) }()
		u, _ := url.Parse(pgURL)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		storeLine = fmt.Sprintf("store postgres %q", u.String())
		open = func() (provisioner.Store, error) { return pgstore.Open(ctx, u.String()) }
	default:
		return fmt.Errorf("-store %q: use sqlite or postgres", storeKind)
	}

	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Remote-User"))
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()

	port := freePort()
	base := fmt.Sprintf("http://localhost:%d", port)
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output discard
	}
	storage file_system %s
	jit_auth {
		%s
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
`, filepath.Join(dir, "storage"), storeLine, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, upLn.Addr())), 0o600); err != nil {
		return err
	}

	failed := false
	next := 0
	for round := 1; round <= rounds; round++ {
		caddy, err := startCaddy(bin, caddyfile, dir, base)
		if err != nil {
			return err
		}
		// The burst: each worker logs in new users one after another until
		// Caddy dies. Handing the provider its user and starting the login
		// happen under one lock, so each login is known to be that user's.
		type promised struct{ sub, cookie string }
		var mu, order sync.Mutex
		var got []promised
		attempted := 0
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					order.Lock()
					next++
					u := user{sub: fmt.Sprintf("crash-%d", next)}
					// A login cut off before the provider took its user
					// leaves it queued; the queue holds this one alone.
					idp.UserQueue.Lock()
					idp.UserQueue.Queue = nil
					idp.UserQueue.Unlock()
					idp.QueueUser(u)
					b := newBrowser()
					// Up to the provider's redirect back: the user is bound
					// to this login now.
					cb, err := b.toCallback(base + "/.jitauth/start/corp")
					order.Unlock()
					if err != nil {
						continue
					}
					mu.Lock()
					attempted++
					mu.Unlock()
					cookie, err := b.callback(cb)
					if err != nil || cookie == "" {
						continue
					}
					mu.Lock()
					got = append(got, promised{u.sub, cookie})
					mu.Unlock()
				}
			})
		}
		time.Sleep(after)
		_ = caddy.Process.Signal(syscall.SIGKILL)
		_ = caddy.Wait()
		close(stop)
		wg.Wait()

		caddy, err = startCaddy(bin, caddyfile, dir, base)
		if err != nil {
			return err
		}
		st, err := open()
		if err != nil {
			return err
		}
		violations := 0
		for _, p := range got {
			u, err := st.UserByIdentity(ctx, provisioner.IdentityKey{Connection: "corp", Issuer: cfg.Issuer, Subject: p.sub})
			if err != nil {
				fmt.Printf("round %d: %s got a session but has no user after the crash: %v\n", round, p.sub, err)
				violations++
				continue
			}
			if byName, err := st.UsersByEmail(ctx, p.sub+"@example.com"); err != nil || len(byName) != 1 {
				fmt.Printf("round %d: %s: %d users with its email (%v)\n", round, p.sub, len(byName), err)
				violations++
			}
			if ids, err := st.Identities(ctx, u.ID); err != nil || len(ids) != 1 {
				fmt.Printf("round %d: %s: %d identities (%v)\n", round, p.sub, len(ids), err)
				violations++
			}
			// The session issued before the crash works after it.
			resp, body, err := get(base+"/", p.cookie)
			if err != nil || resp != http.StatusOK || body != u.Username {
				fmt.Printf("round %d: %s's session after the restart: %d %q (%v)\n", round, p.sub, resp, body, err)
				violations++
			}
		}
		st.Close()
		_ = caddy.Process.Signal(syscall.SIGTERM)
		_ = caddy.Wait()
		fmt.Printf("round %d (%s): %d logins reached the provider's answer, %d got a session before kill -9 after %s; %d violations\n",
			round, storeKind, attempted, len(got), after, violations)
		if violations > 0 {
			failed = true
		}
		if len(got) == 0 {
			fmt.Printf("round %d: no login completed before the kill; raise -after\n", round)
			failed = true
		}
	}
	if failed {
		return errors.New("a bound was broken (see above)")
	}
	fmt.Println("crash: every login that got a session kept its user, exactly once, with its identity, and its session")
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startCaddy(bin, caddyfile, dir, base string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	logf, err := os.OpenFile(filepath.Join(dir, "caddy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/.jitauth/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("caddy did not start; see %s", filepath.Join(dir, "caddy.log"))
}

type browser struct{ c *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// toCallback follows the login until the provider redirects to our
// callback, and returns that URL without visiting it.
func (b *browser) toCallback(start string) (string, error) {
	u := start
	for range 5 {
		resp, err := b.c.Get(u)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("%s: %d without a redirect", u, resp.StatusCode)
		}
		if strings.Contains(loc.Path, "/.jitauth/callback/") {
			return loc.String(), nil
		}
		u = loc.String()
	}
	return "", errors.New("no callback")
}

// callback visits the callback and returns the session cookie it set.
func (b *browser) callback(u string) (string, error) {
	resp, err := b.c.Get(u)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "jitauth_session" && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", nil
}

func get(u, cookie string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Cookie", "jitauth_session="+cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}
