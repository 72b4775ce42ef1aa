package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A single-valued jit or connection option given twice is refused: it
// loaded and kept only the last (a second reserved_usernames line dropped
// the names of the first, handing out "admin").
func TestRepeatedSingleValuedOptionsAreRefused(t *testing.T) {
	for name, conn := range map[string]string{
		"jit mode":       "oidc https://idp.example x y\n\t\t\tjit {\n\t\t\t\tmode consent\n\t\t\t\tmode silent\n\t\t\t}",
		"jit twice":      "oidc https://idp.example x y\n\t\t\tjit {\n\t\t\t\tmode consent\n\t\t\t}\n\t\t\tjit",
		"username twice": "oidc https://idp.example x y\n\t\t\tjit {\n\t\t\t\tusername {claims.employee_id}\n\t\t\t\tusername {profile.preferred_username}\n\t\t\t}",
		"redirect_url":   "oidc https://idp.example x y\n\t\t\tredirect_url https://a.example/.jitauth/callback/corp\n\t\t\tredirect_url https://b.example/.jitauth/callback/corp",
		"reserved twice": "oidc https://idp.example x y\n\t\t\tjit {\n\t\t\t\treserved_usernames admin root\n\t\t\t\treserved_usernames ceo\n\t\t\t}",
	} {
		cf := "{\n\tjit_auth {\n\t\tconnection corp {\n\t\t\t" + conn + "\n\t\t}\n\t}\n}\nhttp://localhost:9999 {\n\tjit_auth\n\trespond ok\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: adapted without an error (%v); want one saying the option is given twice", name, err)
		}
	}
}

// (S12) values that cannot be what the operator meant load
// without a word: a negative assertion_key_rotation is silently the
// default 168h, and {env.X} placeholders, which the README teaches for
// secrets, are taken as literal text in allow rules and reserved names,
// so `reserved_usernames {env.RESERVED}` reserves the text
// "{env.reserved}" and drops the default list (admin, root, …), and
// `allow email_domain {env.CORP_DOMAIN}` admits nobody. Each should be a
// load error naming the option.
func TestSilentlyMisreadValuesAreRefused(t *testing.T) {
	t.Setenv("REVIEWD_RESERVED", "admin")
	t.Setenv("REVIEWD_DOMAIN", "example.com")
	dir := t.TempDir()
	conn := "connection corp {\n\t\t\toidc https://idp.example x y\n\t\t\tjit {\n\t\t\t\t%s\n\t\t\t}\n\t\t}"
	for name, c := range map[string]struct{ global, site, want string }{
		"negative assertion_key_rotation": {"assertion_key_rotation -1h\n" + fmt.Sprintf(conn, ""), "", "assertion_key_rotation"},
		"reserved_usernames {env.X}":      {fmt.Sprintf(conn, "reserved_usernames {env.REVIEWD_RESERVED}"), "", "reserved_usernames: {env.REVIEWD_RESERVED}"},
		"allow email_domain {env.X}":      {fmt.Sprintf(conn, ""), "allow email_domain {env.REVIEWD_DOMAIN}", "allow: {env.REVIEWD_DOMAIN}"},
	} {
		cf := "{" + globalOptions(dir, c.global) + "\n}\nhttp://localhost:9999 {\n\tjit_auth {\n\t\t" + c.site + "\n\t}\n\trespond ok\n}\n"
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		if err == nil {
			var conf caddy.Config
			if err = json.Unmarshal(cfg, &conf); err != nil {
				t.Fatal(err)
			}
			err = caddy.Validate(&conf)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %q", name, err, c.want)
		}
	}
}
