package storetest

import (
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// RunAdmin runs the part of the suite for provisioner.AdminStore, on a
// store that also keeps the users.
func RunAdmin(t *testing.T, newStore func(t *testing.T) UserAndAdmin) {
	runCases(t, newStore, []testCase[UserAndAdmin]{
		{"SetStatus", testSetStatus},
		{"DeleteUser", testDeleteUser},
		{"AdminNotFound", testAdminNotFound},
		{"DeleteUnlinksIdentities", testDeleteUnlinksIdentities},
	})
}

func testSetStatus(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusDisabled); err != nil {
		t.Fatalf("SetStatus(disabled): %v", err)
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusDisabled {
		t.Errorf("Status = %q, want disabled", got.Status)
	}
	if got, err := s.UserByIdentity(ctx, key("sub-1")); err != nil || got.Status != provisioner.StatusDisabled {
		t.Errorf("UserByIdentity = %+v, %v; want disabled", got, err)
	}
	if got := mustUser(t, s, other.ID); got.Status != provisioner.StatusActive {
		t.Errorf("other user's Status = %q, want active", got.Status)
	}
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusActive); err != nil {
		t.Fatalf("SetStatus(active): %v", err)
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusActive {
		t.Errorf("Status = %q, want active", got.Status)
	}
	if err := s.SetStatus(ctx, u.ID, provisioner.Status("bogus")); err == nil {
		t.Error("SetStatus(bogus) succeeded")
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusActive {
		t.Errorf("after bogus SetStatus: Status = %q, want active", got.Status)
	}
}

func testDeleteUser(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.User(ctx, u.ID)
	wantErr(t, "User(deleted)", err, provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, key("sub-1"))
	wantErr(t, "UserByIdentity(deleted)", err, provisioner.ErrNotFound)
	_, err = s.UserByUsername(ctx, "alice")
	wantErr(t, "UserByUsername(deleted)", err, provisioner.ErrNotFound)
	_, err = s.RecordLogin(ctx, key("sub-1"), nil, base, nil)
	wantErr(t, "RecordLogin(deleted)", err, provisioner.ErrNotFound)
	if ids, err := s.Identities(ctx, u.ID); err != nil || len(ids) != 0 {
		t.Errorf("Identities(deleted) = %v, %v; want none", ids, err)
	}
	err = s.DeleteUser(ctx, u.ID)
	wantErr(t, "DeleteUser(again)", err, provisioner.ErrNotFound)

	// The other user is untouched.
	if got, err := s.UserByIdentity(ctx, key("sub-2")); err != nil || got.ID != other.ID {
		t.Errorf("other user = %v, %v; want %s", got, err, other.ID)
	}
	// The identity and username are free again.
	again, err := s.CreateUser(ctx, newUser("alice"), newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("re-creating deleted user: %v", err)
	}
	if again.ID == u.ID {
		t.Errorf("re-created user reuses ID %s", u.ID)
	}
}

func testAdminNotFound(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-1")
	err := s.SetStatus(ctx, "00000000-0000-4000-8000-000000000000", provisioner.StatusDisabled)
	wantErr(t, "SetStatus", err, provisioner.ErrNotFound)
	err = s.DeleteUser(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "DeleteUser", err, provisioner.ErrNotFound)
}

func testDeleteUnlinksIdentities(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	second := newIdentity("sub-gh")
	second.Connection = "github"
	if _, err := s.LinkIdentity(ctx, u.ID, second, nil); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	// Deleting the user removes every linked identity.
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.UserByIdentity(ctx, second.IdentityKey)
	wantErr(t, "UserByIdentity(linked, after delete)", err, provisioner.ErrNotFound)
}
