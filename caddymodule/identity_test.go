package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Tests of S15 (one person, one name) and of provider groups that carry
// the Remote-Groups separator, through a real Caddy and a real OpenID
// provider (mockoidc) over HTTP.

// identityConnections are five connections to one provider, one site:
// every mode with JIT on, and JIT off with the default name and with a
// name from a claim users choose. The username pattern of "chooser" lets
// '@' and ':' through, so the rules that hold whatever the pattern are
// what refuses them.
const identityConnections = `
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			jit {
				link verified_email
				role admin from_group admins
				role member
			}
		}
		connection consent {
			oidc %[1]s %[2]s %[3]s
			jit {
				mode consent
				link verified_email
			}
		}
		connection chooser {
			oidc %[1]s %[2]s %[3]s
			jit {
				mode username
				link verified_email
				username_pattern ^[a-z0-9@.:_-]{2,64}$
			}
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
		}
		connection login {
			oidc %[1]s %[2]s %[3]s
			jit off {
				username {profile.preferred_username} {subject}
			}
		}`

// startIdentitySite runs one site offering the identity connections.
func startIdentitySite(t *testing.T) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := fmt.Sprintf(identityConnections, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	caddyfile := fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		connections corp consent chooser partner login
	}
	reverse_proxy %s {
		header_up X-Auth-Id {http.auth.user.id}
		header_up X-Auth-Groups {http.auth.user.groups}
		header_up X-Auth-Roles {http.auth.user.roles}
	}
}
`, globalOptions(s.dir, conns), port, s.upstream.hostPort())
	caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+s.logFile()+"\n\t\tlevel INFO", 1)
	runCaddyfile(t, caddyfile)
	return s
}

// person is a provider account: its subject and its ID token claims.
func person(sub, email string, verified bool, preferred string) *oidcUser {
	claims := map[string]any{"email_verified": verified}
	if email != "" {
		claims["email"] = email
	}
	if preferred != "" {
		claims["preferred_username"] = preferred
	}
	return &oidcUser{sub: sub, claims: claims}
}

// loginResult is where one full login ended.
type loginResult struct {
	status int
	// user is the upstream's Remote-User; "" when the login did not
	// reach the upstream.
	user string
	body string
}

// loginAs logs u in through conn in a fresh browser, allowing the
// consent page and choosing chosen on a username page, and reports what
// the upstream received. u is nil for a connection to another provider.
func loginAs(s *site, conn string, u *oidcUser, chosen string) loginResult {
	s.t.Helper()
	b := newBrowser(s.t)
	if u != nil {
		s.queue(u)
	}
	resp, body := s.login(b, conn, "/whoami")
	if resp.Request.URL.Path == "/.jitauth/consent" && resp.StatusCode == http.StatusOK {
		name := ""
		if strings.Contains(body, `name="username"`) {
			name = chosen
		}
		resp, body = s.answer(b, body, "allow", name)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/whoami" {
		return loginResult{status: resp.StatusCode, body: body}
	}
	h := s.upstream.lastHeaders(s.t)
	if h.Get("X-Auth-Id") != h.Get("Remote-User") {
		s.t.Errorf("{http.auth.user.id} %q differs from Remote-User %q", h.Get("X-Auth-Id"), h.Get("Remote-User"))
	}
	return loginResult{status: resp.StatusCode, user: h.Get("Remote-User"), body: body}
}

// JIT off: an unverified email, or a preferred_username that is someone
// else's address, never yields that address as the upstream's user.
func TestIdentityJITOffEmailOnlyWhenVerified(t *testing.T) {
	s := startIdentitySite(t)
	for _, conn := range []string{"partner", "login"} {
		t.Run(conn, func(t *testing.T) {
			impostor := person("mallory-sub", "alice@example.com", false, "alice@example.com")
			got := loginAs(s, conn, impostor, "")
			if got.status != http.StatusOK || got.user != conn+":mallory-sub" {
				t.Errorf("unverified alice@example.com through %s: %d, Remote-User %q; want %s:mallory-sub", conn, got.status, got.user, conn)
			}
			// The real Alice, with the same claims but verified.
			alice := person("alice-sub", "alice@example.com", true, "alice@example.com")
			if got := loginAs(s, conn, alice, ""); got.user != "alice@example.com" {
				t.Errorf("verified alice through %s: %d, Remote-User %q; want alice@example.com", conn, got.status, got.user)
			}
		})
	}
}

// JIT on: an unverified user who claims bob@example.com does not get
// that name, and the real, verified Bob still logs in as it, whichever
// of the two comes first, in every mode.
func TestIdentityJITOnUnverifiedCannotTakeEmail(t *testing.T) {
	for _, conn := range []string{"corp", "consent", "chooser"} {
		for _, bobFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bob first %v", conn, bobFirst), func(t *testing.T) {
				s := startIdentitySite(t)
				st := openStore(t, s.dir)
				mallory := person("mallory-sub", "bob@example.com", false, "bob@example.com")
				bob := person("bob-sub", "bob@example.com", true, "bobby")
				var bobGot, malloryGot loginResult
				if bobFirst {
					bobGot = loginAs(s, conn, bob, "bob@example.com")
					malloryGot = loginAs(s, conn, mallory, "bob@example.com")
				} else {
					malloryGot = loginAs(s, conn, mallory, "bob@example.com")
					if conn == "chooser" {
						// Refused with the reason, the form shown again.
						if malloryGot.status != http.StatusBadRequest || !strings.Contains(malloryGot.body, "your own verified email") {
							t.Fatalf("mallory choosing bob@example.com: %d\n%s", malloryGot.status, malloryGot.body)
						}
						malloryGot = loginAs(s, conn, mallory, "mallory")
					}
					bobGot = loginAs(s, conn, bob, "bob@example.com")
				}
				if bobGot.status != http.StatusOK || bobGot.user != "bob@example.com" {
					t.Errorf("verified Bob: %d, Remote-User %q; want bob@example.com\n%s", bobGot.status, bobGot.user, bobGot.body)
				}
				if strings.Contains(malloryGot.user, "@") {
					t.Errorf("unverified mallory reached the upstream as %q", malloryGot.user)
				}
				if !bobFirst && (malloryGot.status != http.StatusOK || malloryGot.user == "") {
					t.Errorf("mallory, first: %d %q; want a name of her own", malloryGot.status, malloryGot.user)
				}
				if bobFirst && malloryGot.status != http.StatusOK && !strings.Contains(malloryGot.body, "email address") {
					t.Errorf("mallory after Bob: %d without the email-conflict page\n%s", malloryGot.status, malloryGot.body)
				}
				for _, u := range allUsers(t, st) {
					if u.Username == "bob@example.com" && !u.EmailVerified {
						t.Errorf("an unverified user holds bob@example.com: %+v", u)
					}
				}
			})
		}
	}
}

// A local username chosen on one connection and a JIT-off name on
// another are two names for two people, however the provider's claims
// read; a JIT-on template whose value is taken falls through to the next
// one instead of ending in a conflict.
func TestIdentityJITOffNeverALocalName(t *testing.T) {
	s := startIdentitySite(t)
	boss := person("boss-sub", "", false, "boss")
	if got := loginAs(s, "chooser", boss, "ceo"); got.user != "ceo" {
		t.Fatalf("choosing ceo: %d %q\n%s", got.status, got.user, got.body)
	}
	other := person("other-sub", "", false, "ceo")
	want := map[string]string{
		"partner": "partner:other-sub",
		"login":   "login:ceo",
		"corp":    "corp-other-sub",
		"consent": "consent-other-sub",
	}
	for conn, wantUser := range want {
		if got := loginAs(s, conn, other, ""); got.status != http.StatusOK || got.user != wantUser {
			t.Errorf("preferred_username ceo through %s: %d, Remote-User %q; want %q\n%s", conn, got.status, got.user, wantUser, got.body)
		}
	}
	// Two provider accounts whose subjects differ only in case (subjects
	// are case-sensitive) are two JIT-off names.
	upper := loginAs(s, "partner", person("Case-Sub", "", false, ""), "")
	lower := loginAs(s, "partner", person("case-sub", "", false, ""), "")
	if upper.user != "partner:Case-Sub" || lower.user != "partner:case-sub" {
		t.Errorf("subjects Case-Sub and case-sub: Remote-User %q and %q", upper.user, lower.user)
	}
	// A chosen name shaped like a JIT-off name is refused.
	if got := loginAs(s, "chooser", person("sneaky-sub", "", false, ""), "partner:other-sub"); got.status != http.StatusBadRequest || !strings.Contains(got.body, "reserved") {
		t.Errorf("choosing partner:other-sub: %d %q\n%s", got.status, got.user, got.body)
	}
}

// Every mode and JIT on and off on one site: whatever each person's
// claims say, no Remote-User is ever shared by two people. The same
// person may carry the same name on several connections only as a
// verified email, which names one mailbox's owner.
func TestIdentityOnePersonOneNameAcrossConnections(t *testing.T) {
	s := startIdentitySite(t)
	type login struct {
		who, conn string
		u         *oidcUser
		chosen    string
	}
	var logins []login
	conns := []string{"corp", "consent", "chooser", "partner", "login"}
	add := func(who string, u func() *oidcUser, chosen string) {
		for _, c := range conns {
			logins = append(logins, login{who, c, u(), chosen})
		}
	}
	// The order matters: the impostors come first, so they find every
	// name free.
	add("impostor of alice", func() *oidcUser { return person("imp-sub", "alice@example.com", false, "alice@example.com") }, "alice@example.com")
	add("ceo look-alike", func() *oidcUser { return person("ceo2-sub", "", false, "partner:ceo-sub") }, "ceo2")
	add("alice", func() *oidcUser { return person("alice-sub", "Alice@Example.com", true, "alice") }, "alice")
	add("ceo", func() *oidcUser { return person("ceo-sub", "", false, "ceo") }, "ceo.boss")
	add("bob", func() *oidcUser { return person("bob-sub", "bob@example.com", true, "bobby") }, "bobby")

	owner := map[string]string{} // Remote-User -> person
	for _, l := range logins {
		got := loginAs(s, l.conn, l.u, l.chosen)
		if got.user == "" {
			if l.who != "impostor of alice" && l.who != "ceo look-alike" {
				t.Errorf("%s through %s: %d\n%s", l.who, l.conn, got.status, got.body)
			}
			// A username page that refused the choice: choose again.
			if l.conn == "chooser" {
				got = loginAs(s, l.conn, l.u, strings.ReplaceAll(l.who, " ", "-"))
			}
		}
		if got.user == "" {
			continue
		}
		t.Logf("%s through %s: %q", l.who, l.conn, got.user)
		if prev, ok := owner[got.user]; ok && prev != l.who {
			t.Errorf("Remote-User %q is both %s and %s (through %s)", got.user, prev, l.who, l.conn)
		}
		owner[got.user] = l.who
		if strings.Contains(got.user, "@") && got.user != "alice@example.com" && got.user != "bob@example.com" {
			t.Errorf("%s through %s reached the upstream as %q", l.who, l.conn, got.user)
		}
	}
	if owner["alice@example.com"] != "alice" || owner["ceo"] != "ceo" || owner["bob@example.com"] != "bob" {
		t.Errorf("names: %v", owner)
	}
}

// Caddyfile.example's own mix: an OpenID Connect connection with JIT on
// (its jit block as written there) and GitHub with JIT off, on one site.
func TestIdentityCaddyfileExampleShape(t *testing.T) {
	idp := startMockOIDC(t)
	githubVerified := false
	gh := fakeGitHub(t, fakeGitHubUser{id: 777, login: "ceo", emails: func(w http.ResponseWriter, r *http.Request) {
		githubEmails(githubAddr{"alice@example.com", true, githubVerified})(w, r)
	}})
	dir := t.TempDir()
	up := newUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	s := &site{t: t, dir: dir, idp: idp, upstream: up, base: fmt.Sprintf("http://localhost:%d", port)}
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		connections corp github
	}
	reverse_proxy %s {
		header_up X-Auth-Id {http.auth.user.id}
		header_up X-Auth-Groups {http.auth.user.groups}
	}
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			display_name "Example Corp SSO"
			jit {
				mode consent
				link verified_email
				sync preserve_local
				map department {claims.org.department}
				map employee_id {claims.employee_id}
				role admin from_group corp-admins
				role staff
			}
		}
		connection github {
			provider github gh-key gh-secret
			auth_url %[4]s/login/oauth/authorize
			token_url %[4]s/login/oauth/access_token
			profile_url %[4]s/api/v3/user
			email_url %[4]s/api/v3/user/emails
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, gh.URL)), port, up.hostPort()))

	// GitHub user 777, login "ceo", primary email alice@example.com not
	// verified: neither the address nor the login.
	if got := loginAs(s, "github", nil, ""); got.user != "github:777" {
		t.Errorf("unverified GitHub user: %d, Remote-User %q; want github:777\n%s", got.status, got.user, got.body)
	}
	// corp users: one whose preferred_username is ceo, one who claims
	// the GitHub user's name, and the verified Alice, whose groups
	// include one with the separator.
	if got := loginAs(s, "corp", person("ceo-sub", "", false, "ceo"), ""); got.user != "ceo" {
		t.Errorf("corp ceo: %d %q\n%s", got.status, got.user, got.body)
	}
	if got := loginAs(s, "corp", person("x-sub", "", false, "github:777"), ""); got.user != "github_777" {
		t.Errorf("corp user claiming github:777: %d %q\n%s", got.status, got.user, got.body)
	}
	alice := person("alice-sub", "alice@example.com", true, "alice")
	alice.claims["groups"] = []string{"staff,admins", "corp-admins", "dev"}
	if got := loginAs(s, "corp", alice, ""); got.user != "alice@example.com" {
		t.Fatalf("corp alice: %d %q\n%s", got.status, got.user, got.body)
	}
	h := up.lastHeaders(t)
	if h.Get("Remote-Groups") != "admin,corp-admins,dev,staff" || h.Get("X-Auth-Groups") != "corp-admins,dev" {
		t.Errorf("Remote-Groups %q, groups placeholder %q; want admin,corp-admins,dev,staff and corp-admins,dev", h.Get("Remote-Groups"), h.Get("X-Auth-Groups"))
	}
	// Once GitHub says the address is verified, its owner is Alice: the
	// same name as through corp, one mailbox, one person.
	githubVerified = true
	if got := loginAs(s, "github", nil, ""); got.user != "alice@example.com" {
		t.Errorf("verified GitHub user: %d %q; want alice@example.com", got.status, got.user)
	}
}

// A provider group with the separator never reaches the upstream as two
// groups, nor grants the role of either half, JIT on or off; the stored
// groups agree with the headers, and the log says what was dropped.
func TestProviderGroupWithSeparator(t *testing.T) {
	s := startIdentitySite(t)
	st := openStore(t, s.dir)
	for _, tt := range []struct{ conn, wantGroups, wantRoles string }{
		{"corp", "dev,member", "member"},
		{"partner", "dev", ""},
	} {
		u := person("grp-sub", "g@example.com", true, "g")
		u.claims["groups"] = []string{"staff,admins", "dev", "ops\r\nX-Injected: 1"}
		if got := loginAs(s, tt.conn, u, ""); got.status != http.StatusOK {
			t.Fatalf("%s: %d\n%s", tt.conn, got.status, got.body)
		}
		h := s.upstream.lastHeaders(t)
		if h.Get("Remote-Groups") != tt.wantGroups || h.Get("X-Auth-Groups") != "dev" || h.Get("X-Auth-Roles") != tt.wantRoles || h.Get("X-Injected") != "" {
			t.Errorf("%s: Remote-Groups %q, groups %q, roles %q; want %q, dev, %q", tt.conn, h.Get("Remote-Groups"), h.Get("X-Auth-Groups"), h.Get("X-Auth-Roles"), tt.wantGroups, tt.wantRoles)
		}
	}
	users := allUsers(t, st)
	if len(users) != 1 || !slices.Equal(users[0].Groups, []string{"dev"}) {
		t.Errorf("stored: %+v; want one user with groups [dev]", users)
	}
	// Groups stored before the rule (or by other means) keep a provider
	// that sends no groups claim from bringing them back.
	if _, err := st.CreateUser(context.Background(), &provisioner.User{Username: "legacy", Groups: []string{"legacy,admins", "ops"}},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: s.idp.Config().Issuer, Subject: "legacy-sub"}}); err != nil {
		t.Fatal(err)
	}
	if got := loginAs(s, "corp", person("legacy-sub", "", false, ""), ""); got.user != "legacy" {
		t.Fatalf("legacy user: %d %q\n%s", got.status, got.user, got.body)
	}
	if h := s.upstream.lastHeaders(t); h.Get("Remote-Groups") != "member,ops" || h.Get("X-Auth-Groups") != "ops" {
		t.Errorf("legacy user: Remote-Groups %q, groups %q; want member,ops and ops", h.Get("Remote-Groups"), h.Get("X-Auth-Groups"))
	}
	if logs := mustReadFile(t, s.logFile()); !strings.Contains(logs, `"msg":"provider groups dropped`) || !strings.Contains(logs, `staff,admins`) {
		t.Error("no log entry names the dropped groups")
	}
}
