package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A sign-in of another person that was started from a link on another
// site (Sec-Fetch-Site cross-site at the start) still revokes the session
// it replaces (S16): a late answer to one of the previous person's
// requests must not put it back.
func TestSignInStartedFromAnotherSiteRevokesTheReplacedSession(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long-poll" {
			started <- struct{}{}
			<-release
		}
		fmt.Fprintf(w, "upstream saw %s", r.Header.Get("Remote-User"))
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	dir := t.TempDir()
	idp := startMockOIDC(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	conns := fmt.Sprintf("\t\tconnection corp {\n\t\t\toidc %s %s %s\n\t\t}", cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n\tjit_auth {\n\t\tidle_timeout 8s\n\t}\n\treverse_proxy %s\n}\n",
		globalOptions(dir, conns), base, strings.TrimPrefix(up.URL, "http://")))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp?rd=%2Fwhoami", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("alice's sign-in: %d %q", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // the next request re-issues the cookie

	type result struct {
		resp *http.Response
		body string
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/long-poll", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := b.client.Do(req)
		if err != nil {
			done <- result{}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp, string(body)}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll never reached the upstream")
	}

	// Bob sits down and signs in as himself through the app's link on the
	// company portal (another site): the browser says so at /start.
	idp.QueueUser(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true, "name": "Bob"}})
	resp := b.do(http.MethodGet, base+"/.jitauth/start/corp?rd=%2Fwhoami", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("start: %d, no redirect to the provider", resp.StatusCode)
	}
	if resp, body, _ := b.follow(loc.String(), nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Fatalf("bob's sign-in: %d %q", resp.StatusCode, body)
	}

	close(release)
	res := <-done
	if res.resp == nil {
		t.Fatal("the long poll failed")
	}
	if res.resp.Header.Get("Set-Cookie") == "" {
		t.Log("note: the long poll's answer re-issued no cookie")
	}
	if _, body := b.get(base + "/whoami"); strings.Contains(body, "alice@example.com") {
		t.Errorf("Bob signed in as himself (from a link on another site), yet after a response to a request Alice started earlier the browser acts as Alice: %q; the replaced session was not revoked because the login was started elsewhere", body)
	}
}
