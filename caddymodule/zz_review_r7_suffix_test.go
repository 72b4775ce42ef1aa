package caddymodule_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// Review r7: the identity suffix that rescues a held last-resort name
// (commit 920d6bf, README "the identity gets it with a suffix of its
// own") is computable by anyone who knows the connection, the issuer and
// the subject, and, for a template with no text before {subject} (the
// very case the README names), nothing keeps that suffixed name free: a
// provider-chosen name (preferred_username) takes it first (severity low:
// it needs a non-default template and the victim's subject, which some
// providers publish, e.g. GitHub's numeric ids; the victim is locked out
// of provisioning, every sign-in ends on "account conflict").
//
// What the attacker does: username {profile.preferred_username} {subject}.
// Knowing the victim's subject "victim-sub", the attacker signs in once
// with preferred_username "victim-sub" (takes the victim's plain name)
// and once, from a second account, with preferred_username
// "victim-sub-<8 hex of sha256(corp, issuer, victim-sub)>" (takes the
// suffixed one).
//
// Today: the victim's candidates are exactly those two names, both held:
// the sign-in ends on "account conflict", as before the fix.
//
// Expected: the suffixed last-resort name is the identity's own, as the
// README says, so the victim signs in.
//
// Fix: provisioner/policy.go: derive identitySuffix from a secret of the
// deployment (an HMAC keyed by a value kept in Caddy's storage, or by the
// cookie hash key) so it cannot be computed in advance; or have
// fallbackShaped also refuse, for chosen names and names of templates
// over claims a user may set, names ending in '-' and 8 hex digits.
func TestReviewR7IdentitySuffixCanBeTakenFirst(t *testing.T) {
	s := startTemplateSite(t, "{profile.preferred_username} {subject}")
	sum := sha256.Sum256([]byte("corp\x00" + s.idp.Config().Issuer + "\x00victim-sub"))
	suffixed := "victim-sub-" + hex.EncodeToString(sum[:4])
	for i, name := range []string{"victim-sub", suffixed} {
		att := loginAs(s, "corp", person("attacker-"+string(rune('a'+i)), "", false, name), "")
		if att.status != http.StatusOK || att.user != name {
			t.Fatalf("attacker with preferred_username %s: %d, Remote-User %q\n%s", name, att.status, att.user, att.body)
		}
	}
	got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
	if got.status != http.StatusOK || got.user == "" {
		_, title, _ := strings.Cut(got.body, "<title>")
		title, _, _ = strings.Cut(title, "</title>")
		t.Errorf("victim (subject victim-sub) after attackers took victim-sub and %s with their preferred_username: %d %q; "+
			"want 200 under a name of the victim's own", suffixed, got.status, title)
	}
}
