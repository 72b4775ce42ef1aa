package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A reload that changes an application's assertion algorithm (ES256 to
// EdDSA) takes every ES256 key out of the JWKS at once: the JWKS serves
// only the rings of the algorithms the current configuration signs
// with. An assertion signed just before the reload, still valid for
// most of its lifetime, no longer verifies. The README promises that a
// reload "never unpublishes a key while an assertion it signed is
// valid". With several instances the same happens for the whole
// rollout: an instance still on ES256 signs with keys that the JWKS of
// an instance already on EdDSA does not list, so an upstream verifies
// or refuses an assertion depending on which instance answered its JWKS
// request.
func TestZZAssertionSignedBeforeAnAlgorithmChangeStillVerifies(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tassertion {\n\t\t\tlifetime 5m\n\t\t\talgorithm ES256\n\t\t}\n",
	})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok := s.upstream.lastHeaders(t).Get("Jit-Assertion")
	idt, err := assertionVerifier(s.base, s.base, nil, "ES256", "EdDSA").Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("the assertion right after login: %v", err)
	}

	eddsa := strings.Replace(s.caddyfile, "algorithm ES256", "algorithm EdDSA", 1)
	if eddsa == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would change nothing")
	}
	reloadInProcess(t, eddsa)
	b.get(s.base + "/after-reload")
	if got := s.upstream.lastHeaders(t).Get("Jit-Assertion"); kidOf(t, got) == kidOf(t, tok) {
		t.Fatal("the reloaded configuration still signs with the ES256 key")
	}

	// A fresh verifier: an upstream whose JWKS cache expired, or one
	// that fetched it for the new EdDSA kid.
	if _, err := assertionVerifier(s.base, s.base, nil, "ES256", "EdDSA").Verify(context.Background(), tok); err != nil {
		t.Errorf("right after a reload from algorithm ES256 to EdDSA, an ES256 assertion signed before it (lifetime 5m, valid %s more) no longer verifies against the JWKS: %v",
			time.Until(idt.Expiry).Round(time.Second), err)
	}
}
