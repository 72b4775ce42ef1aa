package caddymodule_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// An administrator marks a user's email verified locally (the provider
// says nothing either way, as Entra ID does). With sync preserve_local
// that mark vouches for the address it was given for, not for whatever
// address the provider sends later: the user changes their email at the
// provider to another person's, unverified, and must not be admitted by
// `allow email` for that person, nor kept as its verified owner.
func TestPreserveLocalVerifiedMarkDoesNotVouchForANewAddress(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "sync preserve_local", handlerBlock: "\t\tallow email boss@example.com"})
	st := openStore(t, s.dir)
	mallory := func(email string) *oidcUser {
		return &oidcUser{sub: "mallory-sub", claims: map[string]any{"email": email, "name": "Mallory", "preferred_username": "mallory"}}
	}
	s.queue(mallory("mallory@example.com"))
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("first login: %d, want 403 (not boss@example.com)", resp.StatusCode)
	}
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("users after the first login: %+v", users)
	}
	if _, err := provisioner.SetLocalAttributes(context.Background(), st, users[0].ID, map[string]string{"email_verified": "true"}); err != nil {
		t.Fatal(err)
	}

	s.queue(mallory("boss@example.com"))
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with another person's unverified address: %d, want 403", resp.StatusCode)
	}
	got, err := st.User(context.Background(), users[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email == "boss@example.com" && got.EmailVerified {
		t.Errorf("the local mark made the provider's unverified new address verified: %+v", got)
	}
}
