package caddymodule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// A configured issuer is the iss whatever host, port or scheme a trusted
// proxy forwards: behind one proxy, an open site cannot mint the
// restricted site's iss and aud by forwarding the restricted site's host,
// which it can when both take the default (the forwarded origin).
func TestConfiguredAssertionIssuerIgnoresForwardedHost(t *testing.T) {
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
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}
http://:%d {
	jit_auth {
		allow group admins
		assertion {
			issuer https://admin.example
		}
	}
	reverse_proxy %s
}
http://:%d {
	jit_auth {
		assertion {
			issuer https://open.example
		}
	}
	reverse_proxy %s
}
`, globalOptions(dir, conns), p1, up.url, p2, up.url))
	open := fmt.Sprintf("http://localhost:%d", p2)

	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, _, visited := b.follow(open+"/.jitauth/start/corp?rd=/welcome", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login at the open site: %d after %v", resp.StatusCode, visited)
	}
	session := b.cookie(open, "jitauth_session").Value

	req, _ := http.NewRequest(http.MethodGet, open+"/echo", nil)
	// The restricted site's origin, as a proxy would forward it (a
	// loopback host keeps the development cookie's name).
	req.Header.Set("X-Forwarded-Host", fmt.Sprintf("localhost:%d", p1))
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
		t.Fatalf("open site with the restricted site's forwarded host: status %d, reached %v", r2.StatusCode, ok)
	}
	tok := seen.header.Get("Jit-Assertion")
	if tok == "" {
		t.Fatal("no assertion")
	}
	keys := gooidc.NewRemoteKeySet(context.Background(), open+"/.jitauth/jwks.json")
	verifier := func(iss string) *gooidc.IDTokenVerifier {
		return gooidc.NewVerifier(iss, keys, &gooidc.Config{ClientID: iss, SupportedSigningAlgs: []string{"ES256"}})
	}
	if _, err := verifier(fmt.Sprintf("http://localhost:%d", p1)).Verify(context.Background(), tok); err == nil {
		t.Error("the open site minted an assertion with the restricted site's forwarded origin as iss and aud")
	}
	if _, err := verifier("https://admin.example").Verify(context.Background(), tok); err == nil {
		t.Error("the open site minted an assertion that the restricted site's upstream (iss and aud https://admin.example) accepts")
	}
	if _, err := verifier("https://open.example").Verify(context.Background(), tok); err != nil {
		t.Errorf("the open site's assertion does not verify with its configured issuer: %v", err)
	}
}

// A configured issuer is checked at load: one exact absolute URL, and
// two applications with one issuer and one audience are refused whatever
// their hosts, as two applications of one site are.
func TestConfiguredAssertionIssuerIsCheckedAtLoad(t *testing.T) {
	for issuer, want := range map[string]string{
		"sso.example.com":              "absolute http or https URL",
		"ftp://sso.example.com":        "absolute http or https URL",
		"https://":                     "absolute http or https URL",
		"https://sso.example.com/?a=b": "no user information, query or fragment",
		"https://sso.example.com/#top": "no user information, query or fragment",
		"https://u@sso.example.com":    "no user information, query or fragment",
		"https://sso.exämple.com":      "non-ASCII",
	} {
		err := validateSites(t, fmt.Sprintf(`
http://a.example {
	jit_auth {
		assertion {
			issuer %q
		}
	}
	respond ok
}`, issuer))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("issuer %q: err = %v, want one saying %q", issuer, err, want)
		}
	}

	err := validateSites(t, `
http://a.example {
	jit_auth {
		assertion {
			issuer https://sso.example.com
		}
	}
	respond ok
}
http://b.example:8080 {
	jit_auth {
		allow group admins
		assertion {
			issuer https://sso.example.com
		}
	}
	respond ok
}`)
	if err == nil || !strings.Contains(err.Error(), "the issuer https://sso.example.com") {
		t.Errorf("two sites with one configured issuer and the default audience loaded (err=%v)", err)
	}
	if err := validateSites(t, `
http://a.example {
	jit_auth {
		assertion {
			issuer https://sso.example.com
			audience wiki
		}
	}
	respond ok
}
http://b.example {
	jit_auth {
		allow group admins
		assertion {
			issuer https://sso.example.com
			audience admin
		}
	}
	respond ok
}`); err != nil {
		t.Errorf("one issuer with an audience per application: %v", err)
	}
}
