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

// With username {profile.preferred_username} and a template over the
// subject of its own ({connection}_{subject}; the JIT-off convention
// {connection}:{subject}, or {connection}/{subject}, whose ':' and '/'
// become '_' in names), a preferred_username of "corp_<victim's subject>"
// falls through: names beginning as a template over the subject's do,
// spelled as names are, are kept for it, and the victim signs in as
// corp_victim-sub.
func TestCustomSubjectFallbackCannotBeTakenFirst(t *testing.T) {
	for name, tmpl := range map[string]string{"underscore": "{connection}_{subject}", "colon": "{connection}:{subject}", "slash": "{connection}/{subject}"} {
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
				t.Errorf("template %s: victim (subject victim-sub, no email, no preferred_username) after an attacker with preferred_username corp_victim-sub signed in (as %q): %d %q, Remote-User %q; want 200 as corp_victim-sub, the victim's own last-resort name",
					tmpl, att.user, got.status, title, got.user)
			}
		})
	}
}

// Connections corp and corp-eu: corp's subject "eu-victim" and corp-eu's
// "victim" give one fallback name, corp-eu-victim. Whoever signs in
// second gets it with the identity's suffix, not "account conflict".
func TestNestedConnectionNamesShareNoFallback(t *testing.T) {
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
