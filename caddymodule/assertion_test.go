package caddymodule_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// assertionVerifier is what an upstream would run: it knows nothing but
// the JWKS URL, the issuer and the audience it expects.
func assertionVerifier(base, audience string, now func() time.Time, algs ...string) *gooidc.IDTokenVerifier {
	if len(algs) == 0 {
		algs = []string{"ES256"}
	}
	keys := gooidc.NewRemoteKeySet(context.Background(), base+"/.jitauth/jwks.json")
	return gooidc.NewVerifier(base, keys, &gooidc.Config{ClientID: audience, SupportedSigningAlgs: algs, Now: now})
}

// kidOf reads the kid from a JWT's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	_ = json.Unmarshal(raw, &h)
	if h.Typ != "JWT" {
		t.Fatalf("assertion header: %s", raw)
	}
	return h.Kid
}

func TestAssertionVerifiedByUpstreamWithTheJWKSAlone(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		globalExtra:  "\t\tassertion_key_rotation 5s\n",
		corpJIT:      "map department {claims.department}",
		handlerBlock: "\t\tassertion {\n\t\t\tlifetime 2s\n\t\t\tclaims department\n\t\t}\n",
	})
	u := alice()
	u.claims["department"] = "engineering"
	s.queue(u)
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// A client's own assertion never reaches the upstream, in any
	// spelling.
	resp := b.do("GET", s.base+"/page", http.Header{"Jit-Assertion": {"forged"}, "Jit_assertion": {"forged"}})
	resp.Body.Close()
	hdr := s.upstream.lastHeaders(t)
	tok1 := hdr.Get("Jit-Assertion")
	if tok1 == "" || len(hdr.Values("Jit-Assertion")) != 1 || hdr.Get("Jit_assertion") != "" {
		t.Fatalf("upstream got assertion headers %q", hdr.Values("Jit-Assertion"))
	}
	localID := hdr.Get("X-Auth-Local-Id")

	idt, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok1)
	if err != nil {
		t.Fatalf("the upstream's verifier refuses the assertion: %v", err)
	}
	var c map[string]any
	_ = idt.Claims(&c)
	if c["sub"] != localID || localID == "" || c["username"] != hdr.Get("Remote-User") || c["email"] != "alice@example.com" ||
		c["email_verified"] != true || c["connection"] != "corp" || c["department"] != "engineering" || c["amr"] != nil {
		t.Fatalf("claims: %v (local id %q)", c, localID)
	}
	if g, _ := c["groups"].([]any); len(g) != 2 {
		t.Fatalf("groups: %v", c["groups"])
	}
	if lt := int64(c["exp"].(float64) - c["iat"].(float64)); lt != 2 {
		t.Fatalf("lifetime %ds, want 2s", lt)
	}

	// Another audience refuses it.
	if _, err := assertionVerifier(s.base, "https://other.example", nil).Verify(context.Background(), tok1); err == nil {
		t.Fatal("an assertion for this site verified for another audience")
	}
	// An EdDSA-only verifier refuses an ES256 assertion.
	if _, err := assertionVerifier(s.base, s.base, nil, "EdDSA").Verify(context.Background(), tok1); err == nil {
		t.Fatal("the algorithm allow-list was not applied")
	}

	// The key rotates; the upstream gets assertions under the new kid,
	// and one signed under the old kid still verifies (the old key stays
	// published a period after it retired).
	kid1 := kidOf(t, tok1)
	var tok2 string
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.get(s.base + "/later")
		tok2 = s.upstream.lastHeaders(t).Get("Jit-Assertion")
		if kidOf(t, tok2) != kid1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the signing key did not rotate within 15s with assertion_key_rotation 5s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok2); err != nil {
		t.Fatalf("the assertion under the new key: %v", err)
	}
	issued := time.Unix(int64(c["iat"].(float64)), 0)
	if _, err := assertionVerifier(s.base, s.base, func() time.Time { return issued }).Verify(context.Background(), tok1); err != nil {
		t.Fatalf("an assertion signed under the old kid no longer verifies after rotation: %v", err)
	}
	// Expired: the same token, now past its exp, is refused.
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok1); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired assertion: %v", err)
	}

	// The JWKS publishes public keys only, each with kid, alg and use.
	resp, body := newBrowser(t).get(s.base + "/.jitauth/jwks.json")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil || resp.StatusCode != http.StatusOK || len(set.Keys) < 2 {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}
	var kids []string
	for _, k := range set.Keys {
		if k["d"] != nil || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] == "" {
			t.Fatalf("jwks key: %v", k)
		}
		kids = append(kids, k["kid"].(string))
	}
	if !slices.Contains(kids, kid1) || !slices.Contains(kids, kidOf(t, tok2)) {
		t.Fatalf("jwks kids %v miss %s or %s", kids, kid1, kidOf(t, tok2))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=1") {
		t.Fatalf("jwks Cache-Control %q: with a 5s rotation it may be cached a quarter of it, 1s", cc)
	}
}

func TestAssertionEdDSAHeaderAudienceAndMFA(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tassertion {\n\t\t\theader X-Identity\n\t\t\taudience api://wiki\n\t\t\talgorithm EdDSA\n\t\t}\n",
		corpJIT:      "",
	})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok := s.upstream.lastHeaders(t).Get("X-Identity")
	if tok == "" || s.upstream.lastHeaders(t).Get("Jit-Assertion") != "" {
		t.Fatal("the assertion is not in the configured header")
	}
	// Signed once: the next request, well within half the default 60 s
	// lifetime and a 7-day key, reuses it.
	b.get(s.base + "/again")
	if s.upstream.lastHeaders(t).Get("X-Identity") != tok {
		t.Fatal("the assertion was signed again for the same session within its lifetime")
	}
	if _, err := assertionVerifier(s.base, "api://wiki", nil, "EdDSA").Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := assertionVerifier(s.base, s.base, nil, "EdDSA").Verify(context.Background(), tok); err == nil {
		t.Fatal("the configured audience replaced the default")
	}
}

func TestAssertionJITOffSubjectIsQualified(t *testing.T) {
	s := startSiteWith(t, "\t\tassertion\n")
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "partner", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	idt, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), s.upstream.lastHeaders(t).Get("Jit-Assertion"))
	if err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "partner:alice-sub" {
		t.Fatalf("sub %q: a JIT-off subject must be qualified by its connection (S15)", idt.Subject)
	}
}

func TestAssertionMisconfigurationsSayWhatToFix(t *testing.T) {
	for name, c := range map[string]struct{ block, want string }{
		"algorithm":  {"assertion {\n algorithm RS256\n }", `assertion algorithm "RS256": use ES256 or EdDSA`},
		"reserved":   {"assertion {\n claims sub\n }", `claim "sub" is one the assertion sets itself`},
		"lifetime":   {"assertion {\n lifetime 200h\n }", "at most the key rotation period"},
		"header":     {"assertion {\n header Cookie\n }", "cannot carry the assertion"},
		"identity":   {"assertion {\n header remote_user\n }", "assertion header remote_user is the identity header Remote-User"},
		"configured": {"header X-Login {http.auth.user.id}\n assertion {\n header x.login\n }", "assertion header x.login is the identity header X-Login"},
		"args":       {"assertion on", "assertion takes no arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := validate(t, fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s/storage\n\tjit_auth {\n\t\tstore sqlite %s/users.db\n\t\tconnection corp {\n oidc https://idp.example a b\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth {\n%s\n\t}\n\trespond ok\n}\n", dir, dir, c.block))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// After the second factor the assertion says so (amr); before, the
// upstream gets nothing at all.
func TestAssertionAfterSecondFactorCarriesAMR(t *testing.T) {
	s := startSiteOpts(t, siteOptions{application: "app", globalExtra: `
		application app {
			mfa totp {
				skip_for partner
			}
			assertion
		}`})
	_, _, b := s.enrol(alice())
	b.get(s.base + "/after-mfa")
	idt, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), s.upstream.lastHeaders(t).Get("Jit-Assertion"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	_ = idt.Claims(&c)
	if !slices.Contains(c.AMR, "mfa") || !slices.Contains(c.AMR, "otp") {
		t.Fatalf("amr %v after TOTP", c.AMR)
	}
}
