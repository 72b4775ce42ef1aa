package caddymodule_test

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A single-valued option of an application, of the deprovision block or
// of the global jit_auth block given twice is refused, as one of a
// connection or jit block is: a second line silently replaced the first
// (a second `connections` line dropped the first's connections).
func TestRepeatedApplicationOptionsAreRefused(t *testing.T) {
	for name, c := range map[string]struct{ global, conn, site string }{
		"connections twice":       {"", "", "connections corp\n\t\tconnections partner"},
		"idle_timeout twice":      {"", "", "idle_timeout 5m\n\t\tidle_timeout 8h"},
		"path_prefix twice":       {"", "", "path_prefix /.a/\n\t\tpath_prefix /.b/"},
		"deprovision after twice": {"", "\n\t\t\tdeprovision {\n\t\t\t\tafter 30d\n\t\t\t\tafter 365d\n\t\t\t}", ""},
		"session_lifetime twice":  {"\t\tsession_lifetime 1h\n\t\tsession_lifetime 720h\n", "", ""},
	} {
		cf := "{\n\tjit_auth {\n" + c.global + "\t\tconnection corp {\n\t\t\toidc https://idp.example x y" + c.conn + "\n\t\t}\n\t\tconnection partner {\n\t\t\toidc https://idp.example x y\n\t\t}\n\t}\n}\nhttp://localhost:9999 {\n\tjit_auth {\n\t\t" + c.site + "\n\t}\n\trespond ok\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: adapted without an error (%v); want one saying the option is given twice", name, err)
		}
	}
}
