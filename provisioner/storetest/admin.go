package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

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
		{"SearchUsers", testSearchUsers},
		{"SearchUsersPages", testSearchUsersPages},
		{"CountUsers", testCountUsers},
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

// searchNames runs q and returns the usernames found.
func searchNames(t *testing.T, s UserAndAdmin, q provisioner.UserQuery) []string {
	t.Helper()
	users, err := s.SearchUsers(t.Context(), q)
	if err != nil {
		t.Fatalf("SearchUsers(%+v): %v", q, err)
	}
	names := []string{}
	for _, u := range users {
		names = append(names, u.Username)
	}
	return names
}

// Each filter of SearchUsers alone and together, in username order.
func testSearchUsers(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	carol := mustCreate(t, s, "carol", "sub-c")
	mustCreate(t, s, "alice", "sub-a")
	bob := newUser("bob")
	bob.Name, bob.Email, bob.LastLoginAt = "Robert 100% Sure", "Bob@Corp.Example", base.Add(48*time.Hour)
	gh := newIdentity("sub-b")
	gh.Connection = "github"
	if _, err := s.CreateUser(ctx, bob, gh); err != nil {
		t.Fatal(err)
	}
	dave := newUser("dave_x")
	dave.LastLoginAt = time.Time{}
	if _, err := s.CreateUser(ctx, dave, newIdentity("sub-d")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, carol.ID, provisioner.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, carol.ID, func(u *provisioner.User) error {
		u.RoleGrants = map[string][]string{provisioner.RoleSourceLocal: {"auditor"}, provisioner.ConnectionSource("corp"): {"staff"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    provisioner.UserQuery
		want []string
	}{
		{"all", provisioner.UserQuery{}, []string{"alice", "bob", "carol", "dave_x"}},
		{"username, any case", provisioner.UserQuery{Search: "ARO"}, []string{"carol"}},
		{"email", provisioner.UserQuery{Search: "corp.example"}, []string{"bob"}},
		{"name", provisioner.UserQuery{Search: "robert"}, []string{"bob"}},
		{"LIKE's % is a character", provisioner.UserQuery{Search: "100%"}, []string{"bob"}},
		{"LIKE's _ is a character", provisioner.UserQuery{Search: "e_x"}, []string{"dave_x"}},
		{"_ matches only itself", provisioner.UserQuery{Search: "c_rol"}, []string{}},
		{"connection", provisioner.UserQuery{Connection: "github"}, []string{"bob"}},
		{"status", provisioner.UserQuery{Status: provisioner.StatusDisabled}, []string{"carol"}},
		{"local role", provisioner.UserQuery{Role: "auditor"}, []string{"carol"}},
		{"connection's role", provisioner.UserQuery{Role: "staff"}, []string{"carol"}},
		{"no such role", provisioner.UserQuery{Role: "staf"}, []string{}},
		{"seen after", provisioner.UserQuery{SeenAfter: base.Add(time.Hour)}, []string{"bob"}},
		{"seen before (never counts)", provisioner.UserQuery{SeenBefore: base.Add(time.Hour)}, []string{"alice", "carol", "dave_x"}},
		{"together", provisioner.UserQuery{Search: "a", Connection: "corp", Status: provisioner.StatusActive}, []string{"alice", "dave_x"}},
		{"limit", provisioner.UserQuery{Limit: 2}, []string{"alice", "bob"}},
		{"after", provisioner.UserQuery{After: provisioner.NormalizeUsername("bob")}, []string{"carol", "dave_x"}},
	} {
		if got := searchNames(t, s, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Paging with each page's last username as the next page's After visits
// every user once, in order, however the page size falls.
func testSearchUsersPages(t *testing.T, s UserAndAdmin) {
	var want []string
	for i := range 23 {
		name := fmt.Sprintf("user%02d", i)
		mustCreate(t, s, name, "sub-"+name)
		want = append(want, name)
	}
	for _, size := range []int{1, 5, 23, 100} {
		var got []string
		q := provisioner.UserQuery{Limit: size}
		for pages := 0; pages < 30; pages++ {
			page := searchNames(t, s, q)
			got = append(got, page...)
			if len(page) < size {
				break
			}
			q.After = provisioner.NormalizeUsername(page[len(page)-1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v, want %v", size, got, want)
		}
	}
}

// CountUsers counts by status, and follows status changes and deletes.
func testCountUsers(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	count := func() map[provisioner.Status]int {
		t.Helper()
		c, err := s.CountUsers(ctx)
		if err != nil {
			t.Fatalf("CountUsers: %v", err)
		}
		return c
	}
	if c := count(); c[provisioner.StatusActive]+c[provisioner.StatusDisabled] != 0 {
		t.Errorf("an empty store counts %v", c)
	}
	a := mustCreate(t, s, "alice", "sub-a")
	mustCreate(t, s, "bob", "sub-b")
	c := mustCreate(t, s, "carol", "sub-c")
	if err := s.SetStatus(ctx, a.ID, provisioner.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := count(); got[provisioner.StatusActive] != 1 || got[provisioner.StatusDisabled] != 1 {
		t.Errorf("counts %v, want 1 active and 1 disabled", got)
	}
}
