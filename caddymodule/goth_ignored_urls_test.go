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

// A goth URL that is not an absolute http(s) URL is refused at load,
// naming it, as the oidc connector refuses such an issuer: it loaded,
// and every callback then failed as "provider unavailable" (an
// unsupported protocol scheme), which sent operators to the provider.
func TestGothURLThatIsNotAbsoluteIsRefused(t *testing.T) {
	dir := t.TempDir()
	ghe := func(auth, token, profile, email string) string {
		return fmt.Sprintf("goth github k s {\n\t\t\t\tauth_url %s\n\t\t\t\ttoken_url %s\n\t\t\t\tprofile_url %s\n\t\t\t\temail_url %s\n\t\t\t}", auth, token, profile, email)
	}
	for name, c := range map[string]struct{ connector, want string }{
		"token_url without a scheme":     {ghe("https://ghe.example/login/oauth/authorize", "ghe.example/login/oauth/access_token", "https://ghe.example/api/v3/user", "https://ghe.example/api/v3/user/emails"), "token_url"},
		"auth_url relative":              {ghe("/login/oauth/authorize", "https://ghe.example/login/oauth/access_token", "https://ghe.example/api/v3/user", "https://ghe.example/api/v3/user/emails"), "auth_url"},
		"profile_url of another scheme":  {ghe("https://ghe.example/login/oauth/authorize", "https://ghe.example/login/oauth/access_token", "ftp://ghe.example/api/v3/user", "https://ghe.example/api/v3/user/emails"), "profile_url"},
		"email_url without a host":       {ghe("https://ghe.example/login/oauth/authorize", "https://ghe.example/login/oauth/access_token", "https://ghe.example/api/v3/user", "https:///api/v3/user/emails"), "email_url"},
		"okta base_url without a scheme": {"goth okta k s {\n\t\t\t\tbase_url org.okta.com\n\t\t\t}", "base_url"},
		"nextcloud base_url relative":    {"goth nextcloud k s {\n\t\t\t\tbase_url cloud.example\n\t\t\t}", "base_url"},
	} {
		conn := fmt.Sprintf("\t\tconnection c {\n\t\t\t%s\n\t\t}", c.connector)
		err := loadErr(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conn), freePort(t)))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "absolute") {
			t.Errorf("%s: loaded (%v); want an error naming %s as not an absolute URL", name, err, c.want)
		}
	}
}
