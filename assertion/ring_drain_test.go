package assertion

import (
	"testing"
	"time"
)

// signer is an instance that signs with a ring, rereading (and
// rotating) it every min(MaxRereadInterval, period/4) as caddymodule
// does, its ticks offset from the periods so that a key can start
// between two rereads.
type signer struct {
	period, lifetime time.Duration
}

func (s signer) reread() time.Duration { return min(MaxRereadInterval, s.period/4) }

// The instance signs from t0 and stops at each of many times: the ring
// as its last reread stored it keeps every key published until the last
// assertion it can have signed (just before it stopped, with the key
// signing then) has expired and the clock skew allowed has passed, and
// not much longer. This instance (the one that publishes the ring) has
// a period of its own, shorter or longer, which does not count: the
// keys record the lifetime.
func TestAbandonedRingIsPublishedUntilItsLastAssertionExpires(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 17e9, time.UTC)
	for _, s := range []signer{
		{period: time.Hour + 25*time.Second, lifetime: time.Hour},
		{period: 130 * time.Second, lifetime: 2 * time.Minute},
		{period: 10 * time.Minute, lifetime: time.Minute},
	} {
		for _, ours := range []time.Duration{4 * time.Minute, 168 * time.Hour} {
			r, _, err := Rotate(nil, ES256, t0, s.period, s.lifetime)
			if err != nil {
				t.Fatal(err)
			}
			lastReread := t0
			for stop := t0; stop.Before(t0.Add(3 * s.period)); stop = stop.Add(5 * time.Second) {
				for next := lastReread.Add(s.reread()); !next.After(stop); next = next.Add(s.reread()) {
					if r, _, err = Rotate(restore(t, r), ES256, next, s.period, s.lifetime); err != nil {
						t.Fatal(err)
					}
					lastReread = next
				}
				// The last assertion: signed at stop, just before the
				// reread that would have added a successor.
				exp := stop.Add(s.lifetime)
				until := restore(t, r).PublishUntil(ours)
				if until.Before(exp.Add(maxClockSkew)) {
					t.Fatalf("period %s, lifetime %s, stopped %s after start (signing with key %d of %d); published here (period %s) only until %s after its last assertion expires, less than the clock skew allowed (%s)",
						s.period, s.lifetime, stop.Sub(t0), keyIndex(r, r.Signing(stop))+1, len(r.Keys), ours, until.Sub(exp), maxClockSkew)
				}
				// The newest key may not have started: it is at most a
				// period ahead.
				if most := exp.Add(s.period + MaxRereadInterval + maxClockSkew); until.After(most) {
					t.Fatalf("period %s, lifetime %s, stopped %s after start: published here (period %s) %s after its last assertion expired",
						s.period, s.lifetime, stop.Sub(t0), ours, until.Sub(exp))
				}
			}
		}
	}
}

func keyIndex(r *Ring, k *Key) int {
	for i, x := range r.Keys {
		if x == k {
			return i
		}
	}
	return -1
}

// A ring another instance still signs with never drains here: at every
// reread, its newest key is one the instance has not moved past, so its
// keys stay in this instance's JWKS too, whatever this one's period.
func TestRingStillRotatedElsewhereStaysPublished(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	s := signer{period: 2 * time.Minute, lifetime: time.Second}
	r, _, _ := Rotate(nil, EdDSA, t0, s.period, s.lifetime)
	for now := t0; now.Before(t0.Add(time.Hour)); now = now.Add(s.reread()) {
		r, _, _ = Rotate(restore(t, r), EdDSA, now, s.period, s.lifetime)
		// Read here up to a reread interval later, with a one-second
		// period of this instance's own.
		if seen := now.Add(s.reread()); !seen.Before(restore(t, r).PublishUntil(time.Second)) {
			t.Fatalf("%s after start, a ring another instance rotates (period %s) is drained here", seen.Sub(t0), s.period)
		}
	}
}

// Keys stored before lifetimes were kept record none: the period stands
// for it, as retire does, the longest a lifetime could be under it. A
// longer Lifetime on any key, also one that stopped signing, counts.
func TestRingWithoutLifetimesIsPublishedAPeriodAfterItsNewestKey(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	hour := time.Hour
	r, _, _ := Rotate(nil, ES256, t0, hour, 5*time.Minute)
	data := storedWithoutLifetimes(t, r)
	old, err := Unmarshal(data, ES256)
	if err != nil {
		t.Fatal(err)
	}
	newest := old.Keys[len(old.Keys)-1].NotBefore
	if got, want := old.PublishUntil(3*hour), newest.Add(MaxRereadInterval+3*hour+maxClockSkew); !got.Equal(want) {
		t.Fatalf("a ring without lifetimes is published until %s after its newest key starts; want %s", got.Sub(newest), want.Sub(newest))
	}

	old.Keys[0] = old.Keys[0].withLifetime(5 * hour)
	if got, want := old.PublishUntil(3*hour), newest.Add(MaxRereadInterval+5*hour+maxClockSkew); !got.Equal(want) {
		t.Fatalf("with a key that recorded 5h, published until %s after the newest key starts; want %s", got.Sub(newest), want.Sub(newest))
	}
	if !(&Ring{Algorithm: ES256}).PublishUntil(hour).IsZero() || (*Ring)(nil).PublishUntil(hour) != (time.Time{}) {
		t.Fatal("an empty ring is published")
	}
}
