package caddymodule_test

import (
	"net/http"
	"regexp"
	"testing"
)

// A name from a template (the default takes preferred_username, which
// users choose) is one plain path segment and no markup: upstreams use
// Remote-User in paths (per-user directories, `root *
// /home/{http.auth.user.id}`) and pages. A verified email with such
// characters is no name either.
func TestTemplateUsernamesAreSafeInPathsAndPages(t *testing.T) {
	s := startIdentitySite(t)
	unsafe := regexp.MustCompile(`[/\\<>]|^\.`)
	for i, preferred := range []string{"../../srv/admin", "<svg/onload=alert(1)>", "..", `..\..\win`} {
		got := loginAs(s, "corp", person("odd-sub-"+string(rune('a'+i)), "", false, preferred), "")
		if got.status != http.StatusOK {
			t.Fatalf("login with preferred_username %q: %d\n%s", preferred, got.status, got.body)
		}
		if unsafe.MatchString(got.user) {
			t.Errorf("preferred_username %q reached the upstream as Remote-User %q", preferred, got.user)
		}
	}
	got := loginAs(s, "corp", person("odd-mail", "../../x@example.com", true, ""), "")
	if got.status != http.StatusOK || unsafe.MatchString(got.user) {
		t.Errorf("a verified email with a path in it: %d, Remote-User %q", got.status, got.user)
	}
	got = loginAs(s, "partner", person("a/../b", "", false, ""), "")
	if got.status != http.StatusOK || unsafe.MatchString(got.user) {
		t.Errorf("a JIT-off name from a subject with a path in it: %d, Remote-User %q", got.status, got.user)
	}
}
