package caddymodule_test

import (
	"testing"
)

// A provider that vouches for "bob\u0000@example.com" vouches for another
// address than Bob's verified "bob@example.com": cleaned of its NUL it
// must not become Bob's name or link to Bob's local user, through a
// connection with JIT on (link verified_email) or off (S8, S15).
func TestNULInAVerifiedEmailIsNotAnotherMailbox(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("bob-sub", "bob@example.com", true, "bob"), ""); got.user != "bob@example.com" {
		t.Fatalf("Bob's own login: %d %q", got.status, got.user)
	}
	for _, conn := range []string{"corp", "partner"} {
		got := loginAs(s, conn, person("mallory-sub", "bob\x00@example.com", true, "mallory"), "")
		if got.user == "bob@example.com" {
			t.Errorf("through %s, subject mallory-sub whose provider verified %q (not Bob's address) reached the upstream as Remote-User %q, Bob's name",
				conn, "bob\x00@example.com", got.user)
		}
	}
}

// Two values a JIT-off name must keep apart, "admin" and "ad\u0000min",
// give two names: names read the claims as sent, and only what is
// stored loses its NUL characters (S15).
func TestNULDoesNotMergeJITOffNames(t *testing.T) {
	s := startIdentitySite(t)
	a := loginAs(s, "login", person("admin-sub", "", false, "admin"), "")
	b := loginAs(s, "login", person("other-sub", "", false, "ad\x00min"), "")
	if a.user == "" || b.user == "" {
		t.Fatalf("logins: %d %q, %d %q", a.status, a.user, b.status, b.user)
	}
	if a.user == b.user {
		t.Errorf("subjects admin-sub (preferred_username \"admin\") and other-sub (\"ad\\u0000min\") both reach the upstream as Remote-User %q", a.user)
	}
}
