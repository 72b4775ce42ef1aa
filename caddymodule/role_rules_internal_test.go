package caddymodule

import (
	"slices"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A session holds the roles the role rules loaded now still grant: a
// local grant always; its own connection's for the groups its login saw
// or stored since; another connection's while that connection still has
// a rule for the role. Nothing is granted that the store does not hold.
func TestCurrentRolesFollowLoadedRoleRules(t *testing.T) {
	rule := func(role string, groups ...string) provisioner.RoleRule {
		return provisioner.RoleRule{Role: role, FromGroups: groups}
	}
	m := &sessions{policies: map[string]*provisioner.Policy{
		"corp":    {Roles: []provisioner.RoleRule{rule("auditor", "wonderland"), rule("member"), rule("ops", "ops")}},
		"partner": {Roles: []provisioner.RoleRule{rule("guest", "anything")}},
	}}
	issued := time.Unix(2_000_000, 0)
	read := issued.Add(time.Hour).UnixNano()
	grants := map[string][]string{
		provisioner.RoleSourceLocal:             {"admin"},
		provisioner.ConnectionSource("corp"):    {"auditor", "member", "ops", "removed"},
		provisioner.ConnectionSource("partner"): {"guest", "dropped"},
		provisioner.ConnectionSource("gone"):    {"legacy"},
	}
	cases := []struct {
		name string
		s    Session
		p    *liveProfile
		want []string
	}{
		{"jit on: rules removed, groups no longer qualifying, a connection removed",
			Session{UserID: "u", Connection: "corp", Groups: []string{"wonderland"}, IssuedAt: issued.Unix()},
			&liveProfile{readAt: read, grants: grants},
			[]string{"admin", "auditor", "guest", "member"}},
		{"jit on: groups stored since count",
			Session{UserID: "u", Connection: "corp", IssuedAt: issued.Unix()},
			&liveProfile{readAt: read, groups: []string{"ops"}, grants: grants},
			[]string{"admin", "guest", "member", "ops"}},
		{"jit on: the provider's groups at the login, when not the stored ones",
			Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, RoleGroups: []string{"staff", "wonderland"}, IssuedAt: issued.Unix()},
			&liveProfile{readAt: read, groups: []string{"staff"}, grants: grants},
			[]string{"admin", "auditor", "guest", "member"}},
		{"jit on: no role the store does not hold",
			Session{UserID: "u", Connection: "corp", Groups: []string{"wonderland", "ops"}, IssuedAt: issued.Unix()},
			&liveProfile{readAt: read, grants: map[string][]string{provisioner.ConnectionSource("corp"): {"member"}}},
			[]string{"member"}},
		{"jit on: no profile read since the login yet",
			Session{UserID: "u", Connection: "corp", Roles: []string{"removed"}, IssuedAt: issued.Unix()},
			&liveProfile{readAt: issued.UnixNano(), grants: grants},
			[]string{"removed"}},
		{"jit off: the session's roles for its groups",
			Session{Connection: "corp", Groups: []string{"staff"}, Roles: []string{"auditor", "member", "removed"}, IssuedAt: issued.Unix()},
			nil,
			[]string{"member"}},
		{"jit off: a connection not loaded grants nothing",
			Session{Connection: "gone", Roles: []string{"legacy"}, IssuedAt: issued.Unix()},
			nil,
			nil},
	}
	for _, c := range cases {
		if got := m.currentRoles(&c.s, c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// Unchanged roles cost no copy; changed ones give a copy with its own
	// identity, the cached session untouched.
	s := &Session{Connection: "corp", Roles: []string{"member"}, Groups: []string{"staff"}}
	if got := m.withCurrentRoles(s, s, nil); got != s {
		t.Error("unchanged roles copied the session")
	}
	s.Roles = []string{"auditor", "member"}
	if got := m.withCurrentRoles(s, s, nil); got == s || !slices.Equal(got.Roles, []string{"member"}) || len(s.Roles) != 2 {
		t.Errorf("changed roles: %+v (session now %+v)", got, s)
	}
}
