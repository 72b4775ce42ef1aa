package provisioner_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func mustExpr(t *testing.T, s string) provisioner.Expr {
	t.Helper()
	e, err := provisioner.ParseExpr(s, true)
	if err != nil {
		t.Fatalf("ParseExpr(%q): %v", s, err)
	}
	return e
}

func policy(t *testing.T, p provisioner.Policy) *provisioner.Policy {
	t.Helper()
	p.Enabled = true
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &p
}

func bobClaims() provisioner.Claims {
	return provisioner.Claims{
		Issuer: "https://idp.example.com", Subject: "sub-bob",
		Email: "bob@example.com", EmailVerified: true, EmailVerifiedKnown: true,
		Name: "Bob", PreferredUsername: "bobby",
		Raw: []byte(`{"sub":"sub-bob","email":"bob@example.com","name":"Bob","iat":1}`),
	}
}

func req(pol *provisioner.Policy, c provisioner.Claims) provisioner.Request {
	return provisioner.Request{Connection: "corp", Policy: pol, Claims: c}
}

func identityStored(t *testing.T, s provisioner.Store, c provisioner.Claims) bool {
	t.Helper()
	_, err := s.UserByIdentity(t.Context(), provisioner.IdentityKey{Connection: "corp", Issuer: c.Issuer, Subject: c.Subject})
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestConsentMode(t *testing.T) {
	s := newStore(t)
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := &provisioner.Provisioner{Store: s, Now: clk.Now}
	ctx := t.Context()
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeConsent})

	res, err := p.Provision(ctx, req(pol, bobClaims()))
	if err != nil || res.Outcome != provisioner.OutcomeNeedsConsent {
		t.Fatalf("first login = %+v, %v; want needs consent", res, err)
	}
	want := []string{"claims.email", "claims.name", "email", "email_verified", "name"}
	if !slices.Equal(res.Consent, want) {
		t.Errorf("Consent = %v, want %v (stored attributes and user claims, no protocol claims)", res.Consent, want)
	}
	var shown []string
	for _, a := range res.Attributes {
		shown = append(shown, a.Name+"="+a.Value)
	}
	if got := strings.Join(shown, " "); got != "claims.email= claims.name= email=bob@example.com email_verified=true name=Bob" {
		t.Errorf("Attributes = %s", got)
	}
	if userCount(t, s) != 0 || identityStored(t, s, bobClaims()) {
		t.Fatal("something was stored before consent")
	}

	// An answer that covers less than was asked is not consent.
	r := req(pol, bobClaims())
	r.Consented = []string{"email"}
	if res, err := p.Provision(ctx, r); err != nil || res.Outcome != provisioner.OutcomeNeedsConsent || userCount(t, s) != 0 {
		t.Fatalf("partial consent = %+v, %v; want asked again, nothing stored", res, err)
	}

	r.Consented = want
	res, err = p.Provision(ctx, r)
	if err != nil || res.Outcome != provisioner.OutcomeCreated {
		t.Fatalf("login with consent = %+v, %v; want created", res, err)
	}
	c := res.User.Consents["corp"]
	if !slices.Equal(c.Attributes, want) || !c.At.Equal(clk.t) {
		t.Errorf("recorded consent = %+v, want %v at %v", c, want, clk.t)
	}

	// Same attributes again: no question.
	clk.t = clk.t.Add(time.Hour)
	if res, err := p.Provision(ctx, req(pol, bobClaims())); err != nil || res.Outcome != provisioner.OutcomeUpdated {
		t.Fatalf("second login = %+v, %v; want updated without asking", res, err)
	}

	// The provider starts sending a picture: the stored set grows, so
	// the user is asked again and nothing is written meanwhile.
	grown := bobClaims()
	grown.Picture = "https://example.com/bob.png"
	before := mustUser(t, s, res.User.ID)
	clk.t = clk.t.Add(time.Hour)
	res2, err := p.Provision(ctx, req(pol, grown))
	if err != nil || res2.Outcome != provisioner.OutcomeNeedsConsent {
		t.Fatalf("login with more attributes = %+v, %v; want needs consent", res2, err)
	}
	if !slices.Contains(res2.Consent, "picture") {
		t.Errorf("Consent = %v, want picture in it", res2.Consent)
	}
	after := mustUser(t, s, res.User.ID)
	if after.Picture != "" || !after.LastLoginAt.Equal(before.LastLoginAt) {
		t.Errorf("re-consent pending, but the login was written: %+v", after)
	}
	r = req(pol, grown)
	r.Consented = res2.Consent
	if res3, err := p.Provision(ctx, r); err != nil || res3.Outcome != provisioner.OutcomeUpdated || res3.User.Picture == "" {
		t.Fatalf("login after re-consent = %+v, %v", res3, err)
	}
	if got := mustUser(t, s, res.User.ID).Consents["corp"]; !slices.Contains(got.Attributes, "picture") || !got.At.Equal(clk.t) {
		t.Errorf("consent after re-consent = %+v", got)
	}
	// A smaller set later is no reason to ask.
	if res, err := p.Provision(ctx, req(pol, bobClaims())); err != nil || res.Outcome != provisioner.OutcomeUpdated {
		t.Errorf("login with fewer attributes = %+v, %v; want updated", res, err)
	}
}

func TestUsernameMode(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	ctx := t.Context()
	silent := policy(t, provisioner.Policy{})
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername, Reserved: []string{"boss"}})

	carol := provisioner.Claims{Issuer: "https://idp.example.com", Subject: "sub-carol", PreferredUsername: "carol"}
	existing, err := p.Provision(ctx, req(silent, carol))
	if err != nil {
		t.Fatal(err)
	}

	res, err := p.Provision(ctx, req(pol, bobClaims()))
	if err != nil || res.Outcome != provisioner.OutcomeNeedsUsername {
		t.Fatalf("first login = %+v, %v; want needs username", res, err)
	}
	if res.Username != "bob" {
		t.Errorf("suggested username = %q, want the email's local part (the template's bob@example.com does not fit the pattern)", res.Username)
	}
	consent := res.Consent
	choose := func(name string, consented []string) (provisioner.Result, error) {
		r := req(pol, bobClaims())
		r.Username, r.Consented = name, consented
		return p.Provision(ctx, r)
	}
	for name, wantErr := range map[string]error{
		"carol":          provisioner.ErrUsernameTaken,   // another user's name
		"Carol":          provisioner.ErrUsernameTaken,   // differs only in case
		"ｃａｒｏｌ":          provisioner.ErrUsernameTaken,   // differs only in width (NFKC)
		"boss":           provisioner.ErrUsernameInvalid, // reserved here
		"Bad Name!":      provisioner.ErrUsernameInvalid,
		"x":              provisioner.ErrUsernameInvalid, // too short for the pattern
		"bob\u0000":      provisioner.ErrUsernameInvalid,
		"bob@example.co": provisioner.ErrUsernameInvalid, // '@' is not in the default pattern
	} {
		res, err := choose(name, consent)
		if !errors.Is(err, wantErr) {
			t.Errorf("choosing %+q = %+v, %v; want %v", name, res.Outcome, err, wantErr)
		}
		if res.User != nil {
			t.Errorf("choosing %+q returned a user", name)
		}
	}
	if users, _ := s.ListUsers(ctx, 0, 10); len(users) != 1 || identityStored(t, s, bobClaims()) {
		t.Fatalf("a refused choice stored something: %d users", len(users))
	}
	if ids, _ := s.Identities(ctx, existing.User.ID); len(ids) != 1 {
		t.Errorf("carol has %d identities after others tried her name, want 1", len(ids))
	}
	// A name without consent is not enough.
	if res, err := choose("bobby", nil); err != nil || res.Outcome != provisioner.OutcomeNeedsUsername {
		t.Errorf("username without consent = %+v, %v; want asked again", res, err)
	}
	res, err = choose("  Bobby ", consent)
	if err != nil || res.Outcome != provisioner.OutcomeCreated || res.User.Username != "bobby" {
		t.Fatalf("choosing a free name = %+v, %v; want created as bobby", res, err)
	}
	if !slices.Equal(res.User.Consents["corp"].Attributes, consent) {
		t.Errorf("consent = %v, want %v", res.User.Consents["corp"], consent)
	}
	// Later logins do not ask again, whatever name is posted.
	if res, err := choose("carol", nil); err != nil || res.Outcome != provisioner.OutcomeUpdated || res.User.Username != "bobby" {
		t.Errorf("second login = %+v, %v; want bobby, updated", res, err)
	}
}

func TestUsernameTemplates(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	pol := policy(t, provisioner.Policy{UsernameTemplates: []provisioner.Expr{
		mustExpr(t, "{claims.employee_id}"),
		mustExpr(t, "{profile.preferred_username}"),
	}})
	c := bobClaims()
	c.Raw = []byte(`{"employee_id":"E-42"}`)
	if res, err := p.Provision(t.Context(), req(pol, c)); err != nil || res.User.Username != "e-42" {
		t.Fatalf("template username = %+v, %v; want e-42", res, err)
	}
	// A reserved candidate is skipped for the next one.
	c = bobClaims()
	c.Subject, c.Email, c.PreferredUsername = "sub-root", "", "bob2"
	c.Raw = []byte(`{"employee_id":"Root"}`)
	if res, err := p.Provision(t.Context(), req(pol, c)); err != nil || res.User.Username != "bob2" {
		t.Fatalf("reserved candidate: %+v, %v; want bob2", res, err)
	}
	// JIT off still names the session by the templates, qualified by
	// the connection; a qualified name is never a reserved one, so the
	// first template's value is used, byte for byte.
	off := *pol
	off.Enabled = false
	c.Subject = "sub-off"
	if res, err := p.Provision(t.Context(), req(&off, c)); err != nil || res.Username != "corp:Root" || res.User != nil {
		t.Fatalf("JIT off: %+v, %v", res, err)
	}
}

func TestLinkVerifiedEmail(t *testing.T) {
	link := provisioner.Policy{Link: provisioner.LinkVerifiedEmail}
	local := func(verified bool) provisioner.Claims {
		return provisioner.Claims{Issuer: "https://old.example.com", Subject: "sub-old", Email: "Bob@Example.com", EmailVerified: verified, EmailVerifiedKnown: true, PreferredUsername: "bob-old"}
	}
	newIdent := func(mod func(*provisioner.Claims)) provisioner.Claims {
		c := bobClaims()
		c.Issuer, c.Subject = "https://new.example.com", "sub-new"
		c.PreferredUsername = "bob-new"
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name          string
		pol           provisioner.Policy
		localVerified bool
		claims        provisioner.Claims
		want          provisioner.Outcome
		wantErr       error
	}{
		{"both verified", link, true, newIdent(nil), provisioner.OutcomeLinked, nil},
		{"provider unverified", link, true, newIdent(func(c *provisioner.Claims) { c.EmailVerified = false }), "", provisioner.ErrEmailConflict},
		{"provider silent", link, true, newIdent(func(c *provisioner.Claims) { c.EmailVerified, c.EmailVerifiedKnown = false, false }), "", provisioner.ErrEmailConflict},
		{"provider silent, trust_email", provisioner.Policy{Link: provisioner.LinkVerifiedEmail, TrustEmail: true}, true,
			newIdent(func(c *provisioner.Claims) { c.EmailVerified, c.EmailVerifiedKnown = false, false }), provisioner.OutcomeLinked, nil},
		{"provider says false, trust_email", provisioner.Policy{Link: provisioner.LinkVerifiedEmail, TrustEmail: true}, true,
			newIdent(func(c *provisioner.Claims) { c.EmailVerified = false }), "", provisioner.ErrEmailConflict},
		{"local unverified: a separate user", link, false, newIdent(nil), provisioner.OutcomeCreated, nil},
		{"link off", provisioner.Policy{}, true, newIdent(nil), "", provisioner.ErrEmailConflict},
		{"different email", link, true, newIdent(func(c *provisioner.Claims) { c.Email = "other@example.com" }), provisioner.OutcomeCreated, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := &provisioner.Provisioner{Store: s}
			ctx := t.Context()
			first, err := p.Provision(ctx, req(policy(t, provisioner.Policy{}), local(tt.localVerified)))
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Provision(ctx, req(policy(t, tt.pol), tt.claims))
			if !errors.Is(err, tt.wantErr) || res.Outcome != tt.want {
				t.Fatalf("Provision = %s, %v; want %s, %v", res.Outcome, err, tt.want, tt.wantErr)
			}
			ids, _ := s.Identities(ctx, first.User.ID)
			switch tt.want {
			case provisioner.OutcomeLinked:
				if res.User.ID != first.User.ID || len(ids) != 2 {
					t.Errorf("linked to %s with %d identities, want %s with 2", res.User.ID, len(ids), first.User.ID)
				}
			default:
				if len(ids) != 1 {
					t.Errorf("existing user has %d identities, want 1: nothing may merge", len(ids))
				}
				if tt.wantErr != nil && (userCount(t, s) != 1 || identityStored(t, s, tt.claims)) {
					t.Errorf("refused link stored something")
				}
			}
		})
	}

	t.Run("ambiguous", func(t *testing.T) {
		s := newStore(t)
		p := &provisioner.Provisioner{Store: s}
		for i, c := range []provisioner.Claims{local(true), local(true)} {
			c.Subject = c.Subject + string(rune('a'+i))
			c.PreferredUsername += string(rune('a' + i))
			if _, err := s.CreateUser(t.Context(), &provisioner.User{Username: c.PreferredUsername, Email: c.Email, EmailVerified: true},
				provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "old", Issuer: c.Issuer, Subject: c.Subject}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Provision(t.Context(), req(policy(t, link), newIdent(nil))); !errors.Is(err, provisioner.ErrEmailConflict) {
			t.Errorf("two verified local users with the email: err = %v, want ErrEmailConflict", err)
		}
	})
	t.Run("disabled target", func(t *testing.T) {
		s := newStore(t)
		p := &provisioner.Provisioner{Store: s}
		first, err := p.Provision(t.Context(), req(policy(t, provisioner.Policy{}), local(true)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetStatus(t.Context(), first.User.ID, provisioner.StatusDisabled, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Provision(t.Context(), req(policy(t, link), newIdent(nil))); !errors.Is(err, provisioner.ErrUserDisabled) {
			t.Errorf("link to a disabled user: err = %v, want ErrUserDisabled", err)
		}
	})
	t.Run("consent before linking", func(t *testing.T) {
		s := newStore(t)
		p := &provisioner.Provisioner{Store: s}
		first, err := p.Provision(t.Context(), req(policy(t, provisioner.Policy{}), local(true)))
		if err != nil {
			t.Fatal(err)
		}
		pol := policy(t, provisioner.Policy{Link: provisioner.LinkVerifiedEmail, Mode: provisioner.ModeConsent, Sync: provisioner.SyncFirstLogin})
		res, err := p.Provision(t.Context(), req(pol, newIdent(nil)))
		if err != nil || res.Outcome != provisioner.OutcomeNeedsConsent {
			t.Fatalf("link in consent mode = %s, %v; want needs consent", res.Outcome, err)
		}
		if ids, _ := s.Identities(t.Context(), first.User.ID); len(ids) != 1 {
			t.Fatalf("linked before consent")
		}
		r := req(pol, newIdent(nil))
		r.Consented = res.Consent
		if r.Consented == nil {
			r.Consented = []string{}
		}
		res, err = p.Provision(t.Context(), r)
		if err != nil || res.Outcome != provisioner.OutcomeLinked || res.User.ID != first.User.ID {
			t.Fatalf("link after consent = %+v, %v", res, err)
		}
	})
}

func TestSyncModes(t *testing.T) {
	type want struct{ name, givenName, dept, email string }
	tests := []struct {
		sync provisioner.Sync
		// after the second login, with a local edit of name and dept in between
		want want
	}{
		{provisioner.SyncOverride, want{"Robert", "Rob", "sales", "robert@example.com"}},
		{provisioner.SyncPreserveLocal, want{"Local Name", "Rob", "local-dept", "robert@example.com"}},
		{provisioner.SyncFirstLogin, want{"Local Name", "Bobby", "local-dept", "bob@example.com"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.sync), func(t *testing.T) {
			s := newStore(t)
			clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			p := &provisioner.Provisioner{Store: s, Now: clk.Now}
			ctx := t.Context()
			pol := policy(t, provisioner.Policy{
				Sync: tt.sync,
				Map:  map[string]provisioner.Expr{"department": mustExpr(t, "{claims.org.dept}")},
			})
			c := bobClaims()
			c.GivenName = "Bobby"
			c.Raw = []byte(`{"org":{"dept":"eng"},"v":1}`)
			first, err := p.Provision(ctx, req(pol, c))
			if err != nil || first.User.Attributes["department"] != "eng" {
				t.Fatalf("first login = %+v, %v", first, err)
			}
			if _, err := provisioner.SetLocalAttributes(ctx, s, first.User.ID, map[string]string{"name": "Local Name", "department": "local-dept"}); err != nil {
				t.Fatal(err)
			}
			clk.t = clk.t.Add(time.Hour)
			c.Name, c.GivenName, c.Email = "Robert", "Rob", "robert@example.com"
			c.Raw = []byte(`{"org":{"dept":"sales"},"v":2}`)
			second, err := p.Provision(ctx, req(pol, c))
			if err != nil || second.Outcome != provisioner.OutcomeUpdated {
				t.Fatalf("second login = %+v, %v", second, err)
			}
			u := mustUser(t, s, first.User.ID)
			got := want{u.Name, u.GivenName, u.Attributes["department"], u.Email}
			if got != tt.want {
				t.Errorf("after second login: %+v, want %+v", got, tt.want)
			}
			// Whatever the sync mode, the login itself is recorded.
			ids, _ := s.Identities(ctx, u.ID)
			if !u.LastLoginAt.Equal(clk.t) || len(ids) != 1 || !strings.Contains(string(ids[0].RawClaims), `"v":2`) {
				t.Errorf("last login %v / raw claims %s not refreshed", u.LastLoginAt, ids[0].RawClaims)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	ctx := t.Context()
	corp := policy(t, provisioner.Policy{Roles: []provisioner.RoleRule{
		{Role: "admin", FromGroups: []string{"corp-admins", "root-admins"}},
		{Role: "editor", FromGroups: []string{"writers"}},
		{Role: "member"},
	}})
	other := policy(t, provisioner.Policy{Link: provisioner.LinkVerifiedEmail, Roles: []provisioner.RoleRule{{Role: "partner"}}})

	c := bobClaims()
	c.Groups = []string{"corp-admins", "writers"}
	res, err := p.Provision(ctx, req(corp, c))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.User.Roles(); !slices.Equal(got, []string{"admin", "editor", "member"}) {
		t.Fatalf("roles = %v", got)
	}
	if _, err := provisioner.GrantLocalRoles(ctx, s, res.User.ID, "auditor", "editor"); err != nil {
		t.Fatal(err)
	}
	oc := bobClaims()
	oc.Issuer, oc.Subject = "https://partner.example.com", "p-1"
	if res, err := p.Provision(ctx, provisioner.Request{Connection: "partner", Policy: other, Claims: oc}); err != nil || res.Outcome != provisioner.OutcomeLinked {
		t.Fatalf("partner login = %+v, %v; want linked", res, err)
	}

	// The provider stops sending both groups: corp's admin and editor
	// grants go; member (fixed), the local grants and partner's stay.
	c.Groups = []string{}
	res, err = p.Provision(ctx, req(corp, c))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustUser(t, s, res.User.ID).Roles(); !slices.Equal(got, []string{"auditor", "editor", "member", "partner"}) {
		t.Errorf("roles after groups removed = %v, want auditor editor member partner", got)
	}
	if !slices.Contains(res.Changed, "roles") || !slices.Contains(res.Changed, "groups") {
		t.Errorf("Changed = %v, want groups and roles", res.Changed)
	}
	// Even first_login sync keeps roles in step with groups.
	fl := policy(t, provisioner.Policy{Sync: provisioner.SyncFirstLogin, Roles: corp.Roles})
	c.Groups = []string{"root-admins"}
	if res, err := p.Provision(ctx, req(fl, c)); err != nil || !slices.Contains(res.User.Roles(), "admin") || len(res.User.Groups) != 0 {
		t.Errorf("first_login: roles %v groups %v; want admin granted, groups untouched", res.User.Roles(), res.User.Groups)
	}
}

func TestMapping(t *testing.T) {
	pol := policy(t, provisioner.Policy{Map: map[string]provisioner.Expr{
		"name":           mustExpr(t, "{claims.given_name} {claims.family_name}"),
		"groups":         mustExpr(t, "{claims.https://example.com/roles}"),
		"email":          mustExpr(t, "{claims.emails.0}"),
		"email_verified": mustExpr(t, "{claims.verified}"),
		"office":         mustExpr(t, "{claims.org.site.city} ({connection})"),
		"empty":          mustExpr(t, "{claims.nope.nothing}"),
	}})
	c := provisioner.Claims{Subject: "s", Email: "ignored@example.com", Raw: []byte(`{
		"given_name":"Ada","family_name":"Lovelace","emails":["ada@example.com","x@y"],
		"verified":true,"https://example.com/roles":["b","a","a",7],
		"org":{"site":{"city":"London"}}}`)}
	pr := pol.MapProfile("corp", c)
	if pr.Name != "Ada Lovelace" || pr.Email != "ada@example.com" || !pr.EmailVerified ||
		!slices.Equal(pr.Groups, []string{"7", "a", "b"}) || pr.Attributes["office"] != "London (corp)" {
		t.Errorf("MapProfile = %+v", pr)
	}
	if _, ok := pr.Attributes["empty"]; ok {
		t.Errorf("an attribute that maps to nothing was set")
	}
	// email_verified does not survive a mapped email that is empty.
	c.Raw = []byte(`{"verified":true}`)
	if pr := pol.MapProfile("corp", c); pr.EmailVerified || pr.Email != "" {
		t.Errorf("no email but verified: %+v", pr)
	}

	for _, bad := range []provisioner.Policy{
		{Mode: "loud"}, {Link: "email"}, {Sync: "always"},
		{Map: map[string]provisioner.Expr{"Bad-Name": {}}},
		{Map: map[string]provisioner.Expr{"username": {}}},
		{UsernamePattern: "("},
		{Roles: []provisioner.RoleRule{{Role: "a,b"}}},
		{Roles: []provisioner.RoleRule{{Role: "a", FromGroups: []string{" "}}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}

func TestParseExpr(t *testing.T) {
	for _, bad := range []string{"{", "}", "{claims.}", "{claims..a}", "{claims}", "{nope}", "a{b{c}}", "{profile.name}"} {
		if _, err := provisioner.ParseExpr(bad, false); err == nil {
			t.Errorf("ParseExpr(%q) = nil error", bad)
		}
	}
	for _, good := range []string{"", "plain", "{claims.a.b.0}", "x-{subject}-{connection}", "{issuer}"} {
		if _, err := provisioner.ParseExpr(good, false); err != nil {
			t.Errorf("ParseExpr(%q): %v", good, err)
		}
	}
}

func FuzzExpr(f *testing.F) {
	f.Add("{claims.a.b.0}", `{"a":{"b":["x"]}}`)
	f.Add("{claims.https://x/y} {subject}", `{"https://x/y":[1,2]}`)
	f.Add("{profile.email}{verified_email}", `[]`)
	f.Fuzz(func(t *testing.T, expr, raw string) {
		e, err := provisioner.ParseExpr(expr, true)
		if err != nil {
			return
		}
		if e.String() != expr {
			t.Errorf("String() = %q, want %q", e.String(), expr)
		}
		pol := provisioner.Policy{Map: map[string]provisioner.Expr{"custom": e, "groups": e}, UsernameTemplates: []provisioner.Expr{e}}
		c := provisioner.Claims{Subject: "s", Raw: []byte(raw)}
		pr := pol.MapProfile("corp", c)
		_ = pol.Username("corp", c, pr)
	})
}

// TestModeLinkSyncCombinations walks every mode × link × sync through the
// cases where the combination changes the outcome: a new identity whose
// verified email is an existing user's (link or refuse, ask or not, and
// what the link writes), and a brand-new user followed by a later login
// with changed claims.
func TestModeLinkSyncCombinations(t *testing.T) {
	modes := []provisioner.Mode{provisioner.ModeSilent, provisioner.ModeConsent, provisioner.ModeUsername}
	links := []provisioner.Link{provisioner.LinkOff, provisioner.LinkVerifiedEmail}
	syncs := []provisioner.Sync{provisioner.SyncOverride, provisioner.SyncPreserveLocal, provisioner.SyncFirstLogin}
	// What name and given name the user has after the provider said
	// "IdP Bob"/"Bobby" to a user with a locally owned name "Local Bob"
	// and given name "Robert".
	wantAfter := map[provisioner.Sync][2]string{
		provisioner.SyncOverride:      {"IdP Bob", "Bobby"},
		provisioner.SyncPreserveLocal: {"Local Bob", "Bobby"},
		provisioner.SyncFirstLogin:    {"Local Bob", "Robert"},
	}
	for _, mode := range modes {
		for _, link := range links {
			for _, sync := range syncs {
				t.Run(string(mode)+"/"+string(link)+"/"+string(sync), func(t *testing.T) {
					s := newStore(t)
					p := &provisioner.Provisioner{Store: s}
					ctx := t.Context()
					pol := policy(t, provisioner.Policy{Mode: mode, Link: link, Sync: sync})

					// An existing user with a verified email and a local edit.
					local, err := s.CreateUser(ctx, &provisioner.User{Username: "bob", Email: "bob@example.com", EmailVerified: true, Name: "Old", GivenName: "Robert"},
						provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "legacy", Issuer: "legacy", Subject: "bob"}})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := provisioner.SetLocalAttributes(ctx, s, local.ID, map[string]string{"name": "Local Bob"}); err != nil {
						t.Fatal(err)
					}
					c := bobClaims()
					c.Name, c.GivenName = "IdP Bob", "Bobby"

					res, err := p.Provision(ctx, req(pol, c))
					if link == provisioner.LinkOff {
						if !errors.Is(err, provisioner.ErrEmailConflict) {
							t.Fatalf("link off: %s, %v; want ErrEmailConflict", res.Outcome, err)
						}
						if ids, _ := s.Identities(ctx, local.ID); len(ids) != 1 || userCount(t, s) != 1 {
							t.Fatal("a refused identity was stored")
						}
						return
					}
					if mode != provisioner.ModeSilent {
						if err != nil || res.Outcome != provisioner.OutcomeNeedsConsent {
							t.Fatalf("link in mode %s: %s, %v; want needs consent (a link never asks for a username)", mode, res.Outcome, err)
						}
						if ids, _ := s.Identities(ctx, local.ID); len(ids) != 1 {
							t.Fatal("linked before consent")
						}
						r := req(pol, c)
						r.Consented = append([]string{}, res.Consent...)
						res, err = p.Provision(ctx, r)
					}
					if err != nil || res.Outcome != provisioner.OutcomeLinked || res.User.ID != local.ID || res.User.Username != "bob" {
						t.Fatalf("link: %+v, %v", res, err)
					}
					u := mustUser(t, s, local.ID)
					if got := [2]string{u.Name, u.GivenName}; got != wantAfter[sync] {
						t.Errorf("after linking: name, given name = %q, want %q", got, wantAfter[sync])
					}

					// A brand-new user, then a later login with a new name.
					n := c
					n.Subject, n.Email, n.PreferredUsername = "sub-new", "new@example.com", "newbie"
					n.Raw = []byte(`{"sub":"sub-new","email":"new@example.com"}`)
					res, err = p.Provision(ctx, req(pol, n))
					switch mode {
					case provisioner.ModeSilent:
					case provisioner.ModeConsent:
						if res.Outcome != provisioner.OutcomeNeedsConsent {
							t.Fatalf("new user in consent mode: %s, %v", res.Outcome, err)
						}
						r := req(pol, n)
						r.Consented = res.Consent
						res, err = p.Provision(ctx, r)
					case provisioner.ModeUsername:
						if res.Outcome != provisioner.OutcomeNeedsUsername || res.Username != "new" {
							t.Fatalf("new user in username mode: %s %q, %v", res.Outcome, res.Username, err)
						}
						r := req(pol, n)
						r.Consented, r.Username = res.Consent, "newbie"
						res, err = p.Provision(ctx, r)
					}
					if err != nil || res.Outcome != provisioner.OutcomeCreated || res.User.Name != "IdP Bob" {
						t.Fatalf("new user: %+v, %v", res, err)
					}
					created := res.User
					n.Name = "Renamed"
					res, err = p.Provision(ctx, req(pol, n))
					if err != nil || res.Outcome != provisioner.OutcomeUpdated {
						t.Fatalf("later login: %s, %v; want updated without asking", res.Outcome, err)
					}
					want := "Renamed"
					if sync == provisioner.SyncFirstLogin {
						want = "IdP Bob"
					}
					if got := mustUser(t, s, created.ID).Name; got != want {
						t.Errorf("later login: name %q, want %q", got, want)
					}
				})
			}
		}
	}
}

func TestSuggestUsername(t *testing.T) {
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername})
	for _, tt := range []struct {
		email, preferred, want string
	}{
		{"Bob.Smith@example.com", "bobby", "bob.smith"}, // the template gives the email, which does not fit; its local part does
		{"", "Bobby", "bobby"},                          // the template's preferred username fits
		{"x+y@example.com", "robert", "robert"},         // '+' does not fit the pattern
		{"", "Admin", "corp-s"},                         // reserved: the template falls back to connection-subject
		{"", "", "corp-s"},
	} {
		c := provisioner.Claims{Subject: "s", Email: tt.email, EmailVerified: true, PreferredUsername: tt.preferred}
		got := pol.SuggestUsername("corp", c, pol.MapProfile("corp", c))
		if got != tt.want {
			t.Errorf("SuggestUsername(%q, %q) = %q, want %q", tt.email, tt.preferred, got, tt.want)
		}
	}
}

func TestSuggestUsernameNoneFits(t *testing.T) {
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername, UsernameTemplates: []provisioner.Expr{mustExpr(t, "{claims.nope}")}})
	c := provisioner.Claims{Subject: "s", Email: "+@example.com", EmailVerified: true, PreferredUsername: "root"}
	if got := pol.SuggestUsername("corp", c, pol.MapProfile("corp", c)); got != "" {
		t.Errorf("SuggestUsername = %q, want none", got)
	}
}

// An administrator's new email is unverified unless the change says it
// is verified, so it cannot become a link target by accident.
func TestLocalEmailChangeUnverifies(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "bob", Email: "bob@example.com", EmailVerified: true},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := provisioner.SetLocalAttributes(ctx, s, u.ID, map[string]string{"email": "boss@example.com"})
	if err != nil || got.EmailVerified {
		t.Fatalf("after a local email change: verified %v, %v; want unverified", got.EmailVerified, err)
	}
	got, err = provisioner.SetLocalAttributes(ctx, s, u.ID, map[string]string{"email": "bob@example.com", "email_verified": "true"})
	if err != nil || !got.EmailVerified || !slices.Equal(got.LocalAttributes, []string{"email", "email_verified"}) {
		t.Fatalf("a change that says verified: %+v, %v", got, err)
	}
	if got, _ := provisioner.SetLocalAttributes(ctx, s, u.ID, map[string]string{"email": "BOB@example.com"}); !got.EmailVerified {
		t.Error("a change of case only unverified the email")
	}
}

// S12: an administrator's value a store cannot keep (a NUL, which
// PostgreSQL's text refuses, or invalid UTF-8) is refused as an invalid
// change on every store, and nothing of the change is written; so is a
// status reason with a NUL.
func TestLocalChangeRefusesUnstorableValues(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "bob", Name: "Bob"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []map[string]string{
		{"name": "Bob\x00by"},
		{"name": "Bobby", "department": "a\x00b"},
		{"department": "\xff"},
		{"name": strings.Repeat("B", 4097)}, // over the bound
	} {
		if _, err := provisioner.SetLocalAttributes(ctx, s, u.ID, set); !errors.Is(err, provisioner.ErrInvalidChange) {
			t.Errorf("SetLocalAttributes(%q): %v; want ErrInvalidChange", set, err)
		}
	}
	if got, err := s.User(ctx, u.ID); err != nil || got.Name != "Bob" || len(got.Attributes) != 0 || len(got.LocalAttributes) != 0 {
		t.Errorf("after the refused changes: %+v, %v; want nothing written", got, err)
	}
	if err := provisioner.CheckStatusChange(provisioner.StatusDisabled, "left\x00"); err == nil {
		t.Error("CheckStatusChange took a reason with a NUL")
	}
}

// A chosen name of the {connection}-{subject} fallback's shape, for any
// connection sharing the store, is refused: it is kept for the identity
// whose subject it names.
func TestChosenNameCannotTakeAFallbackName(t *testing.T) {
	custom := &provisioner.Policy{Enabled: true, UsernameTemplates: mustParseTemplates(t, "{profile.preferred_username}", "{connection}_{subject}")}
	p := &provisioner.Policy{Enabled: true}
	p.FallbackPrefixes = append(p.OwnFallbackPrefixes("corp"), custom.OwnFallbackPrefixes("partner")...)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"corp-", "partner_"}; !slices.Equal(p.FallbackPrefixes, want) {
		t.Fatalf("prefixes %q, want %q", p.FallbackPrefixes, want)
	}
	for _, name := range []string{"corp-victim-sub", "partner_4242"} {
		if _, err := p.CheckChosenUsername(name, provisioner.Profile{}); !errors.Is(err, provisioner.ErrUsernameInvalid) {
			t.Errorf("%s: %v, want provisioner.ErrUsernameInvalid", name, err)
		}
	}
	for _, name := range []string{"corporate", "corp.smith", "partner-x"} {
		if _, err := p.CheckChosenUsername(name, provisioner.Profile{}); err != nil {
			t.Errorf("%s: %v, want it accepted", name, err)
		}
	}
}

func mustParseTemplates(t *testing.T, srcs ...string) []provisioner.Expr {
	t.Helper()
	var out []provisioner.Expr
	for _, src := range srcs {
		e, err := provisioner.ParseExpr(src, true)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// A template over a claim users set whose every name begins as a kept
// prefix never gives one: loading warns of it.
func TestShadowedTemplatesAreFound(t *testing.T) {
	p := &provisioner.Policy{Enabled: true, UsernameTemplates: mustParseTemplates(t,
		"{connection}-{profile.preferred_username}", "{profile.preferred_username}", "x{profile.name}", "{connection}-{subject}")}
	p.FallbackPrefixes = p.OwnFallbackPrefixes("corp")
	if got, want := p.ShadowedTemplates("corp"), []string{"{connection}-{profile.preferred_username}"}; !slices.Equal(got, want) {
		t.Errorf("shadowed %q, want %q", got, want)
	}
}
