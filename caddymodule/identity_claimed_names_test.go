package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
)

// A preferred_username of "corp-<victim's subject>" (subjects are often
// public or guessable) does not take the victim's {connection}-{subject}
// fallback before their first sign-in: the attacker falls through to a
// name of their own, and the victim, with nothing else to be named by,
// signs in.
func TestSubjectFallbackNameCannotBeTakenFirst(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("attacker-sub", "", false, "corp-victim-sub"), ""); got.status != http.StatusOK {
		t.Fatalf("attacker: %d\n%s", got.status, got.body)
	}
	got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
	if got.status != http.StatusOK || got.user == "" {
		t.Errorf("victim (subject victim-sub, no email, no preferred_username) after an attacker took corp-victim-sub: %d, Remote-User %q; want a name of their own\n%s",
			got.status, got.user, firstLine(got.body))
	}
}

// A preferred_username that reads as another name (a Cyrillic а in
// "alice", a colon look-alike in "partner:alice-sub", a dotless ı in the
// reserved "admin") is no name: the user gets the subject fallback, as
// chosen names are plain ASCII.
func TestNamesFromClaimsUsersSetAreNoLookAlikes(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("alice-sub", "", false, "alice"), ""); got.user != "alice" {
		t.Fatalf("alice: %d %q\n%s", got.status, got.user, got.body)
	}
	for i, preferred := range []string{"\u0430lice", "partner\ua789alice-sub", "adm\u0131n"} {
		got := loginAs(s, "corp", person("mallory-"+string(rune('a'+i)), "", false, preferred), "")
		if got.status != http.StatusOK {
			t.Fatalf("%q: %d\n%s", preferred, got.status, got.body)
		}
		if got.user != "corp-mallory-"+string(rune('a'+i)) {
			t.Errorf("preferred_username %q (a look-alike of alice, partner:alice-sub or admin) reached the upstream as %q; want the subject fallback", preferred, got.user)
		}
	}
}

// With JIT off, a verified email names the local user holding it only
// while it is still their verified address up to ASCII case: Kate's
// address changed to "\u212Aate@" (Kelvin sign, another mailbox), so the
// new owner of kate@example.com is not given Kate's name.
func TestJITOffHolderCheckComparesAddressesUpToASCIICase(t *testing.T) {
	s := startIdentitySite(t)
	st := openStore(t, s.dir)
	if got := loginAs(s, "corp", person("kate-sub", "kate@example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Fatalf("kate: %d %q\n%s", got.status, got.user, got.body)
	}
	// Kate's address changes at the provider; the next login syncs it.
	if got := loginAs(s, "corp", person("kate-sub", "\u212Aate@example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Fatalf("kate, second login: %d %q\n%s", got.status, got.user, got.body)
	}
	k, err := st.UserByUsername(context.Background(), "kate@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if k.Email != "\u212Aate@example.com" || !k.EmailVerified {
		t.Fatalf("kate's stored email %q verified %v; want the Kelvin-sign address, verified", k.Email, k.EmailVerified)
	}
	got := loginAs(s, "partner", person("other-sub", "kate@example.com", true, ""), "")
	if got.user != "partner:other-sub" {
		t.Errorf("another person with verified kate@example.com through partner (JIT off), after Kate's address changed to %+q: Remote-User %q; want partner:other-sub, not Kate's name",
			k.Email, got.user)
	}
}
