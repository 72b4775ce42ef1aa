package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// RunUserStore runs the part of the suite for provisioner.UserStore, the
// directory every store keeps.
func RunUserStore(t *testing.T, newStore func(t *testing.T) provisioner.UserStore) {
	runCases(t, newStore, []testCase[provisioner.UserStore]{
		{"CreateAndFindByIdentity", testCreateAndFindByIdentity},
		{"FindByUsername", testFindByUsername},
		{"UsernameCollision", testUsernameCollision},
		{"UsernameWithSeparator", testUsernameWithSeparator},
		{"DuplicateIdentity", testDuplicateIdentity},
		{"RecordLogin", testRecordLogin},
		{"RecordLoginNilUpdate", testRecordLoginNilUpdate},
		{"RecordLoginMissing", testRecordLoginMissing},
		{"NotFound", testNotFound},
		{"LinkIdentity", testLinkIdentity},
		{"ListUsersPaging", testListUsersPaging},
		{"Identities", testIdentities},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentSameIdentity", testConcurrentSameIdentity},
		{"ConcurrentDifferentIdentities", testConcurrentDifferentIdentities},
		{"PolicyFieldsRoundTrip", testPolicyFieldsRoundTrip},
		{"UserRoles", testUserRoles},
		{"RecordLoginUpdate", testRecordLoginUpdate},
		{"UpdateErrorRollsBack", testUpdateErrorRollsBack},
		{"UpdateIgnoredFields", testUpdateIgnoredFields},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserNotFound", testUpdateUserNotFound},
		{"UpdatePanicReleases", testUpdatePanicReleases},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"UsersByEmail", testUsersByEmail},
		{"LinkIdentityUpdate", testLinkIdentityUpdate},
		{"RecordUserLogin", testRecordUserLogin},
	})
}

// testRecordUserLogin: a store that records logins by user ID
// (provisioner.LoginRecorder) moves the last login forward, never back,
// and says ErrNotFound for a missing user.
func testRecordUserLogin(t *testing.T, s provisioner.UserStore) {
	rec, ok := s.(provisioner.LoginRecorder)
	if !ok {
		t.Skip("the store does not record logins by user ID (provisioner.LoginRecorder is optional)")
	}
	u := mustCreate(t, s, "alice", "sub-1")
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, when := range []time.Time{at, at.Add(-time.Hour)} {
		if err := rec.RecordUserLogin(t.Context(), u.ID, when); err != nil {
			t.Fatalf("RecordUserLogin: %v", err)
		}
	}
	got, err := s.User(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastLoginAt.Equal(at) {
		t.Errorf("last login %v, want %v (the later of the two)", got.LastLoginAt, at)
	}
	wantErr(t, "RecordUserLogin(missing)", rec.RecordUserLogin(t.Context(), "00000000-0000-4000-8000-000000000000", at), provisioner.ErrNotFound)
}

func testCreateAndFindByIdentity(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	in := newUser("alice")
	ident := newIdentity("sub-alice")
	before := time.Now()
	u, err := s.CreateUser(ctx, in, ident)
	after := time.Now()
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == "" {
		t.Fatal("created user has no ID")
	}
	if u.Username != "alice" {
		t.Errorf("Username = %q, want alice", u.Username)
	}
	if u.Status != provisioner.StatusActive {
		t.Errorf("Status = %q, want %q", u.Status, provisioner.StatusActive)
	}
	checkProfile(t, u, in)
	checkBetween(t, "CreatedAt", u.CreatedAt, before, after)
	checkBetween(t, "UpdatedAt", u.UpdatedAt, before, after)
	checkTime(t, "LastLoginAt", u.LastLoginAt, base)

	for name, get := range map[string]func() (*provisioner.User, error){
		"UserByIdentity": func() (*provisioner.User, error) { return s.UserByIdentity(ctx, key("sub-alice")) },
		"User":           func() (*provisioner.User, error) { return s.User(ctx, u.ID) },
		"UserByUsername": func() (*provisioner.User, error) { return s.UserByUsername(ctx, "alice") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != u.ID || got.Username != u.Username || got.Status != u.Status {
			t.Errorf("%s = %+v, want %+v", name, got, u)
		}
		checkProfile(t, got, in)
		checkTime(t, name+" CreatedAt", got.CreatedAt, u.CreatedAt)
		checkTime(t, name+" UpdatedAt", got.UpdatedAt, u.UpdatedAt)
		checkTime(t, name+" LastLoginAt", got.LastLoginAt, base)
	}

	ids, err := s.Identities(ctx, u.ID)
	if err != nil {
		t.Fatalf("Identities: %v", err)
	}
	if len(ids) != 1 {
		t.Fatalf("Identities = %d, want 1", len(ids))
	}
	if ids[0].IdentityKey != key("sub-alice") || ids[0].UserID != u.ID {
		t.Errorf("identity = %+v, want key %+v user %s", ids[0], key("sub-alice"), u.ID)
	}
	if !sameJSON(ids[0].RawClaims, ident.RawClaims) {
		t.Errorf("RawClaims = %s, want %s", ids[0].RawClaims, ident.RawClaims)
	}
	checkTime(t, "identity CreatedAt", ids[0].CreatedAt, base)
	checkTime(t, "identity LastLoginAt", ids[0].LastLoginAt, base)

	// Every part of the key matters.
	for _, k := range []provisioner.IdentityKey{
		{Connection: "other", Issuer: "https://idp.example.com", Subject: "sub-alice"},
		{Connection: "corp", Issuer: "https://other.example.com", Subject: "sub-alice"},
		{Connection: "corp", Issuer: "https://idp.example.com", Subject: "SUB-ALICE"},
	} {
		if _, err := s.UserByIdentity(ctx, k); !errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("UserByIdentity(%+v): err = %v, want ErrNotFound", k, err)
		}
	}
}

func testFindByUsername(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "Alice", "sub-1")
	if u.Username != "Alice" {
		t.Errorf("Username = %q, want the given form Alice", u.Username)
	}
	for _, name := range []string{"Alice", "alice", "ALICE", " alice ", "Ａｌｉｃｅ"} {
		got, err := s.UserByUsername(ctx, name)
		if err != nil {
			t.Errorf("UserByUsername(%q): %v", name, err)
			continue
		}
		if got.ID != u.ID {
			t.Errorf("UserByUsername(%q) = %s, want %s", name, got.ID, u.ID)
		}
	}
	if _, err := s.UserByUsername(ctx, "alic"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("UserByUsername(alic): err = %v, want ErrNotFound", err)
	}
}

func testUsernameCollision(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	first := mustCreate(t, s, "alice", "sub-1")
	for i, name := range []string{"alice", "Alice", "ALICE", "Ａｌｉｃｅ"} {
		sub := fmt.Sprintf("other-%d", i)
		_, err := s.CreateUser(ctx, newUser(name), newIdentity(sub))
		wantErr(t, "CreateUser("+name+")", err, provisioner.ErrUsernameTaken)
		if _, err := s.UserByIdentity(ctx, key(sub)); !errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("identity of refused user %q was written (err = %v)", name, err)
		}
	}
	if n := countUsers(t, s); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
	got, err := s.UserByUsername(ctx, "alice")
	if err != nil || got.ID != first.ID {
		t.Errorf("UserByUsername(alice) = %v, %v; want %s", got, err, first.ID)
	}
}

// A local username never contains ':', which JIT-off session names use
// after their connection: "partner:ceo" must stay someone else's.
func testUsernameWithSeparator(t *testing.T, s provisioner.UserStore) {
	if _, err := s.CreateUser(t.Context(), newUser("partner:ceo"), newIdentity("sub-1")); err == nil {
		t.Error("CreateUser(partner:ceo) succeeded")
	}
	if n := countUsers(t, s); n != 0 {
		t.Errorf("users = %d, want 0", n)
	}
}

func testDuplicateIdentity(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	first := mustCreate(t, s, "alice", "sub-1")

	_, err := s.CreateUser(ctx, newUser("bob"), newIdentity("sub-1"))
	wantErr(t, "CreateUser(bob, duplicate identity)", err, provisioner.ErrIdentityExists)
	if _, err := s.UserByUsername(ctx, "bob"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("user of refused identity was written (err = %v)", err)
	}

	// Identity and username both collide: the identity wins.
	_, err = s.CreateUser(ctx, newUser("alice"), newIdentity("sub-1"))
	wantErr(t, "CreateUser(alice, duplicate identity)", err, provisioner.ErrIdentityExists)

	if n := countUsers(t, s); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
	got, err := s.UserByIdentity(ctx, key("sub-1"))
	if err != nil || got.ID != first.ID {
		t.Errorf("UserByIdentity = %v, %v; want %s", got, err, first.ID)
	}
	ids, err := s.Identities(ctx, first.ID)
	if err != nil || len(ids) != 1 {
		t.Errorf("Identities = %v, %v; want one", ids, err)
	}
}

func testRecordLogin(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	at := base.Add(time.Hour)
	want := &provisioner.User{
		Email:         "alice@new.example.com",
		EmailVerified: false,
		Name:          "Alice New",
		GivenName:     "Alice",
		FamilyName:    "New",
		Picture:       "https://example.com/new.png",
		Groups:        []string{"ops"},
		Attributes:    map[string]string{"department": "ops", "site": "ber"},
	}
	raw := []byte(`{"sub":"sub-1","email":"alice@new.example.com","v":2}`)
	got, err := s.RecordLogin(ctx, key("sub-1"), raw, at, setProfile(want))
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			if gu.ID != u.ID || gu.Username != "alice" || gu.Status != provisioner.StatusActive {
				t.Errorf("user = %+v, want id %s username alice active", gu, u.ID)
			}
			checkProfile(t, gu, want)
			checkTime(t, "LastLoginAt", gu.LastLoginAt, at)
			checkTime(t, "CreatedAt", gu.CreatedAt, u.CreatedAt)
		})
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v; want one", ids, err)
	}
	checkTime(t, "identity LastLoginAt", ids[0].LastLoginAt, at)
	checkTime(t, "identity CreatedAt", ids[0].CreatedAt, base)
	if !sameJSON(ids[0].RawClaims, raw) {
		t.Errorf("RawClaims = %s, want %s", ids[0].RawClaims, raw)
	}

	// Empty groups and attributes clear them.
	if _, err := s.RecordLogin(ctx, key("sub-1"), raw, at.Add(time.Minute), setProfile(&provisioner.User{Email: "a@example.com"})); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	cleared := mustUser(t, s, u.ID)
	if len(cleared.Groups) != 0 || len(cleared.Attributes) != 0 || cleared.Name != "" {
		t.Errorf("after empty profile: groups %q attributes %v name %q; want all empty",
			cleared.Groups, cleared.Attributes, cleared.Name)
	}
}

func testRecordLoginNilUpdate(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	in := newUser("alice")
	u, err := s.CreateUser(ctx, in, newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	at := base.Add(2 * time.Hour)
	raw := []byte(`{"sub":"sub-1","v":3}`)
	got, err := s.RecordLogin(ctx, key("sub-1"), raw, at, nil)
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			checkProfile(t, gu, in)
			checkTime(t, "LastLoginAt", gu.LastLoginAt, at)
			// Nothing about the user changed but the login.
			checkTime(t, "UpdatedAt", gu.UpdatedAt, u.UpdatedAt)
		})
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v; want one", ids, err)
	}
	checkTime(t, "identity LastLoginAt", ids[0].LastLoginAt, at)
	if !sameJSON(ids[0].RawClaims, raw) {
		t.Errorf("RawClaims = %s, want %s", ids[0].RawClaims, raw)
	}
}

func testRecordLoginMissing(t *testing.T, s provisioner.UserStore) {
	mustCreate(t, s, "alice", "sub-1")
	called := false
	_, err := s.RecordLogin(t.Context(), key("nobody"), nil, base, func(u *provisioner.User) error {
		called = true
		u.Name = "x"
		return nil
	})
	wantErr(t, "RecordLogin(missing)", err, provisioner.ErrNotFound)
	if called {
		t.Error("RecordLogin(missing) called update")
	}
	if n := countUsers(t, s); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
}

func testNotFound(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-1")
	_, err := s.User(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "User", err, provisioner.ErrNotFound)
	_, err = s.UserByUsername(ctx, "bob")
	wantErr(t, "UserByUsername", err, provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, key("sub-2"))
	wantErr(t, "UserByIdentity", err, provisioner.ErrNotFound)
}

func testLinkIdentity(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	second := newIdentity("sub-gh")
	second.Connection = "github"
	linked, err := s.LinkIdentity(ctx, u.ID, second, nil)
	if err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	if linked == nil || linked.ID != u.ID {
		t.Fatalf("LinkIdentity returned %+v, want user %s", linked, u.ID)
	}
	got, err := s.UserByIdentity(ctx, second.IdentityKey)
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByIdentity(linked) = %v, %v; want %s", got, err, u.ID)
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 2 {
		t.Fatalf("Identities after linking = %v, %v; want 2", ids, err)
	}

	// An identity already linked, to this user or another, is refused.
	link := func(userID string, id provisioner.Identity) error {
		_, err := s.LinkIdentity(ctx, userID, id, nil)
		return err
	}
	wantErr(t, "LinkIdentity(own identity again)", link(u.ID, second), provisioner.ErrIdentityExists)
	wantErr(t, "LinkIdentity(another's identity)", link(u.ID, newIdentity("sub-2")), provisioner.ErrIdentityExists)
	if got, err := s.UserByIdentity(ctx, key("sub-2")); err != nil || got.ID != other.ID {
		t.Errorf("bob's identity moved: %v, %v", got, err)
	}
	// No such user: nothing written.
	orphan := newIdentity("sub-orphan")
	wantErr(t, "LinkIdentity(missing user)", link("no-such-user", orphan), provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, orphan.IdentityKey)
	wantErr(t, "UserByIdentity(orphan)", err, provisioner.ErrNotFound)
}

func testListUsersPaging(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("user%02d", i))
	}
	order := slices.Clone(want)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, name := range order {
		mustCreate(t, s, name, "sub-"+name)
	}
	var got []string
	ids := map[string]bool{}
	for _, page := range []struct{ offset, len int }{{0, 10}, {10, 10}, {20, 5}, {30, 0}} {
		users, err := s.ListUsers(ctx, page.offset, 10)
		if err != nil {
			t.Fatalf("ListUsers(%d, 10): %v", page.offset, err)
		}
		if len(users) != page.len {
			t.Errorf("ListUsers(%d, 10) returned %d users, want %d", page.offset, len(users), page.len)
		}
		for _, u := range users {
			got = append(got, u.Username)
			if ids[u.ID] {
				t.Errorf("user %s listed twice", u.ID)
			}
			ids[u.ID] = true
			if u.Email != u.Username+"@example.com" {
				t.Errorf("listed user %s has email %q", u.Username, u.Email)
			}
		}
	}
	if !sort.StringsAreSorted(got) {
		t.Errorf("ListUsers order = %q, want sorted", got)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers pages = %q, want %q", got, want)
	}
	users, err := s.ListUsers(ctx, 5, 3)
	if err != nil {
		t.Fatalf("ListUsers(5, 3): %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	if !slices.Equal(names, want[5:8]) {
		t.Errorf("ListUsers(5, 3) = %q, want %q", names, want[5:8])
	}
}

func testIdentities(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	a := mustCreate(t, s, "alice", "sub-1")
	b := mustCreate(t, s, "bob", "sub-2")
	for _, c := range []struct {
		user *provisioner.User
		sub  string
	}{{a, "sub-1"}, {b, "sub-2"}} {
		ids, err := s.Identities(ctx, c.user.ID)
		if err != nil {
			t.Fatalf("Identities(%s): %v", c.user.Username, err)
		}
		if len(ids) != 1 || ids[0].IdentityKey != key(c.sub) || ids[0].UserID != c.user.ID {
			t.Errorf("Identities(%s) = %+v, want one with key %+v", c.user.Username, ids, key(c.sub))
		}
	}
	ids, err := s.Identities(ctx, "00000000-0000-4000-8000-000000000000")
	if err != nil || len(ids) != 0 {
		t.Errorf("Identities(unknown) = %v, %v; want none and no error", ids, err)
	}
}

func testCanceledContext(t *testing.T, s provisioner.UserStore) {
	mustCreate(t, s, "alice", "sub-1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByIdentity(ctx, key("sub-1")); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByIdentity with canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.CreateUser(ctx, newUser("bob"), newIdentity("sub-2")); err == nil {
		t.Error("CreateUser with canceled context succeeded")
	}
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, base, nil); err == nil {
		t.Error("RecordLogin with canceled context succeeded")
	}
	if _, err := s.ListUsers(ctx, 0, 10); err == nil {
		t.Error("ListUsers with canceled context succeeded")
	}
	if _, err := s.UserByIdentity(t.Context(), key("sub-2")); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("user created under canceled context exists (err = %v)", err)
	}
}

func testConcurrentSameIdentity(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	p := &provisioner.Provisioner{Store: s}
	pol := silentPolicy(t)
	claims := provisioner.Claims{
		Issuer: "https://idp.example.com", Subject: "sub-race",
		Email: "race@example.com", EmailVerified: true, Name: "Race",
		Groups: []string{"g"}, Raw: []byte(`{"sub":"sub-race"}`),
	}
	results, errs := runConcurrently(goroutines, func(int) (provisioner.Result, error) {
		return p.Provision(ctx, provisioner.Request{Connection: "corp", Policy: pol, Claims: claims})
	})
	var id string
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
			continue
		}
		r := results[i]
		if r.User == nil {
			t.Errorf("goroutine %d: no user (outcome %s)", i, r.Outcome)
			continue
		}
		if id == "" {
			id = r.User.ID
		} else if r.User.ID != id {
			t.Errorf("goroutine %d: user %s, others got %s", i, r.User.ID, id)
		}
		switch r.Outcome {
		case provisioner.OutcomeCreated:
			created++
		case provisioner.OutcomeUpdated:
		default:
			t.Errorf("goroutine %d: outcome %q", i, r.Outcome)
		}
	}
	if created != 1 {
		t.Errorf("%d goroutines created the user, want exactly 1", created)
	}
	if n := countUsers(t, s); n != 1 {
		t.Errorf("store has %d users, want 1", n)
	}
	got, err := s.UserByIdentity(ctx, provisioner.IdentityKey{Connection: "corp", Issuer: claims.Issuer, Subject: claims.Subject})
	if err != nil || got.ID != id || got.Username != "race@example.com" {
		t.Errorf("UserByIdentity = %+v, %v; want %s race@example.com", got, err, id)
	}
	if ids, err := s.Identities(ctx, id); err != nil || len(ids) != 1 {
		t.Errorf("Identities = %v, %v; want one", ids, err)
	}
}

func testConcurrentDifferentIdentities(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	p := &provisioner.Provisioner{Store: s}
	pol := silentPolicy(t)
	results, errs := runConcurrently(goroutines, func(i int) (provisioner.Result, error) {
		return p.Provision(ctx, provisioner.Request{Connection: "corp", Policy: pol, Claims: provisioner.Claims{
			Issuer:        "https://idp.example.com",
			Subject:       fmt.Sprintf("sub-%d", i),
			Email:         fmt.Sprintf("user%d@example.com", i),
			EmailVerified: true,
		}})
	})
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
			continue
		}
		r := results[i]
		if r.Outcome != provisioner.OutcomeCreated || r.User == nil {
			t.Errorf("goroutine %d: outcome %q user %v, want created", i, r.Outcome, r.User)
			continue
		}
		if want := fmt.Sprintf("user%d@example.com", i); r.User.Username != want {
			t.Errorf("goroutine %d: username %q, want %q", i, r.User.Username, want)
		}
		if j, dup := seen[r.User.ID]; dup {
			t.Errorf("goroutines %d and %d got the same user %s", j, i, r.User.ID)
		}
		seen[r.User.ID] = i
	}
	if n := countUsers(t, s); n != goroutines {
		t.Errorf("store has %d users, want %d", n, goroutines)
	}
	for i := range goroutines {
		k := provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example.com", Subject: fmt.Sprintf("sub-%d", i)}
		u, err := s.UserByIdentity(ctx, k)
		if err != nil {
			t.Errorf("UserByIdentity(sub-%d): %v", i, err)
			continue
		}
		if j, ok := seen[u.ID]; !ok || j != i {
			t.Errorf("sub-%d is linked to user %s, not the one goroutine %d created", i, u.ID, i)
		}
	}
}

func testPolicyFieldsRoundTrip(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	in := policyUser("alice")
	u, err := s.CreateUser(ctx, in, newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	checkPolicyFields(t, u, in)
	for name, get := range userGetters(s, u, "sub-1") {
		got, err := get(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Run(name, func(t *testing.T) { checkPolicyFields(t, got, in) })
	}

	// A user created without them has none.
	plain := mustCreate(t, s, "bob", "sub-2")
	for name, get := range userGetters(s, plain, "sub-2") {
		got, err := get(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.RoleGrants) != 0 || len(got.LocalAttributes) != 0 || len(got.Consents) != 0 {
			t.Errorf("%s: plain user has %v %q %v", name, got.RoleGrants, got.LocalAttributes, got.Consents)
		}
	}

	// Clearing them through an update clears them in the store.
	cleared, err := s.UpdateUser(ctx, u.ID, func(u *provisioner.User) error {
		u.RoleGrants, u.LocalAttributes, u.Consents = nil, nil, map[string]provisioner.Consent{}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	for name, got := range map[string]*provisioner.User{"returned": cleared, "stored": mustUser(t, s, u.ID)} {
		if len(got.RoleGrants) != 0 || len(got.LocalAttributes) != 0 || len(got.Consents) != 0 {
			t.Errorf("%s after clearing: %v %q %v", name, got.RoleGrants, got.LocalAttributes, got.Consents)
		}
		checkProfile(t, got, in)
	}
}

func testUserRoles(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u, err := s.CreateUser(ctx, policyUser("alice"), newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := []string{"admin", "auditor", "staff"}
	if got := mustUser(t, s, u.ID).Roles(); !slices.Equal(got, want) {
		t.Errorf("Roles() = %q, want %q", got, want)
	}
	// A connection's sync replaces only its own entry.
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, base.Add(time.Hour), func(u *provisioner.User) error {
		u.RoleGrants[provisioner.ConnectionSource("corp")] = []string{"viewer"}
		return nil
	}); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	got := mustUser(t, s, u.ID)
	if r := got.Roles(); !slices.Equal(r, []string{"admin", "auditor", "viewer"}) {
		t.Errorf("Roles() after sync = %q, want [admin auditor viewer]", r)
	}
	if g := got.RoleGrants[provisioner.RoleSourceLocal]; !slices.Equal(g, []string{"admin", "auditor"}) {
		t.Errorf("local grants after sync = %q, want [admin auditor]", g)
	}
	if r := mustCreate(t, s, "bob", "sub-2").Roles(); len(r) != 0 {
		t.Errorf("Roles() of a user without grants = %q, want none", r)
	}
}

// testRecordLoginUpdate: RecordLogin hands update the stored user and
// writes back every field an UpdateFunc may change.
func testRecordLoginUpdate(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	in := policyUser("alice")
	u, err := s.CreateUser(ctx, in, newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := policyUser("alice")
	want.Email, want.EmailVerified = "alice@new.example.com", false
	want.Name, want.GivenName, want.FamilyName = "Alice New", "Alice", "New"
	want.Picture = "https://example.com/new.png"
	want.Groups = []string{"ops"}
	want.Attributes = map[string]string{"site": "ber"}
	want.RoleGrants = map[string][]string{provisioner.RoleSourceLocal: {"admin"}, provisioner.ConnectionSource("corp"): {"ops"}}
	want.LocalAttributes = []string{"email"}
	want.Consents = map[string]provisioner.Consent{"corp": {Attributes: []string{"email"}, At: base.Add(time.Minute)}}

	before := time.Now()
	at := time.Now().UTC()
	raw := []byte(`{"sub":"sub-1","v":2}`)
	got, err := s.RecordLogin(ctx, key("sub-1"), raw, at, func(cur *provisioner.User) error {
		if cur.ID != u.ID || cur.Username != "alice" {
			t.Errorf("update got user %s %q, want %s alice", cur.ID, cur.Username, u.ID)
		}
		checkProfile(t, cur, in)
		checkPolicyFields(t, cur, in)
		*cur = *want
		cur.ID, cur.Username, cur.Status = u.ID, u.Username, u.Status
		return nil
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			checkProfile(t, gu, want)
			checkPolicyFields(t, gu, want)
			checkTime(t, "LastLoginAt", gu.LastLoginAt, at)
			checkTime(t, "CreatedAt", gu.CreatedAt, u.CreatedAt)
			checkBetween(t, "UpdatedAt", gu.UpdatedAt, before, after)
		})
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v; want one", ids, err)
	}
	checkTime(t, "identity LastLoginAt", ids[0].LastLoginAt, at)
	if !sameJSON(ids[0].RawClaims, raw) {
		t.Errorf("RawClaims = %s, want %s", ids[0].RawClaims, raw)
	}
}

// testUpdateErrorRollsBack: an UpdateFunc's error aborts the whole
// transaction (nothing written, not even the login or the link) and is
// returned unchanged.
func testUpdateErrorRollsBack(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u, err := s.CreateUser(ctx, policyUser("alice"), newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	was := mustUser(t, s, u.ID)
	wasIDs, err := s.Identities(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var veto error
	update := func(u *provisioner.User) error {
		veto = vetoAfterChanging(u)
		return veto
	}
	checkVeto := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: vetoed update succeeded", what)
		}
		if !errors.Is(err, errVeto) {
			t.Errorf("%s: err = %v, want the update's error", what, err)
		}
		if err != veto {
			t.Errorf("%s: err = %#v, want the update's own error value %#v", what, err, veto)
		}
	}

	_, err = s.RecordLogin(ctx, key("sub-1"), []byte(`{"sub":"sub-1","v":9}`), base.Add(time.Hour), update)
	checkVeto("RecordLogin", err)
	checkUnchanged(t, s, was, wasIDs)

	_, err = s.UpdateUser(ctx, u.ID, update)
	checkVeto("UpdateUser", err)
	checkUnchanged(t, s, was, wasIDs)

	gh := newIdentity("sub-gh")
	gh.Connection, gh.LastLoginAt = "github", base.Add(time.Hour)
	_, err = s.LinkIdentity(ctx, u.ID, gh, update)
	checkVeto("LinkIdentity", err)
	checkUnchanged(t, s, was, wasIDs)
	if _, err := s.UserByIdentity(ctx, gh.IdentityKey); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("identity of a vetoed link was written (err = %v)", err)
	}
	if us, err := s.UsersByEmail(ctx, "changed@example.com"); err != nil || len(us) != 0 {
		t.Errorf("UsersByEmail(vetoed email) = %v, %v; want none", us, err)
	}
}

// testUpdateIgnoredFields: changes an UpdateFunc makes to ID, Username,
// Status and the timestamps are not written, and alone they count as no
// change.
func testUpdateIgnoredFields(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	far := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	meddle := func(v *provisioner.User) {
		v.ID, v.Username, v.Status = other.ID, "mallory", provisioner.StatusDisabled
		v.CreatedAt, v.UpdatedAt, v.LastLoginAt = far, far, far
	}
	check := func(what string, got *provisioner.User, updated bool, before, after time.Time) {
		t.Helper()
		if got.ID != u.ID || got.Username != "alice" || got.Status != provisioner.StatusActive {
			t.Errorf("%s: user %s %q %s, want %s alice active", what, got.ID, got.Username, got.Status, u.ID)
		}
		checkTime(t, what+" CreatedAt", got.CreatedAt, u.CreatedAt)
		checkTime(t, what+" LastLoginAt", got.LastLoginAt, u.LastLoginAt)
		if updated {
			checkBetween(t, what+" UpdatedAt", got.UpdatedAt, before, after)
		} else {
			checkTime(t, what+" UpdatedAt", got.UpdatedAt, u.UpdatedAt)
		}
	}

	// Only ignored fields changed: nothing is written.
	got, err := s.UpdateUser(ctx, u.ID, func(v *provisioner.User) error { meddle(v); return nil })
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	check("returned", got, false, time.Time{}, time.Time{})
	check("stored", mustUser(t, s, u.ID), false, time.Time{}, time.Time{})

	// With a real change too, only the real change is written.
	before := time.Now()
	got, err = s.UpdateUser(ctx, u.ID, func(v *provisioner.User) error {
		meddle(v)
		v.Name = "Alice Changed"
		return nil
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		check(name, gu, true, before, after)
		if gu.Name != "Alice Changed" {
			t.Errorf("%s: Name = %q, want Alice Changed", name, gu.Name)
		}
	}
	if _, err := s.UserByUsername(ctx, "mallory"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("UserByUsername(mallory): err = %v, want ErrNotFound", err)
	}
	if o := mustUser(t, s, other.ID); o.Username != "bob" || o.Name != other.Name || o.Status != provisioner.StatusActive {
		t.Errorf("other user changed: %+v", o)
	}

	// A login sets LastLoginAt to its own time, whatever update says.
	at := base.Add(3 * time.Hour)
	got, err = s.RecordLogin(ctx, key("sub-1"), nil, at, func(v *provisioner.User) error { meddle(v); return nil })
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		checkTime(t, name+" LastLoginAt after login", gu.LastLoginAt, at)
		if gu.ID != u.ID || gu.Username != "alice" || gu.Status != provisioner.StatusActive {
			t.Errorf("%s after login: user %s %q %s", name, gu.ID, gu.Username, gu.Status)
		}
	}
}

func testUpdateUser(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	in := newUser("alice")
	u, err := s.CreateUser(ctx, in, newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	before := time.Now()
	got, err := s.UpdateUser(ctx, u.ID, func(v *provisioner.User) error {
		checkProfile(t, v, in)
		v.RoleGrants = map[string][]string{provisioner.RoleSourceLocal: {"admin"}}
		v.LocalAttributes = append(v.LocalAttributes, "name")
		v.Name = "Alice Local"
		v.Attributes["title"] = "lead"
		return nil
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := newUser("alice")
	want.Name = "Alice Local"
	want.Attributes["title"] = "lead"
	want.RoleGrants = map[string][]string{provisioner.RoleSourceLocal: {"admin"}}
	want.LocalAttributes = []string{"name"}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			checkProfile(t, gu, want)
			checkPolicyFields(t, gu, want)
			checkBetween(t, "UpdatedAt", gu.UpdatedAt, before, after)
			checkTime(t, "LastLoginAt", gu.LastLoginAt, u.LastLoginAt)
			checkTime(t, "CreatedAt", gu.CreatedAt, u.CreatedAt)
		})
	}
	// The identity is untouched.
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v", ids, err)
	}
	checkTime(t, "identity LastLoginAt", ids[0].LastLoginAt, base)
	if !sameJSON(ids[0].RawClaims, newIdentity("sub-1").RawClaims) {
		t.Errorf("RawClaims = %s", ids[0].RawClaims)
	}

	// An update that changes nothing writes nothing.
	stored := mustUser(t, s, u.ID)
	if _, err := s.UpdateUser(ctx, u.ID, func(*provisioner.User) error { return nil }); err != nil {
		t.Fatalf("UpdateUser(no change): %v", err)
	}
	checkTime(t, "UpdatedAt after no change", mustUser(t, s, u.ID).UpdatedAt, stored.UpdatedAt)
}

func testUpdateUserNotFound(t *testing.T, s provisioner.UserStore) {
	mustCreate(t, s, "alice", "sub-1")
	called := false
	_, err := s.UpdateUser(t.Context(), "00000000-0000-4000-8000-000000000000", func(u *provisioner.User) error {
		called = true
		return nil
	})
	wantErr(t, "UpdateUser(missing)", err, provisioner.ErrNotFound)
	if called {
		t.Error("UpdateUser(missing) called update")
	}
	if n := countUsers(t, s); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
}

// testUpdatePanicReleases: an UpdateFunc that panics leaves nothing
// written and nothing held; the panic reaches the caller.
func testUpdatePanicReleases(t *testing.T, s provisioner.UserStore) {
	u := mustCreate(t, s, "alice", "sub-1")
	for name, call := range map[string]func(provisioner.UpdateFunc){
		"UpdateUser": func(f provisioner.UpdateFunc) { _, _ = s.UpdateUser(t.Context(), u.ID, f) },
		"RecordLogin": func(f provisioner.UpdateFunc) {
			_, _ = s.RecordLogin(t.Context(), key("sub-1"), nil, base.Add(time.Hour), f)
		},
	} {
		func() {
			defer func() {
				if p := recover(); p != "storetest panic" {
					t.Errorf("%s: recovered %v, want the update's panic", name, p)
				}
			}()
			call(func(v *provisioner.User) error {
				v.Name = "written by a panicking update"
				panic("storetest panic")
			})
		}()
	}
	// The user can be updated again at once.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	got, err := s.UpdateUser(ctx, u.ID, func(v *provisioner.User) error {
		if v.Name != u.Name {
			t.Errorf("a panicking update was written: Name = %q", v.Name)
		}
		v.Name = "after"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser after panicking updates: %v", err)
	}
	if got.Name != "after" {
		t.Errorf("Name = %q, want after", got.Name)
	}
	checkTime(t, "LastLoginAt", got.LastLoginAt, u.LastLoginAt)
}

// testConcurrentUpdates: updates of one user from many goroutines each
// see the others' committed changes (the store holds the row while
// update runs), so none is lost.
func testConcurrentUpdates(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	const n = 20
	_, errs := runConcurrently(n, func(i int) (provisioner.Result, error) {
		add := func(v *provisioner.User) error {
			if v.RoleGrants == nil {
				v.RoleGrants = map[string][]string{}
			}
			v.RoleGrants[provisioner.RoleSourceLocal] = append(v.RoleGrants[provisioner.RoleSourceLocal], fmt.Sprintf("r%02d", i))
			return nil
		}
		var err error
		if i%2 == 0 {
			_, err = s.UpdateUser(ctx, u.ID, add)
		} else {
			_, err = s.RecordLogin(ctx, key("sub-1"), nil, base.Add(time.Duration(i)*time.Second), add)
		}
		return provisioner.Result{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	got := mustUser(t, s, u.ID).RoleGrants[provisioner.RoleSourceLocal]
	slices.Sort(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("r%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("roles after %d concurrent updates = %q (%d), want all %d", n, got, len(got), n)
	}
}

func testUsersByEmail(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	create := func(username, email, sub string) *provisioner.User {
		t.Helper()
		in := newUser(username)
		in.Email = email
		u, err := s.CreateUser(ctx, in, newIdentity(sub))
		if err != nil {
			t.Fatalf("CreateUser(%s): %v", username, err)
		}
		return u
	}
	bob := create("bob", "Alice@Example.COM", "sub-2")
	alice := create("alice", "alice@example.com", "sub-1")
	create("carol", "carol@example.com", "sub-3")
	create("dave", "", "sub-4")
	create("erin", "", "sub-5")

	names := func(email string) []string {
		t.Helper()
		us, err := s.UsersByEmail(ctx, email)
		if err != nil {
			t.Fatalf("UsersByEmail(%q): %v", email, err)
		}
		var out []string
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", "  Alice@example.com "} {
		if got := names(email); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Errorf("UsersByEmail(%q) = %q, want [alice bob]", email, got)
		}
	}
	for _, email := range []string{"", "  ", "nobody@example.com", "alice@example"} {
		if got := names(email); len(got) != 0 {
			t.Errorf("UsersByEmail(%q) = %q, want none", email, got)
		}
	}
	us, err := s.UsersByEmail(ctx, "alice@example.com")
	if err != nil || len(us) != 2 {
		t.Fatalf("UsersByEmail = %v, %v", us, err)
	}
	if us[0].ID != alice.ID || us[1].ID != bob.ID || us[1].Email != "Alice@Example.COM" {
		t.Errorf("UsersByEmail = %+v, want alice then bob with their emails as given", us)
	}

	// Changing an email through an update moves the lookup.
	if _, err := s.UpdateUser(ctx, bob.ID, func(u *provisioner.User) error {
		u.Email = "Bob@Example.com"
		return nil
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got := names("alice@example.com"); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("after bob's change, alice's email finds %q, want [alice]", got)
	}
	if got := names("bob@example.com"); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("after bob's change, bob's email finds %q, want [bob]", got)
	}
	// So does a login's update, and clearing an email.
	if _, err := s.RecordLogin(ctx, key("sub-3"), nil, base.Add(time.Hour), func(u *provisioner.User) error {
		u.Email = "ALICE@example.com"
		return nil
	}); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	if _, err := s.UpdateUser(ctx, alice.ID, func(u *provisioner.User) error {
		u.Email = ""
		return nil
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got := names("alice@example.com"); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("after the changes, alice's old email finds %q, want [carol]", got)
	}
	if got := names("carol@example.com"); len(got) != 0 {
		t.Errorf("carol's old email finds %q, want none", got)
	}
	if got := names(""); len(got) != 0 {
		t.Errorf("UsersByEmail(\"\") = %q, want none", got)
	}
}

// testLinkIdentityUpdate: LinkIdentity applies its update and the
// identity's login time to the user, and calls update only when it
// links.
func testLinkIdentityUpdate(t *testing.T, s provisioner.UserStore) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustCreate(t, s, "bob", "sub-2")
	gh := newIdentity("sub-gh")
	gh.Connection = "github"
	gh.LastLoginAt = base.Add(5 * time.Hour)
	grant := func(v *provisioner.User) error {
		if v.ID != u.ID {
			t.Errorf("update got user %s, want %s", v.ID, u.ID)
		}
		v.RoleGrants = map[string][]string{provisioner.ConnectionSource("github"): {"dev"}}
		v.Groups = []string{"octocats"}
		return nil
	}
	before := time.Now()
	got, err := s.LinkIdentity(ctx, u.ID, gh, grant)
	after := time.Now()
	if err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			if gu.ID != u.ID {
				t.Errorf("user %s, want %s", gu.ID, u.ID)
			}
			if r := gu.Roles(); !slices.Equal(r, []string{"dev"}) {
				t.Errorf("Roles() = %q, want [dev]", r)
			}
			if !slices.Equal(gu.Groups, []string{"octocats"}) {
				t.Errorf("Groups = %q, want [octocats]", gu.Groups)
			}
			checkTime(t, "LastLoginAt", gu.LastLoginAt, gh.LastLoginAt)
			checkBetween(t, "UpdatedAt", gu.UpdatedAt, before, after)
		})
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 2 {
		t.Fatalf("Identities = %v, %v; want 2", ids, err)
	}

	// Refused links call no update and write nothing.
	was := mustUser(t, s, u.ID)
	wasIDs := ids
	calls := 0
	count := func(v *provisioner.User) error {
		calls++
		v.Name = "should not be written"
		return nil
	}
	again := gh
	again.LastLoginAt = base.Add(9 * time.Hour)
	_, err = s.LinkIdentity(ctx, u.ID, again, count)
	wantErr(t, "LinkIdentity(own identity again)", err, provisioner.ErrIdentityExists)
	_, err = s.LinkIdentity(ctx, u.ID, newIdentity("sub-2"), count)
	wantErr(t, "LinkIdentity(bob's identity)", err, provisioner.ErrIdentityExists)
	_, err = s.LinkIdentity(ctx, "00000000-0000-4000-8000-000000000000", newIdentity("sub-new"), count)
	wantErr(t, "LinkIdentity(missing user)", err, provisioner.ErrNotFound)
	if calls != 0 {
		t.Errorf("refused links called update %d times", calls)
	}
	checkUnchanged(t, s, was, wasIDs)
	if _, err := s.UserByIdentity(ctx, key("sub-new")); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("identity of a link to a missing user was written (err = %v)", err)
	}
}
