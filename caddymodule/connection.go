package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/deprovision"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Connection is an external identity provider that applications offer
// for login: the connector that speaks its protocol, and what jit_auth
// does with the identities it verifies (the JIT provisioning policy).
type Connection struct {
	// Connector speaks the provider's protocol: a module in the
	// jit_auth.connectors namespace, chosen by "kind". "oidc" logs in
	// through any OpenID Connect issuer, "goth" through one of goth's
	// OAuth providers (GitHub, Google, …); other kinds come from
	// third-party modules.
	ConnectorRaw json.RawMessage `json:"connector,omitempty" caddy:"namespace=jit_auth.connectors inline_key=kind"`
	// RedirectURL is the callback URL registered at the provider. By
	// default each site uses its own origin plus
	// /.jitauth/callback/<connection>, so one connection can serve several
	// sites; set this when the provider allows only one fixed URL. A
	// login keeps its state in a cookie of the site it started on, so a
	// fixed URL serves only the site on its origin: loading refuses a
	// site on another host that offers the connection when the URL is
	// another site of the configuration, and a sign-in started on any
	// other origin (as trusted_proxies forward it) is answered as
	// misconfigured before it reaches the provider.
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
	// LogoutAtProvider continues a sign-out to the provider's
	// end_session_endpoint (OpenID Connect RP-Initiated Logout), so the
	// user is signed out there too, and back to
	// <path_prefix>logged-out, which must be registered at the provider
	// as a post-logout redirect URI. The login's ID token, sent as
	// id_token_hint, is kept sealed in a cookie that only the logout
	// endpoint receives. A provider without the endpoint ends at a page
	// saying the user may still be signed in there.
	LogoutAtProvider bool `json:"logout_at_provider,omitempty"`

	// BackchannelLogout receives the provider's OpenID Connect
	// Back-Channel Logout tokens at <path_prefix>backchannel-logout/<name>
	// (register that URI at the provider) and ends the sessions they name,
	// by subject or by the provider's session ID (sid), on every instance
	// sharing the store within its revocation poll.
	BackchannelLogout bool `json:"backchannel_logout,omitempty"`

	// Refresh keeps the login's refresh token and refreshes the session
	// in the background, so that changes at the provider (groups, a
	// removed user) reach live sessions; see RefreshConfig.
	Refresh *RefreshConfig `json:"refresh,omitempty"`

	// Deprovision disables or deletes this connection's users after a
	// time without a login. It needs JIT on (with JIT off nothing is
	// stored) and a store that implements provisioner.AdminStore.
	Deprovision *DeprovisionConfig `json:"deprovision,omitempty"`

	// OIDC is the form of an OpenID Connect connection from before
	// connectors were modules; it loads as the "oidc" connector.
	// Deprecated: use connector {"kind": "oidc", …}.
	OIDC *OIDCConfig `json:"oidc,omitempty"`
	// Provider is the form of a goth connection from before connectors
	// were modules; it loads as the "goth" connector.
	// Deprecated: use connector {"kind": "goth", "provider": …}.
	Provider *ProviderConfig `json:"provider,omitempty"`
	// Scopes went with OIDC and Provider; it is the connector's scopes.
	// Deprecated: set scopes in the connector.
	Scopes []string `json:"scopes,omitempty"`

	name      string
	kind      string
	connector connector.Connector
	// redirectOrigin is the origin of RedirectURL (canonicalOrigin), the
	// one site a login through it can start on; "" without one.
	redirectOrigin string
	// crossSitePost: the provider returns with a cross-site POST, so the
	// flow cookie must be SameSite=None (connector.CrossSitePoster).
	crossSitePost bool
	// endSession ends the user's session at the provider, if the
	// connector can (connector.EndSessioner).
	endSession   connector.EndSessioner
	logoutTokens connector.LogoutTokenVerifier
	// keysUnreadableWarned spaces the warnings that the provider's keys
	// cannot be read to check a back-channel logout token: anyone can
	// post tokens, one WARN each while the provider is down.
	keysUnreadableWarned logSpacing
	// relayedWarned spaces, per error code, the warnings about error
	// answers through the browser (relayedRefusal): anyone can start
	// logins and answer each with invalid_client.
	relayedWarned codeSpacing
	refresher     connector.Refresher
	pol           *provisioner.Policy
	// vouch digests what vouches for the identities this connection's
	// logins verify (vouchDigest), and vouchSince is since when this
	// process has run the connection with it (sharedState.noteVouches):
	// a login paused on the consent or username page is answered only
	// under the provider that verified it (pendingLogin.Vouch).
	vouch       string
	vouchSince  time.Time
	deprovision *deprovision.Policy

	// elsewhereWarned spaces the warnings of a start on another origin
	// than redirect_url's: the request's Host, which any client writes.
	elsewhereWarned logSpacing
	// longReturnWarned spaces the warnings of a return path too long to
	// carry through the sign-in: rd, which any client writes.
	longReturnWarned logSpacing
	// longSignOutWarned spaces the warnings of a sign-out whose return
	// path is too long to send through the provider: rd again.
	longSignOutWarned logSpacing
	// noFlowAudited and elsewhereAudited space the audit lines (and
	// Caddy events) of a callback without a valid flow cookie and of a
	// start on another origin: anyone can send either (emitSpaced).
	noFlowAudited, elsewhereAudited logSpacing
	// noRefreshTokenWarned spaces the warnings that the provider issued
	// no refresh token to a connection set to refresh: one per sign-in
	// otherwise, as often as anyone with an account signs in.
	noRefreshTokenWarned logSpacing
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

// runtimePlaceholder returns the first runtime placeholder in v ({env.X},
// {file.X}, {http.…}, …), or "". Only secrets resolve those (see
// resolveSecret); in a list of names or rules one would be taken as its
// own text.
func runtimePlaceholder(v string) string {
	for _, ns := range []string{"{env.", "{file.", "{http.", "{system.", "{time.", "{vars."} {
		if i := strings.Index(v, ns); i >= 0 {
			if j := strings.IndexByte(v[i:], '}'); j > 0 {
				return v[i : i+j+1]
			}
		}
	}
	return ""
}

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
		for _, name := range j.ReservedUsernames {
			if p := runtimePlaceholder(name); p != "" {
				return nil, fmt.Errorf("jit reserved_usernames: %s is not resolved here, and would reserve its own text instead of the names it holds; write the names, or {$NAME} to take them from the environment when the Caddyfile is read", p)
			}
		}
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

// displayName is the name shown to users.
func (c *Connection) displayName() string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.name
}

// checkPolicy checks the connection's own settings (its name, the
// redirect URL, the JIT policy, which it builds into c.pol) and brings a
// connection written in the legacy form to a connector; its errors say
// what to fix.
func (c *Connection) checkPolicy(name string) error {
	if !connectionNameRE.MatchString(name) {
		return fmt.Errorf("connection name %q: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	if err := c.translateLegacy(); err != nil {
		return fmt.Errorf("connection %q: %v", name, err)
	}
	if c.ConnectorRaw == nil {
		return fmt.Errorf("connection %q: needs an identity provider: a connector such as 'oidc <issuer> <client_id> <client_secret>' or 'goth <provider> <key> <secret>'", name)
	}
	if c.RedirectURL != "" {
		u, err := url.Parse(c.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("connection %q: redirect_url %q must be an absolute http(s) URL", name, c.RedirectURL)
		}
		c.redirectOrigin = canonicalOrigin(c.RedirectURL)
	}
	pol, err := c.buildPolicy()
	if err != nil {
		return fmt.Errorf("connection %q: %v", name, err)
	}
	c.pol = pol
	if c.Deprovision != nil {
		if !c.jitEnabled() {
			return fmt.Errorf("connection %q: deprovision needs jit on: with jit off nothing is stored about this connection's users", name)
		}
		p, err := c.Deprovision.policy(name)
		if err != nil {
			return fmt.Errorf("connection %q: %v", name, err)
		}
		c.deprovision = &p
	}
	return nil
}

// loadConnector loads the connection's connector module. Provisioning a
// connector does not contact the provider: OpenID Connect discovery
// happens on first use and is retried, so Caddy starts even when a
// provider is down.
func (c *Connection) loadConnector(ctx caddy.Context, name string) error {
	c.name = name
	var head struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(c.ConnectorRaw, &head)
	c.kind = head.Kind
	// Before LoadModule, which drops the raw config.
	c.vouch = vouchDigest(c.ConnectorRaw)
	if c.kind == "" {
		return fmt.Errorf("connection %q: its connector needs a \"kind\" (oidc, goth, or a third-party connector's)", name)
	}
	mod, err := ctx.LoadModule(c, "ConnectorRaw")
	if err != nil {
		return fmt.Errorf("connection %q: %s", name, loadErrorText(err, c.kind))
	}
	conn, ok := mod.(connector.Connector)
	if !ok {
		return fmt.Errorf("connection %q: module jit_auth.connectors.%s (%T) is not a connector: it lacks Begin and Finish (package github.com/jitauth/caddy-jitauth/connector)", name, c.kind, mod)
	}
	c.connector = conn
	if p, ok := mod.(connector.CrossSitePoster); ok {
		c.crossSitePost = p.CallbackIsCrossSitePost()
	}
	if es, ok := mod.(connector.EndSessioner); ok {
		c.endSession = es
	} else if c.LogoutAtProvider {
		return fmt.Errorf("connection %q: logout_at_provider needs a connector that can end the session at the provider (connector.EndSessioner), and %s cannot; use an oidc connection or drop logout_at_provider", name, c.kind)
	}
	if rf, ok := mod.(connector.Refresher); ok {
		c.refresher = rf
	}
	if v, ok := mod.(connector.LogoutTokenVerifier); ok {
		c.logoutTokens = v
	} else if c.BackchannelLogout {
		return fmt.Errorf("connection %q: backchannel_logout needs a connector that verifies logout tokens (connector.LogoutTokenVerifier), and %s cannot; use an oidc connection or drop backchannel_logout", name, c.kind)
	}
	return nil
}

// nonIdentityFields are connector settings that leave the same provider
// vouching for a login's identity: a reload that rotates the secret or
// changes the scopes must not send users on the consent page back to
// the start.
var nonIdentityFields = []string{"client_secret", "secret", "scopes"}

// vouchDigest digests the connector's config (its kind, issuer or
// provider and instance, client ID, and whatever settings a third-party
// connector has) without nonIdentityFields. The config is re-encoded
// with its keys sorted, so instances that load the same config through
// the Caddyfile, JSON or the admin API agree. The digest travels in the
// sealed pending cookie: 16 bytes keep it small beside the claims.
func vouchDigest(raw json.RawMessage) string {
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	for _, k := range nonIdentityFields {
		delete(fields, k)
	}
	canonical, _ := json.Marshal(fields)
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// vouchesFor reports whether the provider that verified p's identity is
// the one c logs in through now. A pending cookie sealed before it
// carried Vouch is accepted only if its identity was verified after
// this process began to run c as configured now: one sealed earlier
// (before a restart, say by the previous release during a rolling
// upgrade) cannot say which provider verified it, and starts again.
func (c *Connection) vouchesFor(p *pendingLogin) bool {
	if p.Vouch != "" {
		return p.Vouch == c.vouch
	}
	return p.AuthAt > c.vouchSince.Unix()
}

// loadErrorText is a connector's own message without the prefixes
// Caddy's module loader puts before it ("loading module 'oidc':
// provision jit_auth.connectors.oidc: "), which say nothing the
// connection's name and the message do not, so the error reads as the
// fix. Errors of another shape are kept whole.
func loadErrorText(err error, kind string) string {
	msg := err.Error()
	id := "jit_auth.connectors." + kind
	msg = strings.TrimPrefix(msg, "loading module '"+kind+"': ")
	for _, p := range []string{"provision " + id + ": ", id + ": invalid configuration: "} {
		if strings.HasPrefix(msg, p) {
			return strings.TrimPrefix(msg, p)
		}
	}
	if strings.HasPrefix(msg, "unknown module: "+id) {
		return fmt.Sprintf("unknown connector kind %q: no module jit_auth.connectors.%s is in this Caddy (see `caddy list-modules`; build Caddy with the module that provides it)", kind, kind)
	}
	return msg
}
