package caddymodule_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// With the user store down, a JIT login fails closed (503, "Sign-in
// temporarily unavailable"), and the metrics and the audit log say that
// the site failed, not that the user was denied: the login counts in
// jit_auth_logins_total{outcome="failed"} and not as "denied", and it is
// not logged as "login denied" (the event of allow rules and account
// conflicts) but as "login failed" at ERROR, with the denial reason
// store_unavailable, so an alert on failed logins fires through a store
// outage.
func TestStoreOutageCountsAsFailedLogin(t *testing.T) {
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
	unavailable := `jit_auth_denials_total{reason="store_unavailable"}`
	if got := after[unavailable] - before[unavailable]; got != 1 {
		t.Errorf("%s went up by %v, want 1", unavailable, got)
	}
	logs, _ := os.ReadFile(s.logFile())
	logged := false
	for _, line := range strings.Split(string(logs), "\n") {
		if !strings.Contains(line, "store is down (test)") {
			continue
		}
		if strings.Contains(line, `"msg":"login denied"`) {
			t.Errorf("the store outage is logged as a denial: %s", line)
		}
		logged = logged || strings.Contains(line, `"msg":"login failed"`) && strings.Contains(line, `"level":"error"`)
	}
	if !logged {
		t.Errorf("the store outage is not logged as an error \"login failed\":\n%s", logs)
	}
}
