package caddymodule_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Without cookie_keys, the cookie keys are a pair generated once and kept
// in Caddy's storage. A reload that moves Caddy's storage elsewhere (a
// new path, or a storage module shared by a cluster) found no pair there
// and generated another: every live session ended, every sign-in in
// flight failed, and every second factor enrolled until then (its TOTP
// secret sealed with a key derived from the pair) became unreadable,
// each user to be reset by hand. The running pair now goes with the
// configuration into a storage that has none, and is kept there, so a
// restart on the new storage keeps it too.
func TestReloadToAnotherStorageKeepsGeneratedCookieKeys(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile := func(storage string) string {
		return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		store sqlite %s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, storage), filepath.Join(dir, "users.db"), cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort())
	}
	runCaddyfile(t, caddyfile("storage-a"))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	cookie := b.cookie(base, "jitauth_session")
	with := func() int {
		t.Helper()
		var err error
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
			var r *http.Response
			r, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err == nil {
				r.Body.Close()
				return r.StatusCode
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s/app: %v", base, err)
		return 0
	}
	if code := with(); code != http.StatusOK {
		t.Fatalf("session: %d", code)
	}

	reloadInProcess(t, caddyfile("storage-b"))
	if code := with(); code != http.StatusOK {
		t.Fatalf("after a reload to another storage, the session signed in before it: %d, want 200", code)
	}
	keysA, errA := os.ReadFile(filepath.Join(dir, "storage-a", "jit_auth", "cookie_keys.json"))
	keysB, errB := os.ReadFile(filepath.Join(dir, "storage-b", "jit_auth", "cookie_keys.json"))
	if errA != nil || errB != nil || !bytes.Equal(keysA, keysB) {
		t.Fatalf("the new storage does not keep the running pair (so a restart would end the sessions): %v %v", errA, errB)
	}
}
