package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// UserAdminAndRetirer is what RunUsernameRetirer tests: a store that
// deletes users (AdminStore) and retires their names.
type UserAdminAndRetirer interface {
	provisioner.UserStore
	provisioner.AdminStore
	provisioner.UsernameRetirer
}

// RunUsernameRetirer runs the part of the suite for
// provisioner.UsernameRetirer: a deleted user's username is never
// created again for another identity, through every way of deleting.
func RunUsernameRetirer(t *testing.T, newStore func(t *testing.T) UserAdminAndRetirer) {
	runCases(t, newStore, []testCase[UserAdminAndRetirer]{
		{"DeletedUsernameRetired", testDeletedUsernameRetired},
		{"ConditionalDeleteRetires", testConditionalDeleteRetires},
		{"RetiredUsernameBackToItsIdentities", testRetiredUsernameBack},
		{"EmailUsernameNotRetired", testEmailUsernameNotRetired},
		{"RetireAgainstCreate", testRetireAgainstCreate},
	})
}

// otherIdentity is an identity of someone else than key(sub) with the
// same subject: another connection, another issuer.
func otherIdentity(sub, connection, issuer string) provisioner.Identity {
	id := newIdentity(sub)
	id.Connection, id.Issuer = connection, issuer
	return id
}

// wantRetired checks UsernameRetired(name, k).
func wantRetired(t *testing.T, s provisioner.UsernameRetirer, name string, k provisioner.IdentityKey, want bool) {
	t.Helper()
	got, err := s.UsernameRetired(t.Context(), name, k)
	if err != nil || got != want {
		t.Errorf("UsernameRetired(%q, %+v) = %v, %v; want %v", name, k, got, err, want)
	}
}

func testDeletedUsernameRetired(t *testing.T, s UserAdminAndRetirer) {
	ctx := t.Context()
	wantRetired(t, s, "alice", key("sub-eve"), false)
	alice := mustCreate(t, s, "Alice", "sub-alice")
	// Held, not retired: UserByUsername is the check for that.
	wantRetired(t, s, "alice", key("sub-eve"), false)
	if err := s.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	// Any spelling that normalises alike is the same name.
	for _, name := range []string{"alice", "ALICE", " Alice "} {
		wantRetired(t, s, name, key("sub-eve"), true)
		_, err := s.CreateUser(ctx, newUser(name), newIdentity("sub-eve"))
		wantErr(t, fmt.Sprintf("CreateUser(%q) for another identity", name), err, provisioner.ErrUsernameTaken)
	}
	// The same subject through another connection or issuer is another
	// identity.
	for _, id := range []provisioner.Identity{otherIdentity("sub-alice", "github", key("").Issuer), otherIdentity("sub-alice", "corp", "https://other.example.com")} {
		wantRetired(t, s, "alice", id.IdentityKey, true)
		_, err := s.CreateUser(ctx, newUser("alice"), id)
		wantErr(t, fmt.Sprintf("CreateUser(alice) for %+v", id.IdentityKey), err, provisioner.ErrUsernameTaken)
	}
	if _, err := s.UserByIdentity(ctx, key("sub-eve")); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("a refused CreateUser stored the identity: %v", err)
	}
	// Other names are free, and so is the retired one to Alice.
	mustCreate(t, s, "eve", "sub-eve")
	wantRetired(t, s, "alice", key("sub-alice"), false)
}

// The deprovisioning of inactive users deletes with DeleteUserIf: it
// retires the name as DeleteUser does, and a delete whose condition
// fails retires nothing.
func testConditionalDeleteRetires(t *testing.T, s UserAdminAndRetirer) {
	ctx := t.Context()
	alice := mustCreate(t, s, "alice", "sub-alice")
	err := s.DeleteUserIf(ctx, alice.ID, func(*provisioner.User) bool { return false })
	wantErr(t, "DeleteUserIf(false)", err, provisioner.ErrConditionFailed)
	wantRetired(t, s, "alice", key("sub-eve"), false)
	if err := s.DeleteUserIf(ctx, alice.ID, inactiveSince(base.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	wantRetired(t, s, "alice", key("sub-eve"), true)
	_, err = s.CreateUser(ctx, newUser("alice"), newIdentity("sub-eve"))
	wantErr(t, "CreateUser(alice) for another identity", err, provisioner.ErrUsernameTaken)
	// Deleting a user that is not there retires nothing.
	err = s.DeleteUser(ctx, alice.ID)
	wantErr(t, "DeleteUser(deleted already)", err, provisioner.ErrNotFound)
}

// Every identity the deleted user had may have the name again, as many
// times as it is deleted; the name stays retired for everyone else.
func testRetiredUsernameBack(t *testing.T, s UserAdminAndRetirer) {
	ctx := t.Context()
	alice := mustCreate(t, s, "alice", "sub-alice")
	github := otherIdentity("gh-alice", "github", "https://github.com")
	if _, err := s.LinkIdentity(ctx, alice.ID, github, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateUser(ctx, newUser("alice"), github)
	if err != nil {
		t.Fatalf("the deleted user's linked identity creating its name again: %v", err)
	}
	if err := s.DeleteUser(ctx, again.ID); err != nil {
		t.Fatal(err)
	}
	// The first identity may still have it, after a second deletion.
	third, err := s.CreateUser(ctx, newUser("alice"), newIdentity("sub-alice"))
	if err != nil {
		t.Fatalf("the deleted user's first identity creating its name again: %v", err)
	}
	if err := s.DeleteUser(ctx, third.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateUser(ctx, newUser("alice"), newIdentity("sub-eve"))
	wantErr(t, "CreateUser(alice) for another identity", err, provisioner.ErrUsernameTaken)
	for _, k := range []provisioner.IdentityKey{key("sub-alice"), github.IdentityKey} {
		wantRetired(t, s, "alice", k, false)
	}
}

// A name with '@' is only ever a verified email address, which names
// whoever holds the mailbox: it is not retired.
func testEmailUsernameNotRetired(t *testing.T, s UserAdminAndRetirer) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice@example.com", "sub-alice")
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	wantRetired(t, s, "alice@example.com", key("sub-next"), false)
	mustCreate(t, s, "alice@example.com", "sub-next")
}

// A create of the name at the moment its holder is deleted never gives
// the name to another identity: either the create meets the holder (the
// name is taken) or the retired name (taken too).
func testRetireAgainstCreate(t *testing.T, s UserAdminAndRetirer) {
	ctx := t.Context()
	const rounds, creators = 10, 4
	for r := range rounds {
		name := fmt.Sprintf("alice%02d", r)
		holder := mustCreate(t, s, name, "sub-"+name)
		var wg sync.WaitGroup
		wg.Add(1 + creators)
		go func() {
			defer wg.Done()
			if err := s.DeleteUser(ctx, holder.ID); err != nil {
				t.Errorf("DeleteUser(%s): %v", name, err)
			}
		}()
		for i := range creators {
			go func() {
				defer wg.Done()
				u, err := s.CreateUser(ctx, newUser(name), newIdentity(fmt.Sprintf("sub-%s-other%d", name, i)))
				switch {
				case err == nil:
					t.Errorf("round %d: CreateUser(%s) for another identity succeeded (user %s) while its holder was deleted", r, name, u.ID)
				case !errors.Is(err, provisioner.ErrUsernameTaken):
					t.Errorf("round %d: CreateUser(%s): %v; want ErrUsernameTaken", r, name, err)
				}
			}()
		}
		wg.Wait()
	}
}
