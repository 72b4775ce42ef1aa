package caddymodule

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The ID token a logout at the provider sends as id_token_hint is kept
// in a cookie of its own, sealed and bound to its session, with the
// logout endpoint's path: the browser sends it there and nowhere else,
// so the session cookie that travels on every request stays small.
const logoutHintCookieBase = "jitauth_logout_hint"

// logoutHint is the sealed content of that cookie.
type logoutHint struct {
	// SessionID is the session it belongs to: a hint planted from
	// another session is not sent for this one.
	SessionID string `json:"sid"`
	IDToken   string `json:"t"`
}

// logoutHintName is the cookie's name: __Secure- on HTTPS (it cannot be
// __Host-, which requires Path=/).
func logoutHintName(secure bool) string {
	if secure {
		return "__Secure-" + logoutHintCookieBase
	}
	return logoutHintCookieBase
}

// providerLogoutFeature keeps a login's ID token for a connection that
// signs out at the provider too, and takes a completed sign-out on to
// the provider (a sessionFeature and signOutContinuer).
type providerLogoutFeature struct{}

func (providerLogoutFeature) carries(conn *Connection) loginTokens {
	return loginTokens{idToken: conn.logsOutAtProvider()}
}

func (providerLogoutFeature) started(h *Handler, w http.ResponseWriter, r *http.Request, conn *Connection, s *Session, c provisioner.Claims, _ time.Time) {
	h.keepLogoutHint(w, r, conn, s, c.IDToken)
}

func (providerLogoutFeature) ended(*Handler, *http.Request, *Session) {}

func (providerLogoutFeature) continueSignOut(h *Handler, w http.ResponseWriter, r *http.Request, s *Session, rd string) bool {
	return h.logoutAtProvider(w, r, s, rd)
}

// logsOutAtProvider reports whether a sign-out through the connection
// continues to the provider.
func (c *Connection) logsOutAtProvider() bool { return c.LogoutAtProvider && c.endSession != nil }

// keepLogoutHint stores the login's ID token for the logout of s, when
// its connection signs out at the provider. A token too large for a
// cookie is not kept; the logout then sends the client ID alone, which
// RP-Initiated Logout allows.
func (h *Handler) keepLogoutHint(w http.ResponseWriter, r *http.Request, conn *Connection, s *Session, idToken string) {
	if !conn.logsOutAtProvider() || idToken == "" {
		return
	}
	secure := cookieSecure(r)
	name := logoutHintName(secure)
	value, err := h.app.sessions.seal.encode(name, &logoutHint{SessionID: s.ID, IDToken: idToken})
	if err != nil || len(value) > maxCookieLength {
		h.logger.Warn("the ID token is too large to keep for logout at the provider; the logout will send the client ID alone",
			zap.String("connection", conn.name), zap.Int("id_token_bytes", len(idToken)))
		return
	}
	c := newCookie(name, value, time.Until(time.Unix(s.ExpiresAt, 0)), secure)
	c.Path = h.PathPrefix + "logout"
	http.SetCookie(w, c)
}

// takeLogoutHint returns the ID token kept for s, and clears the cookie.
func (h *Handler) takeLogoutHint(w http.ResponseWriter, r *http.Request, s *Session) string {
	secure := cookieSecure(r)
	name := logoutHintName(secure)
	var hint logoutHint
	ok := h.app.sessions.seal.open(r, name, &hint)
	if _, err := r.Cookie(name); err == nil {
		c := newCookie(name, "", -1, secure)
		c.Path = h.PathPrefix + "logout"
		http.SetCookie(w, c)
	}
	if !ok || hint.SessionID != s.ID {
		return ""
	}
	return hint.IDToken
}

// maxEndSessionState bounds the return path a sign-out sends through
// the provider as its state. Providers, and the proxies in front of
// them, do not all take the longer URLs a site's own endpoints do
// (maxReturnURLLength), and the state only comes back to choose a page.
const maxEndSessionState = 2048

// logoutAtProvider continues a completed local logout of s to the
// provider, when its connection says so. It reports whether it answered.
func (h *Handler) logoutAtProvider(w http.ResponseWriter, r *http.Request, s *Session, rd string) bool {
	conn := h.app.Connections[s.Connection]
	if conn == nil || !conn.logsOutAtProvider() {
		return false
	}
	hint := h.takeLogoutHint(w, r, s)
	state := ""
	if safe, ok := safeReturnPath(rd); ok && rd != "" {
		state = safe
	}
	if len(state) > maxEndSessionState {
		// rd is the client's, and a sign-out can be posted again with
		// the same cookie at will: spaced out.
		if skipped, ok := conn.longSignOutWarned.due(time.Now()); ok {
			h.logger.Warn("the page to go to after signing out is too long to send through the provider; the sign-out ends on the signed-out page",
				zap.String("connection", conn.name), zap.Int("return_url_bytes", len(state)), zap.Uint64("not_logged_since_last", skipped))
		}
		state = ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	target, ok, err := conn.endSession.EndSessionURL(ctx, hint, origin(r)+h.PathPrefix+"logged-out", state)
	if err != nil || !ok {
		if err != nil {
			h.logger.Warn("cannot continue the sign-out at the provider", zap.String("connection", conn.name), zap.Error(err))
		}
		renderMessage(w, http.StatusOK, "Signed out here",
			"You are signed out of this site. "+conn.displayName()+" could not be asked to sign you out too, so you may still be signed in there: sign out there, or close the browser.",
			h.PathPrefix+"login", "Sign in again")
		return true
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
	return true
}

// serveLoggedOut is where the provider sends the browser back after
// signing the user out there: the signed-out page, or on to the path the
// logout was given (state), if it is a safe same-origin path (S2). The
// sign-out here ended the session before the browser went there; one
// that still counts (a link or a bookmark to this page, a sign-in in
// another tab since) gets the sign-out page instead, since "You are
// signed out" would be false, and on a shared computer taken at its word.
func (h *Handler) serveLoggedOut(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if s := h.session(r); s != nil {
		h.renderLogout(w, s, state)
		return
	}
	h.renderSignedOut(w, r, state)
}
