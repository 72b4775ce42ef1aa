package caddymodule

import "testing"

// The audience check counts two applications as one only when a request
// host may reach both and their audiences, as sent, are equal.
func TestAudienceSendersCollide(t *testing.T) {
	site := func(hosts []string, configured, scope string) audienceSender {
		return audienceSender{hosts: hosts, configured: configured, scope: scope}
	}
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
	} {
		if got := tt.x.collides(tt.y); got != tt.want {
			t.Errorf("%s: collides = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.y.collides(tt.x); got != tt.want {
			t.Errorf("%s (the other way): collides = %v, want %v", tt.name, got, tt.want)
		}
	}
}
