package caddymodule_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// With the user store down, a JIT login fails closed (503, "Sign-in
// temporarily unavailable"). What an operator watching the metrics and
// the audit log sees must say that: the README lists the logins'
// outcomes as succeeded, refused, denied, failed, and "login denied" as
// the allow rules' and conflicts' event. A store outage is neither: it
// is the site failing, not the user being denied. Today it is counted
// as jit_auth_logins_total{outcome="denied"} and
// jit_auth_denials_total{reason="provisioning"} (the reason an account
// conflict also gets), and logged as "login denied" at INFO, so an
// alert on failed logins stays silent through a store outage and the
// outage is indistinguishable from users being turned away by policy.
func TestReviewOpsStoreOutageCountsAsFailedLogin(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, faultyStore: true, auditLog: true})
	defer storeDown.Store(false)
	before := scrapeMetrics(t, admin)

	storeDown.Store(true)
	s.queue(alice())
	resp, body := s.login(newBrowser(t), "corp", "/x")
	storeDown.Store(false)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("JIT login with the store down: %d %s", resp.StatusCode, body)
	}

	after := scrapeMetrics(t, admin)
	failed := `jit_auth_logins_total{connection="corp",outcome="failed"}`
	denied := `jit_auth_logins_total{connection="corp",outcome="denied"}`
	if got := after[failed] - before[failed]; got != 1 {
		t.Errorf("%s went up by %v, want 1 (the store was down)", failed, got)
	}
	if got := after[denied] - before[denied]; got != 0 {
		t.Errorf("%s went up by %v, want 0: nobody was denied, the store was down", denied, got)
	}
	logs, _ := os.ReadFile(s.logFile())
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "store is down (test)") && strings.Contains(line, `"msg":"login denied"`) {
			t.Errorf("the store outage is logged as a denial: %s", line)
		}
	}
}
