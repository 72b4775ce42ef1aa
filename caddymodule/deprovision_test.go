package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// oidcUserNamed is a verified user of the test provider.
func oidcUserNamed(name string) *oidcUser {
	return &oidcUser{sub: name + "-sub", claims: map[string]any{
		"email": name + "@example.com", "email_verified": true, "name": name, "preferred_username": name,
	}}
}

// A connection's deprovision rule deletes the users who stopped logging
// in, with everything kept of them, and ends their live sessions; users
// who logged in recently, users an administrator marked keep and users
// holding a local role stay. Each deletion is an audit event, a Caddy
// event and a count in jit_auth_deprovisioned_total.
func TestDeprovisionDeletesInactiveUsers(t *testing.T) {
	admin := freePort(t)
	takeEvents()
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true, jsonReplace: []string{`"apps":{`, subscribeAll},
		corpExtra: "deprovision {\n\t\t\t\tafter 4s\n\t\t\t\taction delete\n\t\t\t\tevery 1s\n\t\t\t}"})
	st := openStore(t, s.dir)
	before := scrapeMetrics(t, admin)

	browsers := map[string]*browser{}
	for _, name := range []string{"ann", "ben", "cat", "dan"} {
		s.queue(oidcUserNamed(name))
		b := newBrowser(t)
		if resp, _ := s.login(b, "corp", "/x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login of %s: %d", name, resp.StatusCode)
		}
		browsers[name] = b
	}
	if code := adminCall(t, admin, http.MethodPatch, "/jit_auth/users/ben@example.com", `{"keep": true}`, nil); code != http.StatusOK {
		t.Fatalf("keep ben: %d", code)
	}
	if code := adminCall(t, admin, http.MethodPatch, "/jit_auth/users/cat@example.com", `{"grant_roles": ["admin"]}`, nil); code != http.StatusOK {
		t.Fatalf("grant cat a local role: %d", code)
	}
	ann, err := st.UserByUsername(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// dan keeps logging in; the others do not.
	stop := time.Now().Add(12 * time.Second)
	for time.Now().Before(stop) {
		if _, err := st.UserByUsername(context.Background(), "ann@example.com"); err != nil {
			break
		}
		s.queue(oidcUserNamed("dan"))
		if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("dan's login: %d", resp.StatusCode)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := st.UserByUsername(context.Background(), "ann@example.com"); err == nil {
		t.Fatal("ann, inactive for longer than after, was not deleted within 12 s")
	}
	for _, name := range []string{"ben", "cat", "dan"} {
		if _, err := st.UserByUsername(context.Background(), name+"@example.com"); err != nil {
			t.Errorf("%s was deprovisioned: %v", name, err)
		}
	}
	if h, err := st.LoginHistory(context.Background(), ann.ID); err != nil || len(h) != 0 {
		t.Errorf("ann's login history after the deletion: %v, %v", h, err)
	}
	if ids, err := st.Identities(context.Background(), ann.ID); err != nil || len(ids) != 0 {
		t.Errorf("ann's identities after the deletion: %v, %v", ids, err)
	}
	if resp, _ := browsers["ann"].get(s.base + "/x"); resp.StatusCode != http.StatusFound {
		t.Errorf("ann's live session after the deletion: %d, want 302 to log in", resp.StatusCode)
	}
	if resp, _ := browsers["ben"].get(s.base + "/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("ben's live session: %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(strings.Join(takeEvents(), "|"), "user_deleted ann@example.com no login for 4s (deprovision of connection corp)") {
		t.Error("no user_deleted Caddy event for ann with the rule as reason")
	}
	after := scrapeMetrics(t, admin)
	key := `jit_auth_deprovisioned_total{action="delete",connection="corp"}`
	if got := after[key] - before[key]; got != 1 {
		t.Errorf("%s went up by %v, want 1", key, got)
	}
	logs, _ := os.ReadFile(s.logFile())
	if !strings.Contains(string(logs), `"msg":"user deleted for inactivity"`) || !strings.Contains(string(logs), `"local_id":"`+ann.ID+`"`) {
		t.Error("the audit log has no \"user deleted for inactivity\" event for ann")
	}
}

// Two instances on one PostgreSQL with the same disable rule: one of
// them sweeps (the lease in the store says which), the inactive user is
// disabled once, with the rule as the reason, and the session they hold
// on the other instance ends.
func TestDeprovisionOnTwoInstancesSharingPostgres(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	storeLine := fmt.Sprintf("store postgres %q\n\t\tuser_status_refresh 1s\n\t\trevocation_poll 1s", connString)
	caddyfile := func(d string, port int) string {
		return strings.Replace(pgCaddyfile(d, storeLine, port, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()),
			"\t\t\tjit\n", "\t\t\tjit\n\t\t\tdeprovision {\n\t\t\t\tafter 3s\n\t\t\t\tevery 1s\n\t\t\t}\n", 1)
	}
	var bases []string
	for _, name := range []string{"a", "b"} {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		base := fmt.Sprintf("http://localhost:%d", port)
		startCaddyProcess(t, bin, d, caddyfile(d, port), base)
		bases = append(bases, base)
	}
	onB := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := onB.follow(bases[1]+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through B: %d %s", resp.StatusCode, body)
	}
	db, err := pgx.Connect(context.Background(), connString)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var status, reason string
	eventually(t, "alice disabled for inactivity", 15*time.Second, func() bool {
		err := db.QueryRow(context.Background(), `SELECT status, status_reason FROM users WHERE username = 'alice@example.com'`).Scan(&status, &reason)
		return err == nil && status == string(provisioner.StatusDisabled)
	})
	if reason != "no login for 3s (deprovision of connection corp)" {
		t.Errorf("status_reason %q", reason)
	}
	eventually(t, "B ends the session of the user disabled for inactivity", 15*time.Second, func() bool {
		resp, _ := onB.get(bases[1] + "/x")
		return resp.StatusCode == http.StatusFound
	})
	var holders int
	if err := db.QueryRow(context.Background(), `SELECT count(DISTINCT holder) FROM leases WHERE name = 'jit_auth.deprovision'`).Scan(&holders); err != nil || holders != 1 {
		t.Errorf("lease holders: %d, %v; want one", holders, err)
	}
	// A second sweep by either instance leaves the disabled user as is.
	var changed time.Time
	if err := db.QueryRow(context.Background(), `SELECT status_changed_at FROM users WHERE username = 'alice@example.com'`).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	var again time.Time
	if err := db.QueryRow(context.Background(), `SELECT status_changed_at FROM users WHERE username = 'alice@example.com'`).Scan(&again); err != nil || !again.Equal(changed) {
		t.Errorf("status_changed_at moved from %v to %v: the user was disabled twice", changed, again)
	}
}

// A deprovision rule on a connection with JIT off, or without after, or
// with an unknown action or option, is refused when the config loads,
// naming the connection and what to fix.
func TestDeprovisionConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ jit, block, want string }{
		{"jit", "deprovision {\n after 90d\n action archive\n }", `connection "corp": deprovision: action "archive": use disable or delete`},
		{"jit", "deprovision {\n action delete\n }", "deprovision needs 'after <duration>'"},
		{"jit", "deprovision {\n after 90d\n colour blue\n }", `unknown deprovision option "colour"`},
		{"jit", "deprovision {\n after soon\n }", "after soon: use a positive duration"},
		{"", "deprovision {\n after 90d\n }", `connection "corp": deprovision needs jit on`},
		{"jit off", "deprovision {\n after 90d\n }", `connection "corp": deprovision needs jit on`},
	} {
		err := validate(t, fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %[1]s/storage\n\tjit_auth {\n\t\tstore sqlite %[1]s/users.db\n"+
			"\t\tconnection corp {\n oidc https://idp.example a b\n %[2]s\n %[3]s\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n", dir, tc.jit, tc.block))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.block, err, tc.want)
		}
	}
	ok := fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %[1]s/storage\n\tjit_auth {\n\t\tstore sqlite %[1]s/users.db\n"+
		"\t\tconnection corp {\n oidc https://idp.example a b\n jit\n deprovision {\n after 90d\n action delete\n every 6h\n include_kept\n include_local_roles\n }\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n", dir)
	if err := validate(t, ok); err != nil {
		t.Errorf("a full deprovision block: %v", err)
	}
}
