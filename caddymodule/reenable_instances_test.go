package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A user disabled and enabled again through one instance signs in again
// on another instance sharing the store, as the README's enable says
// ("the user signs in again"). The other instance learnt of the disable
// (its status check of a session it saw) and keeps it until its next
// user_status_refresh; the sign-in there reads the user from the store,
// active, and the session it issues must not be refused by that older
// reading: else the user, enabled again, is sent back to sign in, again
// and again, for up to user_status_refresh (a minute by default).
func TestReenabledUserSignsInOnAnInstanceThatSawTheDisable(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()

	// B reads the revocations only at its start, so what it learns of
	// the disable comes from its status check alone; its status
	// refresh is the default minute.
	dirB := filepath.Join(dir, "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	portB := freePort(t)
	baseB := fmt.Sprintf("http://localhost:%d", portB)
	startCaddyProcess(t, bin, dirB, pgCaddyfile(dirB, fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1h", connString),
		portB, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()), baseB)

	dirA := filepath.Join(dir, "a")
	if err := os.MkdirAll(dirA, 0o700); err != nil {
		t.Fatal(err)
	}
	admin := freePort(t)
	portA := freePort(t)
	baseA := fmt.Sprintf("http://localhost:%d", portA)
	runCaddyfile(t, strings.Replace(pgCaddyfile(dirA, fmt.Sprintf("store postgres %q", connString), portA, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()),
		"admin off", fmt.Sprintf("admin localhost:%d", admin), 1))

	// Alice signs in through A; the administrator disables her there.
	first := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := first.follow(baseA+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through A: %d %s", resp.StatusCode, body)
	}
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/disable", "", nil); code != http.StatusOK {
		t.Fatalf("disable through A: %d", code)
	}
	// Her browser goes to B (cookies do not tell ports apart), which
	// checks her status at once and refuses her from then on.
	eventually(t, "B refuses the disabled user's session", 10*time.Second, func() bool {
		resp, _ := first.get(baseB + "/app")
		return resp.StatusCode == http.StatusFound
	})

	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/enable", "", nil); code != http.StatusOK {
		t.Fatalf("enable through A: %d", code)
	}
	// Enabled again, she signs in through B.
	b := newBrowser(t)
	idp.QueueUser(alice())
	calledBack := false
	resp, body, visited := b.follow(baseB+"/.jitauth/start/corp?rd=%2Fapp", func(u *url.URL) bool {
		if strings.HasPrefix(u.Path, "/.jitauth/callback/") {
			calledBack = true
			return false
		}
		// After the callback, a way back to signing in is the refusal.
		return calledBack && (strings.HasPrefix(u.Path, "/.jitauth/") || u.Host != strings.TrimPrefix(baseB, "http://"))
	})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" {
		t.Errorf("the enabled user's sign-in through B ended in %d at %s (visited %v), want the application: "+
			"B refuses her new session by the disable it read before the enable\n%s", resp.StatusCode, resp.Request.URL, visited, body)
	}
}

// A bearer token is checked against the store when it is first seen
// (provisioner.Recognise reads its user); a user enabled again through
// another instance (here: in the store, as that instance writes it) is
// let in by it at once, not refused by this instance's reading of the
// disable until its next user_status_refresh.
func TestReenabledUsersBearerTokenIsAcceptedAtOnce(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin,
		handlerBlock: "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n"})
	iss := s.idp.Config().Issuer
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	disableHereEnableElsewhere(t, s, admin)
	if code, body, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub"))); code != http.StatusOK {
		t.Errorf("a new token of the user enabled again: %d %s, want 200: the store says she is active", code, body)
	}
}

// The same for a sign-in through a connection with JIT off under the
// verified email of a local user (its holder): the sign-in found the
// holder active, so the session it issues is not refused by this
// instance's older reading of the holder's disable.
func TestReenabledHolderSignsInThroughAJITOffConnectionAtOnce(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through corp: %d", resp.StatusCode)
	}
	disableHereEnableElsewhere(t, s, admin)
	// A sign-in in the second of the disable's sign-out everywhere is
	// refused by it; this one comes after.
	time.Sleep(1100 * time.Millisecond)
	s.queue(alice())
	b := newBrowser(t)
	calledBack := false
	resp, _, visited := b.follow(s.base+"/.jitauth/start/partner?rd=%2Fapp", func(u *url.URL) bool {
		if strings.HasPrefix(u.Path, "/.jitauth/callback/") {
			calledBack = true
			return false
		}
		return calledBack && strings.HasPrefix(u.Path, "/.jitauth/")
	})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" {
		t.Errorf("the enabled holder's JIT-off sign-in ended in %d at %s (visited %v), want the application", resp.StatusCode, resp.Request.URL, visited)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); resp.StatusCode == http.StatusOK && got != "alice@example.com" {
		t.Errorf("Remote-User %q, want the holder's name", got)
	}
}

// disableHereEnableElsewhere disables alice through s's admin endpoint
// (s refuses her at once) and enables her again in the store, as
// another instance sharing it would.
func disableHereEnableElsewhere(t *testing.T, s *site, admin int) {
	t.Helper()
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/disable", "", nil); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	st := openStore(t, s.dir)
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("%d users", len(users))
	}
	if err := st.SetStatus(t.Context(), users[0].ID, provisioner.StatusActive, "back"); err != nil {
		t.Fatal(err)
	}
}
