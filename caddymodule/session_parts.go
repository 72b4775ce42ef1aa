package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A session too large for one cookie even compressed (compactJSON), as
// a user in a hundred or more opaque group IDs has (Entra ID sends up to
// 200), is split over at most maxSessionParts cookies. The first, under
// the session cookie's own name, starts with the number of parts and a
// dot ("2."; the base64 of a sealed value never holds a dot); the others
// are named <name>_1 and <name>_2. Each part is a module cookie, so none
// reaches the upstream. The bound keeps a forged count from making a
// request read cookies without end (Vouch GHSA-qqff-5854-px68), and a
// session of one cookie reads as before.
const maxSessionParts = 3

// maxSessionLength bounds a sealed session value, all parts together.
const maxSessionLength = maxSessionParts*maxCookieLength - len("3.")

// sessionPartName is the name of part i of the session cookie name.
func sessionPartName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "_" + strconv.Itoa(i)
}

// splitSession cuts a sealed session value into the values of its
// cookies.
func splitSession(value string) []string {
	if len(value) <= maxCookieLength {
		return []string{value}
	}
	first := maxCookieLength - len("3.")
	n := 1 + (len(value)-first+maxCookieLength-1)/maxCookieLength
	parts := []string{strconv.Itoa(n) + "." + value[:first]}
	for rest := value[first:]; rest != ""; {
		k := min(len(rest), maxCookieLength)
		parts = append(parts, rest[:k])
		rest = rest[k:]
	}
	return parts
}

// joinedSession is first, the value of the session cookie name as read
// by read, joined with the parts that follow it when it is the first of
// several; false when a part is missing or the count is not 2 to
// maxSessionParts.
func joinedSession(r *http.Request, name, first string, read func(*http.Request, string) (string, bool)) (string, bool) {
	if len(first) < 2 || first[1] != '.' {
		return first, true
	}
	n := int(first[0] - '0')
	if n < 2 || n > maxSessionParts {
		return "", false
	}
	var b strings.Builder
	b.WriteString(first[2:])
	for i := 1; i < n; i++ {
		p, ok := read(r, sessionPartName(name, i))
		if !ok {
			return "", false
		}
		b.WriteString(p)
	}
	return b.String(), true
}

// sessionValue is the sealed session value r carries under name, read
// as net/http reads cookies and joined from its parts, or false.
func sessionValue(r *http.Request, name string) (string, bool) {
	v, ok := cookieValue(r, name)
	if !ok {
		return "", false
	}
	return joinedSession(r, name, v, cookieValue)
}

// setSessionCookies sets the cookies of the sealed session value, and
// deletes the parts r carries that a larger session left and this one
// does not use.
func setSessionCookies(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration, secure bool) {
	parts := splitSession(value)
	for i, p := range parts {
		setCookie(w, sessionPartName(name, i), p, maxAge, secure)
	}
	clearSessionParts(w, r, name, len(parts), secure)
}

// clearSessionParts deletes the parts from the from-th on that r
// carries.
func clearSessionParts(w http.ResponseWriter, r *http.Request, name string, from int, secure bool) {
	for i := max(from, 1); i < maxSessionParts; i++ {
		if _, ok := firstCookie(r, sessionPartName(name, i)); ok {
			setCookie(w, sessionPartName(name, i), "", -1, secure)
		}
	}
}
