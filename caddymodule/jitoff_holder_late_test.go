package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// A JIT-off session named by a verified email that no local user had
// when it was issued (so it carries no Holder) still ends with the
// local user who then takes the name (the same mailbox, a first login
// through corp) when an administrator disables them or signs them out
// everywhere (S7, S15): the sign-out is recorded under the name too.
func TestJITOffSessionFromBeforeTheLocalUserFollowsThem(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	user := "/jit_auth/users/alice@example.com"
	for i, change := range []string{"disable", "signout"} {
		b := newBrowser(t)
		s.queue(alice())
		if resp, _ := s.login(b, "partner", "/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: login through partner (JIT off): %d", change, resp.StatusCode)
		}
		if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
			t.Fatalf("%s: JIT-off name %q", change, got)
		}
		if i == 0 {
			// Alice's first login through corp (JIT on) creates the local
			// user alice@example.com: the same name, the same mailbox.
			s.queue(alice())
			if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login through corp: %d", resp.StatusCode)
			}
		}
		time.Sleep(1100 * time.Millisecond) // a cutoff covers its own second
		if code := adminCall(t, admin, http.MethodPost, user+"/"+change, "", nil); code != http.StatusOK {
			t.Fatalf("%s: %d", change, code)
		}
		hits := s.upstream.count()
		resp, _ := b.get(s.base + "/whoami")
		if s.upstream.count() != hits {
			t.Errorf("after the administrator's %s of local user alice@example.com, a JIT-off session issued before that user existed still reached the upstream as Remote-User %q (%d)",
				change, s.upstream.lastHeaders(t).Get("Remote-User"), resp.StatusCode)
		}
		if change == "disable" {
			if code := adminCall(t, admin, http.MethodPost, user+"/enable", "", nil); code != http.StatusOK {
				t.Fatalf("enable: %d", code)
			}
			time.Sleep(1100 * time.Millisecond)
		}
	}
}
