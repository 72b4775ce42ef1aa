package assertion

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestRotateKeepsNextAndPrevious(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			period := time.Hour
			t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
			r, changed, err := Rotate(nil, alg, t0, period)
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
			if _, changed, _ := Rotate(r, alg, t0.Add(30*time.Minute), period); changed {
				t.Fatal("nothing to do within the period")
			}
			// The next key has started: a new next appears, the first
			// stays published.
			r2, changed, _ := Rotate(r, alg, t0.Add(period+time.Minute), period)
			if !changed || len(r2.Keys) != 3 || r2.Keys[0] != first || r2.Signing(t0.Add(period+time.Minute)) != next {
				t.Fatalf("after the first rotation: %d keys, changed %v", len(r2.Keys), changed)
			}
			// A period after it retired, the first key goes.
			r3, changed, _ := Rotate(r2, alg, t0.Add(2*period+2*time.Minute), period)
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
	r, _, _ := Rotate(nil, ES256, t0, time.Hour)
	now := t0.Add(10 * time.Hour)
	r2, changed, err := Rotate(r, ES256, now, time.Hour)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if r2.Signing(now) == nil || !r2.Keys[len(r2.Keys)-1].NotBefore.After(now) || len(r2.Keys) > 3 {
		t.Fatalf("after downtime: %d keys", len(r2.Keys))
	}
}

func TestSignedAssertionVerifiesWithTheJWKS(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		r, _, _ := Rotate(nil, alg, time.Now(), time.Hour)
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
	r, _, _ := Rotate(nil, EdDSA, time.Now(), time.Hour)
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
		r, _, _ := Rotate(nil, alg, time.Unix(1e9, 0), time.Hour)
		data, _ := r.Marshal()
		f.Add(data, alg == ES256)
	}
	f.Add([]byte(`{"algorithm":"ES256","keys":[{"pkcs8":"AAAA"}]}`), true)
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
			if _, err := k.Sign(Claims{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
