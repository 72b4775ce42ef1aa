package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// The README lists keep among the user's fields: a user nobody marked
// shows "keep": false, not no field at all (jq .keep gave null).
func TestAdminUserShowsKeepFalse(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users/alice@example.com", "")
	if code != http.StatusOK || !strings.Contains(body, `"keep":false`) {
		t.Fatalf("GET user: %d %s", code, body)
	}
}
