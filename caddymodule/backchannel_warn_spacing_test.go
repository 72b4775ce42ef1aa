package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// While the provider's keys cannot be read, every back-channel logout
// token is answered 503 (the provider sends it again later). Anyone can
// post tokens there, so the warning that says so is spaced out, not
// written once per token.
func TestBackchannelKeysUnreadableWarningIsSpacedOut(t *testing.T) {
	noKeys := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "jwks.json") {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", idpMiddleware: []func(http.Handler) http.Handler{noKeys}, auditLog: true})
	cfg := s.idp.Config()
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	token := signWith(t, s.idp.Keypair, c)
	for i := range 20 {
		if code, body := postLogoutToken(t, s.base, "corp", token); code != http.StatusServiceUnavailable {
			t.Fatalf("token %d while the keys cannot be read: %d %s, want 503", i, code, body)
		}
	}
	if n := strings.Count(mustReadFile(t, s.logFile()), "cannot be reached to check the token"); n != 1 {
		t.Fatalf("%d warnings for 20 tokens within seconds; want 1", n)
	}
}
