package caddymodule_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// TestReviewR8OversizedHostAtSignInStartIsA4xx: on a site that answers
// any host (a catch-all `http://:port` or `:443` site, or a wildcard
// site), a client starts a sign-in with a Host header of several KB of
// random DNS-like labels, far longer than any host name can be (253
// bytes). The flow cookie carries the redirect URI built from that Host,
// so it cannot be sealed: sealReturning (5039870/367f2a9) gives up the
// return path, seals again, fails again, and serveStart answers 500
// "Sign-in failed" with an ERROR in the log ("sealing login flow
// cookie"), each time, for anyone who sends such a request; and first a
// WARN blaming a return URL that was not the problem.
// (Not a regression of these commits: it was a 500 before them too.)
//
// Expected (SECURITY.md S12: malformed input yields a clear 4xx, and the
// brief of these commits: "never a 500"): a 4xx saying the request is
// not one a sign-in can start from, without an ERROR; validHost already
// bounds an X-Forwarded-Host to 255 bytes, the request's own Host is
// not bounded at all.
//
// Severity: low — only the sender's own request fails, but any client
// can make the log show ERRORs (alerts) at will, and a 500 at sign-in
// start is what the return-URL fix set out to remove.
func TestReviewR8OversizedHostAtSignInStartIsA4xx(t *testing.T) {
	idp := startMockOIDC(t)
	p := freePort(t)
	cfg := idp.Config()
	dir := t.TempDir()
	caddyfile := fmt.Sprintf("{%s\n}\nhttp://:%d {\n\tjit_auth\n\treverse_proxy %s\n}\n",
		globalOptions(dir, fmt.Sprintf("\t\tconnection corp {\n\t\t\toidc %s %s %s\n\t\t}", cfg.Issuer, cfg.ClientID, cfg.ClientSecret)),
		p, newUpstream(t).hostPort())
	runCaddyfile(t, caddyfile)

	// A loopback name, so that plain HTTP is allowed, and random
	// labels, so that compression does not shrink it into a cookie.
	rng := rand.New(rand.NewPCG(8, 8))
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	var labels []string
	for range 130 {
		b := make([]byte, 60)
		for i := range b {
			b[i] = alnum[rng.IntN(len(alnum))]
		}
		labels = append(labels, string(b))
	}
	host := strings.Join(labels, ".") + ".localhost"

	// The ordinary host signs in as usual: the site works.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/.jitauth/start/corp", p), nil)
	req.Host = fmt.Sprintf("localhost:%d", p)
	resp, err := newBrowser(t).client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a sign-in started on localhost: %d, want 302 to the provider", resp.StatusCode)
	}

	req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/.jitauth/start/corp?rd=/notes", p), nil)
	req.Host = fmt.Sprintf("%s:%d", host, p)
	resp, err = newBrowser(t).client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		title := string(body)
		if i := strings.Index(title, "<h1>"); i >= 0 {
			title = title[i:min(len(title), i+120)]
		}
		t.Fatalf("a sign-in started with a %d-byte Host: %d, want a 4xx (S12): %s", len(host), resp.StatusCode, title)
	}
}
