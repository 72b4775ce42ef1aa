package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/markbates/goth"
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
	"golang.org/x/oauth2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// ProviderConfig configures a connection through one of goth's OAuth
// providers (GitHub, Google, GitLab, …).
type ProviderConfig struct {
	// Name is the goth provider: amazon, auth0, bitbucket, digitalocean,
	// discord, facebook, gitea, github, gitlab, google, heroku, linkedin,
	// microsoftonline, nextcloud, okta, slack or twitch.
	Name string `json:"name,omitempty"`
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
	// AuthURL, TokenURL and ProfileURL replace the provider's default
	// endpoints, for self-hosted instances (GitHub Enterprise, GitLab,
	// Gitea). They must be given together.
	AuthURL    string `json:"auth_url,omitempty"`
	TokenURL   string `json:"token_url,omitempty"`
	ProfileURL string `json:"profile_url,omitempty"`
	// EmailURL replaces GitHub's email endpoint (GitHub Enterprise).
	EmailURL string `json:"email_url,omitempty"`
}

// gothFactory builds a goth provider for one callback URL. Providers are
// built per login rather than registered in goth's process-wide registry,
// so reloads, several sites and two connections of one provider type
// never see each other's configuration.
type gothFactory func(pc ProviderConfig, callback string, scopes []string) (goth.Provider, error)

func customURLs(pc ProviderConfig) bool { return pc.AuthURL != "" }

func needBaseURL(pc ProviderConfig) error {
	if pc.BaseURL == "" {
		return fmt.Errorf("provider %s needs base_url", pc.Name)
	}
	return nil
}

var gothFactories = map[string]gothFactory{
	"amazon": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return amazon.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"auth0": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return auth0.New(pc.Key, pc.Secret, cb, pc.BaseURL, s...), needBaseURL(pc)
	},
	"bitbucket": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return bitbucket.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"digitalocean": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return digitalocean.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"discord": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return discord.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"facebook": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return facebook.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"gitea": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		if customURLs(pc) {
			return gitea.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, s...), nil
		}
		return gitea.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"github": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		if customURLs(pc) {
			return github.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, pc.EmailURL, s...), nil
		}
		return github.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"gitlab": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		if customURLs(pc) {
			return gitlab.NewCustomisedURL(pc.Key, pc.Secret, cb, pc.AuthURL, pc.TokenURL, pc.ProfileURL, s...), nil
		}
		return gitlab.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"google": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return google.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"heroku": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return heroku.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"linkedin": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return linkedin.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"microsoftonline": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return microsoftonline.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"nextcloud": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return nextcloud.NewCustomisedDNS(pc.Key, pc.Secret, cb, pc.BaseURL, s...), needBaseURL(pc)
	},
	"okta": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return okta.New(pc.Key, pc.Secret, pc.BaseURL, cb, s...), needBaseURL(pc)
	},
	"slack": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return slack.New(pc.Key, pc.Secret, cb, s...), nil
	},
	"twitch": func(pc ProviderConfig, cb string, s []string) (goth.Provider, error) {
		return twitch.New(pc.Key, pc.Secret, cb, s...), nil
	},
}

// defaultProviderScopes apply where goth's own defaults leave out the
// email address.
var defaultProviderScopes = map[string][]string{
	"github": {"read:user", "user:email"},
}

// gothProviderNames lists the supported provider names, for messages.
func gothProviderNames() string {
	names := make([]string, 0, len(gothFactories))
	for n := range gothFactories {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// gothConnector logs in through a goth provider. goth's providers do not
// take a PKCE verifier at the token exchange, so these logins rest on the
// state bound to the browser's sealed flow cookie (S4) and on the client
// secret.
type gothConnector struct {
	// cfg is the connection's provider config with Key and Secret
	// resolved (see resolveSecret); it is never written back.
	cfg     ProviderConfig
	factory gothFactory
	scopes  []string
	client  *http.Client
	// logger, if set, hears why a GitHub email could not be checked.
	logger *zap.Logger
}

func (c *gothConnector) provider(callback string) (goth.Provider, error) {
	p, err := c.factory(c.cfg, callback, c.scopes)
	if err != nil {
		return nil, err
	}
	// Most goth providers take their HTTP client in an exported field;
	// set ours so every call has a timeout.
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("HTTPClient"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(c.client) {
			f.Set(reflect.ValueOf(c.client))
		}
	}
	return p, nil
}

func (c *gothConnector) authURL(_ context.Context, f *flowState) (string, error) {
	p, err := c.provider(f.RedirectURI)
	if err != nil {
		return "", err
	}
	sess, err := p.BeginAuth(f.State)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errProviderUnavailable, redactErr(err))
	}
	u, err := sess.GetAuthURL()
	if err != nil {
		return "", fmt.Errorf("%w: %v", errProviderUnavailable, err)
	}
	f.Provider = sess.Marshal()
	return u, nil
}

func (c *gothConnector) exchange(ctx context.Context, f *flowState, query url.Values) (provisioner.Claims, error) {
	p, err := c.provider(f.RedirectURI)
	if err != nil {
		return provisioner.Claims{}, err
	}
	sess, err := p.UnmarshalSession(f.Provider)
	if err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: provider session: %v", errProviderRejected, err)
	}
	if _, err := sess.Authorize(p, query); err != nil {
		return provisioner.Claims{}, classifyTokenError(err, gothCredentials, f.RedirectURI, c.cfg.Secret, query.Get("code"))
	}
	isGitHub := c.cfg.Name == "github"
	u, err := p.FetchUser(sess)
	// goth's github provider asks the emails endpoint itself when the
	// profile has no public email, and fails the whole login when that
	// call fails or finds no primary verified address. The profile was
	// read by then (goth sets UserID only after parsing it); the
	// connector asks that endpoint below and decides about the email.
	if err != nil && !(isGitHub && u.UserID != "" && u.Email == "") {
		return provisioner.Claims{}, classifyProviderError("fetching user", err)
	}
	raw, _ := json.Marshal(u.RawData)
	claims := provisioner.Claims{
		Issuer:            c.cfg.Name,
		Subject:           u.UserID,
		Email:             u.Email,
		Name:              u.Name,
		GivenName:         u.FirstName,
		FamilyName:        u.LastName,
		PreferredUsername: u.NickName,
		Picture:           u.AvatarURL,
		Raw:               raw,
	}
	// goth's GitHub provider formats a missing numeric id as "0": every
	// such answer would share one identity.
	if claims.Subject == "" || (isGitHub && claims.Subject == "0") {
		return provisioner.Claims{}, fmt.Errorf("%w: provider returned no user ID", errProviderRejected)
	}
	if isGitHub {
		c.githubEmail(ctx, sess, &claims)
	} else {
		claims.EmailVerified, claims.EmailVerifiedKnown = gothEmailVerified(u.RawData)
	}
	return claims, nil
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
		verified = verified && boolClaim(raw, k)
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
func (c *gothConnector) githubEmail(ctx context.Context, sess goth.Session, claims *provisioner.Claims) {
	claims.EmailVerified, claims.EmailVerifiedKnown = false, false
	endpoint := c.cfg.EmailURL
	if endpoint == "" {
		if customURLs(c.cfg) {
			// A GitHub Enterprise connection without email_url: its
			// token must not go to github.com.
			c.warn("GitHub emails endpoint not asked: set email_url with custom URLs; email treated as unverified")
			return
		}
		endpoint = githubEmailsURL
	}
	gs, ok := sess.(*github.Session)
	if !ok || gs.AccessToken == "" {
		return
	}
	addr, err := c.githubPrimaryVerified(ctx, endpoint, gs.AccessToken)
	if err != nil {
		c.warn("GitHub emails request failed; email treated as unverified", zap.Error(err))
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
func (c *gothConnector) githubPrimaryVerified(ctx context.Context, endpoint, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return "", errors.New("bad email_url")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	client := c.client
	if client == nil {
		client = &http.Client{Timeout: providerTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGitHubEmailsBody+1))
	if err != nil {
		return "", redactErr(err)
	}
	if len(body) > maxGitHubEmailsBody {
		return "", errors.New("response too large")
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

func (c *gothConnector) warn(msg string, fields ...zap.Field) {
	if c.logger != nil {
		c.logger.Warn(msg, fields...)
	}
}

// classifyProviderError tells a provider outage from a refusal. Token
// requests go through classifyTokenError, which also recognises
// misconfigurations.
func classifyProviderError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		return fmt.Errorf("%w: %s: %s", errProviderRejected, what, re.ErrorCode)
	}
	if re != nil {
		// A RetrieveError prints the response body, which may echo
		// what was sent (S13).
		return fmt.Errorf("%w: %s: %s", errProviderUnavailable, what, providerSaid(re.ErrorCode, ""))
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return fmt.Errorf("%w: %s: %v", errProviderUnavailable, what, redactErr(err))
	}
	return fmt.Errorf("%w: %s: %v", errProviderRejected, what, redactErr(err))
}
