package caddymodule_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

// The first start on the release that keys a goth connection's
// identities by its configured instance moves those an earlier release
// stored under the provider's bare name, in one statement: on a large
// directory that takes longer than the 5 s a request gives the store
// (900,000 identities of one GitHub Enterprise connection: about 10 s on
// the test machine). Bounded by those 5 s, the move was rolled back at
// every start, and Caddy never started again on the new build
// ("adopting the issuer of connection github's identities: timeout").
func TestGothIdentitiesOfALargeDirectoryAdoptedAtUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 900,000 identities")
	}
	schema, connString := pgSchema(t)
	latest := pgstore.SchemaVersion
	pgstore.SchemaVersion = 7 // the release before
	old, err := pgstore.Open(t.Context(), connString)
	pgstore.SchemaVersion = latest
	if err != nil {
		t.Fatalf("creating the schema at version 7: %v", err)
	}
	old.Close()
	seed := func(sql string) { pgExecWithin(t, 2*time.Minute, sql) }
	seed(`INSERT INTO ` + schema + `.users (id, username, username_norm, email, email_norm, email_verified, created_at, updated_at)
		SELECT 'u' || g, 'user' || g, 'user' || g, '', '', false, now(), now() FROM generate_series(1, 900000) AS g`)
	seed(`INSERT INTO ` + schema + `.identities (connection, issuer, subject, user_id, raw_claims, created_at, last_login_at)
		SELECT 'github', 'github', 'gh' || g, 'u' || g, '{}', now(), now() FROM generate_series(1, 900000) AS g`)
	pgExec(t, `INSERT INTO `+schema+`.users (id, username, username_norm, email, email_norm, email_verified, created_at, updated_at)
		VALUES ('legacy-1', 'legacy', 'legacy', 'legacy@example.com', 'legacy@example.com', true, now(), now())`)
	pgExec(t, `INSERT INTO `+schema+`.identities (connection, issuer, subject, user_id, raw_claims, created_at, last_login_at)
		VALUES ('github', 'github', '4242', 'legacy-1', '{}', now(), now())`)
	seed(`ANALYZE ` + schema + `.identities`)

	gh := fakeGitHub(t, fakeGitHubUser{})
	dir, up, port := t.TempDir(), newUpstream(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	site := strings.Replace(gothInstanceSite(dir, port, gh, up.hostPort()),
		"store sqlite "+filepath.Join(dir, "users.db"), fmt.Sprintf("store postgres %q", connString), 1)
	runCaddyfile(t, site)
	if got := signInAs(t, base, up); got != "legacy" {
		t.Fatalf("the stored identity signed in as %q, want legacy", got)
	}
}
