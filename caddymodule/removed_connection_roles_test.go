package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A connection granted a role (role deploy, say) and was then removed
// from the configuration: its rules grant nothing now, and no sign-in
// through it will ever take the grant back. The grant it left in the
// store must not reach the user's sessions through the connections that
// remain: not at their next sign-in, nor, within user_status_refresh,
// in a session issued before.
func TestRolesOfARemovedConnectionAreNotGranted(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "role member", globalExtra: "\t\tuser_status_refresh 1s\n"})
	st := openStore(t, s.dir)
	live := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(live, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("users: %+v", users)
	}
	// The grant a connection "contractors", since removed from the
	// configuration, left on alice; and a new name, for the earlier
	// session to show that the status refresh read the record.
	if _, err := st.UpdateUser(context.Background(), users[0].ID, func(u *provisioner.User) error {
		u.RoleGrants[provisioner.ConnectionSource("contractors")] = []string{"deploy"}
		u.Name = "Alice Refreshed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var h http.Header
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, _ := live.get(s.base + "/live"); resp.StatusCode != http.StatusOK {
			t.Fatalf("the earlier session: %d", resp.StatusCode)
		}
		if h = s.upstream.lastHeaders(t); h.Get("Remote-Name") == "Alice Refreshed" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h.Get("Remote-Name") != "Alice Refreshed" {
		t.Fatalf("the earlier session did not follow the record within 5s: name %q", h.Get("Remote-Name"))
	}
	if got := h.Get("X-Auth-Roles"); got != "member" {
		t.Errorf("roles of the session issued earlier, after user_status_refresh: %q, want member alone", got)
	}

	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("X-Auth-Roles"); got != "member" {
		t.Errorf("roles at a sign-in through corp: %q, want member alone", got)
	}
}
