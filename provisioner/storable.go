package provisioner

import (
	"bytes"
	"encoding/json"
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
	if !bytes.Contains(raw, []byte(`\u0000`)) && utf8.Valid(raw) {
		return raw
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(withoutNUL(v))
	if err != nil {
		return raw
	}
	return out
}

// jsonObject reports whether raw is one JSON object and nothing else.
func jsonObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(raw)
}

// withoutNUL is v, decoded JSON, with NUL characters dropped from every
// string and key.
func withoutNUL(v any) any {
	switch v := v.(type) {
	case string:
		return dropNUL(v)
	case []any:
		for i := range v {
			v[i] = withoutNUL(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[dropNUL(k)] = withoutNUL(e)
		}
		return out
	}
	return v
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
