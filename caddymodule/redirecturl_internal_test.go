package caddymodule

import (
	"strings"
	"testing"
)

// Which sites loading refuses for a connection whose redirect_url is a
// site of the configuration: those offering it on another host, inline
// or through a named application; not those whose hosts loading cannot
// know (no host matcher, a placeholder, a named route), nor those that
// do not offer it, nor any when the redirect_url is no site here.
func TestCheckRedirectURLs(t *testing.T) {
	a := &App{
		Connections: map[string]*Connection{
			"corp":    {RedirectURL: "https://Wiki.Example.com/.jitauth/callback/corp"},
			"partner": {},
		},
		Applications: map[string]*Application{"grafana": {}, "partners": {Connections: []string{"partner"}}},
	}
	wiki := attachment{where: "wiki.example.com", app: &Application{}, hosts: []string{"wiki.example.com"}}
	for _, tc := range []struct {
		name    string
		at      attachment
		refused bool
	}{
		{"inline, another host", attachment{where: "grafana.example.com", app: &Application{}, hosts: []string{"grafana.example.com"}}, true},
		{"named, another host", attachment{where: "grafana.example.com", name: "grafana", hosts: []string{"grafana.example.com"}}, true},
		{"the same host in another case", attachment{where: "WIKI.example.com:8443", app: &Application{}, hosts: []string{"WIKI.example.com"}}, false},
		{"a wildcard that covers it", attachment{where: "*.example.com", app: &Application{}, hosts: []string{"*.example.com"}}, false},
		{"not offering it", attachment{where: "grafana.example.com", name: "partners", hosts: []string{"grafana.example.com"}}, false},
		{"no host matcher", attachment{where: "server srv1 (:8080)", app: &Application{}, hosts: []string{}}, false},
		{"a placeholder host", attachment{where: "{env.HOST}", app: &Application{}, hosts: []string{"{env.HOST}"}}, false},
		{"a named route", attachment{where: "named route x in server srv0", app: &Application{}}, false},
	} {
		err := a.checkRedirectURLs([]attachment{wiki, tc.at})
		if (err != nil) != tc.refused {
			t.Errorf("%s: refused %v, want %v (%v)", tc.name, err != nil, tc.refused, err)
		}
		if err != nil && (!strings.Contains(err.Error(), `connection "corp"`) || !strings.Contains(err.Error(), tc.at.where)) {
			t.Errorf("%s: the error does not name the connection and the site: %v", tc.name, err)
		}
		// A redirect_url on no site of the configuration may be the public
		// name of a proxy in front: only a sign-in tells.
		if err := a.checkRedirectURLs([]attachment{tc.at}); err != nil {
			t.Errorf("%s, with the redirect_url on no site here: refused: %v", tc.name, err)
		}
	}
}

// Origins compare as browsers compare them: scheme and host in any
// letter case, a default port written or not.
func TestCanonicalOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://Wiki.Example.com/.jitauth/callback/corp": "https://wiki.example.com",
		"HTTPS://wiki.example.com:443/x":                  "https://wiki.example.com",
		"http://wiki.example.com:80":                      "http://wiki.example.com",
		"http://wiki.example.com:443":                     "http://wiki.example.com:443",
		"https://wiki.example.com:8443/x":                 "https://wiki.example.com:8443",
		"http://[::1]:8080/x":                             "http://[::1]:8080",
		"http://[::1]":                                    "http://[::1]",
		"/relative":                                       "",
	} {
		if got := canonicalOrigin(raw); got != want {
			t.Errorf("canonicalOrigin(%q) = %q, want %q", raw, got, want)
		}
	}
}
