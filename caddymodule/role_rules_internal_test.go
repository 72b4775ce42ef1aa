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

// A session's own connection's grant is read against its login's groups
// only when the session says which they were and how they were mapped:
// a changed groups mapping leaves only the roles given to every user; a
// session that cannot say (issued before GroupsMapping, or while no rule
// went by group, under a sync that keeps older groups; or missing the
// RoleGroups its mark promises) keeps the roles the rules still name. A
// new session gets the same reading of its user's grants.
func TestCurrentRolesFollowGroupsMappingAndLoginGroups(t *testing.T) {
	rule := func(role string, groups ...string) provisioner.RoleRule {
		return provisioner.RoleRule{Role: role, FromGroups: groups}
	}
	expr := func(src string) provisioner.Expr {
		e, err := provisioner.ParseExpr(src, false)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	rules := []provisioner.RoleRule{rule("auditor", "wonderland"), rule("member"), rule("ops", "ops")}
	corp := &provisioner.Policy{Roles: rules, Map: map[string]provisioner.Expr{provisioner.AttrGroups: expr("{claims.groups}")}}
	remapped := &provisioner.Policy{Roles: rules, Map: map[string]provisioner.Expr{provisioner.AttrGroups: expr("{claims.corp_groups}")}}
	firstLogin := &provisioner.Policy{Roles: rules, Sync: provisioner.SyncFirstLogin}
	partner := &provisioner.Policy{Roles: []provisioner.RoleRule{rule("guest", "anything")}}
	issued := time.Unix(2_000_000, 0)
	p := &liveProfile{readAt: issued.Add(time.Hour).UnixNano(), groups: []string{"staff"}, grants: map[string][]string{
		provisioner.ConnectionSource("corp"):    {"auditor", "member", "ops"},
		provisioner.ConnectionSource("partner"): {"guest"},
	}}
	mapped := groupsMappingDigest(corp)
	if mapped == groupsMappingDigest(remapped) || mapped == groupsMappingDigest(firstLogin) || len(mapped) != 8 {
		t.Fatalf("digests: %q %q %q", mapped, groupsMappingDigest(remapped), groupsMappingDigest(firstLogin))
	}
	cases := []struct {
		name string
		pol  *provisioner.Policy
		s    Session
		want []string
	}{
		{"jit on: the groups mapping unchanged",
			corp, Session{UserID: "u", Connection: "corp", Groups: []string{"wonderland"}, GroupsMapping: mapped, IssuedAt: issued.Unix()},
			[]string{"auditor", "guest", "member"}},
		{"jit on: the groups mapping changed",
			remapped, Session{UserID: "u", Connection: "corp", Groups: []string{"wonderland"}, GroupsMapping: mapped, IssuedAt: issued.Unix()},
			[]string{"guest", "member"}},
		{"jit on: the groups mapping changed, the login's groups in rg",
			remapped, Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, RoleGroups: []string{"wonderland"}, GroupsMapping: mapped + roleGroupsMark, IssuedAt: issued.Unix()},
			[]string{"guest", "member"}},
		{"jit on: marked, the login's groups stored",
			firstLogin, Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, GroupsMapping: groupsMappingDigest(firstLogin), IssuedAt: issued.Unix()},
			[]string{"guest", "member"}},
		{"jit on: marked, the login's groups in rg",
			firstLogin, Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, RoleGroups: []string{"wonderland"}, GroupsMapping: groupsMappingDigest(firstLogin) + roleGroupsMark, IssuedAt: issued.Unix()},
			[]string{"auditor", "guest", "member"}},
		{"jit on: unmarked under first_login",
			firstLogin, Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, IssuedAt: issued.Unix()},
			[]string{"auditor", "guest", "member", "ops"}},
		{"jit on: marked for rg, rg missing",
			firstLogin, Session{UserID: "u", Connection: "corp", Groups: []string{"staff"}, GroupsMapping: groupsMappingDigest(firstLogin) + roleGroupsMark, IssuedAt: issued.Unix()},
			[]string{"auditor", "guest", "member", "ops"}},
		{"jit off: the groups mapping changed",
			remapped, Session{Connection: "corp", Groups: []string{"wonderland"}, Roles: []string{"auditor", "member"}, GroupsMapping: mapped, IssuedAt: issued.Unix()},
			[]string{"member"}},
		{"jit off: the groups mapping unchanged",
			corp, Session{Connection: "corp", Groups: []string{"wonderland"}, Roles: []string{"auditor", "member"}, GroupsMapping: mapped, IssuedAt: issued.Unix()},
			[]string{"auditor", "member"}},
	}
	for _, c := range cases {
		m := &sessions{policies: map[string]*provisioner.Policy{"corp": c.pol, "partner": partner}}
		if got := m.currentRoles(&c.s, p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// A new session holds what the rules loaded now grant, before any
	// status read: not another connection's grant whose rule is gone.
	a := &App{sessions: &sessions{policies: map[string]*provisioner.Policy{"corp": corp, "partner": {}}}}
	conn := &Connection{name: "corp", pol: corp}
	u := &provisioner.User{ID: "u", Groups: []string{"staff", "wonderland"}, RoleGrants: map[string][]string{
		provisioner.ConnectionSource("corp"):    {"auditor", "member"},
		provisioner.ConnectionSource("partner"): {"guest"},
		provisioner.RoleSourceLocal:             {"admin"},
	}}
	s := a.newSession(conn, provisioner.Claims{Subject: "sub"}, provisioner.Result{User: u, Profile: provisioner.Profile{Groups: []string{"staff", "wonderland"}}}, time.Hour, issued)
	if want := []string{"admin", "auditor", "member"}; !slices.Equal(s.Roles, want) || s.GroupsMapping != mapped || s.RoleGroups != nil {
		t.Errorf("new session: roles %v (want %v), gm %q (want %q), rg %v", s.Roles, want, s.GroupsMapping, mapped, s.RoleGroups)
	}
}
