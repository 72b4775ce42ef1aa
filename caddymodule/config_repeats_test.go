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

// An option given twice is refused with a fix that fits it: "a list on
// one line" only for the options that take a list; for one that takes a
// single value (store, session_lifetime, display_name, idle_timeout) the
// hint told the administrator to write two stores on one line.
func TestRepeatedOptionErrorSuggestsAListOnlyForListOptions(t *testing.T) {
	const conn = "connection corp {\n\t\t\toidc https://idp.example x y\n\t\t\t%s\n\t\t}"
	for name, c := range map[string]struct {
		global, site string
		list         bool
	}{
		"store":              {"store sqlite /tmp/a.db\n\t\tstore sqlite /tmp/b.db\n\t\t" + fmt.Sprintf(conn, ""), "", false},
		"session_lifetime":   {"session_lifetime 1h\n\t\tsession_lifetime 2h\n\t\t" + fmt.Sprintf(conn, ""), "", false},
		"display_name":       {fmt.Sprintf(conn, "display_name A\n\t\t\tdisplay_name B"), "", false},
		"idle_timeout":       {fmt.Sprintf(conn, ""), "idle_timeout 1m\n\t\tidle_timeout 2m", false},
		"reserved_usernames": {fmt.Sprintf(conn, "jit {\n\t\t\t\treserved_usernames admin\n\t\t\t\treserved_usernames root\n\t\t\t}"), "", true},
		"connections":        {fmt.Sprintf(conn, ""), "connections corp\n\t\tconnections corp", true},
	} {
		cf := "{\n\tjit_auth {\n\t\t" + c.global + "\n\t}\n}\nhttp://localhost:9999 {\n\tjit_auth {\n\t\t" + c.site + "\n\t}\n\trespond ok\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), name+" is given twice") {
			t.Errorf("%s twice: %v; want an error saying so", name, err)
			continue
		}
		if hint := strings.Contains(err.Error(), "a list on one line"); hint != c.list {
			t.Errorf("%s twice: %v; suggests a list on one line: %v, want %v", name, err, hint, c.list)
		}
	}
}
