package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// A site whose catch-all handle block has its own jit_auth (everyone of
// corp) and whose /admin/* handle block has a stricter one (allow only
// bob) answered its sign-in endpoints, before the cleaning step took
// them over, with the catch-all's handler: alice signed in for /app/x.
// When the cleaning step first handed /.jitauth/… to the handler
// provisioned first for the prefix (the /admin/* one), alice's sign-in
// for /app/x ended on "Access denied". It now hands over only what
// Caddy's routes would take past every jit_auth handler.
func TestSignInAnsweredByAnotherHandlersAllowRules(t *testing.T) {
	for name, body := range map[string]string{
		"handle":      "\thandle /admin/* {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t\tallow email bob@example.com\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}",
		"handle_path": "\thandle_path /admin/* {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t\tallow email bob@example.com\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := siteOrLoadError(t, "", "", body)
			if err != nil {
				t.Fatal(err)
			}
			b := newBrowser(t)
			s.queue(alice())
			resp, page, visited, done := followN(b, s.base+"/app/x", 20)
			if !done || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
				t.Errorf("alice signing in for /app/x (the catch-all's jit_auth, which admits her) ended %d after %v: %.200s", resp.StatusCode, visited, page)
			}
		})
	}
}

// An application that refuses a signed-in user refuses its second-factor
// page too: alice, admitted by the catch-all's jit_auth, must not enrol
// (or verify) a factor through the /admin/* one, which admits only bob
// and requires TOTP. Its pages answer 403 as its protected paths do.
func TestMFAPageOfAnApplicationThatRefusesTheUser(t *testing.T) {
	s, err := siteOrLoadError(t, "", "", "\thandle_path /admin/* {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t\tallow email bob@example.com\n\t\t\tmfa totp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	s.queue(alice())
	if resp, page, visited, done := followN(b, s.base+"/app/x", 20); !done || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
		t.Fatalf("alice signing in for /app/x ended %d after %v: %.200s", resp.StatusCode, visited, page)
	}
	if resp, _ := b.get(s.base + "/admin/x"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/admin/x for alice: %d, want 403", resp.StatusCode)
	}
	resp, page := b.get(s.base + "/admin/.jitauth/mfa")
	if resp.StatusCode != http.StatusForbidden || strings.Contains(page, `id="secret"`) || strings.Contains(page, "<form") {
		t.Fatalf("the refusing application's MFA page for alice: %d\n%.400s", resp.StatusCode, page)
	}
}
