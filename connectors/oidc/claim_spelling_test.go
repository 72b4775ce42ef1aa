package oidc

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// go-oidc reads sub, iss, aud, nonce and the other claims it checks
// into a struct, which encoding/json matches without regard to letter
// case ("Sub", "SUB", even "ſub" with U+017F, are sub), the last of
// several winning; the claims jit_auth maps and passes on
// ({claims.sub}, attribute mappings) are read from the same JSON as a
// map, by exact key. A provider that lets users add claims could then
// sign one identity in under a subject while its claims name another.
// An ID token, userinfo answer or bearer token whose JSON has a key that is one of
// those claims spelled otherwise, or any key twice, is refused; the
// identity and the claims then agree.
func TestClaimKeysSpelledOtherwiseOrTwiceAreRefused(t *testing.T) {
	add := func(member string) func([]byte) []byte {
		return func(b []byte) []byte { return append(bytes.TrimSuffix(b, []byte("}")), []byte(","+member+"}")...) }
	}
	for _, c := range []struct {
		name    string
		payload func([]byte) []byte
		why     string
	}{
		{"Sub after sub", add(`"Sub":"victim"`), `"Sub"`},
		{"SUB after sub", add(`"SUB":"victim"`), `"SUB"`},
		{"sub with U+017F", add(`"ſub":"victim"`), `"ſub"`},
		{"ISS beside iss", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"iss":`), []byte(`"ISS":"https://evil.example","iss":`), 1)
		}, `"ISS"`},
		{"Nonce beside nonce", add(`"Nonce":"x"`), `"Nonce"`},
		{"sub twice", add(`"sub":"victim"`), `"sub" twice`},
		{"sub twice, escaped", add(`"s\u0075b":"victim"`), `"sub" twice`},
		{"another claim twice", add(`"email":"a@x.example","email":"b@x.example"`), `"email" twice`},
		{"a claim of another name", add(`"subject":"x","Name":"A"`), ""},
		{"Sub inside another claim", add(`"address":{"Sub":"x","sub":"y"}`), ""},
	} {
		t.Run("bearer "+c.name, func(t *testing.T) {
			ti := newTokenIssuer(t)
			token := ti.sign(t, c.payload(seedClaims(ti, func(m map[string]any) { delete(m, "events") })))
			claims, err := connectorFor(ti).VerifyBearer(context.Background(), token, []string{"app"}, nil)
			switch {
			case c.why == "" && (err != nil || claims.Subject != "s1"):
				t.Errorf("subject %q, %v; want s1", claims.Subject, err)
			case c.why != "" && !errors.Is(err, connector.ErrRejected):
				t.Errorf("subject %q, %v; want a refusal", claims.Subject, err)
			case c.why != "" && !strings.Contains(err.Error(), c.why):
				t.Errorf("the refusal %q does not name %s", err, c.why)
			}
		})
		t.Run("id_token "+c.name, func(t *testing.T) {
			lp := newLoginProvider(t)
			lp.payload = c.payload
			claims, err := lp.login(t, lp.connector(), nil)
			refreshed, _, _, rerr := lp.connector().Refresh(context.Background(), "rt-1")
			for step, got := range map[string]struct {
				sub string
				err error
			}{"login": {claims.Subject, err}, "refresh": {refreshed.Subject, rerr}} {
				if c.why == "" {
					if got.err != nil || got.sub != "s1" {
						t.Errorf("%s: subject %q, %v; want s1", step, got.sub, got.err)
					}
					continue
				}
				if !errors.Is(got.err, connector.ErrRejected) {
					t.Errorf("%s: subject %q, %v; want a refusal", step, got.sub, got.err)
				} else if !strings.Contains(got.err.Error(), c.why) {
					t.Errorf("%s: the refusal %q does not name %s", step, got.err, c.why)
				}
			}
		})
	}
	for _, c := range []struct {
		name, userinfo string
		refresh        bool // a refresh answered without an ID token
		why            string
	}{
		{"Sub after sub", `{"sub":"victim","Sub":"s1"}`, false, `"Sub"`},
		{"Sub after sub, refresh", `{"sub":"victim","Sub":"s1"}`, true, `"Sub"`},
		{"sub twice", `{"sub":"s1","sub":"s1"}`, false, `"sub" twice`},
		{"sub twice, refresh", `{"sub":"victim","sub":"s1"}`, true, `"sub" twice`},
		{"Sub only", `{"Sub":"s1"}`, false, `"Sub"`},
		{"sub in another letter case", `{"sub":"S1"}`, false, "subject differs"},
		{"sub exact", `{"sub":"s1","name":"A"}`, false, ""},
		{"sub exact, refresh", `{"sub":"s1","name":"A"}`, true, ""},
	} {
		t.Run("userinfo "+c.name, func(t *testing.T) {
			lp := newLoginProvider(t)
			lp.userinfo = []byte(c.userinfo)
			o := lp.connector()
			var cl provisioner.Claims
			var err error
			if c.refresh {
				lp.noIDToken = true
				cl, _, _, err = o.Refresh(context.Background(), "rt-1")
			} else {
				cl, err = lp.login(t, o, nil)
			}
			got := cl.Subject + " " + string(cl.Raw)
			if c.why == "" {
				if err != nil || !strings.HasPrefix(got, "s1 ") || !strings.Contains(got, `"name":"A"`) {
					t.Fatalf("subject and claims %q, %v; want s1 with name A", got, err)
				}
				return
			}
			if !errors.Is(err, connector.ErrRejected) {
				t.Fatalf("subject and claims %q, %v; want a refusal", got, err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("the refusal %q does not say %s", err, c.why)
			}
		})
	}
}
