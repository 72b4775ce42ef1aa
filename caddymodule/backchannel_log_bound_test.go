package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// Anyone can post to the back-channel logout receiver. A logout token
// signed with a key of the sender's own, whose iss or aud is tens of KiB
// (go-oidc checks them before the signature, and quotes them whole in
// its error), is refused, and the audit line "back-channel logout
// refused" repeats a bounded part of it: not a line of the token's size
// for each anonymous request.
func TestBackchannelLogoutRefusalLogIsBounded(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", auditLog: true})
	cfg := s.idp.Config()
	own, err := mockoidc.NewKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	huge := "MARKER-" + strings.Repeat("A", 40<<10)
	for name, edit := range map[string]func(jwt.MapClaims){
		"issuer":   func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" + huge },
		"audience": func(c jwt.MapClaims) { c["aud"] = huge },
	} {
		c := logoutClaims(cfg.Issuer, cfg.ClientID)
		c["sub"] = "alice-sub"
		edit(c)
		if code, body := postLogoutToken(t, s.base, "corp", signWith(t, own, c)); code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s, want 400", name, code, body)
		}
	}
	logs := mustReadFile(t, s.logFile())
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "MARKER-") {
			continue
		}
		if len(line) > 2000 {
			t.Errorf("a log line of %d bytes repeats the anonymous token: %.300s…", len(line), line)
		}
	}
	if n := len(logEntries(t, s.logFile(), "back-channel logout refused")); n != 2 {
		t.Errorf("%d audit lines \"back-channel logout refused\", want 2", n)
	}
}
