package provisioner_test

import (
	"fmt"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Every default-ignorable code point is dropped from a template's
// result, not only format characters: the combining grapheme joiner
// U+034F, variation selectors U+FE00-FE0F, the Hangul fillers U+115F,
// U+1160, U+3164, U+FFA0 and the Mongolian free variation selectors
// U+180B-180D render as nothing and survive NFKC, so "admin\u034f" would
// display as the reserved "admin" and "bob\u3164" as a second "bob".
func TestTemplateNamesDropEveryInvisibleCharacter(t *testing.T) {
	pol := policy(t, provisioner.Policy{})
	for _, r := range []rune{0x034F, 0xFE0F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180B} {
		for _, base := range []string{"admin", "root"} {
			pref := base + string(r)
			c := provisioner.Claims{Subject: "s", PreferredUsername: pref}
			got := pol.Username("corp", c, pol.MapProfile("corp", c))
			if got != "corp-s" {
				t.Errorf("preferred_username %q (U+%04X): local username %q, which displays as the reserved %q; want corp-s", pref, r, got, base)
			}
		}
	}
	// And through the store: the real bob exists; an invisible suffix
	// makes a second "bob".
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	if _, err := p.Provision(t.Context(), req(pol, provisioner.Claims{Issuer: "i", Subject: "bob-sub", PreferredUsername: "bob"})); err != nil {
		t.Fatal(err)
	}
	res, err := p.Provision(t.Context(), req(pol, provisioner.Claims{Issuer: "i", Subject: "mallory-sub", PreferredUsername: "bob\u3164"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.User.Username != "corp-mallory-sub" {
		t.Errorf("second user's name %s, want corp-mallory-sub (bob is taken)", fmt.Sprintf("%+q", res.User.Username))
	}
}
