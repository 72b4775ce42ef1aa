package storetest

import (
	"fmt"
	"slices"
	"sync"
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
		{"SearchUsersFoldsNonASCII", testSearchUsersFoldsNonASCII},
		{"SearchUsersNotEnabledSince", testSearchNotEnabledSince},
		{"SetStatusIf", testSetStatusIf},
		{"DeleteUserIf", testDeleteUserIf},
		{"ConditionalDeleteAgainstLogins", testConditionalDeleteAgainstLogins},
		{"CountUsers", testCountUsers},
		{"StatusReason", testStatusReason},
		{"Keep", testKeep},
		{"LoginHistory", testLoginHistory},
		{"LoginHistoryGoesWithTheUser", testLoginHistoryDeleted},
		{"Lease", testLease},
		{"LeaseOneOfMany", testLeaseOneOfMany},
	})
}

func testStatusReason(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	if !u.StatusChangedAt.IsZero() || u.StatusReason != "" {
		t.Errorf("new user: StatusChangedAt = %v, StatusReason = %q; want zero", u.StatusChangedAt, u.StatusReason)
	}
	before := time.Now().Add(-time.Second)
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusDisabled, "left the company"); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	got := mustUser(t, s, u.ID)
	if got.StatusReason != "left the company" || got.StatusChangedAt.Before(before) || got.StatusChangedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("after disabling: StatusReason = %q, StatusChangedAt = %v; want the reason and about now", got.StatusReason, got.StatusChangedAt)
	}
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusActive, ""); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	if got := mustUser(t, s, u.ID); got.StatusReason != "" {
		t.Errorf("after enabling without a reason: StatusReason = %q, want none", got.StatusReason)
	}
	long := string(make([]byte, provisioner.MaxStatusReason+1))
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusDisabled, long); err == nil {
		t.Error("SetStatus with a reason over MaxStatusReason succeeded")
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusActive {
		t.Errorf("after a refused SetStatus: Status = %q, want active", got.Status)
	}
	// A later login's profile update leaves the status and reason alone.
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusDisabled, "audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, base.Add(time.Hour), func(u *provisioner.User) error {
		u.Status, u.StatusReason = provisioner.StatusActive, "changed by an UpdateFunc"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusDisabled || got.StatusReason != "audit" {
		t.Errorf("after an UpdateFunc set them: Status = %q, StatusReason = %q; want disabled, audit", got.Status, got.StatusReason)
	}
}

func testKeep(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	if u.Keep {
		t.Error("a new user has Keep set")
	}
	got, err := s.UpdateUser(ctx, u.ID, func(u *provisioner.User) error { u.Keep = true; return nil })
	if err != nil || !got.Keep {
		t.Fatalf("UpdateUser(Keep) = %+v, %v", got, err)
	}
	if got := mustUser(t, s, u.ID); !got.Keep {
		t.Error("Keep was not stored")
	}
	if found, err := s.SearchUsers(ctx, provisioner.UserQuery{}); err != nil || len(found) != 1 || !found[0].Keep {
		t.Errorf("SearchUsers = %+v, %v; want alice with Keep", found, err)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(u *provisioner.User) error { u.Keep = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustUser(t, s, u.ID); got.Keep {
		t.Error("Keep stayed set after clearing it")
	}
}

func testLoginHistory(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if h, err := s.LoginHistory(ctx, u.ID); err != nil || len(h) != 0 {
		t.Errorf("LoginHistory(new user) = %v, %v; want none", h, err)
	}
	n := provisioner.LoginHistoryLength + 5
	for i := range n {
		outcome := "succeeded"
		if i%3 == 0 {
			outcome = "denied"
		}
		if err := s.AddLoginEvent(ctx, u.ID, provisioner.LoginEvent{At: base.Add(time.Duration(i) * time.Minute), Connection: "corp", Outcome: outcome}); err != nil {
			t.Fatalf("AddLoginEvent %d: %v", i, err)
		}
	}
	if err := s.AddLoginEvent(ctx, other.ID, provisioner.LoginEvent{At: base, Connection: "github", Outcome: "succeeded"}); err != nil {
		t.Fatal(err)
	}
	h, err := s.LoginHistory(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != provisioner.LoginHistoryLength {
		t.Fatalf("LoginHistory kept %d events, want the newest %d", len(h), provisioner.LoginHistoryLength)
	}
	for j, e := range h {
		i := n - 1 - j
		want := base.Add(time.Duration(i) * time.Minute)
		if !e.At.Equal(want) || e.Connection != "corp" || (e.Outcome == "denied") != (i%3 == 0) {
			t.Errorf("event %d = %+v, want at %v", j, e, want)
		}
	}
	if h, err := s.LoginHistory(ctx, other.ID); err != nil || len(h) != 1 || h[0].Connection != "github" {
		t.Errorf("other user's history = %v, %v", h, err)
	}
	err = s.AddLoginEvent(ctx, "00000000-0000-4000-8000-000000000000", provisioner.LoginEvent{At: base, Connection: "corp", Outcome: "succeeded"})
	wantErr(t, "AddLoginEvent(no such user)", err, provisioner.ErrNotFound)
}

func testLoginHistoryDeleted(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	if err := s.AddLoginEvent(ctx, u.ID, provisioner.LoginEvent{At: base, Connection: "corp", Outcome: "succeeded"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if h, err := s.LoginHistory(ctx, u.ID); err != nil || len(h) != 0 {
		t.Errorf("LoginHistory(deleted user) = %v, %v; want none", h, err)
	}
}

func testLease(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	ttl := 300 * time.Millisecond
	if ok, err := s.AcquireLease(ctx, "job", "a", ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(free) = %v, %v; want true", ok, err)
	}
	if ok, err := s.AcquireLease(ctx, "job", "b", ttl); err != nil || ok {
		t.Fatalf("AcquireLease(held by a) for b = %v, %v; want false", ok, err)
	}
	if ok, err := s.AcquireLease(ctx, "other-job", "b", ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(another name) = %v, %v; want true", ok, err)
	}
	if ok, err := s.AcquireLease(ctx, "job", "a", ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(renewal by a) = %v, %v; want true", ok, err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if ok, err := s.AcquireLease(ctx, "job", "b", ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(expired) for b = %v, %v; want true", ok, err)
	}
	if ok, err := s.AcquireLease(ctx, "job", "a", ttl); err != nil || ok {
		t.Fatalf("AcquireLease(now held by b) for a = %v, %v; want false", ok, err)
	}
	if _, err := s.AcquireLease(ctx, "job", "", ttl); err == nil {
		t.Error("AcquireLease with no holder succeeded")
	}
}

func testLeaseOneOfMany(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	var wg sync.WaitGroup
	got := make([]bool, 8)
	for i := range got {
		wg.Go(func() {
			ok, err := s.AcquireLease(ctx, "job", fmt.Sprintf("holder-%d", i), time.Minute)
			if err != nil {
				t.Errorf("AcquireLease: %v", err)
			}
			got[i] = ok
		})
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(got, func(ok bool) bool { return !ok })); n != 1 {
		t.Errorf("%d of 8 concurrent holders got the lease, want exactly 1", n)
	}
}

func testSetStatus(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusDisabled, ""); err != nil {
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
	if err := s.SetStatus(ctx, u.ID, provisioner.StatusActive, ""); err != nil {
		t.Fatalf("SetStatus(active): %v", err)
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusActive {
		t.Errorf("Status = %q, want active", got.Status)
	}
	if err := s.SetStatus(ctx, u.ID, provisioner.Status("bogus"), ""); err == nil {
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
	err := s.SetStatus(ctx, "00000000-0000-4000-8000-000000000000", provisioner.StatusDisabled, "")
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
	if err := s.SetStatus(ctx, carol.ID, provisioner.StatusDisabled, ""); err != nil {
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

// The search text matches names in any case also where the letter whose
// case differs is not ASCII, as names from providers often are: an
// operator looking for "Élodie Durand" may type "élodie", "Élodie" or
// "ÉLODIE", whatever the database's own lower() knows.
func testSearchUsersFoldsNonASCII(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	for _, u := range []struct{ username, name, sub string }{
		{"edurand", "Élodie Durand", "s1"},
		{"oeide", "Øyvind Eide", "s2"},
		{"uyilmaz", "Ümit Yılmaz", "s3"},
		{"npapa", "Νίκος Παπαδόπουλος", "s4"},
		{"ndecomp", "E\u0301milie Martin", "s5"},
		{"zoë", "", "s6"},
	} {
		nu := newUser(u.username)
		nu.Name = u.name
		if _, err := s.CreateUser(ctx, nu, newIdentity(u.sub)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ search, want string }{
		{"élodie", "edurand"},
		{"Élodie", "edurand"},
		{"ÉLODIE DURAND", "edurand"},
		{"øyvind", "oeide"},
		{"Ümit", "uyilmaz"},
		// Case-folded: the final sigma of the name and the capital
		// sigma typed for it are one letter.
		{"ΝΊΚΟΣ ΠΑΠΑΔΌΠΟΥΛΟΣ", "npapa"},
		// Composed: a name a provider sent decomposed (NFD) is found
		// by the letter an operator types, and so is a username.
		{"Émilie", "ndecomp"},
		{"ZOE\u0308", "zoë"},
	} {
		if got := searchNames(t, s, provisioner.UserQuery{Search: c.search, Limit: 10}); !slices.Equal(got, []string{c.want}) {
			t.Errorf("search %q found %v, want [%s] (the same text but for case, or composition)", c.search, got, c.want)
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
	if err := s.SetStatus(ctx, a.ID, provisioner.StatusDisabled, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := count(); got[provisioner.StatusActive] != 1 || got[provisioner.StatusDisabled] != 1 {
		t.Errorf("counts %v, want 1 active and 1 disabled", got)
	}
}
