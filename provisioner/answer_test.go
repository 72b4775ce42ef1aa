package provisioner_test

import (
	"errors"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// An answer on the consent or username page: a decline stores nothing,
// username problems are outcomes to ask again with (storing nothing),
// and an allow with a usable name provisions with the consent given.
func TestAnswerRules(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	ctx := t.Context()
	pol := policy(t, provisioner.Policy{Mode: provisioner.ModeUsername, Reserved: []string{"boss"}})
	if _, err := p.Provision(ctx, req(policy(t, provisioner.Policy{}), provisioner.Claims{Issuer: "https://idp.example.com", Subject: "sub-carol", PreferredUsername: "carol"})); err != nil {
		t.Fatal(err)
	}
	paused, err := p.Provision(ctx, req(pol, bobClaims()))
	if err != nil || paused.Outcome != provisioner.OutcomeNeedsUsername {
		t.Fatalf("first login: %+v %v", paused.Outcome, err)
	}
	r := req(pol, bobClaims())
	r.Consented = paused.Consent
	answer := func(a provisioner.Answer) (provisioner.AnswerOutcome, provisioner.Result, error) {
		t.Helper()
		a.Asked = provisioner.OutcomeNeedsUsername
		return p.Answer(ctx, r, a)
	}
	for _, tc := range []struct {
		a    provisioner.Answer
		want provisioner.AnswerOutcome
	}{
		{provisioner.Answer{Allow: false, Username: "bobby"}, provisioner.AnswerDeclined},
		{provisioner.Answer{Allow: true}, provisioner.AnswerNeedsUsername},
		{provisioner.Answer{Allow: true, Username: "Carol"}, provisioner.AnswerUsernameTaken},
		{provisioner.Answer{Allow: true, Username: "boss"}, provisioner.AnswerUsernameRefused},
	} {
		out, res, err := answer(tc.a)
		if out != tc.want || res.User != nil {
			t.Errorf("%+v: %v (user %v, %v), want %v and no user", tc.a, out, res.User, err, tc.want)
		}
		if tc.want == provisioner.AnswerUsernameRefused && !errors.Is(err, provisioner.ErrUsernameInvalid) {
			t.Errorf("a refused username's error %v does not say why", err)
		}
	}
	if _, err := s.UserByUsername(ctx, "bobby"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("an answer that was not an allow stored a user: %v", err)
	}
	out, res, err := answer(provisioner.Answer{Allow: true, Username: "bobby"})
	if err != nil || out != provisioner.AnswerProvisioned || res.Outcome != provisioner.OutcomeCreated || res.User.Username != "bobby" {
		t.Fatalf("allow with a free name: %v %+v %v", out, res.Outcome, err)
	}
	// Without a username asked, a typed one is ignored.
	r2 := req(policy(t, provisioner.Policy{Mode: provisioner.ModeConsent}), aliceClaims())
	paused, err = p.Provision(ctx, r2)
	if err != nil || paused.Outcome != provisioner.OutcomeNeedsConsent {
		t.Fatalf("consent login: %+v %v", paused.Outcome, err)
	}
	r2.Consented = paused.Consent
	out, res, err = p.Answer(ctx, r2, provisioner.Answer{Allow: true, Asked: provisioner.OutcomeNeedsConsent, Username: "mallory"})
	if err != nil || out != provisioner.AnswerProvisioned || res.User == nil || res.User.Username == "mallory" {
		t.Fatalf("consent allow: %v %+v %v", out, res.User, err)
	}
}
