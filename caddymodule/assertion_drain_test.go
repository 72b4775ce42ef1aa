package caddymodule_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// jwksKeys fetches the site's JWKS: its status and each key's kid and alg.
func jwksKeys(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	resp, body := newBrowser(t).get(base + "/.jitauth/jwks.json")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	keys := map[string]string{}
	for _, k := range set.Keys {
		keys[k.Kid] = k.Alg
	}
	return resp.StatusCode, keys
}

// signedAssertion logs alice in on s and returns the assertion the
// upstream received.
func signedAssertion(t *testing.T, s *site) string {
	t.Helper()
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok := s.upstream.lastHeaders(t).Get("Jit-Assertion")
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("the assertion right after login: %v", err)
	}
	return tok
}

// A reload that changes the application's algorithm from ES256 to EdDSA
// keeps the ES256 keys in the JWKS beside the new EdDSA ones: an
// assertion signed before the reload, still valid, verifies after it
// (an upstream that fetches the JWKS then, or verifies the token again),
// and the new assertions verify too.
func TestAssertionSignedBeforeAnAlgorithmChangeStillVerifies(t *testing.T) {
	s := startSiteOpts(t, siteOptions{handlerBlock: "\t\tassertion {\n\t\t\tlifetime 30s\n\t\t}\n"})
	tok := signedAssertion(t, s)

	eddsa := strings.Replace(s.caddyfile, "lifetime 30s", "lifetime 30s\n\t\t\talgorithm EdDSA", 1)
	if eddsa == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would change nothing")
	}
	reloadInProcess(t, eddsa)

	code, keys := jwksKeys(t, s.base)
	if code != http.StatusOK || keys[kidOf(t, tok)] != "ES256" {
		t.Fatalf("after a reload from ES256 to EdDSA, the JWKS (%d) no longer has the ES256 key of an assertion valid for 30s: %v", code, keys)
	}
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("after a reload from ES256 to EdDSA, an ES256 assertion signed before it no longer verifies: %v", err)
	}

	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login after the reload: %d", resp.StatusCode)
	}
	after := s.upstream.lastHeaders(t).Get("Jit-Assertion")
	if _, err := assertionVerifier(s.base, s.base, nil, "EdDSA").Verify(context.Background(), after); err != nil {
		t.Fatalf("the EdDSA assertion after the reload: %v", err)
	}
	if _, keys = jwksKeys(t, s.base); keys[kidOf(t, after)] != "EdDSA" || keys[kidOf(t, tok)] != "ES256" {
		t.Fatalf("the JWKS has not both the EdDSA key that signs and the ES256 key that signed: %v", keys)
	}
}

// A reload that removes the assertion from every application keeps
// publishing the keys that signed (200, not 404) while an assertion they
// signed may be valid.
func TestAssertionSignedBeforeAReloadWithoutAssertionsStillVerifies(t *testing.T) {
	block := "\t\tassertion {\n\t\t\tlifetime 30s\n\t\t}\n"
	s := startSiteOpts(t, siteOptions{handlerBlock: block})
	tok := signedAssertion(t, s)

	none := strings.Replace(s.caddyfile, block, "", 1)
	if none == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would change nothing")
	}
	reloadInProcess(t, none)

	if code, keys := jwksKeys(t, s.base); code != http.StatusOK || keys[kidOf(t, tok)] != "ES256" {
		t.Fatalf("after a reload without assertions, the JWKS (%d) no longer has the key of an assertion valid for 30s: %v", code, keys)
	}
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("after a reload without assertions, an assertion signed before it no longer verifies: %v", err)
	}
}

// While the JWKS still publishes the keys of a removed assertion (above),
// an assertion they signed still verifies at an upstream that reads the
// header; so the header stays the module's: a copy the client sends (one
// taken from the upstream's request log, say) is removed as before the
// reload, or Bob, signed in after it, reaches the upstream as Alice.
func TestAssertionHeaderStaysStrippedWhileItsKeysDrain(t *testing.T) {
	block := "\t\tassertion {\n\t\t\tlifetime 30s\n\t\t}\n"
	s := startSiteOpts(t, siteOptions{handlerBlock: block})
	tok := signedAssertion(t, s)

	none := strings.Replace(s.caddyfile, block, "", 1)
	if none == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would change nothing")
	}
	reloadInProcess(t, none)

	b := newBrowser(t)
	s.queue(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true}})
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("Bob's login after the reload: %d", resp.StatusCode)
	}
	resp := b.do(http.MethodGet, s.base+"/page", http.Header{"Jit-Assertion": {tok}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bob's request: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "bob@example.com" {
		t.Fatalf("Remote-User = %q, want Bob", h.Get("Remote-User"))
	}
	if got := h.Get("Jit-Assertion"); got != "" {
		idt, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), got)
		sub := ""
		if err == nil {
			sub = idt.Subject
		}
		t.Errorf("after a reload without assertions, the upstream got the client's Jit-Assertion (verifies: %v, sub %q) while its key is still published", err == nil, sub)
	}
}
