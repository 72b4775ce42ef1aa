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
