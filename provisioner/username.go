package provisioner

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxUsernameLength bounds usernames in bytes after normalisation.
const MaxUsernameLength = 128

// NormalizeUsername returns the canonical form under which usernames are
// compared for uniqueness: Unicode NFKC, then lower case, trimmed. Two
// usernames are the same account name exactly when their normalised
// forms are equal, so "Alice", "ALICE" and the full-width "Ａｌｉｃｅ" collide.
//
// NFKC is applied again after lower-casing because lower-casing can make
// new compositions possible ("J\u030C" lowers to "j\u030C", whose NFKC
// form is "\u01F0"); without it the function is not idempotent and such
// look-alike names would not collide.
func NormalizeUsername(s string) string {
	return strings.TrimSpace(norm.NFKC.String(strings.ToLower(norm.NFKC.String(s))))
}

// usernameFromClaims picks the default local username: a verified email,
// else the preferred username, else "<connection>-<subject>". The result
// is cleaned so it is safe to pass in a header.
func usernameFromClaims(connection string, c Claims) string {
	for _, candidate := range []string{
		verifiedEmail(c),
		c.PreferredUsername,
		connection + "-" + c.Subject,
	} {
		if u := cleanUsername(candidate); u != "" {
			return u
		}
	}
	return ""
}

func verifiedEmail(c Claims) string {
	if c.EmailVerified {
		return c.Email
	}
	return ""
}

// cleanUsername normalises s and drops characters that have no place in a
// username or an HTTP header (controls, spaces, separators).
func cleanUsername(s string) string {
	s = NormalizeUsername(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == ',' || r == ';' || r == '"' {
			return -1
		}
		return r
	}, s)
	if len(s) > MaxUsernameLength {
		return ""
	}
	return s
}

// DefaultUsername is the username a user of connection gets by default:
// a verified email, else the preferred username, else
// "<connection>-<subject>". It is "" only when none of these is usable.
func DefaultUsername(connection string, c Claims) string {
	return usernameFromClaims(connection, c)
}
