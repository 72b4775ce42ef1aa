package provisioner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Expr is a placeholder expression: literal text with placeholders in
// braces, such as "{claims.department}" or
// "{claims.given_name} {claims.family_name}". Placeholders are:
//
//   - {claims.<path>}: a claim from the provider's response. The path
//     walks objects by key and arrays by index ({claims.org.unit},
//     {claims.emails.0}); a key that itself contains dots, such as
//     "https://example.com/roles", is matched whole before it is split.
//   - {connection}, {issuer}, {subject}: the identity's own names.
//   - {profile.<attribute>} and {verified_email}: the mapped attributes
//     (username templates only; see Policy.Username). {verified_email}
//     is the email only when it is verified and a plain address.
//
// A placeholder that resolves to nothing yields the empty string; an
// array yields its elements joined with commas; an object yields
// nothing, because its text form would be nothing a user could want.
type Expr struct {
	src   string
	parts []exprPart
}

type exprPart struct {
	literal string
	// ph is the placeholder name without braces; "" for a literal part.
	ph string
	// path is ph split after "claims." (nil for other placeholders).
	path string
}

// ParseExpr parses an expression. allowProfile permits {profile.*} and
// {verified_email}, which exist only once the attributes are mapped.
func ParseExpr(s string, allowProfile bool) (Expr, error) {
	e := Expr{src: s}
	for rest := s; rest != ""; {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			e.parts = append(e.parts, exprPart{literal: rest})
			break
		}
		if rest[open] == '}' {
			return Expr{}, fmt.Errorf("expression %q: '}' without '{'", s)
		}
		if open > 0 {
			e.parts = append(e.parts, exprPart{literal: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return Expr{}, fmt.Errorf("expression %q: '{' without '}'", s)
		}
		ph := rest[open+1 : open+1+end]
		part, err := parsePlaceholder(ph, allowProfile)
		if err != nil {
			return Expr{}, fmt.Errorf("expression %q: %v", s, err)
		}
		e.parts = append(e.parts, part)
		rest = rest[open+1+end+1:]
	}
	return e, nil
}

func parsePlaceholder(ph string, allowProfile bool) (exprPart, error) {
	switch {
	case ph == "connection" || ph == "issuer" || ph == "subject":
		return exprPart{ph: ph}, nil
	case strings.HasPrefix(ph, "claims."):
		path := strings.TrimPrefix(ph, "claims.")
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			return exprPart{}, fmt.Errorf("{%s}: a claim path is keys separated by single dots", ph)
		}
		return exprPart{ph: ph, path: path}, nil
	case allowProfile && (ph == "verified_email" || strings.HasPrefix(ph, "profile.") && len(ph) > len("profile.")):
		return exprPart{ph: ph}, nil
	}
	if allowProfile {
		return exprPart{}, fmt.Errorf("unknown placeholder {%s}; use {claims.<path>}, {profile.<attribute>}, {verified_email}, {connection}, {issuer} or {subject}", ph)
	}
	return exprPart{}, fmt.Errorf("unknown placeholder {%s}; use {claims.<path>}, {connection}, {issuer} or {subject}", ph)
}

// String returns the expression as written.
func (e Expr) String() string { return e.src }

// leadingText is the text every result of e begins with on connection:
// its literals and {connection} before the first other placeholder.
func (e Expr) leadingText(connection string) string {
	var b strings.Builder
	for _, p := range e.parts {
		switch p.ph {
		case "":
			b.WriteString(p.literal)
		case "connection":
			b.WriteString(connection)
		default:
			return b.String()
		}
	}
	return b.String()
}

// fixedPrefix is, for a fixed expression over {issuer} or {subject},
// its leadingText on connection; "" for any other expression (one
// without them gives the same name to everyone: nothing to keep).
func (e Expr) fixedPrefix(connection string) string {
	if !e.fixed() || !slices.ContainsFunc(e.parts, func(p exprPart) bool { return p.ph == "issuer" || p.ph == "subject" }) {
		return ""
	}
	return e.leadingText(connection)
}

// fixed reports whether e reads only what the provider sets once for an
// identity and never hands to another ({connection}, {issuer},
// {subject}), and no claim a user or the provider's admins may choose.
func (e Expr) fixed() bool {
	for _, p := range e.parts {
		if p.ph != "" && p.ph != "connection" && p.ph != "issuer" && p.ph != "subject" {
			return false
		}
	}
	return true
}

// evalEnv is what placeholders resolve against.
type evalEnv struct {
	connection string
	claims     Claims
	raw        map[string]any
	profile    *Profile
}

func newEvalEnv(connection string, c Claims) *evalEnv {
	env := &evalEnv{connection: connection, claims: c}
	if len(c.Raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(c.Raw))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) == nil {
			env.raw = m
		}
	}
	return env
}

// eval renders e as a string.
func (e Expr) eval(env *evalEnv) string {
	var b strings.Builder
	for _, p := range e.parts {
		if p.ph == "" {
			b.WriteString(p.literal)
			continue
		}
		b.WriteString(stringify(env.value(p)))
	}
	return b.String()
}

// evalList renders e as a list: an expression that is exactly one
// placeholder naming an array yields its elements; anything else yields
// one element, or none when empty. present is false when the expression
// is one placeholder that names nothing (the claim was not sent), which
// differs from a claim sent empty.
func (e Expr) evalList(env *evalEnv) (list []string, present bool) {
	if len(e.parts) == 1 && e.parts[0].ph != "" {
		v := env.value(e.parts[0])
		if v == nil {
			return nil, false
		}
		if arr, ok := v.([]any); ok {
			out := []string{}
			for _, v := range arr {
				if s := stringify(v); s != "" {
					out = append(out, s)
				}
			}
			return out, true
		}
	}
	if s := strings.TrimSpace(e.eval(env)); s != "" {
		return []string{s}, true
	}
	return []string{}, true
}

func (env *evalEnv) value(p exprPart) any {
	switch {
	case p.ph == "connection":
		return env.connection
	case p.ph == "issuer":
		return env.claims.Issuer
	case p.ph == "subject":
		return env.claims.Subject
	case p.path != "":
		return lookupPath(env.raw, p.path)
	case p.ph == "verified_email":
		// Only an address that can be a name (see verifiedEmailName):
		// "{verified_email}" naming anything else would name no mailbox.
		if env.profile != nil && verifiedEmailName(*env.profile) != "" {
			return env.profile.Email
		}
		return nil
	case strings.HasPrefix(p.ph, "profile."):
		if env.profile == nil {
			return nil
		}
		return env.profile.value(strings.TrimPrefix(p.ph, "profile."))
	}
	return nil
}

// lookupPath walks path through v. At each level the longest dotted
// prefix of the remaining path that is a key wins, so namespaced claim
// names ("https://example.com/groups") work without quoting.
func lookupPath(v any, path string) any {
	for path != "" {
		switch node := v.(type) {
		case map[string]any:
			found := false
			for end := len(path); end > 0; end = strings.LastIndexByte(path[:end], '.') {
				if child, ok := node[path[:end]]; ok {
					v, path, found = child, strings.TrimPrefix(path[end:], "."), true
					break
				}
			}
			if !found {
				return nil
			}
		case []any:
			seg, rest, _ := strings.Cut(path, ".")
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil
			}
			v, path = node[i], rest
		default:
			return nil
		}
	}
	return v
}

func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case []any:
		var parts []string
		for _, e := range x {
			if s := stringify(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(x, ",")
	}
	return ""
}
