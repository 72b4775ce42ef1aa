package caddymodule_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

// pgDefaultURL is the server these tests use when JITAUTH_TEST_POSTGRES
// is unset (the one .ci/run starts and names).
const pgDefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
	pgSet  bool
)

// pgServer returns the URL of the test PostgreSQL server: with
// JITAUTH_TEST_POSTGRES set, a server that does not answer fails the
// test; without it the default URL is tried and the test skipped if
// nothing answers.
func pgServer(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() {
		pgURL, pgSet = os.LookupEnv("JITAUTH_TEST_POSTGRES")
		pgSet = pgSet && pgURL != ""
		if !pgSet {
			pgURL = pgDefaultURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			pgErr = err
			return
		}
		defer conn.Close(ctx)
		pgErr = conn.Ping(ctx)
	})
	if pgErr != nil {
		if pgSet {
			t.Fatalf("JITAUTH_TEST_POSTGRES is set but the server does not answer: %v", pgErr)
		}
		t.Skipf("no PostgreSQL at %s (%v); set JITAUTH_TEST_POSTGRES to run this test", pgDefaultURL, pgErr)
	}
	return pgURL
}

// pgExec runs one statement on the test server.
func pgExec(t *testing.T, sql string) {
	t.Helper()
	pgExecWithin(t, 10*time.Second, sql)
}

// pgSchemaAt creates a test schema as a release whose schema was at
// version left it, for tests of what the first start of this release
// does to it.
func pgSchemaAt(t *testing.T, version int) (schema, connString string) {
	t.Helper()
	schema, connString = pgSchema(t)
	latest := pgstore.SchemaVersion
	pgstore.SchemaVersion = version
	old, err := pgstore.Open(t.Context(), connString)
	pgstore.SchemaVersion = latest
	if err != nil {
		t.Fatalf("creating the schema at version %d: %v", version, err)
	}
	old.Close()
	return schema, connString
}

// pgLockFor has another connection (an instance of an earlier release,
// still serving) take lock, a LOCK TABLE statement, and hold it for d;
// the test waits for the lock's end before it ends. The connection is
// returned for the test's own queries.
func pgLockFor(t *testing.T, lock string, d time.Duration) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lock); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(d)
		_ = tx.Commit(ctx)
	}()
	t.Cleanup(func() { <-released })
	return conn
}

// pgExecWithin is pgExec for a statement that may take up to d (seeding
// a large directory).
func pgExecWithin(t *testing.T, d time.Duration, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgSchema creates a schema of the test's own, dropped when it ends, and
// returns it with a connection URL whose search_path selects it.
func pgSchema(t *testing.T) (schema, connString string) {
	t.Helper()
	u, err := url.Parse(pgServer(t))
	if err != nil || u.Scheme == "" {
		t.Skipf("JITAUTH_TEST_POSTGRES is not a URL; this test needs one")
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema = "jitauth_test_" + hex.EncodeToString(b)
	pgExec(t, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { pgExec(t, `DROP SCHEMA `+schema+` CASCADE`) })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return schema, u.String()
}

// pgCaddyfile is a site behind jit_auth with a JIT connection through
// idp, storing users with the given store line.
func pgCaddyfile(dir, storeLine string, port int, issuer, clientID, clientSecret, upstream string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		%s
		cookie_keys %s %s
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), storeLine, testHashKey, testBlockKey,
		issuer, clientID, clientSecret, port, upstream)
}

// TestPostgresStoreLogin: a real login through Caddy with
// `store postgres {env.…}` provisions the user in PostgreSQL, and a
// second login updates the same row.
func TestPostgresStoreLogin(t *testing.T) {
	schema, connString := pgSchema(t)
	t.Setenv("JITAUTH_TEST_PG_STORE_URL", connString)

	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile := pgCaddyfile(t.TempDir(), "store postgres {env.JITAUTH_TEST_PG_STORE_URL}", port,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())

	// The placeholder is expanded when the store starts, so the adapted
	// config does not hold the URL.
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if !strings.Contains(string(adapted), `"backend":"postgres"`) || strings.Contains(string(adapted), schema) {
		t.Errorf("adapted config: %s", adapted)
	}
	runCaddyfile(t, caddyfile)

	for i, name := range []string{"Alice Liddell", "Alice Kingsleigh"} {
		u := alice()
		u.claims["name"] = name
		idp.QueueUser(u)
		resp, body, visited := newBrowser(t).follow(base+"/.jitauth/start/corp?rd=%2F", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw alice@example.com") {
			t.Fatalf("login %d: status %d, body %q, visited %v", i+1, resp.StatusCode, body, visited)
		}
	}

	// The user is a row in the test's schema.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		n                        int
		username, name, connName string
	)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d users in %s.users after two logins, want 1", n, schema)
	}
	if err := conn.QueryRow(ctx, `SELECT u.username, u.name, i.connection
		FROM `+schema+`.users u JOIN `+schema+`.identities i ON i.user_id = u.id
		WHERE i.subject = 'alice-sub'`).Scan(&username, &name, &connName); err != nil {
		t.Fatalf("reading the provisioned user: %v", err)
	}
	if username != "alice@example.com" || name != "Alice Kingsleigh" || connName != "corp" {
		t.Errorf("stored user = %q %q via %q, want alice@example.com, Alice Kingsleigh, corp", username, name, connName)
	}
}

// TestPostgresStoreUnreachable: Caddy does not start when the database
// does not answer, and says which server, without the password. This
// needs no PostgreSQL server.
func TestPostgresStoreUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	idp := startMockOIDC(t)
	cfg := idp.Config()
	caddyfile := pgCaddyfile(t.TempDir(),
		fmt.Sprintf(`store postgres "postgres://jit:s3cr3t-pw@%s/auth?sslmode=disable"`, addr),
		freePort(t), cfg.Issuer, cfg.ClientID, cfg.ClientSecret, "127.0.0.1:9")
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	caddyMu.Lock()
	defer caddyMu.Unlock()
	err = caddy.Load(adapted, true)
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("Caddy started with an unreachable user store")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "s3cr3t-pw") {
		t.Errorf("error shows the password: %s", msg)
	}
	if !strings.Contains(msg, addr) || !strings.Contains(msg, "PostgreSQL user store") {
		t.Errorf("error does not name the store's server %s: %s", addr, msg)
	}
}

func TestPostgresStoreCaddyfileErrors(t *testing.T) {
	for name, line := range map[string]string{
		"no url":     "store postgres",
		"two args":   "store postgres postgres://a/b extra",
		"with block": "store postgres postgres://a/b {\n\t\t\turl x\n\t\t}",
	} {
		t.Run(name, func(t *testing.T) {
			caddyfile := pgCaddyfile(t.TempDir(), line, 8080, "https://idp.example.com", "id", "secret", "127.0.0.1:9")
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
			if err == nil || !strings.Contains(err.Error(), "store postgres") {
				t.Errorf("adapting %q: err = %v, want a store postgres error", line, err)
			}
		})
	}
}

// caddy validate neither needs the database nor migrates it: a config
// whose server does not answer validates (and still fails to start, see
// TestPostgresStoreUnreachable), and validating against a real, empty
// schema creates no table in it, so checking a newer version's config
// never migrates the database under the running one. Starting creates
// the tables.
func TestPostgresValidateTouchesNoDatabase(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	unreachable := pgCaddyfile(dir, fmt.Sprintf(`store postgres "postgres://jit:pw@%s/auth?sslmode=disable"`, addr),
		freePort(t), "https://idp.example.com", "id", "secret", "127.0.0.1:9")
	if err := validate(t, unreachable); err != nil {
		t.Fatalf("validating a config whose database does not answer: %v", err)
	}

	schema, connString := pgSchema(t)
	tables := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgServer(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	reachable := pgCaddyfile(dir, fmt.Sprintf("store postgres %q", connString), freePort(t), "https://idp.example.com", "id", "secret", "127.0.0.1:9")
	if err := validate(t, reachable); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("caddy validate created %d tables in schema %s", n, schema)
	}
	if err := loadErr(t, reachable); err != nil {
		t.Fatalf("load: %v", err)
	}
	if tables() == 0 {
		t.Fatal("starting the config created no tables")
	}
}
