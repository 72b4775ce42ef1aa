package caddymodule_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// A Host of about 8 KB at the start endpoint of a site that answers any
// host is a 400 with no ERROR in the log (S12): no host name is that long,
// and a callback URL built from it could not be sealed into the login's
// cookie (it was a 500 and an ERROR anyone could cause).
func TestOversizedHostAtSignInStartIsA400(t *testing.T) {
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
