package caddymodule_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `caddy jit-users … --config <file>` whose file turns the admin API off
// says so and exits 1: it asked Caddy's default endpoint instead
// (localhost:2019), where another Caddy on the same host, with a
// directory of its own, may answer, and a disable or delete meant for
// this site's user then acted on that one's.
func TestJitUsersConfigWithAdminOffIsRefused(t *testing.T) {
	bin := buildCaddy(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte("{\n\tadmin off\n}\nhttp://localhost:1 {\n\trespond ok\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "jit-users", "disable", "bob", "--reason", "left", "--config", caddyfile)
	cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 1 || strings.Contains(out.String(), "performing request") || !strings.Contains(out.String(), "admin off") {
		t.Errorf("jit-users with a config whose admin API is off: %v\n%s\nwant exit 1 saying the config turns the admin API off, without asking localhost:2019", err, out.String())
	}
}
