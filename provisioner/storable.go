package provisioner

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSubjectLength bounds a provider's subject: OpenID Connect allows at
// most 255 ASCII characters, and stores index the identity by it (a
// PostgreSQL B-tree entry holds at most 2704 bytes).
const MaxSubjectLength = 255

// maxEmailLength is the longest address SMTP carries (RFC 5321: a path
// of 256 octets, its angle brackets included). A longer one is no
// address, and the stores index emails.
const maxEmailLength = 254

// storableClaims is raw without what a store cannot keep: NUL characters
// in its strings (PostgreSQL's text and jsonb refuse them, so the same
// claims would sign a user in on SQLite and fail on PostgreSQL every
// time) and invalid UTF-8. It is raw itself when it has neither, the
// usual case. It is only what is stored: names and mappings read the
// claims as the provider sent them, so two values that differ by a NUL
// never give one name.
//
// Raw that is not one JSON object (a connector that keeps a SAML
// assertion's XML, or nothing but text) is stored as {"raw": "<text>"}:
// PostgreSQL's jsonb refuses anything but JSON, where SQLite keeps it, so
// the same connector would sign users in on one store and fail as an
// outage on the other.
func storableClaims(raw []byte) []byte {
	if len(raw) == 0 {
		return raw
	}
	if !jsonObject(raw) {
		out, _ := json.Marshal(map[string]string{"raw": dropNUL(string(raw))}) // invalid UTF-8 becomes U+FFFD
		return out
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	clean, changed := storableValue(v)
	if !changed && !bytes.Contains(raw, []byte(`\u0000`)) && utf8.Valid(raw) && !surrogateEscape(raw) {
		return raw
	}
	out, err := json.Marshal(clean)
	if err != nil {
		return raw
	}
	return out
}

// surrogateEscape reports whether raw has a \uD800-\uDFFF escape: one
// alone (as JavaScript's JSON.stringify writes a broken string) is JSON
// to Go, which reads it as U+FFFD, and not to PostgreSQL's jsonb.
// Re-encoded, a pair is its character and a lone one U+FFFD.
func surrogateEscape(raw []byte) bool {
	for i := bytes.Index(raw, []byte(`\u`)); i >= 0 && i+2 < len(raw); {
		if c := raw[i+2]; c == 'd' || c == 'D' {
			if i+3 < len(raw) && strings.IndexByte("89abAB", raw[i+3]) >= 0 {
				return true
			}
		}
		next := bytes.Index(raw[i+2:], []byte(`\u`))
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

// jsonObject reports whether raw is one JSON object and nothing else.
func jsonObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(raw)
}

// nonzero reports whether the JSON number n has a nonzero digit before
// its exponent: one that a float64 reads as 0 underflowed (1e-20000),
// which PostgreSQL's numeric refuses too.
func nonzero(n string) bool {
	mantissa, _, _ := strings.Cut(strings.ToLower(n), "e")
	return strings.ContainsAny(mantissa, "123456789")
}

// storableValue is v, decoded JSON with numbers as json.Number, with
// NUL characters dropped from every string and key, and a number no
// float64 holds (1e200000, 1e-20000: PostgreSQL's numeric refuses them
// too) kept as its text; changed says whether a number was.
func storableValue(v any) (any, bool) {
	switch v := v.(type) {
	case string:
		return dropNUL(v), false
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err != nil || f == 0 && nonzero(string(v)) {
			return string(v), true
		}
		return v, false
	case []any:
		changed := false
		for i := range v {
			var c bool
			v[i], c = storableValue(v[i])
			changed = changed || c
		}
		return v, changed
	case map[string]any:
		out := make(map[string]any, len(v))
		changed := false
		for k, e := range v {
			var c bool
			out[dropNUL(k)], c = storableValue(e)
			changed = changed || c
		}
		return out, changed
	}
	return v, false
}

func dropNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// StorableText reports whether every store can keep and compare s:
// valid UTF-8 without NUL characters. PostgreSQL's text refuses both
// (an error that reads like an outage), where SQLite keeps them, so a
// caller checks input it did not make (an administrator's values and
// filters) with this first, and refuses it as bad input.
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// storable drops an email no store should keep or compare: one with a
// NUL character (cleaned, "bob\x00@example.com" would be another
// mailbox's address, one the provider never vouched for) or longer than
// an address can be. The rest of the profile keeps its NUL characters
// for names and mappings, which read the claims as sent (two values
// that differ by a NUL give two names), and loses them where it is
// written to the user's record (Profile.writeTo).
func (pr *Profile) storable() {
	if strings.ContainsRune(pr.Email, 0) || len(pr.Email) > maxEmailLength {
		pr.Email = ""
	}
}
