package caddymodule

import (
	"slices"
	"testing"
	"time"
)

// A session is bound by the shortest lifetime in force at any time since
// it was issued: a lengthening after a shortening does not lift the
// shortening's bound from the sessions issued before it.
func TestShortestLifetimeSinceIssue(t *testing.T) {
	const h, s = 3600, int64(time.Second)
	hist := lifetimeHistory{{From: 0, Lifetime: 12 * h}, {From: 100 * s, Lifetime: 1 * h}, {From: 200 * s, Lifetime: 12 * h},
		{From: 300*s + 100, Lifetime: 60}, {From: 300*s + 200, Lifetime: 12 * h}} // a reload undone in its second
	for _, tt := range []struct{ issued, want int64 }{
		{-50, 60}, // before the first record (an upgrade): the first is in force
		{50, 60},
		{100, 60},
		{150, 60},
		{200, 60},
		{250, 60},
		{300, 12 * h}, // the sign-ins of that second are not bound by it
		{301, 12 * h},
	} {
		if got := hist.shortestSince(tt.issued); got != tt.want {
			t.Errorf("issued at %d: %d s, want %d", tt.issued, got, tt.want)
		}
	}
	if got := (lifetimeHistory{}).shortestSince(5); got != 0 {
		t.Errorf("empty history: %d, want 0", got)
	}
}

// with adds a lifetime that is not the one in force, keeps one that is,
// and drops a change once every session it could bound has ended.
func TestLifetimeHistoryWith(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	hist := lifetimeHistory{{From: now.Add(-100 * time.Second).UnixNano(), Lifetime: 3600}}
	if got := hist.with(now, time.Hour); !slices.Equal(got, hist) {
		t.Errorf("the same lifetime again: %v, want %v", got, hist)
	}
	got := hist.with(now, time.Minute)
	if want := append(slices.Clone(hist), lifetimeChange{From: now.UnixNano(), Lifetime: 60}); !slices.Equal(got, want) {
		t.Errorf("shortened: %v, want %v", got, want)
	}
	// Two hours later the 1h change was replaced longer ago than the
	// longest lifetime: no session it bound is left.
	later := now.Add(2 * time.Hour)
	if got := got.with(later, time.Minute); !slices.Equal(got, lifetimeHistory{{From: now.UnixNano(), Lifetime: 60}}) {
		t.Errorf("pruned: %v", got)
	}
}

// Two instances' histories merge in time order; of two changes dated
// alike both are kept, the shorter last (in force from then).
func TestLifetimeHistoriesMerge(t *testing.T) {
	a := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 10, Lifetime: 50}}
	b := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 5, Lifetime: 200}, {From: 10, Lifetime: 70}}
	want := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 5, Lifetime: 200}, {From: 10, Lifetime: 70}, {From: 10, Lifetime: 50}}
	if got := a.merged(b); !slices.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
}
