package caddymodule

import (
	"errors"
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
	// TrustEmail treats the email as verified when the provider does not
	// say whether it is (goth providers other than GitHub, Google and the
	// like). A provider that says "not verified" is never overruled. Only
	// set it for a provider that verifies every address it hands out.
	TrustEmail bool `json:"trust_email,omitempty"`
	// JIT configures Just-in-Time provisioning. Absent or not enabled,
	// users of this connection can log in but nothing about them is stored.
	JIT *JITConfig `json:"jit,omitempty"`

	name      string
	connector connector
	pol       *provisioner.Policy
	// clientID and clientSecret are the credentials with their
	// placeholders resolved (see resolveSecret); the exported fields keep
	// the placeholders.
	clientID, clientSecret string
}

// OIDCConfig names an OpenID Connect issuer and this client's credentials.
type OIDCConfig struct {
	// Issuer is the issuer URL exactly as the provider's discovery
	// document states it; /.well-known/openid-configuration is appended.
	Issuer string `json:"issuer,omitempty"`
	// ClientID is this relying party's client ID at the issuer. Like the
	// secret, it may be a placeholder such as {env.OIDC_CLIENT_ID}.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the client secret. Give it as a placeholder that
	// Caddy resolves when it loads the config, {env.OIDC_SECRET} or
	// {file./run/secrets/oidc} (one trailing newline is dropped), so the
	// secret is never part of the config: GET /config/ and `caddy adapt`
	// show the placeholder. An unset variable or unreadable file stops
	// the config from loading.
	ClientSecret string `json:"client_secret,omitempty"`
}

// JITConfig is a connection's Just-in-Time provisioning policy.
type JITConfig struct {
	// Enabled turns provisioning on: a user's first positive login
	// creates a local user and identity from the provider's claims, and
	// later logins update them.
	Enabled bool `json:"enabled,omitempty"`
	// Mode is how new users are provisioned: "silent" (the default)
	// provisions without asking; "consent" first shows the attributes
	// that will be stored and provisions only if the user allows it;
	// "username" also lets the user choose the local username.
	Mode string `json:"mode,omitempty"`
	// Link is what a new identity whose email is already a local user's
	// does: "off" (the default) refuses the login with a clear page;
	// "verified_email" links the identity to that user when both the
	// provider and the local record say the email is verified.
	Link string `json:"link,omitempty"`
	// Sync is what later logins do to a user's attributes: "override"
	// (the default) writes the provider's values; "preserve_local" keeps
	// attributes changed locally; "first_login" never updates them.
	// Roles follow the provider's groups in every mode.
	Sync string `json:"sync,omitempty"`
	// Map sets attributes from placeholder expressions over the
	// provider's claims, for example {"department": "{claims.org.dept}"}.
	// Standard attributes (name, given_name, family_name, email,
	// email_verified, preferred_username, picture, groups) default to the
	// provider's usual claims; other names become custom attributes.
	Map map[string]string `json:"map,omitempty"`
	// Username lists templates for a new user's username, tried in order
	// until one gives a usable name that is not reserved or taken.
	// Default: {verified_email}, then {profile.preferred_username}, then
	// {connection}-{subject}. A result with '@' is used only when it is
	// the user's verified email; ':' in a result becomes '_'. With JIT
	// off the templates name the session instead, as
	// "<connection>:<value>" unless the value is the verified email;
	// default {verified_email}, then {subject}. A claim users choose or
	// providers reuse (preferred_username, a login) names whoever has it.
	Username []string `json:"username,omitempty"`
	// UsernamePattern is the regular expression a username chosen in
	// mode "username" must match after normalisation. Default:
	// ^[a-z0-9][a-z0-9._-]{1,31}$. Whatever it allows, a name with ':'
	// is refused, and one with '@' unless it is the user's verified email.
	UsernamePattern string `json:"username_pattern,omitempty"`
	// ReservedUsernames no JIT user gets or may choose. Default: admin,
	// administrator, root, system and other names apps treat as special.
	ReservedUsernames []string `json:"reserved_usernames,omitempty"`
	// Roles grant local roles: each to users in one of its from_groups,
	// or to every user of the connection when it lists none. A role
	// granted here is removed when the provider stops sending its group;
	// roles granted locally or by other connections stay.
	Roles []provisioner.RoleRule `json:"roles,omitempty"`
}

var connectionNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// applicationNameRE is the same rule for application names.
var applicationNameRE = connectionNameRE

// buildPolicy returns the provisioner's view of the connection,
// validated; its errors say what to fix.
func (c *Connection) buildPolicy() (*provisioner.Policy, error) {
	pol := &provisioner.Policy{TrustEmail: c.TrustEmail}
	if j := c.JIT; j != nil {
		pol.Enabled = j.Enabled
		pol.Mode = provisioner.Mode(j.Mode)
		pol.Link = provisioner.Link(j.Link)
		pol.Sync = provisioner.Sync(j.Sync)
		pol.UsernamePattern = j.UsernamePattern
		pol.Reserved = j.ReservedUsernames
		pol.Roles = j.Roles
		for attr, src := range j.Map {
			e, err := provisioner.ParseExpr(src, false)
			if err != nil {
				return nil, fmt.Errorf("jit map %s: %v", attr, err)
			}
			if pol.Map == nil {
				pol.Map = map[string]provisioner.Expr{}
			}
			pol.Map[attr] = e
		}
		for _, src := range j.Username {
			e, err := provisioner.ParseExpr(src, true)
			if err != nil {
				return nil, fmt.Errorf("jit username: %v", err)
			}
			pol.UsernameTemplates = append(pol.UsernameTemplates, e)
		}
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("jit: %v", err)
	}
	return pol, nil
}

// jitEnabled reports whether logins through c are provisioned.
func (c *Connection) jitEnabled() bool { return c.JIT != nil && c.JIT.Enabled }

// credentialNames are the config names of c's client ID and secret.
func (c *Connection) credentialNames() credentialNames {
	if c.Provider != nil {
		return gothCredentials
	}
	return oidcCredentials
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
		if err := c.resolveCredentials(name, "client_id", o.ClientID, "client_secret", o.ClientSecret); err != nil {
			return err
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
		if err := c.resolveCredentials(name, "key", p.Key, "secret", p.Secret); err != nil {
			return err
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
	pol, err := c.buildPolicy()
	if err != nil {
		return fmt.Errorf("connection %q: %v", name, err)
	}
	c.pol = pol
	return nil
}

// resolveCredentials expands the placeholders of the client ID and
// secret into c.clientID and c.clientSecret, reporting both at once.
func (c *Connection) resolveCredentials(name, idField, id, secretField, secret string) error {
	var errID, errSecret error
	c.clientID, errID = resolveSecret(idField, id)
	c.clientSecret, errSecret = resolveSecret(secretField, secret)
	if err := errors.Join(errID, errSecret); err != nil {
		return fmt.Errorf("connection %q: %w", name, err)
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
		c.connector = newOIDCConnector(o.Issuer, c.clientID, c.clientSecret, scopes, logger)
		return
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = defaultProviderScopes[c.Provider.Name]
	}
	cfg := *c.Provider
	cfg.Key, cfg.Secret = c.clientID, c.clientSecret
	c.connector = &gothConnector{cfg: cfg, factory: gothFactories[c.Provider.Name], scopes: scopes,
		client: &http.Client{Timeout: providerTimeout}, logger: logger}
}
