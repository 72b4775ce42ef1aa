package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A login paused on the consent or username page holds an identity that
// the connection's provider verified. A `caddy reload` that points the
// connection at another issuer (same name) must not let that answer
// through: consent checked the connection's name only, so alice,
// verified by the old issuer, was provisioned under the new
// configuration, which never vouched for her. A reload that changes
// nothing in the connector keeps the paused login working.
func TestPendingLoginAcrossReloadToAnotherIssuer(t *testing.T) {
	for _, mode := range []string{"consent", "username"} {
		for _, change := range []string{"another issuer", "nothing"} {
			t.Run(mode+", "+change, func(t *testing.T) {
				s := startSiteOpts(t, siteOptions{corpJIT: "mode " + mode})
				st := openStore(t, s.dir)
				b, page, _ := s.pendingAt("/report")

				next := s.caddyfile
				cfg := s.idp.Config()
				if change == "another issuer" {
					other := startMockOIDC(t).Config()
					// The first connection of the site is corp.
					next = strings.Replace(next, fmt.Sprintf("oidc %s %s %s", cfg.Issuer, cfg.ClientID, cfg.ClientSecret),
						fmt.Sprintf("oidc %s %s %s", other.Issuer, other.ClientID, other.ClientSecret), 1)
					if next == s.caddyfile {
						t.Fatal("the Caddyfile has no corp connector line to change")
					}
				}
				reloadInProcess(t, next)

				username := ""
				if mode == "username" {
					username = "alice.l"
				}
				resp, body := s.answer(b, page, "allow", username)
				users := allUsers(t, st)
				if change == "nothing" {
					if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/report" || len(users) != 1 {
						t.Fatalf("answer after a reload that changed nothing: %d at %s, %d users, want the site and one user\n%s",
							resp.StatusCode, resp.Request.URL, len(users), body)
					}
					return
				}
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Start again") || s.hasSession(b) {
					t.Errorf("answer after a reload to another issuer: %d (session %v), want 400 \"Start again\" and no session\n%s",
						resp.StatusCode, s.hasSession(b), body)
				}
				if b.cookie(s.base, "jitauth_pending") != nil {
					t.Error("the refused pending login's cookie was kept")
				}
				if len(users) != 0 {
					t.Fatalf("a login verified by the old issuer was provisioned under the new one: %+v", users)
				}
				for _, iss := range []string{cfg.Issuer, s.idp.Issuer()} {
					if _, err := st.UserByIdentity(t.Context(), provisioner.IdentityKey{Connection: "corp", Issuer: iss, Subject: "alice-sub"}); err == nil {
						t.Fatalf("alice's identity under %s is in the store", iss)
					}
				}
			})
		}
	}
}
