package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// An oidc connection whose scopes leave out openid gets no ID token
// from an OpenID Connect provider (plain OAuth 2 instead), so every
// login through it failed as an unverifiable answer. It is a config
// error at load, naming the missing scope; scopes with openid load.
func TestOIDCScopesWithoutOpenIDAreAConfigError(t *testing.T) {
	for _, c := range []struct {
		scopes string
		ok     bool
	}{
		{"email profile", false},
		{"OpenID email", false},
		{"email openid profile", true},
	} {
		t.Run(c.scopes, func(t *testing.T) {
			dir := t.TempDir()
			conn := "\t\tconnection corp {\n\t\t\toidc https://idp.example.com id secret {\n\t\t\t\tscopes " + c.scopes + "\n\t\t\t}\n\t\t}"
			cfg := adaptCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conn), freePort(t)))
			caddyMu.Lock()
			defer caddyMu.Unlock()
			err := caddy.Load(cfg, true)
			if err == nil {
				_ = caddy.Stop()
			}
			if c.ok {
				if err != nil {
					t.Fatalf("scopes %q: %v", c.scopes, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "openid") {
				t.Fatalf("scopes %q loaded (%v); want an error naming the openid scope", c.scopes, err)
			}
		})
	}
}
