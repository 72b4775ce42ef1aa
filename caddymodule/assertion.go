package caddymodule

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"

	"github.com/jitauth/caddy-jitauth/assertion"
)

// AssertionConfig sends the upstream a signed identity assertion: a
// short-lived JWT, in a header of its own, that says who the user is. An
// upstream that verifies it (against <path_prefix>jwks.json) need not
// trust plain Remote-* headers, which anything between the proxy and it
// could set. It is signed once per session and key, and again when half
// its lifetime has passed or the user's profile changed, not on every
// request.
type AssertionConfig struct {
	// Header carries the assertion. Client-supplied copies are removed.
	// Default: Jit-Assertion.
	Header string `json:"header,omitempty"`

	// Issuer is the assertion's iss: what the upstream pins as the
	// token's issuer. An absolute http or https URL without query or
	// fragment, such as https://sso.example.com. Default: the site's
	// origin, https://host (behind trusted_proxies, the host, port and
	// scheme the proxy forwards). Set it when the upstream should not
	// depend on the name it is reached by, or when public sites behind
	// one proxy differ only by port.
	Issuer string `json:"issuer,omitempty"`

	// Audience is the assertion's aud: what the upstream expects to find
	// there. Default: the issuer (the site's origin, https://host, unless
	// configured) followed by the paths of the jit_auth handler's matcher,
	// comma-separated (https://host/admin/* for jit_auth /admin/*), so
	// that each application of a site has an audience of its own and an
	// upstream that pins it refuses another application's assertions.
	// Two applications of one site that would send the same audience are
	// a configuration error.
	Audience string `json:"audience,omitempty"`

	// Lifetime is how long an assertion is valid (its exp minus its
	// iat). It must not exceed the key rotation period. A key stays in
	// the JWKS for the longest lifetime it signed with after it stops
	// signing, also when a reload shortens this. Default: 60s.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// Claims names mapped attributes (see Connection.Map) to carry as
	// claims of the same name, such as department or employee_id. The
	// values are those of the login, from the local user.
	Claims []string `json:"claims,omitempty"`

	// Algorithm signs the assertion: ES256 (the default) or EdDSA.
	Algorithm string `json:"algorithm,omitempty"`
}

const (
	defaultAssertionHeader   = "Jit-Assertion"
	defaultAssertionLifetime = 60 * time.Second
)

// validate checks the assertion settings of an application (label),
// whose identity headers are overridden by headers.
func (c *AssertionConfig) validate(label string, rotation time.Duration, headers map[string]string) error {
	if c.Header != "" && !httpguts.ValidHeaderFieldName(c.Header) {
		return fmt.Errorf("%s: assertion header %q is not a valid header name", label, c.Header)
	}
	if c.Header != "" && unfitHeader(c.Header) {
		return fmt.Errorf("%s: assertion header %s cannot carry the assertion; choose another name", label, c.Header)
	}
	if name := identityHeaderNamed(c.Header, headers); name != "" {
		return fmt.Errorf("%s: assertion header %s is the identity header %s, so the upstream would find the token there in place of the user's %s; choose another name, such as the default %s",
			label, c.Header, name, name, defaultAssertionHeader)
	}
	if c.Issuer != "" {
		if err := checkAssertionIssuer(c.Issuer); err != nil {
			return fmt.Errorf("%s: assertion issuer %q %v", label, c.Issuer, err)
		}
	}
	if c.Algorithm != "" && !assertion.Supported(c.Algorithm) {
		return fmt.Errorf("%s: assertion algorithm %q: use ES256 or EdDSA", label, c.Algorithm)
	}
	if lt := time.Duration(c.Lifetime); lt < 0 || lt > rotation {
		return fmt.Errorf("%s: assertion lifetime %s must be positive and at most the key rotation period (assertion_key_rotation %s)", label, lt, rotation)
	}
	for _, name := range c.Claims {
		if err := assertion.CheckAttributeClaim(name); err != nil {
			return fmt.Errorf("%s: assertion %v", label, err)
		}
	}
	return nil
}

// maxAssertionIssuer bounds a configured issuer, which every assertion
// carries.
const maxAssertionIssuer = 1024

// checkAssertionIssuer says what is wrong with a configured issuer, or
// nil. Upstreams compare iss as a string, so it is one exact URL: no
// query, fragment or user information that one library would keep and
// another drop, nothing a header or log line would mangle.
func checkAssertionIssuer(iss string) error {
	if len(iss) > maxAssertionIssuer {
		return fmt.Errorf("is longer than %d bytes", maxAssertionIssuer)
	}
	for i := 0; i < len(iss); i++ {
		if iss[i] <= ' ' || iss[i] >= 0x7f {
			return fmt.Errorf("has a space, a control character or a non-ASCII byte; write it as an absolute URL such as https://sso.example.com (percent-encode what it needs)")
		}
	}
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute http or https URL, such as https://sso.example.com")
	}
	if !strings.HasPrefix(iss, u.Scheme+"://") {
		// url.Parse lower-cases the scheme, an upstream's string
		// comparison does not: HTTPS://sso.example.com is not the issuer
		// it is told to expect.
		return fmt.Errorf("must start with %s:// in lower case: upstreams compare it as a string", u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || strings.Contains(iss, "#") {
		return fmt.Errorf("must have no user information, query or fragment: upstreams compare it as a string")
	}
	return nil
}

// identityHeaderNamed returns the identity header (a default one or one
// of headers) that the header name is a spelling of, or "". Spellings
// are folded as headerKey folds them: an upstream that reads Remote_User
// as Remote-User would read the token as the user.
func identityHeaderNamed(name string, headers map[string]string) string {
	if name == "" {
		return ""
	}
	key := headerKey(name)
	// The headers the application sends: configured ones with a value,
	// and the defaults that no override names (one that drops a default,
	// an empty value, leaves its name free).
	for n, v := range headers {
		if headerKey(n) == key {
			if v == "" {
				return ""
			}
			return n
		}
	}
	for _, d := range defaultHeaders {
		if headerKey(d.name) == key {
			return d.name
		}
	}
	return ""
}

// assertionSigner is one application's assertion: its settings, the
// ring it signs with, and the assertions signed for live sessions.
type assertionSigner struct {
	header   string
	issuer   string // configured; "" for the site's origin
	audience string // configured; "" for the default
	scope    string // what the default audience adds to the origin
	lifetime time.Duration
	claims   []string
	ring     *atomic.Pointer[assertion.Ring]

	mu    sync.RWMutex
	cache map[string]*signedAssertion // by session ID
}

// signedAssertion is an assertion signed for one session, with what it
// was signed from, so a later request can reuse it.
type signedAssertion struct {
	from      *Session
	issuer    string
	kid       string
	token     string
	refreshAt int64
}

// maxCachedAssertions bounds the cache, as maxCachedSessions does.
const maxCachedAssertions = 10_000

// newAssertionSigner prepares the assertion of the application that a
// jit_auth handler with the given matcher paths protects.
func newAssertionSigner(c *AssertionConfig, keys *assertionKeys, paths []string) *assertionSigner {
	alg := c.Algorithm
	if alg == "" {
		alg = assertion.ES256
	}
	header := c.Header
	if header == "" {
		header = defaultAssertionHeader
	}
	lifetime := time.Duration(c.Lifetime)
	if lifetime == 0 {
		lifetime = defaultAssertionLifetime
	}
	return &assertionSigner{
		header:   textproto.CanonicalMIMEHeaderKey(header),
		issuer:   c.Issuer,
		audience: c.Audience,
		scope:    strings.Join(paths, ","),
		lifetime: lifetime,
		claims:   slices.Clone(c.Claims),
		ring:     keys.need(alg, lifetime),
		cache:    map[string]*signedAssertion{},
	}
}

// set puts the assertion for s on the request to the upstream.
func (a *assertionSigner) set(r *http.Request, s *Session) error {
	tok, err := a.token(r, s, time.Now())
	if err != nil {
		return err
	}
	r.Header[a.header] = []string{tok}
	return nil
}

// token returns a valid assertion for s on this request's site, from the
// cache when one signed before still fits: same session profile, same
// site, the key that signs now, and less than half its lifetime gone.
func (a *assertionSigner) token(r *http.Request, s *Session, now time.Time) (string, error) {
	key := a.ring.Load().Signing(now)
	if key == nil {
		return "", fmt.Errorf("no assertion signing key has been read from Caddy's storage")
	}
	iss := a.issuer
	if iss == "" {
		iss = servedOrigin(r)
	}
	a.mu.RLock()
	e := a.cache[s.ID]
	a.mu.RUnlock()
	if e != nil && e.kid == key.ID && e.issuer == iss && now.Unix() < e.refreshAt &&
		(e.from == s || sameProfile(e.from, s)) {
		return e.token, nil
	}
	c := a.claimsFor(iss, s, now)
	tok, err := key.Sign(c)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	makeRoom(a.cache, maxCachedAssertions, func(old *signedAssertion) bool { return old.refreshAt <= now.Unix() })
	a.cache[s.ID] = &signedAssertion{from: s, issuer: iss, kid: key.ID, token: tok,
		refreshAt: min(c.IssuedAt+int64(a.lifetime/time.Second)/2, c.ExpiresAt)}
	a.mu.Unlock()
	return tok, nil
}

// claimsFor is what the assertion issued by iss (configured, or the
// site's origin) says about s.
func (a *assertionSigner) claimsFor(iss string, s *Session, now time.Time) assertion.Claims {
	aud := a.audience
	if aud == "" {
		aud = iss + a.scope
	}
	sub := s.UserID
	if sub == "" {
		// JIT off: the provider's subject, qualified by the connection,
		// so that two providers' subjects never meet (S15).
		sub = s.Connection + ":" + s.Subject
	}
	// Never valid after the session it vouches for: a bearer session ends
	// at its token's exp, which may be sooner than a long lifetime.
	exp := now.Add(a.lifetime).Unix()
	if s.ExpiresAt > 0 && s.ExpiresAt < exp {
		exp = s.ExpiresAt
	}
	c := assertion.Claims{
		Issuer: iss, Audience: aud, Subject: sub,
		IssuedAt: now.Unix(), ExpiresAt: exp,
		Username: s.Username, Email: s.Email, EmailVerified: s.EmailVerified, Name: s.Name,
		Groups: s.Groups, Roles: s.Roles, Connection: s.Connection,
	}
	switch {
	case s.MFA && strings.HasPrefix(s.ID, bearerSessionPrefix):
		// The provider said "mfa"; which factor, only it knows.
		c.AMR = []string{"mfa"}
	case s.MFA:
		c.AMR = []string{"mfa", "otp"} // this module's TOTP
	}
	for _, name := range a.claims {
		if v, ok := s.Attributes[name]; ok {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[name] = v
		}
	}
	return c
}

// sameProfile reports whether two views of one session say the same
// about the user (the background refresh makes a new view when the
// directory changed).
func sameProfile(a, b *Session) bool {
	return a.ID == b.ID && a.Username == b.Username && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.Name == b.Name && a.MFA == b.MFA && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Roles, b.Roles)
}
