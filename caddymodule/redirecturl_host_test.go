package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The origin a sign-in starts on is the request's Host (Caddy's host
// matcher ignores its port), which any client writes as it likes: an
// anonymous GET of /.jitauth/start/corp with Host localhost:1 on the
// site that redirect_url names is stopped before the provider, but is no
// proof that the configuration is wrong. It logs no ERROR, and what it
// logs says where the origin came from instead of telling operators, on
// that word alone, to remove a correct redirect_url.
func TestSignInOnAForgedHostPortLogsNoError(t *testing.T) {
	idp := startMockOIDC(t)
	p := freePort(t)
	site := fmt.Sprintf("http://localhost:%d", p)
	caddyfile, logFile := redirectURLConfig(t, idp, site+"/.jitauth/callback/corp", "",
		site+" {\n\tjit_auth\n\treverse_proxy %[1]s\n}\n")
	runCaddyfile(t, caddyfile)

	req, err := http.NewRequest(http.MethodGet, site+"/.jitauth/start/corp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost:1"
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), idp.Config().Issuer) {
		t.Fatalf("a sign-in on another origin than redirect_url's was sent to the provider")
	}

	warned := false
	for _, line := range strings.Split(mustReadFile(t, logFile), "\n") {
		if !strings.Contains(line, "localhost:1") {
			continue
		}
		if strings.Contains(line, `"level":"error"`) {
			t.Errorf("an anonymous request's Host header logged an ERROR: %s", line)
		}
		warned = warned || strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "Host")
	}
	if !warned {
		t.Errorf("no WARN saying the origin is the request's Host:\n%s", mustReadFile(t, logFile))
	}
	// A browser on the redirect_url's own origin signs in as before.
	idp.QueueUser(alice())
	if resp, body, _ := newBrowser(t).follow(site+"/.jitauth/start/corp?rd=/notes", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in on the redirect_url's origin: %d\n%s", resp.StatusCode, body)
	}
}
