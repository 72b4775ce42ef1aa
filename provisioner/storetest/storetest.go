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
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/mfa"
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
		{"UsernameWithSeparator", testUsernameWithSeparator},
		{"DuplicateIdentity", testDuplicateIdentity},
		{"RecordLogin", testRecordLogin},
		{"RecordLoginNilUpdate", testRecordLoginNilUpdate},
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
		{"TOTPRoundTrip", testTOTPRoundTrip},
		{"SetTOTPMissingUser", testSetTOTPMissingUser},
		{"TOTPReplay", testTOTPReplay},
		{"TOTPConcurrentStep", testTOTPConcurrentStep},
		{"RecoveryCode", testRecoveryCode},
		{"RecoveryCodeConcurrent", testRecoveryCodeConcurrent},
		{"TOTPFailures", testTOTPFailures},
		{"TOTPAttemptsConcurrent", testTOTPAttemptsConcurrent},
		{"DeleteTOTP", testDeleteTOTP},
		{"TOTPDeletedWithUser", testTOTPDeletedWithUser},
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

// A local username never contains ':', which JIT-off session names use
// after their connection: "partner:ceo" must stay someone else's.
func testUsernameWithSeparator(t *testing.T, s provisioner.Store) {
	if _, err := s.CreateUser(t.Context(), newUser("partner:ceo"), newIdentity("sub-1")); err == nil {
		t.Error("CreateUser(partner:ceo) succeeded")
	}
	if n := countUsers(t, s); n != 0 {
		t.Errorf("users = %d, want 0", n)
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

// setProfile returns an UpdateFunc that sets the profile fields to
// those of p.
func setProfile(p *provisioner.User) provisioner.UpdateFunc {
	return func(u *provisioner.User) error {
		u.Email, u.EmailVerified = p.Email, p.EmailVerified
		u.Name, u.GivenName, u.FamilyName = p.Name, p.GivenName, p.FamilyName
		u.Picture, u.Groups, u.Attributes = p.Picture, p.Groups, p.Attributes
		return nil
	}
}

func testRecordLogin(t *testing.T, s provisioner.Store) {
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

func mustUser(t *testing.T, s provisioner.Store, id string) *provisioner.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	if err != nil {
		t.Fatalf("User(%s): %v", id, err)
	}
	return u
}

func testRecordLoginNilUpdate(t *testing.T, s provisioner.Store) {
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

func testRecordLoginMissing(t *testing.T, s provisioner.Store) {
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

const goroutines = 50

// silentPolicy is a validated JIT policy with every option at its default.
func silentPolicy(t *testing.T) *provisioner.Policy {
	t.Helper()
	pol := &provisioner.Policy{Enabled: true}
	if err := pol.Validate(); err != nil {
		t.Fatalf("Policy.Validate: %v", err)
	}
	return pol
}

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

func testConcurrentDifferentIdentities(t *testing.T, s provisioner.Store) {
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

// errVeto is the error the tests' UpdateFuncs refuse with.
var errVeto = errors.New("storetest: update vetoed")

// grantsEqual treats nil and empty as equal, for the map and its lists.
func grantsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// checkPolicyFields compares RoleGrants, LocalAttributes and Consents,
// treating nil and empty as equal and consent times at microsecond
// precision; consent times must come back in UTC.
func checkPolicyFields(t *testing.T, got, want *provisioner.User) {
	t.Helper()
	if !grantsEqual(got.RoleGrants, want.RoleGrants) {
		t.Errorf("RoleGrants = %v, want %v", got.RoleGrants, want.RoleGrants)
	}
	if !slices.Equal(got.LocalAttributes, want.LocalAttributes) {
		t.Errorf("LocalAttributes = %q, want %q", got.LocalAttributes, want.LocalAttributes)
	}
	if len(got.Consents) != len(want.Consents) {
		t.Errorf("Consents = %v, want %v", got.Consents, want.Consents)
		return
	}
	for conn, w := range want.Consents {
		g, ok := got.Consents[conn]
		if !ok || !slices.Equal(g.Attributes, w.Attributes) || !sameTime(g.At, w.At) {
			t.Errorf("Consents[%q] = %+v (present %v), want %+v", conn, g, ok, w)
			continue
		}
		if g.At.Location() != time.UTC {
			t.Errorf("Consents[%q].At = %v, not in UTC", conn, g.At)
		}
	}
}

// policyUser is newUser with role grants, local attributes and consents.
func policyUser(username string) *provisioner.User {
	u := newUser(username)
	u.RoleGrants = map[string][]string{
		provisioner.RoleSourceLocal:          {"admin", "auditor"},
		provisioner.ConnectionSource("corp"): {"staff", "admin"},
	}
	u.LocalAttributes = []string{"name", "picture"}
	zone := time.FixedZone("X", -(3*3600 + 30*60))
	u.Consents = map[string]provisioner.Consent{
		"corp":   {Attributes: []string{"email", "groups"}, At: time.Date(2025, 3, 4, 1, 2, 3, 654321000, zone)},
		"github": {Attributes: []string{"email"}, At: base},
	}
	return u
}

// userGetters returns every way to read one user back from s.
func userGetters(s provisioner.Store, u *provisioner.User, sub string) map[string]func(context.Context) (*provisioner.User, error) {
	return map[string]func(context.Context) (*provisioner.User, error){
		"User":           func(ctx context.Context) (*provisioner.User, error) { return s.User(ctx, u.ID) },
		"UserByIdentity": func(ctx context.Context) (*provisioner.User, error) { return s.UserByIdentity(ctx, key(sub)) },
		"UserByUsername": func(ctx context.Context) (*provisioner.User, error) { return s.UserByUsername(ctx, u.Username) },
		"UsersByEmail": func(ctx context.Context) (*provisioner.User, error) {
			us, err := s.UsersByEmail(ctx, u.Email)
			if err != nil || len(us) != 1 {
				return nil, fmt.Errorf("UsersByEmail = %v, %v; want one user", us, err)
			}
			return &us[0], nil
		},
		"ListUsers": func(ctx context.Context) (*provisioner.User, error) {
			us, err := s.ListUsers(ctx, 0, 100)
			if err != nil {
				return nil, err
			}
			for i := range us {
				if us[i].ID == u.ID {
					return &us[i], nil
				}
			}
			return nil, fmt.Errorf("user %s not listed", u.ID)
		},
	}
}

func testPolicyFieldsRoundTrip(t *testing.T, s provisioner.Store) {
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

func testUserRoles(t *testing.T, s provisioner.Store) {
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
func testRecordLoginUpdate(t *testing.T, s provisioner.Store) {
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

// checkUnchanged checks that the user with this ID and its identities
// are as they were.
func checkUnchanged(t *testing.T, s provisioner.Store, was *provisioner.User, wasIDs []provisioner.Identity) {
	t.Helper()
	got := mustUser(t, s, was.ID)
	checkProfile(t, got, was)
	checkPolicyFields(t, got, was)
	checkTime(t, "UpdatedAt", got.UpdatedAt, was.UpdatedAt)
	checkTime(t, "LastLoginAt", got.LastLoginAt, was.LastLoginAt)
	ids, err := s.Identities(t.Context(), was.ID)
	if err != nil {
		t.Fatalf("Identities: %v", err)
	}
	if len(ids) != len(wasIDs) {
		t.Fatalf("Identities = %+v, want %+v", ids, wasIDs)
	}
	for i := range ids {
		if ids[i].IdentityKey != wasIDs[i].IdentityKey || !sameJSON(ids[i].RawClaims, wasIDs[i].RawClaims) {
			t.Errorf("identity %d = %+v, want %+v", i, ids[i], wasIDs[i])
		}
		checkTime(t, "identity LastLoginAt", ids[i].LastLoginAt, wasIDs[i].LastLoginAt)
	}
}

// vetoAfterChanging changes every field it may, then refuses.
func vetoAfterChanging(u *provisioner.User) error {
	u.Email, u.Name, u.Picture = "changed@example.com", "Changed", "https://example.com/changed.png"
	u.Groups = append(u.Groups, "changed")
	u.Attributes["department"] = "changed"
	u.RoleGrants[provisioner.RoleSourceLocal] = []string{"changed"}
	u.LocalAttributes = nil
	u.Consents = nil
	return fmt.Errorf("wrapped: %w", errVeto)
}

// testUpdateErrorRollsBack: an UpdateFunc's error aborts the whole
// transaction (nothing written, not even the login or the link) and is
// returned unchanged.
func testUpdateErrorRollsBack(t *testing.T, s provisioner.Store) {
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
func testUpdateIgnoredFields(t *testing.T, s provisioner.Store) {
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

func testUpdateUser(t *testing.T, s provisioner.Store) {
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

func testUpdateUserNotFound(t *testing.T, s provisioner.Store) {
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
func testUpdatePanicReleases(t *testing.T, s provisioner.Store) {
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
func testConcurrentUpdates(t *testing.T, s provisioner.Store) {
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

func testUsersByEmail(t *testing.T, s provisioner.Store) {
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
func testLinkIdentityUpdate(t *testing.T, s provisioner.Store) {
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

// sealed is a stand-in for a sealed TOTP secret: bytes that are not
// valid UTF-8 or JSON, which a store must keep as they are.
var sealed = []byte{0x00, 0xff, 0xfe, 'k', 0x80, 0x00, 0x01}

func mustSetTOTP(t *testing.T, s provisioner.Store, userID string, tf provisioner.TOTP) {
	t.Helper()
	if err := s.SetTOTP(t.Context(), userID, tf); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
}

func mustTOTP(t *testing.T, s provisioner.Store, userID string) *provisioner.TOTP {
	t.Helper()
	tf, err := s.TOTP(t.Context(), userID)
	if err != nil {
		t.Fatalf("TOTP: %v", err)
	}
	return tf
}

func testTOTPRoundTrip(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	_, err := s.TOTP(ctx, u.ID)
	wantErr(t, "TOTP(not enrolled)", err, provisioner.ErrNotFound)

	in := provisioner.TOTP{
		SealedSecret:   sealed,
		RecoveryHashes: []string{"h1", "h2", "h3"},
		LastStep:       58000000,
		Failures:       2,
		LastFailure:    base.Add(time.Minute),
		CreatedAt:      base,
	}
	mustSetTOTP(t, s, u.ID, in)
	got := mustTOTP(t, s, u.ID)
	if !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("SealedSecret = %x, want %x", got.SealedSecret, sealed)
	}
	if !slices.Equal(got.RecoveryHashes, in.RecoveryHashes) {
		t.Errorf("RecoveryHashes = %q, want %q", got.RecoveryHashes, in.RecoveryHashes)
	}
	if got.LastStep != in.LastStep || got.Failures != in.Failures {
		t.Errorf("LastStep, Failures = %d, %d; want %d, %d", got.LastStep, got.Failures, in.LastStep, in.Failures)
	}
	checkTime(t, "LastFailure", got.LastFailure, in.LastFailure)
	checkTime(t, "CreatedAt", got.CreatedAt, in.CreatedAt)
	_, err = s.TOTP(ctx, other.ID)
	wantErr(t, "TOTP(other user)", err, provisioner.ErrNotFound)

	// Enrolling again replaces the factor; a zero CreatedAt means now.
	before := time.Now()
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: []byte("second"), RecoveryHashes: []string{"h9"}})
	after := time.Now()
	got = mustTOTP(t, s, u.ID)
	if string(got.SealedSecret) != "second" || !slices.Equal(got.RecoveryHashes, []string{"h9"}) ||
		got.LastStep != 0 || got.Failures != 0 || !got.LastFailure.IsZero() {
		t.Errorf("replaced factor = %+v", got)
	}
	checkBetween(t, "CreatedAt", got.CreatedAt, before, after)

	// Without recovery codes.
	mustSetTOTP(t, s, other.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	if got := mustTOTP(t, s, other.ID); len(got.RecoveryHashes) != 0 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("factor without recovery codes = %+v", got)
	}
}

func testSetTOTPMissingUser(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-1")
	const missing = "00000000-0000-4000-8000-000000000000"
	err := s.SetTOTP(ctx, missing, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	wantErr(t, "SetTOTP(missing user)", err, provisioner.ErrNotFound)
	_, err = s.TOTP(ctx, missing)
	wantErr(t, "TOTP(missing user)", err, provisioner.ErrNotFound)
}

func testTOTPReplay(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	err := s.UseTOTPStep(ctx, u.ID, 100)
	wantErr(t, "UseTOTPStep(not enrolled)", err, provisioner.ErrNotFound)

	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 99, CreatedAt: base})
	wantErr(t, "UseTOTPStep(the enrolled last step)", s.UseTOTPStep(ctx, u.ID, 99), provisioner.ErrCodeUsed)
	if err := s.UseTOTPStep(ctx, u.ID, 100); err != nil {
		t.Fatalf("UseTOTPStep(100): %v", err)
	}
	wantErr(t, "UseTOTPStep(100 again)", s.UseTOTPStep(ctx, u.ID, 100), provisioner.ErrCodeUsed)
	wantErr(t, "UseTOTPStep(older 98)", s.UseTOTPStep(ctx, u.ID, 98), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).LastStep; got != 100 {
		t.Errorf("LastStep = %d, want 100", got)
	}
	if err := s.UseTOTPStep(ctx, u.ID, 102); err != nil {
		t.Fatalf("UseTOTPStep(102): %v", err)
	}
	wantErr(t, "UseTOTPStep(101 after 102)", s.UseTOTPStep(ctx, u.ID, 101), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID); got.LastStep != 102 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("factor = %+v, want LastStep 102 and the secret kept", got)
	}
}

// testTOTPConcurrentStep: of many simultaneous uses of one code, exactly
// one is accepted.
func testTOTPConcurrentStep(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 10, CreatedAt: base})
	const n = 20
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		return provisioner.Result{}, s.UseTOTPStep(ctx, u.ID, 11)
	})
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, provisioner.ErrCodeUsed):
			t.Errorf("goroutine %d: err = %v, want nil or ErrCodeUsed", i, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent uses of one step accepted, want exactly 1", accepted, n)
	}
	if got := mustTOTP(t, s, u.ID).LastStep; got != 11 {
		t.Errorf("LastStep = %d, want 11", got)
	}
}

func testRecoveryCode(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	wantErr(t, "UseRecoveryCode(not enrolled)", s.UseRecoveryCode(ctx, u.ID, "h1"), provisioner.ErrNotFound)
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1", "h2", "h3"},
		LastStep: 7, Failures: 4, LastFailure: base, CreatedAt: base})

	if err := s.UseRecoveryCode(ctx, u.ID, "h2"); err != nil {
		t.Fatalf("UseRecoveryCode(h2): %v", err)
	}
	got := mustTOTP(t, s, u.ID)
	if !slices.Equal(got.RecoveryHashes, []string{"h1", "h3"}) {
		t.Errorf("RecoveryHashes after using h2 = %q, want [h1 h3]", got.RecoveryHashes)
	}
	if got.Failures != 0 || got.LastStep != 7 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("after a recovery code: %+v, want Failures 0, LastStep 7, the secret kept", got)
	}
	wantErr(t, "UseRecoveryCode(h2 again)", s.UseRecoveryCode(ctx, u.ID, "h2"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(unknown)", s.UseRecoveryCode(ctx, u.ID, "nope"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(prefix)", s.UseRecoveryCode(ctx, u.ID, "h"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(empty)", s.UseRecoveryCode(ctx, u.ID, ""), provisioner.ErrCodeUsed)
	for _, h := range []string{"h1", "h3"} {
		if err := s.UseRecoveryCode(ctx, u.ID, h); err != nil {
			t.Fatalf("UseRecoveryCode(%s): %v", h, err)
		}
	}
	if got := mustTOTP(t, s, u.ID).RecoveryHashes; len(got) != 0 {
		t.Errorf("RecoveryHashes after using all = %q, want none", got)
	}
	wantErr(t, "UseRecoveryCode(none left)", s.UseRecoveryCode(ctx, u.ID, "h1"), provisioner.ErrCodeUsed)

	// Another user's codes are theirs.
	bob := mustCreate(t, s, "bob", "sub-2")
	mustSetTOTP(t, s, bob.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"hb"}, CreatedAt: base})
	wantErr(t, "UseRecoveryCode(bob's code for alice)", s.UseRecoveryCode(ctx, u.ID, "hb"), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, bob.ID).RecoveryHashes; !slices.Equal(got, []string{"hb"}) {
		t.Errorf("bob's RecoveryHashes = %q, want [hb]", got)
	}
}

// testRecoveryCodeConcurrent: of many simultaneous uses of one recovery
// code, exactly one is accepted, and the other codes stay.
func testRecoveryCodeConcurrent(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1", "h2", "h3"}, CreatedAt: base})
	const n = 20
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		return provisioner.Result{}, s.UseRecoveryCode(ctx, u.ID, "h2")
	})
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, provisioner.ErrCodeUsed):
			t.Errorf("goroutine %d: err = %v, want nil or ErrCodeUsed", i, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent uses of one recovery code accepted, want exactly 1", accepted, n)
	}
	if got := mustTOTP(t, s, u.ID).RecoveryHashes; !slices.Equal(got, []string{"h1", "h3"}) {
		t.Errorf("RecoveryHashes = %q, want [h1 h3]", got)
	}
}

func testTOTPFailures(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	admitAll := func(int, time.Time, time.Time) time.Duration { return 0 }
	_, _, err := s.AdmitTOTPAttempt(ctx, u.ID, base, admitAll)
	wantErr(t, "AdmitTOTPAttempt(not enrolled)", err, provisioner.ErrNotFound)
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1"}, LastStep: 5, CreatedAt: base})

	// The policy sees the stored count and time and the attempt's time;
	// an admitted attempt is counted at its time.
	admit := func(at time.Time, want int) {
		t.Helper()
		before := mustTOTP(t, s, u.ID)
		var saw bool
		n, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, at, func(attempts int, last, now time.Time) time.Duration {
			saw = true
			if attempts != before.Failures || !last.Equal(before.LastFailure) || !now.Equal(at) {
				t.Errorf("policy called with (%d, %v, %v), want (%d, %v, %v)", attempts, last, now, before.Failures, before.LastFailure, at)
			}
			return 0
		})
		if err != nil || wait != 0 || n != want || !saw {
			t.Fatalf("AdmitTOTPAttempt = %d, %v, %v (policy run: %v), want %d, 0, nil", n, wait, err, saw, want)
		}
		got := mustTOTP(t, s, u.ID)
		if got.Failures != want {
			t.Errorf("stored Failures = %d, want %d", got.Failures, want)
		}
		checkTime(t, "LastFailure", got.LastFailure, at)
	}
	for i := 1; i <= 3; i++ {
		admit(base.Add(time.Duration(i)*time.Minute), i)
	}
	if got := mustTOTP(t, s, u.ID); got.LastStep != 5 || !slices.Equal(got.RecoveryHashes, []string{"h1"}) {
		t.Errorf("attempts changed the factor: %+v", got)
	}
	// An attempt the policy refuses returns its wait and is not counted.
	n, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Hour), func(int, time.Time, time.Time) time.Duration { return 7 * time.Second })
	if err != nil || wait != 7*time.Second || n != 3 {
		t.Fatalf("refused AdmitTOTPAttempt = %d, %v, %v, want 3, 7s, nil", n, wait, err)
	}
	if got := mustTOTP(t, s, u.ID); got.Failures != 3 {
		t.Errorf("Failures after a refused attempt = %d, want 3", got.Failures)
	} else {
		checkTime(t, "LastFailure after a refused attempt", got.LastFailure, base.Add(3*time.Minute))
	}

	// A refused code does not reset the count; an accepted one does.
	wantErr(t, "UseTOTPStep(old)", s.UseTOTPStep(ctx, u.ID, 5), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).Failures; got != 3 {
		t.Errorf("Failures after a refused step = %d, want 3", got)
	}
	if err := s.UseTOTPStep(ctx, u.ID, 6); err != nil {
		t.Fatalf("UseTOTPStep: %v", err)
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != 0 {
		t.Errorf("Failures after an accepted step = %d, want 0", got)
	}
	admit(base.Add(time.Hour), 1)
	admit(base.Add(2*time.Hour), 2)
	wantErr(t, "UseRecoveryCode(unknown)", s.UseRecoveryCode(ctx, u.ID, "nope"), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).Failures; got != 2 {
		t.Errorf("Failures after an unknown recovery code = %d, want 2", got)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, "h1"); err != nil {
		t.Fatalf("UseRecoveryCode: %v", err)
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != 0 {
		t.Errorf("Failures after a recovery code = %d, want 0", got)
	}

	// Concurrent attempts admitted by the policy are all counted.
	const burst = 20
	_, errs := runConcurrently(burst, func(int) (provisioner.Result, error) {
		_, _, err := s.AdmitTOTPAttempt(ctx, u.ID, base, admitAll)
		return provisioner.Result{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != burst {
		t.Errorf("Failures after %d concurrent admitted attempts = %d", burst, got)
	}
}

// testTOTPAttemptsConcurrent: a burst of attempts at one instant, with
// the module's policy (3 free, then a wait), admits exactly 3, however
// the store's callers interleave; the rest are refused with a wait and
// not counted.
func testTOTPAttemptsConcurrent(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 5, CreatedAt: base})
	const n = 30
	var admitted, refused atomic.Int32
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		_, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base, mfa.Locked)
		switch {
		case err != nil:
		case wait == 0:
			admitted.Add(1)
		case wait > 0:
			refused.Add(1)
		}
		return provisioner.Result{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if admitted.Load() != 3 || refused.Load() != n-3 {
		t.Errorf("of %d concurrent attempts %d admitted and %d refused, want 3 and %d", n, admitted.Load(), refused.Load(), n-3)
	}
	if got := mustTOTP(t, s, u.ID); got.Failures != 3 {
		t.Errorf("Failures after the burst = %d, want 3 (refused attempts are not counted)", got.Failures)
	}
	// The wait passed, one more is admitted; then the wait doubles.
	if _, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Second), mfa.Locked); err != nil || wait != 0 {
		t.Errorf("attempt after the wait: %v, %v, want admitted", wait, err)
	}
	if _, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Second), mfa.Locked); err != nil || wait != 2*time.Second {
		t.Errorf("next attempt at once: %v, %v, want a 2s wait", wait, err)
	}
}

func testDeleteTOTP(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Errorf("DeleteTOTP(not enrolled): %v", err)
	}
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	mustSetTOTP(t, s, other.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	_, err := s.TOTP(ctx, u.ID)
	wantErr(t, "TOTP(deleted)", err, provisioner.ErrNotFound)
	wantErr(t, "UseTOTPStep(deleted)", s.UseTOTPStep(ctx, u.ID, 1), provisioner.ErrNotFound)
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Errorf("DeleteTOTP(again): %v", err)
	}
	if err := s.DeleteTOTP(ctx, "00000000-0000-4000-8000-000000000000"); err != nil {
		t.Errorf("DeleteTOTP(missing user): %v", err)
	}
	mustTOTP(t, s, other.ID)
	if got := mustUser(t, s, u.ID); got.Username != "alice" {
		t.Errorf("user after DeleteTOTP = %+v", got)
	}
	// Enrolling afresh works.
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: []byte("new"), CreatedAt: base})
	if got := mustTOTP(t, s, u.ID); string(got.SealedSecret) != "new" {
		t.Errorf("re-enrolled factor = %+v", got)
	}
}

// testTOTPDeletedWithUser: deleting a user deletes its factor, so a user
// re-created later does not inherit it.
func testTOTPDeletedWithUser(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1"}, CreatedAt: base})
	mustSetTOTP(t, s, other.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.TOTP(ctx, u.ID)
	wantErr(t, "TOTP(deleted user)", err, provisioner.ErrNotFound)
	wantErr(t, "UseRecoveryCode(deleted user)", s.UseRecoveryCode(ctx, u.ID, "h1"), provisioner.ErrNotFound)
	err = s.SetTOTP(ctx, u.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	wantErr(t, "SetTOTP(deleted user)", err, provisioner.ErrNotFound)
	mustTOTP(t, s, other.ID)
}
