package main

import (
	"bytes"
	"strings"
	"testing"
)

// With its admin endpoint moved (-admin, as the demo advises when a Caddy
// of the machine holds localhost:2019), the banner's jit-users command
// names the demo's endpoint: as printed before, it asked that other Caddy
// on localhost:2019, so listing showed another directory and disabling
// acted on another Caddy's users.
func TestBannerJitUsersCommandReachesTheDemosAdminEndpoint(t *testing.T) {
	for addr, want := range map[string]string{
		"localhost:2119": "go run ./cmd/caddy jit-users list --address localhost:2119\n",
		"localhost:2019": "go run ./cmd/caddy jit-users list\n",
	} {
		var out bytes.Buffer
		printBanner(&out)(running{SiteURL: "http://localhost:8080", AdminURL: adminURL(addr)})
		if !strings.Contains(out.String(), want) {
			t.Errorf("admin endpoint %s: the banner does not say %q:\n%s", addr, want, out.String())
		}
	}
}
