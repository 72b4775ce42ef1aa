package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// cookieSeal seals and opens every cookie jit_auth keeps in the browser:
// the session, a login's flow, a pending login and a TOTP enrolment. The
// first codec seals; every codec opens, so rotated keys keep working.
// One place holds the rules all four share: a cookie is bounded to
// maxCookieLength before any decoding work, and a missing, oversized,
// tampered, expired or foreign-key cookie is no value, never an error a
// request could turn into a 500.
type cookieSeal []securecookie.Codec

// seal sets the cookie name to v, sealed, for maxAge.
func (c cookieSeal) seal(w http.ResponseWriter, name string, v any, maxAge time.Duration, secure bool) error {
	value, err := c.encode(name, v)
	if err != nil {
		return err
	}
	setCookie(w, name, value, maxAge, secure)
	return nil
}

// sealFlow sets a login's flow cookie. For a connector whose provider
// returns with a cross-site POST it is SameSite=None, which browsers
// send with that POST; on plain HTTP (loopback development, where the
// provider is same-site anyway) browsers refuse SameSite=None, so it
// stays Lax there.
func (c cookieSeal) sealFlow(w http.ResponseWriter, name string, f *flowState, secure, crossSitePost bool) error {
	value, err := c.encode(name, f)
	if err != nil {
		return err
	}
	ck := newCookie(name, value, flowLifetime, secure)
	if crossSitePost && secure {
		ck.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, ck)
	return nil
}

// errCookieTooLarge is encode's error for a value that, sealed, is
// larger than one cookie holds.
var errCookieTooLarge = errors.New("sealed value is larger than a cookie holds")

// encode seals v for the cookie name, for a cookie whose attributes the
// caller sets itself.
func (c cookieSeal) encode(name string, v any) (string, error) {
	value, err := securecookie.EncodeMulti(name, v, c...)
	switch {
	case err != nil && strings.Contains(err.Error(), "value is too long"):
		// Over the codecs' own bound (maxSessionLength), which
		// securecookie reports as text only.
		return "", fmt.Errorf("%w (%d bytes at most): %v", errCookieTooLarge, maxCookieLength, err)
	case err == nil && len(value) > maxCookieLength:
		return "", fmt.Errorf("%w: %d bytes, over the %d a cookie holds", errCookieTooLarge, len(value), maxCookieLength)
	}
	return value, err
}

// encodeSession seals a session, which may take up to maxSessionParts
// cookies (session_parts.go).
func (c cookieSeal) encodeSession(name string, s *Session) (string, error) {
	value, err := securecookie.EncodeMulti(name, s, c...)
	if err != nil {
		return "", fmt.Errorf("%w (a session holds at most %d bytes sealed, over %d cookies)", err, maxSessionLength, maxSessionParts)
	}
	return value, nil
}

// open reads the cookie name of r into v and reports whether it held a
// value sealed with these keys.
func (c cookieSeal) open(r *http.Request, name string, v any) bool {
	ck, err := r.Cookie(name)
	if err != nil {
		return false
	}
	return c.decode(name, ck.Value, v)
}

// decode opens one sealed cookie value, for a caller that already has it.
func (c cookieSeal) decode(name, value string, v any) bool {
	return c.decodeUpTo(name, value, v, maxCookieLength)
}

// decodeSession opens a sealed session value, joined from its parts.
func (c cookieSeal) decodeSession(name, value string, s *Session) bool {
	return c.decodeUpTo(name, value, s, maxSessionLength)
}

func (c cookieSeal) decodeUpTo(name, value string, v any, limit int) bool {
	if len(value) > limit {
		return false
	}
	return securecookie.DecodeMulti(name, value, v, c...) == nil
}
