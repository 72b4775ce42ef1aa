package caddymodule

import (
	"net/url"
	"strings"
	"testing"
)

// The audience check counts two applications as one only when a request
// host may reach both and their audiences, as sent, are equal.
func TestAudienceSendersCollide(t *testing.T) {
	site := func(hosts []string, configured, scope string) audienceSender {
		return audienceSender{hosts: hosts, configured: configured, scope: scope}
	}
	issued := func(x audienceSender, iss string) audienceSender { x.issuer = iss; return x }
	onServer := func(x audienceSender, srv string) audienceSender { x.server = srv; return x }
	catchAll, anyHost := []string{}, []string(nil)
	for _, tt := range []struct {
		name string
		x, y audienceSender
		want bool
	}{
		{"one site, both default", site([]string{"a.example"}, "", ""), site([]string{"A.example"}, "", ""), true},
		{"one site, other paths", site([]string{"a.example"}, "", "/admin/*"), site([]string{"a.example"}, "", "/public/*"), false},
		{"other hosts", site([]string{"a.example"}, "", ""), site([]string{"b.example"}, "", ""), false},
		{"wildcard and a host it matches", site([]string{"*.example.com"}, "", ""), site([]string{"app.example.com"}, "", ""), true},
		{"wildcard and its apex", site([]string{"*.example.com"}, "", ""), site([]string{"example.com"}, "", ""), false},
		{"catch-all and a host", site(catchAll, "", ""), site([]string{"a.example"}, "", ""), false},
		{"two catch-alls", site(catchAll, "", ""), site(catchAll, "", ""), true},
		{"named route and a host", site(anyHost, "", ""), site([]string{"a.example"}, "", ""), true},
		{"configured equals the other's default", site([]string{"a.example"}, "https://a.example:8443/admin/*", ""), site([]string{"a.example"}, "", "/admin/*"), true},
		{"configured equals a catch-all's default", site(catchAll, "http://localhost:1", ""), site(catchAll, "", ""), true},
		{"configured for another host", site([]string{"a.example"}, "https://b.example", ""), site([]string{"a.example"}, "", ""), false},
		{"both configured alike", site([]string{"a.example"}, "api", ""), site([]string{"a.example"}, "api", ""), true},
		// A configured issuer is the same whatever host or server
		// reached the site.
		{"one issuer, other hosts", issued(site([]string{"a.example"}, "", ""), "https://sso.example"), issued(site([]string{"b.example"}, "", ""), "https://sso.example"), true},
		{"one issuer, other servers", onServer(issued(site([]string{"a.example"}, "", ""), "https://sso.example"), "srv1"), issued(site([]string{"a.example"}, "", ""), "https://sso.example"), true},
		{"one issuer, other paths", issued(site([]string{"a.example"}, "", "/admin/*"), "https://sso.example"), issued(site([]string{"b.example"}, "", "/public/*"), "https://sso.example"), false},
		{"one issuer, configured equals the other's default", issued(site([]string{"a.example"}, "https://sso.example/admin/*", ""), "https://sso.example"), issued(site([]string{"b.example"}, "", "/admin/*"), "https://sso.example"), true},
		{"other issuers, one host", issued(site([]string{"a.example"}, "", ""), "https://one.example"), issued(site([]string{"a.example"}, "", ""), "https://two.example"), false},
		{"issuer is the other's origin", issued(site([]string{"b.example"}, "", ""), "https://a.example"), site([]string{"a.example"}, "", ""), true},
		{"issuer is the origin of another host", issued(site([]string{"a.example"}, "", ""), "https://b.example"), site([]string{"a.example"}, "", ""), false},
		{"issuer with a path is no origin", issued(site([]string{"a.example"}, "", ""), "https://a.example/sso"), site([]string{"a.example"}, "", ""), false},
	} {
		if got := tt.x.collides(tt.y); got != tt.want {
			t.Errorf("%s: collides = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.y.collides(tt.x); got != tt.want {
			t.Errorf("%s (the other way): collides = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A configured issuer that checkAssertionIssuer accepts is one plain
// absolute URL that every upstream reads alike, and the audience check
// can compare it with any site's origin.
func FuzzCheckAssertionIssuer(f *testing.F) {
	for _, s := range []string{"https://sso.example.com", "http://localhost:8080/sso", "https://[::1]:8443", "sso.example.com",
		"https://u@h", "https://h/?", "https://h/#", "https://h/a b", "https://h\x00", "https://ex\u00e4mple.com", "javascript:alert(1)"} {
		f.Add(s)
	}
	site := audienceSender{hosts: []string{"a.example", "*.b.example"}}
	f.Fuzz(func(t *testing.T, iss string) {
		_ = site.mayBeOrigin(iss)
		_ = site.mayDefaultTo(iss)
		if checkAssertionIssuer(iss) != nil {
			return
		}
		for i := 0; i < len(iss); i++ {
			if c := iss[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
				t.Fatalf("accepted %q with byte %q", iss, c)
			}
		}
		if !strings.HasPrefix(iss, "https://") && !strings.HasPrefix(iss, "http://") {
			t.Fatalf("accepted %q, not an http or https URL", iss)
		}
		u, err := url.Parse(iss)
		if err != nil || u.Host == "" || u.User != nil {
			t.Fatalf("accepted %q: host %q, user %v, err %v", iss, u.Host, u.User, err)
		}
	})
}
