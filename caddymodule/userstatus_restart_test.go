package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A local role taken away through the admin API reaches the user's live
// sessions within user_status_refresh; it must not come back when Caddy
// restarts (S7, S17). The restarted process has read none of its users
// yet, and admitted a session older than user_status_refresh with the
// roles its cookie carried (here the admin role an `allow role admin`
// site requires) until the background status read caught up. Now such
// a session's first request waits for its user's first read; while the
// store does not answer that read, the request is answered 503 (as an
// unchecked session is), never with the roles of the cookie.
func TestRevokedRoleHoldsOnTheFirstRequestAfterARestart(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, faultyStore: true,
		globalExtra: "\t\tuser_status_refresh 1s", handlerBlock: "\t\tallow role admin"})
	user := "/jit_auth/users/alice@example.com"
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/secret"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("first login, without the role: %d, want 403", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPatch, user, `{"grant_roles": ["admin"]}`, nil); code != http.StatusOK {
		t.Fatalf("grant: %d", code)
	}
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with the role: %d", resp.StatusCode)
	}
	if roles := s.upstream.lastHeaders(t).Get("X-Auth-Roles"); !strings.Contains(roles, "admin") {
		t.Fatalf("roles after the grant: %q", roles)
	}
	if code := adminCall(t, admin, http.MethodPatch, user, `{"revoke_roles": ["admin"]}`, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	eventually(t, "the revoked role ends the admission", 6*time.Second, func() bool {
		resp, _ := b.get(s.base + "/secret")
		return resp.StatusCode == http.StatusForbidden
	})

	cfg := adaptCaddyfile(t, s.caddyfile, `"backend":"sqlite"`, `"backend":"test_failing"`)
	restart := func() { t.Helper(); restartCaddy(t, cfg) }
	get := func() int {
		t.Helper()
		hits := s.upstream.count()
		resp, _ := b.get(s.base + "/secret")
		if resp.StatusCode == http.StatusOK || s.upstream.count() != hits {
			t.Errorf("after a restart, the session reached the site that requires the role taken from it (%d, roles %q)",
				resp.StatusCode, s.upstream.lastHeaders(t).Get("X-Auth-Roles"))
		}
		return resp.StatusCode
	}

	restart()
	if code := get(); code != http.StatusForbidden {
		t.Errorf("first request after a restart: %d, want 403", code)
	}

	// The store does not answer the restarted process's read of the
	// user: the session is not let in with its cookie's roles meanwhile.
	userReadsDown.Store(true)
	t.Cleanup(func() { userReadsDown.Store(false) })
	restart()
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("first request after a restart, the user's read failing: %d, want 503", code)
	}
	userReadsDown.Store(false)
	eventually(t, "the session judged by its user's read once the store answers", 6*time.Second, func() bool {
		return get() == http.StatusForbidden
	})
}

// After a restart, the sessions older than user_status_refresh wait for
// their users' first reads; reloads meanwhile (each replaces the
// configuration whose store a read may have begun with) must not lose
// those reads: every session is let in, none is answered 503 after
// waiting for a read that never came. On PostgreSQL each configuration
// has its own pool, which its cleanup closes: a read begun with it
// fails, and is made again with the next configuration's.
func TestFirstReadsAfterARestartSurviveReloads(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { firstReadsSurviveReloads(t, "") })
	t.Run("postgres", func(t *testing.T) {
		_, connString := pgSchema(t)
		firstReadsSurviveReloads(t, fmt.Sprintf("store postgres %q", connString))
	})
}

func firstReadsSurviveReloads(t *testing.T, store string) {
	s := startSiteOpts(t, siteOptions{store: store, globalExtra: "\t\tuser_status_refresh 1s"})
	const users = 12
	var sessions []*http.Cookie
	for i := range users {
		b := newBrowser(t)
		s.queue(numberedUser(i))
		if resp, body := s.login(b, "corp", "/app"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login %d: %d %s", i, resp.StatusCode, body)
		}
		sessions = append(sessions, b.cookie(s.base, "jitauth_session"))
	}
	time.Sleep(1100 * time.Millisecond) // older than user_status_refresh
	restartCaddy(t, adaptCaddyfile(t, s.caddyfile))

	type answer struct {
		user int
		code int
		took time.Duration
	}
	answers := make(chan answer, users)
	for i, c := range sessions {
		go func() {
			time.Sleep(time.Duration(i) * 40 * time.Millisecond) // spread over the reloads
			start := time.Now()
			code := 0
			for range 5 { // a connection a reload closes unanswered is sent again
				req, _ := http.NewRequest(http.MethodGet, s.base+"/app", nil)
				req.Header.Set("Accept", "text/html")
				req.Header.Set("Cookie", c.Name+"="+c.Value)
				resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
				if err == nil {
					resp.Body.Close()
					code = resp.StatusCode
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			answers <- answer{i, code, time.Since(start)}
		}()
	}
	for range 20 {
		reloadInProcess(t, s.caddyfile)
	}
	for range users {
		a := <-answers
		if a.code != http.StatusOK {
			t.Errorf("user %d's session after a restart, during reloads: %d after %s, want 200", a.user, a.code, a.took.Round(time.Millisecond))
		}
	}
}

// A sign-in reads its user from the store: that is the user's first
// read on this instance, and the session it issues does not wait for
// another, also once it is older than user_status_refresh while the
// store does not answer the status refresh.
func TestASignInIsItsUsersFirstRead(t *testing.T) {
	s := startSiteOpts(t, siteOptions{faultyStore: true, globalExtra: "\t\tuser_status_refresh 1s"})
	userReadsDown.Store(true)
	t.Cleanup(func() { userReadsDown.Store(false) })
	b := newBrowser(t)
	s.queue(alice())
	if resp, body := s.login(b, "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // older than user_status_refresh
	// Another sign-in changes what the checks kept depend on: the next
	// request of alice's session is checked again.
	s.queue(numberedUser(1))
	if resp, body := s.login(newBrowser(t), "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another login: %d %s", resp.StatusCode, body)
	}
	start := time.Now()
	if resp, _ := b.get(s.base + "/app"); resp.StatusCode != http.StatusOK {
		t.Errorf("the session a sign-in here issued, its user not read since: %d after %s, want 200", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
}

// A JIT-off session under a local user's name follows that user's
// status (its holder). A disable made in the store directly (jit-users,
// SQL, another tool: no sign-out everywhere comes with it) reaches the
// session within user_status_refresh; it must not be undone by a
// restart. The restarted process has read no holder yet, and admitted a
// JIT-off session older than user_status_refresh as if its holder were
// active until the background read caught up. Now such a session's
// first request waits for its holder's first read, as a JIT-on
// session's waits for its user's; while the store does not answer that
// read, the request is answered 503, never let in.
func TestDisabledHolderHoldsOnTheFirstRequestAfterARestart(t *testing.T) {
	s := startSiteOpts(t, siteOptions{faultyStore: true, globalExtra: "\t\tuser_status_refresh 1s"})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through corp: %d", resp.StatusCode)
	}
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "partner", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through partner (JIT off): %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Fatalf("precondition: the JIT-off session's name %q, want alice@example.com (her local user's)", got)
	}
	st := openStore(t, s.dir)
	u, err := st.UserByUsername(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(context.Background(), u.ID, provisioner.StatusDisabled, "left the company"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disable in the store ends the JIT-off session", 6*time.Second, func() bool {
		hits := s.upstream.count()
		b.get(s.base + "/app")
		return s.upstream.count() == hits
	})
	time.Sleep(1100 * time.Millisecond) // the session is older than user_status_refresh

	cfg := adaptCaddyfile(t, s.caddyfile, `"backend":"sqlite"`, `"backend":"test_failing"`)
	restart := func() { t.Helper(); restartCaddy(t, cfg) }
	get := func() int {
		t.Helper()
		hits := s.upstream.count()
		resp, _ := b.get(s.base + "/app")
		if resp.StatusCode == http.StatusOK || s.upstream.count() != hits {
			t.Errorf("after a restart, the JIT-off session of the disabled holder reached the upstream (%d, Remote-User %q)",
				resp.StatusCode, s.upstream.lastHeaders(t).Get("Remote-User"))
		}
		return resp.StatusCode
	}

	restart()
	get()

	// The store does not answer the restarted process's read of the
	// holder: the session is not let in meanwhile.
	userReadsDown.Store(true)
	t.Cleanup(func() { userReadsDown.Store(false) })
	restart()
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("first request after a restart, the holder's read failing: %d, want 503", code)
	}
	userReadsDown.Store(false)
	eventually(t, "the session judged by its holder's read once the store answers", 6*time.Second, func() bool {
		return get() != http.StatusServiceUnavailable
	})
}

// A JIT-off sign-in under a local user's name reads that user (its
// holder) from the directory, and is let in only when the holder is
// active: that is the holder's first status read on this instance, as a
// JIT-on sign-in's is its user's. The JIT-off session it issues must not
// wait for another once it is older than user_status_refresh, nor be
// answered 503 while the store answers the directory but not the reads
// of users by ID (the holder's read by ID after a restart that dropped
// what the process knew of her).
func TestAJITOffSignInIsItsHoldersFirstRead(t *testing.T) {
	s := startSiteOpts(t, siteOptions{faultyStore: true, globalExtra: "\t\tuser_status_refresh 1s"})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through corp: %d", resp.StatusCode)
	}
	// The restarted process has read no one: alice's sign-in through
	// corp no longer counts here.
	restartCaddy(t, adaptCaddyfile(t, s.caddyfile, `"backend":"sqlite"`, `"backend":"test_failing"`))
	userReadsDown.Store(true)
	t.Cleanup(func() { userReadsDown.Store(false) })
	b := newBrowser(t)
	s.queue(alice())
	if resp, body := s.login(b, "partner", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through partner (JIT off): %d %s", resp.StatusCode, body)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Fatalf("precondition: the JIT-off session's name %q, want alice@example.com (her local user's)", got)
	}
	time.Sleep(1100 * time.Millisecond) // older than user_status_refresh
	// Another sign-in changes what the checks kept depend on: the next
	// request of the JIT-off session is checked again.
	s.queue(numberedUser(1))
	if resp, body := s.login(newBrowser(t), "corp", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another login: %d %s", resp.StatusCode, body)
	}
	start := time.Now()
	if resp, _ := b.get(s.base + "/app"); resp.StatusCode != http.StatusOK {
		t.Errorf("the JIT-off session a sign-in here issued, its holder not read by ID since: %d after %s, want 200",
			resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
}

// restartCaddy stops the test's Caddy and starts it again on cfg, the
// restart these tests need.
func restartCaddy(t *testing.T, cfg []byte) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("starting again: %v", err)
	}
}
