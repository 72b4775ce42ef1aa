// Package oidc is the jit_auth.connectors.oidc module: login through any
// OpenID Connect issuer, found by discovery.
package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/secret"
)

func init() {
	caddy.RegisterModule(OIDC{})
}

// OIDC logs in through any OpenID Connect issuer, found by discovery.
// goth's OpenID Connect provider decodes ID tokens without verifying
// them, so this connector verifies them itself (S5): signature against
// the issuer's JWKS, iss, aud, exp, iat and nonce, with PKCE S256.
type OIDC struct {
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
	// Scopes requested from the provider. Default: openid email profile.
	Scopes []string `json:"scopes,omitempty"`

	// clientID and clientSecret are the credentials with their
	// placeholders resolved; the exported fields keep the placeholders.
	clientID, clientSecret string
	scopes                 []string
	client                 *http.Client
	logger                 *zap.Logger

	// Discovery may fail at start-up (provider down); it is then retried
	// on the next login, at most once per retryInterval. mu guards what
	// follows; it is a pointer so the module value can be copied before
	// Provision (Caddy's module registry does).
	mu        *sync.Mutex
	provider  *gooidc.Provider
	lastTry   time.Time
	lastError error
	// Built once per discovery and shared by every login: the verifier
	// caches the issuer's signing keys, the oauth2 config remembers how
	// the token endpoint wants client credentials sent.
	verifier *gooidc.IDTokenVerifier
	config   *oauth2.Config
	// keys holds the issuer's signing keys for every verifier of this
	// connection (ID, logout and bearer tokens); discovered says where
	// they are and which algorithms the issuer uses.
	keys       *keySet
	discovered providerKeys
	// signatureOnly checks nothing but the signature (and expiry is
	// skipped too): after a failed verification it tells a genuine token
	// issued for another audience or issuer, which only the
	// administrator can fix, from a defective one.
	signatureOnly *gooidc.IDTokenVerifier
}

// CaddyModule returns the Caddy module information.
func (OIDC) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.connectors.oidc",
		New: func() caddy.Module { return new(OIDC) },
	}
}

const (
	discoveryRetryInterval = 5 * time.Second
	providerTimeout        = 10 * time.Second
	// maxIATSkew is how far in the future an ID token's iat may lie.
	maxIATSkew = 5 * time.Minute
	// maxIDTokenAge is how far in the past a login's ID token's iat may
	// lie. The token carries the nonce of this login, so it was issued
	// after the login began: at most ten minutes ago (jit_auth's flow
	// lifetime, S4), plus the clock skew allowed the other way.
	maxIDTokenAge = 10*time.Minute + maxIATSkew
	// maxNotBeforeSkew is how far in the future a bearer token's nbf may
	// lie (go-oidc allows five minutes): only the disagreement of two
	// clocks, not a token meant for later.
	maxNotBeforeSkew = time.Minute
	// maxIDTokenLength bounds what we are willing to parse.
	maxIDTokenLength = 64 << 10
)

// credentials are this connector's names for its client ID and secret.
var credentials = connector.CredentialNames{ID: "client_id", Secret: "client_secret"}

// Provision resolves the credentials' placeholders. It does not contact
// the provider: discovery happens on first use and is retried, so Caddy
// starts even when a provider is down.
func (o *OIDC) Provision(ctx caddy.Context) error {
	o.logger = ctx.Logger()
	o.mu = new(sync.Mutex)
	o.client = connector.NewProviderClient(providerTimeout)
	o.scopes = o.Scopes
	if len(o.scopes) == 0 {
		o.scopes = []string{"openid", "email", "profile"}
	}
	if u, err := url.Parse(o.Issuer); err == nil && u.Scheme == "http" && !loopbackName(u.Hostname()) {
		// Discovery, the keys that verify ID tokens, the code exchange
		// and the client secret all go over this: anyone on the path can
		// sign anyone in. Container networks use it, so it is said, not
		// refused.
		o.logger.Warn("oidc issuer is plain http on a host other than loopback: whoever is on the network path can read the client secret and forge sign-ins; use https unless the path is a private network you trust",
			zap.String("issuer", o.Issuer))
	}
	var errID, errSecret error
	o.clientID, errID = secret.Resolve("client_id", o.ClientID)
	o.clientSecret, errSecret = secret.Resolve("client_secret", o.ClientSecret)
	return errors.Join(errID, errSecret)
}

// Validate checks the issuer, that both credentials are given, and
// that the scopes ask for OpenID Connect.
func (o *OIDC) Validate() error {
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("oidc issuer %q must be an absolute http(s) URL", o.Issuer)
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return errors.New("oidc needs a client_id and a client_secret")
	}
	// Without openid the provider answers as plain OAuth 2, with no ID
	// token, and every login would fail as an answer it cannot verify.
	// Scope values are case-sensitive (RFC 6749, section 3.3).
	if len(o.Scopes) > 0 && !slices.Contains(o.Scopes, "openid") {
		return fmt.Errorf("oidc scopes %q leave out openid: add it (scopes openid %s), or the provider sends no ID token and no login can succeed", o.Scopes, strings.Join(o.Scopes, " "))
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	oidc [<issuer> <client_id> <client_secret>] {
//		issuer        <url>
//		client_id     <id>
//		client_secret <secret>
//		scopes        <scope...>
//	}
func (o *OIDC) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the connector's name
	if args := d.RemainingArgs(); len(args) == 3 {
		o.Issuer, o.ClientID, o.ClientSecret = args[0], args[1], args[2]
	} else if len(args) != 0 {
		return d.Errf("oidc takes three arguments: oidc <issuer> <client_id> <client_secret>")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := o.UnmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalOption reads one option line of the oidc block, at d's
// current token. It is exported because a connection written before
// connectors were modules has its scopes line at the connection level,
// and the connection's parser hands it here.
func (o *OIDC) UnmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "issuer":
		if !d.AllArgs(&o.Issuer) {
			return d.ArgErr()
		}
	case "client_id":
		if !d.AllArgs(&o.ClientID) {
			return d.ArgErr()
		}
	case "client_secret":
		if !d.AllArgs(&o.ClientSecret) {
			return d.ArgErr()
		}
	case "scopes":
		o.Scopes = d.RemainingArgs()
		if len(o.Scopes) == 0 {
			return d.ArgErr()
		}
	default:
		return d.Errf("unknown oidc option %q; expected issuer, client_id, client_secret or scopes", opt)
	}
	return nil
}

// loginState is what a login keeps between Begin and Finish, sealed in
// the browser's flow cookie.
type loginState struct {
	// Verifier is the PKCE code verifier (S256 challenge sent).
	Verifier string `json:"v"`
	// Nonce is the nonce expected in the ID token.
	Nonce string `json:"n"`
}

// discover returns the provider metadata, the ID token verifier and the
// OAuth 2 config, fetching the metadata if needed.
func (o *OIDC) discover(ctx context.Context) (*gooidc.Provider, *gooidc.IDTokenVerifier, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.verifier, o.config, nil
	}
	if !o.lastTry.IsZero() && time.Since(o.lastTry) < discoveryRetryInterval {
		var mc *connector.Misconfiguration
		if errors.As(o.lastError, &mc) {
			return nil, nil, nil, o.lastError
		}
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s failed recently: %v", connector.ErrUnavailable, o.Issuer, o.lastError)
	}
	o.lastTry = time.Now()
	// The provider keeps this context for fetching JWKS later, so it must
	// not be the request's (cancelled when the request ends); the client's
	// timeout bounds each fetch.
	p, err := gooidc.NewProvider(gooidc.ClientContext(context.WithoutCancel(ctx), o.client), o.Issuer)
	var mismatch *gooidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		o.lastError = &connector.Misconfiguration{
			Step: "discovery",
			Said: fmt.Sprintf("the discovery document at %s names the issuer %q", o.Issuer, mismatch.Discovered),
			Fix:  fmt.Sprintf("set its issuer to %q, exactly as the discovery document states it", mismatch.Discovered),
		}
		return nil, nil, nil, o.lastError
	}
	if err != nil {
		// go-oidc's error quotes the whole answer ("<status>: <body>"):
		// kept bounded, as every provider error that reaches a log.
		o.lastError = errors.New(connector.SaidErr(err))
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s: %v", connector.ErrUnavailable, o.Issuer, o.lastError)
	}
	var pk providerKeys
	if err := p.Claims(&pk); err != nil {
		o.lastError = errors.New(connector.SaidErr(err))
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s: %v", connector.ErrUnavailable, o.Issuer, o.lastError)
	}
	if pk.JWKSURL == "" {
		// Nothing could ever verify an ID token: not an outage to wait
		// out, but an issuer URL that is not an OpenID provider's.
		o.lastError = &connector.Misconfiguration{
			Step: "discovery",
			Said: fmt.Sprintf("the discovery document at %s names no jwks_uri (the keys that sign ID tokens)", o.Issuer),
			Fix:  "check that its issuer is the OpenID Connect provider's (the URL before /.well-known/openid-configuration); a plain OAuth 2 provider needs a goth connection instead",
		}
		return nil, nil, nil, o.lastError
	}
	o.provider, o.discovered, o.keys = p, pk, newKeySet(pk.JWKSURL, o.client)
	o.verifier = o.newVerifier(gooidc.Config{ClientID: o.clientID})
	o.signatureOnly = o.newVerifier(gooidc.Config{SkipClientIDCheck: true, SkipIssuerCheck: true, SkipExpiryCheck: true})
	// No RedirectURL here: each site sends its own (redirectParam).
	o.config = &oauth2.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		Endpoint:     p.Endpoint(),
		Scopes:       o.scopes,
	}
	o.lastError = nil
	return p, o.verifier, o.config, nil
}

// newVerifier is a verifier with the issuer's keys (see keySet), for a
// connection discovered already.
func (o *OIDC) newVerifier(config gooidc.Config) *gooidc.IDTokenVerifier {
	return o.discovered.verifier(o.keys, config)
}

// verify is v.Verify, except that a token whose signature could not be
// checked because the issuer's keys cannot be read fails with
// ErrUnavailable: the provider is down, and the token may well be
// valid. Any other failure is go-oidc's error, for the caller to wrap.
func verify(ctx context.Context, v *gooidc.IDTokenVerifier, token string) (*gooidc.IDToken, error) {
	ctx, outage := withOutageReport(ctx)
	t, err := v.Verify(ctx, token)
	if err != nil && outage.err != nil {
		return nil, fmt.Errorf("%w: %s", connector.ErrUnavailable, connector.SaidErr(outage.err))
	}
	return t, err
}

// redirectParam sends a login's redirect URI, in the authorization
// request and again, as required, in the token request.
func redirectParam(uri string) oauth2.AuthCodeOption {
	return oauth2.SetAuthURLParam("redirect_uri", uri)
}

// Begin sends the browser to the issuer's authorization endpoint with a
// fresh PKCE verifier and nonce, which the login keeps.
func (o *OIDC) Begin(r *http.Request, login connector.Login) (string, []byte, error) {
	_, _, cfg, err := o.discover(r.Context())
	if err != nil {
		return "", nil, err
	}
	st := loginState{Verifier: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier()}
	state, err := json.Marshal(st)
	if err != nil {
		return "", nil, err
	}
	return cfg.AuthCodeURL(login.State,
		redirectParam(login.RedirectURI),
		oauth2.S256ChallengeOption(st.Verifier),
		gooidc.Nonce(st.Nonce),
	), state, nil
}

// Finish redeems the code with the login's verifier, verifies the ID
// token, and adds what userinfo says where the ID token is silent.
func (o *OIDC) Finish(r *http.Request, login connector.Login, state []byte) (provisioner.Claims, error) {
	var st loginState
	if err := json.Unmarshal(state, &st); err != nil || st.Verifier == "" || st.Nonce == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: login state unreadable", connector.ErrRejected)
	}
	answer := connector.ResponseValues(r)
	if err := o.checkResponseIssuer(answer["iss"]); err != nil {
		return provisioner.Claims{}, err
	}
	code, err := connector.AuthorizationResponse(r, credentials, login.RedirectURI)
	if err != nil {
		return provisioner.Claims{}, err
	}
	p, verifier, cfg, err := o.discover(r.Context())
	if err != nil {
		return provisioner.Claims{}, err
	}
	if len(answer["iss"]) == 0 && namesItself(p) {
		return provisioner.Claims{}, fmt.Errorf("%w: the authorization response has no iss, which the issuer says it always sends (RFC 9207): it may be another provider's answer", connector.ErrRejected)
	}
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(r.Context(), o.client), providerTimeout)
	defer cancel()

	tok, err := cfg.Exchange(ctx, code, redirectParam(login.RedirectURI), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return provisioner.Claims{}, connector.TokenError(err, credentials, login.RedirectURI, o.clientSecret, code, st.Verifier)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: token response has no id_token", connector.ErrRejected)
	}
	if len(rawID) > maxIDTokenLength {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token is larger than %d bytes", connector.ErrRejected, maxIDTokenLength)
	}
	idt, err := verify(ctx, verifier, rawID)
	if errors.Is(err, connector.ErrUnavailable) {
		return provisioner.Claims{}, err
	}
	if err != nil {
		if mc := o.tokenMisconfiguration(ctx, rawID); mc != nil {
			return provisioner.Claims{}, mc
		}
		return provisioner.Claims{}, fmt.Errorf("%w: id_token: %v", connector.ErrRejected, err)
	}
	// Before any of go-oidc's fields is trusted (a "Nonce" would be its
	// nonce).
	claims, err := claimsOf("id_token", idt, structClaims)
	if err != nil {
		return provisioner.Claims{}, err
	}
	if idt.Expiry.IsZero() {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token has no exp", connector.ErrRejected)
	}
	// An iat too large for a Unix time reads as the distant past (go-oidc
	// converts it with int64()): the lower bound refuses it with those
	// that are missing or older than the login.
	if now := time.Now(); idt.IssuedAt.Before(now.Add(-maxIDTokenAge)) || idt.IssuedAt.After(now.Add(maxIATSkew)) {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token iat is missing, or not within this login (more than %s ago or %s ahead)", connector.ErrRejected, maxIDTokenAge, maxIATSkew)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return provisioner.Claims{}, fmt.Errorf("%w: id_token nonce does not match this login", connector.ErrRejected)
	}

	if err := o.checkAuthorizedParty(idt.Audience, claims); err != nil {
		return provisioner.Claims{}, err
	}
	// Many providers put profile claims only in userinfo (mergeUserinfo).
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			// go-oidc's error is "<status>: <the whole body>", and a
			// provider that says what it refused may quote the token.
			o.logger.Warn("userinfo request failed; using ID token claims only",
				zap.String("issuer", o.Issuer),
				zap.String("error", connector.SaidErr(err, tok.AccessToken, tok.RefreshToken, rawID, o.clientSecret, code)))
		} else {
			// Read first: go-oidc's Subject may be a "Sub" of the answer.
			extra, err := claimsOf("userinfo", ui, structClaims)
			if err != nil {
				return provisioner.Claims{}, err
			}
			// Exactly, as OpenID Connect Core 5.3.2 asks: no folding.
			if ui.Subject != idt.Subject {
				return provisioner.Claims{}, fmt.Errorf("%w: userinfo subject differs from id_token subject", connector.ErrRejected)
			}
			mergeUserinfo(claims, extra)
		}
	}
	// The identity is named by the connection's issuer, not the token's
	// spelling of it: verification let only Google's scheme-less
	// "accounts.google.com" differ, and one Google user must be one
	// identity whichever of its two documented spellings a token uses.
	c, err := connector.ClaimsFromMap(o.Issuer, idt.Subject, claims)
	c.IDToken, c.RefreshToken, c.TokenExpiry = rawID, tok.RefreshToken, idt.Expiry
	if !tok.Expiry.IsZero() && tok.Expiry.Before(c.TokenExpiry) {
		c.TokenExpiry = tok.Expiry
	}
	return c, err
}

// checkAuthorizedParty refuses an ID token, verified for this client,
// that another client of the provider obtained (OpenID Connect Core
// 3.1.3.7, points 4 and 5; 12.2 for refreshed ones): go-oidc checks only
// that aud lists this client_id, which a token issued to another client
// for several audiences does too. With several audiences the token must
// name the party it was issued to (azp), and an azp, whatever the
// audiences, must be this client_id, compared exactly.
func (o *OIDC) checkAuthorizedParty(aud []string, claims map[string]any) error {
	azp := claims["azp"]
	named := azp != nil // null, as some providers write every claim they lack, names none
	switch s, _ := azp.(string); {
	case !named && len(aud) > 1:
		return fmt.Errorf("%w: id_token is for several audiences %q and names no azp (authorized party): OpenID Connect asks for one naming this client_id %q; a token issued to another client may list this one among its audiences",
			connector.ErrRejected, connector.Said(strings.Join(aud, " "), ""), o.clientID)
	case named && s != o.clientID:
		return fmt.Errorf("%w: id_token's azp (authorized party) %q is not this client_id %q: the provider issued it to another client",
			connector.ErrRejected, connector.Said(fmt.Sprint(azp), ""), o.clientID)
	}
	return nil
}

// checkResponseIssuer refuses an authorization response whose iss
// parameter (RFC 9207) names any issuer but this connection's. Several
// connections each have a callback of their own, but a provider of one
// of them (or an attacker who runs one) can still send a browser to
// another's callback with an answer it did not issue; whoever names
// its issuer in its answers lets this mix-up be told at once, before
// the code reaches a token endpoint. The comparison is exact (RFC 9207,
// section 2.4): no normalisation of slashes or letter case.
func (o *OIDC) checkResponseIssuer(iss []string) error {
	for _, v := range iss {
		if v != o.Issuer {
			named := "an empty issuer"
			if v != "" {
				// The browser brought it: bounded, without control characters.
				named = fmt.Sprintf("the issuer %q", connector.Said(v, ""))
			}
			return fmt.Errorf("%w: the authorization response names %s, not this connection's %q (RFC 9207): another provider's answer (a mix-up)",
				connector.ErrRejected, named, o.Issuer)
		}
	}
	return nil
}

// namesItself reports whether the issuer's discovery document says it
// puts iss in every authorization response (RFC 9207, section 3): an
// answer without one is then not its.
func namesItself(p *gooidc.Provider) bool {
	var meta struct {
		IssParameter bool `json:"authorization_response_iss_parameter_supported"`
	}
	return p.Claims(&meta) == nil && meta.IssParameter
}

// Refresh redeems a refresh token at the token endpoint. The claims are
// those of the new ID token when the provider sends one (verified as at
// login, without a nonce, which refresh responses do not carry), else
// the userinfo endpoint's; either way the subject must not change.
func (o *OIDC) Refresh(ctx context.Context, refreshToken string) (provisioner.Claims, string, time.Time, error) {
	p, verifier, cfg, err := o.discover(ctx)
	if err != nil {
		return provisioner.Claims{}, "", time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, o.client), providerTimeout)
	defer cancel()
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		// Only invalid_grant refuses the grant itself (RFC 6749, 5.2): the
		// user was removed or disabled, the grant revoked or the token
		// already used. Any other answer ends no session: a rate limit
		// (429), an outage, or a client the provider does not accept
		// (invalid_client after a secret rotation) would otherwise sign
		// everyone out at once.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" && re.Response != nil {
			if re.ErrorCode == "invalid_grant" {
				return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: the provider refused the refresh (%d %s)", connector.ErrRejected, re.Response.StatusCode,
					connector.Said(re.ErrorCode, re.ErrorDescription, refreshToken, o.clientSecret))
			}
			// Said drops control characters, bounds the text and hides the
			// secrets a provider might echo (S13).
			return provisioner.Claims{}, "", time.Time{}, retryLater(re.Response, fmt.Errorf("%w: the provider refused the refresh (%d %s)", connector.ErrUnavailable, re.Response.StatusCode,
				connector.Said(re.ErrorCode, re.ErrorDescription, refreshToken, o.clientSecret)))
		}
		// An answer without an OAuth error: its body may quote what was sent.
		err = fmt.Errorf("%w: refresh: %s", connector.ErrUnavailable, connector.SaidErr(err, refreshToken, o.clientSecret))
		if re != nil {
			err = retryLater(re.Response, err)
		}
		return provisioner.Claims{}, "", time.Time{}, err
	}
	next := tok.RefreshToken
	if next == "" {
		next = refreshToken
	}
	expiry := tok.Expiry
	claims := map[string]any{}
	var iss, sub string
	rawID, _ := tok.Extra("id_token").(string)
	if rawID != "" && len(rawID) <= maxIDTokenLength {
		idt, err := verify(ctx, verifier, rawID)
		if errors.Is(err, connector.ErrUnavailable) {
			return provisioner.Claims{}, "", time.Time{}, err
		}
		if err != nil {
			return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: refreshed id_token: %v", connector.ErrRejected, err)
		}
		if claims, err = claimsOf("refreshed id_token", idt, structClaims); err != nil {
			return provisioner.Claims{}, "", time.Time{}, err
		}
		if err := o.checkAuthorizedParty(idt.Audience, claims); err != nil {
			return provisioner.Claims{}, "", time.Time{}, err
		}
		iss, sub = o.Issuer, idt.Subject // as at login
		if expiry.IsZero() || idt.Expiry.Before(expiry) {
			expiry = idt.Expiry
		}
	}
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		switch {
		case err != nil && sub == "":
			return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: userinfo after refresh: %s", connector.ErrUnavailable,
				connector.SaidErr(err, tok.AccessToken, tok.RefreshToken, refreshToken, rawID, o.clientSecret))
		case err == nil:
			extra, err := claimsOf("userinfo after refresh", ui, structClaims)
			if err != nil {
				return provisioner.Claims{}, "", time.Time{}, err
			}
			if sub != "" && ui.Subject != sub {
				return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: userinfo subject differs from id_token subject", connector.ErrRejected)
			}
			mergeUserinfo(claims, extra)
			if sub == "" {
				iss, sub = o.Issuer, ui.Subject
			}
		}
	}
	if sub == "" {
		return provisioner.Claims{}, "", time.Time{}, fmt.Errorf("%w: the refresh response names no user (no id_token, no userinfo)", connector.ErrRejected)
	}
	c, err := connector.ClaimsFromMap(iss, sub, claims)
	return c, next, expiry, err
}

// backchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (Back-Channel Logout 1.0, section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenAge bounds how old (or how far in the future) a logout
// token's iat may be; jit_auth remembers used jti values longer.
const maxLogoutTokenAge = 5 * time.Minute

// VerifyLogoutToken verifies a Back-Channel Logout token (section 2.6):
// the signature with the issuer's keys (never alg none), iss, aud naming
// this client, iat within five minutes, exp if present, an events claim
// with the back-channel logout event, a jti, a sub or a sid, and no nonce
// (so an ID token cannot pass for a logout token); no key twice, none of
// logoutTokenClaims spelled otherwise.
func (o *OIDC) VerifyLogoutToken(ctx context.Context, token string) (connector.LogoutToken, error) {
	var lt connector.LogoutToken
	if len(token) > maxIDTokenLength {
		return lt, fmt.Errorf("%w: logout token larger than %d bytes", connector.ErrRejected, maxIDTokenLength)
	}
	_, _, _, err := o.discover(ctx)
	if err != nil {
		return lt, err
	}
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, o.client), providerTimeout)
	defer cancel()
	// Logout tokens need not have exp; it is checked below when present.
	t, err := verify(ctx, o.newVerifier(gooidc.Config{ClientID: o.clientID, SkipExpiryCheck: true}), token)
	if errors.Is(err, connector.ErrUnavailable) {
		return lt, err
	}
	if err != nil {
		// Anyone can post a logout token, and go-oidc's error quotes its
		// iss or aud whole (checked before the signature): bounded, as
		// the audit log repeats it.
		return lt, fmt.Errorf("%w: logout token: %s", connector.ErrRejected, connector.SaidErr(err))
	}
	// Before t.Subject or any field below is read: a "SID" or a second
	// "sub" would be what they say, not what the token's claims say.
	if _, err := claimsOf("logout token", t, logoutTokenClaims); err != nil {
		return lt, err
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
		Nonce  *json.RawMessage           `json:"nonce"`
		IAT    *float64                   `json:"iat"`
		Exp    *float64                   `json:"exp"`
	}
	if err := t.Claims(&c); err != nil {
		return lt, fmt.Errorf("%w: logout token claims: %v", connector.ErrRejected, err)
	}
	now := time.Now()
	switch ev, ok := c.Events[backchannelLogoutEvent]; {
	case !ok || len(ev) == 0 || ev[0] != '{':
		return lt, fmt.Errorf("%w: logout token: events has no %s object", connector.ErrRejected, backchannelLogoutEvent)
	case c.Nonce != nil:
		return lt, fmt.Errorf("%w: logout token has a nonce (an ID token is not a logout token)", connector.ErrRejected)
	case c.JTI == "":
		return lt, fmt.Errorf("%w: logout token has no jti", connector.ErrRejected)
	case t.Subject == "" && c.SID == "":
		return lt, fmt.Errorf("%w: logout token names neither sub nor sid", connector.ErrRejected)
	case c.IAT == nil || time.Unix(int64(*c.IAT), 0).Before(now.Add(-maxLogoutTokenAge)) || time.Unix(int64(*c.IAT), 0).After(now.Add(maxLogoutTokenAge)):
		return lt, fmt.Errorf("%w: logout token iat is missing or more than %s from now", connector.ErrRejected, maxLogoutTokenAge)
	case c.Exp != nil && !now.Before(time.Unix(int64(*c.Exp), 0)):
		return lt, fmt.Errorf("%w: logout token has expired", connector.ErrRejected)
	}
	return connector.LogoutToken{Issuer: o.Issuer, Subject: t.Subject, SessionID: c.SID, JTI: c.JTI, // o.Issuer: as at login
		AcceptableUntil: time.Unix(int64(*c.IAT), 0).Add(maxLogoutTokenAge)}, nil
}

// EndSessionURL is the issuer's end_session_endpoint (from discovery)
// with the RP-Initiated Logout parameters; ok is false when the issuer
// does not advertise one.
func (o *OIDC) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect, state string) (string, bool, error) {
	p, _, _, err := o.discover(ctx)
	if err != nil {
		return "", false, err
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.EndSession == "" {
		return "", false, nil
	}
	q := url.Values{"client_id": {o.clientID}, "post_logout_redirect_uri": {postLogoutRedirect}}
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if state != "" {
		q.Set("state", state)
	}
	sep := "?"
	if strings.Contains(meta.EndSession, "?") {
		sep = "&"
	}
	return meta.EndSession + sep + q.Encode(), true, nil
}

// tokenMisconfiguration looks again at an ID token that failed
// verification. The token came straight from the token endpoint; if its
// signature is the issuer's but its audience or issuer is not what the
// connection says, the provider issued it that way, which is a
// misconfiguration (a wrong client_id, an issuer URL that differs from
// the one the provider signs with), not a forgery. nil means it is not.
func (o *OIDC) tokenMisconfiguration(ctx context.Context, rawID string) error {
	o.mu.Lock()
	v := o.signatureOnly
	o.mu.Unlock()
	idt, err := v.Verify(ctx, rawID)
	if err != nil {
		return nil
	}
	// go-oidc lets Google's scheme-less issuer through; so do we.
	if idt.Issuer != o.Issuer && !(o.Issuer == "https://accounts.google.com" && idt.Issuer == "accounts.google.com") {
		return &connector.Misconfiguration{
			Step: "id_token",
			Said: fmt.Sprintf("the ID token is signed by the issuer's key but names the issuer %q", idt.Issuer),
			Fix:  fmt.Sprintf("check its issuer: the provider issues ID tokens as %q", idt.Issuer),
		}
	}
	if !slices.Contains(idt.Audience, o.clientID) {
		return &connector.Misconfiguration{
			Step: "id_token",
			Said: fmt.Sprintf("the ID token is for the audience %q, not for client_id %q", idt.Audience, o.clientID),
			Fix:  "check its client_id: it must be the client ID the provider puts in the ID token's aud",
		}
	}
	return nil
}

// VerifyBearer verifies a JWT an API client presents, issued by this
// connection's provider for one of audiences. It uses the keys the
// provider publishes (the same cached JWKS as logins) and go-oidc's
// checks: signature with an asymmetric algorithm of algorithms (default:
// those the provider's discovery lists), iss, exp and nbf. The audience is
// checked here against the configured list: an ID token names this
// client, an access token usually the API.
func (o *OIDC) VerifyBearer(ctx context.Context, token string, audiences, algorithms []string) (provisioner.Claims, error) {
	if len(token) > maxIDTokenLength {
		return provisioner.Claims{}, fmt.Errorf("%w: the bearer token is larger than %d bytes", connector.ErrRejected, maxIDTokenLength)
	}
	if strings.Count(token, ".") != 2 {
		return provisioner.Claims{}, &connector.OpaqueTokenError{}
	}
	if len(audiences) == 0 {
		return provisioner.Claims{}, errors.New("bearer: no audience configured")
	}
	_, _, _, err := o.discover(ctx)
	if err != nil {
		return provisioner.Claims{}, err
	}
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, o.client), providerTimeout)
	defer cancel()
	v := o.newVerifier(gooidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algorithms})
	t, err := verify(ctx, v, token)
	if errors.Is(err, connector.ErrUnavailable) {
		return provisioner.Claims{}, err
	}
	if err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: %v", connector.ErrRejected, err)
	}
	if t.Expiry.IsZero() {
		return provisioner.Claims{}, fmt.Errorf("%w: the bearer token has no exp", connector.ErrRejected)
	}
	if !slices.ContainsFunc(t.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return provisioner.Claims{}, fmt.Errorf("%w: the bearer token is for the audience %q, which this application does not accept", connector.ErrRejected, t.Audience)
	}
	claims, err := claimsOf("bearer token", t, structClaims)
	if err != nil {
		return provisioner.Claims{}, err
	}
	if why := notYetValid(claims["nbf"], time.Now()); why != "" {
		return provisioner.Claims{}, fmt.Errorf("%w: the bearer token %s", connector.ErrRejected, why)
	}
	if why := notABearer(token, claims); why != "" {
		return provisioner.Claims{}, fmt.Errorf("%w: the bearer token is %s", connector.ErrRejected, why)
	}
	return connector.ClaimsFromMap(o.Issuer, t.Subject, claims) // o.Issuer: as at login
}

// notYetValid says why a bearer token whose nbf claim is nbf (as JSON
// decoded it: absent, a number, or go-oidc's other spelling of one, a
// numeric string) is not valid at now, or "". A minute of clock skew is
// allowed; a value that is no time, or past any time, is refused rather
// than converted (1e20 as an int64 wraps to the distant past).
func notYetValid(nbf any, now time.Time) string {
	var secs float64
	switch v := nbf.(type) {
	case nil:
		return ""
	case float64:
		secs = v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "has an nbf that is no time"
		}
		secs = f
	default:
		return "has an nbf that is no time"
	}
	if math.IsNaN(secs) || secs > float64(now.Add(maxNotBeforeSkew).Unix()) {
		return fmt.Sprintf("is not valid before its nbf (%.0f)", secs)
	}
	return ""
}

// notABearer says why a verified JWT is a kind of token that must not
// be taken as a bearer, or "". A back-channel logout token, and any
// other Security Event Token (RFC 8417), is signed by the same key and
// carries a subject, an expiry and this client's audience: taken as a
// bearer, one copied from a log would sign its subject in. They say what
// they are with an events claim and, when the provider follows the
// specifications' advice, a typ header of logout+jwt or secevent+jwt.
func notABearer(token string, claims map[string]any) string {
	if _, ok := claims["events"]; ok {
		return "a logout token or another security event token (it has an events claim)"
	}
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	switch strings.TrimPrefix(strings.ToLower(h.Typ), "application/") {
	case "logout+jwt", "secevent+jwt":
		return "a " + h.Typ + " token, not an access or ID token"
	}
	return ""
}

// Interface guards
var (
	_ caddy.Provisioner             = (*OIDC)(nil)
	_ caddy.Validator               = (*OIDC)(nil)
	_ caddyfile.Unmarshaler         = (*OIDC)(nil)
	_ connector.Connector           = (*OIDC)(nil)
	_ connector.BearerVerifier      = (*OIDC)(nil)
	_ connector.EndSessioner        = (*OIDC)(nil)
	_ connector.LogoutTokenVerifier = (*OIDC)(nil)
	_ connector.Refresher           = (*OIDC)(nil)
)

// retryLater is err, carrying the wait the provider asked for in resp's
// Retry-After (a 429 or 503), if any.
func retryLater(resp *http.Response, err error) error {
	if resp == nil {
		return err
	}
	if wait, ok := connector.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return &connector.Unavailable{RetryAfter: wait, Err: err}
	}
	return err
}

// loopbackName reports whether host (a URL's Hostname) names this
// machine: localhost, or a loopback address.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
