package caddymodule_test

import (
	"os"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/testhome"
)

// TestMain keeps the tests, and every Caddy they start, out of the real
// Caddy data and config directories, and fails the run if anything was
// written there (see testhome.Run); then it removes the Caddy binary
// the tests shared (buildCaddy).
func TestMain(m *testing.M) {
	code := testhome.Run(m)
	if caddyBuild.dir != "" {
		os.RemoveAll(caddyBuild.dir)
	}
	os.Exit(code)
}
