// Package testhome keeps a test binary, and every Caddy it starts, out of
// the Caddy data and config directories of whoever runs the tests.
package testhome

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Run points Caddy's data and config directories (and so the default
// SQLite file, the default storage and autosave.json) at a directory of
// the run's own, for every test and for every Caddy binary a test starts
// (they inherit the environment), runs the tests, and fails the run if
// anything was written there: each test keeps its files in its own
// temporary directory. Call it from TestMain: os.Exit(testhome.Run(m)).
func Run(m *testing.M) int {
	home, err := os.MkdirTemp("", "jitauth-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	os.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	// Caddy computes its default storage when its package initialises,
	// before TestMain runs.
	caddy.DefaultStorage.Path = caddy.AppDataDir()

	code := m.Run()
	// Only Caddy's own directories count: a browser or the go tool that
	// a test runs keeps its settings beside them.
	written := append(FilesUnder(caddy.AppDataDir()), FilesUnder(caddy.AppConfigDir())...)
	if len(written) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: tests wrote into the Caddy data/config directory instead of their own temporary directories:")
		for _, f := range written {
			fmt.Fprintf(os.Stderr, "\t%s\n", f)
		}
		return 1
	}
	return code
}

// FilesUnder lists the files under dir, but instance.uuid, which Caddy's
// TLS app writes into the data directory whatever the configuration.
func FilesUnder(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != filepath.Join(dir, "instance.uuid") {
			out = append(out, path)
		}
		return nil
	})
	return out
}
