package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

const (
	// enrolCookieBase names the cookie that holds a TOTP enrolment until
	// the user confirms a code: the secret is saved only then.
	enrolCookieBase = "jitauth_totp_enrol"
	// enrolLifetime bounds an enrolment from QR code to confirmation.
	enrolLifetime = 10 * time.Minute
	// recoveryCodeCount is how many recovery codes an enrolment shows.
	recoveryCodeCount = 10
)

// totpEnrolment is a TOTP secret shown to the user and not yet
// confirmed. It is bound to the user and the session that asked for it.
type totpEnrolment struct {
	UserID    string `json:"u"`
	SessionID string `json:"sid"`
	Secret    string `json:"k"`
	URL       string `json:"url"`
	ExpiresAt int64  `json:"exp"`
}

// mfaRequired reports whether s must present a second factor here.
func (h *Handler) mfaRequired(s *Session) bool { return h.MFA.requires(s.Connection) }

// secondFactorNeeded answers a request whose session still owes the
// second factor (S11): it reaches only the MFA page.
func (h *Handler) secondFactorNeeded(w http.ResponseWriter, r *http.Request, s *Session) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.Provisioned() {
		h.renderNoLocalUser(w)
		return
	}
	target := h.mfaURL(requestedURI(r))
	if isBrowserNavigation(r) {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"second factor required","mfa_url":` + strconv.Quote(target) + "}\n"))
}

// renderNoLocalUser explains why a user of a connection with JIT off
// cannot get into an application that requires a second factor: the
// configuration accepted that conflict (on_conflict warn).
func (h *Handler) renderNoLocalUser(w http.ResponseWriter) {
	renderError(w, http.StatusForbidden, "Second factor unavailable",
		"This site requires a second factor, which is kept with an account on this site, and the way you signed in does not create one. Sign in another way, or ask the site's administrator.", h.PathPrefix+"login")
}

// mfaURL is the MFA page, coming back to returnTo.
func (h *Handler) mfaURL(returnTo string) string {
	if rd, ok := safeReturnPath(returnTo); ok && rd != "/" {
		return h.PathPrefix + "mfa?rd=" + url.QueryEscape(rd)
	}
	return h.PathPrefix + "mfa"
}

// mfaCSRF is the MFA form's token: derived from the session ID, which
// only the holder of the sealed cookie knows.
func mfaCSRF(s *Session) string {
	sum := sha256.Sum256([]byte("jit_auth mfa form\x00" + s.ID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// serveMFA is the second-factor page: enrolment for a user without a
// factor, verification for one with it.
func (h *Handler) serveMFA(w http.ResponseWriter, r *http.Request) {
	rd := returnTo(r)
	s := h.session(r)
	if s == nil {
		h.signInAgain(w, r, rd)
		return
	}
	if !h.admits(s) {
		// As on the application's pages: a user it refuses enrols and
		// verifies no factor through it either.
		renderNotAdmitted(w)
		return
	}
	if !h.mfaRequired(s) || s.MFA {
		http.Redirect(w, r, rd, http.StatusFound)
		return
	}
	if !s.Provisioned() {
		h.renderNoLocalUser(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	factor, err := h.app.factors.TOTP(ctx, s.UserID)
	if errors.Is(err, provisioner.ErrNotFound) {
		factor, err = nil, nil
	}
	if err != nil {
		h.mfaStoreFailure(w, s, err)
		return
	}
	if factor == nil {
		// Enrolment sets the factor for good, so it is offered and
		// accepted only to a session that still counts by the store,
		// not only by this instance's memory: a factor reset (which
		// signs the user out first), a sign-out everywhere or a disable
		// made through another instance reaches this one's memory only
		// at its next poll, and a session from before it, held by
		// whoever has the provider login alone, would meanwhile enrol
		// an authenticator of its own.
		switch ok, err := h.app.sessions.confirm(ctx, h.app.store, s); {
		case err != nil:
			h.mfaStoreFailure(w, s, err)
			return
		case !ok:
			h.app.sessions.clear(w, r)
			h.signInAgain(w, r, rd)
			return
		}
	}
	if r.Method == http.MethodGet {
		if factor == nil {
			h.startEnrolment(w, r, s, rd, "", http.StatusOK)
			return
		}
		h.renderMFA(w, http.StatusOK, &mfaForm{Action: h.mfaURL(rd), CSRF: mfaCSRF(s)})
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxConsentForm)
	if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(mfaCSRF(s))) != 1 {
		renderError(w, http.StatusBadRequest, "Second factor", "The form could not be accepted. Try again.", h.mfaURL(rd))
		return
	}
	code := r.PostForm.Get("code")
	switch {
	case factor == nil && r.PostForm.Get("action") == "enrol":
		h.finishEnrolment(ctx, w, r, s, rd, code)
	case factor != nil && r.PostForm.Get("action") == "verify":
		h.verifyCode(ctx, w, r, s, factor, rd, code)
	default:
		// The factor appeared or vanished since the page was shown
		// (another tab, an administrator's reset): show the page anew.
		http.Redirect(w, r, h.mfaURL(rd), http.StatusSeeOther)
	}
}

// signInAgain answers an MFA request without a session that counts
// (none, expired, or ended elsewhere): a page view goes to log in. The
// page's form, sent then, gets a page that leads there instead: a
// redirect would take the user to the provider without a word on why
// the code they typed was not checked.
func (h *Handler) signInAgain(w http.ResponseWriter, r *http.Request, rd string) {
	if r.Method != http.MethodPost {
		http.Redirect(w, r, h.loginURL(rd), http.StatusFound)
		return
	}
	renderPage(w, http.StatusUnauthorized, pageData{Title: "Sign in again",
		Message: "Your session has ended, so the code was not checked. Sign in again.",
		Link:    h.loginURL(rd), LinkLabel: "Sign in", Status: http.StatusUnauthorized})
}

// startEnrolment shows a new (or the pending) secret as a QR code.
func (h *Handler) startEnrolment(w http.ResponseWriter, r *http.Request, s *Session, rd, errMsg string, status int) {
	secure := cookieSecure(r)
	now := time.Now()
	en, ok := h.openEnrolment(r, s, secure, now)
	if !ok {
		secret, err := mfa.NewSecret(totpIssuer(r.Host), s.Username)
		if err != nil {
			h.logger.Error("creating a TOTP secret", zap.Error(err))
			renderError(w, http.StatusInternalServerError, "Second factor", "A new second factor could not be created. Try again.", "")
			return
		}
		en = &totpEnrolment{UserID: s.UserID, SessionID: s.ID, Secret: secret.Secret, URL: secret.URL, ExpiresAt: now.Add(enrolLifetime).Unix()}
		if err := h.app.sessions.seal.seal(w, cookieName(enrolCookieBase, secure), en, enrolLifetime, secure); err != nil {
			h.logger.Error("sealing the TOTP enrolment cookie", zap.Error(err))
			renderError(w, http.StatusInternalServerError, "Second factor", "A new second factor could not be created. Try again.", "")
			return
		}
	}
	qr, err := mfa.QRCode(en.URL)
	if err != nil {
		h.logger.Error("drawing the TOTP QR code", zap.Error(err))
	}
	h.renderMFA(w, status, &mfaForm{Action: h.mfaURL(rd), CSRF: mfaCSRF(s), Enrol: true,
		QR: template.URL(qr), Secret: en.Secret, Error: errMsg})
}

// openEnrolment reads this session's pending enrolment, if intact.
func (h *Handler) openEnrolment(r *http.Request, s *Session, secure bool, now time.Time) (*totpEnrolment, bool) {
	var en totpEnrolment
	if !h.app.sessions.seal.open(r, cookieName(enrolCookieBase, secure), &en) {
		return nil, false
	}
	if en.UserID != s.UserID || en.SessionID != s.ID || en.Secret == "" || now.Unix() >= en.ExpiresAt {
		return nil, false
	}
	return &en, true
}

// finishEnrolment saves the secret once the user proves the app has it,
// and shows the recovery codes, once.
func (h *Handler) finishEnrolment(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session, rd, code string) {
	secure := cookieSecure(r)
	now := time.Now()
	en, ok := h.openEnrolment(r, s, secure, now)
	if !ok {
		h.startEnrolment(w, r, s, rd, "That setup expired. Scan this new code and try again.", http.StatusBadRequest)
		return
	}
	result, codes, err := mfa.Enrol(ctx, h.app.factors, s.UserID, en.Secret, code, recoveryCodeCount, now, func(secret string) ([]byte, error) {
		return h.app.sealers[0].Seal(s.UserID, secret)
	}, func(code string) string {
		return h.app.sealers[0].RecoveryHash(s.UserID, code)
	})
	switch {
	case errors.Is(err, mfa.ErrNotPrepared):
		h.logger.Error("enrolling a TOTP factor", zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Second factor", "The second factor could not be saved. Try again.", h.mfaURL(rd))
		return
	case err != nil:
		h.mfaStoreFailure(w, s, err)
		return
	case result == mfa.WrongEnrolCode:
		h.startEnrolment(w, r, s, rd, "That code is not right. Enter the code your app shows now.", http.StatusBadRequest)
		return
	case result == mfa.AlreadyEnrolled:
		http.Redirect(w, r, h.mfaURL(rd), http.StatusSeeOther)
		return
	}
	setCookie(w, cookieName(enrolCookieBase, secure), "", -1, secure)
	h.emit(sessionEvent(eventTOTPEnrolled, s))
	if !h.upgradeSession(w, r, s) {
		return
	}
	h.renderMFA(w, http.StatusOK, &mfaForm{Codes: codes, Continue: rd})
}

// verifyCode checks a TOTP or recovery code, with a growing delay after
// wrong ones.
func (h *Handler) verifyCode(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session, factor *provisioner.TOTP, rd, code string) {
	form := &mfaForm{Action: h.mfaURL(rd), CSRF: mfaCSRF(s)}
	c, err := mfa.CheckCode(ctx, h.app.factors, s.UserID, factor.SealedSecret, code, time.Now(), func(sealed []byte) (string, error) {
		return h.app.openSecret(s.UserID, sealed)
	}, func(code string) []string {
		return h.app.recoveryHashes(s.UserID, code)
	})
	switch {
	case errors.Is(err, mfa.ErrSecretUnreadable):
		h.logger.Error("a stored TOTP secret does not open with the configured keys; reset the user's factor",
			zap.String("local_id", s.UserID), zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Second factor unavailable",
			"Your second factor cannot be checked right now. Ask the site's administrator to reset it.", "")
		return
	case err != nil:
		h.mfaStoreFailure(w, s, err)
		return
	}
	ev := sessionEvent(eventTOTPRefused, s)
	ev.failures = c.Attempts
	switch c.Result {
	case mfa.NoFactor:
		// The factor was reset since serveMFA read it: show the page anew.
		http.Redirect(w, r, h.mfaURL(rd), http.StatusSeeOther)
	case mfa.Throttled:
		// Refused unchecked and not counted, so a script can send
		// codes for the whole wait (up to maxDelay): one wait is
		// audited once. The next wait follows a code checked since,
		// which counts (Attempts).
		now := time.Now()
		if h.app.sessions.auditOnce("totp wait\x00"+s.UserID+"\x00"+strconv.Itoa(c.Attempts), now, now.Add(c.Wait)) {
			ev.kind = eventTOTPRateLimited
			h.emit(ev)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(c.Wait), 10))
		form.Error = "Too many wrong codes. Wait " + waitText(c.Wait) + ", then try again."
		h.renderMFA(w, http.StatusTooManyRequests, form)
	case mfa.Reused, mfa.Wrong:
		h.emit(ev)
		form.Error = "That code is not right. Try again."
		if c.Result == mfa.Reused {
			form.Error = "That code was already used. Wait for your app to show the next one."
		}
		h.renderMFA(w, http.StatusUnauthorized, form)
	case mfa.Accepted:
		ev := sessionEvent(eventMFAAccepted, s)
		ev.method = c.Method
		h.emit(ev)
		if h.upgradeSession(w, r, s) {
			http.Redirect(w, r, rd, http.StatusSeeOther)
		}
	}
}

// openSecret opens a value sealed for userID (a TOTP secret, or a
// refresh token for its session) with any configured key.
func (a *App) openSecret(userID string, sealed []byte) (string, error) {
	err := mfa.ErrCannotOpen
	for _, s := range a.sealers {
		var secret string
		if secret, err = s.Open(userID, sealed); err == nil {
			return secret, nil
		}
	}
	return "", err
}

// recoveryHashes are the hashes a recovery code of userID may be stored
// under: keyed with each configured key (the first hashes new codes, as
// it seals secrets), then the plain SHA-256 of codes stored before keyed
// hashes, which keep working until used.
func (a *App) recoveryHashes(userID, code string) []string {
	out := make([]string, 0, len(a.sealers)+1)
	for _, s := range a.sealers {
		out = append(out, s.RecoveryHash(userID, code))
	}
	return append(out, mfa.HashRecoveryCode(code))
}

// upgradeSession re-issues s with the second factor done. Passing it is
// the user at work on this application, so it counts as activity for
// its idle timeout (as touch records a request): otherwise a user who
// took longer than the timeout between the provider's sign-in and the
// code (setting up the app, fetching the phone) is idle the moment the
// factor is passed, and sent to sign in again, to spend a second code.
func (h *Handler) upgradeSession(w http.ResponseWriter, r *http.Request, s *Session) bool {
	if h.activityKey != "" {
		s = s.activeAt(h.activityKey, time.Now().Unix())
	}
	if err := h.app.sessions.upgrade(w, r, s); err != nil {
		h.logger.Error("sealing session cookie", zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Second factor", "Your session could not be updated. Sign in again.", h.PathPrefix+"login")
		return false
	}
	return true
}

// mfaStoreFailure fails closed: no store, no second factor, no entry.
func (h *Handler) mfaStoreFailure(w http.ResponseWriter, s *Session, err error) {
	h.logger.Error("user store failed during the second factor", zap.String("local_id", s.UserID), zap.Error(err))
	renderError(w, http.StatusServiceUnavailable, "Second factor temporarily unavailable",
		"Your second factor cannot be checked right now. Try again in a moment.", "")
}

// totpIssuer is the issuer an authenticator app shows for the site at
// host: its name without the port, in lower case. The otpauth label
// separates issuer and account with a colon, so an IPv6 literal's
// colons become dashes ("[::1]:8443" is "--1"): with them, no secret
// could be made, and every enrolment on such a site failed.
func totpIssuer(host string) string {
	name := hostname(host)
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	return strings.ToLower(strings.ReplaceAll(name, ":", "-"))
}
