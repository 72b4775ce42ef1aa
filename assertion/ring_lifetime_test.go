package assertion

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// restore is the ring as another pass reads it back from storage.
func restore(t *testing.T, r *Ring) *Ring {
	t.Helper()
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data, r.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// The operator runs with assertion_key_rotation 1h and assertions valid
// for 1h, then reloads with 4m and 1m. An assertion the old key signed
// just before the reload is valid for an hour more: the old key stays in
// the JWKS until an hour (and the clock skew allowed) has passed since it
// last could sign, then goes; the shorter settings do not cut that short.
func TestShortenedPeriodAndLifetimeKeepTheOldKeyUntilItsAssertionsExpire(t *testing.T) {
	hour := time.Hour
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, err := Rotate(nil, ES256, t0, hour, hour)
	if err != nil {
		t.Fatal(err)
	}
	old := r.Signing(t0)

	reload := t0.Add(10 * time.Minute)
	period, lifetime := 4*time.Minute, time.Minute
	r, changed, err := Rotate(restore(t, r), ES256, reload, period, lifetime)
	if err != nil || !changed {
		t.Fatalf("the reload with a shorter period changed nothing: %v", err)
	}
	if r.Signing(reload).ID == old.ID {
		t.Fatal("the old key still signs after the reload to a 4m period, ten minutes after it started")
	}
	// The old key signed until its successor started: an assertion it
	// signed then is valid for the old hour.
	stopped := r.Keys[1].NotBefore
	if r.Keys[0].ID != old.ID || stopped.After(reload) {
		t.Fatalf("the old key stopped signing at %s; the reload was at %s", stopped, reload)
	}
	if _, again, _ := Rotate(restore(t, r), ES256, reload.Add(time.Minute), period, lifetime); again {
		t.Fatal("the pass after the reload writes the ring again, though nothing rotated and no lifetime grew")
	}

	// Instances reread (and rotate) the ring every minute.
	validUntil := stopped.Add(hour + maxClockSkew)
	var gone time.Time
	for now := reload.Add(time.Minute); now.Before(reload.Add(3 * hour)); now = now.Add(time.Minute) {
		if r, _, err = Rotate(restore(t, r), ES256, now, period, lifetime); err != nil {
			t.Fatal(err)
		}
		if !published(r, old.ID) {
			gone = now
			break
		}
	}
	if gone.IsZero() || !gone.After(validUntil) {
		t.Fatalf("the old key left the JWKS at %s after the reload, while an assertion it signed is valid until %s after it "+
			"(assertion lifetime 1h before the reload, 1m after)", gone.Sub(reload), validUntil.Sub(reload))
	}
	if late := gone.Sub(validUntil); late > 2*time.Minute {
		t.Errorf("the old key stayed in the JWKS %s after its last assertion expired", late)
	}

	// The key that was next at the reload recorded the hour too (it
	// could have signed under the old settings); once it has gone as
	// well, the ring is back to a previous key, the signing one and the
	// next.
	end := reload.Add(3 * hour)
	for now := gone; now.Before(end); now = now.Add(time.Minute) {
		if r, _, err = Rotate(restore(t, r), ES256, now, period, lifetime); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.Keys) > 3 {
		t.Errorf("three hours after the reload to a 4m period and 1m assertions, the ring publishes %d keys", len(r.Keys))
	}
}

// An instance writes the ring when a lifetime grows, and only then:
// the ring read back (whole seconds) does not differ from the one
// stored, a shorter lifetime (a reload, or an instance configured so)
// never lowers it, and a longer one raises it on the keys that can
// still sign, not on those that stopped.
func TestRingLifetimeIsWrittenOnlyWhenItGrows(t *testing.T) {
	hour := time.Hour
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, ES256, t0, hour, 90500*time.Millisecond)
	for _, k := range r.Keys {
		if k.Lifetime != 91*time.Second {
			t.Fatalf("a 90.5s lifetime recorded as %s; want 91s (rounded up, as stored)", k.Lifetime)
		}
	}
	if _, changed, _ := Rotate(restore(t, r), ES256, t0.Add(time.Minute), hour, 90500*time.Millisecond); changed {
		t.Fatal("the same fractional lifetime, read back from storage, changes the ring again")
	}
	if r2, changed, _ := Rotate(restore(t, r), ES256, t0.Add(time.Minute), hour, 10*time.Second); changed || r2.Keys[0].Lifetime != 91*time.Second {
		t.Fatalf("a shorter lifetime changed the ring (%v) or lowered the lifetime to %s", changed, r2.Keys[0].Lifetime)
	}
	// The second key signs; the first has stopped.
	now := t0.Add(hour + time.Minute)
	r, _, _ = Rotate(restore(t, r), ES256, now, hour, 90500*time.Millisecond)
	r2, changed, _ := Rotate(restore(t, r), ES256, now.Add(time.Minute), hour, 30*time.Minute)
	if !changed {
		t.Fatal("a longer lifetime was not written")
	}
	if r2.Keys[0].Lifetime != 91*time.Second || r2.Keys[1].Lifetime != 30*time.Minute || r2.Keys[2].Lifetime != 30*time.Minute {
		t.Fatalf("lifetimes %s %s %s; want the stopped key's unchanged, the signing and next keys' raised",
			r2.Keys[0].Lifetime, r2.Keys[1].Lifetime, r2.Keys[2].Lifetime)
	}
}

// A ring stored before lifetimes were kept loads, and a key that had
// stopped signing goes a period (and the clock skew allowed) after, as
// before; the keys that can sign record the lifetime, written once.
func TestRingWithoutLifetimesRetiresAsBefore(t *testing.T) {
	hour := time.Hour
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, ES256, t0, hour, hour)
	r, _, _ = Rotate(r, ES256, t0.Add(hour+time.Minute), hour, hour)
	first := r.Keys[0]
	data := storedWithoutLifetimes(t, r)
	if strings.Contains(string(data), "lifetime") {
		t.Fatalf("an unset lifetime is stored: %s", data)
	}
	old, err := Unmarshal(data, ES256)
	if err != nil {
		t.Fatal(err)
	}

	stopped := r.Keys[1].NotBefore
	upgrade := stopped.Add(hour + maxClockSkew)
	r2, changed, err := Rotate(old, ES256, upgrade, hour, hour)
	if err != nil || !changed || !published(r2, first.ID) {
		t.Fatalf("upgraded a period and a minute after the first key stopped: changed %v, first key published %v, %v",
			changed, published(r2, first.ID), err)
	}
	if r2.Keys[0].Lifetime != 0 || r2.Signing(upgrade).Lifetime != hour {
		t.Fatalf("lifetimes %s, %s: the stopped key keeps none, the signing key records the hour", r2.Keys[0].Lifetime, r2.Signing(upgrade).Lifetime)
	}
	r3, _, _ := Rotate(restore(t, r2), ES256, stopped.Add(hour+maxClockSkew+time.Second), hour, hour)
	if published(r3, first.ID) {
		t.Fatal("a key stored without a lifetime is kept longer than a period and the clock skew after it stopped")
	}
}

// storedWithoutLifetimes is r as stored before keys kept their lifetime.
func storedWithoutLifetimes(t *testing.T, r *Ring) []byte {
	t.Helper()
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var sr storedRing
	if err := json.Unmarshal(data, &sr); err != nil {
		t.Fatal(err)
	}
	for i := range sr.Keys {
		sr.Keys[i].Lifetime = 0
	}
	data, _ = json.Marshal(sr)
	return data
}
