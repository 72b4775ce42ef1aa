package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestMain points Caddy's data and config directories (and the browser's
// settings) at a directory of the run's own, and fails the run if Caddy
// wrote anything there but instance.uuid (which its TLS app writes
// whatever the configuration): the demo keeps everything in its data
// directory, and the tests touch nothing of the user's.
func TestMain(m *testing.M) {
	os.Exit(runIsolated(m))
}

func runIsolated(m *testing.M) int {
	home, err := os.MkdirTemp("", "jitauth-demo-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	os.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	// Caddy computes its default storage when its package initialises.
	caddy.DefaultStorage.Path = caddy.AppDataDir()

	code := m.Run()
	var written []string
	for _, dir := range []string{caddy.AppDataDir(), caddy.AppConfigDir()} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && path != filepath.Join(dir, "instance.uuid") {
				written = append(written, path)
			}
			return nil
		})
	}
	if len(written) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the demo's tests wrote into Caddy's data/config directory:")
		for _, f := range written {
			fmt.Fprintf(os.Stderr, "\t%s\n", f)
		}
		return 1
	}
	return code
}
