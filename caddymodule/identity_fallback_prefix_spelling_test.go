package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// username {profile.preferred_username} {connection}:{subject} (the
// JIT-off convention, github:4242) gives local names corp_<subject>, as
// ':' and '/' become '_' in them: that spelling, not the template's text,
// is kept free, so a preferred_username of corp_<victim's subject> falls
// through and the victim gets corp_victim-sub.
func TestFallbackPrefixIsKeptAsNamesSpellIt(t *testing.T) {
	for name, tmpl := range map[string]string{"colon": "{connection}:{subject}", "slash": "{connection}/{subject}"} {
		t.Run(name, func(t *testing.T) {
			s := startTemplateSite(t, "{profile.preferred_username} "+tmpl)
			att := loginAs(s, "corp", person("attacker-sub", "", false, "corp_victim-sub"), "")
			if att.status != http.StatusOK {
				t.Fatalf("attacker: %d\n%s", att.status, att.body)
			}
			got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
			if got.status != http.StatusOK || got.user != "corp_victim-sub" {
				_, title, _ := strings.Cut(got.body, "<title>")
				title, _, _ = strings.Cut(title, "</title>")
				t.Errorf("template %s: victim (subject victim-sub) after an attacker with preferred_username corp_victim-sub signed in (as %q): %d %q, Remote-User %q; want 200 as corp_victim-sub, the victim's own last-resort name",
					tmpl, att.user, got.status, title, got.user)
			}
		})
	}
}
