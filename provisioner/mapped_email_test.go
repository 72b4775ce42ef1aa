package provisioner_test

import (
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// `map email {claims.mail}` (Entra ID's mail or upn, a directory
// attribute) takes the address from another claim; the provider's
// email_verified was said of its own `email` claim, not of this one, so
// the mapped address is unverified (unless it is the same address, or
// email_verified is mapped too). Were the flag kept, it would vouch for
// an address nobody verified: the JIT-off name, `allow email_domain`,
// and with link verified_email the account that owns that address (S8,
// S15).
func TestMappedEmailIsNotVouchedForByTheProvidersFlag(t *testing.T) {
	pol := policy(t, provisioner.Policy{
		Link: provisioner.LinkVerifiedEmail,
		Map:  map[string]provisioner.Expr{"email": mustExpr(t, "{claims.mail}")},
	})
	// Mallory's verified address is her own; the attribute she can edit
	// at the provider (or that an admin there mistyped) says ceo@.
	mallory := provisioner.Claims{Issuer: "i", Subject: "mallory-sub",
		Email: "mallory@example.net", EmailVerified: true, EmailVerifiedKnown: true,
		Raw: []byte(`{"email":"mallory@example.net","email_verified":true,"mail":"ceo@example.com"}`)}
	pr := pol.MapProfile("corp", mallory)
	if pr.Email == "ceo@example.com" && pr.EmailVerified {
		t.Errorf("profile: email %q marked verified, but the provider verified %q", pr.Email, mallory.Email)
	}

	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	// The CEO signed in earlier through another connection, verified.
	ceo, err := s.CreateUser(t.Context(), &provisioner.User{Username: "ceo@example.com", Email: "ceo@example.com", EmailVerified: true},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "google", Issuer: "g", Subject: "ceo"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Provision(t.Context(), req(pol, mallory))
	if err == nil && res.User != nil && res.User.ID == ceo.ID {
		t.Errorf("Mallory's identity was linked to the CEO's account (%s): outcome %s", ceo.Username, res.Outcome)
	}
}

func TestMappedEmailKeepsTheFlagForTheSameAddress(t *testing.T) {
	c := provisioner.Claims{Issuer: "i", Subject: "s", Email: "Ann@Example.com", EmailVerified: true, EmailVerifiedKnown: true,
		Raw: []byte(`{"email":"Ann@Example.com","email_verified":true,"mail":"ann@example.com","mail_ok":"true"}`)}
	same := policy(t, provisioner.Policy{Map: map[string]provisioner.Expr{"email": mustExpr(t, "{claims.mail}")}})
	if pr := same.MapProfile("corp", c); !pr.EmailVerified {
		t.Errorf("the provider's own address, mapped (ASCII case aside): unverified, want verified")
	}
	both := policy(t, provisioner.Policy{Map: map[string]provisioner.Expr{
		"email": mustExpr(t, "{claims.mail}"), "email_verified": mustExpr(t, "{claims.mail_ok}")}})
	c.Raw = []byte(`{"email":"x@example.net","email_verified":true,"mail":"ann@example.com","mail_ok":"true"}`)
	if pr := both.MapProfile("corp", c); !pr.EmailVerified {
		t.Errorf("email and email_verified both mapped: unverified, want the mapped flag")
	}
}
