package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
)

// A provider-chosen preferred_username never yields a local name that
// differs from another only in characters nobody sees (zero-width
// characters, bidirectional overrides) or that reads as a qualified
// JIT-off name once percent-decoded ("corp%3Asub" is corp:sub to an
// upstream that decodes). Such characters are dropped or replaced like
// ':' before the name is checked, so the reserved list and the store's
// uniqueness see the name as a reader would.
func TestPreferredUsernameInvisibleAndPercentTricks(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("bob-sub", "", false, "bob"), ""); got.user != "bob" {
		t.Fatalf("bob: %d %q\n%s", got.status, got.user, got.body)
	}
	for _, tc := range []struct{ preferred, sub string }{
		{"bob\u200b", "zw-sub"},
		{"b\u200do\u200cb", "zwj-sub"},
		{"\u202eadmin", "rlo-sub"},
		{"admin\ufeff", "bom-sub"},
		{"login%3Amallory", "pct-sub"},
		{"alice%40example.com", "pct2-sub"},
	} {
		got := loginAs(s, "corp", person(tc.sub, "", false, tc.preferred), "")
		if got.status != http.StatusOK {
			t.Fatalf("%q: %d\n%s", tc.preferred, got.status, got.body)
		}
		if got.user == "bob" || got.user == "admin" || strings.Contains(got.user, "%") ||
			strings.ContainsFunc(got.user, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
			t.Errorf("preferred_username %q reached the upstream as %q", tc.preferred, got.user)
		}
	}
}

// A verified email is a name only as the provider verified it, up to
// ASCII letter case: Unicode folding would turn a different mailbox into
// someone else's address ("\u212Aate@", with the Kelvin sign, lowers to
// "kate@"; the full-width "ａlice@" folds to "alice@"). JIT on and off.
func TestVerifiedEmailFoldedToAnotherIsNoName(t *testing.T) {
	s := startIdentitySite(t)
	for _, conn := range []string{"partner", "corp"} {
		for i, email := range []string{"\u212Aate@example.com", "\uff41lice@example.com", "alice@\uff45xample.com"} {
			got := loginAs(s, conn, person(conn+"-fold-"+string(rune('a'+i)), email, true, ""), "")
			if got.status != http.StatusOK {
				t.Fatalf("%s %q: %d\n%s", conn, email, got.status, got.body)
			}
			if got.user == "kate@example.com" || got.user == "alice@example.com" {
				t.Errorf("%s: verified %q reached the upstream as %q", conn, email, got.user)
			}
		}
	}
	// An address that differs only in ASCII case is the same name.
	if got := loginAs(s, "partner", person("kate-sub", "Kate@Example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Errorf("verified Kate@Example.com: %d %q, want kate@example.com", got.status, got.user)
	}
}

// Linking by verified email compares the addresses up to ASCII letter
// case only: a verified "\u212Aate@example.com" (Kelvin sign) is another
// mailbox than kate@example.com, and must not sign in to Kate's account.
func TestVerifiedEmailLinkingIgnoresUnicodeFolding(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("kate-sub", "kate@example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Fatalf("kate: %d %q\n%s", got.status, got.user, got.body)
	}
	for i, email := range []string{"\u212Aate@example.com", "KATE@EXAMPLE.COM"} {
		got := loginAs(s, "consent", person("other-"+string(rune('a'+i)), email, true, ""), "")
		switch {
		case i == 0 && got.user == "kate@example.com":
			t.Errorf("verified %q signed in to Kate's account", email)
		case i == 1 && got.user != "kate@example.com":
			t.Errorf("verified %q (Kate's address in capitals) did not link: %d %q", email, got.status, got.user)
		}
	}
}
