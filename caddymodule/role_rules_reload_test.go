package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/oauth2-proxy/mockoidc"
)

// A role rule removed from a connection by `caddy reload` stops granting
// its role to live sessions within user_status_refresh, not only at the
// user's next sign-in (S18: roles come only from mappings; S17), and a
// new sign-in after the reload does not get it either.
func TestReloadRemovingRoleRuleTakesRoleFromLiveSessions(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	build := func(roleLine string) []byte {
		t.Helper()
		conns := fmt.Sprintf(`
		user_status_refresh 1s
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit {
				%s
			}
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, roleLine)
		src := fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth {\n\t\tallow role auditor\n\t}\n\treverse_proxy %s\n}\n",
			globalOptions(dir, conns), port, up.hostPort())
		j, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	runCaddyJSON(t, build("role auditor from_group wonderland"))

	b := newBrowser(t)
	idp.QueueUser(alice()) // groups staff, wonderland
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("login with the mapped role: %d %s", resp.StatusCode, body)
	}

	// The operator removes the mapping: caddy reload.
	if err := caddy.Load(build(""), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	status := func() int {
		b.client.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, base+"/audit", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := b.client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	start := time.Now()
	deadline := start.Add(8 * time.Second)
	for {
		code := status()
		if code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after a reload that removed the connection's only mapping to role auditor, alice's live session still gets %d from a site that allows only role auditor (user_status_refresh 1s)", time.Since(start).Round(time.Second), code)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// A new sign-in after the reload syncs the roles with the mappings
	// now loaded: the role is gone.
	fresh := newBrowser(t)
	idp.QueueUser(alice())
	if resp, _, _ := fresh.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a new sign-in after the reload got %d, want 403", resp.StatusCode)
	}
}

// roleSite is a site that allows only role auditor, behind connection
// corp whose jit block a test reloads.
type roleSite struct {
	t         *testing.T
	dir, base string
	port      int
	admin     int
	idp       *mockoidc.MockOIDC
	up        *upstream
}

func startRoleSite(t *testing.T, jit string) *roleSite {
	t.Helper()
	rs := &roleSite{t: t, dir: t.TempDir(), idp: startMockOIDC(t), up: newUpstream(t), port: freePort(t), admin: freePort(t)}
	rs.base = fmt.Sprintf("http://localhost:%d", rs.port)
	runCaddyJSON(t, rs.config(jit))
	return rs
}

// config is the site's configuration with jit as corp's jit option and
// block, e.g. "off {\n role auditor\n}".
func (rs *roleSite) config(jit string) []byte {
	rs.t.Helper()
	cfg := rs.idp.Config()
	conns := fmt.Sprintf(`
		user_status_refresh 1s
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, jit)
	global := strings.Replace(globalOptions(rs.dir, conns), "admin off", fmt.Sprintf("admin localhost:%d", rs.admin), 1)
	src := fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth {\n\t\tallow role auditor\n\t}\n\treverse_proxy %s\n}\n",
		global, rs.port, rs.up.hostPort())
	j, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		rs.t.Fatal(err)
	}
	return j
}

func (rs *roleSite) reload(jit string) {
	rs.t.Helper()
	if err := caddy.Load(rs.config(jit), true); err != nil {
		rs.t.Fatalf("reload: %v", err)
	}
}

// login signs u in through a new browser and returns it with the status
// the site answered.
func (rs *roleSite) login(u *oidcUser) (*browser, int) {
	b := newBrowser(rs.t)
	rs.idp.QueueUser(u)
	resp, _, _ := b.follow(rs.base+"/.jitauth/start/corp", nil)
	return b, resp.StatusCode
}

// status is what the site answers b's session now.
func (rs *roleSite) status(b *browser) int {
	b.client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, rs.base+"/audit", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// awaitStatus waits up to 8 s (user_status_refresh is 1 s) for b's
// session to get want.
func (rs *roleSite) awaitStatus(b *browser, want int, what string) {
	rs.t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		code := rs.status(b)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			rs.t.Fatalf("%s: the live session still gets %d, want %d", what, code, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// holdStatus checks that b's session keeps getting want over three
// user status refreshes.
func (rs *roleSite) holdStatus(b *browser, want int, what string) {
	rs.t.Helper()
	for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if code := rs.status(b); code != want {
			rs.t.Fatalf("%s: the live session got %d, want %d", what, code, want)
		}
	}
}

// A reload that changes the groups a role rule grants its role from
// takes it from live sessions whose groups no longer qualify, with JIT
// on (the grant stored) and off (the role in the session cookie).
func TestReloadChangingRoleRuleGroupsTakesRoleFromLiveSessions(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		t.Run("jit "+mode, func(t *testing.T) {
			rs := startRoleSite(t, mode+" {\n\t\t\t\trole auditor from_group wonderland\n\t\t\t}")
			b, code := rs.login(alice()) // groups staff, wonderland
			if code != http.StatusOK {
				t.Fatalf("login with the mapped role: %d", code)
			}
			rs.reload(mode + " {\n\t\t\t\trole auditor from_group auditors\n\t\t\t}")
			rs.awaitStatus(b, http.StatusForbidden, "after a reload that grants auditor only from group auditors, which alice is not in")
		})
	}
}

// A reload leaves alone the roles its rules still grant, also when the
// user's stored groups are not the provider's (sync first_login keeps
// the first ones) and when the rule that granted a role is gone but an
// administrator granted the same role locally.
func TestReloadKeepsRolesStillGranted(t *testing.T) {
	rs := startRoleSite(t, "{\n\t\t\t\tsync first_login\n\t\t\t\trole auditor from_group wonderland\n\t\t\t}")
	first := alice()
	first.claims["groups"] = []string{"staff"}
	if _, code := rs.login(first); code != http.StatusForbidden {
		t.Fatalf("first login, not in wonderland: %d, want 403", code)
	}
	// Now in wonderland at the provider; the stored groups stay [staff].
	b, code := rs.login(alice())
	if code != http.StatusOK {
		t.Fatalf("login in wonderland: %d", code)
	}
	rs.reload("{\n\t\t\t\tsync first_login\n\t\t\t\trole auditor from_group wonderland\n\t\t\t\trole staff from_group staff\n\t\t\t}")
	rs.holdStatus(b, http.StatusOK, "after a reload that kept the rule granting auditor from wonderland")

	if code := adminCall(t, rs.admin, http.MethodPatch, "/jit_auth/users/alice@example.com", `{"grant_roles": ["auditor"]}`, nil); code != http.StatusOK {
		t.Fatalf("granting auditor locally: %d", code)
	}
	// The live session learns of the local grant at a refresh.
	time.Sleep(2500 * time.Millisecond)
	rs.reload("{\n\t\t\t\tsync first_login\n\t\t\t}")
	rs.holdStatus(b, http.StatusOK, "after a reload that removed the rule, with auditor also granted locally")
}
