package connector

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"
)

// The kinds of error a connector returns. jit_auth maps each to what the
// user sees; the wrapped text goes to the log only.
var (
	// ErrUnavailable: the provider could not be reached or answered with
	// a server error. The user is told to try again (502).
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrRejected: the provider's answer failed verification, or the
	// provider refused this login's code. The user starts again (401).
	ErrRejected = errors.New("identity provider response rejected")
	// ErrMisconfigured: the provider refused the connection's own
	// settings (client credentials, redirect URI, scopes, issuer). No
	// user can fix that: the user is told to tell the site's
	// administrator (500) and the log says what to change. Return a
	// *Misconfiguration, which wraps it.
	ErrMisconfigured = errors.New("connection misconfigured")
)

// Misconfiguration is an ErrMisconfigured error: where it showed, what
// the provider said (secrets and codes removed) and what to change.
type Misconfiguration struct {
	// Step is where the refusal came: discovery, authorization
	// response, token request, id_token, …
	Step string
	// Said is what the provider said, fit for the log.
	Said string
	// Fix tells the administrator what to change, about "its" (the
	// connection's) settings; the log prefixes the connection's name.
	Fix string
	// Relayed is set when the browser brought what the provider said
	// (an error response on the callback), not the provider itself:
	// anyone who starts a login can send any such answer, so it proves
	// nothing about the settings, and jit_auth neither reports it as a
	// misconfiguration nor gives its Fix on that word alone.
	Relayed bool
	// Code is the error code of a Relayed answer, as it came.
	Code string
}

func (m *Misconfiguration) Error() string {
	return "connection misconfigured: " + m.Step + ": " + m.Said
}

func (m *Misconfiguration) Unwrap() error { return ErrMisconfigured }

// Denied is the provider's answer that it did not sign the user in (an
// OAuth 2 error response such as access_denied): the user's or the
// provider's decision, shown to the user with its code (401).
type Denied struct {
	// Code is the provider's error code, as it sent it; jit_auth bounds
	// it before showing it.
	Code string
}

func (d *Denied) Error() string { return "the identity provider did not sign the user in: " + d.Code }

// maxSaid bounds how much of a provider's error text is kept.
const maxSaid = 200

// Said renders a provider's error code and description for logs: each
// hide value (and its URL-encoded form) is replaced, control characters
// are dropped, and the text is bounded. Some providers echo what was sent
// to them (the client secret, the code), hence hide. The description of
// an authorization response comes from the browser, so it is only ever
// logged, never trusted.
func Said(code, desc string, hide ...string) string {
	s := code
	if desc != "" {
		s += ": " + desc
	}
	if s == "" {
		s = "no error code"
	}
	// Control characters go first: dropped after the redaction, one
	// inside an echoed secret ("s3cr\b3t") would join it together again
	// in the log.
	s = dropControl(s)
	for _, h := range hide {
		if h = dropControl(h); h == "" {
			continue
		}
		s = strings.ReplaceAll(s, h, "[redacted]")
		if e := url.QueryEscape(h); e != h {
			s = strings.ReplaceAll(s, e, "[redacted]")
		}
	}
	if len(s) > maxSaid {
		s = strings.ToValidUTF8(s[:maxSaid], "") + "…"
	}
	return s
}

// SaidErr renders an error of an HTTP exchange with a provider for logs
// and wrapped errors, as Said does a code and description: hide values
// replaced, control characters dropped, bounded. Such errors often quote
// the provider's whole answer (go-oidc's userinfo and discovery errors
// are "<status>: <body>"; an *oauth2.RetrieveError without an error code
// prints its body), and a provider that says what it did not accept
// echoes the access token, the refresh token or the client secret. An
// *oauth2.RetrieveError gives its status and the provider's error code
// and description only; any other error is its text with URL queries
// and user info stripped (RedactErr).
func SaidErr(err error, hide ...string) string {
	if err == nil {
		return ""
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return Said(retrieveStatus(re), re.ErrorDescription, hide...)
	}
	return Said(RedactErr(err).Error(), "", hide...)
}

// retrieveStatus is a failed token endpoint call's HTTP status and
// error code, without the body its Error method prints.
func retrieveStatus(re *oauth2.RetrieveError) string {
	s := "no response"
	if re.Response != nil {
		s = re.Response.Status
	}
	if re.ErrorCode != "" {
		s += ": " + re.ErrorCode
	}
	return s
}

// dropControl removes the characters that would let a provider's text
// (or a browser's, on the callback) forge or hide log lines: control
// characters, C1 included (U+009B is an 8-bit terminal escape, U+0085 a
// line break), the line and paragraph separators, and the bidirectional
// controls (U+202E shows the rest of a line reversed).
func dropControl(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
}

// RedactErr strips URLs' query strings and user info from transport
// errors: a provider URL may carry a code or a token.
func RedactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery = ""
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}

// Unavailable is an ErrUnavailable error whose provider said when to try
// again (a 429 or 503 with Retry-After): whoever retries waits at least
// that long (RFC 9110, section 10.2.3).
type Unavailable struct {
	// RetryAfter is the wait the provider asked for.
	RetryAfter time.Duration
	Err        error
}

func (u *Unavailable) Error() string { return u.Err.Error() }

func (u *Unavailable) Unwrap() error { return u.Err }

// RetryAfter is the wait an error's provider asked for before the next
// request, or 0 when it asked for none.
func RetryAfter(err error) time.Duration {
	var u *Unavailable
	if errors.As(err, &u) && u.RetryAfter > 0 {
		return u.RetryAfter
	}
	return 0
}

// maxRetryAfter bounds a provider's Retry-After: a mistaken or hostile
// value must not stop retries for days.
const maxRetryAfter = time.Hour

// ParseRetryAfter reads a Retry-After field, delay-seconds or an
// HTTP-date (RFC 9110, section 10.2.3), as the wait from now, at most an
// hour. It reports false for an absent or malformed field, or a date in
// the past.
func ParseRetryAfter(field string, now time.Time) (time.Duration, bool) {
	field = strings.TrimSpace(field)
	if field == "" {
		return 0, false
	}
	var wait time.Duration
	if field[0] >= '0' && field[0] <= '9' {
		// Only digits; a number too long to be any sane wait is capped.
		for i := 0; i < len(field); i++ {
			if field[i] < '0' || field[i] > '9' {
				return 0, false
			}
		}
		if len(field) > 9 {
			return maxRetryAfter, true
		}
		n, err := strconv.Atoi(field)
		if err != nil {
			return 0, false
		}
		wait = time.Duration(n) * time.Second
	} else {
		at, err := http.ParseTime(field)
		if err != nil {
			return 0, false
		}
		wait = at.Sub(now)
	}
	if wait <= 0 {
		return 0, false
	}
	return min(wait, maxRetryAfter), true
}
