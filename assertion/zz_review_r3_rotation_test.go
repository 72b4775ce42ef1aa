package assertion

import (
	"testing"
	"time"
)

// published reports whether the ring publishes (and so the JWKS lists)
// the key with this kid.
func published(r *Ring, kid string) bool {
	for _, k := range r.Keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// Two instances share Caddy's storage and start at once against a
// storage with no ring yet (a first deployment of `assertion` on a
// cluster). Instance A makes the ring and starts signing with its first
// key; instance B, whose clock is two seconds behind A's (well within
// what NTP-synced hosts drift apart under load, and the same happens
// with a sub-second skew when A's key was made just after a second
// ticked over, since NotBefore is truncated to the second), rereads the
// ring under the storage lock and finds no key that has started by its
// clock.
//
// Today: Rotate treats that as "a ring that lost its current key",
// makes a new one and drops A's keys, and B stores that ring. A keeps
// signing with its key (it rereads only every minute), but that key is
// no longer published by B, nor by A after its reread: an upstream whose
// JWKS fetch goes through the load balancer to B refuses every assertion
// A signs for up to a minute plus the assertion lifetime, and one that
// caches B's JWKS refuses them outright.
//
// Should: a key another instance may be signing with stays published; a
// ring whose keys all start in the near future (clock skew) keeps them
// (sign with a new key until theirs starts, or treat a key starting
// within a small skew as current) rather than dropping them.
//
// Severity: low. Assertions of one instance fail verification at
// upstreams for about a minute after a first start (or after a clock
// step back); it heals by itself and fails closed.
func TestReviewR3RotateKeepsAKeyAnotherInstanceSignsWith(t *testing.T) {
	period := 168 * time.Hour
	clockA := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ringA, _, err := Rotate(nil, ES256, clockA, period)
	if err != nil {
		t.Fatal(err)
	}
	signingA := ringA.Signing(clockA)
	data, err := ringA.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := Unmarshal(data, ES256)
	if err != nil {
		t.Fatal(err)
	}

	clockB := clockA.Add(-2 * time.Second)
	ringB, changed, err := Rotate(stored, ES256, clockB, period)
	if err != nil {
		t.Fatal(err)
	}
	if !published(ringB, signingA.ID) {
		t.Errorf("instance B (clock 2 s behind) rewrote the ring (changed=%v) without the key instance A signs with now (%s): "+
			"A's assertions no longer verify against the JWKS B serves, and after A's next reread not against A's either", changed, signingA.ID)
	}
}

// An operator shortens assertion_key_rotation from the default week to
// an hour (say, after a policy change or a suspected key exposure) and
// reloads Caddy. The README says the option is "how often the key that
// signs identity assertions is replaced".
//
// Today: the ring read from storage keeps the next key made under the
// old period (starting a week after the current one), Rotate with the
// new period sees a current key and a next one and changes nothing, so
// the same key keeps signing for up to a week, whatever the new period.
//
// Should: once the new period has passed since the current key started
// signing, another key signs (the next key has been published since the
// current one started, so moving its start earlier keeps the promise
// that a key is published a period before it signs).
//
// Severity: low. A shortened rotation period takes effect only after
// the old period: a key an operator means to retire hourly signs for a
// week.
func TestReviewR3ShortenedRotationPeriodTakesEffect(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ring, _, err := Rotate(nil, ES256, t0, 168*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first := ring.Signing(t0)

	// Reloaded with assertion_key_rotation 1h; the instance rereads the
	// ring every quarter of the period, so Rotate runs throughout.
	now := t0
	for now.Before(t0.Add(3 * time.Hour)) {
		now = now.Add(15 * time.Minute)
		next, _, err := Rotate(ring, ES256, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ring = next
	}
	if got := ring.Signing(now); got == first {
		t.Errorf("three hours after assertion_key_rotation was set to 1h the first key (signing since %s) still signs; the next key starts at %s",
			first.NotBefore.Format(time.RFC3339), ring.Keys[len(ring.Keys)-1].NotBefore.Format(time.RFC3339))
	}
}
