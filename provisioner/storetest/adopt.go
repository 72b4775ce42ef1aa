package storetest

import (
	"errors"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// UserAndIssuerAdopter is what RunIssuerAdopter tests.
type UserAndIssuerAdopter interface {
	provisioner.UserStore
	provisioner.IssuerAdopter
}

// RunIssuerAdopter runs the part of the suite for
// provisioner.IssuerAdopter: the first call for a connection moves its
// identities to the new issuer, and no later call moves any.
func RunIssuerAdopter(t *testing.T, newStore func(t *testing.T) UserAndIssuerAdopter) {
	runCases(t, newStore, []testCase[UserAndIssuerAdopter]{
		{"AdoptIssuerOnce", testAdoptIssuerOnce},
	})
}

// identityAt is the identity sub of connection at issuer.
func identityAt(connection, issuer, sub string) provisioner.Identity {
	id := newIdentity(sub)
	id.Connection, id.Issuer = connection, issuer
	return id
}

// wantIdentityOf checks that k is u's identity, or no one's for u nil.
func wantIdentityOf(t *testing.T, s provisioner.UserStore, k provisioner.IdentityKey, u *provisioner.User) {
	t.Helper()
	got, err := s.UserByIdentity(t.Context(), k)
	switch {
	case u == nil && !errors.Is(err, provisioner.ErrNotFound):
		t.Errorf("UserByIdentity(%+v) = %v, %v; want ErrNotFound", k, got, err)
	case u != nil && (err != nil || got.ID != u.ID):
		t.Errorf("UserByIdentity(%+v) = %v, %v; want %s", k, got, err, u.Username)
	}
}

func testAdoptIssuerOnce(t *testing.T, s UserAndIssuerAdopter) {
	ctx := t.Context()
	const bare, inst, other = "gitlab", "gitlab|https://git.example.com", "gitlab|https://other.example.com"
	adopt := func(connection, from, to string, want int) {
		t.Helper()
		if n, err := s.AdoptIssuer(ctx, connection, from, to); err != nil || n != want {
			t.Fatalf("AdoptIssuer(%s, %s, %s) = %d, %v; want %d", connection, from, to, n, err, want)
		}
	}
	alice, err := s.CreateUser(ctx, newUser("alice"), identityAt("git", bare, "1"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, newUser("bob"), identityAt("git", bare, "2"))
	if err != nil {
		t.Fatal(err)
	}
	// bob holds subject 2 under the new issuer already: his bare one
	// stays where it is.
	if _, err := s.LinkIdentity(ctx, bob.ID, identityAt("git", inst, "2"), nil); err != nil {
		t.Fatal(err)
	}
	carol, err := s.CreateUser(ctx, newUser("carol"), identityAt("other", bare, "1"))
	if err != nil {
		t.Fatal(err)
	}

	adopt("git", bare, inst, 1)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: inst, Subject: "1"}, alice)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: bare, Subject: "1"}, nil)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: bare, Subject: "2"}, bob)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: inst, Subject: "2"}, bob)
	// Another connection's identities are its own.
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "other", Issuer: bare, Subject: "1"}, carol)

	// Once per connection: a later call, to any issuer, moves nothing.
	if _, err := s.CreateUser(ctx, newUser("dave"), identityAt("git", bare, "3")); err != nil {
		t.Fatal(err)
	}
	adopt("git", bare, other, 0)
	adopt("git", inst, other, 0)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: inst, Subject: "1"}, alice)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "git", Issuer: other, Subject: "3"}, nil)

	// A call with from == to records the connection too (it ran on the
	// provider's own instance): a later one moves nothing.
	adopt("other", bare, bare, 0)
	adopt("other", bare, inst, 0)
	wantIdentityOf(t, s, provisioner.IdentityKey{Connection: "other", Issuer: bare, Subject: "1"}, carol)
}
