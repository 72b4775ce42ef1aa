package deprovision_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/deprovision"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// now is the sweep's clock: the test moves it, not the wall clock.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addUser creates a user through conn whose last login was ago before now.
func addUser(t *testing.T, s *sqlitestore.Store, name, conn string, ago time.Duration, change func(*provisioner.User)) *provisioner.User {
	t.Helper()
	seen := now.Add(-ago)
	u, err := s.CreateUser(t.Context(), &provisioner.User{Username: name, LastLoginAt: seen},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: conn, Issuer: "https://idp", Subject: name}, LastLoginAt: seen})
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		if u, err = s.UpdateUser(t.Context(), u.ID, func(u *provisioner.User) error { change(u); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func sweep(t *testing.T, s *sqlitestore.Store, p deprovision.Policy, at time.Time) []string {
	t.Helper()
	var got []string
	n, err := deprovision.Sweep(t.Context(), s, p, at, func(u *provisioner.User) { got = append(got, u.Username) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Errorf("Sweep returned %d, acted on %d", n, len(got))
	}
	slices.Sort(got)
	return got
}

func TestSweepChoosesTheInactive(t *testing.T) {
	s := openStore(t)
	day := 24 * time.Hour
	addUser(t, s, "old", "corp", 100*day, nil)
	addUser(t, s, "recent", "corp", 10*day, nil)
	addUser(t, s, "edge", "corp", 90*day, nil) // exactly at the cutoff: not before it
	addUser(t, s, "kept", "corp", 100*day, func(u *provisioner.User) { u.Keep = true })
	addUser(t, s, "admin", "corp", 100*day, func(u *provisioner.User) {
		u.RoleGrants = map[string][]string{provisioner.RoleSourceLocal: {"admin"}}
	})
	addUser(t, s, "mapped", "corp", 100*day, func(u *provisioner.User) {
		u.RoleGrants = map[string][]string{provisioner.ConnectionSource("corp"): {"staff"}}
	})
	addUser(t, s, "elsewhere", "github", 100*day, nil)
	gone := addUser(t, s, "gone", "corp", 100*day, nil)
	if err := s.SetStatus(t.Context(), gone.ID, provisioner.StatusDisabled, "left"); err != nil {
		t.Fatal(err)
	}

	p := deprovision.Policy{Connection: "corp", After: 90 * day, Action: deprovision.Disable}
	if got, want := sweep(t, s, p, now), []string{"mapped", "old"}; !slices.Equal(got, want) {
		t.Errorf("disable sweep acted on %v, want %v", got, want)
	}
	// Eleven days later "recent" is still 1 day short, "edge" is due.
	if got, want := sweep(t, s, p, now.Add(11*day)), []string{"edge", "mapped", "old"}; !slices.Equal(got, want) {
		t.Errorf("disable sweep 11 days later acted on %v, want %v", got, want)
	}
	p.Action = deprovision.Delete
	if got, want := sweep(t, s, p, now), []string{"gone", "mapped", "old"}; !slices.Equal(got, want) {
		t.Errorf("delete sweep acted on %v, want %v (a disabled user is deleted too)", got, want)
	}
	p.IncludeKept, p.IncludeLocalRoles = true, true
	if got, want := sweep(t, s, p, now), []string{"admin", "gone", "kept", "mapped", "old"}; !slices.Equal(got, want) {
		t.Errorf("sweep including kept users and local roles acted on %v, want %v", got, want)
	}
}

func TestSweepPagesThroughTheDirectory(t *testing.T) {
	s := openStore(t)
	n := 4*deprovision.PageSize + 100 // half of them inactive: 450, three pages
	for i := range n {
		ago := 100 * 24 * time.Hour
		if i%2 == 1 {
			ago = time.Hour
		}
		addUser(t, s, fmt.Sprintf("user%04d", i), "corp", ago, nil)
	}
	p := deprovision.Policy{Connection: "corp", After: 24 * time.Hour, Action: deprovision.Delete}
	pages := 0
	// The action deletes as the sweep goes, as jit_auth's does.
	acted, err := deprovision.Sweep(t.Context(), s, p, now, func(u *provisioner.User) {
		if err := s.DeleteUser(t.Context(), u.ID); err != nil {
			t.Error(err)
		}
	}, func() error { pages++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if acted != n/2 {
		t.Errorf("acted on %d users, want %d", acted, n/2)
	}
	if pages != 2 {
		t.Errorf("between was called %d times, want 2 (3 pages)", pages)
	}
	left, err := s.SearchUsers(t.Context(), provisioner.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != n-n/2 {
		t.Errorf("%d users left, want %d", len(left), n-n/2)
	}
	if got := sweep(t, s, p, now); len(got) != 0 {
		t.Errorf("a second sweep acted on %v, want nobody", got)
	}
}

// An administrator's enable restarts the inactivity clock: a user the
// rule disabled and an administrator enabled again is left alone until
// After has passed since the enable, though their last login is as old
// as before.
func TestSweepCountsFromTheLastEnable(t *testing.T) {
	s := openStore(t)
	day := 24 * time.Hour
	u := addUser(t, s, "back", "corp", 100*day, nil)
	addUser(t, s, "old", "corp", 100*day, nil)
	for _, st := range []provisioner.Status{provisioner.StatusDisabled, provisioner.StatusActive} {
		if err := s.SetStatus(t.Context(), u.ID, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	enabled := time.Now() // the store's clock, not the test's
	p := deprovision.Policy{Connection: "corp", After: 90 * day, Action: deprovision.Disable}
	if got, want := sweep(t, s, p, enabled.Add(89*day)), []string{"old"}; !slices.Equal(got, want) {
		t.Errorf("89 days after the enable the sweep acted on %v, want %v", got, want)
	}
	if got, want := sweep(t, s, p, enabled.Add(91*day)), []string{"back", "old"}; !slices.Equal(got, want) {
		t.Errorf("91 days after the enable the sweep acted on %v, want %v", got, want)
	}
}

// The sweep reads a page and then acts on each user of it; one who
// signs in meanwhile is not due any more, and the store's conditional
// change (with DueAt) spares them.
func TestActionSparesAUserWhoSignedInAfterThePage(t *testing.T) {
	s := openStore(t)
	day := 24 * time.Hour
	addUser(t, s, "ann", "corp", 100*day, nil)
	addUser(t, s, "old", "corp", 100*day, nil)
	p := deprovision.Policy{Connection: "corp", After: 90 * day, Action: deprovision.Delete}
	key := provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "ann"}
	if _, err := deprovision.Sweep(t.Context(), s, p, now, func(u *provisioner.User) {
		if u.Username == "ann" {
			if _, err := s.RecordLogin(t.Context(), key, nil, now, nil); err != nil {
				t.Fatal(err)
			}
		}
		err := s.DeleteUserIf(t.Context(), u.ID, p.DueAt(now))
		if want := map[bool]error{true: provisioner.ErrConditionFailed, false: nil}[u.Username == "ann"]; !errors.Is(err, want) {
			t.Errorf("DeleteUserIf(%s) = %v, want %v", u.Username, err, want)
		}
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByIdentity(t.Context(), key); err != nil {
		t.Errorf("ann, who signed in during the sweep: %v", err)
	}
	if got := sweep(t, s, p, now); len(got) != 0 {
		t.Errorf("the next sweep acts on %v, want nobody", got)
	}
}

func TestPolicyCheck(t *testing.T) {
	for _, p := range []deprovision.Policy{
		{Connection: "corp", Action: deprovision.Disable},
		{Connection: "corp", After: -time.Hour, Action: deprovision.Disable},
		{Connection: "corp", After: time.Hour, Action: "archive"},
	} {
		if p.Check() == nil {
			t.Errorf("Check(%+v) = nil, want an error", p)
		}
	}
	if got := (deprovision.Policy{Connection: "corp", After: 90 * 24 * time.Hour}).Reason(); got != "no login for 90d (deprovision of connection corp)" {
		t.Errorf("Reason = %q", got)
	}
}
