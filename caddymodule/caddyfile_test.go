package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validate adapts a Caddyfile and provisions it as `caddy validate`
// does, returning the first error.
func validate(t *testing.T, caddyfile string) error {
	t.Helper()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func TestBadConfigFailsWithAClearMessage(t *testing.T) {
	dir := t.TempDir()
	head := func(body string) string {
		return fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s/storage\n\tjit_auth {\n\t\tstore sqlite %s/users.db\n%s\n\t}\n}\n", dir, dir, body)
	}
	site := "http://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n"
	good := "connection corp {\n oidc https://idp.example corp-id corp-secret\n}"
	cases := []struct{ name, caddyfile, want string }{
		{"no provider", head("connection corp {\n scopes openid\n}") + site, "needs an identity provider"},
		{"two providers", head("connection corp {\n oidc https://idp.example a b\n provider github k s\n}") + site, "has both oidc and provider"},
		{"unknown provider", head("connection corp {\n provider myspace k s\n}") + site, `unknown provider "myspace"`},
		{"oidc args", head("connection corp {\n oidc https://idp.example only-id\n}") + site, "oidc takes three arguments"},
		{"relative issuer", head("connection corp {\n oidc idp.example a b\n}") + site, "must be an absolute http(s) URL"},
		{"bad name", head("connection Corp! {\n oidc https://idp.example a b\n}") + site, "connection name"},
		{"jit mode", head("connection corp {\n oidc https://idp.example a b\n jit {\n mode telepathy\n }\n}") + site, `connection "corp": jit: unknown JIT mode "telepathy": use silent, consent or username`},
		{"jit link", head("connection corp {\n oidc https://idp.example a b\n jit {\n link email\n }\n}") + site, `unknown link "email": use off or verified_email`},
		{"jit sync", head("connection corp {\n oidc https://idp.example a b\n jit {\n sync sometimes\n }\n}") + site, `unknown sync "sometimes"`},
		{"jit map expression", head("connection corp {\n oidc https://idp.example a b\n jit {\n map dept {claims.dept\n }\n}") + site, `jit map dept: expression "{claims.dept": '{' without '}'`},
		{"jit map placeholder", head("connection corp {\n oidc https://idp.example a b\n jit {\n map dept {env.HOME}\n }\n}") + site, `unknown placeholder {env.HOME}`},
		{"jit map attribute", head("connection corp {\n oidc https://idp.example a b\n jit {\n map Dept-X {claims.d}\n }\n}") + site, `attribute name "Dept-X"`},
		{"jit map args", head("connection corp {\n oidc https://idp.example a b\n jit {\n map dept\n }\n}") + site, "map takes an attribute and one expression"},
		{"jit role", head("connection corp {\n oidc https://idp.example a b\n jit {\n role admin from corp-admins\n }\n}") + site, "role takes a local role"},
		{"jit role name", head("connection corp {\n oidc https://idp.example a b\n jit {\n role a,b\n }\n}") + site, `role name "a,b"`},
		{"jit role group with a comma", head("connection corp {\n oidc https://idp.example a b\n jit {\n role admin from_group \"staff,admins\"\n }\n}") + site, `role admin: group name "staff,admins"`},
		{"allow group with a comma", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tallow group \"staff,admins\"\n\t}\n\trespond ok\n}\n", `allow group: group name "staff,admins"`},
		{"jit username pattern", head("connection corp {\n oidc https://idp.example a b\n jit {\n username_pattern (\n }\n}") + site, "username_pattern"},
		{"jit option", head("connection corp {\n oidc https://idp.example a b\n jit {\n colour blue\n }\n}") + site, `unknown jit option "colour"`},
		{"unknown option", head(good+"\n frobnicate on") + site, `unknown jit_auth option "frobnicate"`},
		{"unknown connection option", head("connection corp {\n oidc https://idp.example a b\n colour blue\n}") + site, `unknown connection option "colour"`},
		{"session lifetime", head(good+"\n session_lifetime forever") + site, "session_lifetime"},
		{"short lifetime", head(good+"\n session_lifetime 5s") + site, "too short"},
		{"short revocation poll", head(good+"\n revocation_poll 500ms") + site, "revocation_poll 500ms is too short; use at least 1s"},
		{"revocation poll", head(good+"\n revocation_poll often") + site, "revocation_poll"},
		{"bad keys", head(good+"\n cookie_keys aGVsbG8= d29ybGQ=") + site, "hash_key must be 32 or 64 bytes"},
		{"okta without base_url", head("connection corp {\n provider okta k s\n}") + site, "needs base_url"},
		{"unknown store", head(good+"\n store floppy /dev/fd0") + site, `unknown store "floppy"`},
		{"site offers unknown connection", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tconnections corp github\n\t}\n\trespond ok\n}\n", `connection "github", which is not configured`},
		{"no global block", "{\n\tadmin off\n\tstorage file_system " + dir + "/storage\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n", "no connections are configured"},
		{"directive args", head(good) + "http://localhost:1 {\n\tjit_auth corp\n\trespond ok\n}\n", `no application named "corp" (to offer the connection corp, write jit_auth { connections corp })`},
		{"two directive args", head(good) + "http://localhost:1 {\n\tjit_auth a b\n\trespond ok\n}\n", "at most one argument"},
		{"named application with options", head(good+"\napplication wiki {\n}") + "http://localhost:1 {\n\tjit_auth wiki {\n\t\tconnections corp\n\t}\n\trespond ok\n}\n", "only path_prefix may be set here"},
		{"application unknown connection", head(good+"\napplication wiki {\nconnections github\n}") + site, `application "wiki" offers connection "github", which is not configured`},
		{"mfa method", head(good+"\napplication wiki {\nmfa sms\n}") + site, `unknown mfa method "sms"`},
		{"mfa skip_for", head(good+"\napplication wiki {\nmfa totp {\nskip_for github\n}\n}") + site, `mfa skip_for "github" is not one of this application's connections`},
		{"mfa on_conflict", head(good+"\napplication wiki {\nmfa totp {\non_conflict shrug\n}\n}") + site, `on_conflict "shrug"`},
		{"application path_prefix", head(good+"\napplication wiki {\npath_prefix /x/\n}") + site, "path_prefix is set per site"},
		{"allow kind", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tallow colour blue\n\t}\n\trespond ok\n}\n", `unknown allow kind "colour"`},
		{"allow domain with @", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tallow email_domain @corp.com\n\t}\n\trespond ok\n}\n", "is not a domain name"},
		{"allow foreign connection", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tallow connection github\n\t}\n\trespond ok\n}\n", `allow connection "github" is not one of`},
		{"bad header rule", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\theader X-A\n\t}\n\trespond ok\n}\n", "header takes"},
		{"hop-by-hop header", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\theader connection {http.auth.user.id}\n\t}\n\trespond ok\n}\n", "header connection cannot carry identity"},
		{"framing header spelt with _", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\theader Content_Length {http.auth.user.id}\n\t}\n\trespond ok\n}\n", "header Content_Length cannot carry identity"},
		{"assertion header spelt with .", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tassertion {\n\t\t\theader Transfer.Encoding\n\t\t}\n\t}\n\trespond ok\n}\n", "cannot"},
		{"idle_timeout 0", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\tidle_timeout 0s\n\t}\n\trespond ok\n}\n", "idle_timeout 0: use at least 1s"},
		{"header name", head(good) + "http://localhost:1 {\n\tjit_auth {\n\t\theader X-User(1) {http.auth.user.id}\n\t}\n\trespond ok\n}\n", `"X-User(1)" is not a valid header name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validate(t, c.caddyfile)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if err := validate(t, head(good)+site); err != nil {
		t.Fatalf("the good config fails: %v", err)
	}
}

// The Caddyfile's matcher form puts the matcher into the handler and
// leaves the route unmatched, so the handler sees every request of the
// site (and so the endpoints too).
func TestMatcherGoesIntoTheHandler(t *testing.T) {
	dir := t.TempDir()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(`{
	jit_auth {
		store sqlite %s/users.db
		connection corp {
			oidc https://idp.example a b
		}
	}
}
http://localhost:1 {
	jit_auth /admin/*
	respond ok
}
`, dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfgJSON), `"routes":[{"handle":[{"handler":"jit_auth","match":[{"path":["/admin/*"]}]}`) {
		t.Fatalf("the matcher is not in the handler of an unmatched route: %s", cfgJSON)
	}
}

// FuzzCaddyfile feeds arbitrary text to the jit_auth Caddyfile parsers:
// they may refuse it, but never panic.
func FuzzCaddyfile(f *testing.F) {
	f.Add("connection corp {\n oidc https://idp.example a b\n jit {\n mode silent\n }\n}", "connections corp\nheader -Remote-Email")
	f.Add("store sqlite /tmp/x.db\nsession_lifetime 1h\ncookie_keys a b", "path_prefix /auth/")
	f.Add("connection gh {\n provider github k s\n auth_url x\n}", "header X-User {http.auth.user.id}")
	f.Add("connection corp {\n oidc {\n issuer https://idp.example\n scopes openid\n }\n}", "")
	f.Add("connection gh {\n goth github k s {\n base_url x\n scopes a b\n }\n scopes c\n}", "")
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, global, site string) {
		if strings.Contains(global+site, "import") {
			t.Skip("import reads files")
		}
		body := "{\n\tjit_auth {\n" + global + "\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth {\n" + site + "\n\t}\n}\n"
		_, _, _ = adapter.Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	})
}

// Caddyfile.example adapts to the JSON recorded in
// testdata/Caddyfile.example.json, and both that JSON and the JSON it
// adapted to before connectors were modules (Caddyfile.example.v1.json,
// made with the Caddy of that time, with "oidc", "provider" and "scopes"
// on the connection) still load. That the old form loads as the same
// connectors is TestLegacyConnectionsLoadAsConnectors. After an intended
// change to the example, regenerate the first file with
// `go run ./cmd/caddy adapt --config Caddyfile.example`.
func TestCaddyfileExampleAdaptsAsBefore(t *testing.T) {
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(example, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := os.ReadFile("testdata/Caddyfile.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(recorded, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Caddyfile.example adapts differently than recorded:\nnow:      %s\nrecorded: %s", got, recorded)
	}

	// Both JSON forms load (validate) as they are.
	dir := t.TempDir()
	for k, v := range map[string]string{"OIDC_ID": "id", "OIDC_SECRET": "secret", "GITHUB_KEY": "k", "GITHUB_SECRET": "s", "JIT_DB": dir + "/users.db", "XDG_DATA_HOME": dir} {
		t.Setenv(k, v)
	}
	for _, file := range []string{"testdata/Caddyfile.example.json", "testdata/Caddyfile.example.v1.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.StorageRaw = json.RawMessage(`{"module":"file_system","root":` + strconv.Quote(dir+"/storage") + `}`)
		if err := caddy.Validate(&cfg); err != nil {
			t.Errorf("%s does not load: %v", file, err)
		}
	}
}

// Caddyfile.example is a valid configuration.
func TestCaddyfileExampleValidates(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{"OIDC_ID": "id", "OIDC_SECRET": "secret", "GITHUB_KEY": "k", "GITHUB_SECRET": "s", "JIT_DB": dir + "/users.db", "XDG_DATA_HOME": dir} {
		t.Setenv(k, v)
	}
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	// Keep generated cookie keys out of the real Caddy data directory.
	cfg := strings.Replace(string(example), "\n{\n", "\n{\n\tstorage file_system "+dir+"/storage\n", 1)
	if err := validate(t, cfg); err != nil {
		t.Fatalf("Caddyfile.example: %v", err)
	}
}
