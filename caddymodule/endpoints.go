package caddymodule

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/login"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// storeTimeout bounds the store calls of one request to an endpoint
// (logout, the MFA page) or to the admin API.
const storeTimeout = 5 * time.Second

// returnTo reads the rd parameter: a safe same-origin path, else "/".
func returnTo(r *http.Request) string {
	if rd, ok := safeReturnPath(r.URL.Query().Get("rd")); ok {
		return rd
	}
	return "/"
}

// serveLoginPage lists the application's connections, or goes straight
// to the only one.
func (h *Handler) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	rd := returnTo(r)
	if len(h.conns) == 1 {
		http.Redirect(w, r, h.loginURL(rd), http.StatusFound)
		return
	}
	renderLogin(w, h.PathPrefix, h.conns, rd)
}

// serveStart begins a login through one connection: it seals the flow
// state into a cookie bound to this browser and sends it to the provider.
func (h *Handler) serveStart(w http.ResponseWriter, r *http.Request, name string) {
	conn := h.connection(name)
	if conn == nil {
		renderError(w, http.StatusNotFound, "Unknown sign-in option", "This site does not offer that sign-in option.", h.PathPrefix+"login")
		return
	}
	if !validHost(requestHost(r)) {
		// The callback URL is built from it: no host name is this long
		// or so spelled, and its login could not be sealed into a cookie.
		renderError(w, http.StatusBadRequest, "Bad request", "The request's Host is not a host name.", "")
		return
	}
	secure := cookieSecure(r)
	if secure && !isHTTPS(r) {
		renderError(w, http.StatusBadRequest, "HTTPS required",
			"Signing in needs HTTPS on this site (plain HTTP works only on localhost). Serve the site over HTTPS, or, behind a proxy that terminates TLS, list it in Caddy's trusted_proxies.", "")
		return
	}
	if h.redirectURLElsewhere(w, r, conn) {
		return
	}
	f := &flowState{
		State:       randomToken(32),
		Connection:  conn.name,
		ReturnTo:    returnTo(r),
		RedirectURI: h.callbackURL(r, conn),
		ExpiresAt:   time.Now().Add(flowLifetime).Unix(),
		Elsewhere:   postedFromElsewhere(r),
	}
	target, state, err := conn.connector.Begin(r, f.login())
	if err != nil {
		h.providerFailure(w, conn, err)
		return
	}
	f.Connector = state
	dropOldFlows(w, r, h.app.sessions.seal, secure, maxFlows-1, "")
	name = flowCookieName(f.State, secure)
	err = h.sealReturning(&f.ReturnTo, conn.name, func() error {
		return h.app.sessions.seal.sealFlow(w, name, f, secure, conn.crossSitePost)
	})
	if err != nil {
		h.logger.Error("sealing login flow cookie", zap.String("connection", conn.name), zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Sign-in failed", "The sign-in could not be started. Try again.", "")
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// callbackURL is the redirect URI for conn on the site r is for: the
// connection's redirect_url, else the site's own.
func (h *Handler) callbackURL(r *http.Request, conn *Connection) string {
	if conn.RedirectURL != "" {
		return conn.RedirectURL
	}
	return h.ownCallbackURL(r, conn)
}

// ownCallbackURL is conn's callback endpoint on the site r is for.
func (h *Handler) ownCallbackURL(r *http.Request, conn *Connection) string {
	return origin(r) + h.PathPrefix + "callback/" + conn.name
}

// serveCallback completes a login: it checks the flow, lets the
// connector redeem and verify the provider's answer, provisions, and
// issues the session.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request, name string) {
	conn := h.connection(name)
	if conn == nil {
		renderError(w, http.StatusNotFound, "Unknown sign-in option", "This site does not offer that sign-in option.", h.PathPrefix+"login")
		return
	}
	if r.Method == http.MethodPost {
		// A provider's form post (form_post, a SAML binding): bounded
		// before anything reads it.
		r.Body = http.MaxBytesReader(w, r.Body, maxCallbackForm)
		if err := r.ParseForm(); err != nil {
			renderError(w, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer could not be read. Start again.", h.PathPrefix+"login")
			return
		}
	}
	secure := cookieSecure(r)
	now := time.Now()
	f, flowName, ok := openFlow(r, h.app.sessions.seal, callbackState(r, conn.connector), secure, now)
	if flowName != "" {
		setCookie(w, flowName, "", -1, secure)
	}
	dropOldFlows(w, r, h.app.sessions.seal, secure, maxFlows, flowName)
	restart := h.PathPrefix + "login"
	if !ok || f.Connection != conn.name {
		h.emitSpaced(&conn.noFlowAudited, event{kind: eventLoginRefused, connection: conn.name, reason: "invalid or expired login state"})
		renderError(w, http.StatusBadRequest, "Sign-in expired", "This sign-in is not valid in this browser, or it took too long. Start again.", restart)
		return
	}
	restart = h.loginURL(f.ReturnTo)
	if f.Elsewhere {
		caddyhttp.SetVar(r.Context(), varStartedElsewhere, true)
	}
	flowEnds := time.Unix(f.ExpiresAt, 0)
	if !h.app.sessions.claim(f.State, now) {
		if h.app.sessions.firstRefusal(f.State, "replayed", now, flowEnds) {
			h.emit(event{kind: eventLoginRefused, connection: conn.name, reason: "login state replayed"})
		}
		renderError(w, http.StatusBadRequest, "Sign-in already used", "This sign-in was already completed. Start again.", restart)
		return
	}

	claims, err := conn.connector.Finish(r, f.login(), f.Connector)
	audit := true
	if err != nil {
		// Only an answer the connector accepts uses the state up. A
		// refused answer can then come again with this flow's cookie, as
		// often as a script sends it: only the first of each kind is
		// audited (refusalKind), so a forged code tried after a harmless
		// access_denied still is.
		h.app.sessions.release(f.State)
		if audit = h.app.sessions.firstRefusal(f.State, "refused "+refusalKind(err), now, flowEnds); !audit {
			h.logger.Debug("a refused sign-in answered again with the same login state; only the first answer is audited",
				zap.String("connection", conn.name), zap.Error(err))
		}
	}
	var denied *connector.Denied
	if errors.As(err, &denied) {
		code := errorCode(denied.Code)
		if audit {
			h.emit(event{kind: eventLoginRefused, connection: conn.name, reason: "provider returned an error", providerError: code})
		}
		renderError(w, http.StatusUnauthorized, "Sign-in was not completed", "The identity provider did not sign you in ("+code+").", restart)
		return
	}
	if mc, ok := errors.AsType[*connector.Misconfiguration](err); ok && mc.Relayed {
		h.relayedRefusal(w, conn, mc, restart, audit)
		return
	}
	if err != nil {
		h.failure(w, conn, err, audit)
		return
	}
	first, err := h.app.sessions.spend(r.Context(), f.State, time.Unix(f.ExpiresAt, 0))
	if err != nil {
		h.logger.Error("recording a used login state", zap.String("connection", conn.name), zap.Error(err))
		h.app.sessions.release(f.State) // recorded nowhere: not used up
		renderError(w, http.StatusServiceUnavailable, "Sign-in failed", "This sign-in could not be completed right now. Start again in a moment.", restart)
		return
	}
	if !first {
		// Another instance completed this login first: a copy of the
		// callback, replayed there before this one.
		h.emit(event{kind: eventLoginRefused, connection: conn.name, reason: "login state replayed"})
		renderError(w, http.StatusBadRequest, "Sign-in already used", "This sign-in was already completed. Start again.", restart)
		return
	}

	req := provisioner.Request{Connection: conn.name, Policy: conn.pol, Claims: claims}
	res, err := h.app.provisioner.Provision(r.Context(), req)
	if err != nil {
		h.provisioningFailure(w, r, conn, claims, err, restart)
		return
	}
	h.finishLogin(w, r, conn, claims, res, f.ReturnTo, f.ExpiresAt, now.Unix(), now)
}

// finishLogin takes a provisioning result to its end, in the step
// login.Next decides: a consent or username page when the user must
// answer first, a refusal, the second factor, or the session. authAt is
// when the provider's answer was verified (Unix seconds): a login that
// waited for the user since is refused if its user or provider session
// was signed out meanwhile (endedSince).
func (h *Handler) finishLogin(w http.ResponseWriter, r *http.Request, conn *Connection, claims provisioner.Claims, res provisioner.Result, returnTo string, flowExpires, authAt int64, now time.Time) {
	s := newSession(conn, claims, res, time.Duration(h.app.SessionLifetime), now, h.app.sessionAttributes, h.app.roleSources)
	step := login.Next(login.Facts{Outcome: res.Outcome, Allowed: h.admits(s), MFARequired: h.mfaRequired(s), Provisioned: s.Provisioned()})
	if step == login.Ask {
		h.askFirst(w, r, conn, claims, res, returnTo, flowExpires, authAt, now)
		return
	}
	if h.app.sessions.endedSince(s, authAt) {
		h.endOtherSession(w, r, conn.name, claims.Subject)
		h.emit(event{kind: eventLoginRefused, connection: conn.name, reason: "signed out while the login waited for the user", subject: claims.Subject})
		renderError(w, http.StatusUnauthorized, "Signed out meanwhile",
			"You were signed out while this sign-in waited for your answer. Sign in again.", h.loginURL(returnTo))
		return
	}
	h.auditProvisioning(conn, claims, res)
	if res.DirectoryErr != nil {
		h.logger.Warn("JIT-off login: the user directory failed (if reading it, a local user with the same name is not checked, and not refused if disabled; if recording the login as theirs, deprovisioning does not count it)",
			zap.String("connection", conn.name), zap.String("username", res.Username), zap.Error(res.DirectoryErr))
	}
	if d := res.Profile.DroppedGroups; len(d) > 0 {
		h.logger.Warn("provider groups dropped: a comma or control character in a group name would split or break Remote-Groups",
			zap.String("connection", conn.name), zap.String("subject", claims.Subject), zap.Strings("groups", d))
	}
	next := returnTo
	if step == login.Deny || step == login.NoLocalUser {
		h.endOtherSession(w, r, conn.name, claims.Subject)
	}
	switch step {
	case login.Deny:
		h.emit(event{kind: eventLoginDenied, connection: conn.name, reason: "not allowed by the application's allow rules", username: s.Username, localID: s.UserID, subject: s.Subject})
		renderError(w, http.StatusForbidden, "Access denied", "You are signed in at "+conn.displayName()+", but this site does not admit your account.", "")
		return
	case login.NoLocalUser:
		h.emit(event{kind: eventNoLocalUserForMF, connection: conn.name, username: s.Username, subject: s.Subject})
		h.renderNoLocalUser(w)
		return
	case login.SecondFactor:
		next = h.mfaURL(returnTo)
	}
	if err := h.app.sessions.issue(w, r, s); err != nil {
		// Compressed and split over its three cookies, a session holds
		// hundreds of named groups and Entra ID's 200 group object IDs;
		// what still does not fit only the provider's configuration can
		// cut down.
		h.endOtherSession(w, r, conn.name, claims.Subject)
		h.logger.Error("the session does not fit in a cookie, even compressed; have the provider send fewer groups (only those this site uses), or shorter profile claims",
			zap.String("connection", conn.name), zap.Int("groups", len(s.Groups)), zap.Error(err))
		renderError(w, http.StatusInternalServerError, "Sign-in failed",
			"Your account is in more groups than this site can hold in a session, or its profile at the provider is too large. Tell the site's administrator.", "")
		return
	}
	if old := h.otherSession(r, conn.name, claims.Subject); old != nil {
		h.endReplaced(r, old)
	}
	h.app.sessions.userRead(res, now)
	h.sessionStarted(w, r, conn, s, claims, now)
	h.emit(event{kind: eventLoggedIn, connection: conn.name, outcome: string(res.Outcome), username: s.Username, localID: s.UserID, subject: s.Subject})
	http.Redirect(w, r, next, http.StatusFound)
}

// endOtherSession ends the session r's browser holds when it is not the
// identity that just signed in at conn (subject): a sign-in that ends
// without a session of its own (refused, declined, failed) must not
// leave the previous person signed in, as one that succeeds replaces it
// (S16). The same person's session stays: a second sign-in that fails
// for a passing reason does not sign them out.
//
// A provider that answers with a cross-site form POST (SAML's POST
// binding, OIDC form_post) gets no SameSite=Lax session cookie from the
// browser, so whose session it holds cannot be told: it is ended in the
// browser all the same (its cookies expired, parts included; browsers
// take cookies from the answer to a top-level navigation), though it
// cannot be revoked without its cookie.
func (h *Handler) endOtherSession(w http.ResponseWriter, r *http.Request, conn, subject string) {
	if startedElsewhere(r) {
		// A link elsewhere, to a provider that answers at once with an
		// account this site refuses, would otherwise sign the user out.
		return
	}
	if old := h.otherSession(r, conn, subject); old != nil {
		h.app.sessions.clear(w, r)
		h.endReplaced(r, old)
		return
	}
	if c := h.app.Connections[conn]; c != nil && c.crossSitePost && r.Method == http.MethodPost && !h.app.sessions.carried(r) {
		h.app.sessions.clearUnseen(w, r)
	}
}

// startedElsewhere reports whether another origin's page sent the
// browser to start the login r answers (flowState.Elsewhere).
func startedElsewhere(r *http.Request) bool {
	elsewhere, _ := caddyhttp.GetVar(r.Context(), varStartedElsewhere).(bool)
	return elsewhere
}

// otherSession is the session r's browser holds for another identity
// than conn (subject), or nil. A sign-in that succeeds replaces it
// however the login was started (endReplaced); one that ends without a
// session ends it only when this site started the login
// (endOtherSession).
func (h *Handler) otherSession(r *http.Request, conn, subject string) *Session {
	if s := h.app.sessions.openAny(r); s != nil && (s.Connection != conn || s.Subject != subject) &&
		time.Now().Unix() < s.ExpiresAt {
		return s
	}
	return nil
}

// endReplaced revokes a session that another person's sign-in took the
// place of in the browser. Replacing its cookie is not enough: a request
// of the previous person still in flight (a long poll, a slow report)
// carries that cookie, and an idle timeout's refreshed copy on its late
// answer would put them back in the browser of the one who signed in
// since. A failure is logged, not shown: the cookie is replaced anyway.
func (h *Handler) endReplaced(r *http.Request, s *Session) {
	if err := h.app.sessions.revoke(r.Context(), s); err != nil {
		h.logger.Warn("the session a new sign-in replaced could not be revoked; a copy of its cookie stays valid until it expires",
			zap.String("connection", s.Connection), zap.Error(err))
		return
	}
	h.sessionEnded(r, s)
}

// varStartedElsewhere marks a callback whose login another origin's page
// started (flowState.Elsewhere).
const varStartedElsewhere = "jit_auth.started_elsewhere"

// askFirst holds a login that must ask the user (consent, a username) in
// the sealed pending cookie, and sends the browser to the question.
func (h *Handler) askFirst(w http.ResponseWriter, r *http.Request, conn *Connection, claims provisioner.Claims, res provisioner.Result, returnTo string, flowExpires, authAt int64, now time.Time) {
	p := &pendingLogin{
		ID: randomToken(16), CSRF: randomToken(16), Connection: conn.name,
		Claims: toPendingClaims(claims), Outcome: string(res.Outcome),
		Consent: res.Consent, Attributes: res.Attributes, Roles: res.Roles, Username: res.Username,
		ReturnTo: returnTo, ExpiresAt: flowExpires, AuthAt: authAt, Elsewhere: startedElsewhere(r),
		Vouch: conn.vouch,
	}
	if p.Consent == nil {
		p.Consent = []string{}
	}
	if err := h.sealPending(w, p, cookieSecure(r), now); err != nil {
		// It ends without a session, so it ends another person's (S16).
		h.endOtherSession(w, r, conn.name, claims.Subject)
		h.logger.Warn("provider's answer too large to hold while asking the user", zap.String("connection", conn.name), zap.Error(err))
		renderError(w, http.StatusBadRequest, "Sign-in failed",
			"The answer from "+conn.displayName()+" is too large to hold while you confirm your account. Ask the site's administrator to request fewer scopes.", "")
		return
	}
	h.keepPendingTokens(w, r, conn, p, claims, now)
	http.Redirect(w, r, h.PathPrefix+"consent", http.StatusSeeOther)
}

// auditProvisioning records what provisioning did to the store.
func (h *Handler) auditProvisioning(conn *Connection, c provisioner.Claims, res provisioner.Result) {
	u := res.User
	if u == nil {
		return
	}
	ev := event{connection: conn.name, username: u.Username, localID: u.ID, subject: c.Subject}
	switch res.Outcome {
	case provisioner.OutcomeCreated:
		ev.kind, ev.roles = eventUserCreated, u.Roles()
	case provisioner.OutcomeLinked:
		ev.kind, ev.attributes = eventIdentityLinked, res.Changed
	case provisioner.OutcomeUpdated:
		if len(res.Changed) == 0 {
			return
		}
		ev.kind, ev.attributes, ev.roles = eventUserUpdated, res.Changed, u.Roles()
	default:
		return
	}
	h.emit(ev)
}

// newSession builds the session for a completed login. It carries the
// attributes named in attrs (those some assertion sends), no others: the
// cookie travels on every request.
// A local user's roles are those of the grants in roles: a connection
// no longer configured grants none.
func newSession(conn *Connection, c provisioner.Claims, res provisioner.Result, lifetime time.Duration, now time.Time, attrs map[string]bool, roles roleSources) *Session {
	s := &Session{
		ID:          newSessionID(),
		Connection:  conn.name,
		Subject:     c.Subject,
		ProviderSID: providerSID(conn, c.Raw),
		IssuedAt:    now.Unix(),
		ExpiresAt:   now.Add(lifetime).Unix(),
	}
	if u := res.User; u != nil {
		s.UserID, s.Username, s.Email, s.EmailVerified, s.Name = u.ID, u.Username, u.Email, u.EmailVerified, u.Name
		// Groups stored before they were checked (or written to the store
		// by other means) get the same rule as the provider's: a group
		// with a comma would reach Remote-Groups as two.
		s.Groups, _ = provisioner.FilterGroups(u.Groups)
		s.Roles = roles.of(u)
		s.Attributes = chosenAttributes(u.Attributes, attrs)
		return s
	}
	p := res.Profile
	s.Username, s.Holder = res.Username, res.Holder
	if s.Holder == "" && res.DirectoryErr != nil {
		// The directory could not say whether a local user holds the
		// name (a verified email): the session follows whoever does,
		// found by name once the store answers (holderByName), so a
		// disabled user does not keep, for the whole session_lifetime,
		// a session under their name that an outage let them open.
		s.Holder = nameCutoffKey(s.Username)
	}
	s.Email, s.EmailVerified, s.Name, s.Groups, s.Roles = p.Email, p.EmailVerified, p.Name, p.Groups, res.Roles
	s.Attributes = chosenAttributes(p.Attributes, attrs)
	return s
}

// chosenAttributes is the part of values named in attrs, or nil.
func chosenAttributes(values map[string]string, attrs map[string]bool) map[string]string {
	var out map[string]string
	for name := range attrs {
		if v, ok := values[name]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	return out
}

// refusalKind names the kind of a callback's refusal for firstRefusal:
// a handful of kinds, whatever error code the answer names (any client
// writes it), so that one flow's refusals stay bounded.
func refusalKind(err error) string {
	var denied *connector.Denied
	var mc *connector.Misconfiguration
	switch {
	case errors.As(err, &denied):
		return "denied"
	case errors.As(err, &mc) && mc.Relayed:
		return "relayed"
	case errors.As(err, &mc):
		return "misconfigured"
	case errors.Is(err, connector.ErrRejected):
		return "rejected"
	case errors.Is(err, connector.ErrUnavailable):
		return "unavailable"
	}
	return "failed"
}

// providerFailure renders a connector error. A misconfiguration is the
// administrator's to fix: the user is told so (500, as for any fault in
// the server's own configuration; 502 stays for a provider that cannot
// be reached) and the log says what the provider said and what to change.
func (h *Handler) providerFailure(w http.ResponseWriter, conn *Connection, err error) {
	h.failure(w, conn, err, true)
}

// failure is providerFailure, with the login audited only if audit is
// set (see serveCallback). A misconfiguration is logged all the same:
// the provider said so, not the browser.
func (h *Handler) failure(w http.ResponseWriter, conn *Connection, err error, audit bool) {
	if audit {
		h.emit(event{kind: eventLoginFailed, connection: conn.name, err: err})
	}
	var mc *connector.Misconfiguration
	if errors.As(err, &mc) {
		h.renderMisconfigured(w, conn, mc, zap.String("provider_said", mc.Said))
		return
	}
	if errors.Is(err, connector.ErrUnavailable) {
		renderError(w, http.StatusBadGateway, "Identity provider unavailable",
			conn.displayName()+" cannot be reached right now. Try again in a moment.", "")
		return
	}
	renderError(w, http.StatusUnauthorized, "Sign-in failed",
		"The answer from "+conn.displayName()+" could not be verified. Start again.", h.PathPrefix+"login")
}

// relayedRefusal answers an error response about the connection's own
// request (invalid_client, redirect_uri_mismatch, invalid_scope, …) on
// the callback. The browser brought it, and anyone who starts a login of
// their own can send one with any text, as often as they like: taken at
// its word it paged operators (an ERROR, a failed login, a 500) and told
// them to change a correct client_id or redirect URI. So it counts and is
// audited as the provider's refusal it says it is (login refused,
// provider_error), and the warning says where it came from, repeats it
// bounded (connector.Said) and suggests no change: a genuine one shows
// again to an operator who signs in themselves, on the provider's own
// answer. Nor is it written once per answer: one per error code and
// logSpacingInterval says all a genuine one needs to, and the audit
// line of each login refused stays. With audit unset (the same flow's
// answer sent again), neither is written.
func (h *Handler) relayedRefusal(w http.ResponseWriter, conn *Connection, mc *connector.Misconfiguration, restart string, audit bool) {
	code := errorCode(mc.Code)
	if audit {
		h.emit(event{kind: eventLoginRefused, connection: conn.name, reason: "provider returned an error", providerError: code})
		if skipped, ok := conn.relayedWarned.due(code, time.Now()); ok {
			h.logger.Warn("a sign-in ended on an error answer about the connection's request that came through the browser: it may not be the provider's (anyone can send one to a login they started), so change no setting on its word alone; if users keep meeting it, sign in yourself and see what the provider says",
				zap.String("connection", conn.name), zap.String("step", mc.Step), zap.String("browser_said", mc.Said),
				zap.Uint64("not_logged_since_last", skipped))
		}
	}
	renderError(w, http.StatusUnauthorized, "Sign-in was not completed",
		"The identity provider did not sign you in ("+code+"): it did not accept this site's sign-in request. If this keeps happening, tell the site's administrator.", restart)
}

// maxErrorCode bounds a provider's error code as it is shown and logged.
const maxErrorCode = 64

// errorCode is an OAuth 2 error code from the callback, as it may be
// shown, logged, counted and sent in a Caddy event: the characters RFC
// 6749 allows in one (printable ASCII but '"' and '\\'), at most
// maxErrorCode of them. The browser brought it: anything else is not
// a code, and is dropped.
func errorCode(s string) string {
	out := make([]byte, 0, min(len(s), maxErrorCode))
	for i := 0; i < len(s) && len(out) < maxErrorCode; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	return string(out)
}

// renderMisconfigured tells the user that conn's settings are wrong,
// which no retry of theirs fixes, and logs at ERROR where it showed and
// what to change, with what else says why (fields).
func (h *Handler) renderMisconfigured(w http.ResponseWriter, conn *Connection, mc *connector.Misconfiguration, fields ...zap.Field) {
	f := make([]zap.Field, 0, len(fields)+3)
	f = append(f, zap.String("connection", conn.name), zap.String("step", mc.Step))
	f = append(f, fields...)
	f = append(f, zap.String("fix", fmt.Sprintf("connection %q: %s", conn.name, mc.Fix)))
	h.logger.Error("sign-in misconfigured", f...)
	renderError(w, http.StatusInternalServerError, "Sign-in misconfigured",
		"This sign-in is misconfigured. Tell the site's administrator.", "")
}

// provisioningFailure renders a provisioning error. Every branch ends
// without a session (S9).
func (h *Handler) provisioningFailure(w http.ResponseWriter, r *http.Request, conn *Connection, c provisioner.Claims, err error, restart string) {
	h.endOtherSession(w, r, conn.name, c.Subject)
	h.emit(provisioningEvent(conn.name, c.Subject, err, r.Context().Err()))
	switch {
	case errors.Is(err, provisioner.ErrUserDisabled):
		renderError(w, http.StatusForbidden, "Account disabled", "Your account on this site is disabled. Contact the site's administrator.", "")
	case errors.Is(err, provisioner.ErrUsernameConflict), errors.Is(err, provisioner.ErrUsernameTaken):
		renderError(w, http.StatusConflict, "Account conflict",
			"Another account on this site already uses your username. Nothing was changed, and you were not signed in. Contact the site's administrator.", "")
	case errors.Is(err, provisioner.ErrEmailConflict):
		renderError(w, http.StatusConflict, "Account conflict",
			"Another account on this site already uses your email address, and this sign-in cannot be linked to it. Nothing was changed, and you were not signed in. Sign in the way you did before, or contact the site's administrator.", "")
	case errors.Is(err, provisioner.ErrInvalidClaims):
		// Also a JIT-off login, which creates nothing: the text speaks of
		// signing in, not of an account.
		renderError(w, http.StatusBadRequest, "Sign-in failed", conn.displayName()+" did not say enough about you to sign you in on this site.", "")
	default:
		renderError(w, http.StatusServiceUnavailable, "Sign-in temporarily unavailable",
			"Your account could not be set up or updated right now, so you were not signed in. Try again in a moment.", restart)
	}
}

// provisioningEvent is the outcome of a login that provisioning ended
// with err: the user refused (disabled) or denied (a conflict, too few
// claims), or the login failed because the site could not finish it
// (its store down): that is no decision about the user, and counts and
// logs as the site's failure. A store call that ended because the
// browser went away (gone, the request's context error, is what the
// store answered) failed through nobody's fault: a closed tab is no
// outage to alert on. Any other answer keeps its class, the browser
// gone or not.
func provisioningEvent(connection, subject string, err, gone error) event {
	ev := event{kind: eventLoginDenied, connection: connection, subject: subject, err: err}
	switch {
	case gone != nil && errors.Is(err, provisioner.ErrStoreUnavailable) && errors.Is(err, gone):
		ev.kind, ev.reason = eventLoginFailed, reasonClientGone
	case errors.Is(err, provisioner.ErrUserDisabled):
		ev.kind = eventUserDisabled
		if d, ok := errors.AsType[*provisioner.UserDisabledError](err); ok {
			ev.localID, ev.username = d.UserID, d.Username
		}
	case errors.Is(err, provisioner.ErrUsernameConflict), errors.Is(err, provisioner.ErrUsernameTaken),
		errors.Is(err, provisioner.ErrEmailConflict), errors.Is(err, provisioner.ErrInvalidClaims):
	case errors.Is(err, provisioner.ErrStoreUnavailable):
		ev.kind, ev.reason = eventLoginFailed, reasonStoreUnavailable
	default:
		ev.kind, ev.reason = eventLoginFailed, reasonProvisioningError
	}
	return ev
}

// maxSignOutForm bounds the sign-out form's body: its token, and the
// return path it goes on to, which form encoding may make three times
// as long.
const maxSignOutForm = 1<<10 + 3*maxReturnURLLength

// serveLogout ends the session here and on every instance sharing the
// store: a copy of the cookie stops working too (S7). A GET only shows a
// confirmation page; the session ends on a POST of that page's form, whose
// token a page on another site cannot know, so a cross-site link or image
// cannot sign anyone out.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	s := h.app.sessions.openAny(r)
	if r.Method != http.MethodPost {
		rd := r.URL.Query().Get("rd")
		if s == nil {
			// Nothing to end: say so, and clear whatever stale cookie
			// there is (a cookie that does not open is nobody's session),
			// and any login paused on the consent or username page.
			h.app.sessions.clear(w, r)
			h.endPending(w, r)
			h.renderSignedOut(w, r, rd)
			return
		}
		h.renderLogout(w, s, rd)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSignOutForm)
	if err := r.ParseForm(); err != nil || (s != nil && !checkLogoutCSRF(s, r.PostForm.Get("csrf"))) || (s == nil && postedFromElsewhere(r)) {
		// Not this page's form: a page elsewhere posted it. Nothing is
		// revoked and no cookie is cleared; the confirmation page offers
		// the real form. Without a session too, when the browser says
		// another origin sent it: a browser keeps its SameSite=Lax
		// cookie from another site's POST, so such a form arrives
		// without one, and clearing the cookie in the answer would sign
		// that browser out.
		renderPage(w, http.StatusForbidden, pageData{Title: "Sign-out not confirmed",
			Message: "This sign-out did not come from this site's sign-out page, so you are still signed in.",
			Link:    h.logoutURL(r.Form.Get("rd")), LinkLabel: "Go to the sign-out page", Status: http.StatusForbidden})
		return
	}
	// openAny opens the cookie revoked or expired too, so one copy and
	// its form token can be posted again and again: the session's
	// sign-out is recorded (a store write) and audited once, and not
	// after its end.
	if now := time.Now(); s != nil && !h.app.sessions.signedOut(s, now) {
		if err := h.app.sessions.revoke(r.Context(), s); err != nil {
			// Not acknowledged, and the cookie kept, so the user can try
			// again (S17).
			h.logger.Error("logout not recorded; other instances and a restart would accept this session again",
				zap.String("connection", s.Connection), zap.Error(err))
			renderError(w, http.StatusServiceUnavailable, "Sign-out could not be completed",
				"Your sign-out could not be recorded right now. Try again in a moment.", h.logoutURL(r.Form.Get("rd")))
			return
		}
		h.sessionEnded(r, s)
		// Marked whether or not its connection is still configured, so
		// that signedOut spares the store the copies posted after it.
		if h.app.sessions.firstSignOut(s, now) && h.app.Connections[s.Connection] != nil {
			h.emit(sessionEvent(eventLoggedOut, s))
		}
	}
	h.app.sessions.clear(w, r)
	h.endPending(w, r)
	if s != nil && h.continueSignOut(w, r, s, r.Form.Get("rd")) {
		return
	}
	h.renderSignedOut(w, r, r.Form.Get("rd"))
}

// postedFromElsewhere reports whether the browser says a page of another
// origin sent r: Sec-Fetch-Site other than same-origin (or none, typed
// or bookmarked), or an Origin that is not this site's ("null"
// included). A client that sends neither is not a browser posting
// another site's form.
func postedFromElsewhere(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && o != origin(r) {
		return true
	}
	return false
}

// logoutCSRF is the sign-out form's token: derived from the session ID,
// which only the holder of the sealed cookie knows (as mfaCSRF).
func logoutCSRF(s *Session) string {
	sum := sha256.Sum256([]byte("jit_auth logout form\x00" + s.ID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func checkLogoutCSRF(s *Session, token string) bool {
	return subtle.ConstantTimeCompare([]byte(logoutCSRF(s)), []byte(token)) == 1
}

// logoutURL is the sign-out page, going on to rd if it is a safe path.
func (h *Handler) logoutURL(rd string) string {
	if safe, ok := safeReturnPath(rd); ok && safe != "/" {
		return h.PathPrefix + "logout?rd=" + url.QueryEscape(safe)
	}
	return h.PathPrefix + "logout"
}

// renderSignedOut ends a sign-out: on to rd if it is a safe same-origin
// path (S2), else the "Signed out" page.
func (h *Handler) renderSignedOut(w http.ResponseWriter, r *http.Request, rd string) {
	if safe, ok := safeReturnPath(rd); ok && rd != "" {
		http.Redirect(w, r, safe, http.StatusSeeOther)
		return
	}
	renderMessage(w, http.StatusOK, "Signed out", "You are signed out.", h.PathPrefix+"login", "Sign in again")
}

// clip bounds user-controlled text shown back to the user.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
