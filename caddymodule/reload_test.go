package caddymodule_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/jitauth/caddy-jitauth/internal/testhome"
)

// sqlite3Tool returns the sqlite3 command-line tool. The tests that use
// it are mandatory where it is installed and under CI (.ci/run installs
// Debian's package); elsewhere they are skipped with a reason.
func sqlite3Tool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the sqlite3 command-line tool is missing; CI installs it (apt-get install sqlite3)")
		}
		t.Skip("the sqlite3 command-line tool is not installed (apt-get install sqlite3); this test reads the database with it")
	}
	return p
}

// sqlite3 runs sql on the database file with the sqlite3 tool, as an
// operator or a backup script would, and returns its output.
func sqlite3(t *testing.T, tool, db, sql string) string {
	t.Helper()
	out, err := exec.Command(tool, "-bail", db, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// caddyProcess is `caddy run` of the module's binary, with its admin
// endpoint on, so the test can `caddy reload` it, look into /proc and
// kill it without a goodbye.
type caddyProcess struct {
	t                *testing.T
	bin, dir         string
	base, adminAddr  string
	cmd              *exec.Cmd
	log              *os.File
	caddyfilePath    string
	starts, reloaded int
}

func (p *caddyProcess) writeConfig(caddyfile string) {
	p.t.Helper()
	p.caddyfilePath = filepath.Join(p.dir, "Caddyfile")
	if err := os.WriteFile(p.caddyfilePath, []byte(caddyfile), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// start runs Caddy on caddyfile and waits until it serves.
func (p *caddyProcess) start(caddyfile string) {
	p.t.Helper()
	p.writeConfig(caddyfile)
	p.starts++
	log, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("caddy-%d.log", p.starts)))
	if err != nil {
		p.t.Fatal(err)
	}
	p.log = log
	cmd := exec.Command(p.bin, "run", "--config", p.caddyfilePath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+p.dir, "XDG_CONFIG_HOME="+p.dir)
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		if p.t.Failed() {
			b, _ := os.ReadFile(log.Name())
			p.t.Logf("%s:\n%s", log.Name(), b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/.jitauth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("Caddy at %s did not come up: %v", p.base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill9 ends Caddy as a crash or the OOM killer would.
func (p *caddyProcess) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// reload runs `caddy reload` with caddyfile; force reloads even an
// unchanged config.
func (p *caddyProcess) reload(caddyfile string, force bool) {
	p.t.Helper()
	p.writeConfig(caddyfile)
	args := []string{"reload", "--config", p.caddyfilePath, "--adapter", "caddyfile", "--address", p.adminAddr}
	if force {
		args = append(args, "--force")
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+p.dir, "XDG_CONFIG_HOME="+p.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	p.reloaded++
}

// admin GETs path from the admin endpoint.
func (p *caddyProcess) admin(path string) (int, string) {
	p.t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + p.adminAddr + path)
	if err != nil {
		p.t.Fatalf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fds counts the process's open file descriptors, and those on the
// database files (users.db, its -wal and -shm).
func (p *caddyProcess) fds(db string) (total, onDB int) {
	p.t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		total++
		if strings.HasPrefix(target, db) {
			onDB++
		}
	}
	return total, onDB
}

// goroutines returns the process's goroutine count and the number of
// goroutines whose stack contains each of funcs, from the admin
// endpoint's pprof.
func (p *caddyProcess) goroutines(funcs ...string) (int, map[string]int) {
	p.t.Helper()
	code, body := p.admin("/debug/pprof/goroutine?debug=2")
	if code != http.StatusOK {
		p.t.Fatalf("pprof: %d %s", code, body)
	}
	counts := map[string]int{}
	total := 0
	for _, stack := range strings.Split(body, "\n\n") {
		if !strings.HasPrefix(stack, "goroutine ") {
			continue
		}
		total++
		for _, f := range funcs {
			if strings.Contains(stack, f) {
				counts[f]++
			}
		}
	}
	return total, counts
}

// reloadCaddyfile is the site of TestSQLiteSurvivesReload; generation
// changes the config (user_status_refresh) so a reload is a real one.
func reloadCaddyfile(dir string, adminPort, port int, issuer, clientID, clientSecret, upstream string, generation int) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	persist_config off
	storage file_system %s
	jit_auth {
		store sqlite %s
		cookie_keys %s %s
		user_status_refresh %ds
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	# Without keep-alive to the upstream: reverse_proxy's per-config
	# transports keep connections a request still used during a reload
	# open for minutes, which the resource count would mistake for ours.
	reverse_proxy %s {
		transport http {
			keepalive off
		}
	}
}
`, adminPort, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), testHashKey, testBlockKey,
		1+generation%2, issuer, clientID, clientSecret, port, upstream)
}

// numberedUser is a verified user of the test provider.
func numberedUser(i int) *oidcUser {
	return &oidcUser{sub: fmt.Sprintf("user-%d-sub", i), claims: map[string]any{
		"email": fmt.Sprintf("user%d@example.com", i), "email_verified": true, "name": fmt.Sprintf("User %d", i),
	}}
}

// logoutVia signs b out of the site at base, as its sign-out link does.
func logoutVia(t *testing.T, b *browser, base string) (int, string) {
	t.Helper()
	resp, body := b.logout(base, "")
	return resp.StatusCode, body
}

// TestSQLiteSurvivesReload runs the Caddy binary on a SQLite file and
// does what operators do (S17): `caddy reload`, with and without a config
// change, reading and writing the file with the sqlite3 tool in between,
// users signing up after the reloads, then kill -9 and a restart.
// Nothing is lost; the outside writes are visible to Caddy; a session
// made before the reloads works after them, a logout before them still
// holds, and a login state used before them cannot be replayed after
// them, nor after the restart. Twenty reloads under load (a session in use, users signing up)
// fail no request and leave Caddy with no more files, database handles or
// background goroutines than before.
func TestSQLiteSurvivesReload(t *testing.T) {
	tool := sqlite3Tool(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	db := filepath.Join(dir, "users.db")
	port, adminPort := freePort(t), freePort(t)
	p := &caddyProcess{t: t, bin: bin, dir: dir,
		base: fmt.Sprintf("http://localhost:%d", port), adminAddr: fmt.Sprintf("localhost:%d", adminPort)}
	caddyfile := func(generation int) string {
		return reloadCaddyfile(dir, adminPort, port, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort(), generation)
	}
	p.start(caddyfile(0))

	login := func(u *oidcUser) *browser {
		t.Helper()
		b := newBrowser(t)
		idp.QueueUser(u)
		resp, body, visited := b.follow(p.base+"/.jitauth/start/corp", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw ") {
			t.Fatalf("login of %s: %d %q %v", u.sub, resp.StatusCode, body, visited)
		}
		return b
	}
	withCookie := func(c *http.Cookie) int {
		t.Helper()
		r := newBrowser(t).do(http.MethodGet, p.base+"/app", http.Header{"Cookie": {c.Name + "=" + c.Value}})
		r.Body.Close()
		return r.StatusCode
	}
	count := func() int {
		t.Helper()
		n, err := strconv.Atoi(sqlite3(t, tool, db, "SELECT count(*) FROM users;"))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A session that must keep working, one logged out that must stay
	// refused, and a used login state an attacker kept a copy of.
	kept := login(alice()).cookie(p.base, "jitauth_session")
	outB := login(numberedUser(100))
	loggedOut := outB.cookie(p.base, "jitauth_session")
	if code, body := logoutVia(t, outB, p.base); code != http.StatusOK {
		t.Fatalf("logout: %d %s", code, body)
	}
	rb := newBrowser(t)
	idp.QueueUser(numberedUser(101))
	resp, _, _ := rb.follow(p.base+"/.jitauth/start/corp", func(u *url.URL) bool {
		return strings.Contains(u.Path, "/.jitauth/callback/")
	})
	callback, err := resp.Location()
	if err != nil {
		t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
	}
	flow := flowCookieLine(rb, callback)
	if resp, _, _ := rb.follow(callback.String(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	holds := func(when string) {
		t.Helper()
		if code := withCookie(kept); code != http.StatusOK {
			t.Errorf("%s: a live session answers %d", when, code)
		}
		if code := withCookie(loggedOut); code == http.StatusOK {
			t.Errorf("%s: a logged-out session is accepted again", when)
		}
		r := newBrowser(t).do(http.MethodGet, callback.String(), http.Header{"Cookie": {flow}})
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "already used") {
			t.Errorf("%s: a replayed login state answers %d, want 400 \"Sign-in already used\"", when, r.StatusCode)
		}
	}
	holds("before any reload")

	want := 3
	if n := count(); n != want {
		t.Fatalf("%d users before the reloads, want %d", n, want)
	}
	for i := 1; i <= 4; i++ {
		p.reload(caddyfile(i), i%2 == 0) // odd: changed config; even: unchanged, forced
		when := fmt.Sprintf("after reload %d", i)
		// An outside read (a backup, an operator looking), then an
		// outside write that Caddy must see.
		if n := count(); n != want {
			t.Fatalf("%s: the sqlite3 tool sees %d users, want %d", when, n, want)
		}
		sqlite3(t, tool, db, fmt.Sprintf(`INSERT INTO users (id, username, username_norm, status, created_at, updated_at)
			VALUES ('outside-%d', 'outside%d', 'outside%d', 'active', 1, 1);`, i, i, i))
		want++
		if code, body := p.admin(fmt.Sprintf("/jit_auth/users/outside-%d", i)); code != http.StatusOK {
			t.Fatalf("%s: Caddy does not see the user the sqlite3 tool added: %d %s", when, code, body)
		}
		login(numberedUser(i))
		want++
		if n := count(); n != want {
			t.Fatalf("%s: the sqlite3 tool sees %d users after a sign-up, want %d", when, n, want)
		}
		holds(when)
	}
	if _, body := p.admin("/config/apps/jit_auth/user_status_refresh"); strings.TrimSpace(body) != "1000000000" {
		t.Fatalf("the last reload did not apply: user_status_refresh = %s", body)
	}

	// Many reloads under load, sessions in use and users signing up
	// meanwhile, hold no more files, database handles or goroutines.
	for i := 0; i < 3; i++ {
		p.reload(caddyfile(i), i%2 == 0)
	}
	follow, refresh := "caddymodule.(*sharedState).followRevocations", "caddymodule.(*sharedState).refreshUserStatus"
	fdsBefore, dbBefore := p.fds(db)
	gBefore, _ := p.goroutines()
	stop := make(chan struct{})
	type loadResult struct {
		requests int
		signedUp []string // as the upstream saw them
		failures []string
		// resets are connections Caddy's reload closed before they
		// carried a request (its graceful switch closes idle ones).
		resets int
	}
	results := make(chan loadResult, 2)
	noKeepAlive := func(b *browser) *browser {
		b.client.Transport = &http.Transport{DisableKeepAlives: true}
		return b
	}
	go func() { // a session in use
		var r loadResult
		b := noKeepAlive(newBrowser(t))
		for {
			select {
			case <-stop:
				results <- r
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, p.base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", kept.Name+"="+kept.Value)
			resp, err := b.client.Do(req)
			r.requests++
			if err != nil {
				r.resets++
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				r.failures = append(r.failures, fmt.Sprintf("live session: %d", resp.StatusCode))
			}
		}
	}()
	go func() { // sign-ups
		var r loadResult
		for i := 1000; ; i++ {
			select {
			case <-stop:
				results <- r
				return
			default:
			}
			idp.QueueUser(numberedUser(i))
			b := noKeepAlive(newBrowser(t))
			cur := p.base + "/.jitauth/start/corp"
			for hop := 0; hop < 10; hop++ {
				req, _ := http.NewRequest(http.MethodGet, cur, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := b.client.Do(req)
				if err != nil {
					r.resets++
					break
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if loc, err := resp.Location(); err == nil {
					cur = loc.String()
					continue
				}
				if resp.StatusCode != http.StatusOK {
					r.failures = append(r.failures, fmt.Sprintf("sign-up %d: %d at %s", i, resp.StatusCode, cur))
				} else if name, ok := strings.CutPrefix(string(body), "upstream saw "); ok && name != "" {
					// The user the upstream saw: after a cut sign-up,
					// the provider may answer with the one queued before.
					r.signedUp = append(r.signedUp, name)
				} else {
					r.failures = append(r.failures, fmt.Sprintf("sign-up %d ended at %q", i, body))
				}
				break
			}
		}
	}()
	for i := 0; i < 20; i++ {
		p.reload(caddyfile(i), i%2 == 0)
	}
	close(stop)
	var (
		failures []string
		signedUp []string
	)
	for range 2 {
		r := <-results
		signedUp = append(signedUp, r.signedUp...)
		failures = append(failures, r.failures...)
		t.Logf("during 20 reloads: %d requests, %d sign-ups, %d connections reset by the reload", r.requests, len(r.signedUp), r.resets)
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed during reloads, first: %s", len(failures), failures[0])
	}
	if len(signedUp) == 0 {
		t.Error("no sign-up completed during the reloads")
	}
	// The old generations finish their last connections in the
	// background; a leak never settles. Idle connections come and go by
	// a few.
	var (
		fdsAfter, dbAfter, gAfter int
		per                       map[string]int
	)
	for deadline := time.Now().Add(30 * time.Second); ; {
		fdsAfter, dbAfter = p.fds(db)
		gAfter, per = p.goroutines(follow, refresh)
		if fdsAfter <= fdsBefore+8 && dbAfter <= 6 && gAfter <= gBefore+16 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("resources grow with reloads: fds %d → %d, database fds %d → %d, goroutines %d → %d",
				fdsBefore, fdsAfter, dbBefore, dbAfter, gBefore, gAfter)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after 20 more reloads: fds %d → %d (database %d → %d), goroutines %d → %d",
		fdsBefore, fdsAfter, dbBefore, dbAfter, gBefore, gAfter)
	if per[follow] != 1 || per[refresh] != 1 {
		t.Errorf("background goroutines after %d reloads: %d following revocations, %d refreshing user status; want one each",
			p.reloaded, per[follow], per[refresh])
	}

	// A crash, and a restart: everything Caddy acknowledged is there.
	p.kill9()
	p.start(caddyfile(0))
	// A sign-up whose last redirect a reload cut may have been stored
	// without being counted; every counted one must be there.
	if n := count(); n < want+len(signedUp) {
		t.Fatalf("after kill -9 and a restart: %d users, want at least %d", n, want+len(signedUp))
	}
	for _, name := range signedUp {
		if code, body := p.admin("/jit_auth/users/" + url.PathEscape(name)); code != http.StatusOK {
			t.Errorf("after kill -9 and a restart, user %s who signed up during the reloads: %d %s", name, code, body)
		}
	}
	for i := 1; i <= 4; i++ {
		for _, ref := range []string{fmt.Sprintf("outside-%d", i), fmt.Sprintf("user%d@example.com", i)} {
			if code, body := p.admin("/jit_auth/users/" + url.PathEscape(ref)); code != http.StatusOK {
				t.Errorf("after kill -9 and a restart, user %s: %d %s", ref, code, body)
			}
		}
	}
	// The used login state too: the replay set in memory is gone, the
	// record in the store is not.
	holds("after kill -9 and a restart")
}

// reloadInProcess loads caddyfile into the in-process Caddy that the
// test started with runCaddyfile, as `caddy reload --force` would.
func reloadInProcess(t *testing.T, caddyfile string) {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	// Load returns once the old servers' shutdowns were started, which
	// Caddy says is not quite once they stopped accepting: a connection
	// the old server takes meanwhile is closed unanswered (a "connection
	// reset" in a test's first request). A moment lets them stop.
	time.Sleep(50 * time.Millisecond)
}

// A reload keeps sessions the new cookie keys still open, but one that
// removes a key pair (an operator dropping a compromised pair) ends the
// sessions sealed with it at once, although they were cached in memory.
func TestReloadWithoutAKeyPairEndsItsSessions(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	newHash := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	newBlock := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	caddyfile := func(keys ...string) string {
		var lines []string
		for i := 0; i < len(keys); i += 2 {
			lines = append(lines, "cookie_keys "+keys[i]+" "+keys[i+1])
		}
		return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		store sqlite %s
		%s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), strings.Join(lines, "\n\t\t"),
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort())
	}
	runCaddyfile(t, caddyfile(testHashKey, testBlockKey))

	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	cookie := b.cookie(base, "jitauth_session")
	with := func() int {
		t.Helper()
		// A connection the old configuration's server accepted as it
		// shut down is closed unanswered (bare Caddy's reload does the
		// same; bench/ measures it): that is not this test's subject,
		// so a request cut that way is sent again.
		var err error
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
			var r *http.Response
			r, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err == nil {
				r.Body.Close()
				return r.StatusCode
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s/app: %v", base, err)
		return 0
	}
	if code := with(); code != http.StatusOK {
		t.Fatalf("session: %d", code)
	}

	// Rotation: a new pair in front, the old one still opens.
	reloadInProcess(t, caddyfile(newHash, newBlock, testHashKey, testBlockKey))
	if code := with(); code != http.StatusOK {
		t.Fatalf("after a reload that keeps the session's key pair: %d", code)
	}
	// The old pair removed.
	reloadInProcess(t, caddyfile(newHash, newBlock))
	if code := with(); code == http.StatusOK {
		t.Fatal("after a reload that removed the session's key pair, the session is still accepted")
	}
}

// `caddy validate` and a configuration that fails to load leave no
// database file (or directory) behind, for the Caddy binary and for an
// in-process load; a configuration that starts creates the file.
func TestValidateAndFailedLoadCreateNoDatabase(t *testing.T) {
	dir := t.TempDir()
	bin := buildCaddy(t)
	db := filepath.Join(dir, "fresh", "users.db")
	port := freePort(t)
	good := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/storage
	jit_auth {
		store sqlite %[2]s
		cookie_keys %[3]s %[4]s
		connection corp {
			oidc https://idp.example corp-id corp-secret
		}
	}
}
http://localhost:%[5]d {
	jit_auth
	respond ok
}
`, dir, db, testHashKey, testBlockKey, port)
	// The app and its store provision, then the site's handler fails.
	failing := strings.Replace(good, "\tjit_auth\n\trespond", "\tjit_auth {\n\t\tconnections corp nosuch\n\t}\n\trespond", 1)
	absent := func(when string) {
		t.Helper()
		if _, err := os.Stat(filepath.Dir(db)); !os.IsNotExist(err) {
			t.Fatalf("%s: %s exists (%v)", when, filepath.Dir(db), err)
		}
	}
	caddyCmd := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for name, cf := range map[string]string{"good": good, "failing": failing} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(cf), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if out, err := caddyCmd("validate", "--config", filepath.Join(dir, "good"), "--adapter", "caddyfile"); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	absent("after caddy validate")
	if out, err := caddyCmd("validate", "--config", filepath.Join(dir, "failing"), "--adapter", "caddyfile"); err == nil || !strings.Contains(out, "nosuch") {
		t.Fatalf("caddy validate of a broken config: %v\n%s", err, out)
	}
	absent("after caddy validate of a broken config")
	if out, err := caddyCmd("run", "--config", filepath.Join(dir, "failing"), "--adapter", "caddyfile"); err == nil || !strings.Contains(out, "nosuch") {
		t.Fatalf("caddy run of a broken config: %v\n%s", err, out)
	}
	absent("after caddy run of a broken config")
	if err := validate(t, good); err != nil {
		t.Fatalf("in-process validation: %v", err)
	}
	absent("after an in-process validation")
	if err := validate(t, failing); err == nil {
		t.Fatal("in-process validation of a broken config passed")
	}
	absent("after an in-process validation of a broken config")

	runCaddyfile(t, good)
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("a started configuration did not create its database: %v", err)
	}
}

// Two spellings of one database file (here through a symbolic link) are
// one file: a reload from one to the other keeps the one handle, so an
// outside read after it leaves Caddy's later writes in the file.
func TestSQLiteOneHandleHoweverThePathIsSpelt(t *testing.T) {
	tool := sqlite3Tool(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	idp := startMockOIDC(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfg := idp.Config()
	caddyfile := func(db string) string {
		return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		store sqlite %s
		cookie_keys %s %s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), db, testHashKey, testBlockKey, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, port, up.hostPort())
	}
	login := func(i int) {
		t.Helper()
		idp.QueueUser(numberedUser(i))
		if resp, body, _ := newBrowser(t).follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("login %d: %d %s", i, resp.StatusCode, body)
		}
	}
	db := filepath.Join(dir, "real", "users.db")
	runCaddyfile(t, caddyfile(db))
	login(1)
	reloadInProcess(t, caddyfile(filepath.Join(dir, "link", ".", "users.db")))
	if n := sqlite3(t, tool, db, "SELECT count(*) FROM users;"); n != "1" {
		t.Fatalf("after the reload the sqlite3 tool sees %s users, want 1", n)
	}
	login(2)
	if n := sqlite3(t, tool, db, "SELECT count(*) FROM users;"); n != "2" {
		t.Fatalf("a user signed up after the reload and an outside read is not in the file: %s users, want 2", n)
	}
}

// Validating the suite's representative configurations (the default
// store in Caddy's data directory, no global block, Caddyfile.example)
// writes nothing into Caddy's data directory and creates no database.
func TestValidateLeavesTheDataDirectoryAlone(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "xdg-data")
	t.Setenv("XDG_DATA_HOME", data)
	for k, v := range map[string]string{"OIDC_ID": "id", "OIDC_SECRET": "secret", "GITHUB_KEY": "k", "GITHUB_SECRET": "s", "JIT_DB": dir + "/example/users.db"} {
		t.Setenv(k, v)
	}
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	storage := "\tstorage file_system " + dir + "/storage\n"
	site := "http://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n"
	for name, c := range map[string]struct {
		caddyfile string
		ok        bool
	}{
		"default store": {"{\n" + storage + "\tjit_auth {\n\t\tcookie_keys " + testHashKey + " " + testBlockKey +
			"\n\t\tconnection corp {\n\t\t\toidc https://idp.example a b\n\t\t}\n\t}\n}\n" + site, true},
		"no global block":   {"{\n" + storage + "}\n" + site, false},
		"Caddyfile.example": {strings.Replace(string(example), "\n{\n", "\n{\n"+storage, 1), true},
	} {
		if err := validate(t, c.caddyfile); (err == nil) != c.ok {
			t.Fatalf("%s: validation error %v", name, err)
		}
		if files := testhome.FilesUnder(filepath.Join(data, "caddy")); len(files) > 0 {
			t.Fatalf("validating %s wrote into Caddy's data directory: %v", name, files)
		}
		if _, err := os.Stat(dir + "/example"); !os.IsNotExist(err) {
			t.Fatalf("validating %s created the database directory (%v)", name, err)
		}
	}
}
