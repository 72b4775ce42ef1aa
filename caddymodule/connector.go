package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// connector speaks one provider's protocol for one connection.
type connector interface {
	// authURL fills the provider-specific parts of f (PKCE verifier,
	// nonce, provider session) and returns where to send the browser.
	authURL(ctx context.Context, f *flowState) (string, error)
	// exchange completes a login at the callback: it redeems the code in
	// query, verifies what the provider says, and returns the claims.
	exchange(ctx context.Context, f *flowState, query url.Values) (provisioner.Claims, error)
}

// Errors a connector returns; the callback maps them to status codes.
var (
	// errProviderUnavailable: the provider could not be reached or
	// answered with a server error (502).
	errProviderUnavailable = errors.New("identity provider unavailable")
	// errProviderRejected: the provider's answer failed verification, or
	// the provider refused the code (401).
	errProviderRejected = errors.New("identity provider response rejected")
)

// errMisconfigured: the provider refused this connection's own settings
// (client credentials, redirect URI, scopes, issuer, the ID token's
// audience). No user can fix that, so the user is told to tell the
// site's administrator and the error is logged with the fix (500).
var errMisconfigured = errors.New("connection misconfigured")

// misconfiguration is an errMisconfigured error: where it showed, what
// the provider said (secrets and codes removed) and what to change.
type misconfiguration struct {
	// step is where the refusal came: discovery, authorization
	// response, token request or id_token.
	step string
	// said is what the provider said, fit for the log.
	said string
	// fix tells the administrator what to change, about "its" (the
	// connection's) settings; the log prefixes the connection.
	fix string
}

func (m *misconfiguration) Error() string {
	return "connection misconfigured: " + m.step + ": " + m.said
}

func (m *misconfiguration) Unwrap() error { return errMisconfigured }

// credentialNames are the config names of a connection's client ID and
// secret, for the fix the log gives.
type credentialNames struct{ id, secret string }

var (
	oidcCredentials = credentialNames{id: "client_id", secret: "client_secret"}
	gothCredentials = credentialNames{id: "key", secret: "secret"}
)

// clientAuthFix is what to do when the provider does not accept the
// client credentials.
func (n credentialNames) clientAuthFix() string {
	return "check its " + n.secret + " and " + n.id + ": the provider does not accept them (compare them with the client registered at the provider)"
}

// redirectFix is what to do when the provider refused the redirect URI.
func redirectFix(uri string) string {
	return "register " + uri + " as a redirect URI of the client at the provider, or set redirect_url to one that is registered"
}

// mentionsRedirectURI reports whether a provider's error description is
// about the redirect URI, as providers phrase it in invalid_request or
// invalid_grant answers ("redirect_uri does not correspond", "Invalid
// redirect uri", …).
func mentionsRedirectURI(desc string) bool {
	d := strings.ToLower(desc)
	return strings.Contains(d, "redirect_uri") || strings.Contains(d, "redirect uri") || strings.Contains(d, "redirect url") || strings.Contains(d, "redirect_url")
}

// callbackMisconfiguration classifies an error the provider sent back on
// the callback (RFC 6749 4.1.2.1): the codes that mean the request this
// connection builds from its settings was refused. access_denied (the
// user said no), server_error, temporarily_unavailable and the rest stay
// the user's or the provider's. nil means not a misconfiguration.
func callbackMisconfiguration(code, desc string, creds credentialNames, redirectURI string) error {
	said := providerSaid(code, desc)
	mc := &misconfiguration{step: "authorization response", said: said}
	switch {
	case code == "redirect_uri_mismatch" || (code == "invalid_request" && mentionsRedirectURI(desc)):
		mc.fix = redirectFix(redirectURI)
	case code == "invalid_client" || code == "unauthorized_client":
		mc.fix = "check its " + creds.id + ": the provider does not know this client, or does not allow it the authorization code flow"
	case code == "unsupported_response_type":
		mc.fix = "allow the authorization code flow (response_type code) for the client at the provider"
	case code == "invalid_scope":
		mc.fix = "check its scopes: the provider refused at least one of them for this client"
	case code == "invalid_request":
		mc.fix = "the provider refused the authorization request as invalid; compare the connection's settings (redirect URI, scopes) with the client registered at the provider"
	default:
		return nil
	}
	return mc
}

// classifyTokenError sorts a failed code exchange: a refusal of the
// connection's settings (a misconfiguration), an outage (errProviderUnavailable),
// or a refusal of this login (errProviderRejected: an expired or reused
// code, a PKCE mismatch). hide lists values removed from what the
// provider said (the client secret, the code): some providers echo them.
func classifyTokenError(err error, creds credentialNames, redirectURI string, hide ...string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return classifyProviderError("token request", err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	said := providerSaid(re.ErrorCode, re.ErrorDescription, hide...)
	mc := &misconfiguration{step: "token request", said: said}
	switch code := re.ErrorCode; {
	case code == "invalid_client" || code == "incorrect_client_credentials":
		// incorrect_client_credentials is GitHub's word for it.
		mc.fix = creds.clientAuthFix()
	case code == "redirect_uri_mismatch" || mentionsRedirectURI(re.ErrorDescription):
		mc.fix = redirectFix(redirectURI)
	case code == "unauthorized_client" || code == "unsupported_grant_type":
		mc.fix = "allow the authorization code grant for the client at the provider (and check its " + creds.id + ")"
	case code == "invalid_scope":
		mc.fix = "check its scopes: the provider refused at least one of them for this client"
	case status == 401 && code != "invalid_grant" && code != "bad_verification_code":
		// RFC 6749 5.2: a failed client authentication may answer 401;
		// some providers send no error code with it.
		mc.fix = creds.clientAuthFix()
	case status >= 500 || re.Response == nil:
		return fmt.Errorf("%w: token request: status %d: %s", errProviderUnavailable, status, said)
	default:
		return fmt.Errorf("%w: token request: %s", errProviderRejected, said)
	}
	return mc
}

// maxProviderSaid bounds how much of a provider's error text is kept.
const maxProviderSaid = 200

// providerSaid renders a provider's error code and description for logs:
// each hide value (and its URL-encoded form) is replaced, control
// characters are dropped, and the text is bounded. The description of an
// authorization response comes from the browser, so it is only ever
// logged, never trusted.
func providerSaid(code, desc string, hide ...string) string {
	s := code
	if desc != "" {
		s += ": " + desc
	}
	if s == "" {
		s = "no error code"
	}
	for _, h := range hide {
		if h == "" {
			continue
		}
		s = strings.ReplaceAll(s, h, "[redacted]")
		if e := url.QueryEscape(h); e != h {
			s = strings.ReplaceAll(s, e, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > maxProviderSaid {
		s = strings.ToValidUTF8(s[:maxProviderSaid], "") + "…"
	}
	return s
}
