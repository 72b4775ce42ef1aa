package caddymodule_test

import (
	"net/http"
	"testing"
)

// A chosen username is one plain path segment and no markup whatever
// username_pattern allows, as template names are: with a pattern that
// lets '.' lead, ".." or ".hidden" is refused (".." would walk out of
// `root * /home/{http.auth.user.id}`).
func TestChosenUsernameIsOnePlainPathSegment(t *testing.T) {
	s := startIdentitySite(t)
	for i, chosen := range []string{"..", ".hidden"} {
		got := loginAs(s, "chooser", person("dots-sub-"+string(rune('a'+i)), "", false, ""), chosen)
		if got.user != "" && (got.user == ".." || got.user[0] == '.') {
			t.Errorf("chosen username %q reached the upstream as Remote-User %q (status %d): a leading '.' stays", chosen, got.user, got.status)
		} else if got.status != http.StatusOK && got.status != http.StatusBadRequest {
			t.Logf("chosen %q: %d", chosen, got.status)
		}
	}
}

// '/', '\', '<' and '>' are refused in a chosen name whatever
// username_pattern allows, as ':' and '%' are.
func TestChosenUsernameWithSlashOrMarkupIsRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username\n\t\t\t\tusername_pattern ^[a-z0-9./<>_-]{2,64}$"})
	for i, chosen := range []string{"../../srv", "<b>x</b>"} {
		got := loginAs(s, "corp", person("slash-sub-"+string(rune('a'+i)), "", false, ""), chosen)
		if got.user == chosen {
			t.Errorf("chosen username %q reached the upstream as Remote-User %q", chosen, got.user)
		}
	}
}
