package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
)

// A deleted user's username is not given to another identity whose
// provider-chosen claim (preferred_username) asks for it: the upstream
// keeps the departed user's data under that name, and Remote-User names
// one person only (S15), also one after the other. Eve falls through to
// the next template, as Mallory does while Alice exists; Alice's own
// identity gets the name back.
func TestDeletedUsernameIsNotGivenToAnotherPerson(t *testing.T) {
	s := startIdentitySite(t)
	st := openStore(t, s.dir)
	if got := loginAs(s, "corp", person("alice-sub", "", false, "alice"), ""); got.user != "alice" {
		t.Fatalf("alice's first login: %d %q\n%s", got.status, got.user, got.body)
	}
	// While Alice exists, Mallory's preferred_username falls through.
	if got := loginAs(s, "corp", person("mallory-sub", "", false, "alice"), ""); got.user != "corp-mallory-sub" {
		t.Fatalf("mallory while alice exists: %d %q; want corp-mallory-sub", got.status, got.user)
	}
	alice, err := st.UserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUser(context.Background(), alice.ID); err != nil {
		t.Fatal(err)
	}
	// Eve, a third person, claims the freed name.
	got := loginAs(s, "corp", person("eve-sub", "", false, "alice"), "")
	if got.status != http.StatusOK {
		t.Fatalf("eve: %d\n%s", got.status, got.body)
	}
	if got.user == "alice" {
		t.Errorf("after alice's deletion, eve (another identity, preferred_username \"alice\") reached the upstream as %q: the departed user's name and data", got.user)
	}
	if got.user != "corp-eve-sub" {
		t.Errorf("eve reached the upstream as %q; want the next template's corp-eve-sub", got.user)
	}
	if got := loginAs(s, "corp", person("alice-sub", "", false, "alice"), ""); got.user != "alice" {
		t.Errorf("alice signing in again: %d %q; want her name back", got.status, got.user)
	}
}
