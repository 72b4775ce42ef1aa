package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
)

// A goth URL option the provider does not use is refused at load, naming
// it: it loaded and was ignored, so `goth github … { base_url
// https://github.example.com }`, written for GitHub Enterprise the way
// okta takes its org URL, sent every sign-in to github.com, where anyone
// has an account.
func TestGothURLOptionTheProviderIgnoresIsRefused(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ connector, want string }{
		"github base_url":        {"goth github k s {\n\t\t\t\tbase_url https://github.example.com\n\t\t\t}", "base_url"},
		"google custom URLs":     {"goth google k s {\n\t\t\t\tauth_url https://a.example/auth\n\t\t\t\ttoken_url https://a.example/token\n\t\t\t\tprofile_url https://a.example/me\n\t\t\t}", "auth_url"},
		"gitlab email_url":       {"goth gitlab k s {\n\t\t\t\tauth_url https://gl.example/oauth/authorize\n\t\t\t\ttoken_url https://gl.example/oauth/token\n\t\t\t\tprofile_url https://gl.example/api/v4/user\n\t\t\t\temail_url https://gl.example/api/v4/user/emails\n\t\t\t}", "email_url"},
		"github email_url alone": {"goth github k s {\n\t\t\t\temail_url https://github.example.com/api/v3/user/emails\n\t\t\t}", "email_url"},
	} {
		conn := fmt.Sprintf("\t\tconnection c {\n\t\t\t%s\n\t\t}", c.connector)
		err := loadErr(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conn), freePort(t)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: loaded (%v); want an error naming %s", name, err, c.want)
		}
	}
	// What the README shows still loads.
	for name, connector := range map[string]string{
		"okta base_url":     "goth okta k s {\n\t\t\t\tbase_url https://org.okta.com\n\t\t\t}",
		"github enterprise": "goth github k s {\n\t\t\t\tauth_url https://ghe.example/login/oauth/authorize\n\t\t\t\ttoken_url https://ghe.example/login/oauth/access_token\n\t\t\t\tprofile_url https://ghe.example/api/v3/user\n\t\t\t\temail_url https://ghe.example/api/v3/user/emails\n\t\t\t}",
		"gitea custom URLs": "goth gitea k s {\n\t\t\t\tauth_url https://gitea.example/login/oauth/authorize\n\t\t\t\ttoken_url https://gitea.example/login/oauth/access_token\n\t\t\t\tprofile_url https://gitea.example/api/v1/user\n\t\t\t}",
	} {
		conn := fmt.Sprintf("\t\tconnection c {\n\t\t\t%s\n\t\t}", connector)
		if err := loadErr(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conn), freePort(t))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
