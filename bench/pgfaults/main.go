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
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/bench/internal/harness"
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
	bin, err := harness.BuildCaddy(dir)
	if err != nil {
		return err
	}
	storeURL, drop, err := harness.PGSchema(ctx, pgURL, "pgfaults")
	if err != nil {
		return err
	}
	defer drop()
	direct, _ := url.Parse(storeURL)
	schema := direct.Query().Get("search_path")
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)

	proxy := tcpproxy.Start(reporter{}, direct.Host)
	defer proxy.Down()
	viaProxy := *direct
	viaProxy.Host = proxy.Addr()

	idp, err := harness.StartProvider()
	if err != nil {
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
		port := harness.FreePort()
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
		if in.cmd, err = harness.StartCaddy(bin, path, idir, in.base, filepath.Join(idir, "caddy.out")); err != nil {
			return err
		}
		defer func() { _ = in.cmd.Process.Kill(); _ = in.cmd.Wait() }()
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
	login := func(via int) {
		b := harness.NewBrowser(nil)
		u, cb, err := idp.Begin(b, insts[via].base+"/.jitauth/start/corp", "pgf")
		if err != nil {
			loginErrs.Add(1)
			return
		}
		cookie, status, err := b.Finish(cb)
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
			sessions = append(sessions, session{u.Sub, cookie, via})
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
		if err := harness.SignOut(insts[via].base, s.cookie); err == nil {
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
			b := harness.NewBrowser(nil)
			if u, cb, err := idp.Begin(b, insts[i].base+"/.jitauth/start/corp", "pgf-r"); err == nil {
				if c, _, err := b.Finish(cb); err == nil && c != "" {
					recovered[i] = time.Since(back)
					mu.Lock()
					sessions = append(sessions, session{u.Sub, c, i})
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
	st, err := pgstore.Open(ctx, storeURL)
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
				code, _ := harness.Get(harness.NoFollow, insts[i].base+"/x", s.cookie)
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
