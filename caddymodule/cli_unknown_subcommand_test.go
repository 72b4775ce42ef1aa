package caddymodule_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A mistyped subcommand (`caddy jit-users disabel bob`) exits 1 saying
// so, before anything is asked of the admin API: it printed the help and
// exited 0, so an offboarding script, or an operator reading only the
// exit status, took the user for disabled while nothing was done.
// `caddy jit-users` alone, and --help, still print the help and exit 0.
func TestJitUsersUnknownSubcommandFails(t *testing.T) {
	bin := buildCaddy(t)
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		t.Helper()
		// An address where nothing listens: the mistake must be found
		// before the admin API is asked anything.
		cmd := exec.Command(bin, append([]string{"jit-users"}, args...)...)
		cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	for _, args := range [][]string{
		{"disabel", "bob", "--reason", "left the company", "--address", "localhost:1"},
		{"frobnicate"},
		{"Disable", "bob"},
	} {
		out, code := run(args...)
		if code != 1 || !strings.Contains(out, `unknown subcommand "`+args[0]+`"`) || !strings.Contains(out, "disable") {
			t.Errorf("caddy jit-users %s: exit %d, want 1 naming the unknown subcommand and the known ones:\n%s", strings.Join(args, " "), code, out)
		}
	}
	for _, args := range [][]string{{}, {"--help"}} {
		if out, code := run(args...); code != 0 || !strings.Contains(out, "Available Commands") {
			t.Errorf("caddy jit-users %s: exit %d, want the help and 0:\n%s", strings.Join(args, " "), code, out)
		}
	}
}
