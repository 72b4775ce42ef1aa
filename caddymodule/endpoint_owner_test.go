package caddymodule_test

import (
	"net/http"
	"testing"
)

// A site whose catch-all handle block has its own jit_auth (everyone of
// corp) and whose /admin/* handle block has a stricter one (allow only
// bob) answered its sign-in endpoints, before the cleaning step took
// them over, with the catch-all's handler: alice signed in for /app/x.
// When the cleaning step first handed /.jitauth/… to the handler
// provisioned first for the prefix (the /admin/* one), alice's sign-in
// for /app/x ended on "Access denied". It now hands over only what
// Caddy's routes would take past every jit_auth handler.
func TestSignInAnsweredByAnotherHandlersAllowRules(t *testing.T) {
	for name, body := range map[string]string{
		"handle":      "\thandle /admin/* {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t\tallow email bob@example.com\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}",
		"handle_path": "\thandle_path /admin/* {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t\tallow email bob@example.com\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\tjit_auth {\n\t\t\tconnections corp\n\t\t}\n\t\treverse_proxy {UPSTREAM}\n\t}",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := siteOrLoadError(t, "", "", body)
			if err != nil {
				t.Fatal(err)
			}
			b := newBrowser(t)
			s.queue(alice())
			resp, page, visited, done := followN(b, s.base+"/app/x", 20)
			if !done || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/x" {
				t.Errorf("alice signing in for /app/x (the catch-all's jit_auth, which admits her) ended %d after %v: %.200s", resp.StatusCode, visited, page)
			}
		})
	}
}
