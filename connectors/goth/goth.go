// Package goth is the jit_auth.connectors.goth module: login through one
// of goth's OAuth providers (GitHub, Google, GitLab, …).
package goth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	gothlib "github.com/markbates/goth"
	"github.com/markbates/goth/providers/amazon"
	"github.com/markbates/goth/providers/auth0"
	"github.com/markbates/goth/providers/bitbucket"
	"github.com/markbates/goth/providers/digitalocean"
	"github.com/markbates/goth/providers/discord"
	"github.com/markbates/goth/providers/facebook"
	"github.com/markbates/goth/providers/gitea"
	"github.com/markbates/goth/providers/github"
	"github.com/markbates/goth/providers/gitlab"
	"github.com/markbates/goth/providers/google"
	"github.com/markbates/goth/providers/heroku"
	"github.com/markbates/goth/providers/linkedin"
	"github.com/markbates/goth/providers/microsoftonline"
	"github.com/markbates/goth/providers/nextcloud"
	"github.com/markbates/goth/providers/okta"
	"github.com/markbates/goth/providers/slack"
	"github.com/markbates/goth/providers/twitch"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/secret"
)

func init() {
	caddy.RegisterModule(Goth{})
}

// Goth logs in through one of goth's OAuth providers. goth's providers
// do not take a PKCE verifier at the token exchange, so these logins
// rest on the state bound to the browser's sealed flow cookie (S4) and
// on the client secret.
type Goth struct {
	// Provider is the goth provider: amazon, auth0, bitbucket,
	// digitalocean, discord, facebook, gitea, github, gitlab, google,
	// heroku, linkedin, microsoftonline, nextcloud, okta, slack or twitch.
	Provider string `json:"provider,omitempty"`
	// Key is the OAuth client ID; it may be a placeholder such as
	// {env.GITHUB_KEY}.
	Key string `json:"key,omitempty"`
	// Secret is the OAuth client secret. Give it as a placeholder that
	// Caddy resolves when it loads the config, {env.GITHUB_SECRET} or
	// {file./run/secrets/github} (one trailing newline is dropped), so
	// the secret is never part of the config. An unset variable or
	// unreadable file stops the config from loading.
	Secret string `json:"secret,omitempty"`
	// BaseURL is the provider's own address, for providers that are not
	// a single public service: the Okta org URL, the Auth0 domain, the
	// Nextcloud server.
	BaseURL string `json:"base_url,omitempty"`
	// AuthURL replaces the provider's authorization endpoint, for
	// self-hosted instances (GitHub Enterprise, GitLab, Gitea); it is
	// given together with TokenURL and ProfileURL.
	AuthURL string `json:"auth_url,omitempty"`
	// TokenURL replaces the provider's token endpoint (with AuthURL).
	TokenURL string `json:"token_url,omitempty"`
	// ProfileURL replaces the provider's profile endpoint (with AuthURL).
	ProfileURL string `json:"profile_url,omitempty"`
	// EmailURL replaces GitHub's email endpoint (GitHub Enterprise).
	EmailURL string `json:"email_url,omitempty"`
	// Scopes requested from the provider. Default for GitHub: read:user
	// user:email (without it GitHub hides private emails); for other
	// providers, goth's defaults.
	Scopes []string `json:"scopes,omitempty"`

	// cfg is the config with Key and Secret resolved; it is never
	// written back.
	cfg     *Goth
	factory gothFactory
	scopes  []string
	// issuer is the Issuer of every login: the provider's name, with
	// the configured instance (instanceIssuer).
	issuer string
	client *http.Client
	// logger, if set, hears why a GitHub email could not be checked.
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Goth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.connectors.goth",
		New: func() caddy.Module { return new(Goth) },
	}
}

// providerTimeout bounds every call to the provider.
const providerTimeout = 10 * time.Second

// credentials are this connector's names for its client ID and secret.
var credentials = connector.CredentialNames{ID: "key", Secret: "secret"}

// Provision resolves the credentials' placeholders.
func (g *Goth) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.client = connector.NewProviderClient(providerTimeout)
	g.Provider = strings.ToLower(g.Provider)
	g.factory = gothFactories[g.Provider]
	g.scopes = g.Scopes
	if len(g.scopes) == 0 {
		g.scopes = defaultProviderScopes[g.Provider]
	}
	resolved := *g
	g.cfg = &resolved
	g.issuer = instanceIssuer(*g)
	var errKey, errSecret error
	g.cfg.Key, errKey = secret.Resolve("key", g.Key)
	g.cfg.Secret, errSecret = secret.Resolve("secret", g.Secret)
	if g.Provider == "auth0" {
		// Checked by Validate.
		g.cfg.BaseURL, _ = auth0Domain(g.BaseURL)
	}
	return errors.Join(errKey, errSecret)
}

// absoluteHTTPURL reports whether s is an absolute http or https URL
// with a host.
func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// auth0Domain is the domain goth's auth0 provider takes of an auth0
// base_url: goth puts "https://" before it itself, so a base_url written
// as the tenant's URL (https://tenant.eu.auth0.com, as okta's is) gave
// every sign-in the address https://https://tenant.eu.auth0.com/…, which
// no browser reaches. A URL is taken only as https://<domain>[/].
func auth0Domain(baseURL string) (string, error) {
	if !strings.Contains(baseURL, "://") {
		return baseURL, nil
	}
	u, err := url.Parse(baseURL)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("auth0 base_url %q: give the tenant's domain (tenant.eu.auth0.com) or https://<domain>, without a path", baseURL)
	}
	return u.Host, nil
}

// Validate checks the provider name, the credentials and the URLs.
func (g *Goth) Validate() error {
	if g.factory == nil {
		return fmt.Errorf("unknown provider %q; known providers: %s (or use 'oidc' for any OpenID Connect issuer)", g.Provider, providerNames())
	}
	if g.Key == "" || g.Secret == "" {
		return fmt.Errorf("provider %s needs a key and a secret", g.Provider)
	}
	if (g.AuthURL != "" || g.TokenURL != "" || g.ProfileURL != "") && (g.AuthURL == "" || g.TokenURL == "" || g.ProfileURL == "") {
		return errors.New("auth_url, token_url and profile_url must be set together")
	}
	// A URL the provider's factory does not read would be ignored, and
	// the sign-ins would go to the provider's public site (github.com
	// for a base_url meant for GitHub Enterprise), where anyone has an
	// account.
	if g.BaseURL != "" && !baseURLProviders[g.Provider] {
		return fmt.Errorf("provider %s does not use base_url (only auth0, nextcloud and okta do); for a self-hosted github, gitlab or gitea give auth_url, token_url and profile_url instead", g.Provider)
	}
	if g.Provider == "auth0" {
		if _, err := auth0Domain(g.BaseURL); err != nil {
			return err
		}
	}
	// As the oidc connector refuses such an issuer: a URL without a
	// scheme or a host loaded, and every callback then failed as
	// "provider unavailable" (an unsupported protocol scheme).
	baseURL := g.BaseURL
	if g.Provider == "auth0" {
		baseURL = "" // a domain, checked above
	}
	for _, u := range []struct{ option, value string }{
		{"auth_url", g.AuthURL}, {"token_url", g.TokenURL}, {"profile_url", g.ProfileURL}, {"email_url", g.EmailURL}, {"base_url", baseURL},
	} {
		if u.value != "" && !absoluteHTTPURL(u.value) {
			return fmt.Errorf("provider %s: %s %q must be an absolute http(s) URL (https://host/path)", g.Provider, u.option, u.value)
		}
	}
	if customURLs(*g) && !customURLProviders[g.Provider] {
		return fmt.Errorf("provider %s does not use auth_url, token_url or profile_url (only github, gitlab and gitea do); for another provider of your own use the oidc connector", g.Provider)
	}
	if g.EmailURL != "" && (g.Provider != "github" || !customURLs(*g)) {
		return errors.New("email_url is used only by github with auth_url, token_url and profile_url (GitHub Enterprise)")
	}
	if _, err := g.factory(*g.cfg, "https://example.invalid/callback", g.scopes); err != nil {
		return err
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	goth <provider> <key> <secret> {
//		base_url    <url>
//		auth_url    <url>
//		token_url   <url>
//		profile_url <url>
//		email_url   <url>
//		scopes      <scope...>
//	}
//
// `provider` is accepted for `goth`, as connections were written before
// connectors were modules.
func (g *Goth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	kind := d.Val()
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("%s takes three arguments: %s <name> <key> <secret>, for example: %s github {env.GITHUB_KEY} {env.GITHUB_SECRET}", kind, kind, kind)
	}
	g.Provider, g.Key, g.Secret = strings.ToLower(args[0]), args[1], args[2]
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := g.UnmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalOption reads one option line of the goth block, at d's
// current token. It is exported because a connection written before
// connectors were modules has these lines at the connection level, and
// the connection's parser hands them here.
func (g *Goth) UnmarshalOption(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if opt == "scopes" {
		g.Scopes = d.RemainingArgs()
		if len(g.Scopes) == 0 {
			return d.ArgErr()
		}
		return nil
	}
	var dst *string
	switch opt {
	case "base_url":
		dst = &g.BaseURL
	case "auth_url":
		dst = &g.AuthURL
	case "token_url":
		dst = &g.TokenURL
	case "profile_url":
		dst = &g.ProfileURL
	case "email_url":
		dst = &g.EmailURL
	default:
		return d.Errf("unknown goth option %q; expected base_url, auth_url, token_url, profile_url, email_url or scopes", opt)
	}
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// instanceIssuer is the issuer of a connection's identities: the
// provider's name, and for a connection with a configured instance that
// instance, normalised ("gitlab|https://git.example.com"). The user IDs
// of two instances are unrelated: keyed by the provider's name alone, a
// connection repointed to another instance signed that instance's user
// 42 in as the old instance's. The instance is base_url, or profile_url,
// the endpoint that says who the user is. A connection on the
// provider's own instance keeps the bare name it always had.
func instanceIssuer(pc Goth) string {
	instance := pc.BaseURL
	if customURLs(pc) {
		instance = pc.ProfileURL
	}
	if instance == "" {
		return pc.Provider
	}
	return pc.Provider + "|" + normalInstance(instance)
}

// normalInstance is scheme://host/path of u, with the scheme and host
// in lower case, no default port, no trailing slash, no query. auth0's
// base_url is a bare domain, which goth prefixes with https://.
func normalInstance(u string) string {
	if !strings.Contains(u, "://") {
		u = "https://" + u
	}
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	host := strings.ToLower(p.Host)
	if port := p.Port(); (p.Scheme == "https" && port == "443") || (p.Scheme == "http" && port == "80") {
		host = strings.ToLower(p.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return strings.ToLower(p.Scheme) + "://" + host + strings.TrimRight(p.EscapedPath(), "/")
}

// LegacyIssuer implements connector.LegacyIssuer: earlier releases keyed
// every identity by the provider's name, so what a connection with a
// configured instance stored is that instance's.
func (g *Goth) LegacyIssuer() (earlier, now string) { return g.Provider, g.issuer }

// gothFactory builds a goth provider for one callback URL. Providers are
// built per login rather than registered in goth's process-wide registry,
// so reloads, several sites and two connections of one provider type
// never see each other's configuration.
type gothFactory func(pc Goth, callback string, scopes []string) (gothlib.Provider, error)

func customURLs(pc Goth) bool { return pc.AuthURL != "" }

// baseURLProviders and customURLProviders are the providers whose
// factory below reads BaseURL, or AuthURL, TokenURL and ProfileURL.
var (
	baseURLProviders   = map[string]bool{"auth0": true, "nextcloud": true, "okta": true}
	customURLProviders = map[string]bool{"github": true, "gitlab": true, "gitea": true}
)

func needBaseURL(pc Goth) error {
	if pc.BaseURL == "" {
		return fmt.Errorf("provider %s needs base_url", pc.Provider)
	}
	return nil
}

var gothFactories = map[string]gothFactory{
	"amazon": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return amazon.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"auth0": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return auth0.New(pc.Key, pc.Secret, cb, pc.BaseURL, s...), needBaseURL(pc)
	},
	"bitbucket": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return bitbucket.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"digitalocean": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return digitalocean.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"discord": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return discord.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"facebook": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return facebook.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"gitea": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		if customURLs(pc) {
			return gitea.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, s...), nil
		}
		return gitea.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"github": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		if customURLs(pc) {
			return github.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, pc.EmailURL, s...), nil
		}
		return github.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"gitlab": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		if customURLs(pc) {
			return gitlab.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, s...), nil
		}
		return gitlab.NewCustomisedURL(pc.Key, pc.Secret, cb, gitlab.AuthURL, gitlab.TokenURL, gitlabProfileURL, s...), nil
	},
	"google": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return google.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"heroku": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return heroku.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"linkedin": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return linkedin.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"microsoftonline": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return microsoftonline.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"nextcloud": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return nextcloud.NewCustomisedDNS(pc.Key, pc.Secret, cb, pc.BaseURL, s...), needBaseURL(pc)
	},
	"okta": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return okta.New(pc.Key, pc.Secret, pc.BaseURL, cb, s...), needBaseURL(pc)
	},
	"slack": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return slack.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"twitch": func(pc Goth, cb string, s []string) (gothlib.Provider, error) {
		return twitch.New(pc.Key, pc.Secret, cb, s...), nil
	},
}

// gitlabProfileURL is gitlab.com's profile endpoint. goth's gitlab.New
// reads /api/v3/user, an API GitLab removed in 11.0 (it answers 410
// Gone): through it, no one could sign in.
const gitlabProfileURL = "https://gitlab.com/api/v4/user"

// numericUserID are the providers whose goth code formats the user's
// numeric id with strconv.Itoa, so that a profile without one gives "0"
// (every provider here that does; add one that does too).
var numericUserID = map[string]bool{"github": true, "gitlab": true, "gitea": true}

// defaultProviderScopes apply where goth's own defaults leave out the
// email address.
var defaultProviderScopes = map[string][]string{
	"github": {"read:user", "user:email"},
}

// providerNames lists the supported provider names, for messages.
func providerNames() string {
	names := make([]string, 0, len(gothFactories))
	for n := range gothFactories {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// tokenTimeout bounds redeeming the code (a variable for the tests).
var tokenTimeout = providerTimeout

// pendingExchanges bounds the token requests running at once, those the
// sign-ins gave up on included (authorizeWithin); a variable for the
// tests.
var pendingExchanges = make(chan struct{}, 256)

// errTokenTimeout is a token request that did not end within the
// provider timeout.
var errTokenTimeout = errors.New("the provider's token endpoint did not answer in time")

// authorizeWithin redeems the code (goth's Session.Authorize), giving up
// after timeout. Most goth providers make the request with the HTTP
// client provider() sets, which has the timeout; some (auth0, discord)
// use oauth2's context-free Exchange, so Go's default client without
// one: the sign-in must not wait on them for ever. Their request is left
// to end by itself; it holds a connection until the provider answers.
//
// Each request holds a slot of pendingExchanges until it ends, so that a
// provider that hangs (while anyone can make callbacks with flow cookies
// of their own) holds a bounded number of goroutines and connections;
// with every slot taken, a sign-in gives up at once, as on a timeout.
func authorizeWithin(timeout time.Duration, sess gothlib.Session, p gothlib.Provider, params gothlib.Params) error {
	slots := pendingExchanges
	select {
	case slots <- struct{}{}:
	default:
		return errTokenTimeout
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-slots }()
		_, err := sess.Authorize(p, params)
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errTokenTimeout
	}
}

func (g *Goth) provider(callback string) (gothlib.Provider, error) {
	p, err := g.factory(*g.cfg, callback, g.scopes)
	if err != nil {
		return nil, err
	}
	// Most goth providers take their HTTP client in an exported field;
	// set ours so every call has a timeout.
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("HTTPClient"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(g.client) {
			f.Set(reflect.ValueOf(g.client))
		}
	}
	return p, nil
}

// Begin starts goth's authorization with the login's state; goth's own
// session for this login (its request token or auth URL) is the state
// kept until the callback.
func (g *Goth) Begin(r *http.Request, login connector.Login) (string, []byte, error) {
	p, err := g.provider(login.RedirectURI)
	if err != nil {
		return "", nil, err
	}
	sess, err := p.BeginAuth(login.State)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s", connector.ErrUnavailable, connector.SaidErr(err, g.cfg.Secret))
	}
	u, err := sess.GetAuthURL()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", connector.ErrUnavailable, err)
	}
	return u, []byte(sess.Marshal()), nil
}

// Finish redeems the code through goth and reads the user, with
// GitHub's verified primary email asked of GitHub itself.
func (g *Goth) Finish(r *http.Request, login connector.Login, state []byte) (provisioner.Claims, error) {
	code, err := connector.AuthorizationResponse(r, credentials, login.RedirectURI)
	if err != nil {
		return provisioner.Claims{}, err
	}
	p, err := g.provider(login.RedirectURI)
	if err != nil {
		return provisioner.Claims{}, err
	}
	sess, err := p.UnmarshalSession(string(state))
	if err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: provider session: %v", connector.ErrRejected, err)
	}
	// goth's providers read the code (and some more) from the answer's
	// parameters: give them what the provider sent.
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		params = r.PostForm
	}
	if err := authorizeWithin(tokenTimeout, sess, p, params); errors.Is(err, errTokenTimeout) {
		return provisioner.Claims{}, fmt.Errorf("%w: %v", connector.ErrUnavailable, err)
	} else if err != nil {
		return provisioner.Claims{}, connector.TokenError(err, credentials, login.RedirectURI, g.cfg.Secret, code)
	}
	isGitHub := g.cfg.Provider == "github"
	u, err := p.FetchUser(sess)
	// goth's github provider asks the emails endpoint itself when the
	// profile has no public email, and fails the whole login when that
	// call fails or finds no primary verified address. The profile was
	// read by then (goth sets UserID only after parsing it); the
	// connector asks that endpoint below and decides about the email.
	if err != nil && !(isGitHub && u.UserID != "" && u.Email == "") {
		hide := append(sessionTokens(sess), g.cfg.Secret, code)
		return provisioner.Claims{}, connector.ProviderError("fetching user", err, hide...)
	}
	raw, _ := json.Marshal(u.RawData)
	claims := provisioner.Claims{
		Issuer:            g.issuer,
		Subject:           u.UserID,
		Email:             u.Email,
		Name:              u.Name,
		GivenName:         u.FirstName,
		FamilyName:        u.LastName,
		PreferredUsername: u.NickName,
		Picture:           u.AvatarURL,
		Raw:               raw,
	}
	// goth's providers with numeric IDs (GitHub, GitLab, Gitea) format a
	// missing or null id as "0": every such answer would share one
	// identity. Elsewhere "0" can be a real ID (a Nextcloud login name).
	if claims.Subject == "" || (numericUserID[g.cfg.Provider] && claims.Subject == "0") {
		return provisioner.Claims{}, fmt.Errorf("%w: provider returned no user ID", connector.ErrRejected)
	}
	switch {
	case isGitHub:
		g.githubEmail(r.Context(), sess, &claims)
	case g.cfg.Provider == "okta":
		g.oktaEmailVerified(r.Context(), sess, &claims)
	default:
		claims.EmailVerified, claims.EmailVerifiedKnown = gothEmailVerified(u.RawData)
	}
	return claims, nil
}

// sessionTokens are the tokens goth's session holds after the code
// exchange (AccessToken, RefreshToken, IDToken, by the names goth's
// OAuth 2 providers give them), to be removed from a provider's error
// text: a provider may quote the token it refused.
func sessionTokens(sess gothlib.Session) []string {
	var fields map[string]any
	if json.Unmarshal([]byte(sess.Marshal()), &fields) != nil {
		return nil
	}
	var tokens []string
	for k, v := range fields {
		if s, ok := v.(string); ok && s != "" && strings.Contains(strings.ToLower(k), "token") {
			tokens = append(tokens, s)
		}
	}
	return tokens
}

// gothEmailVerified reads the provider's own verified flag from its raw
// data (email_verified, or verified_email as Google's v2 userinfo has
// it); goth's User has none. known is whether the provider said anything
// there: a value of any type counts, so trust_email cannot overrule an
// odd "no". verified needs every value present to be true (the boolean
// or the string "true"). Where the provider says nothing, the email is
// unverified (S8).
func gothEmailVerified(raw map[string]any) (verified, known bool) {
	verified = true
	for _, k := range []string{"email_verified", "verified_email"} {
		if raw[k] == nil {
			continue
		}
		known = true
		verified = verified && connector.BoolClaim(raw, k)
	}
	return verified && known, known
}

// GitHub's email list: the default endpoint, and the most of its answer
// read.
const (
	githubEmailsURL     = "https://api.github.com/user/emails"
	maxGitHubEmailsBody = 1 << 20
)

// githubEmail sets the email of a GitHub login from GitHub's list of
// the user's addresses, the one place GitHub says which are verified:
// the primary address, verified. If the list has none, the profile's
// email stays, unverified. If GitHub does not answer usefully (the
// user:email scope was not granted, an outage, an odd body), the email
// stays and whether it is verified is unknown.
func (g *Goth) githubEmail(ctx context.Context, sess gothlib.Session, claims *provisioner.Claims) {
	claims.EmailVerified, claims.EmailVerifiedKnown = false, false
	endpoint := g.cfg.EmailURL
	if endpoint == "" {
		if customURLs(*g.cfg) {
			// A GitHub Enterprise connection without email_url: its
			// token must not go to github.com.
			g.warn("GitHub emails endpoint not asked: set email_url with custom URLs; email treated as unverified")
			return
		}
		endpoint = githubEmailsURL
	}
	gs, ok := sess.(*github.Session)
	if !ok || gs.AccessToken == "" {
		return
	}
	addr, err := g.githubPrimaryVerified(ctx, endpoint, gs.AccessToken)
	if err != nil {
		g.warn("GitHub emails request failed; email treated as unverified", zap.String("error", connector.SaidErr(err, gs.AccessToken)))
		return
	}
	claims.EmailVerifiedKnown = true
	if addr != "" {
		claims.Email, claims.EmailVerified = addr, true
	}
}

// githubPrimaryVerified returns the user's primary verified address
// from GitHub's email list, or "" when the list has none. Its errors
// carry nothing secret.
func (g *Goth) githubPrimaryVerified(ctx context.Context, endpoint, token string) (string, error) {
	body, err := g.getWithToken(ctx, endpoint, token, "application/vnd.github+json")
	if err != nil {
		return "", err
	}
	var list []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list == nil {
		return "", errors.New("response is not a list of email addresses")
	}
	for _, e := range list {
		if e.Primary && e.Verified && strings.TrimSpace(e.Email) != "" {
			return strings.TrimSpace(e.Email), nil
		}
	}
	return "", nil
}

// getWithToken reads endpoint's answer (at most maxGitHubEmailsBody
// bytes) with the access token, accepting accept. Its errors carry
// nothing secret.
func (g *Goth) getWithToken(ctx context.Context, endpoint, token, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, errors.New("bad URL")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", accept)
	client := g.client
	if client == nil {
		client = connector.NewProviderClient(providerTimeout)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, connector.RedactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGitHubEmailsBody+1))
	if err != nil {
		return nil, connector.RedactErr(err)
	}
	if len(body) > maxGitHubEmailsBody {
		return nil, errors.New("response too large")
	}
	return body, nil
}

// oktaUserinfoPath is where goth's okta provider asks who signed in,
// under base_url (okta.New).
const oktaUserinfoPath = "/oauth2/default/v1/userinfo"

// oktaEmailVerified sets whether the email of an Okta login is verified
// from Okta's userinfo answer: goth's okta provider keeps four of its
// fields as the raw data and drops email_verified, so the flag is asked
// of the same endpoint again. Okta always says; when its answer cannot
// be had, or is about another user or address, the email is unverified
// and said to be (trust_email, for providers that do not say, must not
// overrule an Okta "false" it never saw).
func (g *Goth) oktaEmailVerified(ctx context.Context, sess gothlib.Session, claims *provisioner.Claims) {
	claims.EmailVerified, claims.EmailVerifiedKnown = false, true
	if claims.Email == "" {
		return
	}
	oktaSess, ok := sess.(*okta.Session)
	if !ok || oktaSess.AccessToken == "" {
		return
	}
	body, err := g.getWithToken(ctx, g.cfg.BaseURL+oktaUserinfoPath, oktaSess.AccessToken, "application/json")
	var info map[string]any
	if err == nil && json.Unmarshal(body, &info) != nil {
		err = errors.New("response is not a JSON object")
	}
	if err != nil {
		g.warn("Okta userinfo request failed; email treated as unverified", zap.String("error", connector.SaidErr(err, oktaSess.AccessToken)))
		return
	}
	if connector.StringClaim(info, "sub") != claims.Subject || connector.StringClaim(info, "email") != claims.Email {
		g.warn("Okta userinfo answered about another user or address; email treated as unverified")
		return
	}
	claims.EmailVerified, _ = gothEmailVerified(info)
}

func (g *Goth) warn(msg string, fields ...zap.Field) {
	if g.logger != nil {
		g.logger.Warn(msg, fields...)
	}
}

// Interface guards
var (
	_ caddy.Provisioner      = (*Goth)(nil)
	_ caddy.Validator        = (*Goth)(nil)
	_ caddyfile.Unmarshaler  = (*Goth)(nil)
	_ connector.Connector    = (*Goth)(nil)
	_ connector.LegacyIssuer = (*Goth)(nil)
)
