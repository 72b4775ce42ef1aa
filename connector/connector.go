// Package connector is the seam between jit_auth and an identity
// provider's protocol. A connector is a Caddy module in the
// jit_auth.connectors namespace (jit_auth.connectors.oidc and
// jit_auth.connectors.goth ship with the module) that implements
// Connector; a connection names one in its "connector" object, or in the
// Caddyfile as `connection <name> { <kind> … }`.
//
// The connector speaks the protocol and nothing else. jit_auth owns the
// rest of a login around it: the state bound to the browser's sealed flow
// cookie, the single use of that state, the return path, the JIT policy,
// the allow rules and the session. A connector therefore never sets
// cookies or writes a response; it returns where to send the browser and
// what it verified.
//
// This package imports nothing from Caddy, so a connector's protocol code
// can be tested on its own; a connector module adds Caddy's interfaces
// (caddy.Module, caddy.Provisioner, caddy.Validator,
// caddyfile.Unmarshaler) in its own package.
package connector

import (
	"context"
	"net/http"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Connector logs users in at one identity provider for one connection.
// One value serves every login of its connection, concurrently.
type Connector interface {
	// Begin starts a login. It returns the URL to send the browser to
	// (usually the provider's authorization endpoint) and the state this
	// login needs at the callback (a PKCE verifier, a nonce, a request
	// ID). jit_auth seals that state into the browser's flow cookie, so
	// it never lives in shared memory and only this browser can finish
	// the login; it must stay small (a few hundred bytes), as a cookie
	// holds at most about 4 KB.
	//
	// The provider must send login.State back to the callback as the
	// "state" parameter, in the query or in a POST form (see
	// CallbackStater for protocols that name it differently).
	Begin(r *http.Request, login Login) (redirect string, state []byte, err error)

	// Finish completes a login at the callback, GET or POST: r is the
	// provider's answer as the browser delivered it, state what Begin
	// returned for this login. jit_auth has already checked that the
	// answer belongs to a login this browser started, that it is not a
	// replay, and that it is in time. Finish verifies the rest (the
	// provider's signature, audience, nonce, the code exchange) and
	// returns the verified identity: at least Issuer and Subject, the
	// email with whether the provider verified it, and the raw claims.
	//
	// Errors should wrap ErrUnavailable, ErrRejected or
	// ErrMisconfigured (a *Misconfiguration says what to fix), or be a
	// *Denied when the provider answered that it did not sign the user
	// in: jit_auth chooses the page and status from them.
	Finish(r *http.Request, login Login, state []byte) (provisioner.Claims, error)
}

// Login is what jit_auth decided about one login before the connector
// sees it.
type Login struct {
	// Connection is the connection's name, for the connector's logs.
	Connection string
	// State is a 256-bit random value, unique to this login, that the
	// provider must return to the callback.
	State string
	// RedirectURI is the callback URL of this login's site (or the
	// connection's fixed redirect_url): where the provider sends the
	// browser back. OAuth 2 token requests must repeat it exactly.
	RedirectURI string
}

// CallbackStater is implemented by a connector whose provider returns the
// login's state in a parameter other than "state" (SAML's RelayState, for
// example). jit_auth calls it at the callback, before Finish, to find
// the login's flow cookie. It must read no more of r than it needs.
type CallbackStater interface {
	CallbackState(r *http.Request) string
}

// CrossSitePoster is implemented by a connector whose provider returns
// the browser to the callback with a cross-site POST (OpenID Connect's
// form_post response mode, SAML's HTTP-POST binding). Browsers send a
// SameSite=Lax cookie with a cross-site top-level GET but not with a
// POST, so jit_auth then marks that connection's flow cookie
// SameSite=None (which browsers accept only on HTTPS). The flow cookie
// stays bound to its state and single-use, which is what protects the
// login, not SameSite.
type CrossSitePoster interface {
	CallbackIsCrossSitePost() bool
}

// BearerVerifier is implemented by a connector whose provider issues
// JWTs (ID tokens, JWT access tokens) that API clients may present as
// "Authorization: Bearer". VerifyBearer verifies token against the
// provider's published keys: the signature with one of algorithms (never
// "none" or a symmetric algorithm), the provider's issuer, an exp in the
// future and any nbf in the past (up to a minute of clock skew), and an
// aud naming at least one of audiences (which is never empty). It returns the token's identity as
// Finish does. A token that is not a JWT (an opaque access token) is an
// *OpaqueTokenError; other refusals wrap ErrRejected, and a provider
// that cannot be reached ErrUnavailable.
type BearerVerifier interface {
	VerifyBearer(ctx context.Context, token string, audiences, algorithms []string) (provisioner.Claims, error)
}

// OpaqueTokenError refuses a bearer token that is not a JWT: it can only
// be checked by asking the provider (token introspection).
type OpaqueTokenError struct{}

func (*OpaqueTokenError) Error() string {
	return "the bearer token is not a JWT (an opaque token), and opaque tokens are not accepted"
}

// Is makes an OpaqueTokenError an ErrRejected.
func (*OpaqueTokenError) Is(target error) bool { return target == ErrRejected }

// EndSessioner is implemented by a connector whose provider can end the
// user's session there when they sign out here (OpenID Connect
// RP-Initiated Logout 1.0). EndSessionURL returns where to send the
// browser: the provider's end_session_endpoint with idTokenHint (the ID
// token of the login, or empty if it could not be kept), the client ID,
// postLogoutRedirect and state. ok is false when the provider has no
// such endpoint.
type EndSessioner interface {
	EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect, state string) (url string, ok bool, err error)
}

// LogoutTokenVerifier is implemented by a connector whose provider sends
// OpenID Connect Back-Channel Logout 1.0 logout tokens. It verifies one
// (signature against the provider's keys, iss, aud naming this client,
// iat, the back-channel logout event, a jti, sub or sid, and no nonce)
// and returns what it names. jit_auth makes the jti single-use.
type LogoutTokenVerifier interface {
	VerifyLogoutToken(ctx context.Context, token string) (LogoutToken, error)
}

// LogoutToken is what a verified logout token says: end the sessions of
// Subject, or of the provider session SessionID, or both.
type LogoutToken struct {
	Issuer    string
	Subject   string
	SessionID string
	JTI       string
	// AcceptableUntil is when VerifyLogoutToken stops accepting the
	// token (or later, never earlier): jit_auth refuses its jti (single
	// use) until a minute after, and at most a day and a minute after
	// its use: a token accepted longer can be replayed then. Zero stands
	// for the oidc connector's window, an iat within five minutes of
	// now: ten minutes from now.
	AcceptableUntil time.Time
}

// Refresher is implemented by a connector whose provider issues refresh
// tokens. Refresh redeems one and returns the user's claims as the
// provider states them now, the refresh token to keep (the same one, or
// its replacement when the provider rotates them) and when the new
// tokens expire. A provider that refuses the grant (the user was removed
// or disabled there, the grant revoked: OAuth's invalid_grant) is an
// error wrapping ErrRejected, which ends the session; any other failure
// (unreachable, throttled, the client refused) wraps ErrUnavailable and
// is retried; an *Unavailable carries the wait the provider asked for
// (Retry-After), and no refresh of the connection is sent before then.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (claims provisioner.Claims, next string, expiry time.Time, err error)
}

// LegacyIssuer is implemented by a connector whose logins give another
// issuer than earlier releases stored its connection's identities under
// (the goth connector names the configured instance now). At start,
// jit_auth has a store that implements provisioner.IssuerAdopter move
// the connection's identities from earlier to now, once: from then on an
// identity under earlier is someone else's. earlier == now when nothing
// changed; jit_auth then only records that the connection ran.
type LegacyIssuer interface {
	LegacyIssuer() (earlier, now string)
}
