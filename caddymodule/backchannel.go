package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// maxLogoutForm bounds a back-channel logout request's body.
const maxLogoutForm = 64 << 10

// maxLogoutTokenSkew is how far from now a logout token's iat may be
// for a connector that does not say how long it accepts a token
// (LogoutToken.AcceptableUntil): a token whose iat is that far ahead is
// accepted for twice that from its first use.
const maxLogoutTokenSkew = 5 * time.Minute

// usedLogoutTokenMargin is how much longer than its acceptance a used jti is
// remembered: its record must outlive the token's acceptance on every
// instance, also one whose clock is a little behind (it accepts the
// token that much later) or that prunes by a clock a little ahead.
const usedLogoutTokenMargin = time.Minute

// maxLogoutTokenAcceptance bounds how long from its use a logout token's
// jti is remembered, whatever its connector says it accepts the token
// for (LogoutToken.AcceptableUntil): a third party's connector may set a
// far-off time, or none that means anything, and each used jti would be
// kept that long in the store and in every instance's memory (and the
// year 9999 fits no store's timestamp: the store refuses the record,
// which then waits in Caddy's storage, retried at every poll). A
// logout token is for now (OpenID Connect Back-Channel Logout asks for
// a recent iat); one its connector still takes a day later can be
// replayed then.
const maxLogoutTokenAcceptance = 24 * time.Hour

// logoutTokenUse names one logout token's single use (its jti at its
// connection) for the replay set and the store (claim, spentID).
func logoutTokenUse(connection, jti string) string {
	return "logout-jti\x00" + connection + "\x00" + jti
}

// backchannelRetryAfter is the Retry-After of a logout that could not be
// checked because the provider was unreachable: the connector reads its
// keys again at most every 5 s after a failure.
const backchannelRetryAfter = "5"

// maxLogoutName bounds a logout token's sub, sid and jti, which become
// revocation IDs in the store: what a login accepts as a subject
// (OpenID Connect's 255), so that every user who can sign in can be
// signed out. Caddy's storage names a waiting logout by a digest
// (pendingRevocationKey), so the length does not reach a file name.
const maxLogoutName = provisioner.MaxSubjectLength

// logoutName reports whether a logout token's sub, sid or jti can be
// recorded: short, UTF-8 and without NUL, which no store keeps (a login
// refuses such a subject, so no session has one to end).
func logoutName(s string) bool {
	return len(s) <= maxLogoutName && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// serveBackchannelLogout receives an OpenID Connect Back-Channel Logout
// request from the provider of the connection name (section 2.5): a
// POST with a logout_token. It verifies the token, refuses a jti seen
// before, and ends every session the token names (its subject's, or its
// provider session's) here at once and, through the store, on every
// instance within the revocation poll. 200 means done; 400 says why not,
// as the specification asks; 503 asks the provider to send the token
// again, when it could not be checked or recorded here.
func (h *Handler) serveBackchannelLogout(w http.ResponseWriter, r *http.Request, name string) {
	conn := h.connection(name)
	if conn == nil || !conn.BackchannelLogout || conn.logoutTokens == nil {
		renderError(w, http.StatusNotFound, "Not found", "This connection does not take back-channel logouts here.", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutForm)
	if err := r.ParseForm(); err != nil {
		logoutTokenError(w, http.StatusBadRequest, "the request body is not a form")
		return
	}
	token := r.PostForm.Get("logout_token")
	if token == "" {
		logoutTokenError(w, http.StatusBadRequest, "no logout_token")
		return
	}
	lt, err := conn.logoutTokens.VerifyLogoutToken(r.Context(), token)
	if errors.Is(err, connector.ErrUnavailable) {
		// Not the token's fault: a 400 would make the provider give the
		// logout up; a 503 has it send the token again.
		if skipped, ok := conn.keysUnreadableWarned.due(time.Now()); ok {
			h.logger.Warn("back-channel logout: the provider cannot be reached to check the token",
				zap.String("connection", conn.name), zap.Error(err), zap.Uint64("not_logged_since_last", skipped))
		}
		w.Header().Set("Retry-After", backchannelRetryAfter)
		logoutTokenError(w, http.StatusServiceUnavailable, "the identity provider's keys cannot be read right now to check the logout token")
		return
	}
	if err != nil {
		h.emit(event{kind: eventBackchannelRefused, connection: conn.name, err: err})
		logoutTokenError(w, http.StatusBadRequest, "the logout token is not valid")
		return
	}
	if !logoutName(lt.Subject) || !logoutName(lt.SessionID) || !logoutName(lt.JTI) {
		logoutTokenError(w, http.StatusBadRequest, "the logout token's sub, sid or jti is too long, not UTF-8, or holds a NUL")
		return
	}
	now := time.Now()
	// Single use on every instance: the replay set covers this one, and
	// the jti is recorded through the store as a login step is (spend), so
	// that another instance refuses it at once with a SingleUseStore, and
	// from its next revocation poll on without one.
	use := logoutTokenUse(conn.name, lt.JTI)
	// As long as the connector would take the token again (another
	// connector's window may be wider than the oidc one), up to
	// maxLogoutTokenAcceptance.
	until := lt.AcceptableUntil
	if until.IsZero() {
		until = now.Add(2 * maxLogoutTokenSkew)
	}
	if until.Before(now) {
		until = now
	}
	if limit := now.Add(maxLogoutTokenAcceptance); until.After(limit) {
		until = limit
	}
	usedFor := until.Add(usedLogoutTokenMargin)
	spent := false
	if !h.app.sessions.claim(use, now) {
		// A token this instance spent, but whose logout it could not
		// record, is the provider's retry that the 503 asked for.
		if !h.app.sessions.used.resume(use, now) {
			h.emit(event{kind: eventBackchannelRefused, connection: conn.name, reason: "logout token replayed"})
			logoutTokenError(w, http.StatusBadRequest, "the logout token was used before")
			return
		}
		spent = true
	}
	// retry answers 503, asking the provider to send the token again, and
	// gives back what this request took of the token, so that the retry
	// is not refused as a replay: its claim here, or, once spent (which
	// the store cannot undo), one resumption here (owe).
	retry := func(msg, why string, err error) {
		h.logger.Error(msg, zap.String("connection", conn.name), zap.Error(err))
		if spent {
			h.app.sessions.used.owe(use, time.Now(), usedFor)
		} else {
			h.app.sessions.release(use)
		}
		logoutTokenError(w, http.StatusServiceUnavailable, why)
	}
	keys, userID, err := h.logoutKeys(r.Context(), conn, lt)
	if err != nil {
		retry("back-channel logout: the user store cannot be read", "the user directory cannot be read right now", err)
		return
	}
	if !spent {
		first, err := h.app.sessions.spend(r.Context(), use, usedFor)
		if err != nil {
			retry("back-channel logout not recorded", "the logout could not be recorded right now", err)
			return
		}
		if !first {
			h.emit(event{kind: eventBackchannelRefused, connection: conn.name, reason: "logout token replayed"})
			logoutTokenError(w, http.StatusBadRequest, "the logout token was used before")
			return
		}
		spent = true
	}
	lifetime := time.Duration(h.app.SessionLifetime)
	for _, key := range keys {
		if err := h.app.sessions.revokeID(r.Context(), userCutoffID(key, now), cutoffExpiry(now, lifetime)); err != nil {
			retry("back-channel logout not recorded", "the logout could not be recorded right now", err)
			return
		}
	}
	h.emit(event{kind: eventBackchannelLogout, connection: conn.name, subject: lt.Subject, localID: userID})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// logoutKeys are the cutoff keys a logout token ends: the local user of
// its subject (JIT on; with the user's name, as an administrator's
// sign-out) and the subject itself, and the provider session.
func (h *Handler) logoutKeys(ctx context.Context, conn *Connection, lt connector.LogoutToken) ([]string, string, error) {
	var keys []string
	var userID string
	if lt.Subject != "" {
		if conn.jitEnabled() {
			ctx, cancel := context.WithTimeout(ctx, storeTimeout)
			defer cancel()
			u, err := h.app.store.UserByIdentity(ctx, provisioner.IdentityKey{Connection: conn.name, Issuer: lt.Issuer, Subject: lt.Subject})
			switch {
			case err == nil:
				userID = u.ID
				// As a sign-out of the user everywhere: also the JIT-off
				// sessions under the user's name from before the user
				// existed.
				keys = append(keys, localUserCutoffKeys(u)...)
			case !errors.Is(err, provisioner.ErrNotFound):
				return nil, "", err
			}
		}
		// Also under the subject, JIT on or off: sessions issued before
		// the connection's JIT setting changed carry no local user, or
		// one this lookup no longer finds.
		keys = append(keys, subjectCutoffKey(conn.name, lt.Subject))
	}
	if lt.SessionID != "" {
		keys = append(keys, sidCutoffKey(conn.name, lt.SessionID))
	}
	return keys, userID, nil
}

// logoutTokenError answers a back-channel logout that did not end
// anything, saying why (never echoing the token).
func logoutTokenError(w http.ResponseWriter, status int, why string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	code := "invalid_request"
	if status >= 500 {
		code = "temporarily_unavailable"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": why})
	_, _ = fmt.Fprintf(w, "%s\n", body)
}

// providerSID is the sid claim of a login's claims, for a connection
// that takes back-channel logouts.
func providerSID(conn *Connection, raw []byte) string {
	if !conn.BackchannelLogout {
		return ""
	}
	var c struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(raw, &c)
	if len(c.SID) > maxLogoutName {
		return ""
	}
	return c.SID
}
