package connector

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Helpers for connectors that speak OAuth 2 (RFC 6749): reading the
// authorization response and sorting the provider's refusals into the
// error kinds above.

// CredentialNames are the config names of a connector's client ID and
// secret, for the fix the log gives ("check its client_secret").
type CredentialNames struct{ ID, Secret string }

// clientAuthFix is what to do when the provider does not accept the
// client credentials.
func (n CredentialNames) clientAuthFix() string {
	return "check its " + n.Secret + " and " + n.ID + ": the provider does not accept them (compare them with the client registered at the provider)"
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

// ResponseValues are the parameters of an authorization response as
// the callback received it: the query of a GET, the form of a POST
// (OpenID Connect's form_post, parsed by jit_auth before the connector
// sees it).
func ResponseValues(r *http.Request) url.Values {
	if r.Method == http.MethodPost {
		return r.PostForm
	}
	return r.URL.Query()
}

// AuthorizationResponse reads an OAuth 2 authorization response (RFC
// 6749 4.1.2) from the callback, in the query of a GET or the form of a
// POST (OpenID Connect's form_post), and returns its code. An error
// response is a *Misconfiguration when the code the provider sent means
// the request built from the connection's settings was refused, else a
// *Denied (access_denied: the user said no; server_error and the rest);
// a response without a code wraps ErrRejected.
func AuthorizationResponse(r *http.Request, creds CredentialNames, redirectURI string) (string, error) {
	v := ResponseValues(r)
	if e := v.Get("error"); e != "" {
		if mc := callbackMisconfiguration(e, v.Get("error_description"), creds, redirectURI); mc != nil {
			return "", mc
		}
		return "", &Denied{Code: e}
	}
	code := v.Get("code")
	if code == "" {
		return "", fmt.Errorf("%w: the authorization response has no code", ErrRejected)
	}
	return code, nil
}

// callbackMisconfiguration classifies an error the provider sent back on
// the callback (RFC 6749 4.1.2.1): the codes that mean the request this
// connection builds from its settings was refused. nil means not a
// misconfiguration. The browser brought the answer, so it is Relayed.
func callbackMisconfiguration(code, desc string, creds CredentialNames, redirectURI string) error {
	mc := &Misconfiguration{Step: "authorization response", Said: Said(code, desc), Relayed: true, Code: code}
	switch {
	case code == "redirect_uri_mismatch" || (code == "invalid_request" && mentionsRedirectURI(desc)):
		mc.Fix = redirectFix(redirectURI)
	case code == "invalid_client" || code == "unauthorized_client":
		mc.Fix = "check its " + creds.ID + ": the provider does not know this client, or does not allow it the authorization code flow"
	case code == "unsupported_response_type":
		mc.Fix = "allow the authorization code flow (response_type code) for the client at the provider"
	case code == "invalid_scope":
		mc.Fix = "check its scopes: the provider refused at least one of them for this client"
	case code == "invalid_request":
		mc.Fix = "the provider refused the authorization request as invalid; compare the connection's settings (redirect URI, scopes) with the client registered at the provider"
	default:
		return nil
	}
	return mc
}

// TokenError sorts a failed code exchange: a refusal of the connection's
// settings (a *Misconfiguration), an outage (ErrUnavailable), or a
// refusal of this login (ErrRejected: an expired or reused code, a PKCE
// mismatch). hide lists values removed from what the provider said (the
// client secret, the code): some providers echo them.
func TokenError(err error, creds CredentialNames, redirectURI string, hide ...string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return ProviderError("token request", err, hide...)
		}
		// A success status with a body that is no token response (a
		// maintenance page in HTML, an answer cut off at the size bound,
		// no access_token): the provider's trouble, which starting the
		// login again will not mend.
		return fmt.Errorf("%w: token request: the provider's answer is no token response: %s", ErrUnavailable, SaidErr(err, hide...))
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	said := Said(re.ErrorCode, re.ErrorDescription, hide...)
	mc := &Misconfiguration{Step: "token request", Said: said}
	switch code := re.ErrorCode; {
	case code == "invalid_client" || code == "incorrect_client_credentials":
		// incorrect_client_credentials is GitHub's word for it.
		mc.Fix = creds.clientAuthFix()
	case code == "redirect_uri_mismatch" || mentionsRedirectURI(re.ErrorDescription):
		mc.Fix = redirectFix(redirectURI)
	case code == "unauthorized_client" || code == "unsupported_grant_type":
		mc.Fix = "allow the authorization code grant for the client at the provider (and check its " + creds.ID + ")"
	case code == "invalid_scope":
		mc.Fix = "check its scopes: the provider refused at least one of them for this client"
	case status == 401 && code != "invalid_grant" && code != "bad_verification_code":
		// RFC 6749 5.2: a failed client authentication may answer 401;
		// some providers send no error code with it.
		mc.Fix = creds.clientAuthFix()
	case status >= 500 || re.Response == nil:
		return fmt.Errorf("%w: token request: status %d: %s", ErrUnavailable, status, said)
	default:
		return fmt.Errorf("%w: token request: %s", ErrRejected, said)
	}
	return mc
}

// ProviderError tells a provider outage from a refusal, for a call other
// than the token request (which TokenError sorts, misconfigurations
// included). what names the call for the log. The error's text is
// bounded, with hide (the tokens and secret the call sent) removed: the
// provider's answer may quote them (S13). Of an *oauth2.RetrieveError
// only the status and error code are kept.
func ProviderError(what string, err error, hide ...string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		kind := ErrUnavailable
		if re.Response != nil && re.Response.StatusCode < 500 {
			kind = ErrRejected
		}
		return fmt.Errorf("%w: %s: %s", kind, what, Said(retrieveStatus(re), "", hide...))
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, SaidErr(err, hide...))
	}
	return fmt.Errorf("%w: %s: %s", ErrRejected, what, SaidErr(err, hide...))
}
