package storetest

import (
	"slices"
	"sort"
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
