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
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jitauth/caddy-jitauth/bench/internal/harness"
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

func run(storeKind, pgURL string, rounds, workers int, after time.Duration) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "jitauth-crash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := harness.BuildCaddy(dir)
	if err != nil {
		return err
	}
	idp, err := harness.StartProvider()
	if err != nil {
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
		storeURL, drop, err := harness.PGSchema(ctx, pgURL, "crash")
		if err != nil {
			return err
		}
		defer drop()
		storeLine = fmt.Sprintf("store postgres %q", storeURL)
		open = func() (provisioner.Store, error) { return pgstore.Open(ctx, storeURL) }
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

	port := harness.FreePort()
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
	for round := 1; round <= rounds; round++ {
		caddy, err := harness.StartCaddy(bin, caddyfile, dir, base, filepath.Join(dir, "caddy.log"))
		if err != nil {
			return err
		}
		// The burst: each worker logs in new users one after another until
		// Caddy dies. Handing the provider its user and starting the login
		// happen under one lock, so each login is known to be that user's.
		type promised struct{ sub, cookie string }
		var mu sync.Mutex
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
					b := harness.NewBrowser(nil)
					// Up to the provider's redirect back: the user is bound
					// to this login now.
					u, cb, err := idp.Begin(b, base+"/.jitauth/start/corp", "crash")
					if err != nil {
						continue
					}
					mu.Lock()
					attempted++
					mu.Unlock()
					cookie, _, err := b.Finish(cb)
					if err != nil || cookie == "" {
						continue
					}
					mu.Lock()
					got = append(got, promised{u.Sub, cookie})
					mu.Unlock()
				}
			})
		}
		time.Sleep(after)
		_ = caddy.Process.Signal(syscall.SIGKILL)
		_ = caddy.Wait()
		close(stop)
		wg.Wait()

		caddy, err = harness.StartCaddy(bin, caddyfile, dir, base, filepath.Join(dir, "caddy.log"))
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

func get(u, cookie string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Cookie", harness.SessionCookie+"="+cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}
