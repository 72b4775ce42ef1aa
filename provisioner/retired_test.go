package provisioner_test

import (
	"errors"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A deleted user's username is not given to another identity, from a
// template over a claim users choose or from a chosen name, in every
// mode; it falls through to the next template, and the deleted user's
// own identity gets it back. S15: Remote-User never names two people,
// also one after the other.
func TestDeletedUsernameIsNotGivenToAnotherPerson(t *testing.T) {
	alice := provisioner.Claims{Issuer: "https://idp.example.com", Subject: "sub-alice", PreferredUsername: "alice"}
	eve := provisioner.Claims{Issuer: "https://idp.example.com", Subject: "sub-eve", PreferredUsername: "alice"}
	for _, mode := range []provisioner.Mode{provisioner.ModeSilent, provisioner.ModeConsent} {
		t.Run(string(mode), func(t *testing.T) {
			s := newStore(t)
			p := &provisioner.Provisioner{Store: s}
			pol := policy(t, provisioner.Policy{Mode: mode})
			login := func(c provisioner.Claims) (provisioner.Result, error) {
				res, err := p.Provision(t.Context(), req(pol, c))
				if err == nil && res.Outcome == provisioner.OutcomeNeedsConsent {
					r := req(pol, c)
					r.Consented = append([]string{}, res.Consent...)
					res, err = p.Provision(t.Context(), r)
				}
				return res, err
			}
			first, err := login(alice)
			if err != nil || first.User.Username != "alice" {
				t.Fatalf("alice's first login: %+v, %v", first, err)
			}
			if err := s.DeleteUser(t.Context(), first.User.ID); err != nil {
				t.Fatal(err)
			}
			if res, err := login(eve); err != nil || res.User.Username != "corp-sub-eve" {
				t.Fatalf("eve after alice's deletion: %+v, %v; want corp-sub-eve", res, err)
			}
			if res, err := login(alice); err != nil || res.User.Username != "alice" {
				t.Fatalf("alice signing in again: %+v, %v; want her name back", res, err)
			}
		})
	}

	// With no other template, consent mode refuses before asking, as it
	// does for a name another user holds: asking would store nothing.
	t.Run("consent, no other name", func(t *testing.T) {
		s := newStore(t)
		p := &provisioner.Provisioner{Store: s}
		pol := policy(t, provisioner.Policy{UsernameTemplates: []provisioner.Expr{mustExpr(t, "{profile.preferred_username}")}})
		first, err := p.Provision(t.Context(), req(pol, alice))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(t.Context(), first.User.ID); err != nil {
			t.Fatal(err)
		}
		pol.Mode = provisioner.ModeConsent
		pol = policy(t, *pol)
		if res, err := p.Provision(t.Context(), req(pol, eve)); !errors.Is(err, provisioner.ErrUsernameConflict) {
			t.Fatalf("eve: %+v, %v; want a conflict before the consent page", res.Outcome, err)
		}
	})

	t.Run("username", func(t *testing.T) {
		s := newStore(t)
		p := &provisioner.Provisioner{Store: s}
		first, err := p.Provision(t.Context(), req(policy(t, provisioner.Policy{}), alice))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(t.Context(), first.User.ID); err != nil {
			t.Fatal(err)
		}
		pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername})
		choose := func(c provisioner.Claims, name string) (provisioner.Result, error) {
			res, err := p.Provision(t.Context(), req(pol, c))
			if err != nil {
				return res, err
			}
			r := req(pol, c)
			r.Username, r.Consented = name, append([]string{}, res.Consent...)
			return p.Provision(t.Context(), r)
		}
		if res, err := choose(eve, "Alice"); !errors.Is(err, provisioner.ErrUsernameTaken) {
			t.Fatalf("eve choosing alice: %+v, %v; want taken", res.Outcome, err)
		}
		if res, err := choose(alice, "alice"); err != nil || res.User.Username != "alice" {
			t.Fatalf("alice choosing her name again: %+v, %v", res, err)
		}
	})
}
