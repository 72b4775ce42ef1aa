package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// startTemplateSite runs one site whose connection corp (JIT on,
// silent) names users by the given username templates.
func startTemplateSite(t *testing.T, templates string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile
			jit {
				username %[4]s
			}
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, templates)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s {
		header_up X-Auth-Id {http.auth.user.id}
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))
	return s
}

// Attack: the site's operator names users `username
// {profile.preferred_username} {connection}_{subject}` (the focus of
// this round lists such templates). An attacker who learns a victim's
// subject (often public or guessable, as the README itself says) signs
// in first with preferred_username "corp_<victim's subject>".
//
// Today: the rule added in 2091762 keeps only names that begin with
// "<connection>-" (the default fallback's shape) free for the subject
// templates; "corp_victim-sub" is taken by the attacker, and the victim,
// who has no verified email and no preferred_username, has nothing else
// to be named by: their first sign-in ends in the username-conflict
// page, for good. The README promises, of this very rule, "so nobody can
// take another person's last-resort name before their first sign-in".
//
// Expected: the attacker's provider-chosen claim falls through (as it
// does for "corp-victim-sub" with the default templates) and the victim
// signs in under corp_victim-sub. The shape to keep free is the one of
// the policy's own fixed templates (their literal text around
// {connection}/{issuer}/{subject}), not only "<connection>-"; or a
// policy whose last template is squattable is refused or warned about
// at load.
//
// Severity: low. A targeted, permanent lockout of one person, but only
// with a custom last-resort template, and the attacker must know the
// victim's subject.
func TestReviewR5CustomSubjectFallbackCannotBeTakenFirst(t *testing.T) {
	s := startTemplateSite(t, "{profile.preferred_username} {connection}_{subject}")
	att := loginAs(s, "corp", person("attacker-sub", "", false, "corp_victim-sub"), "")
	if att.status != http.StatusOK {
		t.Fatalf("attacker: %d\n%s", att.status, att.body)
	}
	got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
	if got.status != http.StatusOK || got.user != "corp_victim-sub" {
		_, title, _ := strings.Cut(got.body, "<title>")
		title, _, _ = strings.Cut(title, "</title>")
		t.Errorf("victim (subject victim-sub, no email, no preferred_username) after an attacker with preferred_username corp_victim-sub signed in (as %q): %d %q, Remote-User %q; want 200 as corp_victim-sub, the victim's own last-resort name",
			att.user, got.status, title, got.user)
	}
}

// Attack: a site has two connections whose names are prefixes of each
// other, corp and corp-eu (the connection-name rule allows '-'), both
// with the default username templates. A person at corp whose subject
// is "eu-victim" (a provider whose subject is the account name, as some
// do, lets one pick it; or by chance) and who has no verified email nor
// preferred_username is named by the fallback "corp-" + "eu-victim".
//
// Today: that is "corp-eu-victim", the very fallback of the person with
// subject "victim" at corp-eu. Both fallbacks come from {subject}
// templates, so the rule of 2091762 (a name of the "<connection>-"
// shape comes only from templates over the subject) lets the first
// take it, and the second's first sign-in ends in the username-conflict
// page for good: the fallback that "names" one identity names two.
//
// Expected: the {connection}-{subject} fallback is unique per identity
// on every site, so the victim signs in (under a name of their own).
// Either a load-time check refuses connection names of which one is
// another's prefix followed by '-' (naming both and the fix), or the
// fallback is built so that no two (connection, subject) pairs give one
// name.
//
// Severity: low. Needs connection names that nest, and a subject the
// first person can shape; the effect is one person locked out.
func TestReviewR5NestedConnectionNamesShareNoFallback(t *testing.T) {
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			jit
		}
		connection corp-eu {
			oidc %[1]s %[2]s %[3]s
			jit
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s {
		header_up X-Auth-Id {http.auth.user.id}
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort()))

	first := loginAs(s, "corp", person("eu-victim", "", false, ""), "")
	if first.status != http.StatusOK {
		t.Fatalf("corp's eu-victim: %d\n%s", first.status, first.body)
	}
	got := loginAs(s, "corp-eu", person("victim", "", false, ""), "")
	if got.status != http.StatusOK || got.user == "" || got.user == first.user {
		_, title, _ := strings.Cut(got.body, "<title>")
		title, _, _ = strings.Cut(title, "</title>")
		t.Errorf("corp-eu's victim (subject victim, no email, no preferred_username) after corp's subject eu-victim signed in as %q: %d %q, Remote-User %q; want 200 under a name of their own",
			first.user, got.status, title, got.user)
	}
}
