package provisioner_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The rules of S15 for the names the templates give: an email-shaped
// name is only ever the user's verified email, a local username has no
// ':', and a JIT-off name that is not the verified email is qualified by
// the connection.

func TestLocalUsernameCandidates(t *testing.T) {
	custom := func(srcs ...string) *provisioner.Policy {
		var ts []provisioner.Expr
		for _, s := range srcs {
			ts = append(ts, mustExpr(t, s))
		}
		return policy(t, provisioner.Policy{UsernameTemplates: ts})
	}
	def := policy(t, provisioner.Policy{})
	for _, tt := range []struct {
		name string
		pol  *provisioner.Policy
		c    provisioner.Claims
		want string
	}{
		{"unverified email, preferred_username another's email", def,
			provisioner.Claims{Subject: "s", Email: "mallory@example.com", PreferredUsername: "alice@example.com"}, "corp-s"},
		{"unverified email equal to the preferred_username", def,
			provisioner.Claims{Subject: "s", Email: "alice@example.com", PreferredUsername: "alice@example.com"}, "corp-s"},
		{"full-width at sign", def,
			provisioner.Claims{Subject: "s", PreferredUsername: "alice＠example.com"}, "corp-s"},
		{"verified email wins over an email-shaped preferred_username", def,
			provisioner.Claims{Subject: "s", Email: "Alice@Example.com", EmailVerified: true, PreferredUsername: "bob@example.com"}, "alice@example.com"},
		{"verified user, preferred_username another's email, email template skipped", custom("{profile.preferred_username}", "{connection}-{subject}"),
			provisioner.Claims{Subject: "s", Email: "alice@example.com", EmailVerified: true, PreferredUsername: "bob@example.com"}, "corp-s"},
		{"profile.email template, unverified", custom("{profile.email}", "{subject}"),
			provisioner.Claims{Subject: "s", Email: "alice@example.com"}, "s"},
		{"profile.email template, verified", custom("{profile.email}", "{subject}"),
			provisioner.Claims{Subject: "s", Email: "alice@example.com", EmailVerified: true}, "alice@example.com"},
		{"a claim with another address", custom("{claims.mail}", "{subject}"),
			provisioner.Claims{Subject: "s", Email: "alice@example.com", EmailVerified: true, Raw: []byte(`{"mail":"bob@example.com"}`)}, "s"},
		{"':' becomes '_'", def,
			provisioner.Claims{Subject: "urn:x:1"}, "corp-urn_x_1"},
		{"preferred_username shaped like a JIT-off name", def,
			provisioner.Claims{Subject: "s", PreferredUsername: "partner:ceo"}, "partner_ceo"},
		{"verified email with ':' is not a name", def,
			provisioner.Claims{Subject: "s", Email: `"a:b"@example.com`, EmailVerified: true}, "corp-s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.Username("corp", tt.c, tt.pol.MapProfile("corp", tt.c)); got != tt.want {
				t.Errorf("Username = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSessionName(t *testing.T) {
	off := func(srcs ...string) *provisioner.Policy {
		p := provisioner.Policy{}
		for _, s := range srcs {
			p.UsernameTemplates = append(p.UsernameTemplates, mustExpr(t, s))
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	def := off()
	for _, tt := range []struct {
		name string
		pol  *provisioner.Policy
		c    provisioner.Claims
		want string
	}{
		{"verified email", def, provisioner.Claims{Subject: "s", Email: "Alice@Example.com", EmailVerified: true, PreferredUsername: "al"}, "alice@example.com"},
		{"unverified email, email-shaped preferred_username", def,
			provisioner.Claims{Subject: "s1", Email: "mallory@example.com", PreferredUsername: "alice@example.com"}, "partner:s1"},
		{"no email: the subject, not the preferred_username", def, provisioner.Claims{Subject: "s1", PreferredUsername: "ceo"}, "partner:s1"},
		{"subject keeps its case", def, provisioner.Claims{Subject: "AbC"}, "partner:AbC"},
		{"subject escaped, not cleaned", def, provisioner.Claims{Subject: "a b,c;\"d%\n\u00e9"}, "partner:a%20b%2Cc%3B%22d%25%0A%C3%A9"},
		{"subject with ':'", def, provisioner.Claims{Subject: "urn:x"}, "partner:urn:x"},
		{"subject that is a reserved name", def, provisioner.Claims{Subject: "admin"}, "partner:admin"},
		{"email with controls", def, provisioner.Claims{Subject: "s", Email: "a\r\nb@example.com", EmailVerified: true}, "partner:s"},
		{"preferred_username template", off("{profile.preferred_username}"), provisioner.Claims{Subject: "s", PreferredUsername: "ceo"}, "partner:ceo"},
		{"email-shaped template value skipped", off("{profile.preferred_username}", "{subject}"),
			provisioner.Claims{Subject: "s", Email: "x@example.com", PreferredUsername: "alice@example.com"}, "partner:s"},
		{"own verified email through a template", off("{profile.preferred_username}", "{subject}"),
			provisioner.Claims{Subject: "s", Email: "alice@example.com", EmailVerified: true, PreferredUsername: "ALICE@example.com"}, "alice@example.com"},
		{"too long falls through", off("{claims.long}", "{subject}"),
			provisioner.Claims{Subject: "s", Raw: []byte(`{"long":"` + strings.Repeat("x", 200) + `"}`)}, "partner:s"},
		{"nothing usable", off("{claims.none}"), provisioner.Claims{Subject: "s"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.SessionName("partner", tt.c, tt.pol.MapProfile("partner", tt.c)); got != tt.want {
				t.Errorf("SessionName = %q, want %q", got, tt.want)
			}
		})
	}
	// Through Provision, with a store that holds a local user of the
	// same name: the JIT-off name is still not that user's.
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	if _, err := s.CreateUser(t.Context(), &provisioner.User{Username: "ceo"}, provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "i", Subject: "ceo"}}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Provision(t.Context(), provisioner.Request{Connection: "partner", Policy: off("{profile.preferred_username}"), Claims: provisioner.Claims{Subject: "x", PreferredUsername: "ceo"}})
	if err != nil || res.Username != "partner:ceo" || res.User != nil {
		t.Fatalf("JIT off beside a local ceo: %+v, %v", res, err)
	}
	if _, err := p.Provision(t.Context(), provisioner.Request{Connection: "a:b", Policy: def, Claims: provisioner.Claims{Subject: "x"}}); err == nil {
		t.Error("a connection name with ':' was accepted")
	}
}

// With JIT on, a taken name that is not the verified email falls through
// to the next template; a taken verified email is a conflict.
func TestTakenUsernameFallsThrough(t *testing.T) {
	for _, mode := range []provisioner.Mode{provisioner.ModeSilent, provisioner.ModeConsent} {
		t.Run(string(mode), func(t *testing.T) {
			s := newStore(t)
			p := &provisioner.Provisioner{Store: s}
			ctx := t.Context()
			pol := policy(t, provisioner.Policy{Mode: mode})
			login := func(c provisioner.Claims) (provisioner.Result, error) {
				res, err := p.Provision(ctx, req(pol, c))
				if err == nil && res.Outcome == provisioner.OutcomeNeedsConsent {
					r := req(pol, c)
					r.Consented = append([]string{}, res.Consent...)
					res, err = p.Provision(ctx, r)
				}
				return res, err
			}
			if _, err := s.CreateUser(ctx, &provisioner.User{Username: "ceo"}, provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "local", Issuer: "i", Subject: "ceo"}}); err != nil {
				t.Fatal(err)
			}
			// preferred_username "ceo" is taken: the next template.
			res, err := login(provisioner.Claims{Issuer: "i", Subject: "s1", PreferredUsername: "ceo"})
			if err != nil || res.User.Username != "corp-s1" {
				t.Fatalf("taken preferred_username: %+v, %v; want corp-s1", res, err)
			}
			// An unverified user claims bob@example.com: never that name.
			res, err = login(provisioner.Claims{Issuer: "i", Subject: "s2", Email: "bob@example.com", PreferredUsername: "bob@example.com"})
			if err != nil || res.User.Username != "corp-s2" {
				t.Fatalf("unverified bob@example.com: %+v, %v; want corp-s2", res, err)
			}
			// The real Bob, verified, gets it afterwards.
			res, err = login(provisioner.Claims{Issuer: "i", Subject: "s3", Email: "bob@example.com", EmailVerified: true})
			if err != nil || res.User.Username != "bob@example.com" {
				t.Fatalf("verified Bob: %+v, %v; want bob@example.com", res, err)
			}
			// A verified email already used as someone's name (whose
			// email changed since): a conflict, not a second name.
			if _, err := s.CreateUser(ctx, &provisioner.User{Username: "carol@example.com", Email: "carol@new.example.com", EmailVerified: true},
				provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "local", Issuer: "i", Subject: "carol"}}); err != nil {
				t.Fatal(err)
			}
			c := provisioner.Claims{Issuer: "i", Subject: "s4", Email: "carol@example.com", EmailVerified: true, PreferredUsername: "carol"}
			if res, err := p.Provision(ctx, req(pol, c)); !errors.Is(err, provisioner.ErrUsernameConflict) {
				t.Fatalf("taken verified email: %+v, %v; want a conflict", res, err)
			}
			if identityStored(t, s, c) {
				t.Error("the conflicting identity was stored")
			}
			// Every candidate taken (the fallback's identity-suffixed
			// form too): a conflict.
			s5 := provisioner.Claims{Issuer: "i", Subject: "s5", PreferredUsername: "dave"}
			for _, name := range []string{"dave", "corp-s5", "corp-s5-" + provisioner.IdentitySuffix("corp", s5)} {
				if _, err := s.CreateUser(ctx, &provisioner.User{Username: name}, provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "local", Issuer: "i", Subject: name}}); err != nil {
					t.Fatal(err)
				}
			}
			if res, err := p.Provision(ctx, req(pol, s5)); !errors.Is(err, provisioner.ErrUsernameConflict) {
				t.Fatalf("every candidate taken: %+v, %v; want a conflict", res, err)
			}
		})
	}
}

func TestChosenUsernameRules(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	ctx := t.Context()
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername, UsernamePattern: `^[a-z0-9@.:_-]{2,64}$`})
	choose := func(c provisioner.Claims, name string) (provisioner.Result, error) {
		res, err := p.Provision(ctx, req(pol, c))
		if err != nil || res.Outcome != provisioner.OutcomeNeedsUsername {
			t.Fatalf("first step: %+v, %v", res, err)
		}
		if strings.ContainsAny(res.Username, "@:") && res.Username != provisioner.NormalizeUsername(c.Email) {
			t.Errorf("suggested %q", res.Username)
		}
		r := req(pol, c)
		r.Consented, r.Username = append([]string{}, res.Consent...), name
		return p.Provision(ctx, r)
	}
	unverified := provisioner.Claims{Issuer: "i", Subject: "m", Email: "bob@example.com", PreferredUsername: "bob@example.com"}
	for _, name := range []string{"bob@example.com", "BOB@example.com", "alice@example.com", "partner:ceo", "ceo:"} {
		if res, err := choose(unverified, name); !errors.Is(err, provisioner.ErrUsernameInvalid) {
			t.Errorf("unverified user choosing %q: %+v, %v; want refused", name, res, err)
		}
	}
	verified := provisioner.Claims{Issuer: "i", Subject: "b", Email: "Bob@example.com", EmailVerified: true}
	if res, err := choose(verified, "alice@example.com"); !errors.Is(err, provisioner.ErrUsernameInvalid) {
		t.Errorf("verified Bob choosing another's email: %+v, %v; want refused", res, err)
	}
	if res, err := choose(verified, "bob@example.com"); err != nil || res.User.Username != "bob@example.com" {
		t.Errorf("verified Bob choosing his own email: %+v, %v", res, err)
	}
	if _, err := pol.CheckChosenUsername("a:b", provisioner.Profile{}); err == nil || !strings.Contains(err.Error(), "':'") {
		t.Errorf("':' refused without saying why: %v", err)
	}
}

func TestGroupsWithSeparatorDropped(t *testing.T) {
	pol := policy(t, provisioner.Policy{Roles: []provisioner.RoleRule{{Role: "admin", FromGroups: []string{"admins"}}, {Role: "dev", FromGroups: []string{"dev"}}}})
	c := provisioner.Claims{Subject: "s", Groups: []string{"staff,admins", "dev", "Domain Users", "x\ny", "\u0085z", " "}}
	pr := pol.MapProfile("corp", c)
	if want := []string{"Domain Users", "dev"}; !slices.Equal(pr.Groups, want) {
		t.Errorf("Groups = %q, want %q", pr.Groups, want)
	}
	if want := []string{"staff,admins", "x\ny", "\u0085z", " "}; !slices.Equal(pr.DroppedGroups, want) {
		t.Errorf("DroppedGroups = %q, want %q", pr.DroppedGroups, want)
	}
	if roles := pol.RolesFor(pr.Groups); !slices.Equal(roles, []string{"dev"}) {
		t.Errorf("roles = %v: a dropped group granted a role", roles)
	}
	// The same through a mapping that reads another claim.
	mapped := policy(t, provisioner.Policy{Map: map[string]provisioner.Expr{"groups": mustExpr(t, "{claims.teams}")}})
	c.Raw = []byte(`{"teams":["a,b","c"]}`)
	if got := mapped.MapProfile("corp", c).Groups; !slices.Equal(got, []string{"c"}) {
		t.Errorf("mapped groups = %q", got)
	}
	// Stored: only the kept groups.
	s := newStore(t)
	res, err := (&provisioner.Provisioner{Store: s}).Provision(t.Context(), req(pol, c))
	if err != nil || !slices.Equal(res.User.Groups, []string{"Domain Users", "dev"}) {
		t.Fatalf("stored groups: %+v, %v", res.User, err)
	}
	// A rule naming such a group could never match: a config error.
	bad := provisioner.Policy{Roles: []provisioner.RoleRule{{Role: "admin", FromGroups: []string{"staff,admins"}}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("Validate = %v, want an error about the comma", err)
	}
}

// FuzzNames checks the rules for any claims: a local username never has
// ':' and has '@' only as the verified email; a JIT-off name is the
// verified email or "<connection>:" plus header-safe text; two subjects
// that differ give two JIT-off names.
func FuzzNames(f *testing.F) {
	f.Add("s", "S", "a@b.c", true, "a@b.c", "{profile.preferred_username}")
	f.Add("urn:x", "urn_x", "x:y@z", true, "partner:ceo", "{claims.n}")
	f.Add("a b", "a%20b", "", false, "ｂｏｂ＠ｅｘａｍｐｌｅ.com", "{connection}-{subject}")
	f.Fuzz(func(t *testing.T, sub1, sub2, email string, verified bool, preferred, tmpl string) {
		e, err := provisioner.ParseExpr(tmpl, true)
		if err != nil {
			return
		}
		raw, _ := json.Marshal(map[string]string{"n": preferred})
		on := provisioner.Policy{Enabled: true, UsernameTemplates: []provisioner.Expr{e}}
		for _, pol := range []provisioner.Policy{on, {Enabled: true}} {
			c := provisioner.Claims{Subject: sub1, Email: email, EmailVerified: verified, PreferredUsername: preferred, Raw: raw}
			pr := pol.MapProfile("corp", c)
			u := pol.Username("corp", c, pr)
			if strings.Contains(u, ":") {
				t.Errorf("local username %q has ':'", u)
			}
			if strings.Contains(u, "@") && (!pr.EmailVerified || u != provisioner.NormalizeUsername(pr.Email)) {
				t.Errorf("local username %q is email-shaped but not the verified email (%q, %v)", u, pr.Email, pr.EmailVerified)
			}
		}
		off := provisioner.Policy{}
		name := func(sub string) string {
			c := provisioner.Claims{Subject: sub, Email: email, EmailVerified: verified}
			return off.SessionName("partner", c, off.MapProfile("partner", c))
		}
		n1, n2 := name(sub1), name(sub2)
		for _, n := range []string{n1, n2} {
			if n == "" {
				continue
			}
			if rest, ok := strings.CutPrefix(n, "partner:"); ok {
				if strings.ContainsAny(rest, "@,;\"") || strings.ContainsFunc(rest, func(r rune) bool { return r <= ' ' || r >= 0x7f || unicode.IsControl(r) }) {
					t.Errorf("JIT-off name %q is not plain text", n)
				}
			} else if !verified || n != provisioner.NormalizeUsername(email) {
				t.Errorf("JIT-off name %q is neither qualified nor the verified email %q", n, email)
			}
		}
		if sub1 != sub2 && n1 != "" && n1 == n2 && !strings.Contains(n1, "@") {
			t.Errorf("subjects %q and %q share the name %q", sub1, sub2, n1)
		}
	})
}
