package caddymodule_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// postForm submits a form as a browser does and follows the redirects
// that answer it.
func (b *browser) postForm(rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.postRaw(rawURL, form)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, err := resp.Location()
		if err != nil {
			b.t.Fatal(err)
		}
		resp, body, _ := b.follow(loc.String(), nil)
		return resp, body
	}
	return resp, body
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// answer posts the consent (or username) form on page.
func (s *site) answer(b *browser, page, action, username string) (*http.Response, string) {
	s.t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		s.t.Fatalf("no consent form on the page:\n%s", page)
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}, "action": {action}}
	if username != "" {
		form.Set("username", username)
	}
	return b.postForm(s.base+"/.jitauth/consent", form)
}

// hasSession reports whether b reaches the upstream.
func (s *site) hasSession(b *browser) bool {
	s.t.Helper()
	resp, _ := b.get(s.base + "/whoami")
	return resp.StatusCode == http.StatusOK
}

func TestConsentAllowAndDecline(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent", auditLog: true})
	st := openStore(t, s.dir)

	// First login stops at the consent page, which lists exactly what
	// will be stored; nothing is stored yet and nothing is reachable.
	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/report")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/.jitauth/consent" {
		t.Fatalf("first login ended at %s with %d, want the consent page", resp.Request.URL, resp.StatusCode)
	}
	for _, want := range []string{"alice@example.com", "Alice Liddell", "staff,wonderland", "preferred_username", "Allow", "Decline"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q:\n%s", want, page)
		}
	}
	if n := len(allUsers(t, st)); n != 0 || s.hasSession(b) || s.upstream.hits != 0 {
		t.Fatalf("before consent: %d users, session %v, upstream hits %d", n, s.hasSession(b), s.upstream.hits)
	}
	// The paused login cannot be finished by another browser.
	if resp, _ := newBrowser(t).get(s.base + "/.jitauth/consent"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("consent page in another browser: %d, want 400", resp.StatusCode)
	}
	// A forged answer without the page's token is refused.
	if resp, _ := b.postForm(s.base+"/.jitauth/consent", url.Values{"action": {"allow"}, "csrf": {"guess"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("answer without the token: %d, want 400", resp.StatusCode)
	}

	// Decline: nothing stored, no session, a clear page.
	resp, body := s.answer(b, page, "decline", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "nothing about you was stored") {
		t.Fatalf("decline: %d %s", resp.StatusCode, body)
	}
	if n := len(allUsers(t, st)); n != 0 || s.hasSession(b) {
		t.Fatalf("after decline: %d users, session %v", n, s.hasSession(b))
	}
	// The declined page cannot be answered again with a copy of it.
	if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("answering a declined login again: %d, want 400", resp.StatusCode)
	}

	// Allow: the user is provisioned with the consent recorded, and the
	// login lands where it was going.
	s.queue(alice())
	_, page = s.login(b, "corp", "/report")
	resp, _ = s.answer(b, page, "allow", "")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/report" {
		t.Fatalf("allow: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	users := allUsers(t, st)
	if len(users) != 1 || users[0].Consents["corp"].At.IsZero() || !slices.Contains(users[0].Consents["corp"].Attributes, "email") {
		t.Fatalf("after allow: users %+v", users)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Errorf("Remote-User = %q", got)
	}

	// The same attributes again: no question.
	b2 := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b2, "corp", "/again"); resp.Request.URL.Path != "/again" {
		t.Fatalf("second login stopped at %s", resp.Request.URL)
	}
	// The provider sends a new claim: the stored set grows, so the
	// user is asked again before it is stored.
	grown := alice()
	grown.claims["department"] = "Looking Glass"
	b3 := newBrowser(t)
	s.queue(grown)
	resp, page = s.login(b3, "corp", "/")
	if resp.Request.URL.Path != "/.jitauth/consent" || !strings.Contains(page, "department") {
		t.Fatalf("grown login ended at %s: %s", resp.Request.URL, page)
	}
	if s.hasSession(b3) {
		t.Error("a session exists while re-consent is pending")
	}

	logs := mustReadFile(t, s.logFile())
	for _, event := range []string{`"msg":"consent declined"`, `"msg":"consent given"`, `"msg":"user created"`} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %s audit event in the log", event)
		}
	}
}

func TestUsernameSelection(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username"})
	st := openStore(t, s.dir)
	ctx := context.Background()
	carol, err := st.CreateUser(ctx, &provisioner.User{Username: "carol", Email: "carol@example.com", EmailVerified: true},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "legacy", Issuer: "legacy", Subject: "carol"}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/")
	if resp.Request.URL.Path != "/.jitauth/consent" || !strings.Contains(page, `name="username"`) || !strings.Contains(page, "alice@example.com") {
		t.Fatalf("first login: %s\n%s", resp.Request.URL, page)
	}
	// Another user's name, in any case or width: refused, form again.
	for _, name := range []string{"carol", "CAROL", "ｃａｒｏｌ"} {
		resp, body := s.answer(b, page, "allow", name)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "taken") || !strings.Contains(body, `name="username"`) {
			t.Fatalf("choosing %q: %d\n%s", name, resp.StatusCode, body)
		}
		page = body
	}
	// Reserved and malformed names: refused with the reason.
	for _, name := range []string{"admin", "no spaces"} {
		resp, body := s.answer(b, page, "allow", name)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not allowed") {
			t.Fatalf("choosing %q: %d\n%s", name, resp.StatusCode, body)
		}
		page = body
	}
	if s.hasSession(b) {
		t.Fatal("a refused username gave a session")
	}
	if ids, _ := st.Identities(ctx, carol.ID); len(ids) != 1 {
		t.Fatalf("carol has %d identities: a chosen name merged into her account", len(ids))
	}
	resp, _ = s.answer(b, page, "allow", "Alice.L")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("choosing a free name: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice.l" {
		t.Errorf("Remote-User = %q, want the chosen name, normalised", got)
	}
	if n := len(allUsers(t, st)); n != 2 {
		t.Errorf("%d users, want carol and alice.l", n)
	}
}

func TestVerifiedEmailLinking(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "link verified_email", auditLog: true})
	st := openStore(t, s.dir)
	ctx := context.Background()
	local := func(username, email string, verified bool) *provisioner.User {
		u, err := st.CreateUser(ctx, &provisioner.User{Username: username, Email: email, EmailVerified: verified},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "legacy", Issuer: "legacy", Subject: username}})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	bob := local("bob", "bob@example.com", true)
	carl := local("carl", "carl@example.com", false)
	dana := local("dana", "dana@example.com", true)
	erin := local("erin", "erin@example.com", true)
	person := func(sub, email string, verified any) *oidcUser {
		claims := map[string]any{"email": email, "preferred_username": sub}
		if verified != nil {
			claims["email_verified"] = verified
		}
		return &oidcUser{sub: sub, claims: claims}
	}
	identities := func(u *provisioner.User) int {
		ids, err := st.Identities(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}

	// Both sides verified: linked to bob.
	b := newBrowser(t)
	s.queue(person("bob-at-idp", "bob@example.com", true))
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("linking login: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "bob" || h.Get("X-Auth-Local-Id") != bob.ID || identities(bob) != 2 {
		t.Errorf("linked login: user %q local id %q, bob has %d identities", h.Get("Remote-User"), h.Get("X-Auth-Local-Id"), identities(bob))
	}

	// Refusals: the provider says unverified, or says nothing; the email
	// is a verified local user's, so the login ends on a clear page.
	for name, u := range map[string]*oidcUser{
		"provider unverified": person("dana-at-idp", "dana@example.com", false),
		"missing claim":       person("erin-at-idp", "erin@example.com", nil),
	} {
		b := newBrowser(t)
		s.queue(u)
		resp, body := s.login(b, "corp", "/")
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "email address") || s.hasSession(b) {
			t.Errorf("%s: %d, session %v\n%s", name, resp.StatusCode, s.hasSession(b), body)
		}
	}
	if identities(dana) != 1 || identities(erin) != 1 {
		t.Errorf("a refused login merged: dana %d, erin %d identities", identities(dana), identities(erin))
	}

	// The local email is unverified: never linked; a separate user.
	b = newBrowser(t)
	s.queue(person("carl-at-idp", "carl@example.com", true))
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with carl's unverified email: %d", resp.StatusCode)
	}
	if h := s.upstream.lastHeaders(t); identities(carl) != 1 || h.Get("X-Auth-Local-Id") == carl.ID {
		t.Errorf("linked to a user whose email is unverified")
	}
	if !strings.Contains(mustReadFile(t, s.logFile()), `"msg":"identity linked"`) {
		t.Error("no identity linked audit event")
	}
}

func TestSyncModesAcrossLogins(t *testing.T) {
	for _, tt := range []struct {
		sync                  string
		wantName, wantDept    string
		wantGiven, wantLocale string
	}{
		{"override", "Alice Renamed", "Mirrors", "Al", "en-GB"},
		{"preserve_local", "Admin's Alice", "Mirrors", "Al", "en-GB"},
		{"first_login", "Admin's Alice", "Looking Glass", "Alice", "en"},
	} {
		t.Run(tt.sync, func(t *testing.T) {
			s := startSiteOpts(t, siteOptions{corpJIT: "sync " + tt.sync + "\n\t\t\t\tmap department {claims.org.dept}\n\t\t\t\tmap locale {claims.locale}"})
			st := openStore(t, s.dir)
			u := alice()
			u.claims["given_name"] = "Alice"
			u.claims["org"] = map[string]any{"dept": "Looking Glass"}
			u.claims["locale"] = "en"
			s.queue(u)
			if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("first login: %d", resp.StatusCode)
			}
			first := allUsers(t, st)[0]
			if first.Attributes["department"] != "Looking Glass" {
				t.Fatalf("mapped attribute not stored: %+v", first.Attributes)
			}
			// An administrator renames the user locally.
			if _, err := provisioner.SetLocalAttributes(context.Background(), st, first.ID, map[string]string{"name": "Admin's Alice"}); err != nil {
				t.Fatal(err)
			}
			u = alice()
			u.claims["name"], u.claims["given_name"] = "Alice Renamed", "Al"
			u.claims["org"] = map[string]any{"dept": "Mirrors"}
			u.claims["locale"] = "en-GB"
			s.queue(u)
			if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("second login: %d", resp.StatusCode)
			}
			got, err := st.User(context.Background(), first.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.wantName || got.Attributes["department"] != tt.wantDept || got.GivenName != tt.wantGiven || got.Attributes["locale"] != tt.wantLocale {
				t.Errorf("after second login: name %q given %q dept %q locale %q; want %q %q %q %q",
					got.Name, got.GivenName, got.Attributes["department"], got.Attributes["locale"], tt.wantName, tt.wantGiven, tt.wantDept, tt.wantLocale)
			}
			if !got.LastLoginAt.After(first.LastLoginAt) {
				t.Errorf("last login not refreshed: %v then %v", first.LastLoginAt, got.LastLoginAt)
			}
			ids, _ := st.Identities(context.Background(), got.ID)
			if len(ids) != 1 || !strings.Contains(string(ids[0].RawClaims), "Mirrors") {
				t.Errorf("raw claims not refreshed: %s", ids[0].RawClaims)
			}
		})
	}
}

func TestRolesFollowGroups(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		corpJIT:      "role admin from_group wonderland\n\t\t\t\trole member",
		handlerBlock: "\t\tallow role member\n\t\theader Remote-Roles {http.auth.user.roles}",
		auditLog:     true,
	})
	st := openStore(t, s.dir)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-Roles") != "admin,member" || h.Get("X-Auth-Roles") != "admin,member" || h.Get("Remote-Groups") != "admin,member,staff,wonderland" {
		t.Errorf("first login: Remote-Roles %q, roles placeholder %q, Remote-Groups %q", h.Get("Remote-Roles"), h.Get("X-Auth-Roles"), h.Get("Remote-Groups"))
	}
	u := allUsers(t, st)[0]
	if _, err := provisioner.GrantLocalRoles(context.Background(), st, u.ID, "auditor"); err != nil {
		t.Fatal(err)
	}

	// The provider stops sending wonderland: admin goes, the fixed and
	// the local grants stay.
	later := alice()
	later.claims["groups"] = []string{"staff"}
	s.queue(later)
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-Roles"); got != "auditor,member" {
		t.Errorf("after the group disappeared: roles %q, want auditor,member", got)
	}
	if got, _ := st.User(context.Background(), u.ID); !slices.Equal(got.Roles(), []string{"auditor", "member"}) {
		t.Errorf("stored roles %v", got.Roles())
	}

	// allow role member: a JIT-off user holds no roles, so is refused
	// with a clear 403 page, and the refusal is recorded.
	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "partner", "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not admit your account") || s.hasSession(b) {
		t.Errorf("allow refusal: %d, session %v", resp.StatusCode, s.hasSession(b))
	}
	logs := mustReadFile(t, s.logFile())
	for _, event := range []string{`"msg":"login denied"`, `"msg":"user updated"`} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %s audit event", event)
		}
	}
}
