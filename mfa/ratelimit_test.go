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
		{3, 0},
		{4, time.Second},
		{5, 2 * time.Second},
		{6, 4 * time.Second},
		{12, 256 * time.Second},
		{13, 5 * time.Minute},
		{14, 5 * time.Minute},
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
		{"no failures", 0, now, 0},
		{"free failures", 3, now, 0},
		{"just failed", 5, now, 2 * time.Second},
		{"part waited", 5, now.Add(-500 * time.Millisecond), 1500 * time.Millisecond},
		{"waited exactly", 5, now.Add(-2 * time.Second), 0},
		{"waited longer", 5, now.Add(-time.Hour), 0},
		{"capped", 40, now.Add(-time.Minute), 4 * time.Minute},
		{"failure in the future", 5, now.Add(time.Hour), 2 * time.Second},
		{"no failure time", 10, time.Time{}, 0},
	} {
		if got := mfa.Locked(c.failures, c.last, now); got != c.want {
			t.Errorf("%s: Locked(%d, %v) = %v, want %v", c.name, c.failures, c.last, got, c.want)
		}
	}
}
