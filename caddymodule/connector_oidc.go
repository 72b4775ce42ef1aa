package caddymodule

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// oidcConnector logs in through any OpenID Connect issuer, found by
// discovery. goth's OpenID Connect provider decodes ID tokens without
// verifying them, so this connector verifies them itself (S5): signature
// against the issuer's JWKS, iss, aud, exp, iat and nonce, with PKCE S256.
type oidcConnector struct {
	issuer       string
	clientID     string
	clientSecret string
	scopes       []string
	client       *http.Client
	logger       *zap.Logger

	// Discovery may fail at start-up (provider down); it is then retried
	// on the next login, at most once per retryInterval.
	mu        sync.Mutex
	provider  *oidc.Provider
	lastTry   time.Time
	lastError error
	// Built once per discovery and shared by every login: the verifier
	// caches the issuer's signing keys, the oauth2 config remembers how
	// the token endpoint wants client credentials sent.
	verifier *oidc.IDTokenVerifier
	config   *oauth2.Config
	// signatureOnly checks nothing but the signature (and expiry is
	// skipped too): after a failed verification it tells a genuine token
	// issued for another audience or issuer, which only the
	// administrator can fix, from a defective one.
	signatureOnly *oidc.IDTokenVerifier
}

const (
	discoveryRetryInterval = 5 * time.Second
	providerTimeout        = 10 * time.Second
	// maxIATSkew is how far in the future an ID token's iat may lie.
	maxIATSkew = 5 * time.Minute
)

func newOIDCConnector(issuer, clientID, clientSecret string, scopes []string, logger *zap.Logger) *oidcConnector {
	return &oidcConnector{
		issuer:       issuer,
		clientID:     clientID,
		clientSecret: clientSecret,
		scopes:       scopes,
		client:       &http.Client{Timeout: providerTimeout},
		logger:       logger,
	}
}

// discover returns the provider metadata, the ID token verifier and the
// OAuth 2 config, fetching the metadata if needed.
func (c *oidcConnector) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, *oauth2.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, c.verifier, c.config, nil
	}
	if !c.lastTry.IsZero() && time.Since(c.lastTry) < discoveryRetryInterval {
		var mc *misconfiguration
		if errors.As(c.lastError, &mc) {
			return nil, nil, nil, c.lastError
		}
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s failed recently: %v", errProviderUnavailable, c.issuer, c.lastError)
	}
	c.lastTry = time.Now()
	// The provider keeps this context for fetching JWKS later, so it must
	// not be the request's (cancelled when the request ends); the client's
	// timeout bounds each fetch.
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), c.client), c.issuer)
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		c.lastError = &misconfiguration{
			step: "discovery",
			said: fmt.Sprintf("the discovery document at %s names the issuer %q", c.issuer, mismatch.Discovered),
			fix:  fmt.Sprintf("set its issuer to %q, exactly as the discovery document states it", mismatch.Discovered),
		}
		return nil, nil, nil, c.lastError
	}
	if err != nil {
		c.lastError = err
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s: %v", errProviderUnavailable, c.issuer, err)
	}
	c.provider = p
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.clientID})
	c.signatureOnly = p.Verifier(&oidc.Config{SkipClientIDCheck: true, SkipIssuerCheck: true, SkipExpiryCheck: true})
	// No RedirectURL here: each site sends its own (redirectParam).
	c.config = &oauth2.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		Endpoint:     p.Endpoint(),
		Scopes:       c.scopes,
	}
	c.lastError = nil
	return p, c.verifier, c.config, nil
}

// redirectParam sends a login's redirect URI, in the authorization
// request and again, as required, in the token request.
func redirectParam(uri string) oauth2.AuthCodeOption {
	return oauth2.SetAuthURLParam("redirect_uri", uri)
}

func (c *oidcConnector) authURL(ctx context.Context, f *flowState) (string, error) {
	_, _, cfg, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	f.Verifier = oauth2.GenerateVerifier()
	f.Nonce = randomToken(32)
	return cfg.AuthCodeURL(f.State,
		redirectParam(f.RedirectURI),
		oauth2.S256ChallengeOption(f.Verifier),
		oidc.Nonce(f.Nonce),
	), nil
}

func (c *oidcConnector) exchange(ctx context.Context, f *flowState, query url.Values) (provisioner.Claims, error) {
	p, verifier, cfg, err := c.discover(ctx)
	if err != nil {
		return provisioner.Claims{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, c.client), providerTimeout)
	defer cancel()

	tok, err := cfg.Exchange(ctx, query.Get("code"), redirectParam(f.RedirectURI), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return provisioner.Claims{}, classifyTokenError(err, oidcCredentials, f.RedirectURI, c.clientSecret, query.Get("code"), f.Verifier)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: token response has no id_token", errProviderRejected)
	}
	if len(rawID) > maxIDTokenLength {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token is larger than %d bytes", errProviderRejected, maxIDTokenLength)
	}
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		if mc := c.tokenMisconfiguration(ctx, rawID); mc != nil {
			return provisioner.Claims{}, mc
		}
		return provisioner.Claims{}, fmt.Errorf("%w: id_token: %v", errProviderRejected, err)
	}
	if idt.Expiry.IsZero() {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token has no exp", errProviderRejected)
	}
	if idt.IssuedAt.IsZero() || idt.IssuedAt.After(time.Now().Add(maxIATSkew)) {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token iat is missing or in the future", errProviderRejected)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 || f.Nonce == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token nonce does not match this login", errProviderRejected)
	}

	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token claims: %v", errProviderRejected, err)
	}
	// Many providers put profile claims only in userinfo. The ID token's
	// own claims win where both speak, as they are signed.
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			c.logger.Warn("userinfo request failed; using ID token claims only",
				zap.String("issuer", c.issuer), zap.Error(redactErr(err)))
		} else if ui.Subject != idt.Subject {
			return provisioner.Claims{}, fmt.Errorf("%w: userinfo subject differs from id_token subject", errProviderRejected)
		} else {
			extra := map[string]any{}
			if err := ui.Claims(&extra); err == nil {
				for k, v := range extra {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	}
	return claimsFromMap(idt.Issuer, idt.Subject, claims)
}

// tokenMisconfiguration looks again at an ID token that failed
// verification. The token came straight from the token endpoint; if its
// signature is the issuer's but its audience or issuer is not what the
// connection says, the provider issued it that way, which is a
// misconfiguration (a wrong client_id, an issuer URL that differs from
// the one the provider signs with), not a forgery. nil means it is not.
func (c *oidcConnector) tokenMisconfiguration(ctx context.Context, rawID string) error {
	c.mu.Lock()
	v := c.signatureOnly
	c.mu.Unlock()
	idt, err := v.Verify(ctx, rawID)
	if err != nil {
		return nil
	}
	// go-oidc lets Google's scheme-less issuer through; so do we.
	if idt.Issuer != c.issuer && !(c.issuer == "https://accounts.google.com" && idt.Issuer == "accounts.google.com") {
		return &misconfiguration{
			step: "id_token",
			said: fmt.Sprintf("the ID token is signed by the issuer's key but names the issuer %q", idt.Issuer),
			fix:  fmt.Sprintf("check its issuer: the provider issues ID tokens as %q", idt.Issuer),
		}
	}
	if !slices.Contains(idt.Audience, c.clientID) {
		return &misconfiguration{
			step: "id_token",
			said: fmt.Sprintf("the ID token is for the audience %q, not for client_id %q", idt.Audience, c.clientID),
			fix:  "check its client_id: it must be the client ID the provider puts in the ID token's aud",
		}
	}
	return nil
}

// maxIDTokenLength bounds what we are willing to parse.
const maxIDTokenLength = 64 << 10

// claimsFromMap reads the standard OpenID Connect claims. Odd types are
// ignored rather than trusted: email_verified counts only as the boolean
// true or the string "true" (some providers send strings).
func claimsFromMap(issuer, subject string, m map[string]any) (provisioner.Claims, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: claims: %v", errProviderRejected, err)
	}
	c := provisioner.Claims{
		Issuer:        issuer,
		Subject:       subject,
		Email:         stringClaim(m, "email"),
		EmailVerified: boolClaim(m, "email_verified"),
		// Present with a type we cannot read counts as said (false):
		// trust_email must not overrule a provider's odd "no".
		EmailVerifiedKnown: m["email_verified"] != nil,
		Name:               stringClaim(m, "name"),
		GivenName:          stringClaim(m, "given_name"),
		FamilyName:         stringClaim(m, "family_name"),
		PreferredUsername:  stringClaim(m, "preferred_username"),
		Picture:            stringClaim(m, "picture"),
		Groups:             stringsClaim(m, "groups"),
		Raw:                raw,
	}
	if c.Subject == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: no subject", errProviderRejected)
	}
	if c.Name == "" {
		c.Name = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	return c, nil
}

func stringClaim(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func boolClaim(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func stringsClaim(m map[string]any, k string) []string {
	switch v := m[k].(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
