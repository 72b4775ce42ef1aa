package pgstore

import (
	"testing"
	"time"
)

// TestLeaseTimesAreTheDatabases: a lease taken by an instance whose
// clock is 30 s behind is held for its whole duration against an
// instance whose clock is right, and a lease taken by one whose clock is
// ahead does not outlast its duration, because the lease's times are the
// database's, as the revocations' are. By the instances' own clocks, the
// instance that is ahead took a lease the other had just renewed: both
// ran the refresh pass, redeeming the same refresh tokens, and a
// provider that rotates them refused the second redemption, which ended
// those sessions.
func TestLeaseTimesAreTheDatabases(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	ttl := 15 * time.Second
	at := func(skew time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(skew) }
	}

	s.now = at(-30 * time.Second) // instance A, slow
	if ok, err := s.AcquireLease(ctx, "job", "a", ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(free) for a = %v, %v; want true", ok, err)
	}
	s.now = at(0) // instance B
	if ok, err := s.AcquireLease(ctx, "job", "b", ttl); err != nil || ok {
		t.Errorf("AcquireLease for b, right after a (clock 30 s behind) took it for %s = %v, %v; want false", ttl, ok, err)
	}

	s.now = at(time.Minute) // instance C, fast
	if ok, err := s.AcquireLease(ctx, "other", "c", time.Second); err != nil || !ok {
		t.Fatalf("AcquireLease(free) for c = %v, %v; want true", ok, err)
	}
	time.Sleep(1100 * time.Millisecond)
	s.now = at(0)
	if ok, err := s.AcquireLease(ctx, "other", "b", ttl); err != nil || !ok {
		t.Errorf("AcquireLease for b, once the 1 s lease of c (clock 1 min ahead) has passed = %v, %v; want true", ok, err)
	}
}
