package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A provider that allows one redirect URI: connection corp's redirect_url
// is the wiki's, and an API site on another host takes corp's tokens
// (bearer corp, which must offer the connection). The configuration loads,
// alice signs in on the wiki, and her token is accepted by the API.
func TestFixedRedirectURLKeepsABearerOnlyAPISite(t *testing.T) {
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

// A redirect_url written as the address bar shows it (bücher.localhost)
// names the site browsers reach as xn--bcher-kva.localhost: signing in
// there works, not "Sign-in misconfigured".
func TestRedirectURLWithAnInternationalisedHost(t *testing.T) {
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
