package mfa_test

import (
	"math"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/mfa"
)

func TestDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{
		{math.MinInt, 0},
		{-1, 0},
		{0, 0},
		{1, 0},
		{2, 0},
		{3, time.Second},
		{4, 2 * time.Second},
		{5, 4 * time.Second},
		{11, 256 * time.Second},
		{12, 5 * time.Minute},
		{13, 5 * time.Minute},
		{70, 5 * time.Minute},
		{math.MaxInt, 5 * time.Minute},
	} {
		if got := mfa.Delay(c.failures); got != c.want {
			t.Errorf("Delay(%d) = %v, want %v", c.failures, got, c.want)
		}
	}
	prev := time.Duration(0)
	for f := range 1000 {
		d := mfa.Delay(f)
		if d < prev || d > 5*time.Minute {
			t.Fatalf("Delay(%d) = %v after %v: not growing within the cap", f, d, prev)
		}
		prev = d
	}
}

func TestLocked(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, c := range []struct {
		name     string
		failures int
		last     time.Time
		want     time.Duration
	}{
		{"no attempts", 0, now, 0},
		{"free attempts", 2, now, 0},
		{"fourth at once", 3, now, time.Second},
		{"fourth a second later", 3, now.Add(-time.Second), 0},
		{"just failed", 4, now, 2 * time.Second},
		{"part waited", 4, now.Add(-500 * time.Millisecond), 1500 * time.Millisecond},
		{"waited exactly", 4, now.Add(-2 * time.Second), 0},
		{"waited longer", 4, now.Add(-time.Hour), 0},
		{"capped", 40, now.Add(-time.Minute), 4 * time.Minute},
		{"failure in the future", 4, now.Add(time.Hour), 2 * time.Second},
		{"no failure time", 10, time.Time{}, 0},
	} {
		if got := mfa.Locked(c.failures, c.last, now); got != c.want {
			t.Errorf("%s: Locked(%d, %v) = %v, want %v", c.name, c.failures, c.last, got, c.want)
		}
	}
}

// TestLockedAdmitsThreeAtOnce runs the policy as a store does, one
// attempt after another at one instant: an attempt let through is
// counted (at now), a refused one is not. Of any burst, 3 get through;
// one at a time, the 4th at once is refused and waits a second.
func TestLockedAdmitsThreeAtOnce(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	attempts, last := 0, time.Time{}
	admit := func(at time.Time) time.Duration {
		if wait := mfa.Locked(attempts, last, at); wait > 0 {
			return wait
		}
		attempts, last = attempts+1, at
		return 0
	}
	admitted := 0
	for range 100 {
		if admit(now) == 0 {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("%d of a burst of 100 admitted, want 3", admitted)
	}
	if wait := admit(now); wait != time.Second {
		t.Errorf("the 4th attempt at once waits %v, want 1s", wait)
	}
	if wait := admit(now.Add(time.Second)); wait != 0 {
		t.Errorf("the 4th attempt a second later waits %v, want 0", wait)
	}
	if wait := admit(now.Add(time.Second)); wait != 2*time.Second {
		t.Errorf("the 5th attempt at once waits %v, want 2s", wait)
	}
}
