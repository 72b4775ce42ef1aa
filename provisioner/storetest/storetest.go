// Package storetest is a conformance suite for provisioner stores, one
// part per role a store plays (see provisioner.Store): RunUserStore,
// RunRevocations, RunSecondFactors and RunAdmin, and Run for a store that
// plays them all. A store's tests call the parts it implements with a
// constructor that returns a fresh, empty store:
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
// The optional roles have parts of their own, run by the stores that
// play them: RunSingleUse, RunTOTPEnroller, RunUserBatch,
// RunRefreshTokens, RunUsernameRetirer and RunIssuerAdopter.
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
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Run runs every part of the conformance suite: a complete store (as
// both shipped stores are) passes all of them. newStore must return a
// new, empty store for each call and arrange (with t.Cleanup) for it to
// be closed.
func Run(t *testing.T, newStore func(t *testing.T) provisioner.Store) {
	RunUserStore(t, func(t *testing.T) provisioner.UserStore { return newStore(t) })
	RunRevocations(t, func(t *testing.T) provisioner.RevocationStore { return newStore(t) })
	RunSecondFactors(t, func(t *testing.T) UserAndSecondFactors { return newStore(t) })
	RunAdmin(t, func(t *testing.T) UserAndAdmin { return newStore(t) })
	runCases(t, newStore, []testCase[provisioner.Store]{
		// A deleted user's factor goes with it: the admin and second
		// factor roles meet.
		{"TOTPDeletedWithUser", testTOTPDeletedWithUser},
	})
}

// UserAndSecondFactors and UserAndAdmin are what RunSecondFactors and
// RunAdmin test: those roles act on users, so the suite creates the
// users through the store's UserStore.
type (
	UserAndSecondFactors interface {
		provisioner.UserStore
		provisioner.SecondFactorStore
	}
	UserAndAdmin interface {
		provisioner.UserStore
		provisioner.AdminStore
	}
)

// testCase is one named conformance test of a role S.
type testCase[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runCases runs each case as a subtest on a fresh store.
func runCases[S any](t *testing.T, newStore func(t *testing.T) S, cases []testCase[S]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
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

func mustCreate(t *testing.T, s provisioner.UserStore, username, sub string) *provisioner.User {
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

func countUsers(t *testing.T, s provisioner.UserStore) int {
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

func mustUser(t *testing.T, s provisioner.UserStore, id string) *provisioner.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	if err != nil {
		t.Fatalf("User(%s): %v", id, err)
	}
	return u
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
func userGetters(s provisioner.UserStore, u *provisioner.User, sub string) map[string]func(context.Context) (*provisioner.User, error) {
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

// checkUnchanged checks that the user with this ID and its identities
// are as they were.
func checkUnchanged(t *testing.T, s provisioner.UserStore, was *provisioner.User, wasIDs []provisioner.Identity) {
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

// sealed is a stand-in for a sealed TOTP secret: bytes that are not
// valid UTF-8 or JSON, which a store must keep as they are.
var sealed = []byte{0x00, 0xff, 0xfe, 'k', 0x80, 0x00, 0x01}

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
