package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// A logout recorded in the store must hold after a restart (S7, S17),
// also when the store is slow to answer the restarted instance's first
// read of the revocations (a busy or flapping database, a lock held by a
// maintenance job). Caddy starts (PostgreSQL answers), the revocation
// table is merely locked, so the first read of the revocations waits;
// meanwhile the copy of a logged-out cookie must not reach the upstream.
func TestLogoutHoldsWhileARestartedInstanceCannotReadTheRevocations(t *testing.T) {
	schema, connString := pgSchema(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	dir := t.TempDir()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(pgCaddyfile(dir,
		fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString), port,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	runCaddyJSON(t, cfgJSON)

	b, with := signInAndCopy(t, idp, base)
	if code := with(); code != http.StatusOK {
		t.Fatalf("live session refused: %d", code)
	}
	if code, body := logoutVia(t, b, base); code != http.StatusOK {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code := with(); code == http.StatusOK {
		t.Fatal("copied cookie accepted right after the logout")
	}

	// The database is up but the revocations table is busy.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+schema+`.revoked_sessions IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = tx.Rollback(ctx)
		}
	}
	defer release()

	// Restart (a new process would start the same way, with nothing in
	// memory).
	_ = caddy.Stop()
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("restarting: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	code := with()
	hits := up.hits
	release()
	if code == http.StatusOK {
		t.Fatalf("after a restart, while the store had not yet answered the read of the revocations, a cookie logged out before the restart reached the upstream (status %d, upstream hits %d)", code, hits)
	}
}

// signInAndCopy signs alice in through corp in a browser and returns it,
// with a request to /app carrying a copy of her session cookie (as a
// thief would), which reports the status it got.
func signInAndCopy(t *testing.T, idp *mockoidc.MockOIDC, base string) (*browser, func() int) {
	t.Helper()
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	copied := b.cookie(base, "jitauth_session")
	return b, func() int {
		t.Helper()
		// Right after a reload, a connection the stopping servers
		// accepted may be closed without an answer; a browser sends
		// the request again.
		for try := 0; ; try++ {
			req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			req.Header.Set("Cookie", copied.Name+"="+copied.Value)
			r, err := newBrowser(t).client.Do(req)
			if err == nil {
				r.Body.Close()
				return r.StatusCode
			}
			if try == 4 {
				t.Fatalf("GET %s/app: %v", base, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
