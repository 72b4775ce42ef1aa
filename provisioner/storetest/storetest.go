// Package storetest is a conformance suite for provisioner.Store
// implementations. A store's tests call Run with a constructor that
// returns a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) provisioner.Store {
//			s, err := mystore.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Times are compared at microsecond precision, so stores that keep
// microseconds (PostgreSQL timestamptz) pass too. Raw claims are compared
// as JSON values when both sides are JSON, so a store may re-encode them.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Run runs the conformance suite. newStore must return a new, empty store
// for each call and arrange (with t.Cleanup) for it to be closed.
func Run(t *testing.T, newStore func(t *testing.T) provisioner.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s provisioner.Store)
	}{
		{"CreateAndFindByIdentity", testCreateAndFindByIdentity},
		{"FindByUsername", testFindByUsername},
		{"UsernameCollision", testUsernameCollision},
		{"DuplicateIdentity", testDuplicateIdentity},
		{"RecordLogin", testRecordLogin},
		{"RecordLoginNilProfile", testRecordLoginNilProfile},
		{"RecordLoginMissing", testRecordLoginMissing},
		{"NotFound", testNotFound},
		{"SetStatus", testSetStatus},
		{"DeleteUser", testDeleteUser},
		{"LinkIdentity", testLinkIdentity},
		{"ListUsersPaging", testListUsersPaging},
		{"Identities", testIdentities},
		{"RevokedSessions", testRevokedSessions},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentSameIdentity", testConcurrentSameIdentity},
		{"ConcurrentDifferentIdentities", testConcurrentDifferentIdentities},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// base is a fixed time with microsecond precision.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func key(sub string) provisioner.IdentityKey {
	return provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example.com", Subject: sub}
}

func newUser(username string) *provisioner.User {
	return &provisioner.User{
		Username:      username,
		Email:         username + "@example.com",
		EmailVerified: true,
		Name:          "Name of " + username,
		GivenName:     "Given",
		FamilyName:    "Family",
		Picture:       "https://example.com/" + username + ".png",
		Groups:        []string{"admins", "staff"},
		Attributes:    map[string]string{"department": "eng", "title": "engineer"},
		LastLoginAt:   base,
	}
}

func newIdentity(sub string) provisioner.Identity {
	return provisioner.Identity{
		IdentityKey: key(sub),
		RawClaims:   []byte(`{"sub":"` + sub + `","email":"x@example.com"}`),
		CreatedAt:   base,
		LastLoginAt: base,
	}
}

func mustCreate(t *testing.T, s provisioner.Store, username, sub string) *provisioner.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), newUser(username), newIdentity(sub))
	if err != nil {
		t.Fatalf("CreateUser(%q, %q): %v", username, sub, err)
	}
	return u
}

func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d <= time.Microsecond && d >= -time.Microsecond
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !sameTime(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkBetween checks lo <= got <= hi at microsecond precision.
func checkBetween(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo.Add(-time.Microsecond)) || got.After(hi.Add(time.Microsecond)) {
		t.Errorf("%s = %v, want between %v and %v", what, got, lo, hi)
	}
}

func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil {
		return reflect.DeepEqual(va, vb)
	}
	return bytes.Equal(a, b)
}

// checkProfile compares the profile fields of got and want.
func checkProfile(t *testing.T, got, want *provisioner.User) {
	t.Helper()
	if got.Email != want.Email || got.EmailVerified != want.EmailVerified ||
		got.Name != want.Name || got.GivenName != want.GivenName ||
		got.FamilyName != want.FamilyName || got.Picture != want.Picture {
		t.Errorf("profile = %+v, want %+v", got, want)
	}
	if !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("groups = %q, want %q", got.Groups, want.Groups)
	}
	if !mapsEqual(got.Attributes, want.Attributes) {
		t.Errorf("attributes = %v, want %v", got.Attributes, want.Attributes)
	}
}

// mapsEqual treats nil and empty as equal.
func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func countUsers(t *testing.T, s provisioner.Store) int {
	t.Helper()
	n := 0
	for offset := 0; ; offset += 100 {
		page, err := s.ListUsers(t.Context(), offset, 100)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		n += len(page)
		if len(page) < 100 {
			return n
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func testCreateAndFindByIdentity(t *testing.T, s provisioner.Store) {
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

func testFindByUsername(t *testing.T, s provisioner.Store) {
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

func testUsernameCollision(t *testing.T, s provisioner.Store) {
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

func testDuplicateIdentity(t *testing.T, s provisioner.Store) {
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

func testRecordLogin(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	at := base.Add(time.Hour)
	p := &provisioner.Profile{
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
	got, err := s.RecordLogin(ctx, key("sub-1"), p, raw, at)
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	want := &provisioner.User{
		Email: p.Email, EmailVerified: p.EmailVerified, Name: p.Name, GivenName: p.GivenName,
		FamilyName: p.FamilyName, Picture: p.Picture, Groups: p.Groups, Attributes: p.Attributes,
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

	// Empty groups and attributes in a profile clear them.
	if _, err := s.RecordLogin(ctx, key("sub-1"), &provisioner.Profile{Email: "a@example.com"}, raw, at.Add(time.Minute)); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	cleared := mustUser(t, s, u.ID)
	if len(cleared.Groups) != 0 || len(cleared.Attributes) != 0 || cleared.Name != "" {
		t.Errorf("after empty profile: groups %q attributes %v name %q; want all empty",
			cleared.Groups, cleared.Attributes, cleared.Name)
	}
}

func mustUser(t *testing.T, s provisioner.Store, id string) *provisioner.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	if err != nil {
		t.Fatalf("User(%s): %v", id, err)
	}
	return u
}

func testRecordLoginNilProfile(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	in := newUser("alice")
	u, err := s.CreateUser(ctx, in, newIdentity("sub-1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	at := base.Add(2 * time.Hour)
	raw := []byte(`{"sub":"sub-1","v":3}`)
	got, err := s.RecordLogin(ctx, key("sub-1"), nil, raw, at)
	if err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	for name, gu := range map[string]*provisioner.User{"returned": got, "stored": mustUser(t, s, u.ID)} {
		t.Run(name, func(t *testing.T) {
			checkProfile(t, gu, in)
			checkTime(t, "LastLoginAt", gu.LastLoginAt, at)
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

func testRecordLoginMissing(t *testing.T, s provisioner.Store) {
	mustCreate(t, s, "alice", "sub-1")
	_, err := s.RecordLogin(t.Context(), key("nobody"), &provisioner.Profile{Name: "x"}, nil, base)
	wantErr(t, "RecordLogin(missing)", err, provisioner.ErrNotFound)
	if n := countUsers(t, s); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
}

func testNotFound(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-1")
	_, err := s.User(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "User", err, provisioner.ErrNotFound)
	_, err = s.UserByUsername(ctx, "bob")
	wantErr(t, "UserByUsername", err, provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, key("sub-2"))
	wantErr(t, "UserByIdentity", err, provisioner.ErrNotFound)
	err = s.SetStatus(ctx, "00000000-0000-4000-8000-000000000000", provisioner.StatusDisabled)
	wantErr(t, "SetStatus", err, provisioner.ErrNotFound)
	err = s.DeleteUser(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "DeleteUser", err, provisioner.ErrNotFound)
}

func testSetStatus(t *testing.T, s provisioner.Store) {
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

func testLinkIdentity(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	second := newIdentity("sub-gh")
	second.Connection = "github"
	if err := s.LinkIdentity(ctx, u.ID, second); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
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
	wantErr(t, "LinkIdentity(own identity again)", s.LinkIdentity(ctx, u.ID, second), provisioner.ErrIdentityExists)
	wantErr(t, "LinkIdentity(another's identity)", s.LinkIdentity(ctx, u.ID, newIdentity("sub-2")), provisioner.ErrIdentityExists)
	if got, err := s.UserByIdentity(ctx, key("sub-2")); err != nil || got.ID != other.ID {
		t.Errorf("bob's identity moved: %v, %v", got, err)
	}
	// No such user: nothing written.
	orphan := newIdentity("sub-orphan")
	wantErr(t, "LinkIdentity(missing user)", s.LinkIdentity(ctx, "no-such-user", orphan), provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, orphan.IdentityKey)
	wantErr(t, "UserByIdentity(orphan)", err, provisioner.ErrNotFound)

	// Deleting the user removes every linked identity.
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.UserByIdentity(ctx, second.IdentityKey)
	wantErr(t, "UserByIdentity(linked, after delete)", err, provisioner.ErrNotFound)
}

func testDeleteUser(t *testing.T, s provisioner.Store) {
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
	_, err = s.RecordLogin(ctx, key("sub-1"), nil, nil, base)
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

func testListUsersPaging(t *testing.T, s provisioner.Store) {
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

func testIdentities(t *testing.T, s provisioner.Store) {
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

func testRevokedSessions(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	before := time.Now()
	if err := s.RevokeSession(ctx, "s1", exp); err != nil {
		t.Fatalf("RevokeSession(s1): %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.RevokeSession(ctx, "s2", exp.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeSession(s2): %v", err)
	}
	if err := s.RevokeSession(ctx, "expired", time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("RevokeSession(expired): %v", err)
	}
	after := time.Now()

	all, err := s.RevokedSessions(ctx, time.Time{})
	if err != nil {
		t.Fatalf("RevokedSessions(zero): %v", err)
	}
	byID := map[string]provisioner.RevokedSession{}
	for _, rs := range all {
		byID[rs.ID] = rs
	}
	if len(all) != 2 || len(byID) != 2 {
		t.Fatalf("RevokedSessions(zero) = %+v, want s1 and s2", all)
	}
	s1, s2 := byID["s1"], byID["s2"]
	if s1.ID != "s1" || s2.ID != "s2" {
		t.Fatalf("RevokedSessions(zero) = %+v, want s1 and s2", all)
	}
	checkTime(t, "s1 ExpiresAt", s1.ExpiresAt, exp)
	checkTime(t, "s2 ExpiresAt", s2.ExpiresAt, exp.Add(time.Minute))
	checkBetween(t, "s1 RevokedAt", s1.RevokedAt, before, after)
	checkBetween(t, "s2 RevokedAt", s2.RevokedAt, before, after)
	if !s2.RevokedAt.After(s1.RevokedAt) {
		t.Errorf("s2 revoked at %v, not after s1 at %v", s2.RevokedAt, s1.RevokedAt)
	}

	ids := func(since time.Time) []string {
		t.Helper()
		rs, err := s.RevokedSessions(ctx, since)
		if err != nil {
			t.Fatalf("RevokedSessions(%v): %v", since, err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		sort.Strings(out)
		return out
	}
	if got := ids(s1.RevokedAt); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("since s1's revocation (inclusive): %q, want [s1 s2]", got)
	}
	if got := ids(s2.RevokedAt); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("since s2's revocation: %q, want [s2]", got)
	}
	if got := ids(after.Add(time.Second)); len(got) != 0 {
		t.Errorf("since the future: %q, want none", got)
	}

	// Revoking with an expiry a moment away: gone once it passes. The
	// moment is wide enough for a loaded CI machine to list it first.
	if err := s.RevokeSession(ctx, "short", time.Now().Add(time.Second)); err != nil {
		t.Fatalf("RevokeSession(short): %v", err)
	}
	if got := ids(time.Time{}); !slices.Equal(got, []string{"s1", "s2", "short"}) {
		t.Errorf("with short-lived revocation: %q, want [s1 s2 short]", got)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := ids(time.Time{}); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("after short-lived revocation expired: %q, want [s1 s2]", got)
	}
}

func testCanceledContext(t *testing.T, s provisioner.Store) {
	mustCreate(t, s, "alice", "sub-1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByIdentity(ctx, key("sub-1")); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByIdentity with canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.CreateUser(ctx, newUser("bob"), newIdentity("sub-2")); err == nil {
		t.Error("CreateUser with canceled context succeeded")
	}
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, nil, base); err == nil {
		t.Error("RecordLogin with canceled context succeeded")
	}
	if _, err := s.ListUsers(ctx, 0, 10); err == nil {
		t.Error("ListUsers with canceled context succeeded")
	}
	if _, err := s.UserByIdentity(t.Context(), key("sub-2")); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("user created under canceled context exists (err = %v)", err)
	}
}

const goroutines = 50

// runConcurrently starts n goroutines that wait on a common start signal,
// so they really race, and returns their results.
func runConcurrently(n int, fn func(i int) (provisioner.Result, error)) ([]provisioner.Result, []error) {
	results := make([]provisioner.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return results, errs
}

func testConcurrentSameIdentity(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	p := &provisioner.Provisioner{Store: s}
	claims := provisioner.Claims{
		Issuer: "https://idp.example.com", Subject: "sub-race",
		Email: "race@example.com", EmailVerified: true, Name: "Race",
		Groups: []string{"g"}, Raw: []byte(`{"sub":"sub-race"}`),
	}
	results, errs := runConcurrently(goroutines, func(int) (provisioner.Result, error) {
		return p.Provision(ctx, "corp", provisioner.Policy{Enabled: true}, claims)
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

func testConcurrentDifferentIdentities(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	p := &provisioner.Provisioner{Store: s}
	results, errs := runConcurrently(goroutines, func(i int) (provisioner.Result, error) {
		return p.Provision(ctx, "corp", provisioner.Policy{Enabled: true}, provisioner.Claims{
			Issuer:        "https://idp.example.com",
			Subject:       fmt.Sprintf("sub-%d", i),
			Email:         fmt.Sprintf("user%d@example.com", i),
			EmailVerified: true,
		})
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
