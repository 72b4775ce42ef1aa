package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// An operator turns JIT on for a connection that had it off (JIT is off
// by default) and reloads. A session issued before the switch carries no
// local user; when its person has no verified email, its name is the
// provider's subject, which no local user holds. Their first sign-in
// after the switch creates the local user, linked to that very subject.
// When an administrator then disables that user, or signs them out
// everywhere, the session from before the switch must end with the
// others (S7: "disabled users lose live sessions"), as a back-channel
// logout of the subject ends it (TestBackchannelLogoutBySubjectAfterJITWasSwitched).
func TestAdminEndsSessionsIssuedBeforeJITWasTurnedOn(t *testing.T) {
	for _, change := range []string{"disable", "signout"} {
		t.Run(change, func(t *testing.T) { adminEndsSessionFromBeforeJITSwitch(t, change) })
	}
}

func adminEndsSessionFromBeforeJITSwitch(t *testing.T, change string) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port, admin := freePort(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	caddyfile := func(jit string) []byte {
		t.Helper()
		src := fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, strings.Replace(globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			%s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, jit)), "admin off", fmt.Sprintf("admin localhost:%d", admin), 1), port, up.hostPort())
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// No verified email: the JIT-off name is the subject, no local user's.
	bob := func() *oidcUser {
		return &oidcUser{sub: "bob-sub", claims: map[string]any{"name": "Bob", "email": "bob@example.com", "email_verified": false}}
	}
	runCaddyJSON(t, caddyfile(""))

	before := newBrowser(t)
	idp.QueueUser(bob())
	if resp, body, _ := before.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("login before the switch: %d %s", resp.StatusCode, body)
	}

	if err := caddy.Load(caddyfile("jit"), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	settledAfterReload(t, base)
	before.client.CloseIdleConnections()
	if resp, _ := before.get(base + "/still"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session did not survive the reload: %d", resp.StatusCode)
	}
	after := newBrowser(t)
	idp.QueueUser(bob())
	if resp, _, _ := after.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login after the switch: %d", resp.StatusCode)
	}
	var list struct {
		Users []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"users"`
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users", "", &list); code != http.StatusOK || len(list.Users) != 1 {
		t.Fatalf("list: %d %+v, want bob alone", code, list)
	}
	time.Sleep(1100 * time.Millisecond) // a cutoff covers its own second
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/"+list.Users[0].ID+"/"+change, "", nil); code != http.StatusOK {
		t.Fatalf("%s: %d", change, code)
	}
	if resp, _ := after.get(base + "/after"); resp.StatusCode == http.StatusOK {
		t.Fatalf("after %s, the session made after the switch still reaches the upstream", change)
	}
	hits := up.count()
	resp, _ := before.get(base + "/after")
	if up.count() != hits {
		t.Errorf("after the administrator's %s of local user %q (provider subject bob-sub), bob's session from before JIT was turned on still reached the upstream as %q (%d)",
			change, list.Users[0].Username, up.lastHeaders(t).Get("Remote-User"), resp.StatusCode)
	}
}
