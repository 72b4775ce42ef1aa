package caddymodule

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// maxConsentForm bounds the consent form's body.
const maxConsentForm = 4 << 10

// maxConsentRetries bounds how often one login may be asked again (a
// username taken or refused): each answer spends an entry in the
// replay set, which must not be flooded from a single provider login.
const maxConsentRetries = 10

// serveConsent shows (GET) and answers (POST) the consent or username
// page of a login that provisioning paused. Nothing reaches the store
// before the user allows it, and nothing reaches an upstream: there is
// no session until the answer is in.
func (h *Handler) serveConsent(w http.ResponseWriter, r *http.Request) {
	secure := cookieSecure(r)
	now := time.Now()
	p, ok := h.openPending(r, secure, now)
	var conn *Connection
	if ok {
		conn = h.connection(p.Connection)
	}
	if !ok || conn == nil {
		clearPending(w, secure)
		renderError(w, http.StatusBadRequest, "Sign-in expired",
			"This step of signing in is not valid in this browser, or it took too long. Start again.", h.PathPrefix+"login")
		return
	}
	if p.Elsewhere {
		caddyhttp.SetVar(r.Context(), varStartedElsewhere, true)
	}
	if !conn.vouchesFor(p) {
		// A reload pointed the connection at another provider while the
		// page waited: the identity is one it never vouched for, and must
		// not be stored or signed in under it (S18).
		clearPending(w, secure)
		h.endOtherSession(w, r, conn.name, p.Claims.Subject)
		renderError(w, http.StatusBadRequest, "Sign-in expired",
			"How this site signs you in through "+conn.displayName()+" changed while this page was open. Start again.", h.loginURL(p.ReturnTo))
		return
	}
	if r.Method == http.MethodGet {
		h.renderConsent(w, http.StatusOK, conn, p, "")
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxConsentForm)
	if err := r.ParseForm(); err != nil || !p.checkCSRF(r.PostForm.Get("csrf")) {
		renderError(w, http.StatusBadRequest, "Sign-in failed",
			"The form could not be accepted. Start again.", h.loginURL(p.ReturnTo))
		return
	}
	action := r.PostForm.Get("action")
	if action != "allow" && action != "decline" {
		renderError(w, http.StatusBadRequest, "Sign-in failed", "Choose Allow or Decline.", h.loginURL(p.ReturnTo))
		return
	}
	// One answer per pending login, claimed before anything reaches the
	// store: a declined page replayed with Allow, a double submit, a
	// second tab or a copied cookie provisions nothing. An answer that
	// must be given again (a username refused) continues under a fresh
	// pending login (askAgain).
	if !h.app.sessions.claim(p.ID, now) {
		h.renderConsentUsed(w, p)
		return
	}
	first, err := h.app.sessions.spend(r.Context(), p.ID, time.Unix(p.ExpiresAt, 0))
	if err != nil {
		h.logger.Error("recording an answered pending login", zap.String("connection", conn.name), zap.Error(err))
		// Recorded nowhere: the same answer, sent again, may go through.
		h.app.sessions.release(p.ID)
		renderError(w, http.StatusServiceUnavailable, "Sign-in failed", "This step of signing in could not be completed right now. Start again in a moment.", h.loginURL(p.ReturnTo))
		return
	}
	if !first { // answered through another instance first
		h.renderConsentUsed(w, p)
		return
	}
	claims := h.withPendingTokens(r, p, p.Claims.claims())
	req := provisioner.Request{Connection: conn.name, Policy: conn.pol, Claims: claims, Consented: p.Consent}
	answer := provisioner.Answer{Allow: action == "allow", Asked: provisioner.Outcome(p.Outcome), Username: r.PostForm.Get("username")}
	out, res, err := h.app.provisioner.Answer(r.Context(), req, answer)
	switch {
	case out == provisioner.AnswerDeclined:
		clearPending(w, secure)
		h.endOtherSession(w, r, conn.name, claims.Subject)
		h.emit(event{kind: eventConsentDeclined, connection: conn.name, subject: claims.Subject, attributes: p.Consent})
		renderMessage(w, http.StatusOK, "Not signed in",
			"You declined, so nothing about you was stored and you are not signed in to this site.",
			h.loginURL(p.ReturnTo), "Sign in another way")
		return
	case out == provisioner.AnswerNeedsUsername:
		h.askAgain(w, r, conn, p, now, http.StatusBadRequest, "Choose a username.")
		return
	case out == provisioner.AnswerUsernameTaken:
		p.Username = clip(answer.Username, provisioner.MaxUsernameLength)
		h.askAgain(w, r, conn, p, now, http.StatusConflict, "That username is taken. Choose another.")
		return
	case out == provisioner.AnswerUsernameRefused:
		p.Username = clip(answer.Username, provisioner.MaxUsernameLength)
		h.askAgain(w, r, conn, p, now, http.StatusBadRequest, usernameRule(err))
		return
	case err != nil:
		clearPending(w, secure)
		h.provisioningFailure(w, r, conn, claims, err, h.loginURL(p.ReturnTo))
		return
	}
	if res.Outcome != provisioner.OutcomeNeedsConsent && res.Outcome != provisioner.OutcomeNeedsUsername {
		clearPending(w, secure)
		h.emit(event{kind: eventConsentGiven, connection: conn.name, subject: claims.Subject, attributes: p.Consent})
	}
	// A question again (the configuration changed meanwhile): finishLogin
	// pauses the login under a new pending login.
	h.finishLogin(w, r, conn, claims, res, p.ReturnTo, p.ExpiresAt, p.AuthAt, now)
}

// askAgain shows the form again for an answer that could not complete,
// under a fresh pending login (a new ID, the same expiry): the answered
// one is spent, so only the new one can be answered. The CSRF token
// stays, so the same form in another tab of this browser answers the
// new pending login too.
func (h *Handler) askAgain(w http.ResponseWriter, r *http.Request, conn *Connection, p *pendingLogin, now time.Time, status int, errMsg string) {
	secure := cookieSecure(r)
	if p.Retries >= maxConsentRetries {
		clearPending(w, secure)
		h.endOtherSession(w, r, conn.name, p.Claims.Subject)
		renderError(w, http.StatusBadRequest, "Sign-in failed", "Too many tries for this sign-in. Start again.", h.loginURL(p.ReturnTo))
		return
	}
	next := *p
	next.ID = randomToken(16)
	next.Retries++
	if err := h.sealPending(w, &next, secure, now); err != nil {
		h.endOtherSession(w, r, conn.name, p.Claims.Subject)
		h.logger.Error("sealing the pending login", zap.String("connection", conn.name), zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Sign-in failed", "This step of signing in could not continue. Start again.", h.loginURL(p.ReturnTo))
		return
	}
	h.renderConsent(w, status, conn, &next, errMsg)
}

func (h *Handler) renderConsentUsed(w http.ResponseWriter, p *pendingLogin) {
	renderError(w, http.StatusBadRequest, "Sign-in already answered", "This step of signing in was already answered. Start again.", h.loginURL(p.ReturnTo))
}

// usernameRule turns a refused username into the reason shown.
func usernameRule(err error) string {
	msg := strings.TrimPrefix(err.Error(), provisioner.ErrUsernameInvalid.Error()+": ")
	return "That username is not allowed: " + clip(msg, 200) + "."
}
