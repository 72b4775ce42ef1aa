package caddymodule_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// directoryDown fails the test store's username lookups: the read a
// JIT-off sign-in makes to find the local user whose name (a verified
// email) it takes.
var directoryDown atomic.Bool

func (f *failingStore) UserByUsername(ctx context.Context, username string) (*provisioner.User, error) {
	if directoryDown.Load() {
		return nil, errStoreDown
	}
	return f.Store.UserByUsername(ctx, username)
}

// A JIT-off sign-in while the directory cannot be read goes on without
// checking the local user whose name it takes (the README says so, and
// the log warns). Its session is named as that user all the same, so
// once the store answers it must follow that user's status as a session
// checked at its sign-in does: a user an administrator disabled must not
// keep, for the whole session_lifetime, a session under their name that
// a store outage let them open (S7: a disabled user loses live sessions
// within a bounded, configured time).
func TestJITOffSessionOpenedDuringAnOutageFollowsTheDisabledHolder(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, faultyStore: true, globalExtra: "\t\tuser_status_refresh 1s\n"})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's login through corp: %d", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/disable", `{"reason":"left"}`, nil); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	// Past the second of the disable's sign-out everywhere, which ends
	// the sessions under her name issued until then.
	time.Sleep(1100 * time.Millisecond)

	directoryDown.Store(true)
	defer directoryDown.Store(false)
	b := newBrowser(t)
	s.queue(alice())
	resp, _ := s.login(b, "partner", "/app")
	if resp.StatusCode != http.StatusOK || s.upstream.lastHeaders(t).Get("Remote-User") != "alice@example.com" {
		t.Fatalf("precondition: the JIT-off login during the outage: %d as %q", resp.StatusCode, s.upstream.lastHeaders(t).Get("Remote-User"))
	}
	// Bob, whose address no local user has, signs in the same way: his
	// session is nobody else's, and stays.
	bob := newBrowser(t)
	s.queue(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true, "name": "Bob"}})
	if resp, _ := s.login(bob, "partner", "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's JIT-off login during the outage: %d", resp.StatusCode)
	}
	directoryDown.Store(false)
	defer func() {
		if resp, _ := bob.get(s.base + "/app"); resp.StatusCode != http.StatusOK {
			t.Errorf("bob's JIT-off session from the outage, under a name no local user has, refused: %d", resp.StatusCode)
		}
	}()

	deadline := time.Now().Add(6 * time.Second)
	for {
		resp, _ := b.get(s.base + "/app")
		if resp.StatusCode != http.StatusOK {
			return // refused once the store answers
		}
		if time.Now().After(deadline) {
			t.Fatal("a JIT-off session opened during an outage under the name of a disabled user still reaches the upstream as that user, " +
				"seconds after the store answers again (user_status_refresh 1s)")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
