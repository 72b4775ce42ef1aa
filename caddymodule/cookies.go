package caddymodule

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The module's cookies (session, login flow, pending login, TOTP
// enrolment) are for the module alone: an upstream that logs its
// requests, or is compromised, would otherwise hold live sessions (S16).
// They are taken off every request this handler passes on, and the other
// cookies are left byte for byte as the client sent them.

// moduleCookiePrefix starts the name of every cookie the module sets,
// after the optional __Host- prefix (see cookieName).
const moduleCookiePrefix = "jitauth_"

// isModuleCookie reports whether a cookie name is the module's. It
// matches more than the exact names the module sets (any letter case,
// __Host- or __Secure-, any jitauth_ name), since an upstream's cookie
// parser may be more lenient than net/http's; it does not allocate.
func isModuleCookie(name string) bool {
	if len(name) > 0 && name[0] != '_' { // no __Host- or __Secure- to skip
		return hasPrefixFold(name, moduleCookiePrefix)
	}
	for _, p := range [...]string{hostPrefix, "__Secure-"} {
		if hasPrefixFold(name, p) {
			name = name[len(p):]
			break
		}
	}
	return hasPrefixFold(name, moduleCookiePrefix)
}

// hasPrefixFold reports whether s starts with the ASCII prefix in any
// letter case: strings.EqualFold(s[:len(prefix)], prefix), in a few
// instructions, since every request this handler passes on asks it.
// Against an ASCII prefix, EqualFold matches ASCII letters only: a
// multi-byte letter that folds to an ASCII one (the Kelvin sign, the
// long s) would leave fewer letters than the prefix has
// (FuzzHasPrefixFold).
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != lowerASCII(prefix[i]) {
			return false
		}
	}
	return true
}

// trimOWS is strings.Trim(s, " \t"), the optional whitespace around a
// cookie pair (RFC 9110, section 5.6.3), without the cutset strings.Trim
// builds on every call: every request this handler passes on is
// scanned.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// cookiePairName is the name of one "name=value" pair of a Cookie
// header, trimmed as net/http trims it.
func cookiePairName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	return trimOWS(name)
}

// withoutModuleCookies returns a Cookie header line without the module's
// cookies, and those cookies as a line of their own. The remaining pairs
// keep their bytes, their order and the separators between them (leading
// whitespace aside); kept is "" when nothing but separators remains.
// Pairs are separated by ';' (RFC 6265, section 5.4), as net/http reads
// them. When the module's cookies are next to each other at the start or
// the end of the line, as browsers send them, nothing is allocated; in
// the middle, one copy of the line.
func withoutModuleCookies(line string) (kept, removed string) {
	// One pass to classify the pairs: where the kept and the removed
	// ones start and end, and whether each kind is one unbroken run.
	kStart, kEnd, rStart, rEnd := -1, -1, -1, -1
	kRuns, rRuns := 0, 0
	prevRemoved := false
	for start := 0; start <= len(line); {
		end := strings.IndexByte(line[start:], ';')
		if end < 0 {
			end = len(line)
		} else {
			end += start
		}
		isMod := isModuleCookie(cookiePairName(line[start:end]))
		switch {
		case isMod:
			if rStart < 0 {
				rStart = start
			}
			rEnd = end
			if !prevRemoved || rRuns == 0 {
				rRuns++
			}
		default:
			if kStart < 0 {
				kStart = start
			}
			kEnd = end
			if prevRemoved || kRuns == 0 {
				kRuns++
			}
		}
		prevRemoved = isMod
		start = end + 1
	}
	if rStart < 0 {
		return line, ""
	}
	switch {
	case kRuns <= 1 && kStart >= 0:
		kept = line[kStart:kEnd]
	case kRuns == 2 && rRuns == 1:
		// Kept, the module's, kept: one copy, the pairs before the run
		// and the ';' that ends the run with what follows.
		kept = line[:rStart-1] + line[rEnd:]
	case kRuns > 1:
		kept = joinPairs(line, false)
	}
	if rRuns == 1 {
		removed = line[rStart:rEnd]
	} else {
		removed = joinPairs(line, true)
	}
	kept = strings.TrimLeft(kept, " \t")
	if strings.Trim(kept, " \t;") == "" {
		kept = ""
	}
	return kept, trimOWS(removed)
}

// joinPairs joins the pairs of line that are the module's (module) or
// not: the kept ones with ';' and their own spacing, the module's ones
// trimmed and with "; ".
func joinPairs(line string, module bool) string {
	var b strings.Builder
	b.Grow(len(line))
	first := true
	for part := range strings.SplitSeq(line, ";") {
		if isModuleCookie(cookiePairName(part)) != module {
			continue
		}
		switch {
		case !first && module:
			b.WriteString("; ")
		case !first:
			b.WriteByte(';')
		}
		first = false
		if module {
			part = trimOWS(part)
		}
		b.WriteString(part)
	}
	return b.String()
}

// withholdModuleCookies takes the module's cookies off h's Cookie header
// lines, dropping the lines that held nothing else, and returns them as
// one line ("" if there were none). Lines without the module's cookies
// stay as they came, empty ones too.
func withholdModuleCookies(h http.Header) string {
	lines := h["Cookie"]
	if len(lines) == 1 && strings.IndexByte(lines[0], ';') < 0 {
		// One cookie: what a browser that holds only the session sends.
		if isModuleCookie(cookiePairName(lines[0])) {
			delete(h, "Cookie")
			return trimOWS(lines[0])
		}
		return ""
	}
	var held string
	n := 0
	for _, line := range lines {
		kept, removed := withoutModuleCookies(line)
		if removed != "" {
			if held == "" {
				held = removed
			} else {
				held += "; " + removed
			}
		}
		// A line without the module's cookies is kept as it came: were
		// an empty one dropped, the lines after it would be moved down
		// over it in place while the header kept its length.
		if kept != "" || removed == "" {
			lines[n] = kept
			n++
		}
	}
	switch {
	case held == "":
	case n == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = lines[:n]
	}
	return held
}

// heldCookies keeps the module's cookies that a jit_auth handler took off
// a request, for a later jit_auth handler of the same request (see
// cleanRequest). It is a request variable, so String keeps the values out
// of {http.vars.*} placeholders and logs.
type heldCookies struct{ line string }

func (*heldCookies) String() string { return "" }

// passOn hands the request to the next handler without the module's
// cookies, keeping them for a later jit_auth handler if there can be one.
func (h *Handler) passOn(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.withhold(r)
	return next.ServeHTTP(w, r)
}

// withhold takes the module's cookies off r, keeping them for a later
// jit_auth handler if there can be one.
func (h *Handler) withhold(r *http.Request) {
	if held := withholdModuleCookies(r.Header); held != "" && !h.app.alone(h.peers) {
		caddyhttp.SetVar(r.Context(), varHeldCookies, &heldCookies{line: held})
	}
}

// maxCookiesScanned bounds the pairs cookieValue reads itself. A request
// with more goes through net/http's own reader, so that net/http's limit
// on the number of cookies (GODEBUG httpcookiemaxnum) applies exactly.
const maxCookiesScanned = 100

// cookieValue is r.Cookie(name).Value, for a name that is a token (as
// the module's cookie names are): the value of the first cookie
// named name, over the Cookie header lines in order, that net/http
// accepts (bytes it allows; one pair of double quotes stripped). The
// session is read on every authenticated request, and net/http builds a
// Cookie for every match and checks every other pair's name on the way;
// this reads the lines in place and allocates nothing. FuzzCookieValue
// holds it to net/http's answer.
func cookieValue(r *http.Request, name string) (string, bool) {
	return findCookie(r, name, true)
}

// firstCookie is the value of the first cookie named name, whether
// net/http would accept it or not: cookieValue without checking the
// value's bytes, for a caller that looks the value up among values it
// checked before (the session cache) and calls cookieValue when it is
// not there. A value found there is one net/http accepts, so it is also
// the one cookieValue returns.
func firstCookie(r *http.Request, name string) (string, bool) {
	return findCookie(r, name, false)
}

// findCookie is cookieValue, checking values or not. It reads the lines
// once: after the cookie is found, the pairs that follow are only
// counted.
func findCookie(r *http.Request, name string, check bool) (string, bool) {
	if name == "" {
		return "", false
	}
	var value string
	found := false
	pairs := 0
	for _, line := range r.Header["Cookie"] {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			if pairs++; pairs > maxCookiesScanned {
				c, err := r.Cookie(name)
				if err != nil {
					return "", false
				}
				return c.Value, true
			}
			var part string
			part, line, _ = strings.Cut(line, ";")
			if found {
				continue
			}
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !check || validCookieValue(v) {
				value, found = v, true
			}
		}
	}
	return value, found
}

// validCookieValue reports whether net/http accepts v as a cookie value
// (its validCookieValueByte for every byte), one table load a byte.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if !cookieValueBytes[v[i]] {
			return false
		}
	}
	return true
}

// cookieValueBytes are the bytes net/http allows in a cookie value.
var cookieValueBytes = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != ';' && b != '\\'
	}
	return t
}()
