package storetest

import (
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// RunRevocations runs the part of the suite for
// provisioner.RevocationStore.
func RunRevocations(t *testing.T, newStore func(t *testing.T) provisioner.RevocationStore) {
	runCases(t, newStore, []testCase[provisioner.RevocationStore]{
		{"RevokedSessions", testRevokedSessions},
	})
}

func testRevokedSessions(t *testing.T, s provisioner.RevocationStore) {
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

// RevocationsAndSingleUse is what RunSingleUse tests: a single-use ID is
// a revocation record that every instance must list.
type RevocationsAndSingleUse interface {
	provisioner.RevocationStore
	provisioner.SingleUseStore
}

// RunSingleUse runs the part of the suite for the optional
// provisioner.SingleUseStore.
func RunSingleUse(t *testing.T, newStore func(t *testing.T) RevocationsAndSingleUse) {
	runCases(t, newStore, []testCase[RevocationsAndSingleUse]{
		{"UseOnce", testUseOnce},
		{"UseOnceConcurrently", testUseOnceConcurrently},
	})
}

func testUseOnce(t *testing.T, s RevocationsAndSingleUse) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	use := func(id string, expires time.Time) bool {
		t.Helper()
		first, err := s.UseOnce(ctx, id, expires)
		if err != nil {
			t.Fatalf("UseOnce(%s): %v", id, err)
		}
		return first
	}
	if !use("a", exp) {
		t.Fatal("UseOnce(a) the first time = false, want true")
	}
	if use("a", exp.Add(time.Hour)) {
		t.Error("UseOnce(a) a second time = true, want false")
	}
	if !use("b", exp) {
		t.Error("UseOnce(b) after a = false, want true: IDs are independent")
	}
	// The record is a revocation: the other instances learn of it
	// through RevokedSessions, and a second UseOnce did not extend it.
	rs, err := s.RevokedSessions(ctx, time.Time{})
	if err != nil {
		t.Fatalf("RevokedSessions: %v", err)
	}
	byID := map[string]provisioner.RevokedSession{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	if a, ok := byID["a"]; !ok || a.ExpiresAt.Sub(exp).Abs() > time.Millisecond {
		t.Errorf("RevokedSessions after UseOnce(a): %+v, want a until %v", rs, exp)
	}
	if _, ok := byID["b"]; !ok {
		t.Errorf("RevokedSessions after UseOnce(b): %+v, want b listed", rs)
	}

	// An ID already revoked is used.
	if err := s.RevokeSession(ctx, "revoked", exp); err != nil {
		t.Fatalf("RevokeSession(revoked): %v", err)
	}
	if use("revoked", exp) {
		t.Error("UseOnce of an ID RevokeSession recorded = true, want false")
	}

	// A record whose expiry has passed no longer counts.
	if !use("short", time.Now().Add(time.Second)) {
		t.Fatal("UseOnce(short) = false, want true")
	}
	time.Sleep(1100 * time.Millisecond)
	if !use("short", exp) {
		t.Error("UseOnce(short) after its record expired = false, want true")
	}
	if use("short", exp) {
		t.Error("UseOnce(short) again = true, want false")
	}

	for _, bad := range []struct {
		id  string
		exp time.Time
	}{{"", exp}, {"zero", time.Time{}}} {
		if first, err := s.UseOnce(ctx, bad.id, bad.exp); err == nil || first {
			t.Errorf("UseOnce(%q, %v) = %v, %v; want an error", bad.id, bad.exp, first, err)
		}
	}
}

func testUseOnceConcurrently(t *testing.T, s RevocationsAndSingleUse) {
	const callers = 16
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	results := make([]bool, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.UseOnce(t.Context(), "contended", exp)
		})
	}
	close(start)
	wg.Wait()
	firsts := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("UseOnce from caller %d: %v", i, errs[i])
		}
		if results[i] {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d concurrent UseOnce calls for one ID: %d got true, want exactly 1", callers, firsts)
	}
}
