package caddymodule

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// pendingCookieBase names the cookie that holds a login waiting for the
// user's answer on the consent or username page.
const pendingCookieBase = "jitauth_pending"

// pendingLogin is a verified login that provisioning paused to ask the
// user (consent, or a username). Like the flow it continues, it lives
// only in a sealed cookie in the browser that logged in, so another
// browser cannot finish it; it expires with the flow and is single-use.
type pendingLogin struct {
	// ID marks the pending login used once it is answered.
	ID string `json:"id"`
	// CSRF must come back in the form, so a page elsewhere cannot post
	// an answer (the cookie is SameSite=Lax as well).
	CSRF       string        `json:"x"`
	Connection string        `json:"c"`
	Claims     pendingClaims `json:"cl"`
	// Outcome is provisioner.OutcomeNeedsConsent or OutcomeNeedsUsername.
	Outcome string `json:"o"`
	// Consent is what the user is asked to agree to, and Attributes the
	// values the page shows.
	Consent    []string                     `json:"a"`
	Attributes []provisioner.AttributeValue `json:"v,omitempty"`
	// Roles are the local roles this connection's rules grant on this
	// login: they are stored too, so the page lists them.
	Roles []string `json:"ro,omitempty"`
	// Username is the suggested (or last typed) username.
	Username  string `json:"u,omitempty"`
	ReturnTo  string `json:"r"`
	ExpiresAt int64  `json:"exp"`
	// AuthAt is when the provider's answer was verified (Unix seconds).
	// The session issued after the answer counts from it for the logouts
	// recorded meanwhile (sessions.endedSince): the provider ending its
	// session, or the user signed out everywhere, while the page waited
	// ends this login too. Zero (a cookie sealed before the field
	// existed) counts as the earliest time, refused by any such logout.
	AuthAt int64 `json:"at,omitempty"`
	// Elsewhere: a page of another origin sent the browser to start this
	// login (flowState.Elsewhere). An answer that ends without a session
	// then leaves the browser's session alone, as the callback does: a
	// link elsewhere cannot sign anyone out (endOtherSession).
	Elsewhere bool `json:"el,omitempty"`
	// Retries counts the answers this login already needed again (a
	// username refused); each spends an entry in the replay set, so
	// they are bounded (maxConsentRetries).
	Retries int `json:"n,omitempty"`
	// Vouch is the connection's vouchDigest when the identity was
	// verified: a reload that points the connection at another provider
	// (another issuer, kind or client) must not provision, link or sign
	// in an identity that provider never vouched for. Empty in a cookie
	// sealed before the field existed (Connection.vouchesFor).
	Vouch string `json:"f,omitempty"`
}

// pendingClaims is provisioner.Claims with short JSON keys: the cookie
// must stay under browsers' 4 KB limit with the provider's raw claims.
type pendingClaims struct {
	Issuer             string          `json:"i,omitempty"`
	Subject            string          `json:"s"`
	Email              string          `json:"e,omitempty"`
	EmailVerified      bool            `json:"ev,omitempty"`
	EmailVerifiedKnown bool            `json:"ek,omitempty"`
	Name               string          `json:"n,omitempty"`
	GivenName          string          `json:"gn,omitempty"`
	FamilyName         string          `json:"fn,omitempty"`
	PreferredUsername  string          `json:"pu,omitempty"`
	Picture            string          `json:"p,omitempty"`
	Groups             []string        `json:"g,omitempty"`
	GroupsSent         bool            `json:"gs,omitempty"`
	Raw                json.RawMessage `json:"raw,omitempty"`
}

func toPendingClaims(c provisioner.Claims) pendingClaims {
	p := pendingClaims{
		Issuer: c.Issuer, Subject: c.Subject, Email: c.Email, EmailVerified: c.EmailVerified,
		EmailVerifiedKnown: c.EmailVerifiedKnown, Name: c.Name, GivenName: c.GivenName,
		FamilyName: c.FamilyName, PreferredUsername: c.PreferredUsername, Picture: c.Picture,
		Groups: c.Groups, GroupsSent: c.Groups != nil,
	}
	if json.Valid(c.Raw) {
		p.Raw = c.Raw
	}
	return p
}

func (p pendingClaims) claims() provisioner.Claims {
	c := provisioner.Claims{
		Issuer: p.Issuer, Subject: p.Subject, Email: p.Email, EmailVerified: p.EmailVerified,
		EmailVerifiedKnown: p.EmailVerifiedKnown, Name: p.Name, GivenName: p.GivenName,
		FamilyName: p.FamilyName, PreferredUsername: p.PreferredUsername, Picture: p.Picture,
		Groups: p.Groups, Raw: []byte(p.Raw),
	}
	if p.GroupsSent && c.Groups == nil {
		c.Groups = []string{}
	}
	return c
}

// sealPending writes the pending login's cookie; a return path too long
// to fit beside the claims becomes "/" (sealReturning).
func (h *Handler) sealPending(w http.ResponseWriter, p *pendingLogin, secure bool, now time.Time) error {
	return h.sealReturning(&p.ReturnTo, p.Connection, func() error {
		return h.app.sessions.seal.seal(w, cookieName(pendingCookieBase, secure), p, time.Unix(p.ExpiresAt, 0).Sub(now), secure)
	})
}

// openPending reads the pending login of this browser, if it is intact
// and unexpired.
func (h *Handler) openPending(r *http.Request, secure bool, now time.Time) (*pendingLogin, bool) {
	var p pendingLogin
	if !h.app.sessions.seal.open(r, cookieName(pendingCookieBase, secure), &p) {
		return nil, false
	}
	if p.ID == "" || p.CSRF == "" || now.Unix() >= p.ExpiresAt {
		return nil, false
	}
	return &p, true
}

// checkCSRF compares the form's token with the pending login's.
func (p *pendingLogin) checkCSRF(token string) bool {
	return subtle.ConstantTimeCompare([]byte(p.CSRF), []byte(token)) == 1
}

// endPending ends the browser's paused login (one waiting on the consent
// or username page), as a sign-out must: left in place, the next person
// at a shared computer could answer it and be signed in as the user. Its
// ID is spent as an answer's is, so a copy of the cookie cannot be
// answered either.
func (h *Handler) endPending(w http.ResponseWriter, r *http.Request) {
	secure := cookieSecure(r)
	name := cookieName(pendingCookieBase, secure)
	if _, ok := cookieValue(r, name); !ok {
		return
	}
	now := time.Now()
	if p, ok := h.openPending(r, secure, now); ok && h.app.sessions.claim(p.ID, now) {
		if _, err := h.app.sessions.spend(r.Context(), p.ID, time.Unix(p.ExpiresAt, 0)); err != nil {
			h.logger.Error("a paused login ended by a sign-out could not be recorded; a copy of its cookie could still be answered through another instance",
				zap.String("connection", p.Connection), zap.Error(err))
		}
	}
	clearPending(w, secure)
}

func clearPending(w http.ResponseWriter, secure bool) {
	setCookie(w, cookieName(pendingCookieBase, secure), "", -1, secure)
	setCookie(w, cookieName(pendingTokensCookieBase, secure), "", -1, secure)
}

// pendingTokensCookieBase names the cookie that holds, beside a pending
// login, the login's tokens that a session feature keeps (lifecycle.go).
// They have a cookie of their own: with the provider's claims, an ID
// token does not fit in the pending cookie's 4 KB.
const pendingTokensCookieBase = "jitauth_pending_tokens"

// pendingTokens are a paused login's tokens, bound to its pending login
// by the CSRF token, which every pending login of one sign-in shares
// (askAgain keeps it) and no other has.
type pendingTokens struct {
	Bind         string `json:"b"`
	IDToken      string `json:"it,omitempty"`
	RefreshToken string `json:"rt,omitempty"`
	TokenExpiry  int64  `json:"te,omitempty"`
}

// keepPendingTokens writes the tokens of c that the features of conn
// keep, for p. Without such a feature, or tokens, it writes nothing.
// Tokens too large for a cookie are left out: the features can do
// without them (the session then does not follow the provider, or its
// sign-out there sends no hint), and the login must not fail for them.
func (h *Handler) keepPendingTokens(w http.ResponseWriter, r *http.Request, conn *Connection, p *pendingLogin, c provisioner.Claims, now time.Time) {
	carry := tokensCarried(conn)
	t := pendingTokens{Bind: p.CSRF}
	if carry.idToken {
		t.IDToken = c.IDToken
	}
	if carry.refreshToken && c.RefreshToken != "" {
		t.RefreshToken = c.RefreshToken
		if !c.TokenExpiry.IsZero() {
			t.TokenExpiry = c.TokenExpiry.Unix()
		}
	}
	if t.IDToken == "" && t.RefreshToken == "" {
		return
	}
	secure := cookieSecure(r)
	if err := h.app.sessions.seal.seal(w, cookieName(pendingTokensCookieBase, secure), &t, time.Unix(p.ExpiresAt, 0).Sub(now), secure); err != nil {
		h.logger.Warn("the provider's tokens are too large to keep while asking the user; this session will not refresh, or sign out at the provider with a hint",
			zap.String("connection", conn.name), zap.Error(err))
	}
}

// withPendingTokens is c with the tokens kept for p, if r carries them.
func (h *Handler) withPendingTokens(r *http.Request, p *pendingLogin, c provisioner.Claims) provisioner.Claims {
	var t pendingTokens
	if !h.app.sessions.seal.open(r, cookieName(pendingTokensCookieBase, cookieSecure(r)), &t) || !p.checkCSRF(t.Bind) {
		return c
	}
	c.IDToken, c.RefreshToken = t.IDToken, t.RefreshToken
	if t.TokenExpiry != 0 {
		c.TokenExpiry = time.Unix(t.TokenExpiry, 0)
	}
	return c
}
