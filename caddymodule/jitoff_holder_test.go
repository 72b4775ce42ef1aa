package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A JIT-off connection names a session by the user's verified email,
// "the same name on every connection, JIT on or off": the name a local
// user of a JIT-on connection also has. Disabling that local user must
// then keep that name from reaching the upstream through the JIT-off
// connection: otherwise the account an administrator disabled is used
// again, by the same person, under the same Remote-User (S7, S15; WSO2
// product-is#11277).
func TestDisabledUserStaysOutThroughAJITOffConnection(t *testing.T) {
	s := startIdentitySite(t)
	alice := func() *oidcUser { return person("alice-sub", "alice@example.com", true, "alice") }

	if got := loginAs(s, "corp", alice(), ""); got.user != "alice@example.com" {
		t.Fatalf("first login through corp (JIT on): %d %q", got.status, got.user)
	}
	st := openStore(t, s.dir)
	u, err := st.UserByUsername(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(context.Background(), u.ID, provisioner.StatusDisabled, "left the company"); err != nil {
		t.Fatal(err)
	}
	// Through corp: refused, as documented.
	if got := loginAs(s, "corp", alice(), ""); got.user != "" || got.status != http.StatusForbidden {
		t.Fatalf("disabled user through corp: %d %q", got.status, got.user)
	}
	// Through partner (JIT off, same provider account or another
	// provider vouching for the same mailbox): the disabled account's
	// name reaches the upstream.
	if got := loginAs(s, "partner", alice(), ""); got.user != "" {
		t.Errorf("the disabled local user %q reached the upstream as Remote-User %q through the JIT-off connection partner (status %d)", u.Username, got.user, got.status)
	}
}

// A JIT-on username taken from a verified email stays when the email
// changes at the provider (sync override writes the new email, never a
// new username). The mailbox's next owner, a different person with a
// different subject, then signs in through a JIT-off connection and
// reaches the upstream under the very same Remote-User (S15: "never the
// same for two identities, across every connection of a site, JIT on or
// off"; README: "An email-shaped name is only ever the user's verified
// email").
func TestAnEmailNameAUserNoLongerHasIsNotAJITOffName(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("carol-sub", "carol@example.com", true, "carol"), ""); got.user != "carol@example.com" {
		t.Fatalf("Carol's first login: %d %q", got.status, got.user)
	}
	// Carol's address changes at the provider; her next login syncs it.
	if got := loginAs(s, "corp", person("carol-sub", "carol.new@example.com", true, "carol"), ""); got.user == "" {
		t.Fatalf("Carol's second login: %d", got.status)
	}
	carol := s.upstream.lastHeaders(t)
	t.Logf("Carol now: Remote-User %q, Remote-Email %q", carol.Get("Remote-User"), carol.Get("Remote-Email"))

	// The old mailbox goes to Dave, another account at the provider.
	dave := loginAs(s, "partner", person("dave-sub", "carol@example.com", true, "dave"), "")
	if dave.user != "" && dave.user == carol.Get("Remote-User") {
		t.Errorf("Carol (corp, subject carol-sub, email now %q) and Dave (partner, subject dave-sub) both reach the upstream as Remote-User %q",
			carol.Get("Remote-Email"), dave.user)
	}
}

// A JIT-off session under a local user's name (the same verified
// email) follows that user: an administrator's disable or sign-out
// everywhere ends it as it ends the user's own sessions (S7).
func TestJITOffSessionUnderALocalUsersNameFollowsThatUser(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	user := "/jit_auth/users/alice@example.com"
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through corp: %d", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond) // sessions carry whole seconds; a cutoff covers its own second
	for _, change := range []string{"disable", "signout"} {
		b := newBrowser(t)
		s.queue(alice())
		if resp, _ := s.login(b, "partner", "/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: login through partner (JIT off): %d", change, resp.StatusCode)
		}
		if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
			t.Fatalf("%s: JIT-off name %q, want alice@example.com (the same verified email on every connection)", change, got)
		}
		path := user + "/" + change
		if code := adminCall(t, admin, http.MethodPost, path, "", nil); code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		hits := s.upstream.count()
		resp, _ := b.get(s.base + "/whoami")
		if s.upstream.count() != hits {
			t.Errorf("after the administrator's %s of alice, her JIT-off session under the same name still reached the upstream (%d)", change, resp.StatusCode)
		}
		if change == "disable" {
			if code := adminCall(t, admin, http.MethodPost, user+"/enable", "", nil); code != http.StatusOK {
				t.Fatalf("enable: %d", code)
			}
			time.Sleep(1100 * time.Millisecond)
		}
	}
}
