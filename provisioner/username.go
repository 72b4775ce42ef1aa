package provisioner

import (
	"fmt"
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
// username or an HTTP header (controls, spaces, separators), and every
// default-ignorable code point (format characters such as zero-width
// spaces and joiners, bidirectional overrides and the byte order mark;
// variation selectors; the combining grapheme joiner; the Hangul
// fillers): they render as nothing, so "bob\u200b" or "admin\u3164"
// would read as "bob" or "admin" while being another name to the store.
func cleanUsername(s string) string {
	s = NormalizeUsername(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) || invisible(r) || r == ',' || r == ';' || r == '"' {
			return -1
		}
		return r
	}, s)
	if len(s) > MaxUsernameLength {
		return ""
	}
	return s
}

// EscapeMark is the escape character of the part after the connection
// in a JIT-off name (escapeQualified); no local username contains it, so
// a local name never equals a qualified one once percent-decoded
// ("corp%3Asub" would read as "corp:sub").
const EscapeMark = "%"

// QualifierSeparator joins a connection name and a provider's value in a
// JIT-off session name ("github:12345"). No local username contains it
// and no connection name can, so a qualified name never equals a local
// username, nor another connection's name.
const QualifierSeparator = ":"

// verifiedEmailName is the name a verified email gives: the email,
// normalised, when the provider (or trust_email) vouches for it and it
// is clean as it stands; else "". A verified email names the owner of
// one mailbox, so it is the same name on every connection, JIT on or
// off. An address with ':' is never a name (the separator is reserved).
func verifiedEmailName(pr Profile) string {
	if !pr.EmailVerified {
		return ""
	}
	n := NormalizeUsername(pr.Email)
	if n == "" || n != cleanUsername(pr.Email) || !strings.Contains(n, "@") || strings.Contains(n, QualifierSeparator) ||
		n != plainName(n) {
		return ""
	}
	// The name is the address as the provider verified it, up to ASCII
	// letter case. Unicode folding would make another mailbox's name of
	// it: "\u212Aate@" (Kelvin sign) lowers to "kate@", the full-width
	// "\uff41lice@" folds to "alice@".
	if n != asciiLower(strings.TrimSpace(pr.Email)) {
		return ""
	}
	return n
}

// invisible reports whether r is a default-ignorable code point
// (Unicode's Default_Ignorable_Code_Point, from the properties it is
// derived from).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// unsafeInName are the characters a name never carries as they are:
// upstreams put the name in paths (`root * /home/{http.auth.user.id}`,
// per-user directories) and in pages, where a slash or backslash walks
// out of the directory and angle brackets open markup.
const unsafeInName = `/\<>`

// plainName makes a template's result (not an email) safe in a path
// segment and in markup: unsafeInName become '_', and so does a leading
// '.' (".." and "." are path segments of their own; a leading dot hides
// a file).
func plainName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(unsafeInName, r) {
			return '_'
		}
		return r
	}, s)
	if strings.HasPrefix(s, ".") {
		s = "_" + s[1:]
	}
	return s
}

// asciiLower lower-cases the ASCII letters of s and nothing else.
// HoldsName reports whether u is the local user whose name a JIT-off
// session named name (a verified email, as Policy.SessionName gives it)
// stands for: u's email is verified and is that address up to ASCII
// letter case. Unicode folding would take "\u212Aate@" (Kelvin sign),
// another mailbox, for "kate@" (as in linking).
func HoldsName(u *User, name string) bool {
	return u.EmailVerified && asciiLower(strings.TrimSpace(u.Email)) == name
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// escapeQualified renders a provider's value for the part of a JIT-off
// session name after the connection. Unlike cleanUsername it neither
// folds case nor drops characters, because nothing checks a JIT-off name
// for uniqueness: two values that differ in any byte (case-sensitive
// subjects such as "AbC" and "abc") must give two names. Printable ASCII
// stays as it is; everything else, and '%', ',', ';' and '"', becomes
// %XX, so the result is safe in a comma-separated header.
func escapeQualified(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '%' && c != ',' && c != ';' && c != '"' && !strings.ContainsRune(unsafeInName, rune(c)) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// CheckGroupName reports whether a provider's group can be kept: groups
// travel comma-separated in Remote-Groups and {http.auth.user.groups},
// so a group with a comma would read as two, and a control character has
// no place in a header. The rule matches CheckRoleName's for the
// separator, semicolons and quotes; spaces are allowed inside a name, as
// providers use them ("Domain Users"), but not at either end. Each of
// these would make an upstream read another group: HTTP parsers trim the
// ends of a header value and upstreams trim the items they split off it
// (" admins" arrives as "admins"), and list parsers that follow HTTP's
// list syntax unquote items (`"admins"`) or read what follows ';' as a
// parameter ("admins;x").
func CheckGroupName(g string) error {
	if strings.TrimSpace(g) != g || g == "" || strings.ContainsFunc(g, func(r rune) bool { return r == ',' || r == ';' || r == '"' || unicode.IsControl(r) }) {
		return fmt.Errorf("group name %q: use a non-empty name without commas, semicolons, quotes, control characters or space at either end", g)
	}
	return nil
}

// FilterGroups splits groups into those CheckGroupName keeps and those
// it drops. Dropping, not splitting, a group such as "staff,admins"
// keeps anyone from placing themselves in "admins" by naming a group.
func FilterGroups(groups []string) (kept, dropped []string) {
	for _, g := range groups {
		if CheckGroupName(g) != nil {
			dropped = append(dropped, g)
			continue
		}
		kept = append(kept, g)
	}
	return kept, dropped
}
