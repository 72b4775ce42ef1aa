package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// An ID token that another client of the provider obtained lists this
// client among its audiences, which is all go-oidc checks: with several
// audiences and no azp, or with an azp naming another client, it signs
// no one in, and the log says what is wrong with it (OpenID Connect
// Core 3.1.3.7, points 4 and 5).
func TestIDTokenIssuedToAnotherClientIsRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	client := s.idp.Config().ClientID
	for _, c := range []struct {
		name   string
		tamper func(jwt.MapClaims)
		why    string
	}{
		{"several audiences, no azp", func(m jwt.MapClaims) { m["aud"] = []string{client, "other-client"} }, "names no azp"},
		{"several audiences, azp another client", func(m jwt.MapClaims) {
			m["aud"], m["azp"] = []string{"other-client", client}, "other-client"
		}, "is not this client_id"},
		{"one audience, azp another client", func(m jwt.MapClaims) { m["azp"] = "other-client" }, "is not this client_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(logEntries(t, s.logFile(), "login failed"))
			u := alice()
			u.tamper = c.tamper
			s.queue(u)
			b := newBrowser(t)
			resp, body := s.login(b, "corp", "/")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatal("a session was issued for an ID token issued to another client")
			}
			entries := logEntries(t, s.logFile(), "login failed")
			if len(entries) != before+1 {
				t.Fatalf("%d new \"login failed\" lines, want 1", len(entries)-before)
			}
			if got, _ := entries[len(entries)-1]["error"].(string); !strings.Contains(got, c.why) {
				t.Errorf("the log says %q, which does not say %q", got, c.why)
			}
		})
	}
	u := alice()
	u.tamper = func(m jwt.MapClaims) { m["aud"], m["azp"] = []string{client, "other-client"}, client }
	s.queue(u)
	if resp, body := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("several audiences with azp naming this client: %d %s", resp.StatusCode, body)
	}
}
