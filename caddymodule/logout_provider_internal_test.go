package caddymodule

import "testing"

// The provider's end-session origin goes into the sign-out page's
// Content-Security-Policy: only a plain http(s) origin may, never
// anything that could end the directive or add one.
func TestSourceOriginKeepsThePolicyWhole(t *testing.T) {
	for raw, want := range map[string]string{
		"https://idp.example.com/oidc/logout?client_id=a;b": "https://idp.example.com",
		"http://127.0.0.1:8080/end_session":                 "http://127.0.0.1:8080",
		"https://IdP.Example.com:443/x":                     "https://IdP.Example.com:443",
		"javascript:alert(1)":                               "",
		"/relative/logout":                                  "",
		"https://user@idp.example.com/logout":               "https://idp.example.com",
		"https://idp.example.com;script-src *@x/":           "",
		"https://[::1]:8443/logout":                         "",
	} {
		if got := sourceOrigin(raw); got != want {
			t.Errorf("sourceOrigin(%q) = %q, want %q", raw, got, want)
		}
	}
}
