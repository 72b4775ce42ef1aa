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

// An operator turns JIT on for a connection that had it off (the
// README's own path: "JIT is off by default"), or off again, and
// reloads. Sessions made before the reload stay valid, and a
// back-channel logout of their subject (a token with sub and no sid, as
// Section 2.4 allows) still ends them, though they were issued with the
// other setting: a logout is recorded under the subject whatever the
// setting, beside the local user (S7, S17).
func TestBackchannelLogoutBySubjectAfterJITWasSwitched(t *testing.T) {
	for _, tc := range []struct{ name, before, after string }{
		{"turned on", "", "jit"},
		{"turned off", "jit", ""},
	} {
		t.Run(tc.name, func(t *testing.T) { backchannelLogoutAcrossJITSwitch(t, tc.before, tc.after) })
	}
}

func backchannelLogoutAcrossJITSwitch(t *testing.T, before, after string) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	caddyfile := func(jit string) []byte {
		t.Helper()
		src := fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			backchannel_logout
			%s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, jit)), port, up.hostPort())
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	runCaddyJSON(t, caddyfile(before))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("login before the switch: %d %s", resp.StatusCode, body)
	}

	// The operator switches JIT: caddy reload.
	if err := caddy.Load(caddyfile(after), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// A connection the old servers accepted while stopping is closed
	// without an answer; a browser sends the navigation again.
	var still *http.Response
	for try := 0; ; try++ {
		b.client.CloseIdleConnections()
		resp, err := b.client.Get(base + "/still")
		if err == nil {
			still = resp
			break
		}
		if try == 4 {
			t.Fatalf("GET /still after the reload: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	still.Body.Close()
	if still.StatusCode != http.StatusOK {
		t.Fatalf("the session did not survive the reload: %d", still.StatusCode)
	}
	// Alice signs in once more elsewhere, after the switch, once the
	// stopping servers take no more connections.
	settledAfterReload(t, base)
	other := newBrowser(t)
	idp.QueueUser(alice())
	if resp, _, _ := other.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login after the switch: %d", resp.StatusCode)
	}

	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	if code, body := postLogoutToken(t, base, "corp", signWith(t, idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	if resp, _ := other.get(base + "/after"); resp.StatusCode == http.StatusOK {
		t.Fatal("the back-channel logout did not end the session made after the switch")
	}
	if resp, _ := b.get(base + "/after"); resp.StatusCode == http.StatusOK {
		t.Fatal("the provider logged alice out (back-channel, by sub) and was told 200, but her session from before the switch still reaches the upstream")
	}
}

// settledAfterReload waits until new connections to base are answered
// by the servers a reload started: for a moment the stopping ones may
// still accept a connection and close it unanswered (EOF), which a
// browser would retry. Three answers in a row on fresh connections.
func settledAfterReload(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ok := 0; ok < 3; {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(base + "/.jitauth/healthz")
		if err == nil {
			resp.Body.Close()
			ok++
			continue
		}
		ok = 0
		if time.Now().After(deadline) {
			t.Fatalf("new connections to %s after the reload: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
