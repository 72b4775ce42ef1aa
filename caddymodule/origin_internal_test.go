package caddymodule

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// originRequest is a request as Caddy hands it to a handler, over TLS or
// not, from a peer trusted_proxies vouches for or not.
func originRequest(host, proto, fwdHost string, overTLS, trusted bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://placeholder/", nil)
	r.Host = host
	if proto != "" {
		r.Header.Set("X-Forwarded-Proto", proto)
	}
	if fwdHost != "" {
		r.Header.Set("X-Forwarded-Host", fwdHost)
	}
	if overTLS {
		r.TLS = &tls.ConnectionState{}
	} else {
		r.TLS = nil
	}
	vars := map[string]any{caddyhttp.TrustedProxyVarKey: trusted}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
}

// The session cookie's name depends on cookieSecure, on every request;
// it asks for the trusted proxy once, and must answer as the plain
// composition of isHTTPS, requestHost and isLoopbackHost does (S3: the
// forwarded headers count only from a trusted proxy).
func TestCookieSecure(t *testing.T) {
	for _, tc := range []struct {
		host, proto, fwdHost string
		tls, trusted, want   bool
	}{
		{"127.0.0.1:8080", "", "", false, false, false},
		{"localhost", "", "", false, false, false},
		{"app.localhost:80", "", "", false, false, false},
		{"[::1]:8080", "", "", false, false, false},
		{"example.com", "", "", false, false, true},
		{"127.0.0.1", "", "", true, false, true},
		{"127.0.0.1", "https", "", false, false, false}, // an untrusted peer's claim
		{"127.0.0.1", "https", "", false, true, true},
		{"127.0.0.1", "HTTPS", "", false, true, true},
		{"127.0.0.1", "http", "example.com", false, false, false},
		{"127.0.0.1", "http", "example.com", false, true, true},
		{"example.com", "http", "localhost:9", false, true, false},
		{"example.com", "", "localhost/evil", false, true, true}, // not a bare host: ignored
		{"127.evil.example", "", "", false, false, true},
	} {
		r := originRequest(tc.host, tc.proto, tc.fwdHost, tc.tls, tc.trusted)
		if got := cookieSecure(r); got != tc.want {
			t.Errorf("%+v: cookieSecure %v, want %v", tc, got, tc.want)
		}
	}
}

func FuzzCookieSecure(f *testing.F) {
	f.Add("127.0.0.1:8080", "https", "example.com", false, true)
	f.Add("localhost", "", "", false, false)
	f.Add("example.com", "http", "LOCALHOST.:1", false, true)
	f.Add("[::1]", "HTTPS", "", true, false)
	f.Fuzz(func(t *testing.T, host, proto, fwdHost string, overTLS, trusted bool) {
		r := originRequest(host, proto, fwdHost, overTLS, trusted)
		want := isHTTPS(r) || !isLoopbackHost(hostname(requestHost(r)))
		if got := cookieSecure(r); got != want {
			t.Fatalf("cookieSecure %v, the composition says %v", got, want)
		}
	})
}

// FuzzHostname holds hostname to what it was before its shortcut for a
// host without a colon: SplitHostPort's host, or host unchanged.
func FuzzHostname(f *testing.F) {
	for _, h := range []string{"localhost", "127.0.0.1:8080", "[::1]:443", "[::1]", "::1", "example.com:", ":80", "a:b:c", ""} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, host string) {
		want := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			want = h
		}
		if got := hostname(host); got != want {
			t.Fatalf("hostname(%q) = %q, SplitHostPort says %q", host, got, want)
		}
	})
}

func TestPostedFromElsewhere(t *testing.T) {
	for _, c := range []struct {
		header map[string]string
		want   bool
	}{
		{nil, false}, // not a browser
		{map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://site.test"}, false},
		{map[string]string{"Sec-Fetch-Site": "none"}, false},
		{map[string]string{"Origin": "http://site.test"}, false},
		{map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, true},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, true},    // a sibling sub-domain
		{map[string]string{"Origin": "https://evil.example"}, true}, // a browser without Sec-Fetch-*
		{map[string]string{"Origin": "null"}, true},
		{map[string]string{"Origin": "https://site.test"}, true}, // another scheme is another origin
	} {
		r := httptest.NewRequest(http.MethodPost, "http://site.test/.jitauth/logout", nil)
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if got := postedFromElsewhere(r); got != c.want {
			t.Errorf("%v: %v, want %v", c.header, got, c.want)
		}
	}
}
