package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// A JSON handler with a misspelt field is refused by Caddy's strict
// decoding, naming the field. The interconnection check, run when the
// first jit_auth handler of the configuration loads, reads every other
// handler too; it must not refuse such a handler first for what the
// misspelt field left empty, in words that send the administrator the
// wrong way ("an allow rule needs email_domain, …" for an allow rule that
// says "email_domain").
func TestJSONHandlerWithUnknownFieldIsRefusedNamingTheField(t *testing.T) {
	dir := t.TempDir()
	conn := "\t\tconnection corp {\n\t\t\toidc https://idp.example.com id secret\n\t\t}"
	port := freePort(t)
	cfg := string(adaptCaddyfile(t, fmt.Sprintf(`{%s
}
http://a.localhost:%[2]d {
	jit_auth
	respond a
}
http://b.localhost:%[2]d {
	jit_auth {
		allow email_domain example.com
	}
	respond b
}
`, globalOptions(dir, conn), port)))
	if strings.Count(cfg, `"email_domains"`) != 1 {
		t.Fatalf("adapted config: %s", cfg)
	}
	cfg = strings.Replace(cfg, `"email_domains"`, `"email_domain"`, 1)

	caddyMu.Lock()
	defer caddyMu.Unlock()
	err := caddy.Load([]byte(cfg), true)
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("a handler with the unknown field email_domain loaded")
	}
	if !strings.Contains(err.Error(), `unknown field "email_domain"`) {
		t.Fatalf("load error does not name the unknown field:\n%v", err)
	}
}
