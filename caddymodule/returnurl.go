package caddymodule

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxReturnURLLength bounds a return URL; longer ones fall back to "/".
// Dashboards and query tools (Grafana's Explore, a saved search) put
// their whole state in the query, so their deep links run to several
// KiB; 8 KiB is the request line that servers and proxies commonly take
// (nginx's default buffers), so a link that reached the site fits. The
// login carries it in sealed cookies, compressed (compactJSON): such
// links shrink several times over, but one of random characters does
// not, and then the login comes back to "/" (sealReturning).
const maxReturnURLLength = 8 << 10

// sealReturning runs seal, which seals a login's cookie carrying the
// return path *returnTo. When the cookie would be too large
// (errCookieTooLarge: a return path of KiB of random characters does
// not compress), the login goes on without it: the path becomes "/",
// the log says so (its length only: a query may hold tokens), and seal
// runs again. The long link, not the sign-in, is what is given up.
// Anyone can start logins with such a link, so the line is spaced out
// per connection (not for one this handler does not offer, which only a
// Handler built by hand has).
func (h *Handler) sealReturning(returnTo *string, connection string, seal func() error) error {
	err := seal()
	if !errors.Is(err, errCookieTooLarge) || *returnTo == "/" {
		return err
	}
	var skipped uint64
	due := true
	if c := h.connection(connection); c != nil {
		skipped, due = c.longReturnWarned.due(time.Now())
	}
	if due {
		h.logger.Warn("the page asked for is too long to carry through the sign-in; after signing in the browser goes to /",
			zap.String("connection", connection), zap.Int("return_url_bytes", len(*returnTo)), zap.Uint64("not_logged_since_last", skipped))
	}
	*returnTo = "/"
	return seal()
}

// safeReturnPath returns raw if it is a same-origin path that a browser
// cannot resolve to another host, and false otherwise (S2).
//
// Browsers are lenient in ways servers are not: they treat "\" as "/",
// drop tabs and newlines inside URLs, and resolve "//host" and
// "/\host" as scheme-relative. So anything but a plain absolute path is
// refused, and so are percent-encoded slashes, backslashes and control
// characters, which an upstream that decodes and redirects again would
// turn back into the same attacks.
func safeReturnPath(raw string) (string, bool) {
	if raw == "" || len(raw) > maxReturnURLLength || raw[0] != '/' {
		return "", false
	}
	if len(raw) > 1 && (raw[1] == '/' || raw[1] == '\\') {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return "", false
		}
	}
	lower := strings.ToLower(raw)
	// An encoded space is left alone: a browser keeps a space inside a
	// URL (it drops only tabs and newlines there), and documents and
	// wiki pages have them in their paths (/files/Q3%20report.pdf).
	for _, bad := range []string{"%2f", "%5c", "%09", "%0a", "%0d", "%00"} {
		switch bad {
		case "%2f", "%5c":
			// A decoded "/" or "\" right after the first slash would make
			// the path scheme-relative once decoded.
			if strings.HasPrefix(lower[1:], bad) {
				return "", false
			}
		default:
			// Control characters nowhere.
			if strings.Contains(lower, bad) {
				return "", false
			}
		}
	}
	if hasDotSegment(raw) {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	return raw, true
}

// hasDotSegment reports whether the path of raw (and its fragment) has a "." or ".."
// segment, "%2e" counted as "." (as browsers count it) and a ";"
// parameter dropped (as Servlet containers drop it). Browsers resolve
// them before asking, and the redirect is cleaned, so "/./%2F%2Fevil"
// would reach the browser as "/%2F%2Fevil": the encoded slashes refused
// above, moved to the front. No return path a browser sent has them.
func hasDotSegment(raw string) bool {
	// Up to the query only: http.Redirect cleans the fragment with the
	// path, so "/#/../%2F%2Fevil" would reach the browser as "/%2F%2Fevil".
	p, _, _ := strings.Cut(raw, "?")
	for _, seg := range strings.Split(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		seg = strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
