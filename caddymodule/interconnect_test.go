package caddymodule_test

// End-to-end tests of the JIT×MFA interconnection (PRODUCT.md §5): an
// application that requires TOTP and offers a connection with JIT off is
// refused when a configuration is validated or loaded, through every way
// an operator loads one, with one message naming every conflict; the
// on_conflict warn escape hatch loads it and refuses those users at login.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite caddymodule/testdata/*.golden from the current output")

// The MFA blocks of the three applications of interconnectCaddyfile that
// require a second factor.
type interconnectMFA struct{ wiki, grafana, docs string }

var (
	// conflicting: github (JIT off) is offered with TOTP by wiki, grafana
	// and docs (docs offers every connection); partner (JIT off) by wiki
	// and docs, since grafana skips it. status requires no second factor.
	conflicting = interconnectMFA{
		wiki:    "mfa totp",
		grafana: "mfa totp {\n\t\t\t\tskip_for partner\n\t\t\t}",
		docs:    "mfa totp",
	}
	// skipped fixes every conflict with skip_for.
	skipped = interconnectMFA{
		wiki:    "mfa totp {\n\t\t\t\tskip_for github partner\n\t\t\t}",
		grafana: "mfa totp {\n\t\t\t\tskip_for github partner\n\t\t\t}",
		docs:    "mfa totp {\n\t\t\t\tskip_for github partner\n\t\t\t}",
	}
	// warned accepts every conflict with on_conflict warn.
	warned = interconnectMFA{
		wiki:    "mfa totp {\n\t\t\t\ton_conflict warn\n\t\t\t}",
		grafana: "mfa totp {\n\t\t\t\tskip_for partner\n\t\t\t\ton_conflict warn\n\t\t\t}",
		docs:    "mfa totp {\n\t\t\t\ton_conflict warn\n\t\t\t}",
	}
	// partlyWarned accepts the conflicts of wiki and docs only.
	partlyWarned = interconnectMFA{wiki: warned.wiki, grafana: conflicting.grafana, docs: warned.docs}
)

// interconnectCaddyfile is a configuration with one JIT-on connection
// (corp), two JIT-off ones (github, partner) and four named applications
// on one site at localhost:port; hello is what the site's other paths
// answer. The OIDC issuer is never contacted: discovery is lazy.
func interconnectCaddyfile(dir, admin string, port int, m interconnectMFA, hello string) string {
	return fmt.Sprintf(`{
	admin %[1]s
	persist_config off
	storage file_system %[2]s/storage
	jit_auth {
		store sqlite %[2]s/users.db
		cookie_keys %[3]s %[4]s
		connection corp {
			oidc https://idp.example.com corp-client corp-secret
			jit
		}
		connection github {
			provider github gh-key gh-secret
		}
		connection partner {
			oidc https://idp.example.com partner-client partner-secret
		}
		application wiki {
			connections corp github partner
			%[5]s
		}
		application grafana {
			connections corp github partner
			%[6]s
		}
		application docs {
			%[7]s
		}
		application status {
			connections github partner
		}
	}
}
http://localhost:%[8]d {
	handle /wiki* {
		jit_auth wiki
		respond "wiki"
	}
	handle /grafana* {
		jit_auth grafana
		respond "grafana"
	}
	respond %[9]q
}
`, admin, dir, testHashKey, testBlockKey, m.wiki, m.grafana, m.docs, port, hello)
}

// inlineConflictCaddyfile requires TOTP in a site's own jit_auth block
// from github, whose JIT is off; with named, a named application attached
// at /wiki* requires it too.
func inlineConflictCaddyfile(dir string, named bool) string {
	app, site := "", ""
	if named {
		app = `
		application wiki {
			connections corp github
			mfa totp
		}`
		site = `
	handle /wiki* {
		jit_auth wiki
		respond "wiki"
	}`
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/storage
	jit_auth {
		store sqlite %[1]s/users.db
		cookie_keys %[2]s %[3]s
		connection corp {
			oidc https://idp.example.com corp-client corp-secret
			jit
		}
		connection github {
			provider github gh-key gh-secret
		}%[4]s
	}
}
http://localhost:8080 {%[5]s
	handle {
		jit_auth {
			connections corp github
			mfa totp
		}
		respond "inline"
	}
}
`, dir, testHashKey, testBlockKey, app, site)
}

// caddyCLI runs the built Caddy binary.
type caddyCLI struct {
	t   *testing.T
	bin string
	env []string
}

// run runs `caddy args…` to its end, returning its output and exit code.
func (c *caddyCLI) run(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			c.t.Fatalf("caddy %s: %v", strings.Join(args, " "), err)
		}
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// writeConfig writes content to dir/name and returns its path.
func writeConfig(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jitAuthMessage finds the error Caddy's CLI logged last in output and
// returns the jit_auth part of it: the text after the last "provision
// jit_auth: " (an error of the jit_auth app, reached through the http
// app's handler or loaded first, depending on the order Caddy provisions
// apps in) or after "provision http.handlers.jit_auth: " (an error of a
// handler).
func jitAuthMessage(output string) (string, bool) {
	msg, _, ok := jitAuthMessageIn(output)
	return msg, ok
}

// jitAuthMessageIn is jitAuthMessage that also returns the outermost
// context of the error, such as "loading http app module".
func jitAuthMessageIn(output string) (string, string, bool) {
	lines := strings.Split(strings.TrimSpace(output), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(lines[i]), &entry) != nil || entry.Level != "error" {
			continue
		}
		msg, ok := jitAuthPart(entry.Msg)
		outer, _, _ := strings.Cut(entry.Msg, ":")
		return msg, outer, ok
	}
	return "", "", false
}

// jitAuthPart cuts the jit_auth part out of a load error, unwrapping the
// admin API's JSON answer that `caddy reload` quotes.
func jitAuthPart(msg string) (string, bool) {
	if i := strings.Index(msg, `{"error":`); i >= 0 {
		var body struct{ Error string }
		if json.NewDecoder(strings.NewReader(msg[i:])).Decode(&body) == nil {
			msg = body.Error
		}
	}
	for _, marker := range []string{"provision jit_auth: ", "provision http.handlers.jit_auth: "} {
		if i := strings.LastIndex(msg, marker); i >= 0 {
			return msg[i+len(marker):], true
		}
	}
	return "", false
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("message differs from %s (run with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

var (
	conflictRE = regexp.MustCompile(`^  - connection "([^"]+)" is offered`)
	appNameRE  = regexp.MustCompile(`application "([^"]+)"`)
)

// offeredBy reads a conflict message: for each connection, the names of
// the named applications listed under it ("inline" for an inline one).
func offeredBy(msg string) map[string][]string {
	out := map[string][]string{}
	conn := ""
	for _, line := range strings.Split(msg, "\n") {
		if m := conflictRE.FindStringSubmatch(line); m != nil {
			conn = m[1]
			out[conn] = nil
			continue
		}
		if conn == "" || !strings.HasPrefix(line, "      ") {
			continue
		}
		if m := appNameRE.FindStringSubmatch(line); m != nil {
			out[conn] = append(out[conn], m[1])
		} else if strings.Contains(line, "inline") {
			out[conn] = append(out[conn], "inline")
		}
	}
	return out
}

// applicationName is the name in a label such as `application "wiki"`.
func applicationName(label string) string {
	if m := appNameRE.FindStringSubmatch(label); m != nil {
		return m[1]
	}
	return label
}

// TestMFAConflictWithCaddyBinary drives the Caddy binary built from
// cmd/caddy the way an operator does: validate, run, reload, and the
// admin API.
func TestMFAConflictWithCaddyBinary(t *testing.T) {
	xdg := filepath.Join(t.TempDir(), "xdg")
	if err := os.MkdirAll(xdg, 0o755); err != nil {
		t.Fatal(err)
	}
	cli := &caddyCLI{t: t, bin: buildCaddy(t),
		env: append(os.Environ(), "XDG_DATA_HOME="+xdg, "XDG_CONFIG_HOME="+xdg)}

	validate := func(t *testing.T, caddyfile string) (string, int) {
		t.Helper()
		dir := t.TempDir()
		path := writeConfig(t, dir, "Caddyfile", strings.ReplaceAll(caddyfile, "$DIR", dir))
		c := *cli
		c.t = t
		return c.run("validate", "--config", path, "--adapter", "caddyfile")
	}

	t.Run("ValidateReportsEveryConflictAtOnce", func(t *testing.T) {
		// Caddy provisions apps in map order, the jit_auth app or the
		// http app first: the message must not depend on it.
		var first string
		orders := map[string]int{}
		for i := 0; i < 10; i++ {
			out, code := validate(t, interconnectCaddyfile("$DIR", "off", 8080, conflicting, "hello"))
			if code == 0 {
				t.Fatalf("caddy validate accepted the conflicting configuration:\n%s", out)
			}
			msg, outer, ok := jitAuthMessageIn(out)
			orders[outer]++
			if !ok {
				t.Fatalf("no jit_auth error in the output of caddy validate (exit %d):\n%s", code, out)
			}
			if i == 0 {
				first = msg
			} else if msg != first {
				t.Fatalf("run %d gave another message:\n%s\n--- first run:\n%s", i+1, msg, first)
			}
		}
		t.Logf("errors seen by outermost context: %v", orders)
		checkGolden(t, "mfa_conflict.golden", first)
		for _, want := range []string{
			`connection "github"`, `connection "partner"`,
			`application "wiki"`, `application "grafana"`, `application "docs"`,
			"connection github { jit }", "skip_for github",
			"connection partner { jit }", "skip_for partner",
			"on_conflict warn",
		} {
			if !strings.Contains(first, want) {
				t.Errorf("message lacks %q:\n%s", want, first)
			}
		}
		for _, unwanted := range []string{`connection "corp"`, `application "status"`} {
			if strings.Contains(first, unwanted) {
				t.Errorf("message names %s, which is no conflict:\n%s", unwanted, first)
			}
		}
		// grafana skips partner; status requires no second factor.
		want := map[string][]string{"github": {"docs", "grafana", "wiki"}, "partner": {"docs", "wiki"}}
		if got := offeredBy(first); len(got) != len(want) || !slices.Equal(got["github"], want["github"]) || !slices.Equal(got["partner"], want["partner"]) {
			t.Errorf("conflicts %v, want %v", got, want)
		}
	})

	t.Run("SkipForValidates", func(t *testing.T) {
		if out, code := validate(t, interconnectCaddyfile("$DIR", "off", 8080, skipped, "hello")); code != 0 {
			t.Fatalf("caddy validate refused a configuration whose conflicts are skipped (exit %d):\n%s", code, out)
		}
	})

	t.Run("WarnValidatesAndLogs", func(t *testing.T) {
		out, code := validate(t, interconnectCaddyfile("$DIR", "off", 8080, warned, "hello"))
		if code != 0 {
			t.Fatalf("caddy validate refused a configuration with on_conflict warn (exit %d):\n%s", code, out)
		}
		want := map[string][]string{
			"github":  {"docs", "grafana", "wiki"},
			"partner": {"docs", "wiki"},
		}
		got := map[string][]string{}
		for _, line := range strings.Split(out, "\n") {
			var entry struct {
				Level, Msg, Connection string
				Applications           []string
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "warn" && strings.Contains(entry.Msg, "mfa totp conflict accepted") {
				for _, label := range entry.Applications {
					got[entry.Connection] = append(got[entry.Connection], applicationName(label))
				}
			}
		}
		for conn, apps := range want {
			if !slices.Equal(got[conn], apps) {
				t.Errorf("warning for connection %s names %v, want %v", conn, got[conn], apps)
			}
		}
		if len(got) != len(want) {
			t.Errorf("warnings for %v, want for github and partner only:\n%s", got, out)
		}
	})

	t.Run("WarnInOneApplicationDoesNotExcuseAnother", func(t *testing.T) {
		out, code := validate(t, interconnectCaddyfile("$DIR", "off", 8080, partlyWarned, "hello"))
		msg, ok := jitAuthMessage(out)
		if code == 0 || !ok {
			t.Fatalf("caddy validate (exit %d) did not refuse grafana's conflict:\n%s", code, out)
		}
		if got := offeredBy(msg); len(got) != 1 || !slices.Equal(got["github"], []string{"grafana"}) {
			t.Errorf("refused %v, want only github for grafana:\n%s", got, msg)
		}
	})

	t.Run("InlineApplicationConflict", func(t *testing.T) {
		out, code := validate(t, inlineConflictCaddyfile("$DIR", false))
		if code == 0 {
			t.Fatalf("caddy validate accepted an inline application requiring TOTP from a JIT-off connection:\n%s", out)
		}
		msg, ok := jitAuthMessage(out)
		if !ok {
			t.Fatalf("no jit_auth error in the output (exit %d):\n%s", code, out)
		}
		checkGolden(t, "mfa_conflict_inline.golden", msg)
		for _, want := range []string{"connection github { jit }", "skip_for github"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		if got := offeredBy(msg); len(got) != 1 || !slices.Equal(got["github"], []string{"inline"}) {
			t.Errorf("conflicts %v, want github for the inline application", got)
		}

		// Inline and named applications are reported together.
		out, code = validate(t, inlineConflictCaddyfile("$DIR", true))
		msg, ok = jitAuthMessage(out)
		if code == 0 || !ok {
			t.Fatalf("caddy validate (exit %d) did not refuse inline and named conflicts:\n%s", code, out)
		}
		if got := offeredBy(msg); len(got) != 1 || !slices.Equal(got["github"], []string{"inline", "wiki"}) && !slices.Equal(got["github"], []string{"wiki", "inline"}) {
			t.Errorf("conflicts %v, want github for the inline application and wiki:\n%s", got, msg)
		}
	})

	// Inline applications hide in handle_errors and in named routes too;
	// the check reads those, and says where.
	t.Run("ErrorRoutesAndNamedRoutes", func(t *testing.T) {
		head := strings.SplitN(inlineConflictCaddyfile("$DIR", false), "http://localhost:8080 {", 2)[0]
		for name, tc := range map[string]struct{ sites, where string }{
			"handle_errors": {`http://localhost:8080 {
	respond "open"
	handle_errors {
		jit_auth {
			connections corp github
			mfa totp
		}
		respond "error page"
	}
}
`, "handle_errors in localhost:8080"},
			"named route": {`&(protected) {
	jit_auth {
		connections corp github
		mfa totp
	}
	respond "named"
}
http://localhost:8080 {
	invoke protected
}
`, "named route protected in"},
		} {
			out, code := validate(t, head+tc.sites)
			msg, ok := jitAuthMessage(out)
			if code == 0 || !ok {
				t.Errorf("%s: caddy validate (exit %d) accepted the conflict:\n%s", name, code, out)
				continue
			}
			if !strings.Contains(msg, "the inline jit_auth application at "+tc.where) {
				t.Errorf("%s: message does not say where (%q):\n%s", name, tc.where, msg)
			}
		}
	})

	t.Run("ReloadAndAdminLoadLeaveTheRunningConfig", func(t *testing.T) {
		dir := t.TempDir()
		adminPort, port := freePort(t), freePort(t)
		admin := fmt.Sprintf("localhost:%d", adminPort)
		adminURL, base := "http://"+admin, fmt.Sprintf("http://localhost:%d", port)
		good := writeConfig(t, dir, "good.caddyfile", interconnectCaddyfile(dir, admin, port, skipped, "hello from the old config"))
		bad := writeConfig(t, dir, "bad.caddyfile", interconnectCaddyfile(dir, admin, port, conflicting, "hello from the bad config"))

		cmd := exec.Command(cli.bin, "run", "--config", good, "--adapter", "caddyfile")
		cmd.Env = cli.env
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("caddy run log:\n%s", logs.String())
			}
		})

		client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(rawURL string) string {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
			req.Header.Set("Accept", "text/html")
			resp, err := client.Do(req)
			if err != nil {
				return "error: " + err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.HasPrefix(get(base+"/"), "200 "); {
			select {
			case <-exited:
				t.Fatalf("caddy run exited")
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("caddy run did not serve %s: %s", base, get(base+"/"))
			}
		}
		// What the running config answers: the site, a protected
		// application (sent to sign in), and the admin API's config.
		snapshot := func() []string {
			return []string{get(base + "/"), get(base + "/wiki/page"), get(adminURL + "/config/")}
		}
		before := snapshot()
		if !strings.Contains(before[0], "hello from the old config") || !strings.HasPrefix(before[1], "302 /.jitauth/login") || !strings.Contains(before[2], `"application":"wiki"`) {
			t.Fatalf("unexpected answers from the running config: %q", before)
		}
		unchanged := func(after string) {
			t.Helper()
			if now := snapshot(); !slices.Equal(now, before) {
				t.Errorf("after %s the running config answers\n%q\nwant as before\n%q", after, now, before)
			}
		}
		// Reload and the admin API must say what validate says.
		out, code := cli.run("validate", "--config", bad, "--adapter", "caddyfile")
		wantMsg, ok := jitAuthMessage(out)
		if code == 0 || !ok {
			t.Fatalf("caddy validate (exit %d) of the bad config:\n%s", code, out)
		}
		if offeredBy(wantMsg)["github"] == nil {
			t.Fatalf("unexpected message from validate:\n%s", wantMsg)
		}

		out, code = cli.run("reload", "--config", bad, "--adapter", "caddyfile", "--address", admin)
		if code == 0 {
			t.Errorf("caddy reload accepted the conflicting configuration:\n%s", out)
		}
		if msg, ok := jitAuthMessage(out); !ok || msg != wantMsg {
			t.Errorf("caddy reload reported\n%s\nwant\n%s\n(output:\n%s)", msg, wantMsg, out)
		}
		unchanged("caddy reload")

		// The same configuration as JSON, posted to the admin API.
		adapt := exec.Command(cli.bin, "adapt", "--config", bad, "--adapter", "caddyfile")
		adapt.Env = cli.env
		cfg, err := adapt.Output()
		if err != nil || !json.Valid(cfg) {
			t.Fatalf("caddy adapt: %v\n%s", err, cfg)
		}
		resp, err := client.Post(adminURL+"/load", "application/json", bytes.NewReader(cfg))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /load of the conflicting JSON: %d, want 400\n%s", resp.StatusCode, body)
		}
		var answer struct{ Error string }
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatalf("POST /load answered %s: %v", body, err)
		}
		if msg, ok := jitAuthPart(answer.Error); !ok || msg != wantMsg {
			t.Errorf("POST /load reported\n%s\nwant\n%s", msg, wantMsg)
		}
		unchanged("POST /load")

		// A configuration without conflicts reloads: the checks above
		// would have seen a change.
		warn := writeConfig(t, dir, "warn.caddyfile", interconnectCaddyfile(dir, admin, port, warned, "hello from the new config"))
		if out, code := cli.run("reload", "--config", warn, "--adapter", "caddyfile", "--address", admin); code != 0 {
			t.Fatalf("caddy reload of the on_conflict warn configuration failed:\n%s", out)
		}
		if got := get(base + "/"); !strings.Contains(got, "hello from the new config") {
			t.Errorf("after a good reload the site answers %q", got)
		}
	})
}

// With on_conflict warn the configuration loads, and a user of the JIT-off
// connection is refused at the MFA application with a clear page, never
// given a session; the JIT-on connection's user goes on to the MFA page.
// A session the JIT-off user got from another application on the host
// does not let them in either.
func TestMFAConflictWarnRefusesJITOffUserAtLogin(t *testing.T) {
	idp := startMockOIDC(t)
	cfg := idp.Config()
	dir := t.TempDir()
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	logFile := filepath.Join(dir, "caddy.log")
	conns := fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			jit
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
		}
		application wiki {
			connections corp partner
			mfa totp {
				on_conflict warn
			}
		}
		application open {
			connections partner
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	caddyfile := fmt.Sprintf(`{%s
}
http://localhost:%d {
	handle /open/* {
		jit_auth open {
			path_prefix /open/.jitauth/
		}
		reverse_proxy %[3]s
	}
	handle {
		jit_auth wiki
		reverse_proxy %[3]s
	}
}
`, globalOptions(dir, conns), port, up.hostPort())
	caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+logFile+"\n\t\tlevel WARN", 1)
	runCaddyfile(t, caddyfile)

	if log := mustReadFile(t, logFile); !strings.Contains(log, "mfa totp conflict accepted") || !strings.Contains(log, `"connection":"partner"`) {
		t.Errorf("no warning about partner was logged:\n%s", log)
	}

	bob := &oidcUser{sub: "bob-sub", claims: map[string]any{
		"email": "bob@partner.example", "email_verified": true, "preferred_username": "bob",
	}}

	// partner → wiki: refused at login, no session.
	b := newBrowser(t)
	idp.QueueUser(bob)
	resp, body, visited := b.follow(base+"/.jitauth/start/partner?rd="+url.QueryEscape("/private"), nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Second factor unavailable") {
		t.Fatalf("partner login to wiki ended %d at %v, want 403 Second factor unavailable:\n%s", resp.StatusCode, visited, body)
	}
	if c := b.lastSetCookie("jitauth_session"); c != nil {
		t.Errorf("partner login to wiki set a session cookie: %v", c)
	}
	if resp, _ := b.get(base + "/private"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/.jitauth/login") {
		t.Errorf("after the refused login /private answers %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if users := allUsers(t, openStore(t, dir)); len(users) != 0 {
		t.Errorf("partner (JIT off) stored users: %v", users)
	}

	// partner → open (no second factor): a session for the host, which
	// wiki does not accept without the factor.
	b = newBrowser(t)
	idp.QueueUser(bob)
	resp, body, visited = b.follow(base+"/open/.jitauth/start/partner?rd="+url.QueryEscape("/open/x"), nil)
	if resp.StatusCode != http.StatusOK || b.cookie(base, "jitauth_session") == nil {
		t.Fatalf("partner login to open ended %d at %v with no session:\n%s", resp.StatusCode, visited, body)
	}
	hits := upstreamHits(up)
	resp, body = b.get(base + "/private")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Second factor unavailable") {
		t.Errorf("open's partner session at wiki: %d, want 403 Second factor unavailable:\n%s", resp.StatusCode, body)
	}
	resp, body = b.get(base + "/.jitauth/mfa")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Second factor unavailable") {
		t.Errorf("open's partner session at wiki's MFA page: %d, want 403 Second factor unavailable:\n%s", resp.StatusCode, body)
	}
	if upstreamHits(up) != hits {
		t.Errorf("a partner session reached wiki's upstream")
	}

	// corp → wiki: on to the MFA page.
	b = newBrowser(t)
	idp.QueueUser(alice())
	resp, _, visited = b.follow(base+"/.jitauth/start/corp?rd="+url.QueryEscape("/private"),
		func(u *url.URL) bool { return u.Path == "/.jitauth/mfa" })
	if loc, _ := resp.Location(); loc == nil || loc.Path != "/.jitauth/mfa" || loc.Query().Get("rd") != "/private" {
		t.Fatalf("corp login to wiki went %v then %d %v, want a redirect to /.jitauth/mfa?rd=/private", visited, resp.StatusCode, loc)
	}
	if resp, _ := b.get(base + "/private"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/.jitauth/mfa") {
		t.Errorf("corp's pre-MFA session at /private: %d %s, want a redirect to the MFA page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if upstreamHits(up) != hits {
		t.Errorf("a session without the second factor reached wiki's upstream")
	}
}

func upstreamHits(u *upstream) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}
