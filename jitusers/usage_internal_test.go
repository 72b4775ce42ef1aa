package jitusers

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The one-line usage (`caddy help`, `caddy jit-users --help`) names every
// subcommand: `keep` was missing from it.
func TestUsageNamesEverySubcommand(t *testing.T) {
	m := regexp.MustCompile(`^<([a-z|-]+)>`).FindStringSubmatch(usage)
	if m == nil {
		t.Fatalf("usage %q does not start with <subcommand|…>", usage)
	}
	listed := strings.Split(m[1], "|")
	for _, sc := range subcommands() {
		if !slices.Contains(listed, sc.Name()) {
			t.Errorf("usage %q does not name the subcommand %s", usage, sc.Name())
		}
	}
}
