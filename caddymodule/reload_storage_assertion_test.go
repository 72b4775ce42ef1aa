package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The assertion signing keys are kept in Caddy's storage. A reload that
// moved the storage elsewhere found no ring there and made a new one,
// whose first key signs at once: the key that signed before was gone
// from the JWKS while its assertions were valid, and an upstream that
// caches the JWKS (as the README has it may, for minutes) refused every
// assertion until it fetched it again. The running rings now go into a
// storage that has none.
func TestReloadToAnotherStorageKeepsTheAssertionKeys(t *testing.T) {
	s := startSiteOpts(t, siteOptions{handlerBlock: "\t\tassertion {\n\t\t\tlifetime 5m\n\t\t}\n"})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok := s.upstream.lastHeaders(t).Get("Jit-Assertion")
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("the assertion right after login: %v", err)
	}

	moved := strings.Replace(s.caddyfile, s.dir+"/storage", s.dir+"/storage-moved", 1)
	if moved == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would not move the storage")
	}
	reloadInProcess(t, moved)
	b.client.CloseIdleConnections()

	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("after a reload to another storage, an assertion signed before it no longer verifies: %v", err)
	}
	b.get(s.base + "/after-reload")
	if got, want := kidOf(t, s.upstream.lastHeaders(t).Get("Jit-Assertion")), kidOf(t, tok); got != want {
		t.Fatalf("after a reload to another storage, assertions are signed with key %s, which an upstream caching the JWKS does not have (it has %s)", got, want)
	}
}
