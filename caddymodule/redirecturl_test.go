package caddymodule_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
)

// redirectURLConfig is a Caddyfile whose connection corp has the fixed
// redirect_url redirect (and partner has none), with servers as the
// global servers block and sites after it (%[1]s in them is the
// upstream). Caddy logs at INFO to the returned file.
func redirectURLConfig(t *testing.T, idp *mockoidc.MockOIDC, redirect, servers, sites string) (caddyfile, logFile string) {
	t.Helper()
	dir := t.TempDir()
	cfg := idp.Config()
	logFile = filepath.Join(dir, "caddy.log")
	global := strings.Replace(globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			redirect_url %[4]s
			jit
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, redirect)), "level ERROR", "output file "+logFile+"\n\t\tlevel INFO", 1)
	return fmt.Sprintf("{%s\n%s\n}\n%s", global, servers, fmt.Sprintf(sites, newUpstream(t).hostPort())), logFile
}

// otherOriginMsg is the warning of a sign-in started on an origin that
// is not redirect_url's.
const otherOriginMsg = "sign-in started on an origin that is not redirect_url's; the origin is the one the request's Host names (or what trusted_proxies forward), which any client can write: if browsers reach the site there, the connection is misconfigured"

// expectStoppedOnAnotherOrigin checks a sign-in's response is the
// misconfiguration page with no session, and that the log has a WARN
// for conn (the latest one) whose fix names conn and says fixWords; it
// returns the entry.
func expectStoppedOnAnotherOrigin(t *testing.T, b *browser, base string, resp *http.Response, body, logFile, conn string, fixWords ...string) map[string]any {
	t.Helper()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, misconfiguredPage) {
		t.Fatalf("%s: status %d, want 500 with the misconfiguration page: %s", conn, resp.StatusCode, body)
	}
	if b.cookie(base, "jitauth_session") != nil {
		t.Fatalf("%s: a session was issued", conn)
	}
	entries := logEntries(t, logFile, otherOriginMsg)
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e["connection"] != conn {
			continue
		}
		if e["level"] != "warn" {
			t.Errorf("%s: logged at %v, want warn", conn, e["level"])
		}
		fix, _ := e["fix"].(string)
		for _, w := range append([]string{fmt.Sprintf("connection %q", conn)}, fixWords...) {
			if !strings.Contains(fix, w) {
				t.Errorf("%s: the fix does not say %q: %q", conn, w, fix)
			}
		}
		return e
	}
	t.Fatalf("%s: no WARN %q in the log:\n%s", conn, otherOriginMsg, mustReadFile(t, logFile))
	return nil
}

// wentToProvider reports whether any of visited is at the provider.
func wentToProvider(idp *mockoidc.MockOIDC, visited []string) bool {
	for _, v := range visited {
		if strings.HasPrefix(v, idp.Config().Issuer) {
			return true
		}
	}
	return false
}

// A connection whose redirect_url is one site (as the README suggests
// when the provider allows one fixed URL), offered by a second site on
// another host of the same Caddy: every sign-in there would come back
// to the first site, whose host never gets the second site's flow
// cookie, and end on "Sign-in expired", blaming the user. Loading
// refuses it instead, naming the connection, the site and the fix; a
// second site that does not offer the connection is fine.
func TestFixedRedirectURLOnAnotherSiteIsRefusedAtLoad(t *testing.T) {
	idp := startMockOIDC(t)
	p1, p2 := freePort(t), freePort(t)
	siteA := fmt.Sprintf("http://localhost:%d", p1)
	siteB := fmt.Sprintf("http://127.0.0.1:%d", p2)
	sites := func(siteBHandler string) string {
		return siteA + " {\n\tjit_auth\n\treverse_proxy %[1]s\n}\n" + siteB + " {\n\t" + siteBHandler + "\n\treverse_proxy %[1]s\n}\n"
	}

	caddyfile, _ := redirectURLConfig(t, idp, siteA+"/.jitauth/callback/corp", "", sites("jit_auth"))
	err := validate(t, caddyfile)
	if err == nil {
		t.Fatal("a site on another host offering a connection whose redirect_url is the first site's was accepted")
	}
	for _, want := range []string{`connection "corp"`, "redirect_url " + siteA + "/.jitauth/callback/corp", fmt.Sprintf("127.0.0.1:%d", p2), "remove redirect_url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}

	caddyfile, _ = redirectURLConfig(t, idp, siteA+"/.jitauth/callback/corp", "", sites("jit_auth {\n\t\tconnections partner\n\t}"))
	if err := validate(t, caddyfile); err != nil {
		t.Fatalf("a second site that offers only another connection was refused: %v", err)
	}
}

// A sign-in started on an origin other than the redirect_url's cannot
// come back with its state, wherever loading could not tell: a site
// without a host (any host reaches it), the site's host on another
// scheme, or on another port. It is stopped before the provider with
// the "misconfigured" page and a WARN saying what to change (the origin
// is the request's to name: TestSignInOnAForgedHostPortLogsNoError); the
// origin the redirect_url names signs in as before.
func TestSignInOnAnotherOriginThanRedirectURLIsMisconfigured(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	for _, tc := range []struct {
		name, redirect, sites string
		good, bad             string // where signing in works, and where it is stopped
	}{{
		name:     "a site without a host, on another host",
		redirect: fmt.Sprintf("http://localhost:%d/.jitauth/callback/corp", p1),
		sites:    fmt.Sprintf("http://:%d {\n\tjit_auth\n\treverse_proxy %%[1]s\n}\n", p1),
		good:     fmt.Sprintf("http://localhost:%d", p1), bad: fmt.Sprintf("http://127.0.0.1:%d", p1),
	}, {
		name:     "the site's host on another port",
		redirect: fmt.Sprintf("http://localhost:%d/.jitauth/callback/corp", p1),
		sites:    fmt.Sprintf("http://localhost:%d {\n\tjit_auth\n\treverse_proxy %%[1]s\n}\nhttp://localhost:%d {\n\tjit_auth\n\treverse_proxy %%[1]s\n}\n", p1, p2),
		good:     fmt.Sprintf("http://localhost:%d", p1), bad: fmt.Sprintf("http://localhost:%d", p2),
	}, {
		name:     "the site's host and port on another scheme",
		redirect: fmt.Sprintf("https://localhost:%d/.jitauth/callback/corp", p1),
		sites:    fmt.Sprintf("http://localhost:%d {\n\tjit_auth\n\treverse_proxy %%[1]s\n}\n", p1),
		bad:      fmt.Sprintf("http://localhost:%d", p1),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			idp := startMockOIDC(t)
			caddyfile, logFile := redirectURLConfig(t, idp, tc.redirect, "", tc.sites)
			runCaddyfile(t, caddyfile)
			if tc.good != "" {
				idp.QueueUser(alice())
				resp, body, visited := newBrowser(t).follow(tc.good+"/.jitauth/start/corp?rd=/notes", nil)
				if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != tc.good+"/notes" {
					t.Fatalf("signing in on the redirect_url's origin: %d at %s (visited %v)\n%s", resp.StatusCode, resp.Request.URL, visited, body)
				}
			}
			b := newBrowser(t)
			resp, body, visited := b.follow(tc.bad+"/.jitauth/start/corp?rd=/dashboard", nil)
			if wentToProvider(idp, visited) {
				t.Errorf("a sign-in on %s was sent to the provider: %v", tc.bad, visited)
			}
			e := expectStoppedOnAnotherOrigin(t, b, tc.bad, resp, body, logFile, "corp", "remove redirect_url", tc.bad+"/.jitauth/callback/corp")
			if e["site"] != tc.bad || e["redirect_url"] != tc.redirect {
				t.Errorf("the log does not name the site and the redirect_url: %v", e)
			}
			// The other connection, with its own callback, still works there.
			idp.QueueUser(alice())
			if resp, _, _ := newBrowser(t).follow(tc.bad+"/.jitauth/start/partner?rd=/dashboard", nil); resp.StatusCode != http.StatusOK {
				t.Errorf("signing in through partner on %s: %d", tc.bad, resp.StatusCode)
			}
		})
	}
}

// Behind a proxy that trusted_proxies vouches for, the site's origin is
// the one the proxy forwards (X-Forwarded-Host, -Proto), so a
// redirect_url on the public name of a site that Caddy serves under an
// internal address loads, and signs in from that public name; a request
// forwarded for another name, or reaching Caddy directly, is stopped.
func TestRedirectURLBehindATrustedProxy(t *testing.T) {
	idp := startMockOIDC(t)
	p := freePort(t)
	internal := fmt.Sprintf("http://127.0.0.1:%d", p)
	const redirect = "https://wiki.example.com/.jitauth/callback/corp"
	caddyfile, _ := redirectURLConfig(t, idp, redirect, "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}",
		internal+" {\n\tjit_auth\n\treverse_proxy %[1]s\n}\n")
	runCaddyfile(t, caddyfile)

	start := func(forwardedHost string) *http.Response {
		t.Helper()
		hdr := http.Header{}
		if forwardedHost != "" {
			hdr.Set("X-Forwarded-Proto", "https")
			hdr.Set("X-Forwarded-Host", forwardedHost)
		}
		resp := newBrowser(t).do(http.MethodGet, internal+"/.jitauth/start/corp", hdr)
		resp.Body.Close()
		return resp
	}
	resp := start("wiki.example.com")
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), idp.Config().Issuer) || loc.Query().Get("redirect_uri") != redirect {
		t.Fatalf("a sign-in forwarded for the redirect_url's host: %d to %v, want the provider with the redirect_url", resp.StatusCode, loc)
	}
	for _, host := range []string{"grafana.example.com", ""} {
		if resp := start(host); resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("a sign-in forwarded for %q: %d, want 500 (misconfigured)", host, resp.StatusCode)
		}
	}
}
