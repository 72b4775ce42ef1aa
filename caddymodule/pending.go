package caddymodule

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

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
	// Retries counts the answers this login already needed again (a
	// username refused); each spends an entry in the replay set, so
	// they are bounded (maxConsentRetries).
	Retries int `json:"n,omitempty"`
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

// sealPending writes the pending login's cookie.
func (h *Handler) sealPending(w http.ResponseWriter, p *pendingLogin, secure bool, now time.Time) error {
	return h.app.sessions.seal.seal(w, cookieName(pendingCookieBase, secure), p, time.Unix(p.ExpiresAt, 0).Sub(now), secure)
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

func clearPending(w http.ResponseWriter, secure bool) {
	setCookie(w, cookieName(pendingCookieBase, secure), "", -1, secure)
}
