package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// readmeBlock is one ```caddyfile block of the README.
type readmeBlock struct {
	line int    // where the block starts in README.md
	text string // the block, its common indentation removed
}

// readmeCaddyfiles returns the README's Caddyfile blocks in order.
func readmeCaddyfiles(t *testing.T) []readmeBlock {
	t.Helper()
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		indent string
	)
	for i, line := range strings.Split(mustReadFile(t, "../README.md"), "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case cur == nil && trimmed == "```caddyfile":
			indent = line[:len(line)-len(trimmed)]
			cur = &readmeBlock{line: i + 1}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(line, indent) + "\n"
		}
	}
	if len(blocks) == 0 {
		t.Fatal("README.md shows no ```caddyfile block")
	}
	return blocks
}

// readmeElisions fill in what the README leaves out with "…" where the
// surrounding text has already shown it; every other "…" is an error
// (teach this table the new one).
var readmeElisions = []struct{ elided, filled string }{
	{"connection corp { … }", "connection corp {\n\t\t\toidc https://idp.example.com {env.OIDC_ID} {env.OIDC_SECRET}\n\t\t\tjit\n\t\t}"},
	{"connection github { … }", "connection github {\n\t\t\tgoth github {env.GITHUB_KEY} {env.GITHUB_SECRET}\n\t\t}"},
	{"oidc …", "oidc https://idp.example.com {env.OIDC_ID} {env.OIDC_SECRET}"},
}

// readmeNeedsPlugin names the blocks that configure a module this
// repository does not build (a third-party Caddy plugin the README
// names), by a word only they contain.
var readmeNeedsPlugin = map[string]string{
	"exec ": "github.com/mholt/caddy-events-exec (the events handler the README names)",
}

// readmeTemplate matches the syntax summaries (`oidc <issuer> …`), which
// describe a directive rather than configure one.
var readmeTemplate = regexp.MustCompile(`<[a-z_]+(…)?>`)

var (
	// caddyfileComment is a comment to the end of the line.
	caddyfileComment = regexp.MustCompile(`#[^\n]*`)
	// siteBlockStart is a line that opens a site block.
	siteBlockStart = regexp.MustCompile(`(?m)^\S+ \{$`)
)

// The README's configurations load as a user would copy them: whole
// configurations as they stand, and fragments (a connection, a site, a
// log block) inside the smallest configuration around them, each
// adapted by the Caddyfile adapter and provisioned with the module.
// Only where they point (data directory, secrets file) is changed.
func TestREADMECaddyfilesLoad(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "github_secret"), []byte("gh-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"OIDC_ID": "id", "OIDC_SECRET": "secret", "GITHUB_KEY": "k", "GITHUB_SECRET": "s"} {
		t.Setenv(k, v)
	}

	loaded := 0
	for _, b := range readmeCaddyfiles(t) {
		where := fmt.Sprintf("README.md:%d", b.line)
		if readmeTemplate.MatchString(b.text) {
			t.Logf("%s: a syntax summary, not a configuration", where)
			continue
		}
		if plugin := needsPlugin(b.text); plugin != "" {
			t.Logf("%s: needs %s, which this build does not include", where, plugin)
			continue
		}
		text := b.text
		for _, e := range readmeElisions {
			text = strings.ReplaceAll(text, e.elided, e.filled)
		}
		if strings.Contains(caddyfileComment.ReplaceAllString(text, ""), "…") {
			t.Errorf("%s: elides something this test cannot fill in; add it to readmeElisions:\n%s", where, b.text)
			continue
		}
		text = strings.ReplaceAll(text, "/var/lib/caddy/", dir+"/")
		text = strings.ReplaceAll(text, "/run/secrets/", secrets+"/")

		cfg := readmeConfig(dir, text)
		adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Errorf("%s does not adapt: %v\nas tried:\n%s", where, err, cfg)
			continue
		}
		var c caddy.Config
		if err := json.Unmarshal(adapted, &c); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&c); err != nil {
			t.Errorf("%s does not load: %v\nas tried:\n%s", where, err, cfg)
			continue
		}
		loaded++
	}
	if loaded < 5 {
		t.Errorf("only %d of the README's Caddyfile blocks were loaded; the README shows more than that", loaded)
	}
}

func needsPlugin(text string) string {
	for word, plugin := range readmeNeedsPlugin {
		if strings.Contains(text, word) {
			return plugin
		}
	}
	return ""
}

// readmeConfig puts a README block inside the smallest configuration
// around it, with the test's global options (no admin endpoint, storage
// in dir).
func readmeConfig(dir, block string) string {
	testOptions := fmt.Sprintf("\tadmin off\n\tpersist_config off\n\tstorage file_system %s\n\tlog {\n\t\tlevel ERROR\n\t}\n", filepath.Join(dir, "storage"))
	global := func(connections string) string {
		return fmt.Sprintf("{\n%s\tjit_auth {\n\t\tstore sqlite %s\n%s\n\t}\n}\n", testOptions, filepath.Join(dir, "fragment.db"), connections)
	}
	corp := "connection corp {\n\toidc https://idp.example.com {env.OIDC_ID} {env.OIDC_SECRET}\n\tjit\n}"
	site := "http://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n"
	first := strings.Fields(block)[0]
	switch first {
	case "{": // a whole configuration with its global options
		out := strings.Replace(block, "{\n", "{\n"+testOptions, 1)
		// Global options alone get a site to protect.
		if _, sites, _ := strings.Cut(out, "\n}\n"); !siteBlockStart.MatchString(sites) {
			out += site
		}
		return out
	case "connection": // a connection of the global jit_auth block
		return global(block) + site
	case "log": // a site's directive
		return global(corp) + "http://localhost:1 {\n" + block + "\tjit_auth\n\trespond ok\n}\n"
	default: // a site
		return global(corp) + block
	}
}

// formRun is what a user sees of the README's first configuration.
type formRun struct {
	LoginRedirect string              // where a page without a session goes
	StartLinks    []string            // the connections the login page offers
	GitHubAuthURL string              // where the github connection sends the browser, without state
	CorpAuthURL   string              // where the corp connection sends it, without state, nonce and PKCE challenge
	CorpHeaders   map[string][]string // the identity headers bob's request carries upstream
	Users         []string            // the users the store holds afterwards
}

// The README's first configuration behaves the same in every form a
// user may have it in: as the README writes it today (connector
// blocks), as the Caddyfile wrote it before connectors were modules
// (`scopes` on the connection, `provider` for goth), and as the JSON of
// that time ("oidc", "provider" and "scopes" on the connection). Each
// form runs in a real Caddy against a real OpenID provider: a page
// without a session, the login page, the GitHub redirect, a login with
// JIT and the headers the upstream gets must all be the same.
func TestREADMEQuickStartBehavesAlikeInEveryForm(t *testing.T) {
	readme := readmeCaddyfiles(t)[0].text
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder",
			Email: "bob@example.com", EmailVerified: true, Groups: []string{"staff"}}},
		[]devidp.Client{{ID: "corp-app", Secret: "corp-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	up := newUpstream(t)
	t.Setenv("OIDC_ID", "corp-app")
	t.Setenv("OIDC_SECRET", "corp-secret")
	t.Setenv("GITHUB_KEY", "gh-key")

	// The README's block, pointed at this machine.
	local := func(dir string) string {
		secrets := filepath.Join(dir, "secrets")
		if err := os.MkdirAll(secrets, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secrets, "github_secret"), []byte("gh-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := mustReplace(t, readme, "https://idp.example.com", idp.Issuer())
		c = mustReplace(t, c, "/var/lib/caddy/", dir+"/")
		c = mustReplace(t, c, "/run/secrets/", secrets+"/")
		c = mustReplace(t, c, "wiki.example.com", base)
		c = mustReplace(t, c, "legacy-wiki:8080", up.hostPort())
		return strings.Replace(c, "{\n", fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tstorage file_system %s\n\tlog {\n\t\tlevel ERROR\n\t}\n", filepath.Join(dir, "storage")), 1)
	}
	// The same, as the Caddyfile wrote it before connectors were modules.
	legacyCaddyfile := func(c string) string {
		c = regexp.MustCompile(`(oidc \S+ \S+ \S+) \{\n\s*(scopes [^\n]*)\n\s*\}`).ReplaceAllString(c, "$1\n\t\t\t$2")
		if strings.Contains(c, "oidc") && strings.Contains(c, "{\n\t\t\t\tscopes") {
			t.Fatalf("the README's oidc block did not turn into its legacy form:\n%s", c)
		}
		return mustReplace(t, c, "goth github", "provider github")
	}

	forms := []struct {
		name string
		json func(dir string) []byte
	}{
		{"the README's Caddyfile", func(dir string) []byte { return adaptCaddyfile(t, local(dir)) }},
		{"the legacy Caddyfile", func(dir string) []byte { return adaptCaddyfile(t, legacyCaddyfile(local(dir))) }},
		{"the legacy JSON", func(dir string) []byte { return legacyJSON(t, adaptCaddyfile(t, local(dir))) }},
	}
	var runs []formRun
	for _, f := range forms {
		dir := t.TempDir()
		cfg := f.json(dir)
		if f.name == "the legacy JSON" && !strings.Contains(string(cfg), `"provider":{`) {
			t.Fatalf("the legacy JSON has no provider object: %s", cfg)
		}
		runs = append(runs, runQuickStart(t, f.name, cfg, base, idp.Issuer(), up, filepath.Join(dir, "jit_auth.db")))
	}

	want := runs[0]
	t.Logf("%s: %+v", forms[0].name, want)
	if want.CorpHeaders["Remote-Email"] == nil || want.CorpHeaders["Remote-Email"][0] != "bob@example.com" ||
		!strings.Contains(strings.Join(want.CorpHeaders["Remote-Groups"], ","), "staff") || len(want.StartLinks) != 2 ||
		!strings.HasPrefix(want.GitHubAuthURL, "https://github.com/login/oauth/authorize?") ||
		!strings.Contains(want.CorpAuthURL, "scope=openid+email+profile+groups") || len(want.Users) != 1 {
		t.Fatalf("%s does not behave as the README says: %+v", forms[0].name, want)
	}
	for i, got := range runs[1:] {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s behaves differently from %s:\n got  %+v\n want %+v", forms[i+1].name, forms[0].name, got, want)
		}
	}
}

// runQuickStart runs one form of the README's first configuration and
// records what a user sees of it.
func runQuickStart(t *testing.T, name string, cfg []byte, base, issuer string, up *upstream, db string) formRun {
	t.Helper()
	var run formRun
	func() {
		caddyMu.Lock()
		defer caddyMu.Unlock()
		if err := caddy.Load(cfg, true); err != nil {
			t.Fatalf("%s does not load: %v\n%s", name, err, cfg)
		}
		defer func() { _ = caddy.Stop() }()

		b := newBrowser(t)
		nav := http.Header{"Accept": {"text/html"}}
		resp := b.do(http.MethodGet, base+"/wiki/Home", nav)
		resp.Body.Close()
		run.LoginRedirect = resp.Header.Get("Location")

		_, page := b.get(base + run.LoginRedirect)
		for _, m := range regexp.MustCompile(`href="(/\.jitauth/start/[^"]+)"`).FindAllStringSubmatch(page, -1) {
			run.StartLinks = append(run.StartLinks, m[1])
		}

		// Where each connection sends the browser, without the values
		// that are new on every login.
		authURL := func(connection string) string {
			resp := b.do(http.MethodGet, base+"/.jitauth/start/"+connection+"?rd=%2Fwiki%2FHome", nav)
			resp.Body.Close()
			u, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				return ""
			}
			q := u.Query()
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				q.Del(k)
			}
			u.RawQuery = q.Encode()
			return u.String()
		}
		run.GitHubAuthURL = authURL("github")
		run.CorpAuthURL = strings.Replace(authURL("corp"), issuer, "<issuer>", 1)

		resp, _, visited := b.follow(base+"/.jitauth/start/corp?rd=%2Fwiki%2FHome", func(u *url.URL) bool {
			return strings.HasPrefix(u.String(), issuer+"/login")
		})
		loginPage, err := resp.Location()
		if err != nil {
			t.Fatalf("%s: never reached the provider's login page: %v", name, visited)
		}
		back, err := devidp.Login(b.client, loginPage.String(), "bob", "builder")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back.Body.Close()
		cb, err := back.Location()
		if err != nil {
			t.Fatalf("%s: the provider did not send the browser back: %v", name, err)
		}
		final, body, hops := b.follow(cb.String(), nil)
		if final.StatusCode != http.StatusOK {
			t.Fatalf("%s: after logging in: %d %s (via %v)", name, final.StatusCode, body, hops)
		}
		run.CorpHeaders = map[string][]string{}
		for k, v := range up.lastHeaders(t) {
			if strings.HasPrefix(k, "Remote-") {
				run.CorpHeaders[k] = v
			}
		}
	}()
	s, err := sqlitestore.Open(db)
	if err != nil {
		t.Fatalf("%s: opening the store it wrote: %v", name, err)
	}
	defer s.Close()
	for _, u := range allUsers(t, s) {
		run.Users = append(run.Users, u.Username+" <"+u.Email+">")
	}
	slices.Sort(run.Users)
	return run
}

// mustReplace replaces old in s, failing when s has no old: a README
// change the test no longer follows must not pass unnoticed.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q is not in:\n%s", old, s)
	}
	return strings.ReplaceAll(s, old, new)
}

// legacyJSON writes the connections of an adapted config the way the
// JSON of before connectors were modules did: "oidc" {issuer,
// client_id, client_secret} or "provider" {name, key, secret, …} on the
// connection, and the scopes beside them as "scopes".
func legacyJSON(t *testing.T, cfg []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	conns := doc["apps"].(map[string]any)["jit_auth"].(map[string]any)["connections"].(map[string]any)
	for name, raw := range conns {
		conn := raw.(map[string]any)
		c := conn["connector"].(map[string]any)
		delete(conn, "connector")
		if s, ok := c["scopes"]; ok {
			conn["scopes"] = s
		}
		switch c["kind"] {
		case "oidc":
			conn["oidc"] = map[string]any{"issuer": c["issuer"], "client_id": c["client_id"], "client_secret": c["client_secret"]}
		case "goth":
			p := map[string]any{"name": c["provider"], "key": c["key"], "secret": c["secret"]}
			for _, k := range []string{"base_url", "auth_url", "token_url", "profile_url", "email_url"} {
				if v, ok := c[k]; ok {
					p[k] = v
				}
			}
			conn["provider"] = p
		default:
			t.Fatalf("connection %s: connector kind %v has no legacy form", name, c["kind"])
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
