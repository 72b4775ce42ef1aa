package caddymodule_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// writeSecretFile writes a secret the way an operator or a container
// runtime does, with a trailing newline, readable by the owner only.
func writeSecretFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// devidpLogin logs bob in through connection conn of the site at base,
// filling in the provider's login form, and returns the final response.
func devidpLogin(t *testing.T, b *browser, idp *devidp.Server, base, conn string) (*http.Response, string) {
	t.Helper()
	cb := devidpCallback(t, b, idp, base, conn)
	final, body, _ := b.follow(cb.String(), nil)
	return final, body
}

// devidpCallback starts a login through conn, signs bob in at the
// provider and returns the callback URL the provider sent the browser
// to, not yet visited.
func devidpCallback(t *testing.T, b *browser, idp *devidp.Server, base, conn string) *url.URL {
	t.Helper()
	resp, body, visited := b.follow(base+"/.jitauth/start/"+conn, func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), idp.Issuer()+"/login")
	})
	loginPage, err := resp.Location()
	if err != nil {
		t.Fatalf("%s: login did not reach the provider's form: %d %s (visited %v)", conn, resp.StatusCode, body, visited)
	}
	back, err := devidp.Login(b.client, loginPage.String(), "bob", "builder")
	if err != nil {
		t.Fatalf("%s: provider login: %v (visited %v)", conn, err, visited)
	}
	back.Body.Close()
	cb, err := back.Location()
	if err != nil || !strings.HasPrefix(cb.String(), base+"/.jitauth/callback/"+conn+"?") {
		t.Fatalf("%s: provider did not redirect to our callback: %v %v", conn, cb, err)
	}
	return cb
}

// getConfig fetches Caddy's running config from its admin API.
func getConfig(t *testing.T, adminPort int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/config/", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /config/: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// Point 11 of issue 10: client secrets, client IDs and cookie keys given
// as {env.*} and {file.*} placeholders are resolved when Caddy loads the
// config, so logins through a provider that checks the client secret
// succeed, the cookies are sealed with the keys the placeholders name,
// and neither the adapted JSON, nor GET /config/, nor the log holds a
// secret.
func TestSecretsFromEnvAndFilePlaceholders(t *testing.T) {
	dir := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	const clientSecret = "devidp-client-secret-7f3a9c"
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{{ID: "app", Secret: clientSecret, RedirectURIs: []string{base + "/.jitauth/callback/viaenv", base + "/.jitauth/callback/viafile"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	up := newUpstream(t)

	t.Setenv("JITAUTH_TEST_OIDC_SECRET", clientSecret)
	t.Setenv("JITAUTH_TEST_HASH_KEY", testHashKey)
	idFile := writeSecretFile(t, filepath.Join(dir, "client_id"), "app\n")
	secretFile := writeSecretFile(t, filepath.Join(dir, "client_secret"), clientSecret+"\n")
	blockFile := writeSecretFile(t, filepath.Join(dir, "block_key"), testBlockKey+"\r\n")
	logFile := filepath.Join(dir, "caddy.log")

	caddyfile := fmt.Sprintf(`{
	admin localhost:%[1]d
	persist_config off
	log {
		output file %[2]s
		level INFO
	}
	storage file_system %[3]s/storage
	jit_auth {
		store sqlite %[3]s/users.db
		cookie_keys {env.JITAUTH_TEST_HASH_KEY} {file.%[4]s}
		connection viaenv {
			oidc %[5]s app {env.JITAUTH_TEST_OIDC_SECRET}
			jit
		}
		connection viafile {
			oidc %[5]s {file.%[6]s} {file.%[7]s}
		}
	}
}
http://localhost:%[8]d {
	jit_auth
	reverse_proxy %[9]s
}
`, adminPort, logFile, dir, blockFile, idp.Issuer(), idFile, secretFile, port, up.hostPort())

	// What `caddy adapt` prints keeps the placeholders.
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	secrets := map[string]string{"client secret": clientSecret, "hash key": testHashKey, "block key": testBlockKey}
	for what, s := range secrets {
		if strings.Contains(string(adapted), s) {
			t.Errorf("the adapted config holds the %s", what)
		}
	}
	if !strings.Contains(string(adapted), `"client_secret":"{env.JITAUTH_TEST_OIDC_SECRET}"`) {
		t.Errorf("the adapted config lost the placeholder: %s", adapted)
	}
	runCaddyJSON(t, adapted)

	for _, conn := range []string{"viaenv", "viafile"} {
		b := newBrowser(t)
		resp, body := devidpLogin(t, b, idp, base, conn)
		if resp.StatusCode != http.StatusOK || up.lastHeaders(t).Get("Remote-User") == "" {
			t.Fatalf("login through %s: %d %s", conn, resp.StatusCode, body)
		}
		// The session is sealed with the keys the placeholders name.
		sc := securecookie.New(mustDecodeB64(t, testHashKey), mustDecodeB64(t, testBlockKey))
		sc.SetSerializer(securecookie.JSONEncoder{})
		var sess map[string]any
		c := b.cookie(base, "jitauth_session")
		if c == nil {
			t.Fatalf("%s: no session cookie", conn)
		}
		if err := sc.Decode("jitauth_session", c.Value, &sess); err != nil {
			t.Fatalf("%s: the session cookie is not sealed with the configured keys: %v", conn, err)
		}
	}

	running := getConfig(t, adminPort)
	for what, s := range secrets {
		if strings.Contains(running, s) {
			t.Errorf("GET /config/ shows the %s", what)
		}
	}
	for _, ph := range []string{"{env.JITAUTH_TEST_OIDC_SECRET}", "{file." + secretFile + "}", "{env.JITAUTH_TEST_HASH_KEY}"} {
		if !strings.Contains(running, ph) {
			t.Errorf("GET /config/ does not show the placeholder %s: %s", ph, running)
		}
	}
	logs := mustReadFile(t, logFile)
	if !strings.Contains(logs, "user logged in") {
		t.Fatalf("no audit event in the log:\n%s", logs)
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

func mustDecodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A placeholder that does not resolve stops the config from loading with
// a message naming the field and the variable or file; it is never sent
// to a provider as literal text. The message never shows a secret.
func TestUnresolvedSecretPlaceholdersFailToLoad(t *testing.T) {
	dir := t.TempDir()
	emptyFile := writeSecretFile(t, filepath.Join(dir, "empty"), "\n")
	missing := filepath.Join(dir, "no-such-secret")
	head := func(keys, conn string) string {
		return fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s/storage\n\tjit_auth {\n\t\tstore sqlite %s/users.db\n\t\tcookie_keys %s\n\t\tconnection corp {\n\t\t\t%s\n\t\t}\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n",
			dir, dir, keys, conn)
	}
	keys := testHashKey + " " + testBlockKey
	oidc := "oidc https://idp.example.com corp-id "
	cases := []struct {
		name, caddyfile string
		want            []string
		never           []string
	}{
		{"unset env client secret", head(keys, oidc+"{env.JITAUTH_TEST_UNSET_SECRET}"),
			[]string{`connection "corp": client_secret: environment variable JITAUTH_TEST_UNSET_SECRET is not set`}, nil},
		{"unset env client id", head(keys, "oidc https://idp.example.com {env.JITAUTH_TEST_UNSET_ID} s3cr3t-literal"),
			[]string{`connection "corp": client_id: environment variable JITAUTH_TEST_UNSET_ID is not set`}, []string{"s3cr3t-literal"}},
		{"missing secret file", head(keys, oidc+"{file."+missing+"}"),
			[]string{`client_secret: {file.` + missing + `}: open ` + missing + `: no such file or directory`}, nil},
		{"empty secret file", head(keys, oidc+"{file."+emptyFile+"}"),
			[]string{`client_secret: file ` + emptyFile + ` is empty`}, nil},
		{"part of a secret unset", head(keys, oidc+"prefix-{env.JITAUTH_TEST_UNSET_PART}"),
			[]string{`environment variable JITAUTH_TEST_UNSET_PART is not set`}, []string{"prefix-"}},
		{"provider secret", head(keys, "provider github gh-key {env.JITAUTH_TEST_UNSET_GH_SECRET}"),
			[]string{`connection "corp": secret: environment variable JITAUTH_TEST_UNSET_GH_SECRET is not set`}, nil},
		{"provider key", head(keys, "provider github {env.JITAUTH_TEST_UNSET_GH_KEY} gh-s3cr3t"),
			[]string{`connection "corp": key: environment variable JITAUTH_TEST_UNSET_GH_KEY is not set`}, []string{"gh-s3cr3t"}},
		{"misspelt placeholder", head(keys, oidc+"{evn.OIDC_SECRET}"),
			[]string{`client_secret: unknown placeholder {evn.OIDC_SECRET}; use {env.NAME}`}, nil},
		{"literal secret with braces", head(keys, oidc+"abc{k9-q}xyz"),
			[]string{`client_secret: holds an unknown placeholder`, `\{`}, []string{"abc", "k9-q", "xyz"}},
		{"unset hash key", head("{env.JITAUTH_TEST_UNSET_HASH} "+testBlockKey, oidc+"s"),
			[]string{`cookie key pair 1: hash_key: environment variable JITAUTH_TEST_UNSET_HASH is not set`}, []string{testBlockKey}},
		{"missing block key file", head(testHashKey+" {file."+missing+"}", oidc+"s"),
			[]string{`cookie key pair 1: block_key: {file.` + missing + `}`}, []string{testHashKey}},
		{"unset SQLite path", strings.Replace(head(keys, oidc+"s"), "store sqlite "+dir+"/users.db", "store sqlite {env.JITAUTH_TEST_UNSET_DB}", 1),
			[]string{`path: environment variable JITAUTH_TEST_UNSET_DB is not set`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(t, tc.caddyfile)
			if err == nil {
				t.Fatalf("config with an unresolved placeholder loaded:\n%s", tc.caddyfile)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q", w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(msg, n) {
					t.Errorf("error shows %q", n)
				}
			}
		})
	}
}

// The PostgreSQL URL is resolved the same way: from a file, with the
// password only in the file (never in GET /config/); and a password
// placeholder that does not resolve stops Caddy instead of connecting
// without it.
func TestPostgresURLFromPlaceholders(t *testing.T) {
	schema, connString := pgSchema(t)
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		t.Skipf("JITAUTH_TEST_POSTGRES has no user name; this test needs one")
	}
	dir := t.TempDir()
	urlFile := writeSecretFile(t, filepath.Join(dir, "database_url"), connString+"\n")

	t.Run("unset password variable", func(t *testing.T) {
		// Trust authentication would let an empty password in: the
		// placeholder must not silently expand to nothing.
		withPW := fmt.Sprintf("%s://%s:{env.JITAUTH_TEST_UNSET_PGPASS}@%s%s?%s", u.Scheme, u.User.Username(), u.Host, u.Path, u.RawQuery)
		err := loadErr(t, pgCaddyfile(dir, fmt.Sprintf("store postgres %q", withPW), freePort(t), "https://idp.example.com", "id", "secret", "127.0.0.1:9"))
		if err == nil || !strings.Contains(err.Error(), "PostgreSQL user store: url: environment variable JITAUTH_TEST_UNSET_PGPASS is not set") {
			t.Fatalf("err = %v, want the unset variable named", err)
		}
	})
	t.Run("unset DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "")
		err := loadErr(t, pgCaddyfile(dir, "store postgres {env.DATABASE_URL}", freePort(t), "https://idp.example.com", "id", "secret", "127.0.0.1:9"))
		if err == nil || !strings.Contains(err.Error(), "url: environment variable DATABASE_URL is not set") {
			t.Fatalf("err = %v, want DATABASE_URL named", err)
		}
	})

	idp := startMockOIDC(t)
	up := newUpstream(t)
	port, adminPort := freePort(t), freePort(t)
	cfg := idp.Config()
	caddyfile := strings.Replace(pgCaddyfile(dir, "store postgres {file."+urlFile+"}", port, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()),
		"admin off", fmt.Sprintf("admin localhost:%d", adminPort), 1)
	runCaddyfile(t, caddyfile)
	idp.QueueUser(alice())
	resp, body, _ := newBrowser(t).follow(fmt.Sprintf("http://localhost:%d/.jitauth/start/corp", port), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw alice@example.com") {
		t.Fatalf("login with the store URL from a file: %d %s", resp.StatusCode, body)
	}
	if users := allUsers(t, openPGStore(t, connString)); len(users) != 1 {
		t.Fatalf("users in the schema %s: %+v", schema, users)
	}
	if running := getConfig(t, adminPort); strings.Contains(running, schema) || !strings.Contains(running, "{file."+urlFile+"}") {
		t.Errorf("GET /config/ shows the URL or lost its placeholder: %s", running)
	}
}

// loadErr loads a Caddyfile into the in-process Caddy and returns the
// error; a config that loads is stopped again.
func loadErr(t *testing.T, caddyfile string) error {
	t.Helper()
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	caddyMu.Lock()
	defer caddyMu.Unlock()
	err = caddy.Load(adapted, true)
	if err == nil {
		_ = caddy.Stop()
	}
	return err
}

// Caddyfile.example and the README show secrets only in the runtime
// placeholder form: adapting the example keeps every secret out of the
// JSON, and an unset variable it names stops the config from loading.
func TestExamplesKeepSecretsOutOfTheConfig(t *testing.T) {
	for _, file := range []string{"../Caddyfile.example", "../README.md"} {
		for i, line := range strings.Split(mustReadFile(t, file), "\n") {
			f := strings.Fields(strings.TrimLeft(line, "#\t "))
			if len(f) > 1 && (f[0] == "oidc" || f[0] == "provider" || f[0] == "cookie_keys" || (f[0] == "store" && f[1] == "postgres")) && strings.Contains(line, "{$") {
				t.Errorf("%s:%d: a secret as {$…}, which the adapter writes into the config: %s", file, i+1, line)
			}
		}
	}

	dir := t.TempDir()
	values := map[string]string{"OIDC_ID": "example-client-id-1c9", "OIDC_SECRET": "example-oidc-secret-7d2", "GITHUB_KEY": "example-gh-key-3e4", "GITHUB_SECRET": "example-gh-secret-9a8"}
	for k, v := range values {
		t.Setenv(k, v)
	}
	t.Setenv("JIT_DB", dir+"/users.db")
	t.Setenv("XDG_DATA_HOME", dir)
	example := strings.Replace(mustReadFile(t, "../Caddyfile.example"), "\n{\n", "\n{\n\tstorage file_system "+dir+"/storage\n", 1)
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(example), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if strings.Contains(string(adapted), v) {
			t.Errorf("the adapted Caddyfile.example holds $%s", k)
		}
		if !strings.Contains(string(adapted), "{env."+k+"}") {
			t.Errorf("the adapted Caddyfile.example lost {env.%s}", k)
		}
	}
	t.Setenv("OIDC_SECRET", "")
	if err := validate(t, example); err == nil || !strings.Contains(err.Error(), "environment variable OIDC_SECRET is not set") {
		t.Fatalf("Caddyfile.example without OIDC_SECRET: err = %v", err)
	}
}
