package caddymodule

import (
	"net/http"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A sessionFeature acts at the two ends of a session, beside the login
// and logout endpoints rather than inside them: when a login ends in a
// session it may keep what the login gave (the provider's tokens), and
// when a sign-out ends the session it may act on that (drop a token,
// sign out at the provider too). The endpoints call every feature in
// sessionFeatures at those two points, so a feature of this kind is a
// type and a row there, not an edit of finishLogin or serveLogout.
//
// Outcomes (a login, a logout) are not features: they are events
// (events.go), which feed the audit log, metrics and Caddy events.
type sessionFeature interface {
	// carries reports which of the login's tokens the feature needs for
	// a session through conn. A login that pauses to ask the user
	// (consent, a username) carries them in its pending cookie, so they
	// reach started when the user has answered.
	carries(conn *Connection) loginTokens
	// started runs once the session cookie of s is set at the end of a
	// login through conn, with the claims that login verified. It may
	// set cookies; it must not answer the request.
	started(h *Handler, w http.ResponseWriter, r *http.Request, conn *Connection, s *Session, c provisioner.Claims, now time.Time)
	// ended runs once a sign-out has revoked s, before the answer. It
	// must not write to the response; a feature that continues the
	// sign-out elsewhere implements signOutContinuer.
	ended(h *Handler, r *http.Request, s *Session)
}

// signOutContinuer is a sessionFeature that may answer a completed
// sign-out itself, taking the browser on (to the provider, to sign out
// there too). The first that answers ends the sign-out.
type signOutContinuer interface {
	continueSignOut(h *Handler, w http.ResponseWriter, r *http.Request, s *Session, rd string) (answered bool)
}

// sessionFeatures are the features every login and sign-out passes
// through, in this order.
var sessionFeatures = []sessionFeature{
	refreshFeature{},        // refresh.go: follow the provider with the refresh token
	providerLogoutFeature{}, // logout_provider.go: sign out at the provider too
}

// loginTokens says which of a login's tokens a feature keeps.
type loginTokens struct {
	idToken, refreshToken bool
}

// tokensCarried is what a login through conn must carry across a pause
// for the features to find it when the session starts.
func tokensCarried(conn *Connection) loginTokens {
	var t loginTokens
	for _, f := range sessionFeatures {
		c := f.carries(conn)
		t.idToken = t.idToken || c.idToken
		t.refreshToken = t.refreshToken || c.refreshToken
	}
	return t
}

// sessionStarted runs every feature's started for a login's new session.
func (h *Handler) sessionStarted(w http.ResponseWriter, r *http.Request, conn *Connection, s *Session, c provisioner.Claims, now time.Time) {
	for _, f := range sessionFeatures {
		f.started(h, w, r, conn, s, c, now)
	}
}

// sessionEnded runs every feature's ended for a revoked session.
func (h *Handler) sessionEnded(r *http.Request, s *Session) {
	for _, f := range sessionFeatures {
		f.ended(h, r, s)
	}
}

// continueSignOut lets the first feature that continues the sign-out of
// s answer it, and reports whether one did.
func (h *Handler) continueSignOut(w http.ResponseWriter, r *http.Request, s *Session, rd string) bool {
	for _, f := range sessionFeatures {
		if c, ok := f.(signOutContinuer); ok && c.continueSignOut(h, w, r, s, rd) {
			return true
		}
	}
	return false
}
