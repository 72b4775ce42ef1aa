package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/examples/internal/legacyapp"
	"github.com/jitauth/caddy-jitauth/internal/devidp"
	"github.com/jitauth/caddy-jitauth/internal/freeport"
)

// browserTransport sends what a browser's top-level navigation sends, so
// jit_auth redirects to the login instead of answering 401.
type browserTransport struct{ accept string }

func (b browserTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", b.accept)
	return http.DefaultTransport.RoundTrip(r)
}

func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 15 * time.Second,
		Transport: browserTransport{"text/html,application/xhtml+xml,*/*;q=0.8"}}
}

// freePort returns a port that was free a moment ago; Caddy's site address
// (and so the redirect URI registered at the provider) needs it up front.
func freePort(t *testing.T) int {
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startDemo runs the demo on free ports and returns once it serves.
func startDemo(t *testing.T, dataDir string) running {
	t.Helper()
	return startDemoWith(t, config{
		DataDir: dataDir,
		Port:    freePort(t),
		IdPAddr: "127.0.0.1:0",
		AppAddr: "127.0.0.1:0",
		Quiet:   true,
	})
}

func startDemoWith(t *testing.T, cfg config) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan running, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, io.Discard, func(r running) { started <- r }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	select {
	case r := <-started:
		return r
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start")
	}
	panic("unreachable")
}

// login signs in through the demo from a fresh browser and returns it,
// with the final response's body (the legacy app's page).
func login(t *testing.T, r running, path, username, password string) (*http.Client, string) {
	t.Helper()
	c := newBrowser(t)
	resp, err := c.Get(r.SiteURL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	issuer, _ := url.Parse(r.Issuer)
	if resp.Request.URL.Host != issuer.Host {
		t.Fatalf("GET %s ended at %s (%s), not at the provider's login page", path, resp.Request.URL, resp.Status)
	}

	resp, err = devidp.Login(c, resp.Request.URL.String(), username, password)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if want := r.SiteURL + "/.jitauth/callback/demo"; !strings.HasPrefix(callback.String(), want+"?") {
		t.Fatalf("provider redirected to %s, want %s", callback, want)
	}

	resp, err = c.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != r.SiteURL+path {
		t.Fatalf("after the callback: %s at %s:\n%s", resp.Status, resp.Request.URL, body)
	}
	return c, string(body)
}

func whoami(t *testing.T, c *http.Client, r running) (int, legacyapp.Identity) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.SiteURL+"/api/whoami", nil)
	api := *c
	api.Transport = browserTransport{"application/json"}
	resp, err := api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var id legacyapp.Identity
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, id
}

func TestDemoLoginAndLogout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Caddy")
	}
	r := startDemo(t, t.TempDir())

	// Straight to the app: no identity.
	resp, err := http.Get(r.AppURL + "/api/whoami")
	if err != nil {
		t.Fatal(err)
	}
	var anon legacyapp.Identity
	json.NewDecoder(resp.Body).Decode(&anon)
	resp.Body.Close()
	if anon.User != "" {
		t.Errorf("legacy app without proxy: %+v", anon)
	}

	c, page := login(t, r, "/some/page?x=1", "alice", "wonderland")
	if !strings.Contains(page, `<strong id="user">alice@example.com</strong>`) {
		t.Errorf("legacy app page does not greet alice@example.com:\n%s", page)
	}
	status, id := whoami(t, c, r)
	if status != http.StatusOK || id.User != "alice@example.com" || id.Email != "alice@example.com" || id.Name != "Alice Liddell" {
		t.Errorf("whoami: %d %+v", status, id)
	}

	// bob, in another browser, is another user.
	c2, _ := login(t, r, "/", "bob", "builder")
	if _, id := whoami(t, c2, r); id.User != "bob@example.com" {
		t.Errorf("bob's whoami: %+v", id)
	}

	// The logout link shows a confirmation page; its form ends alice's
	// session only.
	resp, err = c.Get(r.SiteURL + legacyapp.LogoutPath)
	if err != nil {
		t.Fatal(err)
	}
	confirm, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if status, _ := whoami(t, c, r); status != http.StatusOK {
		t.Errorf("the logout link alone signed alice out: %d", status)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(confirm)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("logout page: %s\n%s", resp.Status, confirm)
	}
	resp, err = c.PostForm(r.SiteURL+legacyapp.LogoutPath, url.Values{"csrf": {html.UnescapeString(string(m[1]))}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signing out: %s", resp.Status)
	}
	if status, id := whoami(t, c, r); status != http.StatusUnauthorized {
		t.Errorf("after logout: %d %+v, want 401", status, id)
	}
	if _, id := whoami(t, c2, r); id.User != "bob@example.com" {
		t.Errorf("bob after alice's logout: %+v", id)
	}
}

// A second demo refuses to start on a port the first one (or anything
// else) holds, naming the port and the flag to change it, instead of
// sharing the site's port with it (Caddy listens with SO_REUSEPORT).
func TestDemoRefusesTakenPorts(t *testing.T) {
	first := startDemo(t, t.TempDir())
	hostPort := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Host
	}
	site, err := url.Parse(first.SiteURL)
	if err != nil {
		t.Fatal(err)
	}
	sitePort, _ := strconv.Atoi(site.Port())
	free := func() config {
		return config{DataDir: t.TempDir(), Port: freePort(t), IdPAddr: "127.0.0.1:0", AppAddr: "127.0.0.1:0", Quiet: true}
	}
	sameSite, sameIdP, sameApp := free(), free(), free()
	sameSite.Port = sitePort
	sameIdP.IdPAddr = hostPort(first.Issuer)
	sameApp.AppAddr = hostPort(first.AppURL)
	for _, c := range []struct {
		cfg  config
		want string
	}{
		{sameSite, fmt.Sprintf("127.0.0.1:%d (the protected site) is already in use", sitePort)},
		{sameIdP, hostPort(first.Issuer) + " (the identity provider) is already in use"},
		{sameApp, hostPort(first.AppURL) + " (the legacy app) is already in use"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		started := false
		err := run(ctx, c.cfg, io.Discard, func(running) { started = true; cancel() })
		cancel()
		if started || err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "choose another port with -") {
			t.Errorf("second demo: started %v, error %v; want %q", started, err, c.want)
		}
	}

	// The first demo is still the only one answering.
	resp, err := newBrowser(t).Get(first.SiteURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), first.Issuer+"/") {
		t.Errorf("after the refused second demo, / ends at %s", resp.Request.URL)
	}
}

// The README's walk through operating the directory, on the demo: the
// admin endpoint on loopback lists the user who signed in, disabling
// them ends their session at once, and /metrics counts the login.
func TestDemoAdminEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Caddy")
	}
	admin := fmt.Sprintf("localhost:%d", freePort(t))
	r := startDemoWith(t, config{DataDir: t.TempDir(), Port: freePort(t), IdPAddr: "127.0.0.1:0", AppAddr: "127.0.0.1:0", Quiet: true, AdminAddr: admin})
	if r.AdminURL != "http://"+admin {
		t.Fatalf("AdminURL %q", r.AdminURL)
	}
	var out bytes.Buffer
	printBanner(&out)(r)
	if !strings.Contains(out.String(), "go run ./cmd/caddy jit-users list") || !strings.Contains(out.String(), r.AdminURL+"/metrics") {
		t.Errorf("the banner does not say how to reach the admin endpoint:\n%s", out.String())
	}
	c, _ := login(t, r, "/", "alice", "wonderland")

	call := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, r.AdminURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "/jit_auth/users"); code != http.StatusOK || !strings.Contains(body, `"username":"alice@example.com"`) {
		t.Fatalf("GET /jit_auth/users: %d %s", code, body)
	}
	if code, body := call("POST", "/jit_auth/users/alice@example.com/disable"); code != http.StatusOK {
		t.Fatalf("disable: %d %s", code, body)
	}
	if status, _ := whoami(t, c, r); status != http.StatusUnauthorized {
		t.Errorf("whoami after disabling alice: %d, want 401", status)
	}
	if code, body := call("GET", "/metrics"); code != http.StatusOK || !strings.Contains(body, `jit_auth_logins_total{connection="demo",outcome="succeeded"} `) {
		t.Errorf("/metrics: %d, no jit_auth_logins_total of the login", code)
	}
}
