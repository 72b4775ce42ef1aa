package oidc

import (
	"net/http"
	"net/url"
	"testing"
)

// googleIssuer is Google's issuer, whose ID tokens name it with or
// without the scheme (both are documented, and go-oidc takes both).
const googleIssuer = "https://accounts.google.com"

// toServer sends every request to srv, whatever host it names, as
// Google's address would resolve to it.
type toServer struct{ srv *url.URL }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = t.srv.Scheme, t.srv.Host
	return http.DefaultTransport.RoundTrip(r)
}

// One Google user is one identity, whichever spelling of the issuer
// their ID token carries: the claims name the connection's issuer, so
// an identity stored under one spelling is found under the other (not
// a second user, or a username conflict that locks them out).
func TestGoogleIssuerSpellingsAreOneIdentity(t *testing.T) {
	lp := newLoginProvider(t)
	for k, v := range map[string]string{"issuer": "", "jwks_uri": "/jwks", "authorization_endpoint": "/auth", "token_endpoint": "/token"} {
		lp.meta[k] = googleIssuer + v
	}
	srv, err := url.Parse(lp.ti.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	o := lp.connector()
	o.Issuer = googleIssuer
	o.client = &http.Client{Transport: toServer{srv}}
	for _, iss := range []string{googleIssuer, "accounts.google.com"} {
		lp.claims = func(m map[string]any) { m["iss"] = iss }
		c, err := lp.login(t, o, nil)
		if err != nil {
			t.Fatalf("ID token with iss %q: %v", iss, err)
		}
		if c.Issuer != googleIssuer || c.Subject != "s1" {
			t.Fatalf("ID token with iss %q: identity %q %q, want %q s1", iss, c.Issuer, c.Subject, googleIssuer)
		}
	}
}
