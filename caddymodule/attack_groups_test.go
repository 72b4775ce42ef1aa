package caddymodule_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A provider group with white space at either end would lose it on the
// way: an HTTP parser trims the ends of a header value, and upstreams
// trim the items they split off Remote-Groups. So " admins" would read
// as "admins", a group the user is not in; so would `"admins"` and
// "admins;x" to a parser of HTTP's list syntax. Such groups are dropped
// like those with the separator, JIT on or off.
func TestProviderGroupWithOuterSpaceIsDropped(t *testing.T) {
	s := startIdentitySite(t)
	for _, tt := range []struct{ conn, wantGroups string }{
		{"corp", "Domain Users,member"},
		{"partner", "Domain Users"},
	} {
		u := person("space-sub", "sp@example.com", true, "sp")
		u.claims["groups"] = []string{" admins", "admins ", "admins\u00a0", "\u3000admins", `"admins"`, "admins;x", "Domain Users"}
		if got := loginAs(s, tt.conn, u, ""); got.status != http.StatusOK {
			t.Fatalf("%s: %d\n%s", tt.conn, got.status, got.body)
		}
		h := s.upstream.lastHeaders(t)
		for _, hdr := range []string{"Remote-Groups", "X-Auth-Groups", "X-Auth-Roles"} {
			for g := range strings.SplitSeq(h.Get(hdr), ",") {
				if g = strings.TrimSpace(g); g == "admins" || strings.Trim(g, `"`) == "admins" || strings.HasPrefix(g, "admins;") {
					t.Errorf("%s: %s %q names admins", tt.conn, hdr, h.Get(hdr))
				}
			}
		}
		if h.Get("Remote-Groups") != tt.wantGroups || h.Get("X-Auth-Groups") != "Domain Users" {
			t.Errorf("%s: Remote-Groups %q, groups %q; want %q and Domain Users", tt.conn, h.Get("Remote-Groups"), h.Get("X-Auth-Groups"), tt.wantGroups)
		}
	}
	users := allUsers(t, openStore(t, s.dir))
	if len(users) != 1 || !slices.Equal(users[0].Groups, []string{"Domain Users"}) {
		t.Errorf("stored: %+v; want one user with groups [Domain Users]", users)
	}
}
