package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// An administrator's enable of a user the deprovision rule disabled for
// inactivity holds: the inactivity clock restarts at the enable, so the
// next sweeps, which still see the same old last login, leave the user
// alone until `after` has passed since the enable (README: "an
// administrator can enable the user again").
func TestDeprovisionCountsFromTheLastEnable(t *testing.T) {
	_, admin, st := annUnderADeprovisionRule(t)
	status := func() provisioner.Status {
		u, err := st.UserByUsername(context.Background(), "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return u.Status
	}
	eventually(t, "ann disabled for inactivity", 15*time.Second, func() bool { return status() == provisioner.StatusDisabled })
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/ann@example.com/enable", `{"reason":"back from leave"}`, nil); code != http.StatusOK {
		t.Fatalf("enable: %d", code)
	}
	// Well under `after` since the enable: the rule has no grounds yet.
	time.Sleep(2500 * time.Millisecond)
	if got := status(); got != provisioner.StatusActive {
		t.Errorf("2.5 s after an administrator enabled ann (rule: after 3s), she is %s again", got)
	}
}

// annUnderADeprovisionRule starts a site whose corp connection
// deprovisions users 3 s without a login (swept every second), with an
// admin API on the returned port, and signs ann in through corp once.
func annUnderADeprovisionRule(t *testing.T) (*site, int, *sqlitestore.Store) {
	t.Helper()
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin,
		corpExtra: "deprovision {\n\t\t\t\tafter 3s\n\t\t\t\tevery 1s\n\t\t\t}"})
	st := openStore(t, s.dir)
	s.queue(oidcUserNamed("ann"))
	if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("ann's first login (corp, JIT on): %d", resp.StatusCode)
	}
	return s, admin, st
}
