package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// NotEnabledSince leaves out the active users whose status changed (to
// active, an administrator's enable) at or after the time, and keeps
// disabled users and users whose status never changed.
func testSearchNotEnabledSince(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-a")
	bob := mustCreate(t, s, "bob", "sub-b")
	carol := mustCreate(t, s, "carol", "sub-c")
	for _, c := range []struct {
		id string
		s  provisioner.Status
	}{{bob.ID, provisioner.StatusDisabled}, {bob.ID, provisioner.StatusActive}, {carol.ID, provisioner.StatusDisabled}} {
		if err := s.SetStatus(ctx, c.id, c.s, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		q    provisioner.UserQuery
		want []string
	}{
		{"enabled within the hour", provisioner.UserQuery{NotEnabledSince: time.Now().Add(-time.Hour)}, []string{"alice", "carol"}},
		{"enabled before the time", provisioner.UserQuery{NotEnabledSince: time.Now().Add(time.Hour)}, []string{"alice", "bob", "carol"}},
		{"with the other filters", provisioner.UserQuery{NotEnabledSince: time.Now().Add(-time.Hour), SeenBefore: base.Add(time.Hour), Status: provisioner.StatusActive}, []string{"alice"}},
	} {
		if got := searchNames(t, s, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// inactiveSince is the condition a deprovisioning sweep puts on its
// change: no login since the time.
func inactiveSince(at time.Time) provisioner.UserCondition {
	return func(u *provisioner.User) bool { return u.LastLoginAt.Before(at) }
}

// SetStatusIf runs its condition on the user as stored, and changes the
// status (with reason and time) only when it holds.
func testSetStatusIf(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	var seen *provisioner.User
	err := s.SetStatusIf(ctx, u.ID, provisioner.StatusDisabled, "inactive", func(cur *provisioner.User) bool {
		seen = cur
		return false
	})
	wantErr(t, "SetStatusIf(condition false)", err, provisioner.ErrConditionFailed)
	if seen == nil || seen.ID != u.ID || !sameTime(seen.LastLoginAt, base) {
		t.Errorf("the condition saw %+v, want alice as stored", seen)
	}
	if got := mustUser(t, s, u.ID); got.Status != provisioner.StatusActive || got.StatusReason != "" || !got.StatusChangedAt.IsZero() {
		t.Errorf("after a condition that failed: %s %q %v; want active, unchanged", got.Status, got.StatusReason, got.StatusChangedAt)
	}
	// A login after the time the condition names makes it fail.
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, base.Add(2*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	err = s.SetStatusIf(ctx, u.ID, provisioner.StatusDisabled, "inactive", inactiveSince(base.Add(time.Hour)))
	wantErr(t, "SetStatusIf(signed in since)", err, provisioner.ErrConditionFailed)
	before := time.Now().Add(-time.Second)
	if err := s.SetStatusIf(ctx, u.ID, provisioner.StatusDisabled, "inactive", inactiveSince(base.Add(3*time.Hour))); err != nil {
		t.Fatalf("SetStatusIf(condition true): %v", err)
	}
	got := mustUser(t, s, u.ID)
	if got.Status != provisioner.StatusDisabled || got.StatusReason != "inactive" || got.StatusChangedAt.Before(before) {
		t.Errorf("after SetStatusIf: %s %q %v; want disabled, inactive, about now", got.Status, got.StatusReason, got.StatusChangedAt)
	}
	err = s.SetStatusIf(ctx, "no-such-user", provisioner.StatusDisabled, "", func(*provisioner.User) bool { return true })
	wantErr(t, "SetStatusIf(unknown user)", err, provisioner.ErrNotFound)
	if err := s.SetStatusIf(ctx, u.ID, "gone", "", func(*provisioner.User) bool { return true }); err == nil {
		t.Error("SetStatusIf with an invalid status succeeded")
	}
}

// DeleteUserIf deletes the user with their identities only when its
// condition holds for the user as stored.
func testDeleteUserIf(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	if _, err := s.RecordLogin(ctx, key("sub-1"), nil, base.Add(2*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	err := s.DeleteUserIf(ctx, u.ID, inactiveSince(base.Add(time.Hour)))
	wantErr(t, "DeleteUserIf(signed in since)", err, provisioner.ErrConditionFailed)
	if got, err := s.UserByIdentity(ctx, key("sub-1")); err != nil || got.ID != u.ID {
		t.Errorf("after a condition that failed: UserByIdentity = %+v, %v; want alice", got, err)
	}
	if err := s.DeleteUserIf(ctx, u.ID, inactiveSince(base.Add(3*time.Hour))); err != nil {
		t.Fatalf("DeleteUserIf(condition true): %v", err)
	}
	_, err = s.User(ctx, u.ID)
	wantErr(t, "User(deleted)", err, provisioner.ErrNotFound)
	_, err = s.UserByIdentity(ctx, key("sub-1"))
	wantErr(t, "UserByIdentity(deleted)", err, provisioner.ErrNotFound)
	err = s.DeleteUserIf(ctx, u.ID, func(*provisioner.User) bool { return true })
	wantErr(t, "DeleteUserIf(deleted already)", err, provisioner.ErrNotFound)
}

// A conditional delete and a login of the same user at the same moment
// never both succeed: either the delete saw the login (and spared the
// user) or the login found the user gone. A store that checked the
// condition and deleted in two steps would delete users whose login it
// had just recorded.
func testConditionalDeleteAgainstLogins(t *testing.T, s UserAndAdmin) {
	ctx := t.Context()
	const n = 20
	cutoff := base.Add(time.Hour)
	var users []*provisioner.User
	for i := range n {
		users = append(users, mustCreate(t, s, fmt.Sprintf("user%02d", i), fmt.Sprintf("sub-%02d", i)))
	}
	loggedIn := make([]bool, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.RecordLogin(ctx, key(fmt.Sprintf("sub-%02d", i)), nil, base.Add(2*time.Hour), nil)
			loggedIn[i] = err == nil
		}()
		go func() {
			defer wg.Done()
			if err := s.DeleteUserIf(ctx, u.ID, inactiveSince(cutoff)); err != nil && !errors.Is(err, provisioner.ErrConditionFailed) {
				t.Errorf("DeleteUserIf(%s): %v", u.Username, err)
			}
		}()
	}
	wg.Wait()
	for i, u := range users {
		_, err := s.User(ctx, u.ID)
		if exists := err == nil; loggedIn[i] != exists {
			t.Errorf("%s: login recorded %v, user there after the delete %v (%v)", u.Username, loggedIn[i], exists, err)
		}
	}
}
