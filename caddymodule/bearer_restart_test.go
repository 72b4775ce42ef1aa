package caddymodule_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A bearer token stands for its local user (JIT on) or, with JIT off,
// for the local user holding its name; a user disabled in the store
// directly (jit-users, SQL, another tool: no sign-out everywhere comes
// with it) is refused. That must hold on the first requests after a
// restart, when the process has read no user yet (S7): a token is not
// taken on what this process knows of its user (nothing, after a start)
// but checked against the store (the bearer check reads the user, or
// the directory's holder, each time it is not in the per-process cache),
// also while the store does not answer the reads of users by ID that
// the background status read makes.
func TestDisabledUsersBearerTokenHoldsAfterARestart(t *testing.T) {
	for _, c := range []struct{ conn, provisioned string }{{"corp", "true"}, {"partner", "false"}} {
		t.Run(c.conn, func(t *testing.T) {
			s := startSiteOpts(t, siteOptions{faultyStore: true, globalExtra: "\t\tuser_status_refresh 1s",
				handlerBlock: "\t\tbearer " + c.conn + " {\n\t\t\taudience api://wiki\n\t\t}\n"})
			s.queue(alice())
			if resp, _ := s.login(newBrowser(t), "corp", "/app"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login through corp: %d", resp.StatusCode)
			}
			token := signWith(t, s.idp.Keypair, bearerClaims(s.idp.Config().Issuer, "alice-sub"))
			if code, body, _ := callAPI(t, s.base, token); code != http.StatusOK {
				t.Fatalf("bearer token through %s: %d %s", c.conn, code, body)
			}
			if h := s.upstream.lastHeaders(t); h.Get("Remote-User") != "alice@example.com" || h.Get("X-Auth-Provisioned") != c.provisioned {
				t.Fatalf("precondition: the token's Remote-User %q (provisioned %q), want alice's local user's name (%s)",
					h.Get("Remote-User"), h.Get("X-Auth-Provisioned"), c.provisioned)
			}
			st := openStore(t, s.dir)
			u, err := st.UserByUsername(context.Background(), "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetStatus(context.Background(), u.ID, provisioner.StatusDisabled, "left the company"); err != nil {
				t.Fatal(err)
			}

			cfg := adaptCaddyfile(t, s.caddyfile, `"backend":"sqlite"`, `"backend":"test_failing"`)
			restart := func() { t.Helper(); restartCaddy(t, cfg) }
			call := func(when string) {
				t.Helper()
				hits := s.upstream.count()
				code, body, _ := callAPI(t, s.base, token)
				if code != http.StatusForbidden || s.upstream.count() != hits {
					t.Errorf("%s, the disabled user's bearer token through %s: %d %s (upstream reached: %v), want 403",
						when, c.conn, code, body, s.upstream.count() != hits)
				}
			}
			restart()
			call("first request after a restart")

			userReadsDown.Store(true)
			t.Cleanup(func() { userReadsDown.Store(false) })
			restart()
			call("first request after a restart, the user's read by ID failing")
		})
	}
}
