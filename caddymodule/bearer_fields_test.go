package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// bob's claims in a token nobody signed (alg none): what an attacker
// would want an upstream that trusts pass-through tokens to read.
func forgedBobToken(iss string) string {
	c := bearerClaims(iss, "bob-sub")
	c["email"] = "bob@example.com"
	return unsignedToken(c)
}

// With pass_through, the upstream gets "Authorization" because the gate
// verified it. A request with two Authorization fields is verified on
// the first (Header.Get) and forwarded with both: the upstream receives
// a second, never verified bearer token next to Remote-User of the first.
// Upstreams differ on what they read (Go's Header.Get the first; a CGI
// or WSGI environment, e.g. Caddy's php_fastcgi or gunicorn, joins both
// into one value), so the identity the gate checked and the credential
// the upstream reads can differ. Authorization
// is a singleton field; a request carrying it twice should be refused
// (400/401), or reach the upstream with the verified value only.
func TestBearerTwoAuthorizationFieldsAreRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tconnections partner\n\t\tbearer partner {\n\t\t\taudience api://wiki\n\t\t\tpass_through\n\t\t}\n",
	})
	iss := s.idp.Config().Issuer
	good := signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub"))
	forged := forgedBobToken(iss)

	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/api/items", nil)
		req.Header["Authorization"] = []string{"Bearer " + good, "Bearer " + forged}
		req.Header.Set("Accept", "application/json")
		resp, err := protocolClients()[proto].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue // refused: fine
		}
		h := s.upstream.lastHeaders(t)
		if got := h.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+good {
			t.Errorf("%s: two Authorization fields (verified alice, forged bob): %d, upstream got Remote-User %q and Authorization %d values, the second unverified (%v); want a refusal or only the verified token",
				resp.Proto, resp.StatusCode, h.Get("Remote-User"), len(got), strings.Contains(strings.Join(got, "\n"), forged))
		}
	}
}

// An application that takes bearer tokens answers an API client that
// sent none with 401 and no WWW-Authenticate. RFC 9110 section 11.6.1 /
// 15.5.2: a 401 MUST carry WWW-Authenticate with a challenge for the
// resource; RFC 6750 section 3 gives `WWW-Authenticate: Bearer realm=…`
// for a request without credentials. Clients and SDKs that discover the
// scheme, or refresh and retry on the challenge, get nothing to go on,
// although a refused token gets `Bearer error="invalid_token"`.
func TestBearerApplication401CarriesAChallenge(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n",
	})
	req, _ := http.NewRequest(http.MethodGet, s.base+"/api/items", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(strings.ToLower(ch), "bearer") {
		t.Errorf("401 to an API client without credentials, on an application that takes bearer tokens: WWW-Authenticate %q, want a Bearer challenge (RFC 9110 15.5.2 MUST, RFC 6750 section 3)", ch)
	}
}

// A bearer token the gate would not read as one must not reach a
// pass_through upstream unverified beside a session: a tab after the
// scheme (upstreams that split on white space read a token there), or
// a second Authorization field after another scheme's.
func TestBearerOddFormsAreVerifiedOrRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t\tpass_through\n\t\t}\n",
	})
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	session := b.cookie(s.base, "jitauth_session")
	forged := forgedBobToken(s.idp.Config().Issuer)
	for name, c := range map[string]struct {
		fields []string
		want   int
	}{
		"a tab after Bearer":        {[]string{"Bearer\t" + forged}, http.StatusUnauthorized},
		"Basic, then Bearer":        {[]string{"Basic YTpi", "Bearer " + forged}, http.StatusBadRequest},
		"no Authorization, session": {nil, http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/api/items", nil)
		req.Header["Authorization"] = c.fields
		req.Header.Set("Accept", "application/json")
		req.AddCookie(session)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s, with a session: %d, want %d", name, resp.StatusCode, c.want)
		}
	}
}
