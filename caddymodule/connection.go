package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Connection is an external identity provider that applications offer
// for login, with its credentials and its JIT provisioning policy.
// Exactly one of OIDC and Provider is set.
type Connection struct {
	// OIDC logs in through an OpenID Connect issuer found by discovery.
	OIDC *OIDCConfig `json:"oidc,omitempty"`
	// Provider logs in through one of goth's OAuth providers.
	Provider *ProviderConfig `json:"provider,omitempty"`
	// Scopes requested from the provider. Default for OIDC: openid email
	// profile; for GitHub: read:user user:email (without it GitHub hides
	// private emails); for other providers, goth's defaults.
	Scopes []string `json:"scopes,omitempty"`
	// RedirectURL is the callback URL registered at the provider. By
	// default each site uses its own origin plus
	// /.jitauth/callback/<connection>, so one connection can serve several
	// sites; set this when the provider allows only one fixed URL.
	RedirectURL string `json:"redirect_url,omitempty"`
	// DisplayName is shown on the login page; default: the connection name.
	DisplayName string `json:"display_name,omitempty"`
	// JIT configures Just-in-Time provisioning. Absent or not enabled,
	// users of this connection can log in but nothing about them is stored.
	JIT *JITConfig `json:"jit,omitempty"`

	name      string
	connector connector
}

// OIDCConfig names an OpenID Connect issuer and this client's credentials.
type OIDCConfig struct {
	// Issuer is the issuer URL exactly as the provider's discovery
	// document states it; /.well-known/openid-configuration is appended.
	Issuer string `json:"issuer,omitempty"`
	// ClientID is this relying party's client ID at the issuer.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the client secret.
	ClientSecret string `json:"client_secret,omitempty"`
}

// JITConfig is a connection's Just-in-Time provisioning policy.
type JITConfig struct {
	// Enabled turns provisioning on: a user's first positive login
	// creates a local user and identity from the provider's claims, and
	// later logins update them.
	Enabled bool `json:"enabled,omitempty"`
	// Mode is how new users are provisioned. Only "silent" (the default)
	// exists so far: provision without asking.
	Mode string `json:"mode,omitempty"`
}

var connectionNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// policy returns the provisioner's view of the JIT configuration.
func (c *Connection) policy() provisioner.Policy {
	if c.JIT == nil || !c.JIT.Enabled {
		return provisioner.Policy{}
	}
	return provisioner.Policy{Enabled: true, Mode: provisioner.Mode(c.JIT.Mode)}
}

// displayName is the name shown to users.
func (c *Connection) displayName() string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.name
}

// validate checks the configuration and says what to fix.
func (c *Connection) validate(name string) error {
	if !connectionNameRE.MatchString(name) {
		return fmt.Errorf("connection name %q: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	switch {
	case c.OIDC == nil && c.Provider == nil:
		return fmt.Errorf("connection %q: needs an identity provider: 'oidc <issuer> <client_id> <client_secret>' or 'provider <name> <key> <secret>'", name)
	case c.OIDC != nil && c.Provider != nil:
		return fmt.Errorf("connection %q: has both oidc and provider; a connection is one identity provider, split it into two connections", name)
	}
	if o := c.OIDC; o != nil {
		u, err := url.Parse(o.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("connection %q: oidc issuer %q must be an absolute http(s) URL", name, o.Issuer)
		}
		if o.ClientID == "" || o.ClientSecret == "" {
			return fmt.Errorf("connection %q: oidc needs a client_id and a client_secret", name)
		}
	}
	if p := c.Provider; p != nil {
		f, ok := gothFactories[p.Name]
		if !ok {
			return fmt.Errorf("connection %q: unknown provider %q; known providers: %s (or use 'oidc' for any OpenID Connect issuer)", name, p.Name, gothProviderNames())
		}
		if p.Key == "" || p.Secret == "" {
			return fmt.Errorf("connection %q: provider %s needs a key and a secret", name, p.Name)
		}
		if (p.AuthURL != "" || p.TokenURL != "" || p.ProfileURL != "") && (p.AuthURL == "" || p.TokenURL == "" || p.ProfileURL == "") {
			return fmt.Errorf("connection %q: auth_url, token_url and profile_url must be set together", name)
		}
		if _, err := f(*p, "https://example.invalid/callback", c.Scopes); err != nil {
			return fmt.Errorf("connection %q: %v", name, err)
		}
	}
	if c.RedirectURL != "" {
		u, err := url.Parse(c.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("connection %q: redirect_url %q must be an absolute http(s) URL", name, c.RedirectURL)
		}
	}
	if c.JIT != nil && c.JIT.Mode != "" && c.JIT.Mode != string(provisioner.ModeSilent) {
		return fmt.Errorf("connection %q: jit mode %q is not supported; use 'silent'", name, c.JIT.Mode)
	}
	return nil
}

// provision builds the connection's connector. It does not contact the
// provider: OpenID Connect discovery happens on first use and is retried,
// so Caddy starts even when a provider is down.
func (c *Connection) provision(name string, logger *zap.Logger) {
	c.name = name
	if o := c.OIDC; o != nil {
		scopes := c.Scopes
		if len(scopes) == 0 {
			scopes = []string{"openid", "email", "profile"}
		}
		c.connector = newOIDCConnector(o.Issuer, o.ClientID, o.ClientSecret, scopes, logger)
		return
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = defaultProviderScopes[c.Provider.Name]
	}
	c.connector = &gothConnector{cfg: *c.Provider, factory: gothFactories[c.Provider.Name], scopes: scopes,
		client: &http.Client{Timeout: providerTimeout}}
}
