package caddymodule_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The first start on the release that keys a goth connection's
// identities by its configured instance moves those an earlier release
// stored under the provider's bare name, in one statement. On a large
// directory that takes longer than the 5 s a request gives the store
// (900,000 identities of one connection: about 10 s on the test
// machine), and so does waiting for the table while an instance of the
// earlier release writes to it. Bounded by those 5 s, the move was
// rolled back at every start, and Caddy never started again on the new
// build ("adopting the issuer of connection github's identities:
// timeout"). Here an instance of the earlier release holds the
// identities table for 7 s.
func TestGothIdentitiesAdoptedAtUpgradeMayTakeLongerThanAStoreRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7 s")
	}
	schema, connString := pgSchemaAt(t, 7) // the release before
	pgExec(t, `INSERT INTO `+schema+`.users (id, username, username_norm, email, email_norm, email_verified, created_at, updated_at)
		VALUES ('legacy-1', 'legacy', 'legacy', 'legacy@example.com', 'legacy@example.com', true, now(), now())`)
	pgExec(t, `INSERT INTO `+schema+`.identities (connection, issuer, subject, user_id, raw_claims, created_at, last_login_at)
		VALUES ('github', 'github', '4242', 'legacy-1', '{}', now(), now())`)
	// The earlier release's instance keeps others from writing
	// identities (it may read them).
	pgLockFor(t, `LOCK TABLE `+schema+`.identities IN SHARE MODE`, 7*time.Second)

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
