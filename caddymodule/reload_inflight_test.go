package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A sign-in whose callback is in flight when `caddy reload` replaces
// the configuration (here: waiting for the provider's token answer)
// finishes on the configuration it began on. Caddy does not wait for a
// replaced configuration's requests before cleaning it up, so that
// configuration's store must stay open until they end: the user was
// sent a 503 "sign-in temporarily unavailable" instead of the site, on
// PostgreSQL at every reload (each configuration has its own pool), on
// SQLite at a reload to another file.
func TestReloadKeepsTheStoreOfASignInInFlight(t *testing.T) {
	t.Run("postgres, same database", func(t *testing.T) {
		_, connString := pgSchema(t)
		line := fmt.Sprintf("store postgres %q", connString)
		signInAcrossReload(t, line, line)
	})
	t.Run("sqlite, to another file", func(t *testing.T) {
		dir := t.TempDir()
		signInAcrossReload(t, "store sqlite "+filepath.Join(dir, "a.db"), "store sqlite "+filepath.Join(dir, "b.db"))
	})
}

// signInAcrossReload holds a callback at the provider's token endpoint,
// reloads from the store line before to after, and wants the callback
// to end in the session.
func signInAcrossReload(t *testing.T, before, after string) {
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	idp := startMockOIDC(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				once.Do(func() {
					close(held)
					<-release
				})
			}
			next.ServeHTTP(w, r)
		})
	})
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	storage := t.TempDir()
	caddyfile := func(store string) string {
		return pgCaddyfile(storage, store, port, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())
	}
	runCaddyfile(t, caddyfile(before))

	s := &site{t: t, base: base, idp: idp}
	b := newBrowser(t)
	s.queue(alice())
	cb := s.startOnly(b, "corp", "/app")

	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
		req.Header.Set("Accept", "text/html")
		resp, err := b.client.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{code: resp.StatusCode, body: string(body)}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the callback never asked the provider for its tokens")
	}
	// The operator reloads while the callback waits.
	reloadInProcess(t, strings.Replace(caddyfile(after), "jit_auth\n", "jit_auth\n\theader X-Reloaded 1\n", 1))
	close(release)

	a := <-done
	if a.err != nil {
		t.Fatalf("the callback in flight across the reload: %v", a.err)
	}
	if a.code != http.StatusFound {
		t.Fatalf("the callback in flight across the reload: %d, want 302 to the site\n%s", a.code, a.body)
	}
}
