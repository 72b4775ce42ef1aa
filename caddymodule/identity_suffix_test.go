package caddymodule_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// With username {profile.preferred_username} {subject} there is no text
// before {subject} to keep free, so an attacker may take a victim's plain
// subject name; the victim then gets it with the identity's suffix, which
// anyone knowing the subject can compute, so no claim-derived (or chosen)
// name ending in '-' and 8 hex digits is given.
func TestIdentitySuffixedNameCannotBeClaimed(t *testing.T) {
	s := startTemplateSite(t, "{profile.preferred_username} {subject}")
	sum := sha256.Sum256([]byte("corp\x00" + s.idp.Config().Issuer + "\x00victim-sub"))
	suffixed := "victim-sub-" + hex.EncodeToString(sum[:4])
	// A template with no text before {subject} keeps nothing free: the
	// first attacker takes the victim's plain name.
	if att := loginAs(s, "corp", person("attacker-a", "", false, "victim-sub"), ""); att.status != http.StatusOK || att.user != "victim-sub" {
		t.Fatalf("attacker with preferred_username victim-sub: %d, Remote-User %q\n%s", att.status, att.user, att.body)
	}
	// The suffixed form is computable, but no claim gives it.
	if att := loginAs(s, "corp", person("attacker-b", "", false, suffixed), ""); att.status != http.StatusOK || att.user == suffixed {
		t.Errorf("attacker with preferred_username %s: %d, Remote-User %q; want their own name", suffixed, att.status, att.user)
	}
	got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
	if got.status != http.StatusOK || got.user != suffixed {
		_, title, _ := strings.Cut(got.body, "<title>")
		title, _, _ = strings.Cut(title, "</title>")
		t.Errorf("victim (subject victim-sub) after an attacker took victim-sub and another claimed %s: %d %q, Remote-User %q; "+
			"want 200 as %s", suffixed, got.status, title, got.user, suffixed)
	}
}
