package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

// After an upgrade, Caddy starts on a PostgreSQL schema of an older
// version even when migrating it takes longer than the 10 s in which the
// database must answer: on a large directory a step takes that long
// (schema 5 to 6 backfills every user's name: 10 s at 700,000 users on
// the test machine), or waits that long for a lock on users held by an
// instance of the older build still serving. The migration was bounded
// by those 10 s, so it was rolled back at every start and Caddy never
// started again on that build ("applying migration 6: timeout: context
// deadline exceeded"). Here an instance of the older build holds a lock
// on users for 12 s.
func TestPostgresStartsThroughASlowMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 12 s")
	}
	schema, connString := pgSchemaAt(t, 5)
	latest := pgstore.SchemaVersion
	pgExec(t, `INSERT INTO `+schema+`.users (id, username, username_norm, email, email_norm, name, created_at, updated_at)
		VALUES ('old-1', 'émile', 'émile', 'emile@example.com', 'emile@example.com', 'Émile', now(), now())`)

	// The older build's instance: a transaction that reads users.
	conn := pgLockFor(t, `LOCK TABLE `+schema+`.users IN ACCESS SHARE MODE`, 12*time.Second)
	ctx := context.Background()

	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	runCaddyfile(t, pgCaddyfile(t.TempDir(), fmt.Sprintf("store postgres %q", connString), port,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()))

	idp.QueueUser(alice())
	resp, body, visited := newBrowser(t).follow(base+"/.jitauth/start/corp?rd=%2F", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw alice@example.com") {
		t.Fatalf("login after the migration: %d %q %v", resp.StatusCode, body, visited)
	}
	var version int
	var norm string
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM `+schema+`.schema_migrations`).Scan(&version); err != nil || version != latest {
		t.Errorf("schema version %d (%v), want %d", version, err, latest)
	}
	if err := conn.QueryRow(ctx, `SELECT name_norm FROM `+schema+`.users WHERE id = 'old-1'`).Scan(&norm); err != nil || norm != "émile" {
		t.Errorf("the older user's name_norm = %q (%v), want émile", norm, err)
	}
}
