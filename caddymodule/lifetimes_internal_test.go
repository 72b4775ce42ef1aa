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
	const h = 3600
	hist := lifetimeHistory{{From: 0, Lifetime: 12 * h}, {From: 100, Lifetime: 1 * h}, {From: 200, Lifetime: 12 * h}}
	for _, tt := range []struct{ issued, want int64 }{
		{-50, 1 * h}, // before the first record (an upgrade): the first is in force
		{50, 1 * h},
		{100, 1 * h},
		{150, 1 * h},
		{200, 12 * h},
		{250, 12 * h},
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
	hist := lifetimeHistory{{From: now.Unix() - 100, Lifetime: 3600}}
	if got := hist.with(now, time.Hour); !slices.Equal(got, hist) {
		t.Errorf("the same lifetime again: %v, want %v", got, hist)
	}
	got := hist.with(now, time.Minute)
	if want := append(slices.Clone(hist), lifetimeChange{From: now.Unix(), Lifetime: 60}); !slices.Equal(got, want) {
		t.Errorf("shortened: %v, want %v", got, want)
	}
	// Two hours later the 1h change was replaced longer ago than the
	// longest lifetime: no session it bound is left.
	later := now.Add(2 * time.Hour)
	if got := got.with(later, time.Minute); !slices.Equal(got, lifetimeHistory{{From: now.Unix(), Lifetime: 60}}) {
		t.Errorf("pruned: %v", got)
	}
}

// Two instances' histories merge in time order, and the shorter of two
// changes in one second is kept.
func TestLifetimeHistoriesMerge(t *testing.T) {
	a := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 10, Lifetime: 50}}
	b := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 5, Lifetime: 200}, {From: 10, Lifetime: 70}}
	want := lifetimeHistory{{From: 0, Lifetime: 100}, {From: 5, Lifetime: 200}, {From: 10, Lifetime: 50}}
	if got := a.merged(b); !slices.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
}
