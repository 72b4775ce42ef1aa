package caddymodule_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/testhome"
)

// Generated cookie keys are written when a configuration starts, never
// by caddy validate nor by a load that fails (in provisioning or when
// starting): checking a config (in CI,
// on a laptop, before a deployment) leaves Caddy's storage as it was.
// Once written, later loads keep the same keys (sessions survive; see
// TestGeneratedKeysSurviveRestart).
func TestGeneratedKeysWrittenOnlyByAStart(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %s
	jit_auth {
		store sqlite %s
		connection corp {
			oidc http://127.0.0.1:9 {env.JITAUTH_TEST_KEYS_ID} secret
			jit
		}
	}
}

http://localhost:%d {
	jit_auth
	respond ok
}
`, storage, filepath.Join(dir, "users.db"), freePort(t))

	t.Setenv("JITAUTH_TEST_KEYS_ID", "client")
	if err := validate(t, caddyfile); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if files := testhome.FilesUnder(storage); len(files) > 0 {
		t.Fatalf("caddy validate wrote into Caddy's storage: %v", files)
	}

	t.Setenv("JITAUTH_TEST_KEYS_ID", "")
	if err := loadErr(t, caddyfile); err == nil {
		t.Fatal("a load with an unset client ID succeeded")
	}
	if files := testhome.FilesUnder(storage); len(files) > 0 {
		t.Fatalf("a load that failed wrote into Caddy's storage: %v", files)
	}

	// A load that fails when it starts: the database does not answer.
	t.Setenv("JITAUTH_TEST_KEYS_ID", "client")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	down := strings.Replace(caddyfile, "store sqlite "+filepath.Join(dir, "users.db"),
		fmt.Sprintf(`store postgres "postgres://jit:pw@%s/auth?sslmode=disable"`, closed), 1)
	if err := loadErr(t, down); err == nil || !strings.Contains(err.Error(), "start") {
		t.Fatalf("a load whose database does not answer: %v, want it refused when starting", err)
	}
	// Only jit_auth's part: the tls app, if it started first, may have
	// noted its storage cleaning (last_clean.json).
	if files := testhome.FilesUnder(filepath.Join(storage, "jit_auth")); len(files) > 0 {
		t.Fatalf("a start that failed wrote into Caddy's storage: %v", files)
	}

	keysFile := filepath.Join(storage, "jit_auth", "cookie_keys.json")
	if err := loadErr(t, caddyfile); err != nil {
		t.Fatalf("load: %v", err)
	}
	first, err := os.ReadFile(keysFile)
	if err != nil {
		t.Fatalf("after a start, no generated keys: %v", err)
	}
	if err := loadErr(t, caddyfile); err != nil {
		t.Fatalf("second load: %v", err)
	}
	if again, err := os.ReadFile(keysFile); err != nil || string(again) != string(first) {
		t.Fatalf("a second start changed the generated keys (%v)", err)
	}
}
