package caddymodule

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Default identity headers and the session field each carries.
var defaultHeaders = []headerSpec{
	{name: "Remote-User", field: fieldUsername},
	{name: "Remote-Email", field: fieldEmail},
	{name: "Remote-Name", field: fieldName},
	{name: "Remote-Groups", field: fieldGroups},
}

// sessionField selects what a default header carries; a custom header
// carries a placeholder template instead.
type sessionField int

const (
	fieldTemplate sessionField = iota
	fieldUsername
	fieldEmail
	fieldName
	fieldGroups
)

// headerSpec is one identity header sent upstream.
type headerSpec struct {
	name     string // canonical header name
	field    sessionField
	template string // for fieldTemplate
}

// headerKey folds a header name for comparison: lower case, with "_"
// read as "-". Servers and frameworks that map headers to variables
// (CGI, PHP, Django, Rack) treat Remote_User and Remote-User alike, so a
// client copy under any spelling must go (S1).
func headerKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case c == '_':
			b[i] = '-'
		}
	}
	return string(b)
}

// sameHeaderKey compares a header name with a folded key without
// allocating; it is on the hot path.
func sameHeaderKey(name, key string) bool {
	if len(name) != len(key) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

// stripIdentityHeaders deletes every client-supplied copy of the
// identity headers, under any case or "_"/"-" spelling.
func stripIdentityHeaders(h http.Header, keys []string) {
	for name := range h {
		for _, k := range keys {
			if sameHeaderKey(name, k) {
				delete(h, name)
				break
			}
		}
	}
}

// headerValue cleans a value for use in a header: a provider's name or
// email could carry CR, LF or other controls, which would make the
// upstream request invalid or split it.
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' '
				}
				return r
			}, s)
		}
	}
	return s
}

// setIdentity sets the identity headers (delete-then-set: an empty value
// still replaces whatever was there) and the {http.auth.user.*}
// placeholders for s.
func (h *Handler) setIdentity(r *http.Request, repl *caddy.Replacer, s *Session) {
	groups := strings.Join(s.Groups, ",")
	roles := strings.Join(s.Roles, ",")
	repl.Set("http.auth.user.id", s.Username)
	repl.Set("http.auth.user.email", s.Email)
	repl.Set("http.auth.user.name", s.Name)
	repl.Set("http.auth.user.groups", groups)
	repl.Set("http.auth.user.roles", roles)
	repl.Set("http.auth.user.connection", s.Connection)
	repl.Set("http.auth.user.subject", s.Subject)
	repl.Set("http.auth.user.local_id", s.UserID)
	repl.Set("http.auth.user.provisioned", strconv.FormatBool(s.Provisioned()))

	for _, hs := range h.headers {
		var v string
		switch hs.field {
		case fieldUsername:
			v = s.Username
		case fieldEmail:
			v = s.Email
		case fieldName:
			v = s.Name
		case fieldGroups:
			v = groupsAndRoles(s, groups, roles)
		default:
			v = repl.ReplaceAll(hs.template, "")
		}
		r.Header[hs.name] = []string{headerValue(v)}
	}
}

// groupsAndRoles is what Remote-Groups carries: the provider's groups
// and the local roles, without duplicates. An upstream that must tell
// them apart sets its own headers from {http.auth.user.groups} and
// {http.auth.user.roles}.
func groupsAndRoles(s *Session, groups, roles string) string {
	switch {
	case len(s.Roles) == 0:
		return groups
	case len(s.Groups) == 0:
		return roles
	}
	all := make([]string, 0, len(s.Groups)+len(s.Roles))
	all = append(append(all, s.Groups...), s.Roles...)
	slices.Sort(all)
	return strings.Join(slices.Compact(all), ",")
}
