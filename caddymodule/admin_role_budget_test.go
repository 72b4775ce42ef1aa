package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Local roles travel in the user's session cookie, as the attribute
// values an administrator sets do (those are bounded for that reason):
// a grant of a few hundred roles was accepted, and the user could then
// never sign in again ("Sign-in failed", 500: the session does not fit
// in its cookies). Such a grant is a 400 that changes nothing, and the
// user still signs in.
func TestAdminGrantThatWouldLockTheUserOutIsRefused(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// Role names as they come: distinct, not compressible into nothing.
	var roles []string
	for i := range 1000 {
		roles = append(roles, fmt.Sprintf("team-%04d-%x", i, i*2654435761))
	}
	body, _ := json.Marshal(map[string]any{"grant_roles": roles})
	code, out := adminRaw(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", string(body))
	if code != http.StatusBadRequest || !strings.Contains(out, "roles") {
		t.Errorf("granting %d roles (%d bytes): %d %.300s; want a 400 saying the roles are too many", len(roles), len(body), code, out)
	}
	s.queue(alice())
	if resp, page := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the grant, alice cannot sign in: %d %.300s", resp.StatusCode, page)
	}
	// A usual grant still goes through.
	if code, out := adminRaw(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", `{"grant_roles": ["auditor", "ops"]}`); code != http.StatusOK {
		t.Errorf("granting two roles: %d %s", code, out)
	}
}
