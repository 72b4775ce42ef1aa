package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// rawAssertion is a third party's connector for a protocol whose
// provider answers with an XML document (SAML's shape), written from the
// README's "Your own connector": Finish returns "the identity: Issuer,
// Subject, Email, EmailVerified, raw claims", and the raw claims it has
// are the provider's assertion as sent. Its "provider" answers at once:
// Begin sends the browser straight back to the callback with the state.
type rawAssertion struct {
	Subject string `json:"subject,omitempty"`
}

func init() { caddy.RegisterModule(rawAssertion{}) }

func (rawAssertion) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.connectors.test_rawxml", New: func() caddy.Module { return new(rawAssertion) }}
}

func (c *rawAssertion) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&c.Subject) || d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func (c *rawAssertion) Begin(_ *http.Request, login connector.Login) (string, []byte, error) {
	return login.RedirectURI + "?state=" + url.QueryEscape(login.State), []byte("x"), nil
}

func (c *rawAssertion) Finish(_ *http.Request, _ connector.Login, _ []byte) (provisioner.Claims, error) {
	email := c.Subject + "@partner.example"
	raw := `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject><saml:NameID>` + c.Subject +
		`</saml:NameID></saml:Subject></saml:Assertion>`
	return provisioner.Claims{Issuer: "urn:partner", Subject: c.Subject, Email: email, EmailVerified: true, EmailVerifiedKnown: true,
		Raw: []byte(raw)}, nil
}

// A third party's connector whose raw claims are not a JSON object (a
// SAML assertion as sent) signs users in on PostgreSQL as on SQLite: the
// claims are kept as {"raw": text}, which jsonb takes, instead of failing
// every login as a store outage.
func TestConnectorRawClaimsThatAreNotJSONSignInOnEveryStore(t *testing.T) {
	outcome := func(t *testing.T, storeLine string) (int, string) {
		dir := t.TempDir()
		up := newUpstream(t)
		port := freePort(t)
		base := fmt.Sprintf("http://localhost:%d", port)
		runCaddyfile(t, fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %s
	jit_auth {
		%s
		cookie_keys %s %s
		connection partner {
			test_rawxml carol
			jit
		}
	}
}
%s {
	jit_auth
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), storeLine, testHashKey, testBlockKey, base, up.hostPort()))
		resp, body, _ := newBrowser(t).follow(base+"/secret", nil)
		return resp.StatusCode, body
	}

	var sqliteCode int
	t.Run("sqlite", func(t *testing.T) {
		code, body := outcome(t, "store sqlite "+filepath.Join(t.TempDir(), "users.db"))
		sqliteCode = code
		if code != http.StatusOK || !strings.Contains(body, "upstream saw carol@partner.example") {
			t.Fatalf("SQLite: %d %q", code, body)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		_, connString := pgSchema(t)
		t.Setenv("JITAUTH_TEST_R3_RAW_PG", connString)
		code, body := outcome(t, "store postgres {env.JITAUTH_TEST_R3_RAW_PG}")
		if code != sqliteCode {
			t.Errorf("PostgreSQL: %d (SQLite: %d) for the same connector and claims; page: %.300q", code, sqliteCode, body)
		}
	})
}
