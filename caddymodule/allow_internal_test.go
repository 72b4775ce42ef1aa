package caddymodule

import (
	"strings"
	"testing"
)

// S10: the email rules parse addresses strictly and compare whole
// domains, case-insensitively; unverified emails never match.
func TestAllowEmailRulesAreStrict(t *testing.T) {
	domain := AllowRule{EmailDomains: []string{"Corp.COM"}}
	exact := AllowRule{Emails: []string{"Boss@Corp.com"}}
	for _, r := range []*AllowRule{&domain, &exact} {
		if err := r.validate(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		email    string
		verified bool
		domain   bool
		exact    bool
	}{
		{"alice@corp.com", true, true, false},
		{"ALICE@CORP.COM", true, true, false},
		{"boss@corp.com", true, true, true},
		{"BOSS@corp.COM", true, true, true},
		{"alice@corp.com", false, false, false},
		{"a@evil@corp.com", true, false, false},
		{`"a@corp.com"@evil.com`, true, false, false},
		{"a@corp.com.evil.com", true, false, false},
		{"a@evil-corp.com", true, false, false},
		{"a@sub.corp.com", true, false, false},
		{"Alice <alice@corp.com>", true, false, false},
		{"alice@corp.com ", true, false, false},
		{"alice@corp.com\n", true, false, false},
		{"alice(c)@corp.com", true, false, false},
		{"alice@corp.com.", true, false, false},
		{"@corp.com", true, false, false},
		{"", true, false, false},
	}
	for _, c := range cases {
		s := &Session{Email: c.email, EmailVerified: c.verified, Connection: "corp"}
		if got := domain.matches(s); got != c.domain {
			t.Errorf("email_domain corp.com vs %q (verified %v) = %v, want %v", c.email, c.verified, got, c.domain)
		}
		if got := exact.matches(s); got != c.exact {
			t.Errorf("email boss@corp.com vs %q (verified %v) = %v, want %v", c.email, c.verified, got, c.exact)
		}
	}
}

// The email rules fold ASCII letter case and nothing else, as linking by
// email does: Unicode's lower case turns a Kelvin sign (U+212A) into "k",
// but a provider's verified "\u212Aate@kcorp.com" is another mailbox than
// kate@kcorp.com, and admitting it would let its owner in as Kate.
func TestAllowEmailRulesFoldASCIIOnly(t *testing.T) {
	domain := AllowRule{EmailDomains: []string{"KCorp.com"}}
	exact := AllowRule{Emails: []string{"Kate@KCorp.com"}}
	for _, r := range []*AllowRule{&domain, &exact} {
		if err := r.validate(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		email         string
		domain, exact bool
	}{
		{"KATE@KCORP.COM", true, true},
		{"\u212Aate@kcorp.com", true, false},
		{"kate@\u212Acorp.com", false, false},
		{"\u212AATE@\u212ACORP.COM", false, false},
	} {
		s := &Session{Email: c.email, EmailVerified: true, Connection: "corp"}
		if got := domain.matches(s); got != c.domain {
			t.Errorf("email_domain kcorp.com vs %q = %v, want %v", c.email, got, c.domain)
		}
		if got := exact.matches(s); got != c.exact {
			t.Errorf("email kate@kcorp.com vs %q = %v, want %v", c.email, got, c.exact)
		}
	}
	// A rule written with a Kelvin sign names that other domain, not
	// kcorp.com.
	kelvin := AllowRule{EmailDomains: []string{"\u212Acorp.com"}}
	if err := kelvin.validate(); err != nil {
		t.Fatal(err)
	}
	if kelvin.matches(&Session{Email: "kate@kcorp.com", EmailVerified: true}) {
		t.Error("email_domain \u212Acorp.com admitted kate@kcorp.com")
	}
}

func TestAllowGroupAndConnectionRules(t *testing.T) {
	h := &Handler{Application: Application{Allow: []AllowRule{{Groups: []string{"admins"}}, {Connections: []string{"partner"}}}}}
	for _, c := range []struct {
		s    Session
		want bool
	}{
		{Session{Groups: []string{"staff", "admins"}, Connection: "corp"}, true},
		{Session{Groups: []string{"Admins"}, Connection: "corp"}, false},
		{Session{Groups: []string{"admins-x"}, Connection: "corp"}, false},
		{Session{Connection: "partner"}, true},
		{Session{Connection: "corp"}, false},
	} {
		if got := h.admits(&c.s); got != c.want {
			t.Errorf("%+v: allowed = %v, want %v", c.s, got, c.want)
		}
	}
	if !(&Handler{}).admits(&Session{}) {
		t.Error("an application without rules refused a user")
	}
}

func TestAllowRuleValidation(t *testing.T) {
	for _, r := range []AllowRule{
		{},
		{EmailDomains: []string{"@corp.com"}},
		{EmailDomains: []string{"https://corp.com"}},
		{EmailDomains: []string{"corp"}},
		{Emails: []string{"a@evil@corp.com"}},
		{Emails: []string{"Boss <boss@corp.com>"}},
	} {
		if err := r.validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

// FuzzSplitEmail: whatever splitEmail accepts has one "@" and splits
// back to the same address with its ASCII letters lower-cased, and only
// those (no Unicode folding, as the README's allow rules say: "0@Ŋ"
// stays "0@Ŋ").
func FuzzSplitEmail(f *testing.F) {
	for _, s := range []string{"a@corp.com", "a@evil@corp.com", `"a@b"@c.com`, "A <a@b.com>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local, domain, ok := splitEmail(addr)
		if !ok {
			return
		}
		if local == "" || domain == "" || strings.Count(addr, "@") != 1 {
			t.Fatalf("%q: empty part", addr)
		}
		if got := local + "@" + domain; got != lowerASCIIString(addr) {
			t.Fatalf("%q split into %q", addr, got)
		}
	})
}
