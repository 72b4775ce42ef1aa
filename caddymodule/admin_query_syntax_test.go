package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// A list or export query that does not parse (a bare '%', as in a search
// for "50%", a bad escape, a ';' separator) is a 400 naming it, not a
// filter silently dropped: Go's URL.Query skips such a pair, and the
// answer was then the whole directory, as if the administrator had asked
// for every user (a script disabling the users a search found would
// disable everyone).
func TestAdminListQueryThatDoesNotParseIsA400(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, query := range []string{
		"q=50%",
		"q=%zz",
		"q=bob;x=1",
		"status=disabled&q=%zz",
		"q=nobody&format=jsonl&role=%",
		"q=nobody&format=csv&connection=%g1",
	} {
		code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users?"+query, "")
		if code != http.StatusBadRequest || strings.Contains(body, "alice") {
			t.Errorf("GET /jit_auth/users?%s: %d %s; want a 400 saying the query does not parse", query, code, strings.TrimSpace(body))
		}
	}
}
