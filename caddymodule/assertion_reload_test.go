package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A reload that shortens both assertion_key_rotation and the assertion
// lifetime does not take the key that signed before it out of the JWKS
// while an assertion it signed, under the old and longer lifetime, is
// valid: an upstream that verifies it again (a retry, a second service
// it passes the token to) still can.
func TestAssertionSignedBeforeAShorteningReloadStillVerifies(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		globalExtra:  "\t\tassertion_key_rotation 30s\n",
		handlerBlock: "\t\tassertion {\n\t\t\tlifetime 30s\n\t\t}\n",
	})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok := s.upstream.lastHeaders(t).Get("Jit-Assertion")
	idt, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("the assertion right after login: %v", err)
	}
	if lt := idt.Expiry.Sub(idt.IssuedAt); lt != 30*time.Second {
		t.Fatalf("lifetime %s, want 30s", lt)
	}

	shorter := strings.NewReplacer("assertion_key_rotation 30s", "assertion_key_rotation 1s", "lifetime 30s", "lifetime 1s").Replace(s.caddyfile)
	if shorter == s.caddyfile {
		t.Fatal("the test's Caddyfile changed; the reload would change nothing")
	}
	reloadInProcess(t, shorter)
	reloaded := time.Now()
	// The reload closes the old server's idle connections; a request on
	// one the client still holds would read EOF.
	b.client.CloseIdleConnections()

	// The reloaded configuration signs with the next key once a period
	// of 1s has passed since the old one started.
	eventually(t, "the next key signs after the reload to assertion_key_rotation 1s", 3*time.Second, func() bool {
		b.get(s.base + "/after-reload")
		return kidOf(t, s.upstream.lastHeaders(t).Get("Jit-Assertion")) != kidOf(t, tok)
	})
	// A period of 1s and the clock skew allowed (at most the period)
	// after the old key stopped, it would be gone; the assertion it
	// signed is valid until about 29s after the reload.
	time.Sleep(time.Until(reloaded.Add(3500 * time.Millisecond)))
	if time.Until(idt.Expiry) < time.Second {
		t.Fatalf("the test ran too slowly: the assertion expires in %s", time.Until(idt.Expiry))
	}
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("%s after a reload to assertion_key_rotation 1s and lifetime 1s, an assertion signed before it with lifetime 30s, valid for %s more, no longer verifies against the JWKS: %v",
			time.Since(reloaded).Round(100*time.Millisecond), time.Until(idt.Expiry).Round(100*time.Millisecond), err)
	}
}
