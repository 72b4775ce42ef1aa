package oidc

import (
	"errors"
	"net/url"
	"testing"

	"github.com/jitauth/caddy-jitauth/connector"
)

// An authorization response that names its issuer (RFC 9207's iss
// parameter) is refused when that is not this connection's issuer: it
// is another provider's answer, brought to this connection's callback
// (a mix-up attack), and its code must not reach this connection's
// token endpoint. A provider that says it always names itself
// (authorization_response_iss_parameter_supported) has an answer without
// iss refused as well; one that names this issuer signs the user in.
func TestAuthorizationResponseIssuerMustBeTheConnections(t *testing.T) {
	for _, c := range []struct {
		name       string
		advertised bool
		iss        []string // nil: no iss parameter
		ok         bool
	}{
		{"no iss, not advertised", false, nil, true},
		{"own iss, not advertised", false, []string{""}, true},
		{"own iss, advertised", true, []string{""}, true},
		{"other iss", false, []string{"https://evil.example"}, false},
		{"other iss, advertised", true, []string{"https://evil.example"}, false},
		{"own iss with a trailing slash", false, []string{"/"}, false},
		{"own and other iss", false, []string{"", "https://evil.example"}, false},
		{"empty iss", false, []string{"-"}, false},
		{"no iss, advertised", true, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lp := newLoginProvider(t)
			if c.advertised {
				lp.meta["authorization_response_iss_parameter_supported"] = true
			}
			o := lp.connector()
			answer := url.Values{}
			for _, v := range c.iss {
				switch v {
				case "":
					v = o.Issuer
				case "/":
					v = o.Issuer + "/"
				case "-":
					v = ""
				}
				answer.Add("iss", v)
			}
			claims, err := lp.login(t, o, answer)
			if c.ok {
				if err != nil || claims.Subject != "s1" {
					t.Fatalf("login refused: %v", err)
				}
				return
			}
			if !errors.Is(err, connector.ErrRejected) {
				t.Fatalf("answer with iss %q: subject %q, %v; want a refusal", answer["iss"], claims.Subject, err)
			}
			if n := lp.tokenRequests.Load(); n != 0 {
				t.Fatalf("the code of an answer with iss %q went to the token endpoint (%d requests)", answer["iss"], n)
			}
		})
	}
}
