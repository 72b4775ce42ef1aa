package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// The admin API refuses a change whose meaning depends on the JSON
// parser: a key given twice (encoding/json takes the last, other tools
// the first) and a field name in another letter case (encoding/json
// matches it anyway), at the top and inside "set"; and a body over the
// limit. Nothing of a refused change is applied.
func TestAdminAPIRefusesAmbiguousJSON(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	const user = "/jit_auth/users/alice@example.com"
	for _, bad := range []string{
		`{"grant_roles":["viewer"],"grant_roles":["admin"]}`,
		`{"revoke_roles":["x"],"grant_roles":["admin"],"revoke_roles":[]}`,
		`{"GRANT_ROLES":["admin"]}`,
		`{"grant_roles":["viewer"],"Grant_Roles":["admin"]}`,
		`{"set":{"dept":"eng","dept":"admin"}}`,
		`{"set":{"dept":"eng"},"set":{"level":"admin"}}`,
		`{"grant_roles":["admin"],"set":{"dept":"` + strings.Repeat("a", 70<<10) + `"}}`,
	} {
		code, body := adminRaw(t, admin, http.MethodPatch, user, bad)
		if code != http.StatusBadRequest || !strings.Contains(body, "reading the change") {
			t.Errorf("PATCH %.80q: %d %.300s, want 400", bad, code, body)
		}
	}
	code, body := adminRaw(t, admin, http.MethodGet, user, "")
	if code != http.StatusOK || strings.Contains(body, "admin") || strings.Contains(body, "viewer") || strings.Contains(body, "dept") || strings.Contains(body, "level") {
		t.Fatalf("a refused change was applied: %d %s", code, body)
	}
	// Nested objects and arrays with repeated values (not keys) are fine.
	if code, body := adminRaw(t, admin, http.MethodPatch, user, `{"set":{"dept":"eng","team":"eng"},"grant_roles":["viewer","viewer"]}`); code != http.StatusOK || !strings.Contains(body, `"viewer"`) {
		t.Errorf("a plain change: %d %s", code, body)
	}
}
