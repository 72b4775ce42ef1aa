package main

import (
	"os"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/testhome"
)

// TestMain keeps the tests, and every Caddy they start, out of the real
// Caddy data and config directories, and fails the run if anything was
// written there (see testhome.Run).
func TestMain(m *testing.M) {
	os.Exit(testhome.Run(m))
}
