package assertion

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testLifetime is the assertion lifetime of the tests that are not
// about it: the default of caddymodule.
const testLifetime = time.Minute

func TestRotateKeepsNextAndPrevious(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			period := time.Hour
			t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
			r, changed, err := Rotate(nil, alg, t0, period, testLifetime)
			if err != nil || !changed {
				t.Fatalf("first ring: changed %v, %v", changed, err)
			}
			if len(r.Keys) != 2 || !r.Keys[1].NotBefore.Equal(t0.Add(period)) {
				t.Fatalf("a first ring has the current key and the next, published a period ahead: %+v", r.Keys)
			}
			first, next := r.Keys[0], r.Keys[1]
			if r.Signing(t0) != first || r.Signing(t0.Add(period-time.Second)) != first || r.Signing(t0.Add(period)) != next {
				t.Fatal("the current key signs until the next one starts")
			}
			if _, changed, _ := Rotate(r, alg, t0.Add(30*time.Minute), period, testLifetime); changed {
				t.Fatal("nothing to do within the period")
			}
			// The next key has started: a new next appears, the first
			// stays published.
			r2, changed, _ := Rotate(r, alg, t0.Add(period+time.Minute), period, testLifetime)
			if !changed || len(r2.Keys) != 3 || r2.Keys[0] != first || r2.Signing(t0.Add(period+time.Minute)) != next {
				t.Fatalf("after the first rotation: %d keys, changed %v", len(r2.Keys), changed)
			}
			// A period after it retired, the first key goes.
			r3, changed, _ := Rotate(r2, alg, t0.Add(2*period+2*time.Minute), period, testLifetime)
			if !changed || r3.Keys[0] == first {
				t.Fatal("a key retired for more than a period is dropped")
			}
			if r3.Signing(t0.Add(2*period+2*time.Minute)) == next || len(r3.Keys) < 2 {
				t.Fatalf("the ring after two periods: %d keys", len(r3.Keys))
			}
			ids := map[string]bool{}
			for _, k := range r3.Keys {
				ids[k.ID] = true
			}
			if len(ids) != len(r3.Keys) {
				t.Fatal("every key has its own kid")
			}
		})
	}
}

func TestRotateAfterDowntime(t *testing.T) {
	// Nobody ran for ten periods: the ring catches up in one step with a
	// key signing now and a next one, not a backlog of keys.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, ES256, t0, time.Hour, testLifetime)
	now := t0.Add(10 * time.Hour)
	r2, changed, err := Rotate(r, ES256, now, time.Hour, testLifetime)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if r2.Signing(now) == nil || !r2.Keys[len(r2.Keys)-1].NotBefore.After(now) || len(r2.Keys) > 3 {
		t.Fatalf("after downtime: %d keys", len(r2.Keys))
	}
}

func TestSignedAssertionVerifiesWithTheJWKS(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		r, _, _ := Rotate(nil, alg, time.Now(), time.Hour, testLifetime)
		data, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		stored, err := Unmarshal(data, alg)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Keys) != 2 || stored.Keys[0].ID != r.Keys[0].ID {
			t.Fatal("the ring read back is not the ring stored")
		}
		c := Claims{Issuer: "https://wiki.example.com", Audience: "https://wiki.example.com", Subject: "u1", Username: "ada",
			Attributes: map[string]string{"department": "eng", "sub": "forged"}}
		tok, err := stored.Signing(time.Now()).Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		set := JWKS(r)
		jwks, _ := json.Marshal(set)
		if strings.Contains(string(jwks), `"d"`) {
			t.Fatal("the JWKS holds private key material")
		}
		var pub jose.JSONWebKeySet
		_ = json.Unmarshal(jwks, &pub)
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatal(err)
		}
		keys := pub.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q is not in the JWKS", jws.Signatures[0].Header.KeyID)
		}
		payload, err := jws.Verify(keys[0])
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		_ = json.Unmarshal(payload, &got)
		if got["sub"] != "u1" || got["department"] != "eng" || got["username"] != "ada" {
			t.Fatalf("claims: %v", got)
		}
	}
}

func TestUnmarshalRefusesAnotherAlgorithm(t *testing.T) {
	r, _, _ := Rotate(nil, EdDSA, time.Now(), time.Hour, testLifetime)
	data, _ := r.Marshal()
	if _, err := Unmarshal(data, ES256); err == nil {
		t.Fatal("an EdDSA ring read as ES256")
	}
	forged := strings.Replace(string(data), `"EdDSA"`, `"ES256"`, 1)
	if _, err := Unmarshal([]byte(forged), ES256); err == nil {
		t.Fatal("an Ed25519 key accepted in an ES256 ring")
	}
}

func TestCheckAttributeClaim(t *testing.T) {
	for _, bad := range []string{"sub", "exp", "Department", "", "a-b", "roles"} {
		if CheckAttributeClaim(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckAttributeClaim("employee_id"); err != nil {
		t.Error(err)
	}
}

// FuzzUnmarshal: reading a stored ring never panics, and a ring it
// accepts has keys of its algorithm only, in order, that sign.
func FuzzUnmarshal(f *testing.F) {
	for _, alg := range []string{ES256, EdDSA} {
		r, _, _ := Rotate(nil, alg, time.Unix(1e9, 0), time.Hour, testLifetime)
		data, _ := r.Marshal()
		f.Add(data, alg == ES256)
	}
	f.Add([]byte(`{"algorithm":"ES256","keys":[{"pkcs8":"AAAA"}]}`), true)
	// Lifetimes out of range, and a key far in the future with the
	// longest lifetime (the sums of retire).
	if r, _, _ := Rotate(nil, EdDSA, time.Unix(1e9, 0), time.Hour, time.Hour); r != nil {
		data, _ := r.Marshal()
		for _, lt := range []string{"-1", "3153600000", "3153600001", "9223372036854775807"} {
			f.Add([]byte(strings.ReplaceAll(string(data), `"lifetime_s":3600`, `"lifetime_s":`+lt)), false)
		}
		f.Add([]byte(strings.ReplaceAll(strings.ReplaceAll(string(data), `"lifetime_s":3600`, `"lifetime_s":3153600000`), "2001-", "9999-")), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, es bool) {
		alg := EdDSA
		if es {
			alg = ES256
		}
		r, err := Unmarshal(data, alg)
		if err != nil {
			return
		}
		for i, k := range r.Keys {
			if k.Algorithm != alg || (i > 0 && k.NotBefore.Before(r.Keys[i-1].NotBefore)) {
				t.Fatalf("key %d: %s at %v", i, k.Algorithm, k.NotBefore)
			}
			if k.Lifetime < 0 || k.Lifetime > maxLifetime || k.Lifetime%time.Second != 0 {
				t.Fatalf("key %d: lifetime %s", i, k.Lifetime)
			}
			if _, err := k.Sign(Claims{}); err != nil {
				t.Fatal(err)
			}
		}
		// What it stores again reads back the same, and rotates.
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(again, alg)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range back.Keys {
			if k.ID != r.Keys[i].ID || k.Lifetime != r.Keys[i].Lifetime || !k.Published.Equal(r.Keys[i].Published) {
				t.Fatalf("key %d reads back as %+v, stored %+v", i, k, r.Keys[i])
			}
		}
		if _, _, err := Rotate(r, alg, time.Unix(2e9, 0), time.Hour, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

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

// Two instances start at once on a storage with no ring; B's clock is 2 s
// behind A's, so no key of the ring A made has started by B's clock. B
// must not rewrite the ring without the key A signs with: upstreams that
// fetch the JWKS through B would refuse A's assertions.
func TestRotateKeepsAKeyAnotherInstanceSignsWith(t *testing.T) {
	period := 168 * time.Hour
	clockA := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ringA, _, err := Rotate(nil, ES256, clockA, period, testLifetime)
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
	ringB, changed, err := Rotate(stored, ES256, clockB, period, testLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if !published(ringB, signingA.ID) {
		t.Errorf("instance B (clock 2 s behind) rewrote the ring (changed=%v) without the key instance A signs with now (%s): "+
			"A's assertions no longer verify against the JWKS B serves, and after A's next reread not against A's either", changed, signingA.ID)
	}
	if changed || ringB.Signing(clockB).ID != signingA.ID {
		t.Errorf("instance B changed the ring (%v) or signs with another key than A", changed)
	}
}

// A clock stepped back far (a day, past every key's start) neither
// rewrites the ring nor stops signing: the instance signs with the
// earliest key, which is published.
func TestRotateWithAClockSteppedBack(t *testing.T) {
	period := time.Hour
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, ES256, t0, period, testLifetime)
	r, _, _ = Rotate(r, ES256, t0.Add(period+time.Minute), period, testLifetime)
	back := t0.Add(-24 * time.Hour)
	r2, changed, err := Rotate(r, ES256, back, period, testLifetime)
	if err != nil || changed {
		t.Fatalf("a clock stepped back changed the ring: %v, %v", changed, err)
	}
	if k := r2.Signing(back); k == nil || k != r.Keys[0] {
		t.Fatal("a clock stepped back signs with no key, or one that is not the earliest published")
	}
}

// The operator shortens assertion_key_rotation from a week to an hour
// and reloads: once an hour has passed since the current key started,
// another signs, not a week later.
func TestShortenedRotationPeriodTakesEffect(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ring, _, err := Rotate(nil, ES256, t0, 168*time.Hour, testLifetime)
	if err != nil {
		t.Fatal(err)
	}
	first := ring.Signing(t0)

	// Reloaded with assertion_key_rotation 1h; the instance rereads the
	// ring every quarter of the period, so Rotate runs throughout.
	now := t0
	for now.Before(t0.Add(3 * time.Hour)) {
		now = now.Add(15 * time.Minute)
		next, _, err := Rotate(ring, ES256, now, time.Hour, testLifetime)
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

// A shorter period brings the next key forward, but never to before it
// has been published for the new period (here it was made only just
// before the reload, after a downtime), nor to before now (the key it
// replaces must stay published a period after it last signed).
func TestShortenedRotationPeriodKeepsKeysPublished(t *testing.T) {
	week, hour := 168*time.Hour, time.Hour
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, ES256, t0, week, testLifetime)

	// Nobody ran while the second key started; the third is made at
	// the restart, then the operator reloads with an hour.
	restart := t0.Add(200 * time.Hour)
	r, _, _ = Rotate(r, ES256, restart, week, testLifetime)
	current, made := r.Signing(restart), r.Keys[len(r.Keys)-1]
	reload := restart.Add(5 * time.Minute)
	r2, changed, err := Rotate(r, ES256, reload, hour, testLifetime)
	if err != nil || !changed {
		t.Fatalf("the reload with a shorter period changed nothing: %v", err)
	}
	next := r2.Keys[len(r2.Keys)-1]
	if next.ID != made.ID || !next.NotBefore.Equal(made.Published.Add(hour)) || r2.Signing(reload) != current {
		t.Fatalf("the next key starts at %s; want an hour after it was published (%s)", next.NotBefore, made.Published)
	}

	// Long after the current key started, the next one starts now, not
	// in the past: the current key stays published a period from now.
	r, _, _ = Rotate(nil, ES256, t0, week, testLifetime)
	first := r.Keys[0]
	reload = t0.Add(10 * time.Hour)
	r2, _, _ = Rotate(r, ES256, reload, hour, testLifetime)
	if r2.Signing(reload) == first || !r2.Keys[1].NotBefore.Equal(reload) {
		t.Fatalf("ten hours after the current key started, the next starts at %s, not at the reload", r2.Keys[1].NotBefore)
	}
	if r3, _, _ := Rotate(r2, ES256, reload.Add(hour), hour, testLifetime); !published(r3, first.ID) {
		t.Fatal("the key that signed until the reload was dropped within a period of it")
	}
	if r3, _, _ := Rotate(r2, ES256, reload.Add(hour+2*time.Minute), hour, testLifetime); published(r3, first.ID) {
		t.Fatal("a retired key is kept more than a period (and the clock skew allowed) after it stopped")
	}
}

// A ring stored before publication times were kept: a key that has not
// started counts as published when first read, so a shorter period
// moves it no earlier than a period from then.
func TestRingWithoutPublicationTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r, _, _ := Rotate(nil, EdDSA, t0, 168*time.Hour, testLifetime)
	data, _ := r.Marshal()
	var sr storedRing
	_ = json.Unmarshal(data, &sr)
	for i := range sr.Keys {
		sr.Keys[i].Published = time.Time{}
	}
	data, _ = json.Marshal(sr)
	if strings.Contains(string(data), "published") {
		t.Fatalf("an unset publication time is stored: %s", data)
	}
	old, err := Unmarshal(data, EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	upgrade := t0.Add(10 * time.Hour)
	r2, changed, err := Rotate(old, EdDSA, upgrade, time.Hour, testLifetime)
	if err != nil || !changed {
		t.Fatalf("publication times not set: %v", err)
	}
	if got := r2.Keys[1]; !got.Published.Equal(upgrade) || !got.NotBefore.Equal(upgrade.Add(time.Hour)) {
		t.Fatalf("the next key: published %s, starts %s", got.Published, got.NotBefore)
	}
	if _, changed, _ := Rotate(r2, EdDSA, upgrade.Add(time.Minute), time.Hour, testLifetime); changed {
		t.Fatal("a ring with publication times changes again")
	}
}

// simInstance is one Caddy sharing a stored ring: its clock is off by
// skew, it signs assertions valid for lifetime, and it rereads the ring
// as caddymodule's assertionKeys does.
type simInstance struct {
	skew, period, lifetime time.Duration
	ring                   *Ring
	reread                 time.Time // true time of the next reread
}

func (in *simInstance) interval() time.Duration { return min(time.Minute, in.period/4) }

// refresh is assertionKeys.refresh: Rotate what is stored; when that
// changes it, Rotate again under the lock and store the result.
func (in *simInstance) refresh(t *testing.T, stored **Ring, now time.Time) {
	clock := now.Add(in.skew)
	r, changed, err := Rotate(*stored, ES256, clock, in.period, in.lifetime)
	if err == nil && changed {
		if r, changed, err = Rotate(*stored, ES256, clock, in.period, in.lifetime); err == nil && changed {
			var data []byte
			if data, err = r.Marshal(); err == nil {
				*stored, err = Unmarshal(data, ES256)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	in.ring = r
	in.reread = now.Add(in.interval())
}

// Instances whose clocks differ by up to maxClockSkew share a ring,
// first at one period and assertion lifetime, then (each reloaded in
// turn) at shorter ones. At every moment, a key any of them signed an
// assertion with that is still valid is in the JWKS of every instance; a
// key signs only after every instance has published it for about a
// period; and keys rotate about every period, the new one as soon as a
// period has passed after the reload.
func TestRotationAcrossInstancesWithSkewedClocks(t *testing.T) {
	hour := time.Hour
	for name, c := range map[string]struct {
		before, after    time.Duration // the period before and after the reload
		reloadAt, runFor time.Duration // after the start; after the reload
		lifetime         time.Duration // the assertion lifetime before the reload
		lifetimeAfter    time.Duration // and after it; 0 for the same
	}{
		"one period, lifetime as long":  {hour, hour, 0, 8 * hour, hour, 0},
		"shortened before the next key": {168 * hour, hour, 30 * hour, 6 * hour, time.Minute, 0},
		"shortened after the next key":  {168 * hour, hour, 200 * hour, 6 * hour, time.Minute, 0},
		"shortened to minutes":          {hour, 4 * time.Minute, 90 * time.Minute, hour, time.Minute, 0},
		"lifetime shortened as well":    {hour, 4 * time.Minute, 90 * time.Minute, 2 * hour, hour, time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			t0 := time.Date(2026, 12, 4, 10, 0, 0, 300e6, time.UTC)
			reload, end := t0.Add(c.reloadAt), t0.Add(c.reloadAt+c.runFor)
			var stored *Ring
			lifetimeAfter := c.lifetime
			if c.lifetimeAfter != 0 {
				lifetimeAfter = c.lifetimeAfter
			}
			ins := []*simInstance{{skew: 0}, {skew: 30 * time.Second}, {skew: -29*time.Second - 700*time.Millisecond}}
			for i, in := range ins {
				in.period, in.lifetime = c.before, c.lifetime
				in.refresh(t, &stored, t0)
				in.reread = t0.Add(time.Duration(i) * 13 * time.Second)
			}
			firstKey := stored.Keys[0].ID
			// valid is when the last assertion signed with a key expires.
			first, last, everywhere, valid := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
			const step = 5 * time.Second
			for now := t0; now.Before(end); now = now.Add(step) {
				for i, in := range ins {
					if at := reload.Add(time.Duration(i) * 7 * time.Second); in.period != c.after && !now.Before(at) {
						in.period, in.lifetime = c.after, lifetimeAfter
						in.refresh(t, &stored, now)
					} else if !now.Before(in.reread) {
						in.refresh(t, &stored, now)
					}
				}
				for _, k := range stored.Keys {
					if _, ok := everywhere[k.ID]; !ok && all(ins, func(in *simInstance) bool { return published(in.ring, k.ID) }) {
						everywhere[k.ID] = now
					}
				}
				period := ins[0].period
				for _, in := range ins {
					k := in.ring.Signing(now.Add(in.skew))
					if _, ok := first[k.ID]; !ok {
						first[k.ID] = now
						lead := now.Sub(everywhere[k.ID])
						if k.ID != firstKey && lead < period-maxClockSkew-time.Minute {
							t.Fatalf("%s: a key signs %s after every instance published it; the period is %s", now.Sub(t0), lead, period)
						}
					}
					last[k.ID] = now
					valid[k.ID] = latest(valid[k.ID], now.Add(in.lifetime))
				}
				for kid, until := range valid {
					if now.After(until) {
						continue
					}
					if !published(stored, kid) || !all(ins, func(in *simInstance) bool { return published(in.ring, kid) }) {
						t.Fatalf("%s: a key that signed an assertion %s ago, valid for %s more, is not published by every instance",
							now.Sub(t0), now.Sub(last[kid]), until.Sub(now))
					}
				}
			}
			rotations := 0
			for kid, to := range last {
				from := first[kid]
				if from.Before(reload) {
					from = reload
				}
				if span, most := to.Sub(from), c.after+time.Minute+2*maxClockSkew+step; to.After(reload) && span > most {
					t.Errorf("a key signed for %s after the reload; at most %s with a period of %s", span, most, c.after)
				}
				if first[kid].After(reload) {
					rotations++
				}
			}
			if want := int(c.runFor/(c.after+3*time.Minute)) - 1; rotations < want {
				t.Errorf("%d rotations after the reload, want %d or more", rotations, want)
			}
		})
	}
}

func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}
