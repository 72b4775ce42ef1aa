package caddymodule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// getWithSession asks for base+path with the session cookie, as an API
// client would, and returns the status.
func getWithSession(t *testing.T, base, path, session string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", "jitauth_session="+session)
	resp, err := protocolClients()["HTTP/1.1"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The assertion's iss (and default aud) names the site that served the
// request, not the Host header the client sent: Caddy's host matcher
// ignores the port, so a request to the open site on port P2 saying
// "Host: localhost:P1" is served by that open site, which must not mint
// an assertion with the restricted site's (P1) origin, one that would
// verify there with that site's own JWKS (one key ring for the whole
// configuration) although the restricted application refuses the user.
func TestAssertionIssuerIsTheSiteNotTheClientsHost(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newRecordingUpstream(t)
	p1, p2 := freePort(t), freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit off
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		allow group admins
		assertion
	}
	reverse_proxy %s
}
http://localhost:%d {
	jit_auth {
		assertion
	}
	reverse_proxy %s
}
`, globalOptions(dir, conns), p1, up.url, p2, up.url))
	restricted := fmt.Sprintf("http://localhost:%d", p1)
	open := fmt.Sprintf("http://localhost:%d", p2)

	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, _, visited := b.follow(open+"/.jitauth/start/corp?rd=/welcome", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login at the open site: %d after %v", resp.StatusCode, visited)
	}
	session := b.cookie(open, "jitauth_session").Value

	if st := getWithSession(t, restricted, "/secret", session); st != http.StatusForbidden {
		t.Fatalf("restricted site for alice: status %d, want 403", st)
	}
	up.take("/secret")

	req, _ := http.NewRequest(http.MethodGet, open+"/echo", nil)
	req.Host = fmt.Sprintf("localhost:%d", p1) // the other site's origin
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", "jitauth_session="+session)
	r2, err := protocolClients()["HTTP/1.1"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r2.Body)
	r2.Body.Close()
	seen, ok := up.take("/echo")
	if !ok || r2.StatusCode != http.StatusOK {
		t.Fatalf("open site with a foreign Host: status %d, reached %v", r2.StatusCode, ok)
	}
	tok := seen.header.Get("Jit-Assertion")
	if tok == "" {
		t.Fatal("no assertion")
	}
	if _, err := assertionVerifier(restricted, restricted, nil).Verify(context.Background(), tok); err == nil {
		t.Errorf("the open site on :%d minted an assertion with iss/aud %s (from the client's Host header) that the restricted site's upstream accepts; the restricted application refuses alice", p2, restricted)
	}
}
