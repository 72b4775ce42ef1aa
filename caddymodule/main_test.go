package caddymodule_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestMain points Caddy's data and config directories (and so the
// default SQLite file, the default storage and autosave.json) at a
// directory of the run's own, for every test and for every Caddy binary
// a test starts, and fails the run if any test wrote there: each test
// keeps its files in its own temporary directory, and nothing touches
// the real Caddy data directory of whoever runs the suite.
func TestMain(m *testing.M) {
	os.Exit(runIsolated(m))
}

func runIsolated(m *testing.M) int {
	sentinel, err := os.MkdirTemp("", "jitauth-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(sentinel)
	data, config := filepath.Join(sentinel, "data"), filepath.Join(sentinel, "config")
	os.Setenv("XDG_DATA_HOME", data)
	os.Setenv("XDG_CONFIG_HOME", config)
	// Caddy computes its default storage when its package initialises,
	// before TestMain runs.
	caddy.DefaultStorage.Path = caddy.AppDataDir()

	code := m.Run()
	// Only Caddy's own directories count: a browser or the go tool that
	// a test runs keeps its settings beside them.
	written := append(filesUnder(caddy.AppDataDir()), filesUnder(caddy.AppConfigDir())...)
	if len(written) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests wrote into the Caddy data/config directory instead of their own temporary directories:\n")
		for _, f := range written {
			fmt.Fprintf(os.Stderr, "\t%s\n", f)
		}
		return 1
	}
	return code
}

// filesUnder lists the files under dir, but instance.uuid, which Caddy's
// TLS app writes into the data directory whatever the configuration.
func filesUnder(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != filepath.Join(dir, "instance.uuid") {
			out = append(out, path)
		}
		return nil
	})
	return out
}
