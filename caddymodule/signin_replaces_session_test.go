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

// A sign-in of another person revokes the session it replaces in the
// browser (S16). With idle_timeout the module re-issues the session
// cookie on ordinary requests (Handler.touch sets it before the upstream
// answers), so a request of the previous user still in flight when
// someone else signs in (a long poll, a slow report) comes back with a
// Set-Cookie of the previous session; it must not make the new person
// act as the previous user.
func TestLateResponseDoesNotBringBackTheReplacedSession(t *testing.T) {
	lateResponseAfterAnotherSignIn(t, nil, "")
}

// A sign-in of another person that was started from a link on another
// site (Sec-Fetch-Site cross-site at the start) still revokes the session
// it replaces (S16): a late answer to one of the previous person's
// requests must not put it back.
func TestSignInStartedFromAnotherSiteRevokesTheReplacedSession(t *testing.T) {
	lateResponseAfterAnotherSignIn(t, http.Header{"Sec-Fetch-Site": {"cross-site"}},
		" (from a link on another site); the replaced session was not revoked because the login was started elsewhere")
}

// lateResponseAfterAnotherSignIn signs Alice in, starts a long poll of
// hers, signs Bob in in the same browser (his /start request carrying
// startHeader), lets the long poll answer, and checks that the browser
// does not act as Alice; how names the sign-in in the failure.
func lateResponseAfterAnotherSignIn(t *testing.T, startHeader http.Header, how string) {
	t.Helper()
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
	// Past an eighth of the idle timeout, the next request re-issues
	// the cookie with its last activity.
	time.Sleep(1100 * time.Millisecond)

	// Alice's tab has a long poll running...
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

	// ...when Bob sits down at the browser and signs in as himself.
	idp.QueueUser(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true, "name": "Bob"}})
	start := b.do(http.MethodGet, base+"/.jitauth/start/corp?rd=%2Fwhoami", startHeader)
	start.Body.Close()
	loc, err := start.Location()
	if err != nil {
		t.Fatalf("bob's start: %d, no redirect to the provider", start.StatusCode)
	}
	if resp, body, _ := b.follow(loc.String(), nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Fatalf("bob's sign-in: %d %q", resp.StatusCode, body)
	}

	// Alice's long poll comes back.
	close(release)
	res := <-done
	if res.resp == nil {
		t.Fatal("the long poll failed")
	}
	if res.resp.Header.Get("Set-Cookie") == "" {
		t.Log("note: the long poll's answer re-issued no cookie")
	}

	if _, body := b.get(base + "/whoami"); strings.Contains(body, "alice@example.com") {
		t.Errorf("Bob signed in as himself%s, yet after a response to a request Alice started earlier the browser acts as Alice: %q", how, body)
	}
}
