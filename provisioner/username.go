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
