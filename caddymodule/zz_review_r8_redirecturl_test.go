package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestReviewR8FixedRedirectURLKeepsABearerOnlyAPISite: the operator's
// provider allows one redirect URI, so connection corp has redirect_url
// on the wiki (the README's advice for that case), and an API site on
// another host accepts the same provider's tokens with `bearer corp`, as
// in the README's "Bearer tokens for API clients" example. A bearer
// connection must be one the application offers (bearer.go validate),
// and a connection cannot be offered for tokens only, so the API site
// "offers" corp for browser sign-ins that nobody makes there.
//
// Today (since cd0fa58) checkRedirectURLs refuses the whole configuration
// at load: the wiki and the API that worked before the upgrade stop
// loading. The fix the error suggests (a connection of its own for the
// API site) does not work with JIT on: a bearer token maps to the local
// user of (connection, issuer, subject), which only a browser sign-in
// through that same connection creates, and the provider's one redirect
// URI is the wiki's.
//
// Expected: the configuration loads (an application that accepts the
// connection's bearer tokens is not refused for it; at most a sign-in
// started there gets the misconfigured page at runtime, as for the
// hosts loading cannot check), alice signs in on the wiki and her token
// is accepted by the API.
//
// Severity: medium — a working, documented combination (redirect_url +
// bearer on an API site) is refused at load after upgrading, with no
// configuration that restores it.
func TestReviewR8FixedRedirectURLKeepsABearerOnlyAPISite(t *testing.T) {
	idp := startMockOIDC(t)
	p1, p2 := freePort(t), freePort(t)
	wiki := fmt.Sprintf("http://localhost:%d", p1)
	api := fmt.Sprintf("http://127.0.0.1:%d", p2)
	sites := wiki + " {\n\tjit_auth {\n\t\tconnections corp\n\t}\n\treverse_proxy %[1]s\n}\n" +
		api + " {\n\tjit_auth {\n\t\tconnections corp\n\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n\t}\n\treverse_proxy %[1]s\n}\n"
	caddyfile, _ := redirectURLConfig(t, idp, wiki+"/.jitauth/callback/corp", "", sites)
	if err := validate(t, caddyfile); err != nil {
		t.Fatalf("a wiki with redirect_url plus an API site taking the connection's bearer tokens was refused at load: %v", err)
	}
	runCaddyfile(t, caddyfile)

	idp.QueueUser(alice())
	resp, body, visited := newBrowser(t).follow(wiki+"/.jitauth/start/corp?rd=/notes", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != wiki+"/notes" {
		t.Fatalf("signing in on the wiki: %d at %s (visited %v)\n%s", resp.StatusCode, resp.Request.URL, visited, body)
	}
	code, body2, _ := callAPI(t, api, signWith(t, idp.Keypair, bearerClaims(idp.Config().Issuer, "alice-sub")))
	if code != http.StatusOK {
		t.Fatalf("alice's bearer token on the API site: %d\n%s", code, body2)
	}
}

// TestReviewR8RedirectURLWithAnInternationalisedHost: a single site on
// an internationalised domain name, and the connection's redirect_url on
// that same site, spelled as the browser's address bar shows it
// (Unicode: http://bücher.example/...). Browsers send the punycode form
// in Host (xn--...), and bring the flow cookie back on the callback
// whichever spelling the provider's redirect uses: the sign-in worked
// before cd0fa58. (The site address is punycode here because Caddy's
// automatic HTTPS mishandles a Unicode http:// address in tests; a
// Unicode site address is matched as punycode all the same.)
//
// Today redirectURLElsewhere compares canonicalOrigin(redirect_url)
// (Unicode, only lower-cased) with the request's origin (punycode), finds
// them different, and every sign-in on the one site the redirect_url
// names gets "This sign-in is misconfigured" and an ERROR telling the
// operator to remove redirect_url.
//
// Expected: origins compared as browsers compare them, the host in its
// ASCII (IDNA) form on both sides (canonicalOrigin: idna.Lookup.ToASCII),
// so that the sign-in goes through as before.
//
// Severity: low — only IDN sites with redirect_url spelled in Unicode,
// but for them every sign-in is broken by the upgrade.
func TestReviewR8RedirectURLWithAnInternationalisedHost(t *testing.T) {
	idp := startMockOIDC(t)
	p := freePort(t)
	unicodeSite := fmt.Sprintf("http://bücher.localhost:%d", p)
	asciiSite := fmt.Sprintf("http://xn--bcher-kva.localhost:%d", p)
	caddyfile, _ := redirectURLConfig(t, idp, unicodeSite+"/.jitauth/callback/corp", "",
		asciiSite+" {\n\tjit_auth\n\treverse_proxy %[1]s\n}\n")
	runCaddyfile(t, caddyfile)

	// A browser resolves *.localhost to the loopback address.
	b := newBrowser(t)
	b.client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	idp.QueueUser(alice())
	resp, body, visited := b.follow(asciiSite+"/.jitauth/start/corp?rd=/notes", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/notes" {
		title := body
		if i := strings.Index(body, "<h1>"); i >= 0 {
			title = body[i:min(len(body), i+120)]
		}
		t.Fatalf("signing in on the redirect_url's own site, reached by its punycode name: %d at %s (visited %v): %s",
			resp.StatusCode, resp.Request.URL, visited, title)
	}
}
