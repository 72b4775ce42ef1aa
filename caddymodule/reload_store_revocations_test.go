package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A `caddy reload` into another store reads that store's revocations
// before the new configuration admits a session: a session logged out in
// the new store is refused at once, not only from the follower's next
// poll (revocation_poll, 10 s by default).
func TestReloadIntoAnotherStoreRefusesItsLoggedOutSessions(t *testing.T) {
	schemaA, csA := pgSchema(t)
	schemaB, csB := pgSchema(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	adapt := func(cs string) []byte {
		// Each store with its own Caddy storage (the cookie keys are
		// configured, the same in both).
		j, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(pgCaddyfile(t.TempDir(),
			fmt.Sprintf("store postgres %q\n\t\trevocation_poll 30s", cs), port,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	cfgA, cfgB := adapt(csA), adapt(csB)

	// On store B (shared by other instances), a user signs in and out;
	// the logout is recorded in B.
	runCaddyJSON(t, cfgB)
	b, with := signInAndCopy(t, idp, base)
	if code, body := logoutVia(t, b, base); code != http.StatusOK {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code := with(); code == http.StatusOK {
		t.Fatal("copied cookie accepted right after the logout")
	}

	// This instance runs on store A meanwhile (a fresh process); A has
	// the same user (a copy of B's directory) but not B's logouts.
	_ = caddy.Stop()
	if err := caddy.Load(cfgA, true); err != nil {
		t.Fatalf("starting on A: %v", err)
	}
	_ = caddy.Stop()
	pgExec(t, `INSERT INTO `+schemaA+`.users SELECT * FROM `+schemaB+`.users`)
	pgExec(t, `INSERT INTO `+schemaA+`.identities SELECT * FROM `+schemaB+`.identities`)
	if err := caddy.Load(cfgA, true); err != nil {
		t.Fatalf("starting on A: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for with() == http.StatusServiceUnavailable && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("on store A (which never saw the logout) the cookie gets %d", with())

	// The operator reloads it into store B, which holds the logout.
	if err := caddy.Load(cfgB, false); err != nil {
		t.Fatalf("reloading into B: %v", err)
	}
	hits := up.hits
	code := with()
	if code == http.StatusOK {
		t.Fatalf("right after a reload into a store that recorded its logout, the session reached the upstream (status %d, upstream hits %d -> %d); the store's revocations are read only at the next revocation_poll", code, hits, up.hits)
	}
}
